"""The synthetic-feature study in plain words, display tables and figures (notebook 08 calls these).

Every figure and verdict comes from :mod:`churnlib.synthetic_study` (statistics) and
:mod:`churnlib.synthetic` (the generator); this module only words, tabulates and draws them.
Intervals are written by :meth:`churnlib.intervals.Interval.text`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlib.intervals import Interval
from churnlib.plotting import CLASS_PALETTE
from churnlib.synthetic import DEFAULT_EFFECT_SIZE, SYNTHETIC_FEATURES
from churnlib.synthetic_study import (
    AUGMENTED,
    EARLIER_PROJECT,
    ORIGINAL,
    ContrastDirections,
    EarlierComparison,
    SnapshotSignal,
    contrast_directions,
    curve_metric,
    earlier_figures,
)

__all__ = [
    "WHAT_IT_MEASURES",
    "before_after_numbers",
    "before_after_table",
    "before_after_text",
    "contrast_numbers",
    "contrast_table",
    "contrast_text",
    "curve_table",
    "earlier_project_text",
    "event_table_text",
    "plot_before_after",
    "plot_feature_contrast",
    "plot_value_of_data",
    "signal_words",
    "snapshot_signal_numbers",
    "snapshot_signal_text",
    "value_of_data_numbers",
    "value_of_data_text",
]

#: The study's one-line conclusion for the key numbers.
WHAT_IT_MEASURES: str = "the signal put into the generator, not customer behaviour"

_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "f1": "F1"}
_COLORS = {"random_forest": "#4C72B0", "hist_gb": "#DD8452"}


# --------------------------------------------------------------------------------------------
# Section 1: the snapshot's own columns
# --------------------------------------------------------------------------------------------

def signal_words(signal: SnapshotSignal) -> str:
    """The verdict of :func:`churnlib.synthetic_study.signal_verdict` as a short phrase for the key numbers."""
    return {"none": "none detected",
            "trace": f"a trace of no practical use (ROC-AUC < {signal.trace_below:g})",
            "some": "some"}[signal.verdict]


def snapshot_signal_text(signal: SnapshotSignal, permutation_model: str,
                         noise_fraction: float, effect_size: float = DEFAULT_EFFECT_SIZE) -> str:
    """Markdown: the permutation test, each model's ROC-AUC, the verdict, and what F1 means without signal.

    Parameters
    ----------
    signal : SnapshotSignal
        :func:`churnlib.synthetic_study.snapshot_signal`.
    permutation_model : str
        Model of the permutation test (named in the text).
    noise_fraction, effect_size : float
        The generator settings, quoted when the synthetic features are introduced.
    """
    def where(a: Interval) -> str:
        if a.covers(0.5):
            return " -- the interval covers 0.5 (chance)."
        return " -- above chance." if a.above(0.5) else " -- below chance."

    verdict = {
        "none": "**No detectable signal**: on its own columns the snapshot does not separate churners from the "
                "others. ",
        "trace": "**At most a trace of signal, of no practical use**: an interval barely clears 0.5 while the "
                 "permutation test finds nothing, and no model ranks churners much better than a coin flip. ",
        "some": "**The snapshot's own columns carry some signal** here (see the intervals above). ",
    }[signal.verdict]
    stalled = signal.earlier_stalled_f1
    f1_note = (f"Note that F1 without signal is not 0: flagging every user as a churner at a "
               f"{signal.churn_rate:.1%} churn rate gives F1 = 2p / (1 + p) = {signal.flag_everyone_f1:.2f} -- "
               + (f"the earlier project's stalled F1 ≈ {stalled:.2f} is exactly that."
                  if signal.stalled_f1_is_flag_everyone else
                  f"the earlier project's stalled F1 ≈ {stalled:.2f} was measured at another churn rate or "
                  "threshold."))
    return "\n".join([
        f"- **{permutation_model} permutation test**: {signal.permutation.statement()}",
        *[f"- **{m}**, cross-validated ROC-AUC {a.text()}" + where(a) for m, a in signal.aucs.items()],
        "",
        verdict + f1_note,
        "",
        "The nine synthetic features are then drawn **from the churn label itself**: each user's value comes "
        "from the churned or the retained distribution according to whether they churned, the two overlapping "
        f"heavily (a standardised difference of {effect_size:g} on a latent scale) and "
        f"{noise_fraction:.1%} of the values replaced -- half by the other group's pattern, half at random. "
        "A model fed these columns can only recover the difference that was put in.",
    ])


def snapshot_signal_numbers(signal: SnapshotSignal, permutation_model: str) -> dict[str, str]:
    """Key numbers of section 1: the verdict, the first model's ROC-AUC and the permutation p-value."""
    lead, auc = next(iter(signal.aucs.items()))
    return {"Snapshot alone: signal": signal_words(signal),
            f"Snapshot alone: {lead} ROC-AUC": auc.text(2),
            "Snapshot alone: permutation test p": f"{signal.permutation.p_value:.2f} ({permutation_model})"}


# --------------------------------------------------------------------------------------------
# Section 2: before and after
# --------------------------------------------------------------------------------------------

def earlier_project_text(model: str = "random_forest", features: str = AUGMENTED) -> str:
    """The earlier project's reported ROC-AUC and F1 for one model, e.g. ``"ROC-AUC 0.79, F1 0.62"``."""
    theirs = earlier_figures(model, features)
    if theirs is None:
        return "not reported"
    return f"ROC-AUC {theirs['roc_auc']:.2f}, F1 {theirs['f1']:.2f}"


def before_after_text(cmp: EarlierComparison) -> str:
    """Markdown: our figures with the synthetic features, theirs beside them, and what the rise means."""
    text = (f"With the synthetic features the {cmp.model} reaches ROC-AUC **{cmp.roc_auc.text(2)}** and F1 "
            f"**{cmp.f1.text(2)}**")
    if cmp.reported:
        text += (f" (theirs: {cmp.theirs_roc_auc:.2f} and {cmp.theirs_f1:.2f}; their ROC-AUC is "
                 + ("inside" if cmp.theirs_auc_inside else "outside") + " our interval)")
    text += (". The rise is real arithmetic but not a finding about customers: it is the effect size we chose, "
             "passed through the noise and the model.")
    if cmp.theirs_f1_above:
        text += (f" Their F1 ({cmp.theirs_f1:.2f}) is above our interval; their figures do not say how their "
                 "threshold was chosen, while ours is chosen on other folds, never on the rows it is scored on.")
    return text


def before_after_numbers(cmp: EarlierComparison) -> dict[str, str]:
    """Key numbers of section 2: our ROC-AUC and F1 with the synthetic features, and the earlier project's."""
    return {f"With synthetic features: {cmp.model} ROC-AUC": cmp.roc_auc.text(2),
            f"With synthetic features: {cmp.model} F1": cmp.f1.text(2),
            "Earlier project (theirs): random forest": earlier_project_text("random_forest")}


def before_after_table(long: pd.DataFrame, metrics: Sequence[str] = ("f1", "roc_auc", "pr_auc"),
                       reference: bool = True) -> pd.DataFrame:
    """Display table of :func:`churnlib.synthetic_study.before_after`: ``value (low–high)`` per metric.

    Parameters
    ----------
    long : pandas.DataFrame
        Output of :func:`churnlib.synthetic_study.before_after`.
    metrics : sequence of str
        Metrics shown, in order.
    reference : bool, default True
        Add the earlier project's reported figures (:data:`churnlib.synthetic_study.EARLIER_PROJECT`)
        as ``<metric> (theirs)`` columns, blank where they reported none.

    Returns
    -------
    pandas.DataFrame
        Index (model, features).
    """
    rows = []
    for (model, feats), g in long.groupby(["model", "features"], sort=False):
        g = g.set_index("metric")
        row = {"model": model, "features": feats}
        for m in metrics:
            row[f"{m} (ours, 95% CI)"] = Interval.from_row(g.loc[m]).text()
        if reference:
            theirs = earlier_figures(model, feats)
            for m in metrics:
                v = np.nan if theirs is None else theirs[m]
                row[f"{m} (theirs)"] = "" if pd.isna(v) else f"{v:.3g}"
        rows.append(row)
    out = pd.DataFrame(rows).set_index(["model", "features"])
    if reference:
        out = out[[c for m in metrics for c in (f"{m} (ours, 95% CI)", f"{m} (theirs)")]]
    return out


# --------------------------------------------------------------------------------------------
# Section 3: the value-of-data curve
# --------------------------------------------------------------------------------------------

def curve_table(curve: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "f1", "pr_auc")) -> pd.DataFrame:
    """Display table of a value-of-data curve: one row per effect size, ``value (low–high)`` per metric."""
    shown = curve[curve["metric"].isin(metrics)].copy()
    shown["value (95% CI)"] = [Interval.from_row(r).text() for _, r in shown.iterrows()]
    return shown.pivot(index="effect_size", columns="metric", values="value (95% CI)")[list(metrics)]


def value_of_data_text(curve: pd.DataFrame) -> str:
    """Markdown: how ROC-AUC follows the effect size, and what the curve is good for."""
    auc = curve_metric(curve, "roc_auc")
    lo, hi = auc.index.min(), auc.index.max()
    theirs = earlier_figures("random_forest", AUGMENTED)
    follows = "following the dial" if auc.is_monotonic_increasing else "not rising steadily with the dial"
    return (f"ROC-AUC goes from **{auc[lo]:.2f}** at effect size {lo:g} to **{auc[hi]:.2f}** at {hi:g}, "
            f"{follows}. **Features drawn from the label show only the signal that was put in: the "
            f"{theirs['roc_auc']:.2f} is a property of the generator, not of the customers.** The curve is worth "
            "having for another reason: it prices a data-collection project. Before building a pipeline for, say, "
            "payment failures, ask how strongly they differ between churners and the others in a pilot; the curve "
            "then says what the model could gain.")


def value_of_data_numbers(curve: pd.DataFrame) -> dict[str, str]:
    """Key number of section 3: ROC-AUC at each effect size."""
    auc = curve_metric(curve, "roc_auc")
    return {"Value of data: ROC-AUC by effect size": ", ".join(f"{d:g}: {v:.2f}" for d, v in auc.items())}


# --------------------------------------------------------------------------------------------
# Section 4: drawn from the label vs measured from events
# --------------------------------------------------------------------------------------------

def event_table_text(log_path: str | Path, table: pd.DataFrame, n_dates: int, horizon_days: int,
                     id_col: str = "userId", label_col: str = "churned") -> str:
    """Markdown: the event-derived table the contrast runs on (rows, users, dates, churn rate)."""
    return (f"Event log `{Path(log_path).name}`: {len(table):,} rows "
            f"({table[id_col].nunique():,} users at {n_dates} observation dates), "
            f"{table[label_col].mean():.1%} churned within {horizon_days} days.")


def contrast_table(contrast: pd.DataFrame) -> pd.DataFrame:
    """Display table of a feature contrast: ROC-AUC by source, the event column and Cohen's d measured."""
    measured = contrast[contrast["source"] == "measured from events"].set_index("feature")
    wide = contrast.pivot(index="feature", columns="source", values="auc").reindex(list(SYNTHETIC_FEATURES))
    wide.insert(0, "event column", measured["column"])
    wide["d (measured)"] = measured["cohens_d"]
    return wide.round(3)


def contrast_text(directions: ContrastDirections) -> str:
    """Markdown: which measured signals separate churners as assumed, the other way, or not clearly."""
    def names(fs: list[str]) -> str:
        return ", ".join(f"`{f}`" for f in fs) or "none"

    d = directions
    return "\n".join([
        f"- **Measured, in the assumed direction** ({len(d.assumed)} of {d.n_measured}): {names(d.assumed)}.",
        f"- **Measured, in the opposite direction** ({len(d.reversed)}): {names(d.reversed)}"
        + (" -- users about to leave are less active, so they also visit Help and hit errors less often: "
           "a count of contacts partly measures activity." if d.reversed else "."),
        f"- **No clear difference** ({len(d.unclear)}): {names(d.unclear)}.",
        f"- **No event equivalent**: {names(d.no_equivalent)}.",
        "",
        "The difference in kind matters more than the numbers: a measured feature is behaviour recorded "
        "before the observation date, so its strength (or its surprising direction) is something learned "
        "about users. A drawn feature is the label plus noise: it separates the groups by exactly the amount "
        "chosen, in exactly the direction assumed, whatever the users did. (This event log is simulated, so "
        "its measured effects are properties of the simulator; on a real log they would be evidence.)",
    ])


def contrast_numbers(directions: ContrastDirections) -> dict[str, str]:
    """Key number of section 4: how many measured signals separate churners, and which way."""
    return {"Event-derived signals separating churners":
            f"{len(directions.assumed)} of {directions.n_measured} as assumed, {len(directions.reversed)} reversed"}


# --------------------------------------------------------------------------------------------
# Figures (house style: churnlib.plotting; titles state the finding)
# --------------------------------------------------------------------------------------------

def plot_value_of_data(curve: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "f1"),
                       reference: bool = True, default_effect: float | None = DEFAULT_EFFECT_SIZE) -> plt.Figure:
    """Metrics against the effect size put into the synthetic features, with 95% interval bands.

    Parameters
    ----------
    curve : pandas.DataFrame
        Output of :func:`churnlib.synthetic_study.value_of_data_curve` (several models may be concatenated).
    metrics : sequence of str
        One panel per metric.
    reference : bool, default True
        Dotted lines at the earlier project's random-forest figures with synthetic features.
    default_effect : float, optional
        Mark the default effect size (the one calibrated to their ROC-AUC).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.2))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics):
        for model, g in curve[curve["metric"] == m].groupby("model", sort=False):
            g = g.sort_values("effect_size")
            color = _COLORS.get(model)
            ax.plot(g["effect_size"], g["value"], marker="o", color=color, label=model)
            ax.fill_between(g["effect_size"], g["low"], g["high"], color=color, alpha=0.2)
        if reference and m in ("roc_auc", "f1"):
            theirs = EARLIER_PROJECT.loc[("random_forest", AUGMENTED), m]
            ax.axhline(theirs, color="black", ls=":", lw=1, label=f"earlier project, RF (theirs): {theirs:.2f}")
        if m == "roc_auc":
            ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
        if default_effect is not None:
            ax.axvline(default_effect, color="grey", lw=0.8)
        ax.set(xlabel="effect size put into each synthetic feature (latent Cohen's d)",
               ylabel=f"{_NAMES.get(m, m)} (CV, 95% interval)")
        ax.legend(fontsize=8, loc="upper left")
    lead = curve_metric(curve, metrics[0])
    lo, hi = lead.index[0], lead.index[-1]
    fig.suptitle(f"{_NAMES.get(metrics[0], metrics[0])} follows the signal put in: {lead[lo]:.2f} at effect "
                 f"size {lo:g}, {lead[hi]:.2f} at {hi:g}", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_before_after(long: pd.DataFrame, metrics: Sequence[str] = ("f1", "roc_auc", "pr_auc"),
                      reference: bool = True) -> plt.Figure:
    """Bars with 95% intervals: each model with the original columns and with the synthetic features.

    The earlier project's reported figures, where they exist, are black diamonds (``reference``).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4))
    axes = np.atleast_1d(axes)
    models = list(dict.fromkeys(long["model"]))
    colors = {ORIGINAL: "grey", AUGMENTED: CLASS_PALETTE["churned"]}
    w = 0.38
    for ax, m in zip(axes, metrics):
        for j, feats in enumerate((ORIGINAL, AUGMENTED)):
            g = long[(long["metric"] == m) & (long["features"] == feats)].set_index("model").reindex(models)
            x = np.arange(len(models)) + (j - 0.5) * w
            err = np.vstack([g["value"] - g["low"], g["high"] - g["value"]])
            ax.bar(x, g["value"], width=w, yerr=err, capsize=3, color=colors[feats], alpha=0.85, label=feats)
            if reference:
                theirs = [np.nan if earlier_figures(mo, feats) is None else earlier_figures(mo, feats)[m]
                          for mo in models]
                ax.scatter(x, theirs, marker="D", color="black", zorder=3, s=22,
                           label="earlier project (theirs)" if j == 1 else None)
        if m == "roc_auc":
            ax.axhline(0.5, color="grey", ls="--", lw=1)
        ax.set_xticks(np.arange(len(models)), models)
        ax.set_ylabel(f"{_NAMES.get(m, m)} (CV, 95% interval)")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8, loc="upper left")
    g = long[long["metric"] == "roc_auc"].set_index(["model", "features"])["value"]
    first = models[0]
    fig.suptitle(f"{first}: ROC-AUC {g[(first, ORIGINAL)]:.2f} on the snapshot's own columns, "
                 f"{g[(first, AUGMENTED)]:.2f} with features drawn from the label", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_feature_contrast(contrast: pd.DataFrame) -> plt.Figure:
    """Single-feature ROC-AUC (95% interval) of each signal: drawn from the label vs measured from events."""
    feats = list(dict.fromkeys(contrast["feature"]))
    colors = {"drawn from the label": CLASS_PALETTE["churned"], "measured from events": CLASS_PALETTE["retained"]}
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(feats) + 1.6))
    for k, (source, color) in enumerate(colors.items()):
        g = contrast[contrast["source"] == source].set_index("feature").reindex(feats)
        yy = np.arange(len(feats)) + (k - 0.5) * 0.3
        ok = g["auc"].notna().to_numpy()
        err = np.vstack([g["auc"] - g["low"], g["high"] - g["auc"]])[:, ok]
        ax.errorbar(g["auc"][ok], yy[ok], xerr=err, fmt="o", color=color, capsize=3, label=source)
        for y_ in yy[~ok]:
            ax.text(0.5, y_, " no event equivalent", va="center", fontsize=8, color=color)
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_yticks(np.arange(len(feats)), feats)
    ax.invert_yaxis()
    ax.set_xlabel("ROC-AUC of the feature alone, in its documented churn direction (95% interval)")
    ax.legend(fontsize=8, loc="lower right")
    # a measured feature may separate in the direction opposite to the generator's assumption
    d = contrast_directions(contrast)
    ax.set_title(f"Drawn from the label, {len(d.drawn_assumed)} of {d.n_drawn} separate churners as "
                 f"assumed; measured from events, {len(d.assumed)} of {d.n_measured} do"
                 + (f" and {len(d.reversed)} point the other way" if d.reversed else ""), fontsize=11)
    return fig
