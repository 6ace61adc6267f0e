"""Plain words and tables of the imbalance study (``04_imbalance``).

The comparison and every verdict are computed in :mod:`churnlib.imbalance`; this module only words
them. Intervals are written by :meth:`churnlib.intervals.Interval.text`.
"""
from __future__ import annotations

import pandas as pd

from churnlib.imbalance import StrategyComparison, leak_inflates, strategy_findings
from churnlib.intervals import Interval

__all__ = ["imbalance_statement", "key_numbers", "leak_statement", "paired_table", "strategy_statement"]


def imbalance_statement(rate: Interval, description: str, suspects=()) -> str:
    """How imbalanced the training part is and why accuracy would mislead.

    Parameters
    ----------
    rate : Interval
        Training churn rate (:func:`churnlib.eda.churn_rate`).
    description : str
        How the holdout was drawn.
    suspects : sequence of str
        Leakage suspects left out.
    """
    ratio = (1 - rate.value) / rate.value if rate.value else float("nan")
    return (f"Training part: **{rate}** churned, i.e. about "
            f"**{ratio:.1f} stayers per churner**. A model that flags nobody is right {1 - rate.value:.0%} of the "
            "time and useless, which is why the comparison below uses PR-AUC, recall and precision rather "
            f"than accuracy. Held out for the model comparison: {description}."
            + (f" Left out as leakage suspects: {', '.join(suspects)}." if suspects else ""))


def paired_table(comparison: StrategyComparison) -> pd.DataFrame:
    """Each strategy minus no rebalancing, paired on the same folds and users, for reading."""
    rows = []
    for (model, strategy), r in comparison.paired.iterrows():
        rows.append({"model": model, "strategy": strategy,
                     f"Δ PR-AUC vs {comparison.baseline}": Interval.from_row(r, "delta_pr_auc").text(signed=True),
                     "folds better": f"{int(r['folds_better'])}/{int(r['n_folds'])}",
                     f"Δ ROC-AUC vs {comparison.baseline}": Interval.from_row(r, "delta_roc_auc").text(signed=True),
                     f"Δ Brier vs {comparison.baseline}": Interval.from_row(r, "delta_brier").text(signed=True),
                     "ranking": r["verdict"], "probabilities": r["brier_verdict"]})
    return pd.DataFrame(rows).set_index(["model", "strategy"]) if rows else pd.DataFrame()


def strategy_statement(comparison: StrategyComparison) -> str:
    """The best strategy, whether it clearly beats no rebalancing (:func:`churnlib.imbalance.strategy_findings`),
    and which strategies distort the probabilities."""
    f = strategy_findings(comparison)
    text = f"Best PR-AUC: **{f.best.name}**, {Interval.from_row(f.best.cv.loc['pr_auc']).text()}."
    if f.plain is not None and f.plain is not f.best:
        text += f" Without rebalancing the same model scores {Interval.from_row(f.plain.cv.loc['pr_auc']).text()}"
        if f.gain is not None:
            text += (f"; paired on the same folds and users the difference is {f.gain.text(signed=True)}, so "
                     + {"clear gain": "rebalancing brings a **clear gain** in ranking churners.",
                        "clear loss": "rebalancing clearly **hurts** ranking churners.",
                        "no clear gain": "rebalancing brings **no clear gain** in ranking churners."}[f.verdict])
        else:
            text += "."
    elif f.plain is f.best:
        text += " No rebalancing strategy ranks churners better than the model without one."
    if f.worse_calibrated:
        text += (f" Rebalancing clearly worsens the Brier score for {', '.join(f.worse_calibrated)}: "
                 "its probabilities need calibrating.")
    return text


def leak_statement(demo: pd.DataFrame, model: str, strategy: str) -> str:
    """Scores with resampling before the split vs inside the folds (:func:`churnlib.imbalance.leak_inflates`)."""
    right = demo.loc[[i for i in demo.index if "correct" in i]].iloc[0]
    leaky = demo.loc[[i for i in demo.index if "leaky" in i]].iloc[0]
    if leak_inflates(demo):
        return (f"With {strategy} before the split, {model} appears to reach ROC-AUC **{leaky['roc_auc']:.2f}** "
                f"instead of **{right['roc_auc']:.2f}** and PR-AUC {leaky['pr_auc']:.2f} instead of "
                f"{right['pr_auc']:.2f}: numbers that would not hold on real customers.")
    return (f"With {strategy} before the split, {model} scores ROC-AUC {leaky['roc_auc']:.2f} vs "
            f"{right['roc_auc']:.2f} inside the folds: on this data the leak does not inflate the ranking "
            f"(PR-AUC {leaky['pr_auc']:.2f} vs {right['pr_auc']:.2f}).")


def key_numbers(rate: Interval, comparison: StrategyComparison, demo: pd.DataFrame, strategy: str) -> dict[str, str]:
    """Headline numbers of the imbalance study for the report index."""
    f = strategy_findings(comparison)
    right = demo.loc[[i for i in demo.index if "correct" in i]].iloc[0]
    leaky = demo.loc[[i for i in demo.index if "leaky" in i]].iloc[0]
    return {
        "Training churn rate": str(rate),
        "Best strategy (CV PR-AUC)": f"{f.best.name}: {Interval.from_row(f.best.cv.loc['pr_auc']).text()}",
        "Without rebalancing": Interval.from_row(f.plain.cv.loc["pr_auc"]).text() if f.plain is not None else "n/a",
        "Gain over no rebalancing (paired PR-AUC)": (f"{f.gain.text(signed=True)}: {f.verdict}" if f.gain is not None
                                                     else "n/a"),
        f"Leak demo ROC-AUC ({strategy})": (f"{right['roc_auc']:.3f} inside folds vs {leaky['roc_auc']:.3f} "
                                             "before the split"),
    }
