"""Honest evaluation: CV splits, out-of-fold predictions, metrics with intervals, permutation test.

Every number here comes from rows the model did not see when it was fitted:

* :func:`cv_splits` -- stratified, repeated K-fold; group-aware (``StratifiedGroupKFold``) when a
  user appears on several rows (a feature table stacking observation dates), so no user is on both
  sides of a split.
* :func:`oof_predict` -- out-of-fold churn probabilities, one vector per repeat.
* :func:`evaluate_predictions` -- ROC-AUC, PR-AUC, F1, precision, recall, Brier score and
  top-decile lift, each with a 95% percentile interval from a bootstrap over users (groups).
* :func:`permutation_test` -- the label-permutation test: does the table carry any signal at all?
* :func:`holdout_split` -- the held-out test set that model selection never sees.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)

from churnlib.intervals import bootstrap_sampler, has_repeated_groups
from churnlib.rank_metrics import average_precision, rank_auc

__all__ = [
    "METRICS",
    "PermutationResult",
    "cv_splits",
    "evaluate_predictions",
    "holdout_split",
    "metric_values",
    "oof_predict",
    "permutation_test",
]

#: Metrics reported for every model, in display order. Threshold metrics (F1, precision, recall)
#: use a threshold chosen on other rows' out-of-fold predictions, never on the rows scored.
METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier", "lift_top_decile")

Splits = list[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------
# Splits and out-of-fold predictions
# --------------------------------------------------------------------------------------------

def cv_splits(y: np.ndarray, groups: np.ndarray | None = None, n_splits: int = 3, n_repeats: int = 1,
              seed: int = 0) -> list[Splits]:
    """Stratified (and group-aware when needed) K-fold splits, once per repeat.

    Parameters
    ----------
    y : array of 0/1
        Labels.
    groups : array, optional
        User ids. When some id appears on several rows, folds keep each user's rows together
        (``StratifiedGroupKFold``); otherwise plain ``StratifiedKFold``.
    n_splits, n_repeats : int
        Folds per repeat and repeats (each repeat reshuffles).
    seed : int
        Seed of the first repeat (repeat ``r`` uses ``seed + r``).

    Returns
    -------
    list of list of (train_idx, test_idx)
        One partition of the rows per repeat.
    """
    y = np.asarray(y)
    grouped = has_repeated_groups(groups)
    out = []
    for r in range(n_repeats):
        if grouped:
            cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
            out.append(list(cv.split(np.zeros(len(y)), y, groups)))
        else:
            cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
            out.append(list(cv.split(np.zeros(len(y)), y)))
    return out


def oof_predict(estimator, X: pd.DataFrame, y: np.ndarray, splits: list[Splits],
                n_jobs: int = 1) -> np.ndarray:
    """Out-of-fold churn probabilities: shape ``(n_repeats, n_rows)``.

    Every fold refits a clone of ``estimator`` (preprocessing and resampling included) on its
    training rows only.
    """
    return np.vstack([
        cross_val_predict(clone(estimator), X, y, cv=part, method="predict_proba", n_jobs=n_jobs)[:, 1]
        for part in splits
    ])


def holdout_split(y: np.ndarray, groups: np.ndarray | None = None, split: pd.Series | None = None,
                  fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of the held-out test rows.

    Parameters
    ----------
    y : array of 0/1
        Labels (for stratification).
    groups : array, optional
        User ids; a user's rows all land on the same side.
    split : pandas.Series, optional
        A train/test marker per row (case-insensitive ``"train"``/``"test"``); when given it
        decides, and ``fraction`` is ignored.
    fraction : float, default 0.2
        Share of rows held out (rounded to a whole number of stratified group folds).
    seed : int
        Seed of the split.

    Returns
    -------
    numpy.ndarray of bool
        True for test rows.

    Raises
    ------
    ValueError
        When ``split`` holds other values, or either side lacks one of the classes.
    """
    y = np.asarray(y)
    if split is not None:
        marks = pd.Series(split).astype("string").str.strip().str.lower()
        bad = sorted(set(marks.dropna().unique()) - {"train", "test"})
        if bad or marks.isna().any():
            raise ValueError(f"split column must mark every row 'train' or 'test'; found {bad or 'missing values'}")
        test = (marks == "test").to_numpy()
    else:
        if not 0 < fraction < 1:
            raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
        n_splits = max(2, int(round(1 / fraction)))
        ids = groups if groups is not None else np.arange(len(y))
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        _, test_idx = next(cv.split(np.zeros(len(y)), y, ids))
        test = np.zeros(len(y), dtype=bool)
        test[test_idx] = True
    for side, mask in (("training", ~test), ("test", test)):
        if len(np.unique(y[mask])) < 2:
            raise ValueError(f"the {side} part has only one class: cannot train or evaluate")
    return test


# --------------------------------------------------------------------------------------------
# Metrics with intervals
# --------------------------------------------------------------------------------------------

def _counts(y: np.ndarray, hard: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(hard & (y == 1)))
    fp = float(np.sum(hard & (y == 0)))
    fn = float(np.sum(~hard & (y == 1)))
    return tp, fp, fn


def _lift_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def metric_values(y: np.ndarray, p: np.ndarray, hard: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` for labels ``y``, probabilities ``p`` and decisions ``hard``.

    ``hard`` is the predicted label (bool) at whatever threshold applies to each row.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    hard = np.asarray(hard, dtype=bool)
    two = len(np.unique(y)) == 2
    tp, fp, fn = _counts(y, hard)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return {
        # the definitions of roc_auc_score / average_precision_score without their input validation,
        # which dominated the bootstrap (equal to within 1e-12: tests/test_evaluation_metrics.py)
        "roc_auc": float(rank_auc(y, p)[0]) if two else float("nan"),
        "pr_auc": average_precision(y, p) if two else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0,
        "precision": prec,
        "recall": rec,
        "brier": float(np.mean((p - y) ** 2)),
        "lift_top_decile": _lift_top_decile(y, p),
    }


def evaluate_predictions(y: np.ndarray, proba: np.ndarray, hard: np.ndarray, groups: np.ndarray | None = None,
                         n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Metrics with 95% bootstrap intervals.

    Parameters
    ----------
    y : array of 0/1, shape (n,)
        Labels.
    proba : array, shape (n,) or (n_repeats, n)
        Probabilities; several rows (CV repeats) are scored separately and averaged.
    hard : array of bool, same shape as ``proba``
        Predicted labels at the applicable threshold.
    groups : array, optional
        User ids: the bootstrap resamples users, keeping each user's rows together.
    n_bootstrap : int, default 200
        Bootstrap replicates (0: no intervals).
    seed : int
        Bootstrap seed.

    Returns
    -------
    pandas.DataFrame
        Index :data:`METRICS`; columns ``value``, ``low``, ``high`` (2.5 and 97.5 percentiles).
    """
    y = np.asarray(y).astype(int)
    P = np.atleast_2d(np.asarray(proba, dtype=float))
    H = np.atleast_2d(np.asarray(hard, dtype=bool))

    def score(idx: np.ndarray | slice) -> np.ndarray:
        vals = [metric_values(y[idx], P[r, idx], H[r, idx]) for r in range(P.shape[0])]
        return np.array([[v[m] for m in METRICS] for v in vals]).mean(axis=0)

    point = score(slice(None))
    rng = np.random.default_rng(seed)
    draw = bootstrap_sampler(groups, len(y), rng)
    reps = np.array([score(draw()) for _ in range(n_bootstrap)]) if n_bootstrap else np.empty((0, len(METRICS)))
    if len(reps):
        low, high = np.nanpercentile(reps, 2.5, axis=0), np.nanpercentile(reps, 97.5, axis=0)
    else:
        low = high = np.full(len(METRICS), np.nan)
    return pd.DataFrame({"value": point, "low": low, "high": high}, index=pd.Index(METRICS, name="metric"))


# --------------------------------------------------------------------------------------------
# Permutation test
# --------------------------------------------------------------------------------------------

@dataclass
class PermutationResult:
    """Outcome of the label-permutation test.

    Attributes
    ----------
    score : float
        Cross-validated ROC-AUC with the true labels.
    permuted : numpy.ndarray
        The same score for each label permutation.
    p_value : float
        ``(1 + #{permuted >= score}) / (1 + n_permutations)``.
    alpha : float
        Significance level of :attr:`significant`.
    """

    score: float
    permuted: np.ndarray
    p_value: float
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        """True when the true labels score better than shuffled ones at level ``alpha``."""
        return self.p_value <= self.alpha

    def statement(self) -> str:
        """One plain sentence for the report."""
        n = len(self.permuted)
        base = (f"cross-validated ROC-AUC {self.score:.3f} vs {np.mean(self.permuted):.3f} on average "
                f"with shuffled labels (p = {self.p_value:.3f}, {n} permutations)")
        if self.significant:
            return f"Signal detected: {base}."
        return f"No detectable signal: {base}; the model does no better than with random labels."


def permutation_test(estimator, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None,
                     n_splits: int = 3, n_permutations: int = 19, seed: int = 0, n_jobs: int = 1,
                     alpha: float = 0.05) -> PermutationResult:
    """Label-permutation test of the cross-validated ROC-AUC.

    Labels are shuffled across all rows (not within users: a within-user shuffle would keep each
    user's labels and test nothing), while the folds stay group-aware and fixed.

    Parameters
    ----------
    estimator
        Unfitted pipeline.
    X, y, groups
        Training data, labels and user ids.
    n_splits : int, default 3
        CV folds.
    n_permutations : int, default 19
        Shuffles; the smallest reachable p-value is ``1 / (n_permutations + 1)``.
    seed : int
        Seed of the folds and shuffles.
    n_jobs : int
        Parallel folds.
    alpha : float, default 0.05
        Significance level.

    Returns
    -------
    PermutationResult
    """
    y = np.asarray(y)
    folds = cv_splits(y, groups, n_splits=n_splits, n_repeats=1, seed=seed)[0]

    def cv_auc(labels: np.ndarray) -> float:
        return float(np.mean(cross_val_score(clone(estimator), X, labels, cv=folds, scoring="roc_auc",
                                             n_jobs=n_jobs)))

    score = cv_auc(y)
    rng = np.random.default_rng(seed)
    permuted = np.array([cv_auc(rng.permutation(y)) for _ in range(n_permutations)])
    p = (1 + np.sum(permuted >= score)) / (1 + n_permutations)
    return PermutationResult(score=score, permuted=permuted, p_value=float(p), alpha=alpha)
