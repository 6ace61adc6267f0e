"""Ranking metrics fast enough to run inside a bootstrap, equal to scikit-learn's.

A bootstrap over users scores the same out-of-fold predictions hundreds of times; scikit-learn's
:func:`~sklearn.metrics.roc_auc_score` and :func:`~sklearn.metrics.average_precision_score` spend
most of that time validating their inputs. These functions compute the same definitions directly
(ties handled as scikit-learn handles them; equal to within 1e-12, tested), and :func:`rank_auc`
scores many probability vectors at once.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["average_precision", "f1_from_decisions", "mean_ranking_scores", "rank_auc"]


def rank_auc(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of ``P`` against ``y`` (Mann-Whitney form, ties averaged).

    Parameters
    ----------
    y : array of 0/1, shape (n,)
        Labels; both classes must be present.
    P : array, shape (k, n)
        Scores, one vector per row.

    Returns
    -------
    numpy.ndarray, shape (k,)
        :func:`sklearn.metrics.roc_auc_score` of each row.
    """
    pos = np.asarray(y) == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    ranks = stats.rankdata(np.atleast_2d(P), axis=1)
    return (ranks[:, pos].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision as :func:`sklearn.metrics.average_precision_score` computes it (ties grouped).

    Parameters
    ----------
    y : array of 0/1, shape (n,)
        Labels; at least one positive.
    p : array, shape (n,)
        Scores.

    Returns
    -------
    float
    """
    y, p = np.asarray(y), np.asarray(p)
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # end of each run of tied scores
    tp = np.cumsum(ys)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_from_decisions(y: np.ndarray, H: np.ndarray) -> np.ndarray:
    """F1 of each row of the decisions ``H`` (bool, shape (k, n)) against ``y``; 0 when undefined.

    The definition of :func:`churnlib.evaluation.metric_values`: ``2 tp / (2 tp + fp + fn)``.
    """
    y = np.asarray(y) == 1
    H = np.atleast_2d(np.asarray(H, dtype=bool))
    tp = (H & y).sum(axis=1).astype(float)
    fp = (H & ~y).sum(axis=1).astype(float)
    fn = (~H & y).sum(axis=1).astype(float)
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def mean_ranking_scores(y: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and average precision of each row of ``P`` against ``y``, averaged over the rows (CV
    repeats, as :func:`churnlib.evaluation.evaluate_predictions` averages them); NaN for both when
    ``y`` holds one class only."""
    y = np.asarray(y)
    Q = np.atleast_2d(P)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return float(rank_auc(y, Q).mean()), float(np.mean([average_precision(y, q) for q in Q]))
