"""Probability calibration as scikit-learn estimators: a calibration map, and a classifier wrapped in one.

The calibration map is fitted on *out-of-fold* probabilities of the training rows, never on the
probabilities the refitted model gives its own training rows (those are over-confident). Which map to
use, if any, is decided by :func:`churnlib.thresholds.choose_calibration` on cross-fitted predictions.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

__all__ = ["CALIBRATION_METHODS", "CalibratedClassifier", "Calibrator"]

#: The calibration maps: Platt scaling on the log-odds, and isotonic regression.
CALIBRATION_METHODS: tuple[str, ...] = ("sigmoid", "isotonic")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Calibrator(BaseEstimator):
    """A monotone map from a model's churn probability to a calibrated one.

    Parameters
    ----------
    method : {"sigmoid", "isotonic"}, default "sigmoid"
        Platt scaling (a logistic regression on the log-odds) or isotonic regression.
    """

    def __init__(self, method: str = "sigmoid") -> None:
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> "Calibrator":
        """Fit the map on probabilities ``p`` (out of fold) and 0/1 labels ``y``."""
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {self.method!r}")
        p = np.asarray(p, dtype=float)
        y = np.asarray(y).astype(int)
        if self.method == "sigmoid":
            self.map_ = LogisticRegression(C=1e6).fit(_logit(p)[:, None], y)
        else:
            self.map_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for ``p``."""
        check_is_fitted(self, "map_")
        p = np.asarray(p, dtype=float)
        if self.method == "sigmoid":
            return self.map_.predict_proba(_logit(p)[:, None])[:, 1]
        return self.map_.predict(p)


class CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier refitted on all rows, followed by a calibration map fitted on its out-of-fold probabilities.

    The construction of ``CalibratedClassifierCV(ensemble=False)``, except that :meth:`fit` can reuse
    out-of-fold probabilities already computed for model selection (``oof_proba``), so calibrating
    costs no extra fits.

    Parameters
    ----------
    estimator : classifier
        Unfitted (or fitted: it is cloned) pipeline with ``predict_proba``.
    method : {"sigmoid", "isotonic"}, default "sigmoid"
    cv : int or CV splitter, default 5
        Folds for the out-of-fold probabilities when :meth:`fit` is not given them.

    Attributes
    ----------
    estimator_ : classifier
        ``estimator`` fitted on all rows.
    calibrator_ : Calibrator
    classes_ : ndarray
    """

    def __init__(self, estimator: Any = None, method: str = "sigmoid", cv: Any = 5) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv

    def fit(self, X, y, *, oof_proba: np.ndarray | None = None, groups: np.ndarray | None = None,
            ) -> "CalibratedClassifier":
        """Fit the estimator on all rows and the calibration map on out-of-fold probabilities.

        Parameters
        ----------
        X, y
            Training rows and 0/1 labels.
        oof_proba : array, shape (n,) or (n_repeats, n), optional
            Out-of-fold churn probabilities of these rows (repeats are averaged); computed with
            ``cv`` (and ``groups``) when not given.
        groups : array, optional
            User ids for the folds when ``oof_proba`` is computed here.
        """
        y = np.asarray(y).astype(int)
        if oof_proba is None:
            oof = cross_val_predict(clone(self.estimator), X, y, groups=groups, cv=self.cv,
                                    method="predict_proba")[:, 1]
        else:
            oof = np.atleast_2d(np.asarray(oof_proba, dtype=float)).mean(axis=0)
        if len(oof) != len(y):
            raise ValueError(f"oof_proba has {len(oof)} rows, y has {len(y)}")
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.calibrator_ = Calibrator(self.method).fit(oof, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, columns (stay, churn)."""
        check_is_fitted(self, "calibrator_")
        p = self.calibrator_.transform(self.estimator_.predict_proba(X)[:, 1])
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        """0/1 at probability 0.5 (churnlib decides at the chosen threshold: see ChurnModel.predict)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
