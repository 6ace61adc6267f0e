"""The final churn model: one object that owns its schema, calibration, threshold and risk bands.

:class:`ChurnModel` is what training produces, what ``models/`` holds and what every consumer uses:
the scorer, the explanations, monitoring, the notebooks (and later the prediction service). Nothing
outside this module unwraps the estimator inside it.

The estimator is a scikit-learn pipeline ``preprocess -> [resample] -> model``, optionally wrapped in
a :class:`churnlib.calibration.CalibratedClassifier`. On disk a model is an artifact
(:mod:`churnlib.artifact`): a joblib file and a JSON manifest that is verified before unpickling.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from churnlib import evaluation as ev
from churnlib import explain as ex
from churnlib import thresholds as th
from churnlib.artifact import library_versions, read_artifact, save_artifact
from churnlib.calibration import CalibratedClassifier

__all__ = ["ARTIFACT_NAME", "ChurnModel", "feature_schema"]

#: File name of the model in a models folder (with ``.manifest.json`` beside it).
ARTIFACT_NAME = "churn_model.joblib"
#: Categories recorded per categorical feature in the schema (more are summarised by their count).
_MAX_CATEGORIES = 200


def feature_schema(X: pd.DataFrame) -> list[dict[str, Any]]:
    """Name, kind and dtype of each input column, with what scoring checks and explains against.

    Numeric columns carry their training median (the "typical" value reasons are worded against),
    minimum and maximum; categorical ones their categories (up to 200, sorted) and how many there are.
    """
    out = []
    for c in X.columns:
        s = X[c]
        numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
        entry: dict[str, Any] = {"name": c, "kind": "numeric" if numeric else "categorical", "dtype": str(s.dtype)}
        if numeric:
            v = pd.to_numeric(s, errors="coerce").astype("float64")
            median, lo, hi = v.median(), v.min(), v.max()
            entry["median"] = None if pd.isna(median) else float(median)
            entry["min"] = None if pd.isna(lo) else float(lo)
            entry["max"] = None if pd.isna(hi) else float(hi)
        else:
            cats = sorted(s.dropna().astype(str).unique().tolist())
            entry["n_categories"] = len(cats)
            entry["categories"] = cats[:_MAX_CATEGORIES]
        out.append(entry)
    return out


class ChurnModel:
    """A fitted churn classifier with its feature schema, decision threshold and risk bands.

    Build one with :meth:`fit` (or :func:`churnlib.training.run_training`), read one with
    :meth:`load`, refit it on new rows with :meth:`refit` (the challenger).

    Parameters
    ----------
    estimator : fitted classifier
        A churnlib pipeline, or a :class:`~churnlib.calibration.CalibratedClassifier` around one.
    threshold : float
        Churn is predicted when the probability is at least this (chosen out of fold).
    schema : list of dict
        :func:`feature_schema` of the training inputs, in model input order.
    id_col : str, default "userId"
        The user-id column of the training table (scoring defaults to it).
    bands : churnlib.thresholds.RiskBands, optional
        Default: :meth:`RiskBands.from_threshold` of ``threshold``.
    info : dict, optional
        Metrics with intervals, data fingerprint, chosen configuration, versions (the manifest of a
        loaded model).
    oof_proba : array, optional
        Out-of-fold (calibrated) probabilities of the training rows, when this process fitted the model.
    """

    def __init__(self, estimator: Any, *, threshold: float, schema: list[dict[str, Any]], id_col: str = "userId",
                 bands: th.RiskBands | None = None, info: dict[str, Any] | None = None,
                 oof_proba: np.ndarray | None = None) -> None:
        self.estimator = estimator
        self.threshold = float(threshold)
        self.schema = list(schema)
        self.id_col = id_col
        self.bands = bands if bands is not None else th.RiskBands.from_threshold(self.threshold)
        self.info = dict(info or {})
        self.oof_proba = oof_proba

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def fit(cls, pipeline: Any, X: pd.DataFrame, y: Sequence[int], *, groups: Sequence | None = None,
            calibration: str | None = None, n_splits: int = 3, seed: int = 0, id_col: str = "userId",
            info: dict[str, Any] | None = None) -> "ChurnModel":
        """Fit ``pipeline`` with an out-of-fold calibration and F1 threshold.

        Out-of-fold probabilities on :func:`churnlib.evaluation.cv_splits` (group-aware when a user
        has several rows) fit the calibration map (when ``calibration`` names one) and choose the
        F1-optimal threshold on the calibrated values; the pipeline is then refitted on all rows.

        Parameters
        ----------
        pipeline : classifier
            Unfitted pipeline (cloned, never changed).
        X, y : DataFrame, array of 0/1
        groups : array, optional
            User ids.
        calibration : {"sigmoid", "isotonic"} or None
        n_splits, seed : int
            Folds and seed of the out-of-fold predictions.
        id_col : str
        info : dict, optional

        Returns
        -------
        ChurnModel
        """
        y = np.asarray(y).astype(int)
        g = None if groups is None else np.asarray(groups)
        splits = ev.cv_splits(y, g, n_splits, 1, seed)
        oof = ev.oof_predict(pipeline, X, y, splits)[0]
        if calibration is None:
            estimator = clone(pipeline).fit(X, y)
        else:
            estimator = CalibratedClassifier(pipeline, calibration).fit(X, y, oof_proba=oof)
            oof = estimator.calibrator_.transform(oof)
        threshold = th.f1_threshold(y, oof)
        return cls(estimator, threshold=threshold, schema=feature_schema(X), id_col=id_col,
                   info={"calibration": calibration, "threshold_rule": "f1", **(info or {})}, oof_proba=oof)

    def refit(self, X: pd.DataFrame, y: Sequence[int], *, groups: Sequence | None = None, n_splits: int = 3,
              seed: int = 0) -> "ChurnModel":
        """A challenger: this model's configuration (pipeline and calibration method) fitted on new rows.

        Its threshold is chosen again, F1-optimal on its own out-of-fold predictions. ``X`` is read
        through :meth:`prepare`, so it must hold this model's features.
        """
        info = {k: self.info[k] for k in ("model",) if k in self.info}
        info["refit_of"] = self.info.get("sha256")  # None for a model never saved
        return ChurnModel.fit(clone(self.pipeline), self.prepare(X), y, groups=groups, calibration=self.calibration,
                              n_splits=n_splits, seed=seed, id_col=self.id_col, info=info)

    # ---- what it is ------------------------------------------------------------------------
    @property
    def pipeline(self) -> Any:
        """The fitted pipeline without the calibration map (what explanations take apart)."""
        return self.estimator.estimator_ if isinstance(self.estimator, CalibratedClassifier) else self.estimator

    @property
    def calibration(self) -> str | None:
        """``"sigmoid"``, ``"isotonic"`` or None."""
        return self.estimator.method if isinstance(self.estimator, CalibratedClassifier) else None

    @property
    def version(self) -> str:
        """Short model version: the first 12 hex digits of the artifact's SHA-256 (``"unsaved"`` before
        :meth:`save`). Every served or batch prediction names it."""
        sha = self.info.get("sha256")
        return str(sha)[:12] if sha else "unsaved"

    @property
    def feature_names(self) -> list[str]:
        """Input features in model order."""
        return [f["name"] for f in self.schema]

    @property
    def typical(self) -> dict[str, float]:
        """Training medians of the numeric features."""
        return {f["name"]: float(f["median"]) for f in self.schema
                if f.get("kind") == "numeric" and f.get("median") is not None}

    @property
    def explainer_route(self) -> str:
        """How :meth:`shap` explains this model (see :func:`churnlib.explain.explainer_route`)."""
        return ex.explainer_route(self.pipeline)

    def describe(self) -> str:
        """``"lightgbm / class_weight, sigmoid calibration, threshold 0.312"``."""
        m = self.info.get("model", {}) if isinstance(self.info.get("model"), dict) else {}
        cal = f"{self.calibration} calibration" if self.calibration else "no calibration"
        return f"{m.get('model', '?')} / {m.get('strategy', '?')}, {cal}, threshold {self.threshold:.3f}"

    def __repr__(self) -> str:
        return f"ChurnModel({self.describe()}, {len(self.schema)} features)"

    # ---- predicting ------------------------------------------------------------------------
    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's feature columns of ``frame``, in training order and with training kinds.

        Extra columns are ignored; missing values are fine (the pipeline imputes them).

        Raises
        ------
        ValueError
            When a feature column is absent, or a numeric column holds text that is not a number.
        """
        names = self.feature_names
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"the input lacks {len(missing)} feature column(s) the model needs: "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
        X = frame[names]
        changed = {}
        for f in self.schema:
            c, s = f["name"], X[f["name"]]
            if f["kind"] == "numeric" and not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
                num = pd.to_numeric(s, errors="coerce")
                bad = num.isna() & s.notna() & (s.astype("string").str.strip() != "")
                if bad.any():
                    raise ValueError(f"column {c!r} must be numeric; e.g. {s[bad].iloc[0]!r}")
                changed[c] = num
            elif f["kind"] == "categorical" and pd.api.types.is_numeric_dtype(s):
                if pd.api.types.is_float_dtype(s) and (s.dropna() % 1 == 0).all():
                    s = s.astype("Int64")  # codes read as floats (a CSV column with gaps): "10", not "10.0"
                changed[c] = s.astype("string")
        if changed:  # no deep copy of the whole table: only the coerced columns are new
            X = X.copy(deep=False)
            for c, v in changed.items():
                X[c] = v
        return X

    def set_threads(self, n_jobs: int) -> "ChurnModel":
        """Give the model step ``n_jobs`` threads; preprocessing stays in-process. Changes no output.

        A ``ColumnTransformer`` with ``n_jobs`` > 1 runs its transformers in worker *processes* and
        memory-maps the data to them, which on a 50,000-row table cost more than the whole transform.
        """
        steps = [s for _, s in getattr(self.pipeline, "steps", [(None, self.pipeline)])]
        for i, step in enumerate(steps):
            if hasattr(step, "get_params") and "n_jobs" in step.get_params(deep=False):
                step.set_params(n_jobs=n_jobs if i == len(steps) - 1 else None)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): columns stay, churn."""
        return self.estimator.predict_proba(self.prepare(frame))

    def churn_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The churn probability of each row, shape (n,)."""
        return self.predict_proba(frame)[:, 1]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """1 where the churn probability reaches the threshold, else 0."""
        return (self.churn_probability(frame) >= self.threshold).astype("int64")

    def risk_band(self, frame: pd.DataFrame | None = None, *, proba: np.ndarray | None = None) -> np.ndarray:
        """``"low"``, ``"medium"`` or ``"high"`` per row (or per probability given as ``proba``)."""
        if (frame is None) == (proba is None):
            raise ValueError("risk_band takes either a frame of users or their probabilities (proba=), not both")
        p = self.churn_probability(frame) if proba is None else np.asarray(proba, dtype=float)
        return self.bands.assign(p)

    # ---- explaining ------------------------------------------------------------------------
    def shap(self, frame: pd.DataFrame, *, background: pd.DataFrame | None = None, max_rows: int | None = None,
             seed: int = 0, n_jobs: int = 1) -> ex.Explanation:
        """SHAP values of the rows of ``frame`` (see :func:`churnlib.explain.explain_model`)."""
        X = self.prepare(frame)
        bg = None if background is None else self.prepare(background)
        return ex.explain_model(self.pipeline, X, background=bg, max_rows=max_rows, seed=seed, n_jobs=n_jobs,
                                typical=self.typical or None, calibrated=self.calibration is not None)

    def explain(self, frame: pd.DataFrame, k: int = 3, *, n_jobs: int = 1) -> pd.DataFrame:
        """Each row's ``k`` strongest risk-raising reasons in plain words (``reason_1`` .. ``reason_k``,
        ``feature_1`` .. ``feature_k``), e.g. ``"thumbs up share: 64%, typical 81% (raises risk)"``."""
        X = self.prepare(frame)
        expl = ex.explain_model(self.pipeline, X, n_jobs=n_jobs, typical=self.typical or None,
                                calibrated=self.calibration is not None)
        return ex.top_reasons(expl, X, k=k)

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike, info: dict[str, Any] | None = None) -> Path:
        """Write the artifact (``.joblib`` + verified manifest); a folder gets :data:`ARTIFACT_NAME`.

        ``info`` (merged over :attr:`info`) goes into the manifest. Returns the manifest's path.
        """
        path = Path(path)
        if path.suffix != ".joblib":
            path = path / ARTIFACT_NAME
        meta = {k: v for k, v in {**self.info, **(info or {})}.items()
                if k not in ("format_version", "artifact", "sha256", "created", "versions", "threshold",
                             "risk_bands", "feature_schema", "id_col")}
        mpath = save_artifact(self.estimator, path, threshold=self.threshold,
                              risk_bands={"medium_from": self.bands.medium_from, "high_from": self.bands.high_from},
                              feature_schema=self.schema, id_col=self.id_col, metadata=meta)
        self.info.update(meta, versions=library_versions(), sha256=json.loads(mpath.read_text())["sha256"])
        return mpath

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_versions: bool = True) -> "ChurnModel":
        """Read and verify an artifact (the ``.joblib``, its manifest, or the folder holding it).

        Raises
        ------
        churnlib.artifact.ArtifactError
            Tampered, incomplete or incompatible artifact (checked before unpickling).
        """
        art = read_artifact(path, check_versions=check_versions)
        m = art.manifest
        bands = th.RiskBands(medium_from=float(m["risk_bands"]["medium_from"]),
                             high_from=float(m["risk_bands"]["high_from"]))
        return cls(art.estimator, threshold=float(m["threshold"]), schema=m["feature_schema"],
                   id_col=m.get("id_col", "userId"), bands=bands, info=m)
