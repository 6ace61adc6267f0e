"""The stakeholder summary: plain-words sections for ``notebooks/09_summary.ipynb``.

Every function here is pure: it turns what the earlier notebooks wrote (``models/metrics.json``,
``data/processed/risk_scores.parquet``, ``drivers.csv``, ``monitoring.json``) and the input data into a
:class:`Section` -- a headline that states the finding, a Markdown paragraph and, where useful, a
table. A section whose input is missing degrades to one sentence ("Not available in this run: ...")
so the summary also runs on its own.

Numbers carry their 95% interval wherever one exists. When the model found no detectable signal
(``metrics.json``: permutation test and holdout interval), the summary says so first and does not
present the risk list or the retention actions as something to act on.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlib import paths
from churnlib.eda import Rate, churn_rate
from churnlib.intervals import Interval
from churnlib.artifact import manifest_path
from churnlib.model import ARTIFACT_NAME
from churnlib.model_report import leakage_sentence, summary_sentences
from churnlib.pipeline import upstream_mismatch
from churnlib import survival_report

__all__ = [
    "Section", "SummaryInputs", "Trend", "signal_detected", "ACTION_RULES", "load_inputs", "not_available", "signal_section",
    "churn_rate_section", "churn_trend", "trend_section", "plot_churn_trend", "model_quality_section",
    "still_customers", "top_users_section", "drivers_section", "plot_drivers", "reason_family", "retention_actions",
    "actions_section", "data_quality_section", "changes_section", "key_numbers", "model_sha256",
    "retention_section",
]

#: File names the earlier notebooks write (under ``models_dir`` / ``processed_data_dir``).
METRICS_FILE = "metrics.json"
RISK_SCORES_FILE = "risk_scores.parquet"
DRIVERS_FILE = "drivers.csv"
MONITORING_FILE = "monitoring.json"
FEATURES_FILE = "features.parquet"


@dataclass
class Section:
    """One part of the summary.

    Attributes
    ----------
    title : str
        Headline that states the finding (not just the topic).
    text : str
        Markdown: the finding in plain words, numbers with their 95% intervals.
    table : pandas.DataFrame or None
        A table to show under the text.
    available : bool
        False when the section's input was missing (``text`` then says so in one sentence).
    numbers : dict of str to str
        Headline numbers for the report index.
    """

    title: str
    text: str
    table: pd.DataFrame | None = None
    available: bool = True
    numbers: dict[str, str] = field(default_factory=dict)

    def markdown(self, level: int = 2) -> str:
        """The headline and the text as one Markdown string."""
        return f"{'#' * level} {self.title}\n\n{self.text}"


def not_available(title: str, what: str, reason: str) -> Section:
    """The one-sentence stand-in for a section whose input is missing."""
    return Section(title, f"Not available in this run: {what} ({reason}).", available=False)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

@dataclass
class SummaryInputs:
    """What the earlier notebooks wrote; ``None`` for each file that is missing or unreadable.

    Attributes
    ----------
    metrics : dict or None
        ``models_dir/metrics.json`` (05_models).
    risk_scores : pandas.DataFrame or None
        ``processed_data_dir/risk_scores.parquet`` (06_explanations).
    drivers : pandas.DataFrame or None
        ``processed_data_dir/drivers.csv`` (06_explanations).
    monitoring : dict or None
        ``processed_data_dir/monitoring.json`` (07_monitoring).
    missing : dict of str to str
        Input name -> why it is missing (file absent or unreadable).
    """

    metrics: dict | None = None
    risk_scores: pd.DataFrame | None = None
    drivers: pd.DataFrame | None = None
    monitoring: dict | None = None
    missing: dict[str, str] = field(default_factory=dict)


def model_sha256(output_dir: str | os.PathLike | None = None) -> str | None:
    """SHA-256 of the model in ``models/`` (from its manifest); None when there is none."""
    manifest = manifest_path(paths.models_dir(output_dir) / ARTIFACT_NAME)
    try:
        return json.loads(manifest.read_text()).get("sha256")
    except (OSError, ValueError):
        return None


def load_inputs(output_dir: str | os.PathLike | None = None) -> SummaryInputs:
    """Read the earlier notebooks' outputs from the output root, tolerating missing files.

    Parameters
    ----------
    output_dir
        Output root; see :func:`churnlib.paths.output_root`.

    Returns
    -------
    SummaryInputs
    """
    files = {
        "metrics": paths.models_dir(output_dir) / METRICS_FILE,
        "risk_scores": paths.processed_data_dir(output_dir) / RISK_SCORES_FILE,
        "drivers": paths.processed_data_dir(output_dir) / DRIVERS_FILE,
        "monitoring": paths.processed_data_dir(output_dir) / MONITORING_FILE,
    }
    readers = {"metrics": lambda p: json.loads(p.read_text()), "monitoring": lambda p: json.loads(p.read_text()),
               "risk_scores": pd.read_parquet, "drivers": pd.read_csv}
    out = SummaryInputs()
    # products of 06/07 stamped with the model they explain: one made by another model is not shown
    model = model_sha256(output_dir)
    for name, path in files.items():
        if not path.exists():
            out.missing[name] = f"`{path.name}` was not written"
            continue
        stale = upstream_mismatch(path, "model", model) if name != "metrics" else None
        if stale:
            out.missing[name] = stale
            continue
        try:
            setattr(out, name, readers[name](path))
        except (ValueError, OSError) as exc:  # a half-written or foreign file: say so, do not fail
            out.missing[name] = f"`{path.name}` could not be read: {type(exc).__name__}"
    return out


# --------------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------------

def _interval(x: Any) -> Interval | None:
    """An :class:`Interval` from ``[v, lo, hi]`` or ``{"value", "low", "high"}``; None if absent or no value."""
    try:
        iv = Interval.from_value(x)
    except (TypeError, ValueError):
        return None
    return None if iv is None or math.isnan(iv.value) else iv


def _ci(lo: float, hi: float, fmt: str = "{:.2f}") -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "no interval"
    return f"95% interval {fmt.format(lo)}–{fmt.format(hi)}"


def _in_n(p: float) -> tuple[int, int]:
    """A share as 'k in n' with n = 10, or 100 when the share is small enough to round to 0 in 10."""
    n = 10 if p >= 0.095 else 100
    return int(round(p * n)), n


def _k_in_n(p: float, n: int) -> str:
    """``p * n`` with one decimal, as precise as the interval printed beside it ("2.7", "3")."""
    return f"{p * n:.1f}".rstrip("0").rstrip(".")


def _rate_text(rate: Rate) -> str:
    lo, hi = rate.interval
    return f"{rate.value:.1%} (95% interval {lo:.1%}–{hi:.1%}; {rate.count:,} of {rate.total:,})"


# --------------------------------------------------------------------------------------------
# Signal, churn rate and its trend
# --------------------------------------------------------------------------------------------

def signal_detected(metrics: dict | None) -> bool | None:
    """True/False from ``metrics.json``; None when there is no model to judge."""
    if not metrics or "signal_detected" not in metrics:
        return None
    return bool(metrics["signal_detected"])


def signal_section(metrics: dict | None) -> Section:
    """Whether the model found a churn signal: the first thing a reader must know.

    Parameters
    ----------
    metrics : dict or None
        The content of ``metrics.json``.

    Returns
    -------
    Section
    """
    detected = signal_detected(metrics)
    if detected is None:
        return not_available("Can churn be predicted from this data?", "whether the model found a churn signal",
                             "no model metrics (`metrics.json`) were written")
    statement = metrics.get("signal_statement") or ""
    if detected:
        return Section("The model finds a real churn signal", statement + " The risk list below can be acted on.",
                       numbers={"Signal detected": "yes"})
    return Section("No detectable churn signal: do not act on the risk scores",
                   f"**{statement}** The risk list, drivers and actions below are therefore shown for "
                   "information only, not as a to-do list.", numbers={"Signal detected": "no"})


def churn_rate_section(labels: pd.Series, what: str = "users") -> Section:
    """The churn rate with its 95% Wilson interval (:func:`churnlib.eda.churn_rate`).

    Parameters
    ----------
    labels : pandas.Series of 0/1
        One label per user.
    what : str
        How the rows are called in the text.

    Returns
    -------
    Section
    """
    labels = pd.Series(labels).dropna()
    if labels.empty:
        return not_available("Churn rate", "the churn rate", "the data holds no labelled users")
    rate = churn_rate(labels)
    lo, hi = rate.interval
    return Section(f"About {_in_n(rate.value)[0]} in {_in_n(rate.value)[1]} {what} churned",
                   f"**{_rate_text(rate)}** of {what} churned.",
                   numbers={"Churn rate": Interval(rate.value, lo, hi).text(1, percent=True)})


@dataclass
class Trend:
    """Churn rate per observation date and the linear trend across dates.

    Attributes
    ----------
    per_date : pandas.DataFrame
        ``date, users, churned, rate, low, high`` (Wilson 95% interval).
    slope, low, high : float
        Change of the churn rate per week (in rate units) and its 95% bootstrap interval over users.
    direction : str
        ``"rising"``, ``"falling"`` (interval clear of zero), ``"flat"`` (it covers zero) or
        ``"unknown"`` (fewer than two dates).
    """

    per_date: pd.DataFrame
    slope: float
    low: float
    high: float
    direction: str

    def statement(self) -> str:
        """One plain sentence on the trend."""
        n = len(self.per_date)
        if self.direction == "unknown":
            return "Only one observation date: there is no trend to report."
        first, last = self.per_date.iloc[0], self.per_date.iloc[-1]
        span = (f"from {first['rate']:.1%} on {first['date']:%Y-%m-%d} to {last['rate']:.1%} on "
                f"{last['date']:%Y-%m-%d}")
        change = (f"{self.slope * 100:+.1f} points per week (95% interval {self.low * 100:+.1f} to "
                  f"{self.high * 100:+.1f})")
        if self.direction == "flat":
            return (f"No trend beyond the noise: across {n} observation dates the churn rate moved {span}, "
                    f"{change}; the interval covers zero.")
        return f"Churn is **{self.direction}** beyond the noise: {span}, {change}, across {n} observation dates."


def churn_trend(table: pd.DataFrame, date_col: str = "as_of", label_col: str = "churned", id_col: str = "userId",
                n_bootstrap: int = 200, seed: int = 0) -> Trend:
    """Churn rate per observation date, and whether it rises or falls beyond the noise.

    The trend is the least-squares slope of the label on the date (per week). Its interval comes from
    a bootstrap over users -- a user appears on several dates, so rows are not independent.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per user and observation date (the feature table of ``02_features``).
    date_col, label_col, id_col : str
        Observation date, 0/1 label within the horizon, user id.
    n_bootstrap : int
        Bootstrap replicates for the slope's interval.
    seed : int
        Bootstrap seed.

    Returns
    -------
    Trend
    """
    df = table[[id_col, date_col, label_col]].dropna()
    df = df.assign(**{date_col: pd.to_datetime(df[date_col])})
    rows = []
    for date, grp in df.groupby(date_col, sort=True):
        r = churn_rate(grp[label_col])
        rows.append({"date": date, "users": r.total, "churned": r.count, "rate": r.value,
                     "low": r.interval[0], "high": r.interval[1]})
    per_date = pd.DataFrame(rows, columns=["date", "users", "churned", "rate", "low", "high"])
    if len(per_date) < 2:
        return Trend(per_date, float("nan"), float("nan"), float("nan"), "unknown")

    # Sufficient statistics per user make each bootstrap replicate a weighted sum (fast, exact).
    x = (df[date_col] - df[date_col].min()).dt.total_seconds().to_numpy() / (7 * 86400)
    y = df[label_col].to_numpy(dtype=float)
    codes, _ = pd.factorize(df[id_col])
    stats = np.zeros((codes.max() + 1, 5))
    np.add.at(stats, codes, np.c_[np.ones_like(x), x, y, x * y, x * x])

    def slope(s: np.ndarray) -> float:
        n, sx, sy, sxy, sxx = s
        var = sxx - sx * sx / n
        return float((sxy - sx * sy / n) / var) if var > 0 else float("nan")

    point = slope(stats.sum(axis=0))
    rng = np.random.default_rng(seed)
    n_users = len(stats)
    weights = rng.multinomial(n_users, np.full(n_users, 1 / n_users), size=n_bootstrap)
    reps = np.array([slope(s) for s in weights @ stats]) if n_bootstrap else np.array([])
    reps = reps[np.isfinite(reps)]
    low, high = (np.percentile(reps, [2.5, 97.5]) if len(reps) else (float("nan"), float("nan")))
    direction = "rising" if low > 0 else "falling" if high < 0 else "flat"
    return Trend(per_date, point, float(low), float(high), direction)


def trend_section(trend: Trend | None, reason: str = "the data has no observation dates",
                  horizon_days: float | None = None) -> Section:
    """The churn trend over observation dates in plain words, with the per-date table.

    Parameters
    ----------
    trend : Trend or None
        From :func:`churn_trend`; None when the data has no observation dates.
    reason : str
        Why there is no trend, for the one-sentence stand-in.
    horizon_days : float, optional
        The label window, named in the text.

    Returns
    -------
    Section
    """
    if trend is None or trend.per_date.empty:
        return not_available("Churn over time", "the churn trend", reason)
    titles = {"rising": "Churn is rising", "falling": "Churn is falling",
              "flat": "Churn is stable: no trend beyond the noise", "unknown": "Churn at a single date"}
    t = trend.per_date.assign(
        date=trend.per_date["date"].dt.strftime("%Y-%m-%d"),
        **{"churn rate (95% interval)": [Interval(r, lo, hi).text(1, percent=True) for r, lo, hi in
                                         trend.per_date[["rate", "low", "high"]].to_numpy()]},
    )[["date", "users", "churned", "churn rate (95% interval)"]]
    word = {"rising": "rising", "falling": "falling", "flat": "stable", "unknown": "one date"}[trend.direction]
    numbers = {"Churn trend": word if trend.direction == "unknown" else
               f"{word} ({trend.slope * 100:+.1f} pts/week, {trend.low * 100:+.1f} to {trend.high * 100:+.1f})"}
    window = f"the {horizon_days:g} days" if horizon_days else "the label window"
    return Section(titles[trend.direction], trend.statement() + " Each date counts the users active before it "
                   f"and whether they cancelled within {window} after it.", t.set_index("date"),
                   numbers=numbers)


def plot_churn_trend(trend: Trend) -> plt.Figure:
    """Churn rate per observation date with 95% intervals; the title states the trend."""
    d = trend.per_date
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.errorbar(d["date"], d["rate"], yerr=[d["rate"] - d["low"], d["high"] - d["rate"]], fmt="o-",
                capsize=4, color="#DD8452")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("observation date")
    ax.set_ylabel("churned within the label window")
    words = {"rising": "Churn is rising beyond the noise", "falling": "Churn is falling beyond the noise",
             "flat": "Churn is stable: changes stay within the noise", "unknown": "Churn at a single date"}
    ax.set_title(words[trend.direction])
    fig.autofmt_xdate()
    return fig


# --------------------------------------------------------------------------------------------
# How long users stay
# --------------------------------------------------------------------------------------------

def retention_section(curve: Any, comparisons: dict[str, Any] | None = None,
                      durations: pd.DataFrame | None = None, *,
                      reason: str = "the data holds no time from each user's start to cancelling",
                      what: str = "users") -> Section:
    """How long users stay: the median time to cancelling, the cohort that leaves soonest, in plain words.

    Computed from :mod:`churnlib.survival` (``09_summary`` runs before ``10_retention`` and cannot read
    its outputs); worded by :mod:`churnlib.survival_report`, so the summary and the retention report
    say the same thing the same way.

    Parameters
    ----------
    curve : churnlib.survival.RetentionCurve or None
        The overall Kaplan–Meier curve (:func:`churnlib.survival.kaplan_meier`); None when survival
        cannot be estimated (a snapshot table without a duration column).
    comparisons : dict of str to churnlib.survival.CohortComparison, optional
        Cohort kind -> :func:`churnlib.survival.compare_cohorts`; a cohort is named as leaving soonest
        only when its FDR-adjusted log-rank test says the cohorts differ.
    durations : pandas.DataFrame, optional
        One row per user with ``churned`` (for the sentence on censoring).
    reason : str
        Why there is no curve, for the one-sentence stand-in.
    what : str
        How the users are called.

    Returns
    -------
    Section
    """
    title = "How long users stay"
    if curve is None:
        return not_available(title, "how long users stay (retention curves)", reason)
    lines = []
    if durations is not None and "churned" in durations:
        lines.append(survival_report.censoring_sentence(durations, what))
    lines.append(survival_report.median_sentence(curve, what))
    lines.append(survival_report.retention_at_sentence(curve, (30, 60), what))
    soonest = {by: survival_report.soonest_cohort(c) for by, c in (comparisons or {}).items()}
    soonest = {by: s for by, s in soonest.items() if s is not None}
    for by, s in soonest.items():
        lines.append(survival_report.cohort_lines(comparisons[by], by)[0])
    if comparisons and not soonest:
        kinds = ", ".join(survival_report.COHORT_LABELS.get(b, b.replace("_", " ")) for b in comparisons)
        lines.append(f"No cohort ({kinds}) leaves sooner than the others beyond the noise (log-rank tests, "
                     "false-discovery rate controlled across cohorts).")
    head = survival_report.km_title(curve, what)
    if soonest:
        by, s = next(iter(soonest.items()))
        head += f"; {s} users ({survival_report.COHORT_LABELS.get(by, by)}) leave soonest"
    numbers = {k: v for k, v in survival_report.key_numbers(curve, comparisons).items()}
    return Section(head, " ".join(lines) + " The retention report (10) has the curves by cohort, what drives "
                   "the timing and how many of today's users are expected to stay.", numbers=numbers)


# --------------------------------------------------------------------------------------------
# Model quality
# --------------------------------------------------------------------------------------------

def model_quality_section(metrics: dict | None) -> Section:
    """Holdout quality of the chosen model in plain words, with 95% intervals.

    Parameters
    ----------
    metrics : dict or None
        The content of ``metrics.json`` (``chosen.holdout``: metric -> value/low/high).

    Returns
    -------
    Section
    """
    title = "How good the model is"
    holdout = ((metrics or {}).get("chosen") or {}).get("holdout")
    if not holdout:
        return not_available(title, "model quality", "no model metrics (`metrics.json`) were written")
    data = metrics.get("data", {})
    base = data.get("churn_rate_test")
    lines, numbers = [], {}
    prec, rec = _interval(holdout.get("precision")), _interval(holdout.get("recall"))
    lift, auc = _interval(holdout.get("lift_top_decile")), _interval(holdout.get("roc_auc"))
    if prec:
        n = _in_n(prec.value)[1]
        line = (f"- Of the users the model flags as high risk, about **{_k_in_n(prec.value, n)} in {n} churned** "
                f"({_ci(prec.low * n, prec.high * n, '{:.1f}')} in {n})")
        if base is not None:
            line += f", against {base * n:.1f} in {n} among all users"
        lines.append(line + ".")
        numbers["Flagged users who churned"] = prec.text(0, percent=True)
    if rec:
        n = _in_n(rec.value)[1]
        lines.append(f"- The flagged list catches about **{_k_in_n(rec.value, n)} in {n} of the users who churned** "
                     f"({_ci(rec.low * n, rec.high * n, '{:.1f}')} in {n}).")
    if lift:
        lines.append(f"- The top 10% of the list holds **{lift.value:.1f}× as many churners as average** "
                     f"({_ci(lift.low, lift.high, '{:.1f}×')}; 1× would be no better than picking at random).")
        numbers["Top-10% lift"] = lift.text(1, unit="×")
    if auc:
        lines.append(f"- Given one user who churned and one who stayed, the model ranks the churner higher "
                     f"**{auc.value:.0%} of the time** ({_ci(auc.low, auc.high, '{:.0%}')}; 50% is a coin flip).")
        numbers["Holdout ROC-AUC"] = auc.text(3)
    if not lines:
        return not_available(title, "model quality", "`metrics.json` holds no holdout metrics")
    where = (f"Measured once on {data['rows_test']:,} held-out rows that no modelling choice saw"
             if data.get("rows_test") else "Measured on held-out rows that no modelling choice saw")
    chosen = metrics.get("chosen", {})
    model = f" ({chosen.get('model')}, {chosen.get('strategy')})" if chosen.get("model") else ""
    signal = signal_detected(metrics)
    if signal is None:  # no signal verdict in the file: judge by the ranking interval alone
        signal = bool(auc and auc.above(0.5))
    if not signal:
        head = "The model is no reliable guide to who will churn"
    elif lift and lift.above(1):
        head = "The model ranks churners well above chance"
    else:  # a real signal, but the list's top is too small to be sure how much it concentrates churners
        head = "The model ranks churners better than chance, with wide uncertainty"
    # how far the choice can be trusted: selection, CV vs holdout, the default baseline, leaks removed
    lines += [f"- {s}" for s in summary_sentences(metrics)]
    leak = leakage_sentence(metrics)
    if leak:
        lines.append(f"- {leak}")
    return Section(head, f"{where}{model}; brackets are 95% intervals.\n\n" + "\n".join(lines), numbers=numbers)


# --------------------------------------------------------------------------------------------
# At-risk users, drivers and actions
# --------------------------------------------------------------------------------------------

_REASONS = ("reason_1", "reason_2", "reason_3")


def _id_column(scores: pd.DataFrame) -> str:
    known = {"churn_probability", "churn_label", "risk_band", *_REASONS}
    return next(c for c in scores.columns if c not in known)


def still_customers(scores: pd.DataFrame | None, left_ids: Any = None) -> tuple[pd.DataFrame | None, str]:
    """The risk scores of users who are still customers, and one sentence saying who is left out.

    Parameters
    ----------
    scores : pandas.DataFrame or None
        ``risk_scores.parquet`` (its first column that is not a score column is the user id).
    left_ids : iterable, optional
        Ids of users whose label says they already left (a snapshot table's label-1 users). None for
        an event log: its scores hold only users who had not cancelled by the latest observation date.

    Returns
    -------
    (scores, note)
        ``scores`` without those users (they may be there when ``risk_scores.parquet`` predates this
        rule); ``note`` is the sentence for the risk list.
    """
    if left_ids is None:
        return scores, "Only users who had not cancelled by the latest observation date are listed."
    left = {str(i) for i in left_ids}
    note = (f"{len(left):,} users whose label says they already left are not listed." if left else
            "No user's label says they already left, so every user is listed.")
    if scores is None or scores.empty or not left:
        return scores, note
    keep = ~scores[_id_column(scores)].astype(str).isin(left)
    return scores[keep.to_numpy()].reset_index(drop=True), note


def top_users_section(scores: pd.DataFrame | None, n: int = 15, actionable: bool = True, note: str = "") -> Section:
    """The users most at risk: id, probability, band and three reasons.

    Parameters
    ----------
    scores : pandas.DataFrame or None
        ``risk_scores.parquet``: an id column, ``churn_probability``, ``churn_label``, ``risk_band``,
        ``reason_1..3``.
    n : int
        Users to list.
    actionable : bool
        False when the model found no detectable signal: the list is then withheld, with the reason.
    note : str
        Who is left out of the list (:func:`still_customers`), added to the text.

    Returns
    -------
    Section
    """
    title = "Users most at risk"
    if scores is None or scores.empty:
        return not_available(title, "the list of users at risk", "no risk scores (`risk_scores.parquet`) were written")
    bands = scores["risk_band"].astype(str).value_counts() if "risk_band" in scores else pd.Series(dtype=int)
    n_high = int(bands.get("high", 0))
    counts = ", ".join(f"{int(bands.get(b, 0)):,} {b}" for b in ("high", "medium", "low"))
    numbers = {"High-risk users": f"{n_high:,} of {len(scores):,}"}
    if not actionable:
        return Section("No list of users to contact: the scores carry no detectable signal",
                       f"{len(scores):,} users were scored ({counts} risk), but with no detectable signal "
                       "their order is no better than chance, so no one is singled out here."
                       + (f" {note}" if note else ""), numbers=numbers)
    id_col = _id_column(scores)
    top = scores.sort_values("churn_probability", ascending=False, kind="stable").head(n)
    table = pd.DataFrame({
        "user": top[id_col].astype(str).to_numpy(),
        "churn probability": [f"{p:.0%}" for p in top["churn_probability"]],
        "risk band": top["risk_band"].astype(str).to_numpy() if "risk_band" in top else "",
        **{f"reason {i}": top[r].fillna("").astype(str).to_numpy() for i, r in enumerate(_REASONS, 1) if r in top},
    }, index=pd.RangeIndex(1, len(top) + 1, name="rank"))
    text = (f"{len(scores):,} users scored: {counts} risk. " + (f"{note} " if note else "")
            + f"The {len(top)} with the highest churn probability, each with the three things that raise their "
            "risk most:")
    return Section(f"{n_high:,} users are at high risk of churning", text, table, numbers=numbers)


def drivers_section(drivers: pd.DataFrame | None, n: int = 8, signal: bool | None = True) -> Section:
    """The main drivers of churn risk (mean absolute SHAP value), in plain words.

    Parameters
    ----------
    drivers : pandas.DataFrame or None
        ``drivers.csv``: ``feature, mean_abs_shap, direction, meaning``.
    n : int
        Drivers to list.
    signal : bool or None
        Whether the model found a signal; without one the drivers describe noise and the text says so.

    Returns
    -------
    Section
    """
    title = "What drives churn risk"
    if drivers is None or drivers.empty:
        return not_available(title, "the main drivers", "no drivers (`drivers.csv`) were written")
    d = drivers.sort_values("mean_abs_shap", ascending=False, kind="stable").head(n)
    label = _driver_labels(d)
    table = pd.DataFrame({"driver": label.to_numpy(), "feature": d["feature"].to_numpy(),
                          "effect on risk": d["direction"].to_numpy() if "direction" in d else "",
                          "weight (mean |SHAP|)": d["mean_abs_shap"].round(4).to_numpy()},
                         index=pd.RangeIndex(1, len(d) + 1, name="rank"))
    top = str(d["feature"].iloc[0]).replace("_", " ")
    how = str(d["direction"].iloc[0]) if "direction" in d and pd.notna(d["direction"].iloc[0]) else ""
    text = (f"The model leans most on: {'; '.join(f'*{x}*' for x in label.head(3))}. The weight is the "
            "average size of a feature's push on a user's score; the effect says whether higher values raise "
            "or lower the risk.")
    if signal is False:
        text += " With no detectable signal these weights describe noise, not causes."
        return Section("Drivers (not meaningful: no detectable signal)", text, table)
    return Section(f"Churn risk is driven most by {top}" + (f" ({how})" if how and how != "mixed" else ""), text, table,
                   numbers={"Top driver": str(d['feature'].iloc[0])})


def _driver_labels(d: pd.DataFrame) -> pd.Series:
    """A driver's plain-words meaning, else its feature name (blank meanings count as missing)."""
    if "meaning" not in d:
        return d["feature"].astype(str)
    meaning = d["meaning"].astype("string").str.strip().replace("", pd.NA)
    return meaning.fillna(d["feature"].astype(str)).astype(str)


def plot_drivers(drivers: pd.DataFrame, n: int = 10) -> plt.Figure:
    """Horizontal bars of the ``n`` largest drivers (mean absolute SHAP); the title names the top one."""
    d = drivers.sort_values("mean_abs_shap", ascending=False, kind="stable").head(n).iloc[::-1]
    label = [s if len(s) <= 60 else s[:57] + "..." for s in _driver_labels(d)]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(d) + 1.2))
    ax.barh(label, d["mean_abs_shap"], color="#DD8452")
    ax.set_xlabel("average push on a user's churn score (mean |SHAP|)")
    ax.set_title(f"Churn risk is driven most by {str(d['feature'].iloc[-1]).replace('_', ' ')}")
    return fig


#: The retention rule table: (segment, pattern on a reason, suggested action), checked in order;
#: a user's segment is the family of their first reason that matches a pattern. Patterns match feature
#: names and their plain-words meanings alike. Specific problems (errors, help, downgrade, ads,
#: dislikes) come before the broad "listening fell" so that e.g. "error_per_song" counts as errors.
ACTION_RULES: tuple[tuple[str, str, str], ...] = (
    ("errors / crashes", r"error|crash",
     "Tech-support outreach: contact them about the errors they hit and check their app and device"),
    ("help contacts", r"help|support",
     "Support follow-up: make sure their help request was solved"),
    ("downgrade visits", r"downgrade",
     "Discount on the paid plan before they downgrade or leave"),
    ("adverts", r"advert|\bads?\b",
     "Ad-free trial offer (e.g. a free month of the paid plan)"),
    ("thumbs down / skips", r"thumbs[ _]down|thumbs[ _]up[ _]share|skip",
     "Recommendation tuning: refresh their recommendations away from what they dislike"),
    ("plan / subscription", r"level|paid|upgrade",
     "Plan review: check the plan fits how they listen"),
    ("falling listening", r"listen|song|session|active[ _]days|events|days[ _]since|login|trend|slope|friend|playlist",
     "Personalised playlist and re-engagement message"),
)
OTHER_SEGMENT = ("other", "Personal check-in: no specific rule applies")


def reason_family(reason: Any) -> str:
    """The segment (:data:`ACTION_RULES`) a reason belongs to; ``"other"`` when no rule matches."""
    if not isinstance(reason, str) or not reason.strip():
        return OTHER_SEGMENT[0]
    text = reason.lower()
    return next((seg for seg, pat, _ in ACTION_RULES if re.search(pat, text)), OTHER_SEGMENT[0])


def retention_actions(scores: pd.DataFrame, levels: pd.Series | None = None) -> pd.DataFrame:
    """Suggested retention action per segment, with how many high-risk (and watch-list) users are in it.

    A user's segment is the family of their first reason (``reason_1``, then ``reason_2`` ...) that a
    rule of :data:`ACTION_RULES` recognises.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``risk_scores.parquet`` (``risk_band`` and ``reason_1..3``).
    levels : pandas.Series, optional
        User id -> ``"paid"``/``"free"``; adds the number of paying users among the high-risk ones.

    Returns
    -------
    pandas.DataFrame
        One row per segment with high- or medium-risk users, most high-risk users first: ``segment``,
        ``suggested action``, ``high-risk users``, ``watch list (medium)`` and, with ``levels``,
        ``of which paid``.
    """
    reasons = [r for r in _REASONS if r in scores]
    fam = pd.Series(OTHER_SEGMENT[0], index=scores.index)
    for r in reversed(reasons):  # earlier reasons overwrite later ones
        f = scores[r].map(reason_family)
        fam = fam.where(f == OTHER_SEGMENT[0], f)
    band = scores["risk_band"].astype(str)
    actions = dict((seg, act) for seg, _, act in ACTION_RULES) | {OTHER_SEGMENT[0]: OTHER_SEGMENT[1]}
    out = pd.DataFrame({"segment": list(actions), "suggested action": list(actions.values())})
    out["high-risk users"] = out["segment"].map(fam[band == "high"].value_counts()).fillna(0).astype(int)
    out["watch list (medium)"] = out["segment"].map(fam[band == "medium"].value_counts()).fillna(0).astype(int)
    if levels is not None:
        lv = scores[_id_column(scores)].astype(str).map(levels.rename(index=str))
        paid = fam[(band == "high") & (lv == "paid").to_numpy()].value_counts()
        out["of which paid"] = out["segment"].map(paid).fillna(0).astype(int)
    out = out[(out["high-risk users"] > 0) | (out["watch list (medium)"] > 0)]
    order = out["high-risk users"].rank(method="first", ascending=False)
    return out.assign(_o=order).sort_values("_o").drop(columns="_o").reset_index(drop=True)


def actions_section(scores: pd.DataFrame | None, levels: pd.Series | None = None,
                    actionable: bool = True) -> Section:
    """Retention actions per segment (:func:`retention_actions`) in plain words."""
    title = "Suggested retention actions"
    if scores is None or scores.empty:
        return not_available(title, "retention actions", "no risk scores (`risk_scores.parquet`) were written")
    if not actionable:
        return Section("No retention actions suggested: no detectable signal",
                       "Without a detectable churn signal, targeting users by their score would be no better "
                       "than targeting at random; no segment-specific action is suggested.")
    table = retention_actions(scores, levels)
    if table.empty:
        return Section("No user is at high or medium risk", "No user is in the high or medium risk band, so no "
                       "retention action is suggested.")
    lead = table.iloc[0]
    text = ("Each high-risk user falls in the segment of their strongest reason; the rule table maps a segment "
            f"to an action. The largest segment is **{lead['segment']}** ({lead['high-risk users']:,} high-risk "
            f"users): *{lead['suggested action']}*. The watch list (medium risk) is for lighter-touch contact.")
    return Section(f"Start with {lead['segment']}: {lead['suggested action'].split(':')[0].lower()}", text,
                   table.set_index("segment"))


# --------------------------------------------------------------------------------------------
# Data quality and what changed
# --------------------------------------------------------------------------------------------

def data_quality_section(quality: Any) -> Section:
    """Rows read, kept, dropped and repaired (a :class:`churnlib.load.DataQuality`) in plain words."""
    title = "Data quality"
    if quality is None:
        return not_available(title, "the data-quality account", "the input data was not loaded")
    read, kept = quality.rows_read, quality.rows_kept
    dropped, repaired = sum(quality.dropped.values()), sum(quality.repaired.values())
    share = kept / read if read else float("nan")

    def reasons(d: dict[str, int]) -> str:
        return "; ".join(f"{n:,} {r}" for r, n in sorted(d.items(), key=lambda kv: -kv[1]))

    unit = "rows" if quality.kind == "snapshot" else "events"
    text = f"Of **{read:,} {unit} read, {kept:,} ({share:.1%}) were kept**"
    text += f"; {dropped:,} dropped ({reasons(quality.dropped)})" if dropped else "; none dropped"
    text += f"; {repaired:,} repairs to kept rows ({reasons(quality.repaired)})." if repaired else "; none repaired."
    verdict = ("The data is clean" if share >= 0.99 and not repaired else
               "Most data was usable" if share >= 0.9 else "A large share of the data could not be used")
    return Section(f"{verdict}: {share:.1%} of {unit} kept", text,
                   numbers={"Rows kept": f"{kept:,} of {read:,} ({share:.1%})"})


def changes_section(monitoring: dict | None) -> Section:
    """What changed since the reference window (``monitoring.json`` of ``07_monitoring``)."""
    title = "What changed since the reference window"
    if not monitoring:
        return not_available(title, "the comparison with the reference window",
                             "no monitoring results (`monitoring.json`) were written")
    if monitoring.get("status") == "not run":
        reason = str(monitoring.get("reason") or "it had nothing to compare with")
        how = monitoring.get("how")
        return Section("Monitoring was not run: it needs a second table",
                       f"Monitoring was not run, so there are no drift figures: {reason}."
                       + (f" To monitor, {how}." if how else ""), available=False,
                       numbers={"Monitoring": "not run: needs a second, later table"})
    lines = []
    ref, cur = monitoring.get("reference"), monitoring.get("current")
    window = f"Reference window: {ref}; current window: {cur}." if ref is not None and cur is not None else ""
    drifted = monitoring.get("drifted_features") or []
    n_checked = monitoring.get("n_features_checked")
    of = f" of {n_checked}" if n_checked else ""
    if drifted:
        top = sorted(drifted, key=lambda d: -(d.get("psi") or 0))[:5]
        names = ", ".join(f"{d.get('feature')} (PSI {d.get('psi', float('nan')):.2f})" for d in top)
        lines.append(f"- **{len(drifted)}{of} features shifted** noticeably; largest: {names}.")
    else:
        lines.append(f"- **No feature shifted** noticeably ({n_checked or 'all'} checked).")
    far = _interval(monitoring.get("false_alarm_rate"))
    if far:
        n = monitoring.get("n_false_alarm_samples")
        where = ("random halves of the reference table" if monitoring.get("mode") == "tables" else
                 "fresh samples from the reference itself")
        lines.append(f"- The drift check raises a false alarm on {far.value:.0%} of {where} "
                     f"({_ci(far.low, far.high, '{:.0%}')}" + (f", {n} samples" if n else "") + ").")
    sd = monitoring.get("score_drift")
    if sd and sd.get("psi") is not None:
        lines.append(f"- The model's churn probabilities {'shifted' if sd.get('drifted') else 'did not shift'} "
                     f"(mean {sd.get('reference_mean', float('nan')):.3f} on the reference, "
                     f"{sd.get('current_mean', float('nan')):.3f} now; PSI {sd['psi']:.2f}).")
    perf = monitoring.get("performance") or {}
    a = _interval((perf.get("reference") or {}).get("roc_auc"))
    b = _interval((perf.get("current") or {}).get("roc_auc"))
    if b and not a:
        lines.append(f"- Model ROC-AUC on the current users' labels: {b.text(3)}.")
    if a and b:
        lines.append(f"- Model ROC-AUC: {a.text(3)} on the reference, {b.text(3)} now"
                     + (" -- the intervals overlap: no clear change." if a.overlaps(b) else
                        " -- a change beyond the noise."))
    ch = monitoring.get("challenger") or {}
    if ch.get("decision"):
        c1, c2 = _interval(ch.get("champion")), _interval(ch.get("challenger"))
        vs = (f" ({ch.get('metric', 'score')}: current model {c1.text(3)}, retrained {c2.text(3)})"
              if c1 and c2 else "")
        lines.append(f"- Retrained challenger: {ch['decision']}{vs}.")
    if monitoring.get("recommendation"):
        lines.append(f"- **Recommendation: {monitoring['recommendation']}**")
    head = (f"{len(drifted)}{of} features shifted since the reference window" if drifted else
            "Nothing shifted noticeably since the reference window")
    return Section(head, (window + "\n\n" if window else "") + "\n".join(lines),
                   numbers={"Drifted features": f"{len(drifted)}{of}"})


def key_numbers(sections: list[Section]) -> dict[str, str]:
    """The headline numbers of all available sections, in order (for ``record_key_numbers``)."""
    out: dict[str, str] = {}
    for s in sections:
        out.update(s.numbers)
    return out
