"""How close is the simulator to the real Sparkify mini log? And is its churn learnable?

* :func:`user_aggregates` computes, from an event log, the per-user table of the real mini log
  (``sparkify_mini_user_features.csv.gz``) with the same column names and definitions, so simulated
  and real users can be compared column by column.
* :func:`fidelity_report` simulates several seeds and compares page mix, per-user distributions
  (two-sample KS statistics), churn rate and paid share with the real table.
* :func:`learnability` checks that churn in a log is predictable from honest features (events
  before an observation date) but not trivially so.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from churnlib.labels import feature_events, observation_labels, to_epoch_ms
from churnlib.schema import CHURN_PAGE, MS_PER_DAY
from churnlib.simulate import simulate_events

__all__ = [
    "PAGE_COUNT_COLUMNS",
    "KS_METRICS",
    "FidelityReport",
    "user_aggregates",
    "page_mix",
    "load_real_user_features",
    "real_page_mix",
    "fidelity_report",
    "learnability",
]


#: Count columns of the mini table -> the page they count.
PAGE_COUNT_COLUMNS: dict[str, str] = {
    "next_song_count": "NextSong",
    "thumbs_up_count": "Thumbs Up",
    "thumbs_down_count": "Thumbs Down",
    "home_count": "Home",
    "add_playlist_count": "Add to Playlist",
    "add_friend_count": "Add Friend",
    "advert_count": "Roll Advert",
    "settings_count": "Settings",
    "save_settings_count": "Save Settings",
    "help_count": "Help",
    "about_count": "About",
    "upgrade_count": "Upgrade",
    "downgrade_count": "Downgrade",
    "error_count": "Error",
    "submit_downgrade_count": "Submit Downgrade",
    "submit_upgrade": "Submit Upgrade",  # a 0/1 flag in the mini table (see user_aggregates)
}
_RATE_OF = {c[: -len("_count")] + "_rate": c for c in PAGE_COUNT_COLUMNS if c.endswith("_count")}

#: Per-user metrics compared with KS statistics, and the threshold each must meet.
KS_METRICS: tuple[str, ...] = (
    "count_items", "session_count", "avg_songs_session", "sum_session_length_hours",
    "thumbs_up_rate", "thumbs_down_rate", "advert_rate", "add_friend_rate", "help_rate",
)
KS_THRESHOLD = 0.15
PAGE_SHARE_MIN = 0.01  # pages above this share of the real log are checked
PAGE_REL_TOL = 0.15
CHURN_RANGE = (0.20, 0.26)
PAID_TOL = 0.05  # absolute tolerance on the paid share around the real one


def _user_rows(events: pd.DataFrame) -> pd.DataFrame:
    uid = events["userId"]
    keep = uid.notna() & (uid.astype("string").str.len() > 0)
    return events.loc[keep, ["userId", "ts", "sessionId", "page", "level", "method", "status",
                             "length", "gender"]]


def user_aggregates(events: pd.DataFrame) -> pd.DataFrame:
    """Per-user aggregates with the column names and definitions of the real mini table.

    Definitions (checked against ``sparkify_mini_user_features.csv.gz``): only rows with a userId
    count; ``count_items`` is every such row (Logout, Cancel and Cancellation Confirmation
    included); ``<page>_count`` counts visits; ``submit_upgrade`` is a 0/1 flag; ``paid`` is 1 if
    the user was ever on the paid level; ``churn`` is 1 after a visit to Cancellation
    Confirmation; ``non_song_interaction_count`` is every row but NextSong and Cancellation
    Confirmation; a session's length is its last minus its first event time;
    ``sum_session_length_hours`` adds them up; ``*_rate`` is a count per
    ``sum_session_length_hours`` (NaN when that is 0); ``avg_*_session`` divide by
    ``session_count``; ``tenure_days`` is last minus first event (it leaks the label: description
    only); ``thumbs_up_pct`` is thumbs up over thumbs up and down (0 without any).

    Parameters
    ----------
    events : pandas.DataFrame
        A Sparkify-schema event log (``userId``, ``ts``, ``sessionId``, ``page``, ``level``,
        ``method``, ``status``, ``length``, ``gender``).

    Returns
    -------
    pandas.DataFrame
        One row per user, ``userId`` as str, sorted by ``userId``.
    """
    ev = _user_rows(events).copy()
    ev["userId"] = ev["userId"].astype(str)
    ev["page"] = ev["page"].astype(str)
    ev["level"] = ev["level"].astype(str)
    ev["method"] = ev["method"].astype(str)
    ev["gender"] = ev["gender"].astype("string")
    page_sums = ",\n".join(
        (f"max(CASE WHEN page = '{pg}' THEN 1 ELSE 0 END) AS {col}" if col == "submit_upgrade" else
         f"count_if(page = '{pg}') AS {col}")
        for col, pg in PAGE_COUNT_COLUMNS.items())
    con = duckdb.connect()
    try:
        con.register("ev", ev)
        agg = con.execute(f"""
            WITH sess AS (
                SELECT userId, sessionId, (max(ts) - min(ts)) / 3600000.0 AS hours
                FROM ev GROUP BY userId, sessionId
            ), s AS (
                SELECT userId, count(*) AS session_count, sum(hours) AS sum_session_length_hours
                FROM sess GROUP BY userId
            ), u AS (
                SELECT userId,
                       any_value(gender) AS gender,
                       count(*) AS count_items,
                       coalesce(sum(length), 0.0) AS sum_length,
                       max(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS paid,
                       max(CASE WHEN page = '{CHURN_PAGE}' THEN 1 ELSE 0 END) AS churn,
                       {page_sums},
                       count_if(page NOT IN ('NextSong', '{CHURN_PAGE}')) AS non_song_interaction_count,
                       count_if(method = 'PUT' AND status = 200) AS PUT_200_count,
                       count_if(method = 'GET' AND status = 200) AS GET_200_count,
                       count_if(method = 'PUT' AND status = 307) AS PUT_307_count,
                       (max(ts) - min(ts)) / {MS_PER_DAY}.0 AS tenure_days
                FROM ev GROUP BY userId
            )
            SELECT u.*, s.session_count, s.sum_session_length_hours
            FROM u JOIN s USING (userId) ORDER BY userId
        """).df()
    finally:
        con.close()
    hours = agg["sum_session_length_hours"].where(agg["sum_session_length_hours"] > 0)
    tu, td = agg["thumbs_up_count"], agg["thumbs_down_count"]
    agg["thumbs_up_pct"] = (tu / (tu + td)).fillna(0.0)
    agg["avg_items_session"] = agg["count_items"] / agg["session_count"]
    agg["avg_songs_session"] = agg["next_song_count"] / agg["session_count"]
    agg["avg_session_length_hours"] = agg["sum_session_length_hours"] / agg["session_count"]
    agg["interaction_rate"] = agg["count_items"] / hours
    for rate, col in _RATE_OF.items():
        agg[rate] = agg[col] / hours
    agg["non_song_interaction_rate"] = agg["non_song_interaction_count"] / hours
    agg["userId"] = agg["userId"].astype(str)
    return agg


def load_real_user_features(path: str | Path) -> pd.DataFrame:
    """Read the real per-user table (``sparkify_mini_user_features.csv.gz``).

    Parameters
    ----------
    path : str or Path
        The CSV (gzip allowed).

    Returns
    -------
    pandas.DataFrame
        One row per real user; ``userId`` as str.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    KeyError
        If a column the comparison needs is missing.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"real user features not found: {path}")
    df = pd.read_csv(path)
    need = set(KS_METRICS) | set(PAGE_COUNT_COLUMNS) | {"userId", "count_items", "churn", "paid"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise KeyError(f"{path.name}: missing column(s) {missing}")
    df["userId"] = df["userId"].astype(str)
    return df


def _shares(counts: pd.Series, total: float) -> pd.Series:
    return (counts / total).rename("share")


def real_page_mix(real: pd.DataFrame) -> pd.Series:
    """Page shares of the real log from the count columns (denominator: all user rows).

    Pages without a count column (Logout, Cancel, Cancellation Confirmation) are left out of the
    index but stay in the denominator, as in :func:`page_mix`.
    """
    counts = pd.Series({pg: float(real[c].sum()) for c, pg in PAGE_COUNT_COLUMNS.items()})
    return _shares(counts, float(real["count_items"].sum())).sort_values(ascending=False)


def page_mix(events: pd.DataFrame) -> pd.Series:
    """Share of each page among the rows that belong to a user (non-empty userId).

    Parameters
    ----------
    events : pandas.DataFrame
        A Sparkify-schema event log.

    Returns
    -------
    pandas.Series
        Share per page (sums to 1), largest first.
    """
    ev = _user_rows(events)
    counts = ev["page"].astype(str).value_counts()
    return _shares(counts.astype(float), float(len(ev))).sort_values(ascending=False)


@dataclass
class FidelityReport:
    """Simulated vs real: per-user distributions, page mix and summary rates.

    Attributes
    ----------
    distributions : pandas.DataFrame
        One row per metric: ``metric``, ``real_median``, ``sim_median``, ``real_q25``,
        ``real_q75``, ``sim_q25``, ``sim_q75``, ``ks_per_seed`` (list), ``ks_median``,
        ``threshold``, ``passed``.
    page_mix : pandas.DataFrame
        One row per page: ``page``, ``real_share``, ``sim_share``, ``rel_diff``, ``checked``
        (real share above 1%), ``passed``.
    summary : dict
        ``churn_rate`` / ``paid_share`` (mean over seeds), per-seed lists, real values, target
        ranges and a ``*_passed`` flag each.
    seeds, n_users, days : as simulated.
    """

    distributions: pd.DataFrame
    page_mix: pd.DataFrame
    summary: dict
    seeds: tuple[int, ...] = ()
    n_users: int = 0
    days: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every KS metric, every checked page share, churn and paid share pass."""
        return bool(self.distributions["passed"].all()
                    and self.page_mix.loc[self.page_mix["checked"], "passed"].all()
                    and self.summary["churn_rate_passed"] and self.summary["paid_share_passed"])

    def failures(self) -> list[str]:
        """Human-readable list of the checks that failed."""
        out = [f"KS {r.metric} = {r.ks_median:.3f} > {r.threshold}"
               for r in self.distributions.itertuples() if not r.passed]
        out += [f"page {r.page}: {r.sim_share:.4f} vs real {r.real_share:.4f} ({r.rel_diff:+.1%})"
                for r in self.page_mix.itertuples() if r.checked and not r.passed]
        s = self.summary
        if not s["churn_rate_passed"]:
            out.append(f"churn rate {s['churn_rate']:.3f} outside {s['churn_range']}")
        if not s["paid_share_passed"]:
            out.append(f"paid share {s['paid_share']:.3f} vs real {s['real_paid_share']:.3f}")
        return out

    def __str__(self) -> str:
        d = self.distributions
        lines = [f"Fidelity: {self.n_users} users x {self.days:g} days, seeds {list(self.seeds)} "
                 f"vs the real mini log ({self.summary['real_users']} users)", "",
                 "Per-user distributions (median [q25, q75]; two-sample KS, median over seeds)",
                 f"{'metric':<26}{'real':>28}{'simulated':>28}{'KS':>7}{'max':>6}  result"]
        for r in d.itertuples():
            real = f"{r.real_median:.3g} [{r.real_q25:.3g}, {r.real_q75:.3g}]"
            sim = f"{r.sim_median:.3g} [{r.sim_q25:.3g}, {r.sim_q75:.3g}]"
            lines.append(f"{r.metric:<26}{real:>28}{sim:>28}{r.ks_median:>7.3f}{r.threshold:>6.2f}"
                         f"  {'PASS' if r.passed else 'FAIL'}")
        lines += ["", f"Page mix (share of user rows; pages above {PAGE_SHARE_MIN:.0%} checked "
                      f"within +/-{PAGE_REL_TOL:.0%} relative)",
                  f"{'page':<20}{'real':>9}{'sim':>9}{'diff':>9}  result"]
        for r in self.page_mix.itertuples():
            res = ("PASS" if r.passed else "FAIL") if r.checked else "-"
            real = f"{r.real_share:.4f}" if pd.notna(r.real_share) else "n/a"
            diff = f"{r.rel_diff:+.1%}" if pd.notna(r.rel_diff) else ""
            lines.append(f"{r.page:<20}{real:>9}{r.sim_share:>9.4f}{diff:>9}  {res}")
        s = self.summary
        lines += ["",
                  f"churn rate  real {s['real_churn_rate']:.3f}  sim {s['churn_rate']:.3f} "
                  f"(per seed {', '.join(f'{x:.3f}' for x in s['churn_rate_per_seed'])})  "
                  f"target {s['churn_range'][0]:.2f}-{s['churn_range'][1]:.2f}  "
                  f"{'PASS' if s['churn_rate_passed'] else 'FAIL'}",
                  f"paid share  real {s['real_paid_share']:.3f}  sim {s['paid_share']:.3f} "
                  f"(ever on the paid level)  target +/-{PAID_TOL:.2f}  "
                  f"{'PASS' if s['paid_share_passed'] else 'FAIL'}",
                  "", f"OVERALL: {'PASS' if self.passed else 'FAIL'}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        dist = self.distributions.drop(columns=["ks_per_seed"]).to_html(index=False,
                                                                        float_format="{:.4g}".format)
        mix = self.page_mix.to_html(index=False, float_format="{:.4g}".format, na_rep="")
        s = self.summary
        head = (f"<h4>Simulator fidelity: {'PASS' if self.passed else 'FAIL'}</h4>"
                f"<p>{self.n_users} users &times; {self.days:g} days, seeds {list(self.seeds)}; "
                f"churn rate {s['churn_rate']:.3f} (real {s['real_churn_rate']:.3f}), "
                f"paid share {s['paid_share']:.3f} (real {s['real_paid_share']:.3f})</p>")
        fails = "".join(f"<li>{html.escape(f)}</li>" for f in self.failures())
        return head + (f"<ul>{fails}</ul>" if fails else "") + dist + mix


def fidelity_report(real_path: str | Path, n_users: int = 2000, days: float = 60,
                    seeds: tuple[int, ...] = (1, 2, 3, 4, 5), config=None) -> FidelityReport:
    """Simulate ``len(seeds)`` logs and compare them with the real per-user table.

    Parameters
    ----------
    real_path : str or Path
        ``sparkify_mini_user_features.csv.gz``.
    n_users, days : int, float
        Size of each simulated log (the real one: 225 users, ~60 days).
    seeds : tuple of int
        One simulation per seed; KS statistics are summarised by their median.
    config : SimulatorConfig, optional
        Simulator parameters (default: the calibrated ones).

    Returns
    -------
    FidelityReport
    """
    real = load_real_user_features(real_path)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("fidelity_report: need at least one seed")
    aggs, mixes = [], []
    for s in seeds:
        ev = simulate_events(n_users, days, s, config=config)
        aggs.append(user_aggregates(ev))
        mixes.append(page_mix(ev))
        del ev
    return _compare(real, aggs, mixes, seeds, n_users, days)


def _compare(real: pd.DataFrame, aggs: list[pd.DataFrame], mixes: list[pd.Series],
             seeds: tuple[int, ...], n_users: int, days: float) -> FidelityReport:
    rows = []
    pooled = pd.concat(aggs, ignore_index=True)
    for m in KS_METRICS:
        r = real[m].dropna().to_numpy(float)
        ks = [float(stats.ks_2samp(r, a[m].dropna().to_numpy(float)).statistic) for a in aggs]
        sim = pooled[m].dropna()
        ksm = float(np.median(ks))
        rows.append({"metric": m, "real_median": float(np.median(r)),
                     "sim_median": float(sim.median()),
                     "real_q25": float(np.quantile(r, 0.25)), "real_q75": float(np.quantile(r, 0.75)),
                     "sim_q25": float(sim.quantile(0.25)), "sim_q75": float(sim.quantile(0.75)),
                     "ks_per_seed": [round(k, 4) for k in ks], "ks_median": ksm,
                     "threshold": KS_THRESHOLD, "passed": ksm <= KS_THRESHOLD})
    dist = pd.DataFrame(rows)

    rmix = real_page_mix(real)
    smix = pd.concat(mixes, axis=1).fillna(0.0).mean(axis=1)
    pages = list(rmix.index) + [p for p in smix.index if p not in rmix.index]
    mix = pd.DataFrame({"page": pages,
                        "real_share": [rmix.get(p, np.nan) for p in pages],
                        "sim_share": [float(smix.get(p, 0.0)) for p in pages]})
    mix["rel_diff"] = mix["sim_share"] / mix["real_share"] - 1.0
    mix["checked"] = mix["real_share"].fillna(0.0) > PAGE_SHARE_MIN
    mix["passed"] = ~mix["checked"] | (mix["rel_diff"].abs() <= PAGE_REL_TOL)

    churn = [float(a["churn"].mean()) for a in aggs]
    paid = [float(a["paid"].mean()) for a in aggs]
    real_paid = float(real["paid"].mean())
    summary = {
        "churn_rate": float(np.mean(churn)), "churn_rate_per_seed": churn,
        "real_churn_rate": float(real["churn"].mean()), "churn_range": CHURN_RANGE,
        "churn_rate_passed": CHURN_RANGE[0] <= float(np.mean(churn)) <= CHURN_RANGE[1],
        "paid_share": float(np.mean(paid)), "paid_share_per_seed": paid,
        "real_paid_share": real_paid, "paid_tolerance": PAID_TOL,
        "paid_share_passed": abs(float(np.mean(paid)) - real_paid) <= PAID_TOL,
        "real_users": int(len(real)),
    }
    return FidelityReport(dist, mix, summary, seeds, n_users, days)


# ------------------------------------------------------------------------------------------------
# learnability
# ------------------------------------------------------------------------------------------------
_FEATURE_PAGES = {"NextSong": "songs", "Thumbs Up": "tup", "Thumbs Down": "tdown",
                  "Roll Advert": "advert", "Error": "error", "Help": "help",
                  "Downgrade": "downgrade", "Add Friend": "friend", "Add to Playlist": "playlist",
                  "Upgrade": "upgrade"}


def _window_features(ev: pd.DataFrame, lo: int, hi: int, tag: str) -> pd.DataFrame:
    w = ev[(ev["ts"] >= lo) & (ev["ts"] < hi)]
    g = w.groupby("userId")
    out = pd.DataFrame({f"events_{tag}": g.size(), f"sessions_{tag}": g["sessionId"].nunique()})
    counts = (w[w["page"].isin(list(_FEATURE_PAGES))]
              .pivot_table(index="userId", columns="page", values="ts", aggfunc="size"))
    for page, short in _FEATURE_PAGES.items():
        out[f"{short}_{tag}"] = counts[page] if page in counts else 0
    return out


def _honest_features(fev: pd.DataFrame, as_of_ms: int) -> pd.DataFrame:
    """Per-user features from events before as_of only: last 14 days, the 14 before, and trends."""
    ev = fev[["userId", "ts", "sessionId", "page", "level"]].copy()
    ev["userId"] = ev["userId"].astype(str)
    ev["ts"] = ev["ts"].astype("int64")
    d14 = 14 * MS_PER_DAY
    recent = _window_features(ev, as_of_ms - d14, as_of_ms, "last14")
    before = _window_features(ev, as_of_ms - 2 * d14, as_of_ms - d14, "prev14")
    last7 = _window_features(ev, as_of_ms - d14 // 2, as_of_ms, "last7")[["events_last7",
                                                                         "sessions_last7"]]
    whole = _window_features(ev, int(ev["ts"].min()) if len(ev) else 0, as_of_ms, "all")
    g = ev.groupby("userId")
    base = pd.DataFrame({
        "days_since_last": (as_of_ms - g["ts"].max()) / MS_PER_DAY,
        "paid_now": g["level"].last().astype(str).eq("paid").astype(int),
    })
    x = (base.join(recent, how="left").join(before, how="left").join(last7, how="left")
         .join(whole, how="left").fillna(0.0))
    songs = x["songs_last14"] + 1.0
    songs_all = x["songs_all"] + 1.0
    for short in ("tdown", "tup", "advert", "help", "error", "downgrade"):
        x[f"{short}_per_song_last14"] = x[f"{short}_last14"] / songs
        # the whole history estimates a user's stable level (less count noise than 14 days)
        x[f"{short}_per_song_all"] = x[f"{short}_all"] / songs_all
    x["songs_per_session_last14"] = x["songs_last14"] / x["sessions_last14"].clip(lower=1)
    x["songs_trend"] = np.log1p(x["songs_last14"]) - np.log1p(x["songs_prev14"])
    x["sessions_trend"] = x["sessions_last14"] - x["sessions_prev14"]
    return x


def learnability(events: pd.DataFrame, as_of: object, horizon_days: float = 14, *,
                 n_splits: int = 5, seed: int = 0) -> dict:
    """Cross-validated ROC-AUC of a gradient-boosting churn model with honest features.

    Features come only from :func:`churnlib.labels.feature_events` (events before ``as_of``,
    label pages removed): per-user counts over the last 14 days and the 14 before, per-song rates
    (thumbs, adverts, help, errors, downgrade visits), trends, days since the last event and the
    current level, plus whole-history per-song rates. Labels are :func:`churnlib.labels.observation_labels` (cancellation within
    ``horizon_days`` of ``as_of``).

    Parameters
    ----------
    events : pandas.DataFrame
        A Sparkify-schema event log.
    as_of : str, Timestamp or int epoch ms
        Observation date.
    horizon_days : float
        Label window after ``as_of``.
    n_splits : int
        Stratified folds.
    seed : int
        Fold shuffling and model seed.

    Returns
    -------
    dict
        ``roc_auc`` (pooled out-of-fold), ``ci95`` (bootstrap over users), ``fold_auc``,
        ``n_users``, ``positives``, ``churn_rate`` and ``signatures`` (mean feature value of
        churners vs stayers for the literature's churn signals).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    t = to_epoch_ms(as_of)
    labels = observation_labels(events, t, horizon_days=horizon_days)
    fev = feature_events(events, t)
    x = _honest_features(fev, t)
    labels = labels.assign(userId=labels["userId"].astype(str)).set_index("userId")
    x = x.reindex(labels.index).fillna(0.0)
    y = labels["churned"].to_numpy(int)
    pos = int(y.sum())
    if pos < n_splits or (len(y) - pos) < n_splits:
        raise ValueError(f"learnability: too few churners ({pos}) or stayers for {n_splits} folds")
    oof = np.zeros(len(y))
    folds = []
    for tr, te in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(x, y):
        clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                             l2_regularization=1.0, random_state=seed)
        clf.fit(x.iloc[tr], y[tr])
        oof[te] = clf.predict_proba(x.iloc[te])[:, 1]
        folds.append(float(roc_auc_score(y[te], oof[te])))
    auc = float(roc_auc_score(y, oof))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(300):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            boots.append(roc_auc_score(y[i], oof[i]))
    sig_cols = ["songs_trend", "tdown_per_song_last14", "advert_per_song_last14",
                "error_per_song_last14", "help_per_song_last14", "downgrade_per_song_last14",
                "sessions_last14"]
    signatures = {c: {"churners": float(x.loc[y == 1, c].mean()),
                      "stayers": float(x.loc[y == 0, c].mean())} for c in sig_cols}
    return {"roc_auc": auc, "ci95": (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))),
            "fold_auc": folds, "n_users": int(len(y)), "positives": pos,
            "churn_rate": pos / len(y), "as_of": t, "horizon_days": horizon_days,
            "signatures": signatures}
