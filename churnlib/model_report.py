"""Display tables of evaluated model candidates (``04_imbalance``, ``05_models``).

Intervals are written by :meth:`churnlib.intervals.Interval.text`. This module reads
:class:`churnlib.models.Candidate` objects by their attributes and imports nothing from the
modelling modules, so :mod:`churnlib.models` can re-export :func:`summary_table`.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from churnlib.intervals import Interval

__all__ = ["summary_table"]


def summary_table(candidates: Sequence, where: str = "cv",
                  metrics: Sequence[str] = ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier")) -> pd.DataFrame:
    """Wide display table: one row per candidate, ``value (low–high)`` per metric, plus the F1-optimal
    out-of-fold threshold with its interval.

    Parameters
    ----------
    candidates : sequence of churnlib.models.Candidate
    where : {"cv", "holdout"}
        Which metrics to show.
    metrics : sequence of str
        Rows of the candidates' metric tables, in column order.

    Returns
    -------
    pandas.DataFrame
        Index ``(model, strategy)``; a failed candidate shows its error instead of metrics.
    """
    rows = []
    for c in candidates:
        res = getattr(c, where)
        row = {"model": c.model, "strategy": c.strategy}
        if res is None:
            row.update({m: (c.error or "n/a") for m in metrics})
        else:
            row.update({m: Interval.from_row(res.loc[m]).text() for m in metrics})
        lo, hi = c.threshold_interval
        row["threshold"] = Interval(c.threshold, lo, hi).text()
        rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "strategy"])
