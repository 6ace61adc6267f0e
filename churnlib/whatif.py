"""The what-if model: a small monotone-constrained LightGBM on six signals, beside the main model.

The dashboard's what-if page asks "what if this user's listening recovered?". The main model cannot
answer that honestly: it uses dozens of correlated features, and nothing makes its probability move
the sensible way when one of them changes. This module fits a deliberately small model on six signals
a retention manager can reason about (:data:`SIGNALS`), each constrained to move the churn
probability in one direction only (:data:`MONOTONE`), so a slider can never show risk falling as the
days since the last login grow.

It is trained and validated by the models stage (:func:`churnlib.training.run_training`) on exactly
the main model's training part and scored on exactly its holdout, with the same bootstrap over
users, so the two models' holdout figures sit side by side (:class:`WhatIfResult`); it is never used
to score the risk list. On disk it is ``whatif.joblib`` with a JSON manifest ``whatif.json`` that
is verified (SHA-256, library versions) before unpickling, as the main model's artifact is
(:mod:`churnlib.artifact`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import joblib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from churnlib import evaluation as ev
from churnlib import thresholds as th
from churnlib.artifact import ArtifactError, library_versions, verified_manifest
from churnlib.calibration import Calibrator
from churnlib.files import atomic_write, jsonable, sha256_file, write_json
from churnlib.intervals import Interval
from churnlib.model import feature_schema
from churnlib.model_report import whatif_sentence

__all__ = ["FIGURES", "MANIFEST_NAME", "MONOTONE", "SIGNALS", "WHATIF_NAME", "WhatIfModel", "WhatIfResult",
           "fit_whatif", "min_child_samples", "signal_table", "skip_reason", "whatif_curve", "whatif_probability"]

#: The six signals, in model input order (columns of the event feature table, :mod:`churnlib.features`).
SIGNALS: tuple[str, ...] = ("app_crash_count_30d", "skip_rate_increase_7d", "days_since_last_login",
                            "listening_time_trend_7d", "freq_of_use_trend_14d", "login_frequency_30d")

#: The direction the churn risk may move as each signal rises (+1 up, -1 down), argued from meaning:
#:
#: * ``app_crash_count_30d`` +1: an app that keeps failing frustrates (the simulated log lowers a
#:   user's satisfaction per error). Raw counts also grow with use, so on the CI-sized table the
#:   *marginal* relation is contrary (busier users crash more and churn less); the constraint asks
#:   for the effect with the other signals, use among them, held fixed.
#: * ``skip_rate_increase_7d`` +1: skipping more than the week before is interest fading.
#: * ``days_since_last_login`` +1: the longer away, the likelier gone.
#: * ``listening_time_trend_7d`` -1: listening rising against the week before is engagement recovering.
#: * ``freq_of_use_trend_14d`` -1: more logins than the fortnight before, likewise.
#: * ``login_frequency_30d`` -1: frequent users stay.
MONOTONE: dict[str, int] = {"app_crash_count_30d": 1, "skip_rate_increase_7d": 1, "days_since_last_login": 1,
                            "listening_time_trend_7d": -1, "freq_of_use_trend_14d": -1, "login_frequency_30d": -1}

#: Metrics reported for the what-if model and the main model side by side.
FIGURES: tuple[str, ...] = ("roc_auc", "pr_auc", "brier")
#: File names in the models folder.
WHATIF_NAME = "whatif.joblib"
MANIFEST_NAME = "whatif.json"
#: Bumped when the manifest layout or the pickled class changes incompatibly.
_FORMAT = 1


def min_child_samples(n_rows: int) -> int:
    """Rows a leaf needs: 2% of the training rows, at least 10 and at most 200 (a smooth, stable model)."""
    return int(min(200, max(10, round(0.02 * n_rows))))


def _signal_frame(X: pd.DataFrame | Mapping[str, Any], signals: Sequence[str]) -> pd.DataFrame:
    """The signal columns of ``X`` as float64, in model order; absent columns are refused."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    missing = [s for s in signals if s not in frame.columns]
    if missing:
        raise ValueError(f"the what-if model needs the signals {', '.join(missing)}; got columns "
                         f"{list(frame.columns)[:12]}")
    return pd.DataFrame({s: pd.to_numeric(frame[s], errors="coerce").astype("float64").to_numpy()
                         for s in signals})


class WhatIfModel(ClassifierMixin, BaseEstimator):
    """A small LightGBM whose churn probability moves only in the allowed direction of each signal.

    Parameters
    ----------
    signals : sequence of str, default :data:`SIGNALS`
        Input columns, in order (other columns of ``X`` are ignored).
    directions : dict of str to {+1, -1}, optional
        Allowed direction per signal (default :data:`MONOTONE`).
    n_estimators, num_leaves, learning_rate : int, int, float
        A deliberately small model: 100 trees of at most 7 leaves.
    min_child_samples : int, optional
        Rows per leaf (default :func:`min_child_samples` of the training rows).
    calibration : {"sigmoid", "isotonic"} or None
        Calibration map fitted on out-of-fold probabilities passed to :meth:`fit` (both maps are
        non-decreasing, so the directions survive; a Platt map that would reverse them is not used).
    seed : int
        LightGBM's seed; training is deterministic (one thread, ``deterministic=True``).

    Attributes
    ----------
    booster_ : lightgbm.LGBMClassifier
    calibrator_ : churnlib.calibration.Calibrator or None
    signals_ : tuple of str
    directions_ : dict of str to int
    schema_ : list of dict
        Median, minimum and maximum of each signal on the training rows
        (:func:`churnlib.model.feature_schema`): slider ranges and starting values.
    manifest_ : dict
        The manifest read by :meth:`load` (absent on a freshly fitted model).

    Notes
    -----
    Missing values (``skip_rate_increase_7d`` is NaN without songs in either week) are left to
    LightGBM, which sends them down the side of each split that fits best.
    """

    def __init__(self, signals: Sequence[str] = SIGNALS, directions: Mapping[str, int] | None = None,
                 n_estimators: int = 100, num_leaves: int = 7, learning_rate: float = 0.05,
                 min_child_samples: int | None = None, calibration: str | None = None, seed: int = 0) -> None:
        self.signals = signals
        self.directions = directions
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.calibration = calibration
        self.seed = seed

    def _directions(self) -> dict[str, int]:
        dirs = dict(MONOTONE if self.directions is None else self.directions)
        bad = {s: dirs.get(s) for s in self.signals if dirs.get(s) not in (1, -1)}
        if bad:
            raise ValueError(f"every signal needs a direction +1 or -1; got {bad}")
        return {s: int(dirs[s]) for s in self.signals}

    def fit(self, X: pd.DataFrame, y: np.ndarray, *, oof_proba: np.ndarray | None = None) -> "WhatIfModel":
        """Fit the constrained trees on the signals of ``X``, and the calibration map on ``oof_proba``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows holding the :attr:`signals` columns.
        y : array of 0/1
        oof_proba : array, optional
            Out-of-fold probabilities of these rows from this configuration uncalibrated; required
            when :attr:`calibration` is set.
        """
        dirs = self._directions()
        Xs = _signal_frame(X, self.signals)
        y = np.asarray(y).astype(int)
        leaf = self.min_child_samples or min_child_samples(len(y))
        self.booster_ = LGBMClassifier(
            n_estimators=self.n_estimators, num_leaves=self.num_leaves, learning_rate=self.learning_rate,
            min_child_samples=leaf, monotone_constraints=[dirs[s] for s in self.signals],
            monotone_constraints_method="basic", random_state=self.seed, n_jobs=1, deterministic=True,
            force_row_wise=True, verbose=-1).fit(Xs, y)
        self.calibrator_ = None
        if self.calibration is not None:
            if oof_proba is None:
                raise ValueError("calibration needs the out-of-fold probabilities (oof_proba)")
            oof = np.atleast_2d(np.asarray(oof_proba, dtype=float)).mean(axis=0)
            if len(oof) != len(y):
                raise ValueError(f"oof_proba has {len(oof)} rows, y has {len(y)}")
            cal = Calibrator(self.calibration).fit(oof, y)
            rising = self.calibration == "isotonic" or float(cal.map_.coef_[0, 0]) > 0
            self.calibrator_ = cal if rising else None
        self.signals_ = tuple(self.signals)
        self.directions_ = dirs
        self.schema_ = feature_schema(Xs)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.signals_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Churn probabilities (calibrated when a map was fitted), columns (stay, churn)."""
        check_is_fitted(self, "booster_")
        p = self.booster_.predict_proba(_signal_frame(X, self.signals_))[:, 1]
        if self.calibrator_ is not None:
            p = self.calibrator_.transform(p)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """0/1 at probability 0.5 (the what-if page shows probabilities, not decisions)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    @property
    def calibrated(self) -> str | None:
        """The calibration map in use (None: raw probabilities)."""
        check_is_fitted(self, "booster_")
        return None if self.calibrator_ is None else self.calibrator_.method

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("manifest_", None)  # the manifest lives beside the pickle, never inside it
        return state

    # ---- persistence ----------------------------------------------------------------------
    def save(self, out_dir: str | os.PathLike, info: Mapping[str, Any] | None = None) -> Path:
        """Write ``whatif.joblib`` and its manifest ``whatif.json`` into ``out_dir``.

        The manifest holds the joblib file's SHA-256, the library versions, the signals, their
        directions and ranges, and ``info`` (the holdout figures: :meth:`WhatIfResult.to_dict`). It has
        no time stamp: the same model gives the same two files.

        Returns
        -------
        pathlib.Path
            The manifest's path.
        """
        check_is_fitted(self, "booster_")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / WHATIF_NAME
        atomic_write(path, lambda tmp: joblib.dump(self, tmp, compress=3))
        manifest = {"format_version": _FORMAT, "artifact": WHATIF_NAME, "sha256": sha256_file(path),
                    "versions": library_versions(), "signals": list(self.signals_),
                    "directions": self.directions_, "calibration": {"method": self.calibrated},
                    "feature_schema": self.schema_, **jsonable(dict(info or {}))}
        return write_json(out / MANIFEST_NAME, manifest)

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_versions: bool = True) -> "WhatIfModel":
        """Read and verify a saved what-if model (its folder, ``whatif.joblib`` or ``whatif.json``).

        Raises
        ------
        churnlib.artifact.ArtifactError
            Missing file or manifest, hash mismatch (modified or corrupted), another manifest format or
            incompatible library versions: all checked before unpickling.
        """
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        file, mpath = folder / WHATIF_NAME, folder / MANIFEST_NAME
        manifest = verified_manifest(file, mpath, format_version=_FORMAT, check_versions=check_versions,
                                     what="what-if model")
        try:
            model = joblib.load(file)
        except Exception as exc:  # a verified file that still fails to unpickle: say so plainly
            raise ArtifactError(f"{file}: cannot unpickle the what-if model: {type(exc).__name__}: {exc}") from None
        if not isinstance(model, cls):
            raise ArtifactError(f"{file}: holds a {type(model).__name__}, not a what-if model")
        model.manifest_ = manifest
        return model


# --------------------------------------------------------------------------------------------
# Training and validation beside the main model
# --------------------------------------------------------------------------------------------

def skip_reason(table: pd.DataFrame, *, left_out: Mapping[str, str] | None = None,
                like: pd.DataFrame | None = None, id_col: str | None = None) -> str | None:
    """Why no what-if model can be trained on ``table`` (None: it can).

    Parameters
    ----------
    table : pandas.DataFrame
        The table the main model was trained on (or the same rows with every feature).
    left_out : dict of str to str, optional
        Columns the main model's training left out, with why (excluded, leakage suspect): a
        signal among them is not used here either.
    like : pandas.DataFrame, optional
        The main model's table, when ``table`` is another one (:func:`signal_table`): ``table`` must
        hold its rows in the same order (``id_col`` and ``as_of`` equal row by row).
    id_col : str, optional
        The id column compared with ``like``.
    """
    missing = [s for s in SIGNALS if s not in table.columns]
    if missing:
        return (f"the table lacks the what-if signals {', '.join(missing)} ({len(missing)} of {len(SIGNALS)}); "
                "they are event-log features, so a snapshot table has no what-if model")
    out = {s: why for s, why in (left_out or {}).items() if s in SIGNALS}
    if out:
        return "; ".join(f"{s} was left out of training ({why})" for s, why in out.items())
    if like is not None and like is not table:
        keys = [c for c in (id_col, "as_of") if c is not None and c in like.columns]
        same = (len(table) == len(like) and all(c in table.columns for c in keys)
                and all(np.array_equal(table[c].to_numpy(), like[c].to_numpy()) for c in keys))
        if not same:
            return "the table given for the what-if signals does not hold the training table's rows in order"
    return None


def signal_table(table: pd.DataFrame, source: str | os.PathLike | None, id_col: str) -> pd.DataFrame:
    """Where the what-if signals come from: ``table``, or the features file it was read from.

    The feature set chosen by ``03_feature_validation`` may drop some of the six signals from the main
    model's table as redundant; the what-if model still needs them. When ``table`` lacks one and
    ``source`` is a parquet file holding all six, its id, ``as_of`` and signal columns are read (the
    same rows in the same order: :func:`churnlib.training.run_training` checks that).

    Parameters
    ----------
    table : pandas.DataFrame
        The table the main model is trained on.
    source : path-like or None
        The file ``table`` was read from (``churnlib.training.training_table``'s ``source``).
    id_col : str

    Returns
    -------
    pandas.DataFrame
        ``table`` itself when it holds every signal or ``source`` cannot supply them.
    """
    if all(s in table.columns for s in SIGNALS) or source is None:
        return table
    path = Path(source)
    if path.suffix != ".parquet" or not path.is_file():
        return table
    names = set(pq.read_schema(path).names)
    if not set(SIGNALS) <= names or id_col not in names:
        return table
    return pd.read_parquet(path, columns=[c for c in (id_col, "as_of", *SIGNALS) if c in names])


@dataclass
class WhatIfResult:
    """The what-if model and its validation next to the main model.

    Attributes
    ----------
    model : WhatIfModel
        Fitted on the main model's training part.
    holdout : dict of str to Interval
        :data:`FIGURES` on the main model's holdout rows, 95% bootstrap intervals over users.
    cv : dict of str to Interval
        The same on out-of-fold predictions of the training part (calibrated when calibrating).
    main_holdout : dict of str to Interval or None
        The main model's holdout figures (same rows, same bootstrap samples).
    n_train, n_test, users_test : int
    calibration : str
        Why the probabilities are (not) calibrated (:meth:`churnlib.thresholds.CalibrationChoice.reason`).
    holdout_proba, y_test, groups_test : numpy.ndarray
        Holdout probabilities, labels and user ids (row order of the table's holdout rows).
    settings : dict
    """

    model: WhatIfModel
    holdout: dict[str, Interval]
    cv: dict[str, Interval]
    main_holdout: dict[str, Interval] | None
    n_train: int
    n_test: int
    users_test: int
    calibration: str
    holdout_proba: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    groups_test: np.ndarray = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``whatif`` entry of ``metrics.json`` (and the body of ``whatif.json``)."""
        m = self.model
        return {
            "signals": list(m.signals_), "directions": m.directions_,
            "model": {"kind": "lightgbm, monotone-constrained", "n_estimators": m.n_estimators,
                      "num_leaves": m.num_leaves, "learning_rate": m.learning_rate,
                      "min_child_samples": m.booster_.get_params()["min_child_samples"]},
            "calibration": {"method": m.calibrated, "why": self.calibration},
            "holdout": {k: v.to_dict() for k, v in self.holdout.items()},
            "cv": {k: v.to_dict() for k, v in self.cv.items()},
            "main_holdout": ({k: v.to_dict() for k, v in self.main_holdout.items()}
                             if self.main_holdout is not None else None),
            "rows_train": self.n_train, "rows_test": self.n_test, "users_test": self.users_test,
            "settings": self.settings,
            "statement": self.statement,
        }

    @property
    def statement(self) -> str:
        """Plain words: what the model is for, its holdout ROC-AUC against the main model's."""
        d = {"holdout": {k: v.to_dict() for k, v in self.holdout.items()},
             "main_holdout": ({k: v.to_dict() for k, v in self.main_holdout.items()}
                              if self.main_holdout is not None else None),
             "rows_test": self.n_test, "users_test": self.users_test}
        return whatif_sentence(d)


def _figures(frame: pd.DataFrame) -> dict[str, Interval]:
    return {k: Interval.from_row(frame.loc[k]) for k in FIGURES}


def fit_whatif(table: pd.DataFrame, id_col: str, label_col: str, *, test: np.ndarray | None = None,
               split_col: str | None = None, holdout_fraction: float = 0.2,
               main_holdout: pd.DataFrame | None = None, n_splits: int = 3, n_bootstrap: int = 200,
               seed: int = 0) -> WhatIfResult:
    """Fit the what-if model on the main model's training part and score it on its holdout.

    Parameters
    ----------
    table : pandas.DataFrame
        The rows the main model was split from, holding :data:`SIGNALS`, ``id_col`` and ``label_col``.
    id_col, label_col : str
    test : array of bool, optional
        The main model's holdout mask over ``table``'s rows (:attr:`churnlib.training.TrainTestParts.test`).
        Without it the split is drawn as :func:`churnlib.training.split_table` draws it
        (:func:`churnlib.evaluation.holdout_split` with ``split_col``, ``holdout_fraction``, ``seed``),
        which gives the same rows.
    main_holdout : pandas.DataFrame, optional
        The main model's holdout metrics (``TrainingResult.holdout``) for the side-by-side.
    n_splits : int
        Folds of the out-of-fold predictions (calibration and the CV figures); user-grouped as the
        main model's.
    n_bootstrap, seed : int
        As the main model's: with the same holdout users, seed and replicates the two models'
        intervals come from the same bootstrap samples.

    Returns
    -------
    WhatIfResult

    Raises
    ------
    ValueError
        When :func:`skip_reason` finds a reason, or ``test`` does not match the table.
    """
    why = skip_reason(table)
    if why is not None:
        raise ValueError(why)
    y_all = table[label_col].to_numpy().astype(int)
    g_all = table[id_col].astype(str).to_numpy()
    if test is None:
        test = ev.holdout_split(y_all, g_all, table[split_col] if split_col else None, holdout_fraction, seed)
    test = np.asarray(test, dtype=bool)
    if test.shape != (len(table),):
        raise ValueError(f"the holdout mask has {test.shape[0]} entries, the table {len(table)} rows")
    X_all = _signal_frame(table, SIGNALS)
    X, y, g = X_all[~test].reset_index(drop=True), y_all[~test], g_all[~test]
    X_te, y_te, g_te = X_all[test].reset_index(drop=True), y_all[test], g_all[test]
    splits = ev.cv_splits(y, g, n_splits, 1, seed)
    oof = ev.oof_predict(WhatIfModel(seed=seed), X, y, splits)
    choice = th.choose_calibration(y, oof, seed=seed)
    model = WhatIfModel(calibration=choice.method, seed=seed).fit(X, y, oof_proba=oof)
    why_cal = choice.reason()
    if choice.method is not None and model.calibrated is None:
        why_cal += "; not applied: the map would reverse the directions"
    p_oof = choice.calibrated_oof if model.calibrated is not None else oof.mean(axis=0)
    p_te = model.predict_proba(X_te)[:, 1]
    holdout = ev.evaluate_predictions(y_te, p_te, p_te >= 0.5, g_te, n_bootstrap=n_bootstrap, seed=seed)
    cv = ev.evaluate_predictions(y, p_oof, p_oof >= 0.5, g, n_bootstrap=n_bootstrap, seed=seed)
    return WhatIfResult(model=model, holdout=_figures(holdout), cv=_figures(cv),
                        main_holdout=_figures(main_holdout) if main_holdout is not None else None,
                        n_train=int(len(y)), n_test=int(len(y_te)), users_test=int(len(set(g_te))),
                        calibration=why_cal, holdout_proba=p_te, y_test=y_te, groups_test=g_te,
                        settings={"n_splits": n_splits, "n_bootstrap": n_bootstrap, "seed": seed})


# --------------------------------------------------------------------------------------------
# Asking it
# --------------------------------------------------------------------------------------------

def _one_row(model: WhatIfModel, values: Mapping[str, float]) -> pd.DataFrame:
    unknown = sorted(set(values) - set(model.signals_))
    if unknown:
        raise ValueError(f"not what-if signals: {', '.join(unknown)}; the signals are {', '.join(model.signals_)}")
    return pd.DataFrame({s: [float("nan") if pd.isna(values.get(s)) else float(values[s])] for s in model.signals_})


def whatif_probability(model: WhatIfModel, values: Mapping[str, float]) -> float:
    """The what-if model's churn probability for one set of signal values.

    Parameters
    ----------
    model : WhatIfModel
    values : mapping of signal to number
        A value per signal; a signal left out (or None/NaN) counts as unknown (missing).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        A name that is not one of the model's signals.
    """
    return float(model.predict_proba(_one_row(model, values))[0, 1])


def whatif_curve(model: WhatIfModel, values: Mapping[str, float], signal: str,
                 grid: Sequence[float] | None = None, n: int = 25) -> pd.DataFrame:
    """The probability as one signal runs over ``grid``, the others held at ``values``.

    Parameters
    ----------
    grid : sequence of float, optional
        Values of ``signal`` (default: ``n`` evenly spaced between its training minimum and maximum).

    Returns
    -------
    pandas.DataFrame
        Columns ``signal`` value and ``probability``; it rises with the value for direction +1 and
        falls for -1 (never the other way).
    """
    if signal not in model.signals_:
        raise ValueError(f"{signal!r} is not a what-if signal; the signals are {', '.join(model.signals_)}")
    if grid is None:
        spec = next(e for e in model.schema_ if e["name"] == signal)
        lo, hi = spec.get("min"), spec.get("max")
        grid = np.linspace(lo, hi, n) if lo is not None and hi is not None else np.array([0.0])
    grid = np.asarray(grid, dtype=float)
    base = _one_row(model, values)
    frame = pd.concat([base] * len(grid), ignore_index=True)
    frame[signal] = grid
    return pd.DataFrame({signal: grid, "probability": model.predict_proba(frame)[:, 1]})
