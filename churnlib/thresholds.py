"""Decision thresholds, risk bands and probability calibration, all chosen out of fold.

A threshold or a calibrator is fitted on out-of-fold predictions of the training part only; the
rows it is later judged on (a CV fold, the holdout) never take part in choosing it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import StratifiedKFold

from churnlib.calibration import Calibrator
from churnlib.intervals import bootstrap_sampler

__all__ = [
    "CalibrationChoice",
    "RiskBands",
    "choose_calibration",
    "cost_threshold",
    "cross_fitted_decisions",
    "f1_threshold",
    "f1_threshold_interval",
    "reliability_table",
]


def f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold (predict churn when ``p >= t``) that maximises F1 on ``(y, p)``."""
    precision, recall, thr = precision_recall_curve(np.asarray(y), np.asarray(p))
    denom = precision[:-1] + recall[:-1]
    f1 = np.divide(2 * precision[:-1] * recall[:-1], denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thr[int(np.argmax(f1))])


def f1_threshold_interval(y: np.ndarray, proba: np.ndarray, groups: np.ndarray | None = None,
                          n_bootstrap: int = 200, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval (over users) of the F1-optimal threshold of out-of-fold predictions.

    ``proba`` may hold several CV repeats (rows); they are averaged per user row first.
    """

    y = np.asarray(y).astype(int)
    p = np.atleast_2d(proba).mean(axis=0)
    draw = bootstrap_sampler(groups, len(y), np.random.default_rng(seed))
    reps = []
    for _ in range(n_bootstrap):
        idx = draw()
        if 0 < y[idx].sum() < len(idx):
            reps.append(f1_threshold(y[idx], p[idx]))
    if not reps:
        return (float("nan"), float("nan"))
    return (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5)))


def cost_threshold(y: np.ndarray, p: np.ndarray, cost_fn: float, cost_fp: float) -> float:
    """The threshold that minimises ``cost_fn * missed churners + cost_fp * wasted offers``.

    Parameters
    ----------
    y, p : arrays
        Labels and (out-of-fold) probabilities.
    cost_fn : float
        Cost of a missed churner (a false negative), e.g. the revenue lost.
    cost_fp : float
        Cost of a retention offer sent to a user who would have stayed (a false positive).
    """
    y = np.asarray(y)
    fpr, tpr, thr = roc_curve(y, np.asarray(p), drop_intermediate=False)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    cost = cost_fn * (1 - tpr) * n_pos + cost_fp * fpr * n_neg
    t = float(thr[int(np.argmin(cost))])
    return min(t, 1.0)  # roc_curve's first threshold is +inf: "flag nobody"


def cross_fitted_decisions(y: np.ndarray, proba: np.ndarray, splits, rule=f1_threshold) -> np.ndarray:
    """Hard decisions for each CV fold at a threshold chosen on the *other* folds' predictions.

    Parameters
    ----------
    y : array, shape (n,)
        Labels.
    proba : array, shape (n_repeats, n)
        Out-of-fold probabilities, one row per repeat.
    splits : list of list of (train_idx, test_idx)
        The partitions that produced ``proba``.
    rule : callable
        ``rule(y, p) -> threshold``.

    Returns
    -------
    numpy.ndarray of bool, shape (n_repeats, n)
    """
    y = np.asarray(y)
    hard = np.zeros(proba.shape, dtype=bool)
    for r, part in enumerate(splits):
        for train, test in part:
            t = rule(y[train], proba[r, train])
            hard[r, test] = proba[r, test] >= t
    return hard


@dataclass(frozen=True)
class RiskBands:
    """Risk bands on the churn probability: low < ``medium_from`` <= medium < ``high_from`` <= high.

    ``high_from`` is the decision threshold (the users flagged for action); ``medium_from`` is half
    of it, a watch list of users at least half as likely as those acted on.
    """

    medium_from: float
    high_from: float

    @classmethod
    def from_threshold(cls, threshold: float) -> "RiskBands":
        return cls(medium_from=threshold / 2, high_from=threshold)

    def assign(self, p: np.ndarray) -> np.ndarray:
        """``"low"``, ``"medium"`` or ``"high"`` per probability."""
        p = np.asarray(p, dtype=float)
        return np.select([p >= self.high_from, p >= self.medium_from], ["high", "medium"], "low").astype(object)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------

@dataclass
class CalibrationChoice:
    """Whether calibrating helps, judged on cross-fitted out-of-fold predictions.

    Attributes
    ----------
    method : str or None
        ``"sigmoid"``, ``"isotonic"`` or None (keep the raw probabilities).
    brier : dict of str to float
        Brier score of the raw and of each calibrated version of the out-of-fold predictions.
    calibrated_oof : numpy.ndarray
        Out-of-fold probabilities after the chosen calibration (raw when ``method`` is None).
    """

    method: str | None
    brier: dict[str, float]
    calibrated_oof: np.ndarray

    def reason(self) -> str:
        raw = self.brier["raw"]
        if self.method is None:
            best = min((k for k in self.brier if k != "raw"), key=self.brier.get)
            return (f"kept raw probabilities: Brier {raw:.4f}, calibration would give "
                    f"{self.brier[best]:.4f} ({best}), less than {_MIN_GAIN:.0%} better")
        return (f"{self.method} calibration lowers the out-of-fold Brier score from {raw:.4f} to "
                f"{self.brier[self.method]:.4f}")


_MIN_GAIN = 0.01


def choose_calibration(y: np.ndarray, proba: np.ndarray, seed: int = 0, n_splits: int = 5) -> CalibrationChoice:
    """Decide whether to calibrate, from out-of-fold probabilities.

    Each calibrator (Platt/sigmoid and isotonic) is itself cross-fitted on the out-of-fold
    probabilities (fitted on 4/5, applied to the other 1/5), so its Brier score is honest. One is
    chosen only if it lowers the Brier score by at least 1%.

    Parameters
    ----------
    y : array, shape (n,)
        Labels.
    proba : array, shape (n,) or (n_repeats, n)
        Out-of-fold probabilities; several repeats are averaged per row.
    seed : int
        Seed of the cross-fitting folds.
    n_splits : int, default 5
        Cross-fitting folds.

    Returns
    -------
    CalibrationChoice
    """
    y = np.asarray(y).astype(int)
    p = np.atleast_2d(proba).mean(axis=0)
    brier = {"raw": float(np.mean((p - y) ** 2))}
    versions = {}
    folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(p[:, None], y))
    for method in ("sigmoid", "isotonic"):
        out = np.empty_like(p)
        for train, test in folds:
            out[test] = Calibrator(method).fit(p[train], y[train]).transform(p[test])
        versions[method] = out
        brier[method] = float(np.mean((out - y) ** 2))
    best = min(versions, key=brier.get)
    if brier[best] <= (1 - _MIN_GAIN) * brier["raw"]:
        return CalibrationChoice(best, brier, versions[best])
    return CalibrationChoice(None, brier, p)


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability curve: mean predicted vs observed churn rate per quantile bin of ``p``."""
    observed, predicted = calibration_curve(np.asarray(y), np.asarray(p), n_bins=n_bins, strategy="quantile")
    return pd.DataFrame({"predicted": predicted, "observed": observed})
