"""Plain words, tables and figures of the feature validation (``03_feature_validation``).

The statistics and every verdict are computed in :mod:`churnlib.validation` and
:mod:`churnlib.feature_stats`; this module only words and draws them. Intervals are written by
:meth:`churnlib.intervals.Interval.text`.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlib.feature_stats import consistent_features
from churnlib.intervals import Interval
from churnlib.leakage import LeakageScreen
from churnlib.plotting import CLASS_PALETTE
from churnlib.validation import FeatureSelection, ValidationResult, ladder_findings, pruning_cost

__all__ = [
    "cluster_table",
    "comparison_table",
    "importance_table",
    "key_numbers",
    "ladder_statement",
    "leakage_statement",
    "plot_feature_sets",
    "plot_importance",
    "plot_univariate",
    "pruning_statement",
    "redundancy_statement",
    "selection_summary",
    "setup_statement",
    "signal_statement",
    "univariate_statement",
    "univariate_table",
]

_VERDICT_WORDS = {"helps": "clearly helps", "hurts": "clearly hurts", "no clear change": "no clear change"}


def _cell(iv: Interval, signed: bool = False) -> str:
    """Table cell of an interval; empty when there is no estimate (the first set has no difference)."""
    return iv.text(signed=signed) if math.isfinite(iv.value) else ""


# --------------------------------------------------------------------------------------------
# Setting and feature sets
# --------------------------------------------------------------------------------------------

def setup_statement(result: ValidationResult) -> str:
    """What is validated: training rows and users, the holdout, churn rate, candidates, the CV."""
    s = result.settings
    n_users = pd.Series(result.groups).nunique()
    source = "features built from an event log" if result.kind == "events" else "the columns of a snapshot table"
    return (f"**{len(result.y):,} training rows** of {n_users:,} users (holdout set aside: {result.description}), "
            f"churn rate {result.y.mean():.1%}, **{result.X.shape[1]} candidate features** "
            f"({source}). "
            f"Model for the comparisons: {s['model']} ({s['strategy']}), {s['n_splits']}-fold cross-validation"
            + (f" x {s['n_repeats']} repeats" if s["n_repeats"] > 1 else "")
            + (", folds keeping each user's rows together." if n_users < len(result.y) else "."))


def comparison_table(comparison: pd.DataFrame, ladder: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """A :func:`churnlib.validation.compare_feature_sets` result for reading: intervals as text, one row per set.

    Parameters
    ----------
    comparison : pandas.DataFrame
    ladder : mapping, optional
        The compared sets, to list what each step adds (first few names).
    """
    rows = []
    prev: list[str] = []
    for name, r in comparison.iterrows():
        row = {"set": name, "features": int(r["n_features"])}
        if ladder is not None:
            added = [c for c in ladder[name] if c not in set(prev)]
            row["adds"] = ", ".join(added[:4]) + (f" … (+{len(added) - 4})" if len(added) > 4 else "")
            prev = list(ladder[name])
        for m, label in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("f1", "F1")):
            row[label] = _cell(Interval.from_row(r, m))
        row["Δ ROC-AUC vs previous"] = _cell(Interval.from_row(r, "delta_roc_auc"), signed=True)
        row["Δ PR-AUC vs previous"] = _cell(Interval.from_row(r, "delta_pr_auc"), signed=True)
        row["folds better"] = "" if r["verdict"] == "first" else f"{int(r['folds_better'])}/{int(r['n_folds'])}"
        row["verdict"] = "" if r["verdict"] == "first" else r["verdict"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("set")


def ladder_statement(comparison: pd.DataFrame) -> str:
    """Plain sentences on a :func:`churnlib.validation.compare_feature_sets` result: signal at all, and
    what each step adds (verdicts from :func:`churnlib.validation.ladder_findings`)."""
    found = ladder_findings(comparison)
    first = Interval.from_row(comparison.iloc[0], "roc_auc")
    best = Interval.from_row(comparison.loc[found.best], "roc_auc")
    if not found.beats_chance:
        head = (f"No detectable signal: the ROC-AUC interval of every feature set covers 0.5 (best "
                f"{found.best}: {best.text()}); no set does better than chance.")
    else:
        head = (f"{comparison.index[0]} reach ROC-AUC {first.text()}; the best set, {found.best}, "
                f"{best.text()}.")
    steps = []
    for name, r in comparison.iloc[1:].iterrows():
        steps.append(f"{name}: ROC-AUC {Interval.from_row(r, 'delta_roc_auc').text(signed=True)}, better in "
                     f"{int(r['folds_better'])} of {int(r['n_folds'])} folds -- {_VERDICT_WORDS[r['verdict']]}")
    tail = ""
    if len(comparison) > 2:
        tail = (f" All steps together, {comparison.index[-1]} vs {comparison.index[0]}: ROC-AUC "
                f"{found.total_gain.text(signed=True)} -- "
                f"{'a clear change' if found.total_gain_clear else 'no clear change'}.")
    return head + ("" if not steps else " Step by step: " + "; ".join(steps) + ".") + tail


def signal_statement(result: ValidationResult) -> str:
    """Plain sentence: does the table's own data carry detectable signal
    (:attr:`churnlib.validation.ValidationResult.signal_detected`)?"""
    best = result.best_real_set
    auc = Interval.from_row(result.comparison.loc[best], "roc_auc").text()
    if result.signal_detected:
        return f"Signal detected: the best set of real features ({best}) scores ROC-AUC {auc}, above chance."
    return (f"No detectable signal: even the best set of real features ({best}) scores ROC-AUC {auc}, "
            "an interval that covers 0.5. This table's columns do not tell churners from the others; "
            "no feature selection can change that.")


def plot_feature_sets(comparison: pd.DataFrame) -> plt.Figure:
    """ROC-AUC and PR-AUC of each feature set with 95% intervals; the title states the finding.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(comparison.index)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 2), sharey=True)
    pos = np.arange(len(names))[::-1]
    for ax, m, label in ((axes[0], "roc_auc", "ROC-AUC"), (axes[1], "pr_auc", "PR-AUC")):
        v = comparison[m].to_numpy(float)
        err = np.vstack([v - comparison[f"{m}_low"].to_numpy(float), comparison[f"{m}_high"].to_numpy(float) - v])
        colors = ["#DD8452" if verdict == "helps" else "#4C72B0" for verdict in comparison["verdict"]]
        ax.errorbar(v, pos, xerr=err, fmt="none", ecolor="grey", capsize=3)
        ax.scatter(v, pos, c=colors, zorder=3)
        ax.set_xlabel(f"cross-validated {label} (95% interval)")
        if m == "roc_auc":
            ax.axvline(0.5, color="grey", ls="--", lw=1)
    axes[0].set_yticks(pos, [f"{n} ({k})" for n, k in zip(names, comparison["n_features"])])
    found = ladder_findings(comparison)
    helps = found.helps
    first_auc, last_auc = comparison["roc_auc"].iloc[0], comparison["roc_auc"].iloc[-1]
    if not found.beats_chance:
        title = "No feature set beats chance: every ROC-AUC interval covers 0.5"
    elif helps and not found.first_beats_chance:
        title = (f"{names[0]} score at chance (ROC-AUC {first_auc:.2f}); "
                 f"{' and '.join(helps)} raise{'s' if len(helps) == 1 else ''} it to {last_auc:.2f}")
    elif helps:
        title = (f"{' and '.join(helps)} clearly raise{'s' if len(helps) == 1 else ''} ROC-AUC; "
                 f"the full ladder reaches {last_auc:.2f}")
    elif found.total_gain is not None and found.total_gain.above(0):
        title = (f"No single step is clearly better, but together they raise ROC-AUC from "
                 f"{first_auc:.2f} to {last_auc:.2f}")
    else:
        title = f"{names[0]} already reach ROC-AUC {first_auc:.2f}; no later step clearly adds to it"
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Univariate tests, redundancy, importance, leakage
# --------------------------------------------------------------------------------------------

def univariate_statement(tests: pd.DataFrame, top: int = 20) -> str:
    """How many features differ at the FDR level, on how many rows; introduces :func:`univariate_table`."""
    return (f"**{int(tests['significant'].sum())} of {len(tests)} features** differ at q < "
            f"{tests.attrs.get('alpha', 0.05):g} (tested on {tests.attrs['rows_tested']:,} rows, one per user). "
            f"The {top} strongest:")


def univariate_table(tests: pd.DataFrame, top: int = 20):
    """The ``top`` rows of :func:`churnlib.feature_stats.univariate_tests`, formatted for reading."""
    return tests.head(top).drop(columns=["test", "effect_measure"]).set_index("feature").style.format(
        {"median_churned": "{:.3g}", "median_retained": "{:.3g}", "effect": "{:+.3f}", "p_value": "{:.2g}",
         "q_value": "{:.2g}"})


def plot_univariate(tests: pd.DataFrame, top: int = 20) -> plt.Figure:
    """Effect sizes of the numeric features with the smallest q-values; the title states how many differ.

    Returns
    -------
    matplotlib.figure.Figure
    """
    num = tests[tests["kind"] == "numeric"].dropna(subset=["effect"]).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * max(len(num), 1) + 1.6))
    colors = [CLASS_PALETTE["churned"] if s else "#BBBBBB" for s in num["significant"]]
    ax.barh(num["feature"], num["effect"], color=colors)
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlim(-1, 1)
    alpha = tests.attrs.get("alpha", 0.05)
    ax.set_xlabel(f"rank-biserial effect: churned vs retained (coloured: q < {alpha:g})")
    n_sig, n = int(tests["significant"].sum()), len(tests)
    if n_sig:
        lead = tests.loc[tests["significant"]].iloc[0]
        title = (f"{n_sig} of {n} features differ between churned and retained (FDR q < "
                 f"{alpha:g}); strongest: {lead['feature']}")
    else:
        title = f"No feature differs clearly between churned and retained (all {n} q-values ≥ {alpha:g})"
    ax.set_title(title)
    return fig


def cluster_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """Clusters with more than one member: the representative kept, the duplicates dropped, the weakest |rho|."""
    rows = []
    for _, m in clusters[clusters["cluster_size"] > 1].groupby("cluster", sort=True):
        rep = m.loc[m["kept"], "feature"].iloc[0]
        dropped = m.loc[~m["kept"]]
        rows.append({"kept": rep, "dropped as duplicates": ", ".join(dropped["feature"]),
                     "members": len(m), "lowest |ρ| with kept": float(dropped["rho"].abs().min()),
                     "association of kept (|rank-biserial|)": float(m.loc[m["kept"], "association"].iloc[0])})
    return pd.DataFrame(rows, columns=["kept", "dropped as duplicates", "members", "lowest |ρ| with kept",
                                       "association of kept (|rank-biserial|)"])


def redundancy_statement(clusters: pd.DataFrame, threshold: float) -> str:
    """How many groups of duplicates at ``threshold``, how many features they drop."""
    n_groups = len(cluster_table(clusters))
    if not n_groups:
        return f"No two numeric features correlate at |ρ| ≥ {threshold:g}."
    n_dropped = int((~clusters["kept"]).sum())
    return (f"**{n_groups} group{'s' if n_groups > 1 else ''}** of duplicates at |ρ| ≥ {threshold:g}; "
            f"{n_dropped} features dropped as duplicates, {len(clusters) - n_dropped} numeric features left.")


def importance_table(imp: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The ``top`` rows of :func:`churnlib.feature_stats.importance`, rounded for reading."""
    return imp.head(top).set_index("feature").round(4)


def plot_importance(imp: pd.DataFrame, top: int = 15) -> plt.Figure:
    """Permutation importance (with its spread over folds) next to mutual information, top features;
    the title names the features that help on every held-out fold
    (:func:`churnlib.feature_stats.consistent_features`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    shown = imp.head(top).iloc[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.3 * max(len(shown), 1) + 1.8), sharey=True)
    err = np.vstack([shown["perm_importance"] - shown["perm_low"], shown["perm_high"] - shown["perm_importance"]])
    axes[0].barh(shown["feature"], shown["perm_importance"], xerr=np.clip(err, 0, None), color="#4C72B0",
                 ecolor="grey", capsize=2)
    axes[0].axvline(0, color="grey", lw=1)
    axes[0].set_xlabel("ROC-AUC drop when shuffled (held-out folds)")
    axes[1].barh(shown["feature"], shown["mutual_info"], color="#55A868")
    axes[1].set_xlabel("mutual information with churn (nats)")
    consistent = consistent_features(imp)
    if consistent:
        lead = imp.iloc[0]
        title = (f"{len(consistent)} features help on every held-out fold; shuffling {lead['feature']} "
                 f"costs {lead['perm_importance']:.3f} ROC-AUC")
    else:
        title = "No feature helps the model consistently on held-out folds"
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def leakage_statement(leakage: pd.DataFrame | LeakageScreen) -> str:
    """The leakage findings: single-column suspects (or the strongest single feature), then, for a
    :class:`churnlib.leakage.LeakageScreen`, each relation across columns in plain words and the probe."""
    screen = leakage if isinstance(leakage, LeakageScreen) else None
    single = screen.single if screen is not None else leakage
    suspects = single.loc[single["suspect"], "feature"].tolist()
    if suspects:
        text = f"**{len(suspects)} suspect(s)**: " + ", ".join(f"`{s}`" for s in suspects) + "."
    else:
        text = (f"**No suspects** among {len(single)} features; the strongest single feature is "
                f"`{single.iloc[0]['feature']}` (AUC {single.iloc[0]['auc']:.2f}).")
    if screen is None:
        return text
    combos = screen.combinations
    if len(combos):
        text += (f" **{len(combos)} relation(s) across columns encode the label**: "
                 + "; ".join(f"{r.relation} (columns {', '.join(f'`{c}`' for c in r.columns)})"
                             for r in combos.itertuples()) + ".")
    else:
        text += " No combination of 2-3 numeric columns encodes the label."
    if screen.probe is not None:
        text += " " + screen.probe["why"]
    if screen.dropped:
        text += " Dropped: " + ", ".join(f"`{c}`" for c in screen.dropped) + "."
    return text


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

def selection_summary(selection: FeatureSelection) -> str:
    """One plain sentence: how many features were kept and why the others went."""
    kinds: dict[str, int] = {}
    for r in selection.dropped.values():
        key = r.split(" (")[0].split(" with ")[0]
        kinds[key] = kinds.get(key, 0) + 1
    why = "; ".join(f"{n} {k}" for k, n in kinds.items())
    return (f"{len(selection.features)} of {len(selection.reasons)} candidate features kept"
            + (f"; dropped {len(selection.dropped)}: {why}." if selection.dropped else "; none dropped."))


def pruning_statement(check: pd.DataFrame) -> str:
    """The chosen set vs all candidates (verdict: :func:`churnlib.validation.pruning_cost`)."""
    delta = Interval.from_row(check.iloc[-1], "delta_roc_auc")
    return (f"Chosen set vs all candidates: ROC-AUC {delta.text(signed=True)} — "
            + ("pruning cost some ranking quality; consider a higher redundancy threshold." if pruning_cost(check)
               else "pruning lost nothing measurable."))


def key_numbers(result: ValidationResult) -> dict[str, str]:
    """Headline numbers of the validation for the report index."""
    c = result.comparison
    sel = result.selection
    suspects = [f for f, r in sel.dropped.items() if r.startswith("leakage")]
    return {
        "Training rows validated": f"{len(result.y):,} ({len(pd.unique(result.groups)):,} users)",
        f"ROC-AUC, {c.index[0]}": Interval.from_row(c.iloc[0], "roc_auc").text(),
        f"ROC-AUC, {c.index[-1]}": Interval.from_row(c.iloc[-1], "roc_auc").text(),
        "Steps that clearly help": ", ".join(ladder_findings(c).helps) or "none",
        "Features differing (FDR q < 0.05)": (f"{int(result.univariate['significant'].sum())} of "
                                              f"{len(result.univariate)}"),
        "Chosen features": f"{len(sel.features)} of {len(sel.reasons)}",
        "Leakage suspects dropped": ", ".join(suspects) or "none",
        "Signal detected": "yes" if result.signal_detected else "no",
    }
