"""Model registry, imbalance strategies, model comparison and bounded search.

Every candidate is one imbalanced-learn :class:`~imblearn.pipeline.Pipeline`:
``coerce -> preprocess (impute, scale, one-hot) -> [resample] -> model``. Cross-validation refits
the whole pipeline inside each training fold, so imputation statistics, scaling and synthetic
samples never see the rows they are scored on (resamplers act only during ``fit``).

The training flow that uses these pieces lives in :mod:`churnlib.training`
(:func:`~churnlib.training.run_training`, used by ``05_models`` and ``python -m churnlib train``);
the paired comparison of imbalance strategies in :mod:`churnlib.imbalance`; display tables of
candidates in :mod:`churnlib.model_report`:

1. hold out a test part (a given split column, else a stratified, group-aware fraction);
2. compare models x imbalance strategies with repeated CV on the training part
   (:mod:`churnlib.evaluation`: metrics with bootstrap intervals);
3. compare the candidates paired on the same folds, choose by the one-standard-error rule and
   confirm a bounded search on rows it did not use (:mod:`churnlib.selection`);
4. decide calibration and the threshold on out-of-fold predictions (:mod:`churnlib.thresholds`);
5. refit on the whole training part, score the holdout once, run the label-permutation test;
6. :meth:`churnlib.training.TrainingResult.save` writes the model (:meth:`churnlib.model.ChurnModel.save`) and ``metrics.json``.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churnlib import evaluation as ev
from churnlib import thresholds as th
from churnlib.features import FEATURE_DICTIONARY, KEY_COLUMNS
from churnlib.load import DataValidationError, load_snapshot, load_table

__all__ = [
    "MODELS",
    "STRATEGIES",
    "Candidate",
    "comparison_table",
    "evaluate_candidate",
    "compare_models",
    "feature_frame",
    "load_training_table",
    "make_pipeline",
    "negatives_per_positive",
    "resampling_leak_demo",
    "search_model",
    "supports",
]

#: Models in order of increasing complexity (the dummy is the no-skill baseline).
MODELS: tuple[str, ...] = ("dummy", "logreg", "knn", "random_forest", "extra_trees", "hist_gb",
                           "lightgbm", "xgboost")
#: Imbalance strategies. ``class_weight`` is ``scale_pos_weight`` for XGBoost.
STRATEGIES: tuple[str, ...] = ("none", "class_weight", "smote", "adasyn", "undersample", "smoteenn")

_NO_CLASS_WEIGHT = {"dummy", "knn"}


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------

def _coerce(X: pd.DataFrame) -> pd.DataFrame:
    """Booleans and nullable numbers to float, text/categories to object with NaN for missing.

    What scikit-learn's imputers and encoders expect; plain numpy columns are left as they are.
    """
    X = pd.DataFrame(X)
    changed = {}
    for c in X.columns:
        s = X[c]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf":
            continue
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            changed[c] = s.astype("float64")  # bool, Int64/Float64 with pd.NA
        elif s.dtype != object or s.isna().any():
            changed[c] = s.astype(object).where(s.notna(), np.nan)
    if not changed:
        return X
    X = X.copy(deep=False)  # copy-on-write: only the replaced columns are new
    for c, v in changed.items():
        X[c] = v
    return X


def make_preprocessor(native_missing: bool = False) -> SkPipeline:
    """Coerce dtypes, then median-impute (+ missing flags) and scale numbers, one-hot categories.

    Columns are picked by dtype when the pipeline is fitted, so the same preprocessor serves an
    event-feature table and any snapshot table.

    Parameters
    ----------
    native_missing : bool, default False
        Pass numbers through untouched (NaN included), for gradient-boosted trees that route
        missing values themselves and need no scaling; also makes scoring cheaper.
    """
    numeric = "passthrough" if native_missing else SkPipeline([
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
        ("scale", StandardScaler())])
    categorical = SkPipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                              ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=20,
                                                       sparse_output=False))])
    columns = ColumnTransformer([
        ("num", numeric, make_column_selector(dtype_include="number")),
        ("cat", categorical, make_column_selector(dtype_include=object)),
    ], verbose_feature_names_out=False)
    return SkPipeline([("coerce", FunctionTransformer(_coerce)), ("prep", columns)])


#: Models that handle missing values natively (no imputation needed unless a resampler follows).
_NATIVE_MISSING = {"hist_gb", "lightgbm", "xgboost"}


def supports(model: str, strategy: str) -> bool:
    """Whether ``strategy`` applies to ``model`` (class weights need a model that takes them)."""
    if model == "dummy":  # the no-skill baseline: resampling it only moves its constant
        return strategy == "none"
    return not (strategy == "class_weight" and model in _NO_CLASS_WEIGHT)


def _estimator(model: str, balanced: bool, pos_weight: float, seed: int, n_jobs: int):
    cw = "balanced" if balanced else None
    if model == "dummy":
        from sklearn.dummy import DummyClassifier
        return DummyClassifier(strategy="prior")
    if model == "logreg":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(max_iter=2000, class_weight=cw)
    if model == "knn":
        from sklearn.neighbors import KNeighborsClassifier
        return KNeighborsClassifier(n_neighbors=25, weights="distance", n_jobs=n_jobs)
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=200, min_samples_leaf=3, class_weight=cw,
                                      random_state=seed, n_jobs=n_jobs)
    if model == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier
        return ExtraTreesClassifier(n_estimators=200, min_samples_leaf=3, class_weight=cw,
                                    random_state=seed, n_jobs=n_jobs)
    if model == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, class_weight=cw,
                                              early_stopping=False, random_state=seed)
    if model == "lightgbm":
        from lightgbm import LGBMClassifier
        # 100 trees at 0.1 score like 200 at 0.05 here and halve the scoring time
        return LGBMClassifier(n_estimators=100, learning_rate=0.1, num_leaves=15, min_child_samples=10,
                              subsample=0.8, subsample_freq=1, colsample_bytree=0.8, class_weight=cw,
                              random_state=seed, n_jobs=n_jobs, verbose=-1)
    if model == "xgboost":
        from xgboost import XGBClassifier
        return XGBClassifier(n_estimators=100, learning_rate=0.1, max_depth=4, subsample=0.8,
                             colsample_bytree=0.8, tree_method="hist", eval_metric="logloss",
                             scale_pos_weight=pos_weight if balanced else 1.0,
                             random_state=seed, n_jobs=n_jobs)
    raise ValueError(f"unknown model {model!r}; choose from {MODELS}")


def _sampler(strategy: str, seed: int):
    if strategy in ("none", "class_weight"):
        return None
    if strategy == "smote":
        from imblearn.over_sampling import SMOTE
        return SMOTE(random_state=seed, k_neighbors=5)
    if strategy == "adasyn":
        from imblearn.over_sampling import ADASYN
        return ADASYN(random_state=seed, n_neighbors=5)
    if strategy == "undersample":
        from imblearn.under_sampling import RandomUnderSampler
        return RandomUnderSampler(random_state=seed)
    if strategy == "smoteenn":
        from imblearn.combine import SMOTEENN
        return SMOTEENN(random_state=seed)
    raise ValueError(f"unknown imbalance strategy {strategy!r}; choose from {STRATEGIES}")


def make_pipeline(model: str, strategy: str = "none", *, pos_weight: float = 1.0, seed: int = 0,
                  n_jobs: int = 1):
    """One candidate: preprocessing, optional resampler and model in an imbalanced-learn Pipeline.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    strategy : str, default "none"
        One of :data:`STRATEGIES`; resamplers act only when the pipeline is fitted, i.e. only on
        training folds.
    pos_weight : float, default 1.0
        Negatives per positive in the training data (XGBoost's ``scale_pos_weight`` under
        ``class_weight``).
    seed : int
        Random state of the model and resampler.
    n_jobs : int
        Threads for models that take them.

    Returns
    -------
    imblearn.pipeline.Pipeline
        Steps ``coerce``, ``prep``, optionally ``resample``, and ``model``.
    """
    from imblearn.pipeline import Pipeline

    if not supports(model, strategy):
        raise ValueError(f"strategy {strategy!r} does not apply to model {model!r}")
    # imbalanced-learn refuses a nested Pipeline as a step, so the preprocessing steps go in flat
    native = model in _NATIVE_MISSING and strategy in ("none", "class_weight")
    steps = list(make_preprocessor(native_missing=native).steps)
    sampler = _sampler(strategy, seed)
    if sampler is not None:
        steps.append(("resample", sampler))
    steps.append(("model", _estimator(model, strategy == "class_weight", pos_weight, seed, n_jobs)))
    return Pipeline(steps)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def feature_frame(table: pd.DataFrame, id_col: str, label_col: str,
                  drop: Iterable[str] = ()) -> pd.DataFrame:
    """The model inputs of a table: every column but id, label, ``drop`` and date/time columns."""
    skip = {id_col, label_col, *drop}
    keep = [c for c in table.columns if c not in skip
            and not pd.api.types.is_datetime64_any_dtype(table[c])
            and not pd.api.types.is_timedelta64_dtype(table[c])]
    if not keep:
        raise ValueError(f"no feature columns left after removing {sorted(skip)} and date columns")
    return table[keep]


_KEY_SEP = "\x1f"  # joins id and as_of into the key of a stacked feature table (load_training_table)


def load_training_table(path: str | os.PathLike, id_col: str, label_col: str, *,
                        strict: bool = False) -> pd.DataFrame:
    """Read a feature table (``churnlib features`` parquet, one row per user and date) or a snapshot.

    A parquet file holding ``userId``, ``as_of`` and ``churned`` is a stacked feature table (a user
    may appear once per date): it is read by :func:`churnlib.load.load_table` (label checked, no
    one-row-per-user rule), and a documented numeric feature holding text is refused, naming the
    file, column and first row. Anything else goes through :func:`churnlib.load.load_snapshot`
    (validation, one row per user).

    Parameters
    ----------
    path : path-like
        The table.
    id_col, label_col : str
        Id and label columns.
    strict : bool, default False
        Refuse the table at its first defect instead of repairing or dropping rows.

    Returns
    -------
    pandas.DataFrame
        The rows kept; ``id_col`` str, ``label_col`` int64 0/1; ``attrs["quality"]`` holds the
        :class:`churnlib.load.DataQuality` (rows read, kept, dropped and repaired, by reason).

    Raises
    ------
    churnlib.load.DataValidationError
        Missing id or label column, a label that is not 0/1, a text value in a numeric feature of a
        feature table, an unreadable file (each naming the file, and the column/line when known).
    """
    path = Path(path)
    # A folder of parquet parts is one table too: what `features --engine spark` writes.
    parts = sorted(path.glob("*.parquet")) if path.is_dir() else []
    if path.suffix.lower() in (".parquet", ".pq") and (path.is_file() or parts):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(parts[0] if parts else path).names
        except Exception as exc:  # noqa: BLE001 - any pyarrow failure is an unreadable file
            raise DataValidationError(f"cannot read parquet file: {exc}", file=path) from None
        if set(KEY_COLUMNS) <= set(names):
            for c in (id_col, label_col):
                if c not in names:
                    raise DataValidationError(f"no column {c!r}; columns present: {names}", file=path, column=c)
            # The key of a stacked table is (id, as_of): load it as one text id, so that the loader's rules
            # for ids apply (kept as text, exact duplicate rows dropped, conflicting ones refused) without
            # calling a user seen on several dates a duplicate. Row numbers stay those of the file.
            import pyarrow as pa
            import pyarrow.compute as pc

            raw = pq.read_table(path)
            key = pc.binary_join_element_wise(pc.cast(raw[id_col], pa.string()),
                                              pc.cast(pc.cast(raw["as_of"], pa.timestamp("ms")), pa.string()),
                                              _KEY_SEP)
            raw = raw.set_column(raw.schema.get_field_index(id_col), id_col, key)
            with tempfile.TemporaryDirectory(prefix="churnlib_table_") as tmp:
                keyed = Path(tmp) / path.name
                pq.write_table(raw, keyed)
                try:
                    loaded = load_table(keyed, id_col=id_col, label_col=label_col, strict=strict)
                except DataValidationError as exc:
                    raise DataValidationError(exc.message.replace(str(keyed), str(path)), file=path, line=exc.line,
                                              column=exc.column) from None
            table = loaded.table
            table[id_col] = table[id_col].str.split(_KEY_SEP, n=1).str[0].astype(str)
            unit = getattr(raw.schema.field("as_of").type, "unit", None)
            if unit and pd.api.types.is_datetime64_any_dtype(table["as_of"]):
                table["as_of"] = table["as_of"].dt.as_unit(unit)  # as written, e.g. datetime64[ms, UTC]
            loaded.quality.source = str(path)
            numeric = {f.name for f in FEATURE_DICTIONARY if f.dtype != "str"}
            for c in table.columns:
                if c in numeric and not pd.api.types.is_numeric_dtype(table[c]):
                    values = pd.to_numeric(table[c], errors="coerce")
                    bad = np.flatnonzero(values.isna().to_numpy() & table[c].notna().to_numpy())
                    exact = loaded.quality.rows_kept == loaded.quality.rows_read  # else row numbers moved
                    row = int(bad[0]) + 1 if len(bad) and exact else None
                    first = f" (first: {table[c].iloc[bad[0]]!r}" + (f" at row {row}" if row else "") + ")" \
                        if len(bad) else ""
                    raise DataValidationError(
                        f"feature column holds text{first}; in a `churnlib features` table it is a number. "
                        "Rebuild the table with `churnlib features` or fix the column",
                        file=path, line=row, column=c)
            table.attrs["quality"] = loaded.quality
            return table
    snap = load_snapshot(path, id_col=id_col, label_col=label_col, strict=strict)
    table = snap.table
    table.attrs["quality"] = snap.quality
    return table


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One model x strategy, evaluated by CV on the training part and once on the holdout.

    Attributes
    ----------
    model, strategy : str
        Registry names.
    cv : pandas.DataFrame
        Cross-validated metrics (``value``, ``low``, ``high`` per metric).
    threshold : float
        F1-optimal threshold on the out-of-fold predictions.
    threshold_interval : (float, float)
        Its 95% bootstrap interval over users.
    oof : numpy.ndarray
        Out-of-fold probabilities, shape (n_repeats, n_train).
    holdout : pandas.DataFrame or None
        Holdout metrics at ``threshold`` after refitting on all training rows.
    holdout_proba : numpy.ndarray or None
        Holdout probabilities.
    seconds : float
        Wall time of the evaluation.
    error : str or None
        Why the candidate failed (e.g. a resampler that cannot run on this data).
    params : dict
        Hyperparameters set on top of the registry defaults.
    """

    model: str
    strategy: str
    cv: pd.DataFrame | None = None
    threshold: float = float("nan")
    threshold_interval: tuple[float, float] = (float("nan"), float("nan"))
    oof: np.ndarray | None = None
    holdout: pd.DataFrame | None = None
    holdout_proba: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.model} / {self.strategy}"


def negatives_per_positive(y: np.ndarray) -> float:
    """Negatives per positive in ``y`` (XGBoost's ``scale_pos_weight``); the positives count as at least 1.

    Parameters
    ----------
    y : array of 0/1

    Returns
    -------
    float
    """
    y = np.asarray(y)
    return float((y == 0).sum() / max(1, (y == 1).sum()))


def evaluate_candidate(pipe, model: str, strategy: str, X: pd.DataFrame, y: np.ndarray,
                       groups: np.ndarray | None, splits, *, X_test: pd.DataFrame | None = None,
                       y_test: np.ndarray | None = None, groups_test: np.ndarray | None = None,
                       n_bootstrap: int = 200, seed: int = 0, n_jobs: int = 1, params: dict | None = None) -> Candidate:
    """Cross-validate one pipeline, and score the holdout when given.

    Parameters
    ----------
    pipe
        Unfitted pipeline.
    model, strategy : str
        Registry names (for the record).
    X, y, groups, splits
        Training part, user ids and the CV partitions (one per repeat).
    X_test, y_test, groups_test
        Holdout (optional): the pipeline is refitted on all training rows and scored once, at the
        F1-optimal threshold of its out-of-fold predictions.
    n_bootstrap, seed, n_jobs : int
    params : dict, optional
        Hyperparameters already set on ``pipe`` (for the record).

    Returns
    -------
    Candidate
        With ``error`` set instead of metrics when the pipeline cannot run on this data (e.g. a
        resampler without enough neighbours): one failing candidate does not stop a comparison.
    """
    t0 = time.perf_counter()
    cand = Candidate(model, strategy, params=dict(params or {}))
    try:
        oof = ev.oof_predict(pipe, X, y, splits, n_jobs=n_jobs)
        hard = th.cross_fitted_decisions(y, oof, splits)
        cand.oof = oof
        cand.cv = ev.evaluate_predictions(y, oof, hard, groups, n_bootstrap=n_bootstrap, seed=seed)
        cand.threshold = th.f1_threshold(np.tile(y, oof.shape[0]), oof.ravel())
        if n_bootstrap:
            cand.threshold_interval = th.f1_threshold_interval(y, oof, groups, n_bootstrap=n_bootstrap, seed=seed)
        if X_test is not None:
            fitted = clone(pipe).fit(X, y)
            p = fitted.predict_proba(X_test)[:, 1]
            cand.holdout_proba = p
            cand.holdout = ev.evaluate_predictions(y_test, p, p >= cand.threshold, groups_test,
                                                   n_bootstrap=n_bootstrap, seed=seed)
    except (ValueError, RuntimeError) as exc:  # e.g. ADASYN finding no neighbour to synthesise from
        cand.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    cand.seconds = time.perf_counter() - t0
    return cand


def compare_models(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                   models: Sequence[str] = ("dummy", "logreg", "lightgbm"),
                   strategies: Sequence[str] = ("none", "class_weight"),
                   n_splits: int = 3, n_repeats: int = 1, X_test: pd.DataFrame | None = None,
                   y_test: np.ndarray | None = None, groups_test: np.ndarray | None = None,
                   n_bootstrap: int = 200, seed: int = 0, n_jobs: int = 1) -> list[Candidate]:
    """Evaluate every applicable model x strategy on the same CV splits.

    Parameters
    ----------
    X, y, groups
        Training features, labels and user ids (group-aware folds when ids repeat).
    models, strategies : sequences of str
        From :data:`MODELS` and :data:`STRATEGIES`; inapplicable pairs are skipped.
    n_splits, n_repeats : int
        Repeated stratified (group) K-fold.
    X_test, y_test, groups_test
        Holdout, scored once per candidate after refitting on all training rows (optional).
    n_bootstrap : int
        Bootstrap replicates for intervals.
    seed, n_jobs : int
        Seed and parallel folds.

    Returns
    -------
    list of Candidate
    """
    y = np.asarray(y).astype(int)
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)
    out = []
    for model in models:
        for strategy in strategies:
            if not supports(model, strategy):
                continue
            pipe = make_pipeline(model, strategy, pos_weight=negatives_per_positive(y), seed=seed, n_jobs=1)
            out.append(evaluate_candidate(pipe, model, strategy, X, y, groups, splits, X_test=X_test,
                                          y_test=y_test, groups_test=groups_test,
                                          n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs))
    return out


def comparison_table(candidates: Sequence[Candidate], where: str = "cv") -> pd.DataFrame:
    """Long table: model, strategy, metric, value, low, high (``where`` is ``"cv"`` or ``"holdout"``)."""
    rows = []
    for c in candidates:
        res = getattr(c, where)
        if res is None:
            continue
        for metric, r in res.iterrows():
            rows.append({"model": c.model, "strategy": c.strategy, "metric": metric,
                         "value": r["value"], "low": r["low"], "high": r["high"]})
    return pd.DataFrame(rows, columns=["model", "strategy", "metric", "value", "low", "high"])


# --------------------------------------------------------------------------------------------
# Bounded hyperparameter search
# --------------------------------------------------------------------------------------------

def _space(model: str) -> dict[str, Any]:
    u, lu, ri = stats.uniform, stats.loguniform, stats.randint
    spaces = {
        "logreg": {"model__C": lu(1e-3, 1e2)},
        "knn": {"model__n_neighbors": ri(5, 80), "model__weights": ["uniform", "distance"]},
        "random_forest": {"model__max_depth": [None, 4, 8, 16], "model__min_samples_leaf": ri(1, 40),
                          "model__max_features": ["sqrt", 0.5, 1.0]},
        "hist_gb": {"model__learning_rate": lu(0.01, 0.3), "model__max_leaf_nodes": ri(7, 63),
                    "model__min_samples_leaf": ri(5, 80), "model__l2_regularization": lu(1e-3, 10)},
        "lightgbm": {"model__learning_rate": lu(0.01, 0.3), "model__num_leaves": ri(7, 63),
                     "model__min_child_samples": ri(5, 80), "model__reg_lambda": lu(1e-3, 10),
                     "model__colsample_bytree": u(0.5, 0.5)},
        "xgboost": {"model__learning_rate": lu(0.01, 0.3), "model__max_depth": ri(2, 8),
                    "model__min_child_weight": lu(1, 20), "model__reg_lambda": lu(1e-2, 10),
                    "model__colsample_bytree": u(0.5, 0.5)},
    }
    spaces["extra_trees"] = spaces["random_forest"]
    return spaces.get(model, {})


def search_model(pipe, model: str, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                 n_splits: int = 3, budget: int = 8, method: str = "random", seed: int = 0,
                 n_jobs: int = 1) -> tuple[dict, float]:
    """Bounded hyperparameter search, scored by PR-AUC with stratified (group) K-fold on the training part.

    Parameters
    ----------
    pipe
        The candidate pipeline (registry defaults).
    model : str
        Registry name (selects the search space).
    X, y, groups
        Training part and user ids (folds keep a user's rows together when ids repeat).
    n_splits : int, default 3
        Folds.
    budget : int, default 8
        Candidates tried (random search) or initial candidates (successive halving, which gives
        the survivors ever more rows).
    method : {"random", "halving"}
        ``RandomizedSearchCV`` or ``HalvingRandomSearchCV``.
    seed, n_jobs : int

    Returns
    -------
    (dict, float)
        The best parameters and their cross-validated PR-AUC ({} and nan when there is nothing to tune).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    space = _space(model)
    if not space or budget <= 0:
        return {}, float("nan")
    grouped = groups is not None and len(pd.unique(groups)) < len(groups)
    cv = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) if grouped
          else StratifiedKFold(n_splits, shuffle=True, random_state=seed))
    if method == "halving":
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingRandomSearchCV

        search = HalvingRandomSearchCV(pipe, space, n_candidates=budget, scoring="average_precision",
                                       cv=cv, random_state=seed, n_jobs=n_jobs, refit=False,
                                       min_resources=min(len(y), max(100, 20 * n_splits)))
    elif method == "random":
        search = RandomizedSearchCV(pipe, space, n_iter=budget, scoring="average_precision", cv=cv,
                                    random_state=seed, n_jobs=n_jobs, refit=False, error_score=np.nan)
    else:
        raise ValueError(f"unknown search method {method!r}: 'random' or 'halving'")
    search.fit(X, y, groups=groups if grouped else None)
    return dict(search.best_params_), float(search.best_score_)


# --------------------------------------------------------------------------------------------
# Resampling before the split: the mistake, measured
# --------------------------------------------------------------------------------------------

def resampling_leak_demo(X: pd.DataFrame, y: np.ndarray, model: str = "random_forest",
                         strategy: str = "smote", n_splits: int = 3, seed: int = 0, *,
                         n_jobs: int = 1) -> pd.DataFrame:
    """Scores with resampling inside the training folds vs resampling the whole table first.

    The wrong way preprocesses and resamples all rows, then cross-validates on the result:
    synthetic minority rows interpolated from a test row's neighbours (or duplicates of it) sit in
    the training folds, and the test folds are balanced unlike real data, so the scores inflate.

    Parameters
    ----------
    X, y
        Training features and labels.
    model, strategy : str
        Registry names of the model and the resampler.
    n_splits, seed : int
        Stratified K-fold and the seed of folds, resampler and model.
    n_jobs : int, default 1
        Threads for fitting models that take them (a random forest fits the same trees with any
        number; predictions are made single-threaded so that the sums are in the same order).

    Returns
    -------
    pandas.DataFrame
        Index ``["inside folds (correct)", "before the split (leaky)"]``; columns ROC-AUC, PR-AUC,
        F1 at 0.5 (means over folds) and the test folds' churn rate.
    """
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).astype(int)
    rows = {}
    correct = make_pipeline(model, strategy, seed=seed, n_jobs=n_jobs)
    leaky_prep = make_preprocessor()
    Xt = leaky_prep.fit_transform(X)
    Xr, yr = _sampler(strategy, seed).fit_resample(Xt, y)
    bare = _estimator(model, False, 1.0, seed, n_jobs)
    for label, (data, labels, est) in {"inside folds (correct)": (X, y, correct),
                                       "before the split (leaky)": (Xr, yr, bare)}.items():
        scores = []
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train, test in cv.split(np.zeros(len(labels)), labels):
            tr = data.iloc[train] if isinstance(data, pd.DataFrame) else data[train]
            te = data.iloc[test] if isinstance(data, pd.DataFrame) else data[test]
            fitted = clone(est).fit(tr, labels[train])
            final = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
            if "n_jobs" in final.get_params():
                final.set_params(n_jobs=1)
            p = fitted.predict_proba(te)[:, 1]
            scores.append([roc_auc_score(labels[test], p), average_precision_score(labels[test], p),
                           f1_score(labels[test], p >= 0.5), labels[test].mean()])
        rows[label] = np.mean(scores, axis=0)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["roc_auc", "pr_auc", "f1", "test_churn_rate"])
