"""Monitoring in plain words and pictures: the sentences, tables and figures of ``07_monitoring``.

The numbers and decisions come from :mod:`churnlib.drift` and :mod:`churnlib.monitoring`; this
module only words and draws them (intervals in the one text form of
:meth:`churnlib.intervals.Interval.text`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from churnlib import plotting
from churnlib.drift import MIN_ROWS, DriftReport
from churnlib.intervals import Interval
from churnlib.monitoring import (METRIC_LABELS, ChallengeResult, MonitoringPlan, Recommendation, ScenarioRun,
                                 StoreMonitoring, TableComparison, recommend)
from churnlib.scenarios import SCENARIOS, FalseAlarmResult, ReferenceWindow

__all__ = [
    "challenge_lines",
    "command_text",
    "drift_summary",
    "false_alarm_statement",
    "not_run_key_numbers",
    "not_run_text",
    "performance_table",
    "plot_drift",
    "plot_performance",
    "reference_description",
    "recommendation_headline",
    "recommendation_text",
    "retrain_recommendation",
    "scenario_overview",
    "scenario_table",
    "score_drift_statement",
    "store_text",
    "table_key_numbers",
    "table_lines",
    "table_performance_text",
    "window_description",
    "write_store_figure",
]


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _names(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------

def drift_summary(report: DriftReport, top: int = 5) -> str:
    """One plain sentence: how many features drifted, and the largest shifts."""
    d = report.drifted
    if d.empty:
        return (f"No feature drifted: none of {report.n_checked} features has PSI > {report.psi_threshold:g} "
                f"or KS > {report.ks_threshold:g}.")
    names = ", ".join(f"{r.feature} (PSI {r.psi:.2f}" + (f", KS {r.ks:.2f})" if np.isfinite(r.ks) else ")")
                      for r in d.head(top).itertuples())
    more = f" and {len(d) - top} more" if len(d) > top else ""
    return f"{len(d)} of {report.n_checked} features drifted: {names}{more}."


def false_alarm_statement(result: FalseAlarmResult) -> str:
    """A plain sentence on the false-alarm rate (and what to do when it is high)."""
    iv = result.interval
    n = result.n_pairs
    txt = (f"On {n} pairs of fresh samples from the same process the monitor fired {result.rate.count} times: "
           f"a false-alarm rate of {iv.value:.0%} (95% interval {iv.low:.0%}–{iv.high:.0%}).")
    if n < 30:
        txt += f" With {n} pairs the interval is wide; more pairs narrow it."
    if iv.value > 0.1:
        top = ", ".join(result.by_feature.head(3).index)
        txt += (f" That is high: most alarms come from {top}. Raise the thresholds, require more rows per "
                "window, or ignore those features.")
    return txt


def recommendation_text(rec: Recommendation) -> str:
    """The recommendation in plain words (starts with "Retrain", "Investigate" or "No action")."""
    label = _label(rec.metric)
    what = drift_summary(rec.drift, top=3)
    if not rec.measured:
        perf = f"{label} on newly labelled users cannot be measured yet ({rec.unmeasured_because})"
        if rec.action == "investigate":
            return (f"Investigate: {what} {perf}; retrain only if the change is lasting and the labels, once "
                    "they arrive, show the model slipping.")
        return f"No action: {what} {perf}."
    ref, cur = rec.reference.text(), rec.current.text()
    if rec.action == "retrain":
        cause = ("" if rec.drift.fired else " No input feature drifted, so the link between behaviour and churn "
                 "itself may have changed.")
        return (f"Retrain: {label} on newly labelled users fell to {cur} from {ref} on the reference. {what}"
                f"{cause} Refit the same pipeline on recent data and let it replace the champion only if it "
                "scores better on the same held-out users.")
    if rec.action == "investigate":
        return (f"Investigate, no retraining needed yet: {what} {label} on newly labelled users, {cur}, is "
                f"consistent with the reference {ref}. Check whether the change is intended, and re-check as "
                "more labels arrive.")
    return (f"No action: {what} {label} on newly labelled users, {cur}, is consistent with the reference "
            f"{ref}.")


def recommendation_headline(rec: Recommendation) -> str:
    """The recommendation's first words ("Retrain", "Investigate, no retraining needed yet", ...)."""
    return recommendation_text(rec).split(":")[0]


def retrain_recommendation(drift: DriftReport, performance: pd.DataFrame | None, *, metric: str = "roc_auc") -> str:
    """:func:`churnlib.monitoring.recommend` in plain words (see :func:`recommendation_text`)."""
    return recommendation_text(recommend(drift, performance, metric=metric))


def reference_description(ref: ReferenceWindow) -> str:
    """What the reference window is: its users, log, start and observation date."""
    latest = ref.latest
    log = "simulated default log" if ref.simulated else f"event log `{ref.log.name}`"
    return (f"{ref.n_users:,} users of the {log} starting {ref.start:%Y-%m-%d}, features as of "
            f"{ref.as_of:%Y-%m-%d} ({len(latest):,} current users)")


def window_description(run: ScenarioRun, name: str | None = None) -> str:
    """What a simulated new window is (default: the current scenario's)."""
    name = name or run.current
    latest = run[name].latest
    return (f"{run.n_users:,} new users simulated from {run.start} under the '{name}' scenario -- "
            f"{SCENARIOS[name][0]}; features as of {latest['as_of'].max():%Y-%m-%d} ({len(latest):,} current users)")


def challenge_lines(result: ChallengeResult) -> list[str]:
    """Markdown bullets: what the challenger was fitted on, both scores, and the decision (a result of
    :func:`churnlib.monitoring.challenge_window`, whose ``info`` holds the counts)."""
    label = _label(result.metric)
    i = result.info
    return [
        f"- Challenger fitted on {result.n_train:,} rows ({i['n_reference']:,} reference + {i['n_new_train']:,} new); "
        f"both scored on {result.n_holdout:,} rows of {i['n_holdout_users']:,} held-out new users.",
        f"- {label}: champion **{result.champion.text()}**, challenger **{result.challenger.text()}**.",
        f"- **Decision: {result.decision}** -- {result.reason}. Rule: {result.rule}.",
    ]


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def performance_table(performance: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "pr_auc", "brier")) -> pd.DataFrame:
    """Reference and new window as interval text, and the change, for ``metrics``."""
    return pd.DataFrame({
        "reference (95% interval)": [Interval.from_row(r, "reference").text() for _, r in performance.iterrows()],
        "new window (95% interval)": [Interval.from_row(r, "current").text() for _, r in performance.iterrows()],
        "change": performance["change"].round(3)}, index=performance.index).loc[list(metrics)]


def scenario_overview(run: ScenarioRun) -> pd.DataFrame:
    """Per reported scenario: what changed, how many features drifted, whether the monitor fired."""
    return pd.DataFrame([{"scenario": n, "what changed": SCENARIOS[n][0], "features drifted": len(r.drifted),
                          "fired": r.fired, "largest shifts": ", ".join(r.drifted["feature"].head(4))}
                         for n, r in run.reports.items()]).set_index("scenario")


def scenario_table(run: ScenarioRun) -> pd.DataFrame:
    """Per reported scenario: features drifted, churn rate, the champion's ROC-AUC, the recommendation."""
    rows = []
    for name in run.reported:
        res = run[name]
        iv = Interval.from_row(res.performance.loc["roc_auc"], "current")
        rows.append({"scenario": name, "features drifted": len(res.drift.drifted),
                     "churn rate": f"{res.window['churned'].mean():.1%}",
                     "ROC-AUC (95% interval)": iv.text(),
                     "recommendation": recommendation_headline(res.recommendation)})
    return pd.DataFrame(rows).set_index("scenario")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def plot_drift(reports: dict[str, DriftReport], top: int = 15) -> plt.Figure:
    """Heatmap of PSI per feature (rows) and scenario (columns), drifted cells marked.

    Rows: the features with the largest PSI in any scenario (at most ``top``). The title says which
    scenarios fired and which stayed quiet.
    """
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


def _errorbar(ax: plt.Axes, x: float, iv: Interval, **kw) -> None:
    ax.errorbar(x, iv.value, yerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", capsize=4, **kw)


def plot_performance(performance: pd.DataFrame, challenge_result: ChallengeResult | None = None,
                     metrics: Sequence[str] = ("roc_auc", "pr_auc")) -> plt.Figure:
    """Point estimates and 95% intervals: reference vs new window, and champion vs challenger."""
    panels = 2 if challenge_result is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    for j, (window, colour) in enumerate((("reference", "#4C72B0"), ("current", "#DD8452"))):
        for i, m in enumerate(metrics):
            _errorbar(ax, i + (j - 0.5) * 0.25, Interval.from_row(performance.loc[m], window), color=colour,
                      label=window if i == 0 else None)
    ax.set_xticks(range(len(metrics)), [m.replace("_", "-").upper() for m in metrics])
    ax.set_xlim(-0.5, len(metrics) - 0.5)
    ax.set_ylabel("on users the model never saw")
    ax.legend(frameon=False, title="window")
    row = performance.loc["roc_auc"]
    ref, cur = Interval.from_row(row, "reference"), Interval.from_row(row, "current")
    ax.set_title(f"ROC-AUC {'fell' if cur.below(ref.value) else 'held'} on the new window "
                 f"({ref.value:.2f} → {cur.value:.2f})", fontsize=10)
    if challenge_result is not None:
        ax = axes[0, 1]
        c = challenge_result
        for i, (iv, colour) in enumerate(((c.champion, "#4C72B0"), (c.challenger, "#55A868"))):
            _errorbar(ax, i, iv, color=colour)
        ax.set_xticks([0, 1], ["champion", "challenger"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylabel(c.metric.replace("_", "-").upper() + " on held-out new users")
        d = c.difference
        ax.set_title(f"Challenger {'replaces' if c.replaced else 'does not replace'} the champion: gain "
                     f"{d.value:+.3f} (95% {d.low:+.3f} to {d.high:+.3f})", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Two tables (snapshot data), or no second table
# --------------------------------------------------------------------------------------------

def not_run_text(plan: MonitoringPlan) -> str:
    """Markdown: monitoring was not run, why, and how to give the second table."""
    return (f"**Monitoring was not run: it needs a second table.** {plan.reason[0].upper()}{plan.reason[1:]}. "
            f"To monitor, {plan.how}.")


def not_run_key_numbers(plan: MonitoringPlan) -> dict[str, str]:
    """The report index's one line for a monitoring run that did not happen (no drift numbers)."""
    return {"Monitoring": "not run: a snapshot table needs a second, later table to compare with "
                          "(CURRENT= / `churnlib monitor --current`)"}


def score_drift_statement(result: TableComparison) -> str:
    """One sentence on how far the model's churn probabilities moved between the two tables."""
    if result.score_drift is None:
        return "No model was scored, so the churn probabilities were not compared."
    r = result.score_drift.table.iloc[0]
    moved = "moved beyond the drift rule" if r["drifted"] else "did not move beyond the drift rule"
    return (f"The model's churn probabilities {moved}: mean {r['reference_mean']:.3f} on the reference, "
            f"{r['current_mean']:.3f} on the current table (PSI {r['psi']:.2f}, KS {r['ks']:.2f}).")


def table_performance_text(result: TableComparison, metric: str = "roc_auc") -> str:
    """One sentence on the model's ranking on the current table's labels, against its reference."""
    if result.performance is None:
        return ("The model's performance on the current table was not measured "
                + ("(no model was given)." if not result.model else "(the current table has no labels yet)."))
    row = result.performance.loc[metric]
    cur = Interval.from_row(row, "current")
    label = _label(metric)
    if not np.isfinite(row["reference"]):
        return f"{label} on the current table's labels: {cur.text()} (nothing to compare it with)."
    ref = Interval.from_row(row, "reference")
    verdict = ("lower beyond the noise" if cur.below(ref.value) else
               "consistent with the reference" if cur.covers(ref.value) or ref.covers(cur.value) else
               "higher than the reference")
    return (f"{label} on the current table's labels: {cur.text()}, against {ref.text()} on "
            f"{result.performance_reference}: {verdict}.")


def table_lines(result: TableComparison) -> list[str]:
    """Markdown bullets: the two tables, what drifted, the scores, performance, false alarms, notes."""
    lines = [f"- **Reference table**: {result.reference}.", f"- **Current table**: {result.current}.",
             f"- **Model**: {result.model or 'none given'}.",
             f"- **What changed**: {drift_summary(result.drift)}",
             f"- **Scores**: {score_drift_statement(result)}",
             f"- **Performance**: {table_performance_text(result)}"]
    if result.false_alarms is not None:
        fa = result.false_alarms
        iv = fa.interval
        lines.append(f"- **False alarms**: on {fa.n_pairs} random splits of the reference table into halves the "
                     f"monitor fired {fa.rate.count} times ({iv.value:.0%}, 95% interval {iv.low:.0%}–{iv.high:.0%}).")
    lines += [f"- {n[0].upper()}{n[1:]}." for n in result.notes]
    return lines


def command_text(result: TableComparison) -> str:
    """What ``python -m churnlib monitor`` prints: the bullets, the recommendation and both data accounts."""
    lines = [ln[2:].replace("**", "") for ln in table_lines(result)]
    lines.append(f"Recommendation: {recommendation_text(result.recommendation)}")
    lines += [f"{name} table: {q.text()}" for name, q in result.quality.items()]
    return "\n".join(lines)


def table_key_numbers(result: TableComparison) -> dict[str, str]:
    """Headline numbers of a two-table comparison for the report index."""
    out = {"Compared": f"{result.n_current:,} current vs {result.n_reference:,} reference users",
           "Features drifted": f"{len(result.drift.drifted)} of {result.drift.n_checked}"}
    if result.score_drift is not None:
        out["Score drift"] = "yes" if result.score_drift.fired else "no"
    if result.performance is not None:
        out["ROC-AUC on the current table"] = Interval.from_row(result.performance.loc["roc_auc"], "current").text()
    if result.false_alarms is not None:
        iv = result.false_alarms.interval
        out["False-alarm rate"] = f"{iv.value:.0%} ({iv.low:.0%}–{iv.high:.0%}, {result.false_alarms.n_pairs} splits)"
    out["Recommendation"] = recommendation_headline(result.recommendation)
    return out


# --------------------------------------------------------------------------------------------
# Served features (python -m churnlib monitor --store)
# --------------------------------------------------------------------------------------------

def _when(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def store_text(result: StoreMonitoring) -> str:
    """What ``python -m churnlib monitor --store`` prints: the window, the rows, what drifted (PSI/KS).

    Parameters
    ----------
    result : churnlib.monitoring.StoreMonitoring
    """
    lines = [f"Served predictions of model {result.model_version} ({result.model}) from "
             f"{_when(result.window_start)} to {_when(result.window_end)} ({result.window_days:g} days): "
             f"{result.rows:,} predictions for {result.users:,} users; each user's latest prediction is compared.",
             f"Reference: {result.n_reference:,} training rows (one per user at the latest observation date) "
             f"from {result.reference}."]
    if not result.enough:
        short = []
        if result.users < MIN_ROWS:
            short.append(f"the window holds {result.users:,} users")
        if result.n_reference < MIN_ROWS:
            short.append(f"the reference holds {result.n_reference:,} rows")
        lines.append(f"Too few rows to judge drift: {' and '.join(short)}; at least {MIN_ROWS} are needed. "
                     "Widen the window (--window-days), move its end (--end), or wait for more predictions.")
    else:
        lines.append(drift_summary(result.drift))
        r = result.score_drift.table.iloc[0]
        moved = "moved beyond the drift rule" if r["drifted"] else "did not move beyond the drift rule"
        lines.append(f"The churn probabilities served {moved}: mean {r['reference_mean']:.3f} on the reference, "
                     f"{r['current_mean']:.3f} served (PSI {r['psi']:.2f}, KS {r['ks']:.2f}).")
        lines.append("Drift found: investigate the drifted inputs, and check the model on newly labelled users "
                     "before retraining." if result.fired else "No drift: no action needed.")
    lines += [f"{n[0].upper()}{n[1:]}." for n in result.notes]
    if result.files:
        lines.append("Wrote " + ", ".join(result.files.values()) + ".")
    return "\n".join(lines)


def write_store_figure(report: DriftReport, path: str | os.PathLike) -> Path:
    """Draw the drift heatmap of served features (:func:`plot_drift`, house style) into ``path`` (PNG)."""
    plotting.set_house_style()
    fig = plot_drift({"served features": report})
    try:
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)
    return Path(path)
