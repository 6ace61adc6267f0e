"""Drift monitoring and champion/challenger retraining: the logic of ``notebooks/07_monitoring.ipynb``.

A *reference window* (the users the model was trained on) is compared with a *new window*:

* :func:`drift_report` -- per feature, the population stability index (:func:`psi`, quantile bins
  from the reference; categories for text columns) and the two-sample Kolmogorov-Smirnov statistic
  (:func:`ks`, numeric columns); a feature drifts when PSI > ``psi_threshold`` (default 0.25) or
  KS > ``ks_threshold`` (default 0.2).
* :func:`performance_check` -- the model's metrics with 95% intervals on newly labelled users next to
  the same metrics on users of the reference process it never saw.
* :func:`retrain_recommendation` -- one plain sentence from both.
* :func:`false_alarm_rate` -- how often the monitor fires on two fresh samples of the *same* process
  (with ~100 features and two statistics each, multiple testing is the main risk of a drift monitor).
* :func:`scenario_config` / :func:`scenario_window` -- simulated new windows with planted drift
  (more adverts, an app-error spike, a new user cohort) or none (``same_process``).
* :func:`challenge` -- refit the champion's own pipeline on reference + newly labelled users and
  compare both models on the *same* held-out new users; :func:`record_decision` appends the decision
  to ``champion_history.json``.

Simulated windows share the reference log's song catalogue (:func:`simulate_window`): with a
catalogue of its own, a fresh sample of the same behaviour already shifts per-hour features enough to
fire the monitor. With that, at the CI size (about 250 current users per window, 99 features,
default thresholds) the monitor fired on 2 of 40 pairs of same-process samples in development (5%,
Wilson 95% interval 1-17%); the notebook measures the rate again for the sizes it monitors.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from churnlib import evaluation as ev

__all__ = [
    "ChallengeResult",
    "DriftReport",
    "FalseAlarmResult",
    "SCENARIOS",
    "challenge",
    "drift_report",
    "false_alarm_rate",
    "ks",
    "latest_rows",
    "monitoring_summary",
    "load_champion",
    "performance_check",
    "plot_drift",
    "plot_performance",
    "psi",
    "record_decision",
    "ReferenceWindow",
    "reference_window",
    "retrain_recommendation",
    "save_challenger",
    "scenario_config",
    "scenario_window",
    "simulate_window",
    "stable_floats",
    "write_summary",
]

#: Defaults of the drift rule: a feature drifts when PSI > 0.25 (the usual "significant shift"
#: level) or KS > 0.2.
PSI_THRESHOLD = 0.25
KS_THRESHOLD = 0.2
#: A feature is judged only when both windows hold at least this many rows: below it PSI and KS
#: are mostly sampling noise.
MIN_ROWS = 50
#: Pseudo-count added to every bin of both windows before PSI's logarithm (empty bins would give
#: log(0)); at 300 rows it moves a bin share by under 0.2 points.
PSEUDO_COUNT = 0.5
_KEYS = ("userId", "as_of", "churned")
_MISSING = "(missing)"
_OTHER = "(other)"


# --------------------------------------------------------------------------------------------
# Drift statistics
# --------------------------------------------------------------------------------------------

def _is_categorical(s: pd.Series) -> bool:
    return getattr(s.dtype, "kind", "O") not in "iufb"


def _psi_from_counts(ref: np.ndarray, cur: np.ndarray, pseudo_count: float) -> float:
    ref = np.asarray(ref, float) + pseudo_count
    cur = np.asarray(cur, float) + pseudo_count
    p, q = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: Sequence | pd.Series, current: Sequence | pd.Series, *, bins: int = 10,
        categorical: bool = False, pseudo_count: float = PSEUDO_COUNT) -> float:
    """Population stability index of ``current`` against ``reference``.

    ``PSI = sum_b (q_b - p_b) * ln(q_b / p_b)`` over bins ``b``, with ``p`` the reference and ``q``
    the current share of rows in each bin. 0 means identical binned distributions; 0.1-0.25 is
    usually read as a moderate shift, above 0.25 as a significant one.

    Parameters
    ----------
    reference, current : array-like
        The feature's values in the reference and the new window.
    bins : int, default 10
        Numeric: quantile bins with edges from the reference (ties merge bins, so a feature that is
        mostly 0 gets fewer). Categorical: the ``bins - 1`` most frequent reference categories, the
        rest (and categories never seen in the reference) pooled into one "other" bin, so that the
        statistic's noise does not grow with the number of categories.
    categorical : bool, default False
        Treat the values as categories.
    pseudo_count : float, default 0.5
        Added to every bin's count in both windows (empty bins would make the logarithm infinite).

    Returns
    -------
    float
        NaN when either window is empty. Missing values form a bin of their own, so a change in
        the share of missing values counts as drift.
    """
    ref = pd.Series(reference)
    cur = pd.Series(current)
    if ref.empty or cur.empty:
        return float("nan")
    if categorical:
        r = ref.astype(object).where(ref.notna(), _MISSING).astype(str)
        c = cur.astype(object).where(cur.notna(), _MISSING).astype(str)
        keep = r.value_counts().index[:max(1, bins - 1)]
        levels = [*keep, _OTHER]
        r = r.where(r.isin(keep), _OTHER)
        c = c.where(c.isin(keep), _OTHER)
        rc = r.value_counts().reindex(levels, fill_value=0).to_numpy()
        cc = c.value_counts().reindex(levels, fill_value=0).to_numpy()
        return _psi_from_counts(rc, cc, pseudo_count)
    return _psi_numeric(_as_float(ref), _as_float(cur), bins, pseudo_count)


def _as_float(x) -> np.ndarray:
    s = x if isinstance(x, pd.Series) else pd.Series(x)
    if getattr(s.dtype, "kind", "O") not in "iufb":
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable NA -> NaN


def _psi_numeric(r: np.ndarray, c: np.ndarray, bins: int, pseudo_count: float) -> float:
    r_ok, c_ok = r[~np.isnan(r)], c[~np.isnan(c)]
    edges = np.unique(np.quantile(r_ok, np.linspace(0, 1, bins + 1)[1:-1])) if len(r_ok) else np.array([])
    k = len(edges) + 1
    # bin i holds edges[i-1] <= x < edges[i]; the extra last bin counts missing values
    rc = np.bincount(np.searchsorted(edges, r_ok, side="right"), minlength=k)
    cc = np.bincount(np.searchsorted(edges, c_ok, side="right"), minlength=k)
    rc = np.r_[rc, len(r) - len(r_ok)]
    cc = np.r_[cc, len(c) - len(c_ok)]
    if rc[-1] == 0 and cc[-1] == 0:
        rc, cc = rc[:-1], cc[:-1]
    return _psi_from_counts(rc, cc, pseudo_count)


def _ks_numeric(r: np.ndarray, c: np.ndarray) -> float:
    r, c = np.sort(r[~np.isnan(r)]), np.sort(c[~np.isnan(c)])
    if not len(r) or not len(c):
        return float("nan")
    # the statistic as ks_2samp computes it, without its p-value (an exact p-value is slow and
    # unused: the rule thresholds the statistic)
    both = np.concatenate([r, c])
    gap = np.searchsorted(r, both, side="right") / len(r) - np.searchsorted(c, both, side="right") / len(c)
    return float(np.max(np.abs(gap)))


def ks(reference: Sequence | pd.Series, current: Sequence | pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic of the non-missing values.

    The largest gap between the two empirical distribution functions
    (as :func:`scipy.stats.ks_2samp`), 0 to 1; NaN when either window has no value.
    """
    return _ks_numeric(_as_float(reference), _as_float(current))


def _feature_names(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in _KEYS
            and not pd.api.types.is_datetime64_any_dtype(frame[c])
            and not pd.api.types.is_timedelta64_dtype(frame[c])]


@dataclass
class DriftReport:
    """Per-feature drift between a reference and a new window.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per feature: ``feature``, ``kind`` (numeric/categorical), ``psi``, ``ks`` (NaN for
        categories), ``reference_mean``, ``current_mean`` (numeric), ``drifted`` (bool), ``reason``;
        drifted features first, by PSI.
    psi_threshold, ks_threshold : float
    n_reference, n_current : int
        Rows in each window.
    """

    table: pd.DataFrame
    psi_threshold: float
    ks_threshold: float
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> pd.DataFrame:
        """The rows of the features that drifted."""
        return self.table[self.table["drifted"]]

    @property
    def fired(self) -> bool:
        """True when any feature drifted."""
        return bool(self.table["drifted"].any())

    @property
    def n_checked(self) -> int:
        """Features judged (enough rows in both windows)."""
        return int(self.table["psi"].notna().sum())

    def summary(self, top: int = 5) -> str:
        """One plain sentence: how many features drifted, and the largest shifts."""
        d = self.drifted
        if d.empty:
            return (f"No feature drifted: none of {self.n_checked} features has PSI > {self.psi_threshold:g} "
                    f"or KS > {self.ks_threshold:g}.")
        names = ", ".join(f"{r.feature} (PSI {r.psi:.2f}" + (f", KS {r.ks:.2f})" if np.isfinite(r.ks) else ")")
                          for r in d.head(top).itertuples())
        more = f" and {len(d) - top} more" if len(d) > top else ""
        return f"{len(d)} of {self.n_checked} features drifted: {names}{more}."


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, features: Sequence[str] | None = None,
                 psi_threshold: float = PSI_THRESHOLD, ks_threshold: float = KS_THRESHOLD, bins: int = 10,
                 min_rows: int = MIN_ROWS) -> DriftReport:
    """Compare every feature of a new window with the reference window.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        One row per user (e.g. the features as of one observation date: :func:`latest_rows`).
    features : sequence of str, optional
        Columns to check (default: every column of ``reference`` but ``userId``, ``as_of``,
        ``churned`` and date columns). Text columns are compared as categories (PSI only).
    psi_threshold, ks_threshold : float
        A feature drifts when its PSI exceeds ``psi_threshold`` or its KS statistic exceeds
        ``ks_threshold``.
    bins : int, default 10
        PSI bins (see :func:`psi`).
    min_rows : int, default 50
        Windows with fewer rows are not judged (PSI and KS are NaN, nothing drifts).

    Returns
    -------
    DriftReport
    """
    names = list(features) if features is not None else _feature_names(reference)
    missing = [c for c in names if c not in current.columns]
    if missing:
        raise ValueError(f"the new window lacks {len(missing)} feature(s): {missing[:10]}")
    enough = len(reference) >= min_rows and len(current) >= min_rows
    rows = []
    for name in names:
        r, c = reference[name], current[name]
        cat = _is_categorical(r)
        rm = cm = p = k = float("nan")
        if cat:
            if enough:
                p = psi(r, c, bins=bins, categorical=True)
        else:
            ra, ca = _as_float(r), _as_float(c)
            with np.errstate(all="ignore"):
                rm = float(np.nanmean(ra)) if (~np.isnan(ra)).any() else float("nan")
                cm = float(np.nanmean(ca)) if (~np.isnan(ca)).any() else float("nan")
            if enough:
                p, k = _psi_numeric(ra, ca, bins, PSEUDO_COUNT), _ks_numeric(ra, ca)
        why = []
        if np.isfinite(p) and p > psi_threshold:
            why.append(f"PSI {p:.2f} > {psi_threshold:g}")
        if np.isfinite(k) and k > ks_threshold:
            why.append(f"KS {k:.2f} > {ks_threshold:g}")
        rows.append({"feature": name, "kind": "categorical" if cat else "numeric", "psi": p, "ks": k,
                     "reference_mean": rm, "current_mean": cm, "drifted": bool(why),
                     "reason": "; ".join(why) if why else ("too few rows" if not enough else "")})
    table = pd.DataFrame(rows, columns=["feature", "kind", "psi", "ks", "reference_mean", "current_mean",
                                        "drifted", "reason"])
    table = table.sort_values(["drifted", "psi"], ascending=[False, False], kind="mergesort",
                              na_position="last").reset_index(drop=True)
    return DriftReport(table, psi_threshold, ks_threshold, len(reference), len(current))


def stable_floats(table: pd.DataFrame, digits: int = 7) -> pd.DataFrame:
    """A copy with every float column rounded to ``digits`` significant digits.

    Two builds of the same log by :func:`churnlib.features.build_features` can differ in the last
    digits of some float features (``listening_hours_*`` and ``listening_time_trend_7d`` by up to
    ~1e-9 relative; the DuckDB sums depend on thread scheduling), and tree models bin on exact values,
    so they then fit different trees. Rounding far below any meaningful precision (seven digits: 0.04
    s in 100 listening hours) removes almost all of that; a value that sits on a rounding boundary can
    still flip, so this is a mitigation, not a guarantee. The fix belongs in the feature SQL.
    """
    out = table.copy()
    for c in out.columns:
        if out[c].dtype == np.float64:
            a = out[c].to_numpy()
            with np.errstate(all="ignore"):
                mag = np.floor(np.log10(np.abs(np.where(np.isfinite(a) & (a != 0), a, 1.0))))
                scale = 10.0 ** (digits - 1 - mag)
                out[c] = np.where(np.isfinite(a), np.round(a * scale) / scale, a)
    return out


def latest_rows(table: pd.DataFrame, date_col: str = "as_of") -> pd.DataFrame:
    """The rows of a stacked feature table at its latest observation date (one row per user).

    Drift is measured on one row per user: rows of the same user at several dates are not
    independent, which would make PSI and KS look more certain than they are.
    """
    if date_col not in table.columns:
        return table.reset_index(drop=True)
    return table[table[date_col] == table[date_col].max()].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Simulated windows
# --------------------------------------------------------------------------------------------

#: Drift scenarios: name -> (plain description, changes to the calibrated simulator). Factors
#: multiply the base value; ``"set"`` replaces it.
SCENARIOS: dict[str, tuple[str, dict[str, tuple[str, float]]]] = {
    "same_process": ("a fresh sample of users from the same process (no change)", {}),
    "more_adverts": ("twice as many adverts per song for free users (an advertising push)",
                     {"advert_free": ("mul", 2.0)}),
    "error_spike": ("five times the app-error rate (a faulty release)", {"error": ("mul", 5.0)}),
    "new_cohort": ("a new cohort: many users registering during the window, fewer of them paid, "
                   "coming back less often (approximated with the simulator's registration share, "
                   "starting paid share and session rate)",
                   {"p_new_user": ("set", 0.30), "p_paid_start": ("set", 0.10),
                    "session_rate_median": ("mul", 0.75)}),
}


def scenario_config(name: str, base=None):
    """The simulator configuration of a drift scenario.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIOS`: ``"same_process"``, ``"more_adverts"``, ``"error_spike"``,
        ``"new_cohort"``.
    base : churnlib.simulate.SimulatorConfig, optional
        The reference process (default: the calibrated configuration).

    Returns
    -------
    churnlib.simulate.SimulatorConfig
        A copy of ``base`` with the scenario's changes (``dataclasses.replace``).
    """
    from churnlib.simulate import SimulatorConfig

    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {list(SCENARIOS)}")
    base = base if base is not None else SimulatorConfig()
    changes = {k: (getattr(base, k) * v if op == "mul" else v) for k, (op, v) in SCENARIOS[name][1].items()}
    return dataclasses.replace(base, **changes)


def simulate_window(config=None, *, n_users: int = 300, days: float = 60, seed: int = 8,
                    catalogue_seed: int = 7, start: str = "2018-12-03", id_offset: int = 0,
                    out: str | os.PathLike | None = None) -> pd.DataFrame | Path:
    """Simulate new users of the *same service*: a fresh user sample over an unchanged catalogue.

    :func:`churnlib.simulate.simulate_events` draws the song catalogue from the same seed as the
    users, so two seeds are two services: the lengths of the few most played songs differ, and
    per-hour features (e.g. thumbs up per session hour) shift between seeds with no change in
    behaviour -- enough to make a drift monitor fire between two "identical" processes. Here the
    catalogue comes from ``catalogue_seed`` (the reference log's seed) and the users from ``seed``.
    This uses the simulator's internal chunk function (``simulate.py`` is not changed); the users
    are simulated exactly as :func:`simulate_events` simulates them.

    Parameters
    ----------
    config : SimulatorConfig, optional
        The process (default: the calibrated one; see :func:`scenario_config`).
    n_users, days, start
        Size and time span of the window (UTC start).
    seed : int
        Seed of the users (use one the reference did not use).
    catalogue_seed : int
        Seed of the reference log, whose catalogue the window shares.
    id_offset : int
        User ids are ``id_offset + 1 ... id_offset + n_users`` (keeps them apart from the reference's).
    out : path-like, optional
        Write the events to this parquet file instead (as :func:`churnlib.simulate.write_event_log`
        does; DuckDB then reads it directly, much faster than from pandas for large windows).

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        Events in the Sparkify schema, as :func:`churnlib.simulate.simulate_events` returns them,
        or ``out``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnlib import simulate as sim

    cfg = config if config is not None else sim.SimulatorConfig()
    st = sim._Static(cfg, catalogue_seed)
    ts0 = pd.Timestamp(start)
    ts0 = ts0.tz_localize("UTC") if ts0.tzinfo is None else ts0.tz_convert("UTC")
    start_ms = int(ts0.value // 1_000_000)
    end_ms = start_ms + int(round(days * sim._MS_PER_DAY))
    user_seeds = np.random.SeedSequence(seed).generate_state(n_users, np.uint32)

    def chunks():
        sid = 1
        for lo in range(0, n_users, 2000):
            table, sid = sim._simulate_chunk(st, cfg._params(), user_seeds[lo:lo + 2000], id_offset + lo, start_ms,
                                             end_ms, sid, days)
            yield table

    if out is None:
        return pa.concat_tables([sim._decode(t) for t in chunks()]).to_pandas()
    out = Path(out)
    with pq.ParquetWriter(out, sim._schema(True), compression="snappy", store_schema=False) as writer:
        for table in chunks():
            writer.write_table(table, row_group_size=max(table.num_rows, 1))
    return out


def scenario_window(name: str, *, n_users: int = 300, days: float = 60, seed: int = 8, catalogue_seed: int = 7,
                    start: str = "2018-12-03", horizon_days: float = 14, base=None, all_dates: bool = True,
                    id_offset: int = 0) -> pd.DataFrame:
    """Simulate a new window under a scenario and build its labelled feature table.

    Parameters
    ----------
    name : str
        Scenario (see :func:`scenario_config`).
    n_users, days, seed, catalogue_seed, start, id_offset
        See :func:`simulate_window`. The default start is nine weeks after the simulator's default
        start: a later window on the same weekday, so the weekly pattern stays aligned.
    horizon_days : float
        Label window after each observation date.
    base : SimulatorConfig, optional
        The reference process.
    all_dates : bool, default True
        Stack the weekly observation dates over the log's second half (for performance checks);
        False keeps only the latest (one row per user, for drift).

    Returns
    -------
    pandas.DataFrame
        As :func:`churnlib.features.build_features`, float columns through :func:`stable_floats`.
    """
    from churnlib import features

    with tempfile.TemporaryDirectory(prefix="churnlib-window-") as tmp:
        events = simulate_window(scenario_config(name, base), n_users=n_users, days=days, seed=seed,
                                 catalogue_seed=catalogue_seed, start=start, id_offset=id_offset,
                                 out=Path(tmp) / "events.parquet")
        dates = features.observation_dates(events, horizon_days)
        table = features.build_features(events, dates if all_dates else dates[-1:], horizon_days=horizon_days)
    return stable_floats(table)


@dataclass
class ReferenceWindow:
    """The reference window: the event log the champion was trained on, and its feature table.

    Attributes
    ----------
    table : pandas.DataFrame
        Labelled features at the log's weekly observation dates (float columns through
        :func:`stable_floats`).
    log : pathlib.Path
        The event log.
    start : pandas.Timestamp
        The log's first day (UTC midnight).
    n_users : int
        Users in the log.
    simulated : bool
        The log is a simulated default log (so simulated new windows share its process).
    catalogue_seed : int
        The simulator seed of that log (new windows reuse its song catalogue).
    source : str
        Where the table came from.
    notes : list of str
        Plain remarks for the report (e.g. why a given file was not used).
    """

    table: pd.DataFrame
    log: Path
    start: pd.Timestamp
    n_users: int
    simulated: bool
    catalogue_seed: int
    source: str
    notes: list[str]

    @property
    def latest(self) -> pd.DataFrame:
        """One row per user at the latest observation date (what drift is measured on)."""
        return latest_rows(self.table)


def reference_window(data: str | os.PathLike | None = None, data_kind: str | None = None, *, n_users: int = 300,
                     days: float = 60, seed: int = 7, horizon_days: float = 14,
                     output_dir: str | os.PathLike | None = None) -> ReferenceWindow:
    """The reference window of the monitoring notebook.

    * ``data`` None: the simulated default log, with the feature table ``02_features`` wrote when it
      is there (the champion's training data), else built the same way.
    * an event log: that log and its features (via :func:`churnlib.training.training_table`).
    * a snapshot table: not usable -- monitoring compares two windows of an event log -- so the
      simulated default log is used instead, and a note says so.
    """
    from churnlib import features
    from churnlib.datasets import default_event_log
    from churnlib.load import detect_kind, load_events
    from churnlib.training import training_table

    notes: list[str] = []
    kind = (data_kind or detect_kind(Path(data))) if data is not None else None
    if kind is not None and kind != "events":
        notes.append(f"`{data}` is a one-row-per-user table: drift monitoring compares two windows of an event "
                     "log, so the simulated default log is the reference instead.")
    log = Path(data) if kind == "events" else default_event_log(n_users, days, seed, output_dir=output_dir)
    events = load_events(log).events
    start = pd.Timestamp(events["ts"].min(), unit="ms", tz="UTC").floor("D")
    n_log_users = int(events.loc[events["userId"] != "", "userId"].nunique())
    table = source = None
    if kind in (None, "events"):
        table, _, _, source, _ = training_table(data if kind == "events" else None, "events" if kind else None,
                                                n_users=n_users, days=days, seed=seed, horizon_days=horizon_days,
                                                output_dir=output_dir)
    if table is None or not {"userId", "as_of", "churned"} <= set(table.columns):
        dates = features.observation_dates(events, horizon_days)
        table = features.build_features(events, dates, horizon_days=horizon_days)
        source = f"features built from the event log `{log}` ({len(dates)} observation dates)"
    # a log written by churnlib.datasets.default_event_log names its size and seed
    sim = re.match(r"simulated_u\d+_d[\d.]+_s(\d+)_", log.name)
    if sim is None:
        notes.append("The new windows are simulated by the built-in simulator while the reference log is not: part "
                     "of any drift below is the gap between the simulator and the real service.")
    catalogue_seed = int(sim.group(1)) if sim else seed
    return ReferenceWindow(stable_floats(table), log, start, n_log_users, sim is not None, catalogue_seed, source,
                           notes)


# --------------------------------------------------------------------------------------------
# False alarms
# --------------------------------------------------------------------------------------------

@dataclass
class FalseAlarmResult:
    """How often the monitor fires on two fresh samples of the same process.

    Attributes
    ----------
    rate : churnlib.eda.Rate
        Pairs with at least one drifted feature, of all pairs (Wilson interval).
    n_drifted : numpy.ndarray
        Drifted features per pair.
    by_feature : pandas.Series
        How many pairs flagged each feature (features never flagged left out).
    n_reference, n_current : list of int
        Rows of each pair's two samples.
    """

    rate: Any
    n_drifted: np.ndarray
    by_feature: pd.Series
    n_reference: list[int]
    n_current: list[int]

    def as_list(self) -> list[float]:
        """``[rate, low, high]``."""
        lo, hi = self.rate.interval
        return [float(self.rate.value), float(lo), float(hi)]

    def statement(self) -> str:
        """A plain sentence on the false-alarm rate."""
        lo, hi = self.rate.interval
        n = self.rate.total
        txt = (f"On {n} pairs of fresh samples from the same process the monitor fired {self.rate.count} times: "
               f"a false-alarm rate of {self.rate.value:.0%} (95% interval {lo:.0%}–{hi:.0%}).")
        if n < 30:
            txt += f" With {n} pairs the interval is wide; more pairs narrow it."
        if self.rate.value > 0.1:
            top = ", ".join(self.by_feature.head(3).index)
            txt += (f" That is high: most alarms come from {top}. Raise the thresholds, require more rows per "
                    "window, or ignore those features.")
        return txt


def false_alarm_rate(n_samples: int = 10, *, n_users: int = 300, n_users_reference: int | None = None,
                     days: float = 60, seed: int = 1000, catalogue_seed: int = 7, start: str = "2018-10-01",
                     horizon_days: float = 14, as_of: str | None = None, base=None,
                     features: Sequence[str] | None = None, psi_threshold: float = PSI_THRESHOLD,
                     ks_threshold: float = KS_THRESHOLD, bins: int = 10, min_rows: int = MIN_ROWS) -> FalseAlarmResult:
    """Run the monitor on ``n_samples`` pairs of fresh samples from one process and count alarms.

    The simulator gives every user an independent random stream, so one log of
    ``n_samples * (n_users_reference + n_users)`` users cut into consecutive blocks of users is
    ``2 * n_samples`` independent samples (one feature build instead of many).

    Parameters
    ----------
    n_samples : int
        Pairs compared.
    n_users, n_users_reference : int
        Simulated users of the new and of the reference sample of each pair (``n_users_reference``
        defaults to ``n_users``); use the sizes of the windows being monitored, since the false
        alarms depend on them.
    days, seed, catalogue_seed, start, horizon_days, base
        The simulated process and its log (see :func:`simulate_window`); the samples are the users
        current at the latest observation date that leaves ``horizon_days`` of log (as in
        :func:`scenario_window`).
    as_of : str, optional
        The observation date instead (e.g. the reference window's).
    features, psi_threshold, ks_threshold, bins, min_rows
        As for :func:`drift_report`.

    Returns
    -------
    FalseAlarmResult
    """
    from churnlib import features as feats
    from churnlib.eda import Rate

    n_ref = n_users_reference or n_users
    block = n_ref + n_users
    from churnlib.labels import to_epoch_ms
    from churnlib.schema import CHURN_PAGE

    import duckdb

    with tempfile.TemporaryDirectory(prefix="churnlib-false-alarms-") as tmp:
        events = simulate_window(scenario_config("same_process", base), n_users=n_samples * block, days=days,
                                 seed=seed, catalogue_seed=catalogue_seed, start=start,
                                 out=Path(tmp) / "events.parquet")
        t = to_epoch_ms(as_of if as_of is not None else feats.observation_dates(events, horizon_days)[-1])
        # the users a feature table holds at that date: active before it and not yet cancelled (the
        # eligibility of churnlib.labels.observation_labels; drift needs no labels, so none are built)
        table = stable_floats(feats.user_features(events, t))
        with duckdb.connect() as con:
            gone = con.execute("SELECT DISTINCT CAST(userId AS VARCHAR) FROM read_parquet(?) WHERE page = ? AND ts < ?",
                               [str(events), CHURN_PAGE, t]).fetchall()
    table = table[~table["userId"].isin({g[0] for g in gone})].reset_index(drop=True)
    idx = table["userId"].astype(int).to_numpy() - 1
    pair, offset = idx // block, idx % block
    counts, flagged, n_r, n_c = [], {}, [], []
    for i in range(n_samples):
        ref = table[(pair == i) & (offset < n_ref)]
        cur = table[(pair == i) & (offset >= n_ref)]
        rep = drift_report(ref, cur, features=features, psi_threshold=psi_threshold, ks_threshold=ks_threshold,
                           bins=bins, min_rows=min_rows)
        counts.append(len(rep.drifted))
        n_r.append(len(ref))
        n_c.append(len(cur))
        for f in rep.drifted["feature"]:
            flagged[f] = flagged.get(f, 0) + 1
    counts = np.array(counts)
    by = pd.Series(flagged, dtype="int64").sort_values(ascending=False, kind="mergesort")
    return FalseAlarmResult(Rate(int((counts > 0).sum()), n_samples), counts, by, n_r, n_c)


# --------------------------------------------------------------------------------------------
# Performance on newly labelled users
# --------------------------------------------------------------------------------------------

def _proba(model, X: pd.DataFrame) -> np.ndarray:
    from churnlib.artifact import LoadedModel
    from churnlib.scoring import prepare_inputs

    if isinstance(model, LoadedModel):
        return model.estimator.predict_proba(prepare_inputs(model, X))[:, 1]
    return model.predict_proba(X)[:, 1]


def _threshold(model, threshold: float | None) -> float:
    if threshold is not None:
        return float(threshold)
    return float(getattr(model, "threshold", 0.5))


def performance_check(model, reference_frame: pd.DataFrame, y_ref: Sequence, new_frame: pd.DataFrame,
                      y_new: Sequence, *, groups_ref: Sequence | None = None, groups_new: Sequence | None = None,
                      threshold: float | None = None, n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """The model's metrics on the reference and on newly labelled users, with 95% intervals.

    Parameters
    ----------
    model : churnlib.artifact.LoadedModel or fitted classifier
        A loaded artifact (its feature columns are picked from the frames) or anything with
        ``predict_proba`` taking the frames as they are.
    reference_frame, y_ref : DataFrame, array of 0/1
        Users of the reference process the model never saw, and their labels.
    new_frame, y_new : DataFrame, array of 0/1
        Newly labelled users of the new window.
    groups_ref, groups_new : arrays, optional
        User ids: the bootstrap resamples users (a user's rows at several dates stay together).
    threshold : float, optional
        Decision threshold for F1/precision/recall (default: the artifact's, else 0.5).
    n_bootstrap, seed : int
        Bootstrap replicates and seed of the intervals.

    Returns
    -------
    pandas.DataFrame
        Index :data:`churnlib.evaluation.METRICS`; columns ``reference``, ``reference_low``,
        ``reference_high``, ``current``, ``current_low``, ``current_high`` and ``change``
        (current minus reference).
    """
    t = _threshold(model, threshold)
    out = {}
    for name, X, y, g in (("reference", reference_frame, y_ref, groups_ref), ("current", new_frame, y_new, groups_new)):
        y = np.asarray(y).astype(int)
        p = _proba(model, X)
        m = ev.evaluate_predictions(y, p, p >= t, None if g is None else np.asarray(g), n_bootstrap=n_bootstrap,
                                    seed=seed)
        out[name], out[f"{name}_low"], out[f"{name}_high"] = m["value"], m["low"], m["high"]
    df = pd.DataFrame(out)
    df["change"] = df["current"] - df["reference"]
    return df


def _degraded(performance: pd.DataFrame, metric: str) -> bool:
    row = performance.loc[metric]
    # the reference's point estimate lies above the new window's whole 95% interval
    return bool(np.isfinite(row["current_high"]) and row["current_high"] < row["reference"])


def retrain_recommendation(drift: DriftReport, performance: pd.DataFrame | None, *,
                           metric: str = "roc_auc") -> str:
    """A plain recommendation from the drift report and the performance check.

    Retrain when the model is measurably worse on newly labelled users (the reference's value lies
    above the new window's 95% interval), whether or not inputs drifted; investigate when inputs
    drifted but performance holds; otherwise no action.

    Parameters
    ----------
    drift : DriftReport
    performance : pandas.DataFrame or None
        From :func:`performance_check`; None when no labels are available yet.
    metric : str, default "roc_auc"
        The metric judged (ROC-AUC does not move with the churn rate itself, PR-AUC does).
    """
    label = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}.get(metric, metric)
    what = drift.summary(top=3)
    if performance is None or not np.isfinite(performance.loc[metric, "current"]):
        perf = f"{label} on newly labelled users cannot be measured yet (no labels, or only one class)"
        if drift.fired:
            return (f"Investigate: {what} {perf}; retrain only if the change is lasting and the labels, once "
                    "they arrive, show the model slipping.")
        return f"No action: {what} {perf}."
    r = performance.loc[metric]
    ref = f"{r['reference']:.3f} ({r['reference_low']:.3f}–{r['reference_high']:.3f})"
    cur = f"{r['current']:.3f} ({r['current_low']:.3f}–{r['current_high']:.3f})"
    if _degraded(performance, metric):
        cause = ("" if drift.fired else " No input feature drifted, so the link between behaviour and churn "
                 "itself may have changed.")
        return (f"Retrain: {label} on newly labelled users fell to {cur} from {ref} on the reference. {what}"
                f"{cause} Refit the same pipeline on recent data and let it replace the champion only if it "
                "scores better on the same held-out users.")
    if drift.fired:
        return (f"Investigate, no retraining needed yet: {what} {label} on newly labelled users, {cur}, is "
                f"consistent with the reference {ref}. Check whether the change is intended, and re-check as "
                "more labels arrive.")
    return (f"No action: {what} {label} on newly labelled users, {cur}, is consistent with the reference "
            f"{ref}.")


# --------------------------------------------------------------------------------------------
# Champion / challenger
# --------------------------------------------------------------------------------------------

def load_champion(table: pd.DataFrame, *, model_path: str | os.PathLike | None = None,
                  output_dir: str | os.PathLike | None = None, id_col: str = "userId", label_col: str = "churned",
                  fallback_model: str = "lightgbm", seed: int = 0, n_jobs: int = 1):
    """The champion: the artifact ``05_models`` saved, else a small one trained on ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
        The reference window's feature table (the champion's training data).
    model_path : path-like, optional
        An artifact to use (default: ``models/churn_model.joblib`` under the output root).
    output_dir : path-like, optional
        Output root (see :func:`churnlib.paths.output_root`).
    id_col, label_col : str
        Columns of ``table``.
    fallback_model : str, default "lightgbm"
        Registry model of the fallback champion.
    seed, n_jobs : int
        For the fallback training.

    Returns
    -------
    (LoadedModel, str)
        The model and a plain description of where it came from. When the artifact is missing,
        unreadable or needs columns ``table`` lacks (e.g. a model trained on a snapshot table), a
        CI-sized champion is fitted on ``table``: the registry pipeline ``fallback_model`` with
        defaults (:func:`churnlib.models.make_pipeline`) and an F1 threshold from group-aware
        out-of-fold predictions. It is kept in memory only: nothing is written over the report's
        final model.
    """
    from churnlib import paths
    from churnlib.artifact import ArtifactError, LoadedModel, load_artifact
    from churnlib.training import ARTIFACT_NAME

    path = Path(model_path) if model_path is not None else paths.models_dir(output_dir) / ARTIFACT_NAME
    why = f"no model at `{path}`"
    if path.exists():
        try:
            model = load_artifact(path)
        except ArtifactError as exc:
            why = f"the model at `{path}` cannot be used ({exc})"
        else:
            lacking = [c for c in model.feature_names if c not in table.columns]
            if not lacking:
                m = model.manifest.get("model", {})
                return model, (f"the champion saved by 05_models (`{path}`: {m.get('model', '?')} / "
                               f"{m.get('strategy', '?')}, calibration {model.manifest.get('calibration')})")
            why = f"the model at `{path}` needs {len(lacking)} column(s) the event-log features lack"
    from churnlib import thresholds as th
    from churnlib.models import feature_frame, make_pipeline
    from churnlib.training import _schema

    X = feature_frame(table, id_col, label_col)
    y = table[label_col].to_numpy().astype(int)
    g = table[id_col].astype(str).to_numpy()
    pipe = make_pipeline(fallback_model, "none", seed=seed, n_jobs=n_jobs)
    oof = ev.oof_predict(pipe, X, y, ev.cv_splits(y, g, 3, 1, seed), n_jobs=1)[0]
    threshold = th.f1_threshold(y, oof)
    bands = th.RiskBands.from_threshold(threshold)
    model = LoadedModel(estimator=clone(pipe).fit(X, y), threshold=threshold,
                        risk_bands={"medium_from": bands.medium_from, "high_from": bands.high_from},
                        feature_schema=_schema(X), id_col=id_col,
                        manifest={"model": {"model": fallback_model, "strategy": "none"}, "calibration": None})
    return model, (f"a CI-sized champion trained here on the reference window ({fallback_model}, registry defaults, "
                   f"F1 threshold {threshold:.3f} from out-of-fold predictions; kept in memory only), because {why}")


@dataclass
class ChallengeResult:
    """The champion and a refitted challenger scored on the same held-out users.

    Attributes
    ----------
    decision : str
        ``"replaced"`` or ``"kept champion"``.
    metric : str
        The deciding metric.
    champion, challenger : tuple of float
        ``(value, low, high)`` of the metric on the held-out users (95% bootstrap over users).
    difference : tuple of float
        Challenger minus champion, ``(value, low, high)`` from a paired bootstrap (the same
        resampled users score both models).
    rule : str
        The replacement rule in words.
    reason : str
        Why the decision was taken.
    champion_metrics, challenger_metrics : pandas.DataFrame
        Every metric with intervals on the held-out users.
    challenger_model
        The fitted challenger (calibrated like the champion when the champion was).
    challenger_threshold : float
        Its F1-optimal threshold on out-of-fold predictions of its training rows.
    n_train, n_holdout : int
        Rows the challenger was fitted on and rows both were scored on.
    """

    decision: str
    metric: str
    champion: tuple[float, float, float]
    challenger: tuple[float, float, float]
    difference: tuple[float, float, float]
    rule: str
    reason: str
    champion_metrics: pd.DataFrame
    challenger_metrics: pd.DataFrame
    challenger_model: Any
    challenger_threshold: float
    n_train: int
    n_holdout: int
    info: dict = field(default_factory=dict)

    @property
    def replaced(self) -> bool:
        return self.decision == "replaced"

    def record(self, when: str, context: dict | None = None) -> dict[str, Any]:
        """The entry appended to ``champion_history.json``."""
        return {"when": when, "decision": self.decision, "metric": self.metric, "rule": self.rule,
                "champion": list(self.champion), "challenger": list(self.challenger),
                "difference": list(self.difference), "reason": self.reason,
                "challenger_threshold": self.challenger_threshold,
                "n_train": self.n_train, "n_holdout": self.n_holdout, **(context or {})}


def _pipeline_of(champion) -> tuple[Any, str | None]:
    """The champion's unfitted pipeline and its calibration method (None: not calibrated)."""
    from churnlib.artifact import LoadedModel
    from churnlib.thresholds import CalibratedModel

    est = champion.estimator if isinstance(champion, LoadedModel) else champion
    if isinstance(est, CalibratedModel):
        return clone(est.estimator), est.method
    return clone(est), None


def _paired_bootstrap(y, p_a, p_b, groups, metric: str, n_bootstrap: int, seed: int) -> np.ndarray:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from churnlib.intervals import bootstrap_sampler

    score = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score}[metric]
    draw = bootstrap_sampler(None if groups is None else np.asarray(groups), len(y), np.random.default_rng(seed))
    diffs = []
    for _ in range(n_bootstrap):
        idx = draw()
        if 0 < y[idx].sum() < len(idx):
            diffs.append(score(y[idx], p_b[idx]) - score(y[idx], p_a[idx]))
    return np.asarray(diffs)


def challenge(champion, X_train: pd.DataFrame, y_train: Sequence, X_holdout: pd.DataFrame, y_holdout: Sequence, *,
              groups_train: Sequence | None = None, groups_holdout: Sequence | None = None, challenger=None,
              metric: str = "pr_auc", rule: str = "paired", n_splits: int = 3, n_bootstrap: int = 200,
              seed: int = 0) -> ChallengeResult:
    """Refit the champion's pipeline as a challenger and decide which model to keep.

    Parameters
    ----------
    champion : churnlib.artifact.LoadedModel or fitted classifier
        The model in use.
    X_train, y_train : DataFrame, array of 0/1
        The challenger's training rows: the reference window plus the newly labelled users that are
        not held out.
    X_holdout, y_holdout : DataFrame, array of 0/1
        Held-out new users that neither model was fitted on; both are scored on them.
    groups_train, groups_holdout : arrays, optional
        User ids (group-aware folds for the challenger's out-of-fold threshold; bootstrap over users).
    challenger : estimator, optional
        Unfitted pipeline to use instead of a clone of the champion's (e.g. for tests).
    metric : {"pr_auc", "roc_auc"}, default "pr_auc"
        The deciding metric (PR-AUC chooses the champion in ``05_models``; both models are scored on
        the same users, so the churn rate that sets PR-AUC's baseline is the same for both).
    rule : {"paired", "point"}, default "paired"
        ``"paired"``: replace only when the 95% paired-bootstrap interval of challenger minus
        champion lies above 0 (a swap has costs -- re-validation, scores that change for users
        already contacted -- so a win within the noise does not justify one). ``"point"``: replace
        on a strictly higher point estimate.
    n_splits : int
        Folds of the out-of-fold predictions that set the challenger's threshold (and calibration).
    n_bootstrap, seed : int

    Returns
    -------
    ChallengeResult
    """
    from churnlib import thresholds as th
    from churnlib.artifact import LoadedModel
    from churnlib.scoring import prepare_inputs

    if rule not in ("paired", "point"):
        raise ValueError(f"rule must be 'paired' or 'point', got {rule!r}")
    if metric not in ("pr_auc", "roc_auc"):
        raise ValueError(f"metric must be 'pr_auc' or 'roc_auc', got {metric!r}")
    y_tr = np.asarray(y_train).astype(int)
    y_ho = np.asarray(y_holdout).astype(int)
    if isinstance(champion, LoadedModel):
        X_train, X_holdout = prepare_inputs(champion, X_train), prepare_inputs(champion, X_holdout)
    pipe, method = _pipeline_of(champion) if challenger is None else (clone(challenger), None)
    splits = ev.cv_splits(y_tr, None if groups_train is None else np.asarray(groups_train), n_splits, 1, seed)
    oof = ev.oof_predict(pipe, X_train, y_tr, splits)[0]
    fitted = clone(pipe).fit(X_train, y_tr)
    model = fitted if method is None else th.CalibratedModel(fitted, method, oof, y_tr)
    if method is not None:
        oof = th._apply_calibrator(method, model.calibrator_, oof)
    t_chal = th.f1_threshold(y_tr, oof)
    t_champ = _threshold(champion, None)
    p_champ = _proba(champion.estimator if isinstance(champion, LoadedModel) else champion, X_holdout)
    p_chal = model.predict_proba(X_holdout)[:, 1]
    g = None if groups_holdout is None else np.asarray(groups_holdout)
    m_champ = ev.evaluate_predictions(y_ho, p_champ, p_champ >= t_champ, g, n_bootstrap=n_bootstrap, seed=seed)
    m_chal = ev.evaluate_predictions(y_ho, p_chal, p_chal >= t_chal, g, n_bootstrap=n_bootstrap, seed=seed)
    diffs = _paired_bootstrap(y_ho, p_champ, p_chal, g, metric, n_bootstrap, seed)
    d = float(m_chal.loc[metric, "value"] - m_champ.loc[metric, "value"])
    d_lo, d_hi = ((float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))) if len(diffs)
                  else (float("nan"), float("nan")))
    label = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC"}.get(metric, metric)
    if rule == "paired":
        better = bool(np.isfinite(d_lo) and d_lo > 0)
        rule_text = (f"replace only when the paired-bootstrap 95% interval of the {label} gain on the same "
                     "held-out users lies above 0")
    else:
        better = d > 0
        rule_text = f"replace when the challenger's {label} on the same held-out users is strictly higher"
    gain = f"{label} gain {d:+.3f} (95% interval {d_lo:+.3f} to {d_hi:+.3f}) on {len(y_ho)} held-out rows"
    reason = (f"the challenger is better: {gain}" if better else
              f"the challenger is not clearly better: {gain}")
    row = lambda m: tuple(float(m.loc[metric, k]) for k in ("value", "low", "high"))  # noqa: E731
    return ChallengeResult(decision="replaced" if better else "kept champion", metric=metric, champion=row(m_champ),
                           challenger=row(m_chal), difference=(d, d_lo, d_hi), rule=rule_text, reason=reason,
                           champion_metrics=m_champ, challenger_metrics=m_chal, challenger_model=model,
                           challenger_threshold=float(t_chal), n_train=int(len(y_tr)), n_holdout=int(len(y_ho)),
                           info={"calibration": method, "champion_threshold": t_champ})


def _write_json(path: Path, obj: Any) -> None:
    from churnlib.artifact import _atomic_write, _jsonable

    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False)))


def record_decision(result: ChallengeResult, path: str | os.PathLike, *, when: str,
                    context: dict | None = None) -> list[dict]:
    """Append the decision and both scores to a JSON history file (a list of entries).

    Parameters
    ----------
    result : ChallengeResult
    path : path-like
        ``champion_history.json`` (created when absent).
    when : str
        When the decision applies -- take it from the data (e.g. the new window's last observation
        date), so the same data give the same file.
    context : dict, optional
        Anything else to keep (scenario, data descriptions, model names).

    Returns
    -------
    list of dict
        The whole history after appending.
    """
    path = Path(path)
    history = json.loads(path.read_text()) if path.exists() else []
    if not isinstance(history, list):
        raise ValueError(f"{path}: expected a JSON list of decisions")
    history.append(result.record(when, context))
    _write_json(path, history)
    return history


def save_challenger(result: ChallengeResult, out_dir: str | os.PathLike, *, feature_schema: list[dict[str, str]],
                    id_col: str = "userId", metadata: dict | None = None) -> Path:
    """Save the challenger as an artifact (``churn_model.joblib`` + manifest) in ``out_dir``.

    Returns
    -------
    pathlib.Path
        The artifact file.
    """
    from churnlib.artifact import save_artifact
    from churnlib.thresholds import RiskBands

    bands = RiskBands.from_threshold(result.challenger_threshold)
    path = Path(out_dir) / "churn_model.joblib"
    save_artifact(result.challenger_model, path, threshold=result.challenger_threshold,
                  risk_bands={"medium_from": bands.medium_from, "high_from": bands.high_from},
                  feature_schema=feature_schema, id_col=id_col,
                  metadata={"challenge": result.record(str((metadata or {}).get("when", ""))), **(metadata or {})})
    return path


# --------------------------------------------------------------------------------------------
# Summary for the stakeholder report
# --------------------------------------------------------------------------------------------

def _triple(row: pd.Series, prefix: str) -> list[float]:
    return [float(row[prefix]), float(row[f"{prefix}_low"]), float(row[f"{prefix}_high"])]


def monitoring_summary(*, reference: str, current: str, drift: DriftReport, performance: pd.DataFrame | None,
                       recommendation: str, false_alarms: FalseAlarmResult | None,
                       challenge_result: ChallengeResult | None, scenarios: dict[str, DriftReport]) -> dict:
    """The content of ``monitoring.json`` (read by the stakeholder summary).

    Returns
    -------
    dict
        Keys ``reference``, ``current``, ``drifted_features`` (feature, psi, ks), ``n_features_checked``,
        ``performance`` (reference/current: roc_auc and pr_auc as ``[value, low, high]``),
        ``recommendation``, ``false_alarm_rate`` (``[rate, low, high]``), ``n_false_alarm_samples``,
        ``challenger`` (decision, metric, champion, challenger) and ``scenarios`` (per name:
        ``n_drifted``, ``fired``).
    """
    perf = None
    if performance is not None:
        perf = {w: {m: _triple(performance.loc[m], w) for m in ("roc_auc", "pr_auc")}
                for w in ("reference", "current")}
    return {
        "reference": reference,
        "current": current,
        "drifted_features": [{"feature": r.feature, "psi": round(float(r.psi), 4),
                              "ks": None if not np.isfinite(r.ks) else round(float(r.ks), 4)}
                             for r in drift.drifted.itertuples()],
        "n_features_checked": drift.n_checked,
        "performance": perf,
        "recommendation": recommendation,
        "false_alarm_rate": None if false_alarms is None else false_alarms.as_list(),
        "n_false_alarm_samples": None if false_alarms is None else int(false_alarms.rate.total),
        "challenger": None if challenge_result is None else {
            "decision": challenge_result.decision, "metric": challenge_result.metric,
            "champion": list(challenge_result.champion), "challenger": list(challenge_result.challenger)},
        "scenarios": {name: {"n_drifted": int(len(rep.drifted)), "fired": rep.fired}
                      for name, rep in scenarios.items()},
    }


def write_summary(summary: dict, path: str | os.PathLike) -> Path:
    """Write :func:`monitoring_summary` output as JSON (NaN becomes null)."""
    path = Path(path)
    _write_json(path, summary)
    return path


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def _names(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plot_drift(reports: dict[str, DriftReport], top: int = 15):
    """Heatmap of PSI per feature (rows) and scenario (columns), drifted cells marked.

    Rows: the features with the largest PSI in any scenario (at most ``top``). The title says which
    scenarios fired and which stayed quiet.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    psi_tab = pd.DataFrame({k: r.table.set_index("feature")["psi"] for k, r in reports.items()})
    flag = pd.DataFrame({k: r.table.set_index("feature")["drifted"] for k, r in reports.items()})
    rows = psi_tab.max(axis=1).sort_values(ascending=False, kind="mergesort").head(top).index
    psi_tab, flag = psi_tab.loc[rows], flag.loc[rows]
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(reports), 0.5 + 0.32 * len(rows)))
    labels = psi_tab.round(2).astype(str).where(~flag, psi_tab.round(2).astype(str) + " *")
    thr = next(iter(reports.values())).psi_threshold
    sns.heatmap(psi_tab.astype(float), annot=labels, fmt="", cmap="Reds", vmin=0, vmax=max(2 * thr, 0.5),
                cbar_kws={"label": "PSI"}, ax=ax, linewidths=0.5)
    fired = [k for k, r in reports.items() if r.fired]
    quiet = [k for k, r in reports.items() if not r.fired]
    title = (f"The monitor fired for {_names(fired)}" if fired else "The monitor fired for no scenario")
    if quiet:
        title += f"; {_names(quiet)} stayed quiet"
    ax.set_title(title)
    ax.set_xlabel("scenario (* drifted: PSI or KS above its threshold)")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_performance(performance: pd.DataFrame, challenge_result: ChallengeResult | None = None,
                     metrics: Sequence[str] = ("roc_auc", "pr_auc")):
    """Point estimates and 95% intervals: reference vs new window, and champion vs challenger."""
    import matplotlib.pyplot as plt

    panels = 2 if challenge_result is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    for j, (window, colour) in enumerate((("reference", "#4C72B0"), ("current", "#DD8452"))):
        for i, m in enumerate(metrics):
            r = performance.loc[m]
            ax.errorbar(i + (j - 0.5) * 0.25, r[window], yerr=[[r[window] - r[f"{window}_low"]],
                                                                  [r[f"{window}_high"] - r[window]]],
                        fmt="o", color=colour, capsize=4, label=window if i == 0 else None)
    ax.set_xticks(range(len(metrics)), [m.replace("_", "-").upper() for m in metrics])
    ax.set_xlim(-0.5, len(metrics) - 0.5)
    ax.set_ylabel("on users the model never saw")
    ax.legend(frameon=False, title="window")
    label = "ROC-AUC"
    r = performance.loc["roc_auc"]
    ax.set_title(f"{label} {'fell' if _degraded(performance, 'roc_auc') else 'held'} on the new window "
                 f"({r['reference']:.2f} → {r['current']:.2f})", fontsize=10)
    if challenge_result is not None:
        ax = axes[0, 1]
        c = challenge_result
        for i, (name, trip, colour) in enumerate((("champion", c.champion, "#4C72B0"),
                                                  ("challenger", c.challenger, "#55A868"))):
            ax.errorbar(i, trip[0], yerr=[[trip[0] - trip[1]], [trip[2] - trip[0]]], fmt="o", color=colour,
                        capsize=4)
        ax.set_xticks([0, 1], ["champion", "challenger"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylabel(c.metric.replace("_", "-").upper() + " on held-out new users")
        ax.set_title(f"Challenger {'replaces' if c.replaced else 'does not replace'} the champion: gain "
                     f"{c.difference[0]:+.3f} (95% {c.difference[1]:+.3f} to {c.difference[2]:+.3f})", fontsize=10)
    fig.tight_layout()
    return fig
