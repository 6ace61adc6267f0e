"""Why the model scores a user as it does: SHAP values on the features the model sees.

The final model is a pipeline ``preprocess -> [resample] -> model``, possibly wrapped in a monotone
calibrator (:class:`churnlib.calibration.CalibratedClassifier`; :class:`churnlib.model.ChurnModel` hands
over the pipeline inside it). :func:`explain_model` runs the
preprocessing (samplers do nothing at predict time and are skipped), explains the model step on its
output -- the transformed columns, named by ``get_feature_names_out`` -- and keeps the map from each
transformed column back to the original feature (one-hot columns and missing-value flags belong to
the column they came from).

Which explainer, by model family:

* LightGBM and XGBoost: their own TreeSHAP (``pred_contrib`` / ``pred_contribs``), exact and the
  fastest; log-odds of churn.
* hist_gb, random forest, extra trees: :class:`shap.TreeExplainer` (path-dependent TreeSHAP, no
  background needed); log-odds for hist_gb, probability for the forests (they average leaf
  probabilities, they have no log-odds).
* logistic regression: :class:`shap.LinearExplainer`; log-odds. Unless a ``background`` is given,
  the reference is a fixed point of the transformed space (numbers at their training mean, as the
  scaler centres them; no missing flag; an even mix of each feature's categories), so a user's
  values do not depend on who else is scored in the same batch.
* anything else (KNN): :class:`shap.KernelExplainer` on the churn probability against a small
  background sample (model-agnostic, slow: explain few rows).
* the dummy baseline: no reasons, it predicts a constant.

A calibrator maps the model's probability monotonically, so it changes no ranking and no sign of a
reason; explanations are of the uncalibrated model's margin.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnlib.features import feature_dictionary

__all__ = [
    "CONSTANT_MESSAGE",
    "Explanation",
    "RiskPopulation",
    "describe_reason",
    "explain_model",
    "explainer_route",
    "global_importance",
    "plot_beeswarm",
    "plot_dependence",
    "plot_importance",
    "risk_population",
    "top_reasons",
]

#: What a constant model (the dummy baseline) explains.
CONSTANT_MESSAGE = "no reasons: the baseline predicts a constant (the training churn rate) for every user"
#: |Spearman correlation| between a feature's value and its SHAP value needed to state a direction.
_DIRECTION_MIN_RHO = 0.3
#: Background rows for the model-agnostic explainer (its cost grows with them).
_AGNOSTIC_BACKGROUND = 20


@dataclass
class Explanation:
    """SHAP values of some rows, in the model's own output space.

    Attributes
    ----------
    values : numpy.ndarray, shape (n, k)
        One value per row and transformed column; ``values.sum(1) + base_value`` is the model's
        output (:attr:`output`) for the row.
    base_value : float
        The output for the reference (expected value).
    data : pandas.DataFrame, shape (n, k)
        The transformed rows, columns named as the model sees them; index of the input rows.
    original : list of str
        The original feature of each transformed column.
    inputs : pandas.DataFrame
        The explained rows before preprocessing (the model's input columns).
    method : str
        The explainer used.
    output : str
        ``"log-odds"`` or ``"probability"`` (of churn, before any calibration).
    model_name : str
        Class name of the model step.
    calibrated : bool
        The model is wrapped in a (monotone) calibrator.
    message : str or None
        Set when there is nothing to explain (the constant baseline).
    """

    values: np.ndarray
    base_value: float
    data: pd.DataFrame
    original: list[str]
    inputs: pd.DataFrame
    method: str
    output: str
    model_name: str
    calibrated: bool = False
    message: str | None = None
    #: training medians of the numeric features (from the artifact's feature schema), for reasons
    #: that say how far a user's value is from the typical one
    typical: dict[str, float] | None = None

    @property
    def feature_names(self) -> list[str]:
        """Transformed column names (``get_feature_names_out``)."""
        return list(self.data.columns)

    @property
    def features(self) -> list[str]:
        """Original features, in model input order."""
        seen = set(self.original)
        known = [c for c in self.inputs.columns if c in seen]
        return known + [o for o in dict.fromkeys(self.original) if o not in set(known)]

    def margin(self) -> np.ndarray:
        """``values.sum(1) + base_value``: the explained output per row."""
        return self.values.sum(axis=1) + self.base_value

    def by_feature(self) -> pd.DataFrame:
        """SHAP values summed per original feature (one-hot columns and missing flags folded in)."""
        codes = pd.Index(self.features).get_indexer(self.original)
        fold = np.zeros((len(self.original), len(self.features)))
        fold[np.arange(len(self.original)), codes] = 1.0  # columns of a feature add up (SHAP is additive)
        return pd.DataFrame(self.values @ fold, index=self.data.index, columns=self.features)


# --------------------------------------------------------------------------------------------
# Taking the model apart
# --------------------------------------------------------------------------------------------

def _parts(estimator: Any) -> tuple[list[Any], Any]:
    """Predict-time preprocessing steps (samplers skipped) and the final model step."""
    steps = [s for _, s in getattr(estimator, "steps", [])]
    if not steps:
        return [], estimator
    pre = [s for s in steps[:-1] if s not in (None, "passthrough") and not hasattr(s, "fit_resample")]
    return pre, steps[-1]


def _transform(pre: list[Any], X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    out: Any = X
    for step in pre:
        out = step.transform(out)
    names = None
    for step in reversed(pre):  # the last step that can name its outputs (e.g. the ColumnTransformer)
        try:
            names = [str(n) for n in step.get_feature_names_out()]
            break
        except (AttributeError, ValueError, TypeError):
            continue
    if hasattr(out, "toarray"):
        out = out.toarray()
    if isinstance(out, pd.DataFrame):
        names = names or [str(c) for c in out.columns]
        out = out.to_numpy()
    out = np.asarray(out, dtype=float)
    if names is None or len(names) != out.shape[1]:
        names = list(X.columns) if out.shape[1] == X.shape[1] else [f"x{i}" for i in range(out.shape[1])]
    return pd.DataFrame(out, index=X.index, columns=names), names


def _original_feature(name: str, originals: list[str]) -> str:
    """The input feature a transformed column comes from (longest matching prefix)."""
    if name in originals:
        return name
    stem = name.split("__", 1)[1] if "__" in name else name  # verbose ColumnTransformer names
    if stem.startswith("missingindicator_"):
        stem = stem[len("missingindicator_"):]
    if stem in originals:
        return stem
    matches = [o for o in originals if stem.startswith(o + "_")]  # one-hot: "<feature>_<category>"
    return max(matches, key=len) if matches else name


def _rows(X: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or len(X) <= max_rows:
        return X
    idx = np.sort(np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False))
    return X.iloc[idx]


# --------------------------------------------------------------------------------------------
# Explaining
# --------------------------------------------------------------------------------------------

_SHAP_TREES = ("HistGradientBoostingClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
               "DecisionTreeClassifier", "GradientBoostingClassifier")


def _is_linear(final: Any) -> bool:
    return hasattr(final, "coef_") and hasattr(final, "intercept_") and np.ravel(final.intercept_).size == 1


def _linear_reference(names: list[str], original: list[str]) -> np.ndarray:
    """A batch-independent reference point in the transformed space of a linear model.

    Scaled numbers at 0 (their training mean: the scaler centres them), missing-value flags at 0
    (not missing), and each categorical feature's one-hot columns at 1/m (an even mix of its m
    categories), so that a category's value is its coefficient minus the average of its feature's
    coefficients -- not the whole coefficient, which would include a share common to every category.
    """
    ref = np.zeros((1, len(names)))
    groups: dict[str, list[int]] = {}
    for i, (n, o) in enumerate(zip(names, original)):
        if n != o and "missingindicator_" not in n:
            groups.setdefault(o, []).append(i)
    for cols in groups.values():
        ref[0, cols] = 1.0 / len(cols)
    return ref


def explainer_route(model: Any) -> str:
    """How :func:`explain_model` explains the fitted pipeline ``model``: ``"constant"``, ``"tree"``, ``"linear"`` or
    ``"agnostic"`` (model-agnostic Kernel SHAP: slow, explain few rows)."""
    final = _parts(model)[1]
    kind = type(final).__name__
    if kind == "DummyClassifier" or len(getattr(final, "classes_", [0, 1])) < 2:
        return "constant"
    if kind in ("LGBMClassifier", "XGBClassifier", *_SHAP_TREES):
        return "tree"
    return "linear" if _is_linear(final) else "agnostic"


def explain_model(model: Any, X: pd.DataFrame, *, background: pd.DataFrame | None = None,
                  max_rows: int | None = None, seed: int = 0, n_jobs: int = 1,
                  typical: dict[str, float] | None = None, calibrated: bool = False) -> Explanation:
    """SHAP values of the positive class (churn) for the rows of ``X``.

    Parameters
    ----------
    model : fitted estimator
        A fitted churnlib pipeline (``preprocess -> [resample] -> model``) or bare classifier. For
        a :class:`churnlib.model.ChurnModel` use its :meth:`~churnlib.model.ChurnModel.shap`, which
        checks the inputs and passes its training medians and calibration here.
    X : pandas.DataFrame
        Rows to explain: the model's input columns.
    background : pandas.DataFrame, optional
        Reference rows (model inputs) for the linear and model-agnostic explainers; tree explainers
        use the training data stored in the trees. Default: linear models are explained against
        a fixed reference (see the module notes), the model-agnostic explainer
        against up to 20 rows drawn from ``X`` (so its values depend on the batch).
    max_rows : int, optional
        Explain at most this many rows, drawn at random with ``seed`` (kept in input order).
    seed : int
        Seed of the row sample, the background sample and the kernel explainer's coalitions.
    n_jobs : int
        Threads for LightGBM / XGBoost contributions.
    typical : dict, optional
        Training medians of numeric features (reasons quote them: "typical 81%").
    calibrated : bool, default False
        Whether a calibration map follows ``model`` (recorded; it changes no sign or ranking).

    Returns
    -------
    Explanation
    """
    estimator = model
    if hasattr(estimator, "feature_names_in_"):
        X = X[list(estimator.feature_names_in_)]
    X = _rows(X, max_rows, seed)
    pre, final = _parts(estimator)
    data, tnames = _transform(pre, X)
    original = [_original_feature(n, list(X.columns)) for n in tnames]
    kind = type(final).__name__
    A = data.to_numpy()

    def done(values, base, method, output, message=None) -> Explanation:
        return Explanation(np.asarray(values, dtype=float), float(base), data, original, X, method, output,
                           kind, calibrated, message, typical)

    if kind == "DummyClassifier" or len(getattr(final, "classes_", [0, 1])) < 2:
        p = float(final.predict_proba(A[:1])[0, -1]) if len(A) else float("nan")
        return done(np.zeros(A.shape), p, "constant", "probability", CONSTANT_MESSAGE)
    if kind == "LGBMClassifier":
        c = final.booster_.predict(A, pred_contrib=True, num_threads=max(1, n_jobs))
        return done(c[:, :-1], c[0, -1] if len(c) else 0.0, "LightGBM TreeSHAP (pred_contrib)", "log-odds")
    if kind == "XGBClassifier":
        import xgboost as xgb

        booster = final.get_booster()
        booster.set_param({"nthread": max(1, n_jobs)})
        c = booster.predict(xgb.DMatrix(A, missing=np.nan, feature_names=booster.feature_names), pred_contribs=True,
                            iteration_range=(0, booster.num_boosted_rounds()))
        return done(c[:, :-1], c[0, -1] if len(c) else 0.0, "XGBoost TreeSHAP (pred_contribs)", "log-odds")
    with warnings.catch_warnings():
        # shap imports tqdm.auto, which warns on stderr when ipywidgets is absent; no progress bar is shown
        warnings.filterwarnings("ignore", message="IProgress not found")
        import shap

    if kind in _SHAP_TREES:
        try:
            te = shap.TreeExplainer(final)
            v = np.asarray(te.shap_values(A, check_additivity=False))
            base = np.atleast_1d(te.expected_value)
            if v.ndim == 3:  # (n, k, classes): the churn class
                v, base = v[:, :, 1], base[1]
            else:
                base = base[-1]
            output = "log-odds" if kind in ("HistGradientBoostingClassifier",
                                            "GradientBoostingClassifier") else "probability"
            return done(v, base, "shap TreeExplainer (path-dependent TreeSHAP)", output)
        except Exception:  # a version of a model shap cannot parse: the model-agnostic route below
            pass
    if _is_linear(final):
        if background is None:
            ref = _linear_reference(tnames, original)
            how = "reference: training means, categories mixed evenly"
        else:
            ref = _transform(pre, background[list(X.columns)])[0].to_numpy().mean(axis=0, keepdims=True)
            how = f"reference: mean of {len(background):,} background rows"
        le = shap.LinearExplainer(final, shap.maskers.Independent(ref, max_samples=1))
        v = np.asarray(le.shap_values(A))
        return done(v, float(np.ravel(le.expected_value)[0]), f"shap LinearExplainer ({how})", "log-odds")

    # model-agnostic: Kernel SHAP of the churn probability against a small background sample.
    # (shap's PermutationExplainer compiles numba code on first use: ~20 s per process.)
    if background is None:
        bg = _rows(data, _AGNOSTIC_BACKGROUND, seed).to_numpy()
    else:
        bg = _transform(pre, _rows(background[list(X.columns)], _AGNOSTIC_BACKGROUND, seed))[0].to_numpy()

    def f(a: np.ndarray) -> np.ndarray:
        return final.predict_proba(a)[:, 1]

    state = np.random.get_state()  # KernelExplainer samples coalitions with numpy's global generator
    np.random.seed(seed)
    try:
        ke = shap.KernelExplainer(f, bg)
        v = np.asarray(ke.shap_values(A, silent=True)) if len(A) else np.zeros(A.shape)
        base = float(np.ravel(ke.expected_value)[0])
    finally:
        np.random.set_state(state)
    return done(v.reshape(A.shape), base, f"shap KernelExplainer ({len(bg)} background rows)", "probability")


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------

def _dictionary() -> dict[str, dict[str, str]]:
    d = feature_dictionary()
    return {r["name"]: {"meaning": r["meaning"], "unit": r["unit"]} for _, r in d.iterrows()}


def _direction(x: pd.Series, s: np.ndarray) -> str:
    if not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)):
        return "mixed"  # categories have no "higher"
    x = pd.to_numeric(x, errors="coerce").astype(float).to_numpy()
    ok = ~np.isnan(x)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(s[ok]) == 0:
        return "mixed"
    from scipy.stats import spearmanr

    rho = float(spearmanr(x[ok], s[ok]).statistic)
    if rho >= _DIRECTION_MIN_RHO:
        return "higher raises risk"
    if rho <= -_DIRECTION_MIN_RHO:
        return "higher lowers risk"
    return "mixed"


def global_importance(expl: Explanation) -> pd.DataFrame:
    """Mean |SHAP| per original feature and whether high values raise the churn risk.

    Returns
    -------
    pandas.DataFrame
        Sorted by importance: ``feature``, ``mean_abs_shap`` (in :attr:`Explanation.output`
        units), ``share`` (of the total), ``direction`` (``"higher raises risk"``, ``"higher lowers
        risk"`` or ``"mixed"``: a Spearman correlation between value and SHAP value of at least 0.3
        in size, else mixed; categorical features are always mixed), ``meaning`` and ``unit`` from
        :func:`churnlib.features.feature_dictionary` (empty when the feature is not in it).
    """
    by = expl.by_feature()
    info = _dictionary()
    mean_abs = by.abs().mean(axis=0) if len(by) else pd.Series(0.0, index=by.columns)
    total = float(mean_abs.sum())
    rows = [{"feature": f, "mean_abs_shap": float(mean_abs[f]),
             "share": float(mean_abs[f] / total) if total > 0 else 0.0,
             "direction": _direction(expl.inputs[f], by[f].to_numpy()) if f in expl.inputs else "mixed",
             "meaning": info.get(f, {}).get("meaning", ""), "unit": info.get(f, {}).get("unit", "")}
            for f in by.columns]
    out = pd.DataFrame(rows, columns=["feature", "mean_abs_shap", "share", "direction", "meaning", "unit"])
    return out.sort_values(["mean_abs_shap", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _label(feature: str) -> str:
    return feature.replace("_", " ")


def _format_value(value: Any, unit: str, label: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "missing"
    if isinstance(value, (str, bool, np.bool_)) or unit == "category":
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "missing"
    if unit == "0/1":
        return "yes" if v >= 0.5 else "no"
    if unit == "share":
        return f"{v:.0%}"
    if v == int(v) and abs(v) < 1e12:
        text = f"{int(v):,}"
    elif abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 1:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2g}"
    if unit in ("days", "hours", "minutes") and unit not in label:
        text += f" {unit}"
    return text


def describe_reason(feature: str, value: Any, info: dict[str, dict[str, str]] | None = None,
                    typical: float | None = None) -> str:
    """Plain words for one risk-raising feature.

    E.g. ``"days since last login: 23 (raises risk)"``, or with the training median of the
    feature ``"thumbs up share: 64%, typical 81% (raises risk)"``: a reason reads as "low" or
    "high" only next to what is usual.
    """
    info = _dictionary() if info is None else info
    label = _label(feature)
    unit = info.get(feature, {}).get("unit", "")
    text = _format_value(value, unit, label)
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if typical is not None and numeric and not math.isnan(float(value)) and unit not in ("0/1", "category"):
        text += f", typical {_format_value(typical, unit, label)}"
    return f"{label}: {text} (raises risk)"


def top_reasons(expl: Explanation, frame: pd.DataFrame | None = None, k: int = 3) -> pd.DataFrame:
    """Each row's ``k`` strongest reasons that RAISE its churn risk, in plain words.

    Only features with a positive SHAP value (summed over their transformed columns) count: a
    feature that lowers a user's risk is not a reason for it. When fewer than ``k`` features raise
    a row's risk the remaining columns are missing (and all are missing for the constant baseline).

    Parameters
    ----------
    expl : Explanation
    frame : pandas.DataFrame, optional
        Where to read each feature's value for the text (rows aligned with ``expl``); default the
        explained inputs.
    k : int, default 3

    Returns
    -------
    pandas.DataFrame
        Columns ``reason_1`` .. ``reason_k`` (text) and ``feature_1`` .. ``feature_k`` (the feature
        names), index of the explained rows.
    """
    by = expl.by_feature()
    src = expl.inputs if frame is None else frame
    V = by.to_numpy()
    n, p = V.shape
    order = np.argsort(-V, axis=1, kind="stable")[:, :k] if p else np.zeros((n, 0), dtype=int)
    feats = np.asarray(by.columns, dtype=object)
    info = _dictionary()
    cols = {f"reason_{j + 1}": np.full(n, None, dtype=object) for j in range(k)}
    names = {f"feature_{j + 1}": np.full(n, None, dtype=object) for j in range(k)}
    values = {f: src[f].to_numpy(dtype=object) for f in by.columns if f in src.columns}
    typical = expl.typical or {}
    cache: dict[tuple[str, Any], str] = {}
    for j in range(min(k, p)):
        col = order[:, j]
        raise_ = V[np.arange(n), col] > 0
        for i in np.flatnonzero(raise_):
            f = feats[col[i]]
            v = values[f][i] if f in values else None
            key = (f, v if isinstance(v, (str, int, float, bool, np.generic)) else repr(v))
            text = cache.get(key)
            if text is None:
                text = cache[key] = describe_reason(f, v, info, typical.get(f))
            cols[f"reason_{j + 1}"][i] = text
            names[f"feature_{j + 1}"][i] = f
    return pd.DataFrame({**cols, **names}, index=by.index)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------

def _units(expl: Explanation) -> str:
    return "log-odds of churn" if expl.output == "log-odds" else "churn probability"


def plot_importance(expl: Explanation, top: int = 15):
    """Horizontal bars of mean |SHAP| per feature, coloured by direction; the title names the leader."""
    import matplotlib.pyplot as plt

    imp = global_importance(expl).head(top).iloc[::-1]
    colors = {"higher raises risk": "#DD8452", "higher lowers risk": "#4C72B0", "mixed": "#8C8C8C"}
    fig, ax = plt.subplots(figsize=(8, max(3, 0.35 * len(imp) + 1)))
    ax.barh([_label(f) for f in imp["feature"]], imp["mean_abs_shap"], color=[colors[d] for d in imp["direction"]])
    ax.set_xlabel(f"mean |SHAP value| ({_units(expl)})")
    if expl.message or imp["mean_abs_shap"].max() <= 0:
        ax.set_title("No feature moves the baseline's constant prediction")
    else:
        lead = imp.iloc[-1]
        ax.set_title(f"{_label(lead['feature']).capitalize()} moves the churn risk most "
                     f"({lead['share']:.0%} of the total effect)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, list(colors), loc="lower right", frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def _value_colour(x: pd.Series) -> np.ndarray:
    """Per-feature percentile of the value in [0, 1] (NaN stays NaN); categories by code."""
    if pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        s = pd.to_numeric(x, errors="coerce").astype(float)
    else:
        s = pd.Series(pd.factorize(x)[0], index=x.index).where(x.notna()).astype(float)
    return s.rank(pct=True).to_numpy()


def plot_beeswarm(expl: Explanation, top: int = 12, seed: int = 0):
    """One dot per user and feature: SHAP value (x), coloured by the feature's value (low blue, high red)."""
    import matplotlib.pyplot as plt

    imp = global_importance(expl).head(top)
    by = expl.by_feature()
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.4 * len(imp) + 1)))
    sc = None
    for pos, f in enumerate(imp["feature"][::-1]):
        s = by[f].to_numpy()
        c = _value_colour(expl.inputs[f]) if f in expl.inputs else np.full(len(s), np.nan)
        y = pos + rng.uniform(-0.3, 0.3, len(s))
        ok = ~np.isnan(c)
        ax.scatter(s[~ok], y[~ok], s=8, color="#BBBBBB", alpha=0.6, linewidths=0)
        sc = ax.scatter(s[ok], y[ok], s=8, c=c[ok], cmap="coolwarm", vmin=0, vmax=1, alpha=0.8, linewidths=0)
    ax.set_yticks(range(len(imp)), [_label(f) for f in imp["feature"][::-1]])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"SHAP value ({_units(expl)}); right of 0 raises the risk")
    if sc is not None:
        bar = fig.colorbar(sc, ax=ax, pad=0.01)
        bar.set_label("feature value (percentile; grey: missing)")
    raising = imp[imp["direction"] == "higher raises risk"]["feature"].head(2).tolist()
    lowering = imp[imp["direction"] == "higher lowers risk"]["feature"].head(2).tolist()
    if expl.message:
        title = "The baseline has nothing to explain"
    elif raising or lowering:
        bits = ([f"high {' / '.join(map(_label, raising))} raise" if raising else ""]
                + [f"high {' / '.join(map(_label, lowering))} lower" if lowering else ""])
        title = ("; ".join(b for b in bits if b) + " the risk").capitalize()
    else:
        title = "The leading features act in both directions"
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_dependence(expl: Explanation, feature: str):
    """SHAP value of one (original) feature against its value: how the risk changes with it."""
    import matplotlib.pyplot as plt

    by = expl.by_feature()
    if feature not in by.columns:
        raise ValueError(f"{feature!r} is not a feature of this model; features: {list(by.columns)[:10]} ...")
    s = by[feature].to_numpy()
    x = expl.inputs[feature]
    fig, ax = plt.subplots()
    numeric = pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)
    if numeric:
        xv = pd.to_numeric(x, errors="coerce").astype(float).to_numpy()
        ok = ~np.isnan(xv)
        ax.scatter(xv[ok], s[ok], s=10, alpha=0.6, color="#4C72B0", linewidths=0)
        if (~ok).any():
            ax.text(0.99, 0.02, f"{(~ok).sum():,} users with no value (not shown)", transform=ax.transAxes,
                    ha="right", fontsize=9, color="#555555")
        ax.set_xlabel(_label(feature))
    else:
        cats = x.astype(object).where(x.notna(), "missing").astype(str)
        order = pd.Series(s, index=cats.index).groupby(cats.to_numpy()).mean().sort_values()
        pos = {c: i for i, c in enumerate(order.index)}
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(s))
        ax.scatter([pos[c] for c in cats] + jitter, s, s=10, alpha=0.6, color="#4C72B0", linewidths=0)
        ax.set_xticks(range(len(order)), order.index, rotation=45, ha="right")
        ax.set_xlabel(_label(feature))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"SHAP value ({_units(expl)})")
    direction = _direction(x, s)
    name = _label(feature)
    ax.set_title({"higher raises risk": f"Higher {name} raises the churn risk",
                  "higher lowers risk": f"Higher {name} lowers the churn risk"}.get(
                      direction, f"The effect of {name} depends on its value" if numeric
                      else f"Some {name} categories carry more risk than others"))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Who is scored: the users who are still customers
# --------------------------------------------------------------------------------------------

@dataclass
class RiskPopulation:
    """The users a risk list ranks: those who are still customers.

    Attributes
    ----------
    frame : pandas.DataFrame
        Their rows.
    n_left : int
        Users left out because their label says they already left (snapshot tables; 0 for event logs,
        whose latest observation date holds only users who had not cancelled by then).
    text : str
        Who they are, in plain words, ending with the sentence on the users left out.
    """

    frame: pd.DataFrame
    n_left: int
    text: str


def risk_population(table: pd.DataFrame, label_col: str | None, *, date_col: str = "as_of") -> RiskPopulation:
    """The users to score and list: the customers of today, never users who already left.

    * A feature table of an event log (``date_col`` holds dates): the users at the latest observation
      date -- active before it and not yet cancelled (their label is whether they cancel *later*).
    * A snapshot table: the users whose label is 0. A label of 1 says the user has already left; no
      retention action reaches them, so they are not listed (and the text says how many).

    Parameters
    ----------
    table : pandas.DataFrame
    label_col : str or None
        The label column (None or absent: every row is a customer).
    date_col : str, default "as_of"

    Returns
    -------
    RiskPopulation
    """
    if date_col in table.columns and pd.api.types.is_datetime64_any_dtype(table[date_col]):
        latest = table[date_col].max()
        frame = table[table[date_col] == latest].reset_index(drop=True)
        return RiskPopulation(frame, 0, f"the {len(frame):,} users at the latest observation date, {latest:%Y-%m-%d} "
                                        "(users who had cancelled by then are not in it)")
    if label_col is None or label_col not in table.columns:
        return RiskPopulation(table.reset_index(drop=True), 0,
                              f"every row of the table ({len(table):,} users; it has no label to tell who already left)")
    left = pd.to_numeric(table[label_col], errors="coerce") == 1
    frame = table[~left].reset_index(drop=True)
    n_left = int(left.sum())
    return RiskPopulation(frame, n_left, f"the {len(frame):,} users of the table who are still customers (label 0); "
                                         f"{n_left:,} users whose label says they already left are not listed")
