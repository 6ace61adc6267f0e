"""Figures of the modelling notebooks (``04_imbalance``, ``05_models``).

Every title states the finding, computed from the numbers plotted.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from churnlib.intervals import Interval
from churnlib.plotting import CLASS_PALETTE

__all__ = ["plot_curves", "plot_leak_demo", "plot_metric_intervals", "plot_paired_differences", "plot_permutation",
           "plot_reliability", "plot_strategies", "plot_threshold"]

_NAMES = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "f1": "F1", "precision": "precision", "recall": "recall",
          "brier": "Brier score", "lift_top_decile": "top-decile lift"}


def plot_metric_intervals(candidates, metrics: Sequence[str] = ("roc_auc", "pr_auc"), where: str = "cv") -> plt.Figure:
    """Point and 95% interval of each metric for every candidate, best first."""
    ok = [c for c in candidates if getattr(c, where) is not None]
    ok.sort(key=lambda c: getattr(c, where).loc[metrics[-1], "value"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.4 * len(ok) + 1.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics):
        res = [getattr(c, where).loc[m] for c in ok]
        v = np.array([r["value"] for r in res])
        err = np.array([[r["value"] - r["low"], r["high"] - r["value"]] for r in res]).T
        colors = ["grey" if c.model == "dummy" else CLASS_PALETTE["retained"] for c in ok]
        ax.barh(range(len(ok)), v, xerr=err, color=colors, alpha=0.8, capsize=3)
        ax.set_yticks(range(len(ok)), [c.name for c in ok])
        ax.set_xlabel(f"{_NAMES[m]} ({'CV' if where == 'cv' else 'holdout'}, 95% interval)")
        if m == "roc_auc":
            ax.axvline(0.5, color="grey", ls="--", lw=1)
    best = [c for c in ok if c.model != "dummy"][-1] if any(c.model != "dummy" for c in ok) else ok[-1]
    fig.suptitle(f"{best.name} leads on {_NAMES[metrics[-1]]}: "
                 f"{Interval.from_row(getattr(best, where).loc[metrics[-1]]).text()}", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_curves(result) -> plt.Figure:
    """Out-of-fold ROC and PR curves of every candidate, and the final model's holdout curves."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    y = result.y_train
    for c in result.candidates:
        if c.oof is None or c.model == "dummy":
            continue
        fpr, tpr, _ = roc_curve(y, c.oof[0])
        prec, rec, _ = precision_recall_curve(y, c.oof[0])
        roc_ax.plot(fpr, tpr, lw=1, alpha=0.6, label=f"{c.name} (CV)")
        pr_ax.plot(rec, prec, lw=1, alpha=0.6)
    fpr, tpr, _ = roc_curve(result.y_test, result.holdout_proba)
    prec, rec, _ = precision_recall_curve(result.y_test, result.holdout_proba)
    roc_ax.plot(fpr, tpr, lw=2.5, color="black", label=f"chosen: {result.chosen.name} (holdout)")
    pr_ax.plot(rec, prec, lw=2.5, color="black")
    roc_ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    pr_ax.axhline(result.y_test.mean(), ls="--", color="grey", lw=1, label="no skill (churn rate)")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    roc_ax.legend(fontsize=8, loc="lower right")
    pr_ax.legend(fontsize=8, loc="upper right")
    h = result.holdout
    fig.suptitle(f"On the holdout the chosen {result.chosen.name} reaches ROC-AUC {Interval.from_row(h.loc['roc_auc']).text(2)} "
                 f"and PR-AUC {h.loc['pr_auc', 'value']:.2f} vs {result.y_test.mean():.2f} for no skill",
                 fontweight="bold")
    fig.tight_layout()
    return fig


def plot_reliability(result, n_bins: int = 10) -> plt.Figure:
    """Reliability curves: raw and calibrated out-of-fold probabilities, and the holdout."""
    from sklearn.calibration import calibration_curve

    fig, ax = plt.subplots(figsize=(5.5, 5))
    y = result.y_train
    raw = np.atleast_2d(result.chosen.oof).mean(axis=0)
    series = [("out-of-fold, raw", y, raw, CLASS_PALETTE["retained"])]
    if result.calibration.method:
        series.append((f"out-of-fold, {result.calibration.method}", y, result.oof, CLASS_PALETTE["churned"]))
    series.append(("holdout, final model", result.y_test, result.holdout_proba, "black"))
    for label, yy, pp, color in series:
        obs, pred = calibration_curve(yy, pp, n_bins=n_bins, strategy="quantile")
        ax.plot(pred, obs, marker="o", color=color, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate")
    ax.legend(fontsize=8)
    ax.set_title(f"Holdout Brier score {result.holdout.loc['brier', 'value']:.3f}: "
                 + ("calibrated" if result.calibration.method else "raw probabilities kept"), fontsize=11)
    return fig


def plot_threshold(result) -> plt.Figure:
    """F1, precision and recall against the threshold on out-of-fold predictions."""
    y, p = result.y_train, result.oof
    prec, rec, thr = precision_recall_curve(y, p)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(prec), where=(prec + rec) > 0)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(thr, prec[:-1], label="precision")
    ax.plot(thr, rec[:-1], label="recall")
    ax.plot(thr, f1[:-1], label="F1", lw=2)
    ax.axvline(result.threshold, color="black", ls="--", lw=1)
    ax.set(xlabel="threshold on the churn probability", ylabel="out-of-fold value")
    ax.legend()
    i = int(np.searchsorted(thr, result.threshold))
    i = min(i, len(thr) - 1)
    ax.set_title(f"Threshold {result.threshold:.3f} ({result.thresholds['rule']} rule): out of fold it flags "
                 f"{np.mean(p >= result.threshold):.0%} of users, precision {prec[i]:.2f}, recall {rec[i]:.2f}")
    return fig


def plot_permutation(perm) -> plt.Figure:
    """Cross-validated ROC-AUC with true labels against its distribution under shuffled labels."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.hist(perm.permuted, bins=min(20, max(5, len(perm.permuted) // 2)), color="grey", alpha=0.7,
            label="shuffled labels")
    ax.axvline(perm.score, color=CLASS_PALETTE["churned"], lw=2, label="true labels")
    ax.set(xlabel="cross-validated ROC-AUC", ylabel="permutations")
    ax.legend()
    verdict = "signal detected" if perm.significant else "no detectable signal"
    ax.set_title(f"Permutation test: {verdict} (ROC-AUC {perm.score:.3f}, p = {perm.p_value:.3f})")
    return fig


def plot_strategies(candidates, metrics: Sequence[str] = ("pr_auc", "recall", "precision", "f1", "brier")) -> plt.Figure:
    """Per imbalance strategy: the metrics with intervals (one group of bars per metric)."""
    ok = [c for c in candidates if c.cv is not None and c.model != "dummy"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.35 * len(ok) + 1.8), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), metrics):
        v = np.array([c.cv.loc[m, "value"] for c in ok])
        err = np.array([[c.cv.loc[m, "value"] - c.cv.loc[m, "low"], c.cv.loc[m, "high"] - c.cv.loc[m, "value"]]
                        for c in ok]).T
        ax.barh(range(len(ok)), v, xerr=err, color=CLASS_PALETTE["retained"], alpha=0.8, capsize=3)
        ax.set_yticks(range(len(ok)), [c.name for c in ok])
        ax.set_xlabel(_NAMES[m])
    best = max(ok, key=lambda c: c.cv.loc["pr_auc", "value"])
    none = next((c for c in ok if c.strategy == "none" and c.model == best.model), None)
    title = f"Best PR-AUC with {best.strategy}: {best.cv.loc['pr_auc', 'value']:.3f}"
    if none is not None and none is not best:
        title += f" vs {none.cv.loc['pr_auc', 'value']:.3f} without rebalancing"
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_leak_demo(demo: pd.DataFrame) -> plt.Figure:
    """Scores with resampling inside the folds vs before the split, side by side."""
    metrics = ["roc_auc", "pr_auc", "f1"]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(metrics))
    w = 0.8 / len(demo)
    for i, (label, row) in enumerate(demo.iterrows()):
        ax.bar(x + i * w, row[metrics], width=w, label=label,
               color=CLASS_PALETTE["churned"] if "leaky" in label else CLASS_PALETTE["retained"])
    ax.set_xticks(x + w * (len(demo) - 1) / 2, [_NAMES[m] for m in metrics])
    ax.legend(fontsize=8)
    leaky = demo.loc[[i for i in demo.index if "leaky" in i]].iloc[0]
    right = demo.loc[[i for i in demo.index if "correct" in i]].iloc[0]
    ax.set_title(f"Resampling before the split inflates ROC-AUC from {right['roc_auc']:.2f} to {leaky['roc_auc']:.2f} "
                 f"and F1 from {right['f1']:.2f} to {leaky['f1']:.2f}")
    return fig


def plot_paired_differences(metrics: dict) -> plt.Figure:
    """Each candidate's shortfall to the leader on the same folds, with its corrected 95% interval.

    Parameters
    ----------
    metrics : dict
        The content of ``metrics.json`` (``selection``).
    """
    sel = metrics["selection"]
    rows = [c for c in sel["candidates"] if not c["leader"]]
    rows.sort(key=lambda c: -c["shortfall"])
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.8))
    v = np.array([c["shortfall"] for c in rows], dtype=float)
    lo = np.array([c["shortfall_low"] if c["shortfall_low"] is not None else c["shortfall"] for c in rows], dtype=float)
    hi = np.array([c["shortfall_high"] if c["shortfall_high"] is not None else c["shortfall"] for c in rows], dtype=float)
    colors = ["grey" if not c["eligible"] else CLASS_PALETTE["churned"] if c["chosen"] else
              CLASS_PALETTE["retained"] for c in rows]
    ax.errorbar(v, range(len(rows)), xerr=[v - lo, hi - v], fmt="none", ecolor="grey", capsize=3)
    ax.scatter(v, range(len(rows)), c=colors, zorder=3)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(len(rows)), [c["model"] + " / " + c["strategy"] for c in rows])
    metric = _NAMES.get(sel["metric"], sel["metric"])
    ax.set_xlabel(f"{metric} shortfall to the leader {sel['leader']} (mean over {sel['n_folds']} folds, 95% interval)")
    n = len(sel["within_noise_of_leader"])
    head = (f"{sel['leader']} leads clearly" if sel["leader_clearly_best"] else
            f"{n} of {sum(c['eligible'] for c in rows)} candidates within noise of the leader")
    ax.set_title(f"{head}; chosen: {sel['chosen']}", fontsize=11)
    fig.tight_layout()
    return fig
