"""How long users stay, in plain words and pictures: the sentences and figures of ``10_retention``.

The numbers come from :mod:`churnlib.survival` (Kaplan–Meier curves, log-rank tests with FDR
control, the Cox model and expected retention); this module only words and draws them, with
intervals in the one text form of :meth:`churnlib.intervals.Interval.text`. Curves are drawn only as
far as :func:`churnlib.survival.kaplan_meier` kept them (it cuts each curve where fewer than about 20
users remain at risk): no line is extended past its last point.

A curve that starts after day 0 (``RetentionCurve.start``: too few users are followed through their
first days, as in a log whose users nearly all registered before it began) is survival *conditional
on having stayed* that many days; every sentence, title and figure here says so ("Of users who had
been subscribed for 8 days, half had cancelled by day 172 ..."), and figures start the x axis there.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlib.features import feature_dictionary
from churnlib.intervals import Interval
from churnlib.survival import CohortComparison, CoxResult, RetentionCurve

__all__ = [
    "COHORT_LABELS",
    "MAX_LABELLED",
    "censoring_sentence",
    "classifier_roc_auc",
    "cohort_lines",
    "cohort_table",
    "concordance_sentence",
    "cox_lines",
    "cox_not_fitted_text",
    "GROUP_WORDS",
    "expected_retention_lines",
    "expected_retention_table",
    "hazard_ratio_sentence",
    "hazard_ratio_table",
    "key_numbers",
    "km_title",
    "median_sentence",
    "no_duration_text",
    "ph_sentence",
    "plot_cohorts",
    "plot_cohort_grid",
    "plot_expected_retention",
    "plot_hazard_ratios",
    "plot_km",
    "retention_at_sentence",
    "soonest_cohort",
    "start_note",
]

#: Plain names of the cohort columns of :func:`churnlib.survival.durations_from_events`.
COHORT_LABELS = {
    "level": "plan at start",
    "device": "device",
    "registration_month": "registration month",
    "gender": "gender",
    "state": "state",
}
#: Cohort curves drawn in colour with a legend entry (the largest); the others are drawn thin and grey.
MAX_LABELLED = 6
_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
            "#CCB974", "#64B5CD"]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def _names(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cohort_label(by: str) -> str:
    return COHORT_LABELS.get(by, str(by).replace("_", " "))


def _days(x: float) -> str:
    return f"{x:.0f}"


def _days_interval(iv: Interval) -> str:
    """``"41 days (35–48)"``; an upper bound that is not reached is said so."""
    if math.isfinite(iv.low) and not math.isfinite(iv.high):
        return f"{iv.value:.0f} days (95% interval from {iv.low:.0f} days; its upper end is not reached)"
    return iv.text(0, unit=" days")


def _day_interval(iv: Interval) -> str:
    """``"172 (110–224)"`` (a day, after "by day"); an upper bound that is not reached is said so."""
    if math.isfinite(iv.low) and not math.isfinite(iv.high):
        return f"{iv.value:.0f} (95% interval from day {iv.low:.0f}; its upper end is not reached)"
    return iv.text(0)


def _last_day(curve: RetentionCurve) -> float:
    """The last day a curve covers (it is cut where too few users remain at risk)."""
    reach = getattr(curve, "reach", None)
    if reach is not None and math.isfinite(reach):
        return float(reach)
    t = curve.table
    return float(t["time"].max()) if len(t) else 0.0


def _pct(iv: Interval) -> str:
    return iv.text(0, percent=True)


def _start(curve: RetentionCurve) -> float:
    """The tenure a curve starts at (0, or the tenure it is conditional on)."""
    return float(getattr(curve, "start", 0.0) or 0.0)


def _too_short(curve: RetentionCurve) -> bool:
    """No curve: it stops where it starts (too few users at risk at any tenure)."""
    return _last_day(curve) <= _start(curve)


def _late_why(curve: RetentionCurve, what: str) -> str:
    late = getattr(curve, "left_truncated", 0)
    return (f"{late:,} of the {curve.n_users:,} {what} registered before the log began: they are counted only "
            "from the day they are first seen, so few are followed through their first days" if late else "")


def _too_short_sentence(curve: RetentionCurve, what: str) -> str:
    n = getattr(curve, "min_at_risk", 20)
    why = _late_why(curve, what)
    return (f"Too few {what} are followed to draw a retention curve: fewer than {n} are at risk on day 0 or at "
            f"any later tenure{f' ({why})' if why else ''}.")


def _given(curve: RetentionCurve, what: str) -> str:
    """``"Of users who had been subscribed for 8 days, "`` for a conditional curve, else ``""``."""
    return f"Of {what} who had been subscribed for {_days(_start(curve))} days, " if _start(curve) > 0 else ""


def start_note(curve: RetentionCurve, what: str = "users") -> str:
    """Why a curve starts after day 0, in one sentence ("" when it starts at day 0).

    Parameters
    ----------
    curve : RetentionCurve
        From :func:`churnlib.survival.kaplan_meier`.
    what : str
        Whom the curve describes.

    Returns
    -------
    str
    """
    t0 = _start(curve)
    if t0 <= 0 or _too_short(curve):
        return ""
    n = getattr(curve, "min_at_risk", 20)
    why = _late_why(curve, what)
    return (f"The curve starts at day {_days(t0)}, the first tenure at which at least {n} {what} are followed"
            f"{f' ({why})' if why else ''}; it shows what happened to those who had stayed {_days(t0)} days, "
            f"not to everyone from registration.")


# --------------------------------------------------------------------------------------------
# Sentences: censoring, the median, the curve
# --------------------------------------------------------------------------------------------

def censoring_sentence(durations: pd.DataFrame, what: str = "users") -> str:
    """One sentence on censoring: who cancelled, and who counts as "still here so far".

    Parameters
    ----------
    durations : pandas.DataFrame
        One row per user with ``churned`` (1 = cancelled, 0 = still subscribed at the end: censored).
    what : str
        How the rows are called.

    Returns
    -------
    str
    """
    n = len(durations)
    k = int(pd.to_numeric(durations["churned"], errors="coerce").fillna(0).sum())
    return (f"Of {n:,} {what}, {k:,} cancelled while the log ran; the other {n - k:,} were still subscribed at "
            "its end and count as \"still here so far\" (censored: we know how long they have stayed up to "
            "then, not that they stay forever).")


def median_sentence(curve: RetentionCurve, what: str = "users") -> str:
    """The median time to cancelling with its interval, or "not reached within N days".

    Parameters
    ----------
    curve : RetentionCurve
        From :func:`churnlib.survival.kaplan_meier`.
    what : str
        Whom the curve describes.

    Returns
    -------
    str
    """
    median = curve.median
    if _too_short(curve):
        return _too_short_sentence(curve, what)
    note = start_note(curve, what)
    note = f" {note}" if note else ""
    if median is None or not math.isfinite(median.value):
        n = _last_day(curve)
        if _start(curve) > 0:
            return (f"{_given(curve, what)}fewer than half cancelled by day {_days(n)}, where the curve stops: "
                    f"the median time to cancelling is not reached (it is longer than that).{note}")
        return (f"Fewer than half of {what} cancelled within the {_days(n)} days the curve covers: the median "
                f"time to cancelling is not reached within {_days(n)} days (it is longer than that).")
    if _start(curve) > 0:
        return (f"{_given(curve, what)}half had cancelled by day **{_day_interval(median)}** since registration "
                f"(their median time to cancelling).{note}")
    return f"Half of {what} had cancelled after **{_days_interval(median)}** (the median time to cancelling)."


def retention_at_sentence(curve: RetentionCurve, days: Sequence[float] = (30,), what: str = "users") -> str:
    """Share still subscribed at each of ``days`` the curve reaches, with intervals."""
    last = _last_day(curve)
    if _too_short(curve):
        return ""
    t0 = _start(curve)
    if t0 > 0:
        parts = [f"{_pct(curve.at(d))} at day {d:g}" for d in days if t0 <= d <= last]
        if not parts:
            return (f"The curve covers days {_days(t0)} to {_days(last)} only (too few {what} are at risk outside "
                    f"them), none of day {_names([f'{d:g}' for d in days])}.")
        return f"{_given(curve, what)}still subscribed: {'; '.join(parts)}."
    parts = [f"{_pct(curve.at(d))} after {d:g} days" for d in days if d <= last]
    if not parts:
        return (f"The curve stops at day {_days(last)} (too few {what} remain at risk beyond it), before "
                f"day {min(days):g}.")
    return f"Still subscribed: {'; '.join(parts)}."


def km_title(curve: RetentionCurve, what: str = "users") -> str:
    """The finding of a retention curve as a title (computed from the curve)."""
    median = curve.median
    if _too_short(curve):
        return f"Too few {what} are followed from their start for a retention curve"
    t0 = _start(curve)
    if t0 > 0:
        who = f"Of {what} subscribed for {_days(t0)} days"
        if median is None or not math.isfinite(median.value):
            return f"{who}, more than half are still subscribed at day {_days(_last_day(curve))}"
        return f"{who}, half cancel by day {median.value:.0f}"
    if median is None or not math.isfinite(median.value):
        return f"More than half of {what} are still subscribed after {_days(_last_day(curve))} days"
    return f"Half of {what} cancel within {median.value:.0f} days"


def no_duration_text(kind: str = "snapshot") -> str:
    """Why survival cannot be estimated from a snapshot table without a duration column."""
    return ("Survival cannot be estimated from this table: it has one row per user with a churn label but no "
            "column saying how long each user has been subscribed (a tenure, in days). A retention curve needs "
            "that time for every user -- for those who left, how long they stayed; for those still here, how "
            "long they have stayed so far. Give it with the `duration_col` parameter (e.g. `duration_col: "
            "tenure_days` in `config/report.yaml`), or use the event log the table was made from.")


# --------------------------------------------------------------------------------------------
# Cohorts
# --------------------------------------------------------------------------------------------

def _overall_test(comparison: CohortComparison) -> pd.Series | None:
    if hasattr(comparison, "overall"):
        return comparison.overall
    tests = comparison.tests
    if tests is None or not len(tests):
        return None
    col = next((c for c in ("comparison", "test", "kind", "pair") if c in tests.columns), None)
    if col is not None:
        rows = tests[tests[col].astype(str).str.lower().str.startswith("overall")]
        if len(rows):
            return rows.iloc[0]
    return tests.iloc[0]


def _p_adjusted(row: pd.Series | None) -> float:
    if row is None:
        return float("nan")
    for c in ("p_adjusted", "p_adj", "q"):
        if c in row.index:
            return float(row[c])
    return float("nan")


def _p(row: pd.Series | None) -> float:
    if row is None:
        return float("nan")
    return float(row["p"]) if "p" in row.index else float(row.get("p_value", float("nan")))


def _pval(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def soonest_cohort(comparison: CohortComparison, alpha: float | None = None) -> str | None:
    """The cohort that leaves soonest, only when the FDR-adjusted log-rank test says cohorts differ.

    Parameters
    ----------
    comparison : CohortComparison
        From :func:`churnlib.survival.compare_cohorts`.
    alpha : float, optional
        False-discovery level (default: the comparison's own ``alpha``, else 0.05).

    Returns
    -------
    str or None
        None when the cohorts do not differ beyond the noise (or fewer than two could be drawn).
    """
    alpha = alpha if alpha is not None else getattr(comparison, "alpha", 0.05)
    soonest = getattr(comparison, "soonest", None)
    if soonest is None or len(comparison.curves) < 2:
        return None
    p = _p_adjusted(_overall_test(comparison))
    return str(soonest) if math.isfinite(p) and p < alpha else None


def _retention_at(curve: RetentionCurve, day: float) -> Interval | None:
    return curve.at(day) if _start(curve) <= day <= _last_day(curve) else None


def _of_start(curve: RetentionCurve) -> str:
    return f" (of those subscribed {_days(_start(curve))} days)" if _start(curve) > 0 else ""


def cohort_table(comparison: CohortComparison, day: float = 30) -> pd.DataFrame:
    """One row per cohort with a curve: users, cancelled, median and retention at ``day`` (cohorts too
    small for a curve are named by :func:`cohort_lines`, not listed)."""
    sizes = getattr(comparison, "sizes", None)
    sizes = sizes.set_index(sizes["cohort"].astype(str)) if sizes is not None and len(sizes) else None
    rows = []
    for name, curve in comparison.curves.items():
        at = _retention_at(curve, day)
        med = curve.median
        if _too_short(curve):
            median_text = "no curve: too few followed at any tenure"
        elif med is not None and math.isfinite(med.value):
            median_text = _days_interval(med) + _of_start(curve)
        else:
            median_text = f"not reached within {_days(_last_day(curve))} days" + _of_start(curve)
        if _too_short(curve):
            at_text = "no curve"
        elif at is not None:
            at_text = _pct(at) + _of_start(curve)
        else:
            at_text = "curve starts later" if day < _start(curve) else "curve stops earlier"
        rows.append({
            "cohort": str(name),
            "users": int(sizes.loc[str(name), "users"]) if sizes is not None else curve.n_users,
            "cancelled": int(sizes.loc[str(name), "churned"]) if sizes is not None else curve.n_events,
            "median days to cancel": median_text,
            f"still subscribed after {day:g} days": at_text,
        })
    return pd.DataFrame(rows, columns=["cohort", "users", "cancelled", "median days to cancel",
                                       f"still subscribed after {day:g} days"]).set_index("cohort")


def cohort_lines(comparison: CohortComparison, by: str, alpha: float | None = None,
                 min_users: int | None = None) -> list[str]:
    """Plain sentences on one cohort comparison: the log-rank verdict (FDR-adjusted), the cohort that
    leaves soonest when there is one, and the cohorts too small for a curve, by name.

    Parameters
    ----------
    comparison : CohortComparison
        From :func:`churnlib.survival.compare_cohorts`.
    by : str
        The cohort column (``level``, ``device``, ...).
    alpha : float, optional
        False-discovery level (default: the comparison's own, else 0.05).
    min_users : int, optional
        The smallest cohort given a curve, named in the too-small sentence.

    Returns
    -------
    list of str
    """
    label = _cohort_label(by)
    alpha = alpha if alpha is not None else getattr(comparison, "alpha", 0.05)
    min_users = min_users if min_users is not None else getattr(comparison, "min_users", None)
    lines = []
    n_curves = len(comparison.curves)
    if n_curves < 2:
        lines.append(f"By {label}: fewer than two cohorts are large enough for a curve, so there is nothing to "
                     "compare.")
    else:
        row = _overall_test(comparison)
        p, q = _p(row), _p_adjusted(row)
        soonest = soonest_cohort(comparison, alpha)
        if soonest is not None:
            curve = comparison.curves[soonest]
            med = curve.median
            h = getattr(comparison, "horizon", float("nan"))
            given = float(getattr(comparison, "given", 0.0) or 0.0)
            if getattr(comparison, "basis", "median") == "median" and med is not None:
                how = (f"half of them{_of_start(curve)} cancel by day {_day_interval(med)}" if _start(curve) > 0
                       else f"half of them cancel by day {_days_interval(med)}")
            elif math.isfinite(h):
                of = f" of those subscribed {_days(given)} days" if given > 0 else ""
                how = (f"{_pct(curve.at(h, given=given) if given > 0 else curve.at(h))}{of} still subscribed at "
                       f"day {h:.0f}, the last day every curve reaches")
            else:
                how = retention_at_sentence(curve).lower().rstrip(".")
            lines.append(f"By {label}, the cohorts differ beyond the noise (log-rank p {_pval(p)}, FDR-adjusted "
                         f"{_pval(q)}): **{soonest}** users leave soonest ({how}).")
        elif math.isfinite(q) and q < alpha:
            lines.append(f"By {label}, the cohorts differ beyond the noise (log-rank p {_pval(p)}, FDR-adjusted "
                         f"{_pval(q)}), but no cohort can be named as leaving soonest: their curves share no "
                         "stretch of tenure long enough to compare them on.")
        elif row is not None and not math.isfinite(p) and str(row.get("note", "")):
            lines.append(f"By {label}, the cohorts cannot be compared: {str(row['note']).removeprefix('not testable: ')}.")
        else:
            lines.append(f"By {label}, no cohort leaves sooner beyond the noise (log-rank p {_pval(p)}, "
                         f"FDR-adjusted {_pval(q)}), so none is singled out.")
    if comparison.too_small:
        size = f" (fewer than {min_users} users)" if min_users else ""
        small = _names([f"{k} ({v:,})" for k, v in comparison.too_small.items()])
        lines.append(f"Too few users for a curve{size}, so not drawn: {small}.")
    return lines


# --------------------------------------------------------------------------------------------
# The Cox model
# --------------------------------------------------------------------------------------------

def _meanings() -> dict[str, str]:
    d = feature_dictionary()
    return dict(zip(d["name"], d["meaning"]))


def _hr_frame(cox: CoxResult) -> pd.DataFrame:
    """The hazard ratios as ``feature, value, low, high`` (+ ``p`` when given), whatever the names."""
    hr = cox.hazard_ratios.copy()
    if "feature" not in hr.columns:
        hr = hr.rename_axis("feature").reset_index()
    ren = {}
    for target, options in (("value", ("hazard_ratio", "hr", "exp(coef)", "value")),
                            ("low", ("low", "hr_low", "hazard_ratio_low", "lower")),
                            ("high", ("high", "hr_high", "hazard_ratio_high", "upper"))):
        src = next((c for c in options if c in hr.columns), None)
        if src is not None and src != target:
            ren[src] = target
    return hr.rename(columns=ren)


def hazard_ratio_sentence(feature: str, hr: Interval, per: str = "SD", meaning: str | None = None) -> str:
    """``"each extra SD of songs played in the last 7 days multiplies the daily risk of cancelling by
    0.71 (0.60–0.84): lowers it"``."""
    what = meaning or feature.replace("_", " ")
    unit = "SD" if per in ("SD", "sd", "std") else per
    verdict = ("no clear effect (the interval covers 1)" if hr.covers(1.0) or not hr.known else
               "raises it" if hr.value > 1 else "lowers it")
    what = what[0].lower() + what[1:] if what[:2] != what[:2].upper() else what
    return (f"each extra {unit} of {what} multiplies the daily risk of cancelling by {hr.text(2)}: {verdict}")


def hazard_ratio_table(cox: CoxResult, top: int | None = None) -> pd.DataFrame:
    """Hazard ratios with intervals and a plain meaning, largest effects (on the log scale) first."""
    hr = _hr_frame(cox)
    meanings = _meanings()
    order = np.abs(np.log(hr["value"].astype(float))).sort_values(ascending=False, kind="stable").index
    hr = hr.loc[order]
    if top is not None:
        hr = hr.head(top)
    out = pd.DataFrame({
        "feature": hr["feature"].astype(str).to_numpy(),
        "meaning": [meanings.get(f, "") for f in hr["feature"].astype(str)],
        "hazard ratio per SD (95% interval)": [Interval.from_row(r).text(2) for _, r in hr.iterrows()],
    })
    if "p" in hr.columns:
        out["p"] = [_pval(float(p)) for p in hr["p"]]
    return out.set_index("feature")


def ph_sentence(cox: CoxResult) -> str:
    """What the proportional-hazards check (Schoenfeld residuals) found and what was done about it."""
    strategy = str(getattr(cox, "strategy", "as is"))
    failed = list(getattr(cox, "ph_failing_first", None) or _ph_failures(cox))
    if cox.ph_ok and strategy == "as is":
        return ("The proportional-hazards check (a test on the Schoenfeld residuals, per feature) finds no "
                "feature whose effect changes over time, so the model is used as it is.")
    names = _names(failed) if failed else "some features"
    if strategy.startswith("stratified"):
        by = strategy.split("by", 1)[-1].strip() if "by" in strategy else "the failing feature"
        return (f"The proportional-hazards check failed for {names}, so the model was refitted **stratified by "
                f"{by}**: each group of {by} gets its own baseline risk, and {by} itself gets no hazard ratio."
                + ("" if cox.ph_ok else " The check still fails after stratifying; read the ratios with care."))
    still = list(getattr(cox, "ph_failing", None) or failed)
    names = _names(still) if still else names
    return (f"The proportional-hazards check failed for {names}: their effect on the risk changes over time, "
            "so each of their hazard ratios is an average over the follow-up, not a constant; read them with "
            "care. Nothing was hidden or refitted.")


def _ph_failures(cox: CoxResult, alpha: float = 0.05) -> list[str]:
    ph = getattr(cox, "ph_test", None)
    if ph is None or not len(ph):
        return []
    ph = ph if "feature" in ph.columns else ph.rename_axis("feature").reset_index()
    if "fails" in ph.columns:
        bad = ph[ph["fails"].astype(bool)]
    elif "ok" in ph.columns:
        bad = ph[~ph["ok"].astype(bool)]
    else:
        pcol = next((c for c in ("p_adjusted", "p", "p_value") if c in ph.columns), None)
        bad = ph[ph[pcol].astype(float) < alpha] if pcol else ph.iloc[0:0]
    return [str(f) for f in bad["feature"] if str(f).lower() not in ("global", "all", "overall")]


def classifier_roc_auc(metrics: Mapping[str, Any] | None) -> Interval | None:
    """The classifier's holdout ROC-AUC from ``metrics.json`` (``chosen.holdout.roc_auc``); None when absent."""
    holdout = (((metrics or {}).get("chosen") or {}).get("holdout") or {})
    try:
        iv = Interval.from_value(holdout.get("roc_auc"))
    except (TypeError, ValueError):
        return None
    return None if iv is None or not math.isfinite(iv.value) else iv


def concordance_sentence(cox: CoxResult, roc_auc: Interval | None, horizon_days: float | None = None) -> str:
    """The Cox model's held-out concordance beside the classifier's holdout ROC-AUC."""
    c = cox.concordance
    window = f"{horizon_days:g}-day " if horizon_days else ""
    head = (f"On held-out users the Cox model orders who cancels first with a concordance of **{c.text(3)}** "
            "(0.5 is a coin flip, 1 a perfect order)")
    if roc_auc is None:
        return head + f"; the {window}classifier's ROC-AUC: not available (no `metrics.json` from 05_models)."
    return (head + f"; the {window}classifier's holdout ROC-AUC is {roc_auc.text(3)}. Both measure how well a score "
            "ranks users, but they answer different questions (when a user leaves, against whether they leave "
            "within the label window), on different held-out users.")


def cox_not_fitted_text(reason: str) -> str:
    """Why there is no Cox model in this run (e.g. too few cancellations after the observation date)."""
    return (f"The Cox model could not be fitted on this data: {reason.rstrip('.')}. No hazard ratios are shown; "
            "the retention curves above do not depend on it.")


def cox_lines(cox: CoxResult, roc_auc: Interval | None = None, top: int = 5,
              horizon_days: float | None = None) -> list[str]:
    """The Cox model in plain sentences: the strongest hazard ratios, the PH check, the concordance."""
    hr = _hr_frame(cox)
    meanings = _meanings()
    hr = hr.loc[np.abs(np.log(hr["value"].astype(float))).sort_values(ascending=False, kind="stable").index]
    clear = [r for _, r in hr.iterrows() if not Interval.from_row(r).covers(1.0) and Interval.from_row(r).known]
    lines = []
    if clear:
        for r in clear[:top]:
            s = hazard_ratio_sentence(str(r["feature"]), Interval.from_row(r), meaning=meanings.get(str(r["feature"])))
            lines.append(s[0].upper() + s[1:] + ".")
    else:
        lines.append("No feature's hazard ratio is clear of 1: none measurably changes the daily risk of cancelling.")
    lines.append(ph_sentence(cox))
    lines.append(concordance_sentence(cox, roc_auc, horizon_days))
    return lines


# --------------------------------------------------------------------------------------------
# Expected retention
# --------------------------------------------------------------------------------------------

def _er_frame(expected: pd.DataFrame) -> pd.DataFrame:
    e = expected.drop(columns=[c for c in ("low", "high", "value") if c in expected.columns
                               and "share" in expected.columns])
    ren = {}
    for target, options in (("group", ("group", "users_group", "who", "segment")),
                            ("horizon", ("horizon", "horizon_days", "days")),
                            ("users", ("users", "n_users", "n")),
                            ("value", ("share", "value", "retention", "expected_share")),
                            ("low", ("share_low", "low", "retention_low")),
                            ("high", ("share_high", "high", "retention_high"))):
        src = next((c for c in options if c in e.columns), None)
        if src is not None and src != target:
            ren[src] = target
    return e.rename(columns=ren)


#: How :func:`churnlib.survival.expected_retention` groups are called in the text.
GROUP_WORDS = {"all": "active", "paying": "paying"}


def _group(g: Any) -> str:
    return GROUP_WORDS.get(str(g), str(g))


def _expected_users(r: pd.Series) -> Interval | None:
    if "expected" in r.index and pd.notna(r["expected"]):
        return Interval(r["expected"], r.get("expected_low", np.nan), r.get("expected_high", np.nan))
    n = r.get("estimable", r.get("users", np.nan))
    iv = Interval.from_row(r)
    if pd.isna(n) or not math.isfinite(iv.value):
        return None
    return Interval(iv.value * n, iv.low * n, iv.high * n)


def expected_retention_table(expected: pd.DataFrame) -> pd.DataFrame:
    """Expected retention per group and horizon: today's users, the share and the number expected to
    still be subscribed (95% intervals), and why a horizon cannot be estimated for some users."""
    e = _er_frame(expected)
    rows = []
    for _, r in e.iterrows():
        iv = Interval.from_row(r)
        n, est = r.get("users", np.nan), r.get("estimable", r.get("users", np.nan))
        users = _expected_users(r)
        rows.append({
            "group": _group(r["group"]), "after (days)": int(r["horizon"]),
            "users today": f"{int(n):,}" if pd.notna(n) else "",
            "still subscribed (95% interval)": _pct(iv) if math.isfinite(iv.value) else "cannot be estimated",
            "expected users (95% interval)": (users.text(0) + (f" of {int(est):,}" if pd.notna(est) and est != n else "")
                                              if users is not None else "cannot be estimated"),
            "note": str(r.get("reason", "") or ""),
        })
    out = pd.DataFrame(rows).set_index(["group", "after (days)"])
    return out if out["note"].astype(bool).any() else out.drop(columns="note")


def expected_retention_lines(expected: pd.DataFrame) -> list[str]:
    """One sentence per group: how many of today's users are expected to stay 30/60/90 days; horizons
    the curve does not reach are said so, never extrapolated."""
    e = _er_frame(expected)
    lines = []
    for group, g in e.groupby("group", sort=False):
        g = g.sort_values("horizon")
        n = g["users"].iloc[0] if "users" in g else np.nan
        parts, missing = [], []
        for _, r in g.iterrows():
            iv, users = Interval.from_row(r), _expected_users(r)
            if not math.isfinite(iv.value):
                missing.append(f"{int(r['horizon'])}")
                continue
            est = r.get("estimable", n)
            of = f" of the {int(est):,} whose tenure the curve covers" if pd.notna(est) and est != n else ""
            parts.append(f"{_pct(iv)} after {int(r['horizon'])} days"
                         + (f" (about {users.text(0)} users{of})" if users is not None else ""))
        who = f"the {int(n):,} {_group(group)} users of today" if pd.notna(n) else f"today's {_group(group)} users"
        if pd.notna(n) and int(n) == 0:
            lines.append(f"There are no {_group(group)} users today.")
            continue
        line = f"Of {who}, expected still subscribed: {'; '.join(parts)}." if parts else f"For {who},"
        if missing:
            days_ = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
            line += ((" After " if parts else " retention after ") + f"{days_} days cannot be estimated (the "
                     "retention curve stops before their tenure plus that many days; nothing is extrapolated).")
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------
# Key numbers
# --------------------------------------------------------------------------------------------

def key_numbers(curve: RetentionCurve | None = None, comparisons: Mapping[str, CohortComparison] | None = None,
                cox: CoxResult | None = None, expected: pd.DataFrame | None = None) -> dict[str, str]:
    """Headline numbers for the report index."""
    out: dict[str, str] = {}
    if curve is not None:
        m = curve.median
        out["Median days to cancel"] = ("no curve: too few users followed at any tenure" if _too_short(curve) else
                                        m.text(0) + _of_start(curve) if m is not None and math.isfinite(m.value)
                                        else f"not reached within {_days(_last_day(curve))} days" + _of_start(curve))
        at = _retention_at(curve, 30)
        if at is not None:
            out["Still subscribed after 30 days"] = _pct(at) + _of_start(curve)
    if comparisons:
        soon = [f"{soonest_cohort(c)} ({_cohort_label(by)})" for by, c in comparisons.items()
                if soonest_cohort(c) is not None]
        out["Cohorts that leave soonest"] = "; ".join(soon) if soon else "none beyond the noise"
    if cox is not None:
        out["Cox concordance (held out)"] = cox.concordance.text(3)
    if expected is not None and len(expected):
        e = _er_frame(expected)
        for _, r in e[e["horizon"] == e["horizon"].min()].iterrows():
            iv = Interval.from_row(r)
            if math.isfinite(iv.value):
                out[f"{_group(r['group']).capitalize()} users still here after {int(r['horizon'])} days"] = _pct(iv)
    return out


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def _draw_curve(ax: plt.Axes, curve: RetentionCurve, colour: str, label: str | None = None,
                band: bool = True, lw: float = 2) -> None:
    """A step curve with its band, ending at the curve's last point (never extended)."""
    t = curve.table.sort_values("time")
    x, y = t["time"].to_numpy(float), t["survival"].to_numpy(float)
    if len(x) and x[0] > _start(curve):  # every curve starts at 100% at its start (day 0 or t0)
        x, y = np.r_[_start(curve), x], np.r_[1.0, y]
        lo, hi = np.r_[1.0, t["low"].to_numpy(float)], np.r_[1.0, t["high"].to_numpy(float)]
    else:
        lo, hi = t["low"].to_numpy(float), t["high"].to_numpy(float)
    ax.step(x, y, where="post", color=colour, label=label, lw=lw)
    if band:
        ax.fill_between(x, lo, hi, step="post", color=colour, alpha=0.18, lw=0)


def _survival_axes(ax: plt.Axes, xlabel: str) -> None:
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlim(left=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("still subscribed")


def plot_km(curve: RetentionCurve, what: str = "users", xlabel: str = "days since registration",
            min_at_risk: int | None = None) -> plt.Figure:
    """The Kaplan–Meier retention curve with its 95% band; the title states the median finding.

    The curve ends where :func:`churnlib.survival.kaplan_meier` cut it (too few users at risk); a note
    says so.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _draw_curve(ax, curve, _COLOURS[0], label="all users")
    _survival_axes(ax, xlabel)
    m = curve.median
    if m is not None and math.isfinite(m.value):
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.axvline(m.value, color="grey", lw=0.8, ls=":")
    min_at_risk = min_at_risk if min_at_risk is not None else getattr(curve, "min_at_risk", 20)
    t0 = _start(curve)
    note = f"the curve stops at day {_days(_last_day(curve))}: beyond it fewer than {min_at_risk} users remain at risk"
    if t0 > 0 and not _too_short(curve):
        ax.set_xlim(left=t0)
        ax.set_ylabel(f"still subscribed, of those subscribed {_days(t0)} days")
        note = (f"starts at day {_days(t0)}: fewer than {min_at_risk} users are followed at shorter tenures\n"
                + note)
    ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="grey")
    ax.set_title(km_title(curve, what))
    fig.tight_layout()
    return fig


def _cohort_title(comparison: CohortComparison, by: str) -> str:
    soonest = soonest_cohort(comparison)
    label = _cohort_label(by)
    if len(comparison.curves) < 2:
        return f"{label.capitalize()}: too few users to compare cohorts"
    if soonest is not None:
        return f"{label.capitalize()}: {soonest} users leave soonest"
    return f"{label.capitalize()}: no cohort leaves sooner beyond the noise"


def plot_cohorts(comparison: CohortComparison, by: str, ax: plt.Axes | None = None,
                 xlabel: str = "days since registration") -> plt.Figure:
    """Retention curves of one cohort kind, each with its band and cut where it was cut; cohorts too
    small for a curve are named under the plot. The title states the finding."""
    fig = ax.figure if ax is not None else plt.subplots(figsize=(8, 4.5))[0]
    ax = ax if ax is not None else fig.axes[0]
    # Many cohorts (states, months): the MAX_LABELLED largest get a colour and a legend entry, the rest
    # are drawn thin and grey, so every curve is shown and the legend stays readable.
    sizes = getattr(comparison, "sizes", None)
    users = dict(zip(sizes["cohort"].astype(str), sizes["users"])) if sizes is not None and len(sizes) else {}
    order = sorted(comparison.curves, key=lambda k: -users.get(str(k), 0))
    labelled = set(order[:MAX_LABELLED])
    others = 0
    for i, name in enumerate(order):
        curve = comparison.curves[name]
        if name in labelled:
            _draw_curve(ax, curve, _COLOURS[i % len(_COLOURS)], label=str(name), band=len(comparison.curves) <= 4)
        else:
            _draw_curve(ax, curve, "#BBBBBB", label=None if others else f"{len(order) - MAX_LABELLED} smaller cohorts",
                        band=False, lw=1)
            others += 1
    _survival_axes(ax, xlabel)
    starts = [_start(c) for c in comparison.curves.values() if not _too_short(c)]
    if starts and min(starts) > 0:
        ax.set_xlim(left=min(starts))
    if any(s > 0 for s in starts):
        ax.set_xlabel(f"{xlabel}\n(a curve starting after day 0 follows those who had stayed that long)", fontsize=9)
    if comparison.curves:
        ax.legend(frameon=False, fontsize=7, loc="lower left", ncol=2 if len(labelled) > 4 else 1)
    if comparison.too_small:
        ax.text(0.99, 0.02, "too few users, not drawn: " + _names(list(map(str, comparison.too_small)))[:90],
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey")
    ax.set_title(_cohort_title(comparison, by), fontsize=10)
    return fig


def plot_cohort_grid(comparisons: Mapping[str, CohortComparison], ncols: int = 2,
                     xlabel: str = "days since registration") -> plt.Figure:
    """A small grid: one panel per cohort kind (:func:`plot_cohorts`); the title names the cohorts that
    leave soonest beyond the noise."""
    n = max(len(comparisons), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (by, comp) in zip(axes.flat, comparisons.items()):
        plot_cohorts(comp, by, ax=ax, xlabel=xlabel)
    for ax in list(axes.flat)[len(comparisons):]:
        ax.set_visible(False)
    soon = [f"{soonest_cohort(c)} ({_cohort_label(by)})" for by, c in comparisons.items()
            if soonest_cohort(c) is not None]
    fig.suptitle("Cohorts that leave soonest: " + _names(soon) if soon else
                 "No cohort leaves sooner than the others beyond the noise", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_hazard_ratios(cox: CoxResult, top: int = 15) -> plt.Figure:
    """Forest plot of hazard ratios per SD with 95% intervals (log scale, 1 = no effect); the title
    names the feature with the largest clear effect."""
    hr = _hr_frame(cox)
    hr = hr.loc[np.abs(np.log(hr["value"].astype(float))).sort_values(ascending=False, kind="stable").index]
    hr = hr.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(hr) + 1.4))
    y = np.arange(len(hr))
    clear = [(not Interval.from_row(r).covers(1.0)) and Interval.from_row(r).known for _, r in hr.iterrows()]
    colours = ["#DD8452" if c else "#8C8C8C" for c in clear]
    v, lo, hi = (hr[c].to_numpy(float) for c in ("value", "low", "high"))
    for yi, vi, li, hi_, c in zip(y, v, lo, hi, colours):
        ax.errorbar([vi], [yi], xerr=[[vi - li], [hi_ - vi]], fmt="none", ecolor=c, capsize=3)
    ax.scatter(v, y, color=colours, zorder=3)
    ax.axvline(1.0, color="grey", lw=1, ls="--")
    ax.set_xscale("log")
    ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10)
             if np.nanmin(lo) / 1.2 <= t <= np.nanmax(hi) * 1.2]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_yticks(y, [str(f).replace("_", " ") for f in hr["feature"]])
    ax.set_xlabel("hazard ratio per SD (log scale; 1 = no effect, >1 = leaves sooner)")
    strongest = [r for (_, r), c in zip(hr.iloc[::-1].iterrows(), clear[::-1]) if c]
    if strongest:
        r = strongest[0]
        word = "raises" if float(r["value"]) > 1 else "lowers"
        ax.set_title(f"{str(r['feature']).replace('_', ' ')} {word} the risk of cancelling most "
                     f"(×{float(r['value']):.2f} per SD)")
    else:
        ax.set_title("No feature clearly changes the risk of cancelling")
    fig.tight_layout()
    return fig


def plot_expected_retention(expected: pd.DataFrame) -> plt.Figure:
    """Bars of the share of today's users expected to still be subscribed at each horizon, per group,
    with 95% intervals; the title states the longest-horizon finding."""
    e = _er_frame(expected)
    groups = list(dict.fromkeys(e["group"]))
    horizons = sorted(e["horizon"].unique())
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(groups), 1)
    for j, g in enumerate(groups):
        sub = e[e["group"] == g].set_index("horizon").reindex(horizons)
        x = np.arange(len(horizons)) + (j - (len(groups) - 1) / 2) * width
        v = sub["value"].to_numpy(float)
        err = [v - sub["low"].to_numpy(float), sub["high"].to_numpy(float) - v]
        ax.bar(x, np.nan_to_num(v), width * 0.95, color=_COLOURS[j % len(_COLOURS)], label=f"{_group(g)} users",
               yerr=np.nan_to_num(err), capsize=4)
        for xi, vi in zip(x, v):
            if not math.isfinite(vi):
                ax.text(xi, 0.02, "cannot be\nestimated", ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_xticks(np.arange(len(horizons)), [f"after {int(h)} days" for h in horizons])
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_ylabel("expected still subscribed")
    ax.legend(frameon=False, loc="lower left")
    known = e[np.isfinite(e["value"].astype(float))]
    if len(known):
        r = known[known["horizon"] == known["horizon"].max()].iloc[-1]
        ax.set_title(f"About {float(r['value']):.0%} of today's {_group(r['group'])} users are expected to stay "
                     f"{int(r['horizon'])} more days")
    else:
        ax.set_title("Expected retention cannot be estimated: the curve is too short")
    fig.tight_layout()
    return fig
