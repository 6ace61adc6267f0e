"""The synthetic-feature study: what features drawn from the label buy, and what they do not.

The earlier churn project's models found no signal in the Spotify snapshot's own columns, then
scored ROC-AUC ~ 0.79 with nine features drawn from the label (:mod:`churnlib.synthetic`). This
module measures that, with intervals:

* :func:`before_after` -- cross-validated metrics with the snapshot's columns, then with the
  synthetic features, on the same folds; :func:`snapshot_signal` / :func:`signal_verdict` say how
  much signal the snapshot's own columns carry, :func:`compare_with_earlier` sets our figures beside
  theirs (:data:`EARLIER_PROJECT`).
* :func:`value_of_data_curve` -- the same for several effect sizes: what a signal of a given
  strength would be worth if it could be collected.
* :func:`feature_contrast` -- each named signal alone, drawn from the label vs measured from an event
  log before an observation date (:func:`churnlib.features.build_features`);
  :func:`contrast_directions` sorts them by what their intervals say.

Plain-words text, display tables and figures are in :mod:`churnlib.synthetic_report`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score

from churnlib import evaluation as ev
from churnlib import models as M
from churnlib import paths
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.load import detect_kind, load_snapshot
from churnlib.synthetic import (
    DEFAULT_EFFECT_SIZE,
    DEFAULT_NOISE_FRACTION,
    EVENT_EQUIVALENTS,
    SYNTHETIC_FEATURES,
    add_synthetic_features,
    binary_label,
)

__all__ = [
    "AUGMENTED",
    "ContrastDirections",
    "EARLIER_PROJECT",
    "EarlierComparison",
    "ORIGINAL",
    "SnapshotSignal",
    "TRACE_BELOW",
    "before_after",
    "compare_with_earlier",
    "contrast_directions",
    "curve_metric",
    "earlier_figures",
    "feature_contrast",
    "flag_everyone_f1",
    "load_study_table",
    "signal_verdict",
    "single_feature_auc",
    "snapshot_signal",
    "spotify_snapshot_path",
    "subsample",
    "value_of_data_curve",
]


#: The earlier project's reported figures (theirs, not reproduced here): context for the before/after
#: table. "original" = the snapshot's own columns; "original + synthetic" = with the nine features.
#: Their "models stalled at F1 ~ 0.41 and ROC-AUC ~ 0.53" is listed under hist_gb / original.
EARLIER_PROJECT: pd.DataFrame = pd.DataFrame([
    {"model": "random_forest", "features": "original", "f1": 0.42, "roc_auc": 0.54, "pr_auc": np.nan,
     "note": "random forest"},
    {"model": "random_forest", "features": "original + synthetic", "f1": 0.62, "roc_auc": 0.79,
     "pr_auc": np.nan, "note": "random forest"},
    {"model": "hist_gb", "features": "original", "f1": 0.41, "roc_auc": 0.53, "pr_auc": np.nan,
     "note": "their models before the synthetic features (approximate)"},
    {"model": "hist_gb", "features": "original + synthetic", "f1": 0.643, "roc_auc": 0.809, "pr_auc": 0.691,
     "note": "tuned HistGradientBoosting"},
]).set_index(["model", "features"])

#: Labels of the two feature sets of :func:`before_after`.
ORIGINAL: str = "original"
AUGMENTED: str = "original + synthetic"

#: :func:`signal_verdict`: below this cross-validated ROC-AUC, an interval that only just clears 0.5
#: with a non-significant permutation test is a trace of signal of no practical use.
TRACE_BELOW: float = 0.55


# --------------------------------------------------------------------------------------------
# Data for the study
# --------------------------------------------------------------------------------------------

def spotify_snapshot_path() -> Path:
    """Where the public Spotify churn snapshot sits: ``../shared/data`` beside the project."""
    return paths.project_root().parent / "shared" / "data" / "spotify_churn_snapshot.csv.gz"


def subsample(table: pd.DataFrame, label_col: str, rows: int | None, seed: int = 0) -> pd.DataFrame:
    """A stratified random subsample of ``rows`` rows (``None`` or more rows than the table: all of it).

    Each class keeps its share (rounded), so the churn rate stays that of the full table; the rows
    keep their original order.
    """
    if rows is None or rows >= len(table):
        return table
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    frac = rows / len(table)
    picked = [g.sample(n=max(1, int(round(frac * len(g)))), random_state=seed).index
              for _, g in table.groupby(label_col, sort=True)]
    keep = table.index.isin(np.concatenate(picked))
    return table.loc[keep]


def load_study_table(data: str | Path | None = None, id_col: str = "user_id", label_col: str = "is_churned",
                     rows: int | None = None, seed: int = 0) -> tuple[pd.DataFrame | None, str, str, str]:
    """The snapshot table the study runs on, or None with the reason when there is none.

    Parameters
    ----------
    data : path, optional
        A snapshot table (CSV/parquet, one row per user). ``None`` -- or an event log, which is not a
        snapshot (``make report`` passes its log to every notebook) -- means the Spotify snapshot of
        :func:`spotify_snapshot_path`.
    id_col, label_col : str
        Columns of ``data`` (the Spotify snapshot always uses ``user_id`` / ``is_churned``).
    rows : int, optional
        Stratified subsample size (``None``: every row).
    seed : int
        Seed of the subsample.

    Returns
    -------
    (table, id_col, label_col, description)
        ``table`` is None when the Spotify snapshot is needed but absent; ``description`` then says why.
    """
    note = ""
    if data is not None and detect_kind(data) == "events":
        note = (f" (the given data `{Path(data).name}` is an event log, not a snapshot table: this study "
                "uses the Spotify snapshot; the event log serves the contrast below)")
        data = None
    if data is None:
        path, id_col, label_col = spotify_snapshot_path(), "user_id", "is_churned"
        if not path.exists():
            return None, id_col, label_col, (
                f"The Spotify snapshot is not available: `{path}` is absent (`../shared/data` is not "
                "beside the project). The snapshot sections are skipped; pass `data` = a snapshot table "
                "to run them on your own.")
        name = "the public Spotify churn snapshot"
    else:
        path, name = Path(data), f"`{Path(data).name}`"
    table = load_snapshot(path, id_col=id_col, label_col=label_col).table
    full = len(table)
    table = subsample(table, label_col, rows, seed)
    size = (f"{len(table):,} of {full:,} users (stratified subsample)" if len(table) < full
            else f"all {full:,} users")
    return table, id_col, label_col, f"{name}: {size}, churn rate {table[label_col].mean():.1%}{note}"




# --------------------------------------------------------------------------------------------
# What the features buy: before/after and the value-of-data curve
# --------------------------------------------------------------------------------------------

def _cv_long(table: pd.DataFrame, id_col: str, label_col: str, model: str, strategy: str, n_splits: int,
             n_repeats: int, n_bootstrap: int, seed: int, n_jobs: int, params: Mapping[str, Any] | None,
             groups_col: str | None = None) -> pd.DataFrame:
    """Cross-validated metrics (long) of one model on ``table``'s feature columns.

    The splits depend only on the label, ids and seed, so every call on the same rows uses the same folds.
    """
    X = M.feature_frame(table, id_col, label_col, drop=() if groups_col is None else (groups_col,))
    y = table[label_col].to_numpy().astype(int)
    groups = table[groups_col].to_numpy() if groups_col else table[id_col].to_numpy()
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)
    pipe = M.make_pipeline(model, strategy, pos_weight=M.negatives_per_positive(y), seed=seed, n_jobs=1)
    extra = dict(params or {})
    if extra:
        pipe.set_params(**{k if "__" in k else f"model__{k}": v for k, v in extra.items()})
    cand = M.evaluate_candidate(pipe, model, strategy, X, y, groups, splits, n_bootstrap=n_bootstrap,
                                seed=seed, n_jobs=n_jobs, params=extra)
    if cand.error:
        raise ValueError(f"{model} could not be evaluated: {cand.error}")
    return M.comparison_table([cand])


def _cv_runs(runs: Sequence[tuple[pd.DataFrame, str]], id_col: str, label_col: str, strategy: str,
             n_splits: int, n_repeats: int, n_bootstrap: int, seed: int, n_jobs: int,
             params: Mapping[str, Mapping] | None) -> list[pd.DataFrame]:
    """:func:`_cv_long` for each (table, model) run; with ``n_jobs > 1`` whole runs go to parallel workers.

    A run (fits of every fold, then the bootstrap of its metrics) is the unit of work: on 2 cores, 5
    folds per run leave a core idle in the last round and the bootstrap would run on one core, while
    whole runs keep both busy. The figures do not depend on where a run executes.
    """
    args = [(t, id_col, label_col, model, strategy, n_splits, n_repeats, n_bootstrap, seed,
             (params or {}).get(model)) for t, model in runs]
    if n_jobs == 1 or len(runs) == 1:
        return [_cv_long(*a[:-1], n_jobs, a[-1]) for a in args]
    return Parallel(n_jobs=min(n_jobs, len(runs)))(delayed(_cv_long)(*a[:-1], 1, a[-1]) for a in args)


def _table_key(table: pd.DataFrame) -> int:
    """A fingerprint of a table's values and index (to reuse results computed on the very same rows)."""
    return int(pd.util.hash_pandas_object(table, index=True).sum())


def before_after(table: pd.DataFrame, id_col: str, label_col: str, *,
                 models: Sequence[str] = ("random_forest", "hist_gb"), strategy: str = "none",
                 effect_size: float | Mapping[str, float] = DEFAULT_EFFECT_SIZE,
                 noise_fraction: float = DEFAULT_NOISE_FRACTION, features: Sequence[str] | None = None,
                 n_splits: int = 3, n_repeats: int = 1, n_bootstrap: int = 200, seed: int = 0,
                 n_jobs: int = 1, params: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """Cross-validated metrics with the table's own columns, then with the synthetic features added.

    Both runs use the same CV splits (stratified on the label with ``seed``), models from
    :func:`churnlib.models.make_pipeline` and :func:`churnlib.models.evaluate_candidate`: metrics on
    out-of-fold predictions with 95% bootstrap intervals, F1 at a threshold chosen on the other folds.

    Parameters
    ----------
    table : pandas.DataFrame
        Snapshot table (one row per user).
    id_col, label_col : str
        Id and binary label columns.
    models : sequence of str
        Registry models (:data:`churnlib.models.MODELS`).
    strategy : str, default "none"
        Imbalance strategy (:data:`churnlib.models.STRATEGIES`).
    effect_size, noise_fraction, features
        Passed to :func:`add_synthetic_features` (drawn with ``seed``).
    n_splits, n_repeats, n_bootstrap, seed, n_jobs : int
        CV folds and repeats, bootstrap replicates, seed, parallel workers (whole model runs in
        parallel; the figures do not depend on ``n_jobs``).
    params : dict, optional
        Per model, hyperparameters set on the registry pipeline, e.g.
        ``{"random_forest": {"n_estimators": 100}}`` (keys without ``__`` go to the model step).

    Returns
    -------
    pandas.DataFrame
        Long: ``model``, ``features`` ("original" / "original + synthetic"), ``metric``, ``value``,
        ``low``, ``high`` (metrics of :data:`churnlib.evaluation.METRICS`). ``attrs["settings"]``
        records the run, so :func:`value_of_data_curve` can reuse its augmented runs.
    """
    augmented = add_synthetic_features(table, label_col, effect_size=effect_size,
                                       noise_fraction=noise_fraction, seed=seed, features=features)
    sets = ((ORIGINAL, table), (AUGMENTED, augmented))
    runs = [(t, model) for _, t in sets for model in models]
    results = iter(_cv_runs(runs, id_col, label_col, strategy, n_splits, n_repeats, n_bootstrap, seed, n_jobs,
                            params))
    parts = []
    for label, _ in sets:
        part = pd.concat([next(results) for _ in models], ignore_index=True)
        part.insert(1, "features", label)
        parts.append(part.drop(columns="strategy"))
    out = pd.concat(parts, ignore_index=True)
    out.attrs["settings"] = _settings(table, id_col, label_col, effect_size, noise_fraction, features, strategy,
                                      n_splits, n_repeats, n_bootstrap, seed)
    out.attrs["params"] = {m: dict((params or {}).get(m) or {}) for m in models}
    return out


def _settings(table: pd.DataFrame, id_col: str, label_col: str, effect_size: Any, noise_fraction: float,
              features: Sequence[str] | None, strategy: str, n_splits: int, n_repeats: int, n_bootstrap: int,
              seed: int) -> dict[str, Any]:
    return {"table": _table_key(table), "id_col": id_col, "label_col": label_col,
            "effect_size": float(effect_size) if not isinstance(effect_size, Mapping) else dict(effect_size),
            "noise_fraction": float(noise_fraction), "features": None if features is None else list(features),
            "strategy": strategy, "n_splits": int(n_splits), "n_repeats": int(n_repeats),
            "n_bootstrap": int(n_bootstrap), "seed": int(seed)}


def value_of_data_curve(table: pd.DataFrame, id_col: str, label_col: str, effect_sizes: Sequence[float], *,
                        model: str = "random_forest", strategy: str = "none",
                        noise_fraction: float = DEFAULT_NOISE_FRACTION, features: Sequence[str] | None = None,
                        n_splits: int = 3, n_repeats: int = 1, n_bootstrap: int = 200, seed: int = 0,
                        n_jobs: int = 1, params: Mapping | None = None,
                        reuse: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cross-validated scores of ``model`` on the table plus synthetic features, for each effect size.

    Every effect size draws the features with the same seed (common random numbers: only the
    size changes) and is scored on the same CV splits, as in :func:`before_after`.

    Parameters
    ----------
    table : pandas.DataFrame
        Snapshot table (one row per user).
    id_col, label_col : str
        Id and binary label columns.
    effect_sizes : sequence of float
        Latent effect sizes (the same for every synthetic feature).
    model, strategy : str
        Registry model and imbalance strategy.
    noise_fraction, features
        Passed to :func:`add_synthetic_features`.
    n_splits, n_repeats, n_bootstrap, seed, n_jobs : int
        As in :func:`before_after` (with ``n_jobs > 1`` effect sizes run in parallel).
    params : dict, optional
        Hyperparameters for the model step, e.g. ``{"n_estimators": 100}``.
    reuse : pandas.DataFrame, optional
        A :func:`before_after` result: when it scored ``model`` with the synthetic features at one of
        ``effect_sizes`` on the same rows with the same settings, those figures are taken instead of
        running the same cross-validation again (identical by construction).

    Returns
    -------
    pandas.DataFrame
        Long: ``effect_size``, ``model``, ``metric``, ``value``, ``low``, ``high``.
    """
    sizes = [float(d) for d in effect_sizes]
    if not sizes:
        raise ValueError("effect_sizes is empty")
    known = _reusable(reuse, table, id_col, label_col, model, noise_fraction, features, strategy, n_splits,
                      n_repeats, n_bootstrap, seed, params)
    todo = [d for d in dict.fromkeys(sizes) if d not in known]
    runs = [(add_synthetic_features(table, label_col, effect_size=d, noise_fraction=noise_fraction, seed=seed,
                                    features=features), model) for d in todo]
    done = dict(zip(todo, _cv_runs(runs, id_col, label_col, strategy, n_splits, n_repeats, n_bootstrap, seed,
                                   n_jobs, {model: params} if params else None)))
    parts = []
    for d in sizes:
        part = (known[d] if d in known else done[d].drop(columns="strategy")).copy()
        part.insert(0, "effect_size", d)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _reusable(reuse: pd.DataFrame | None, table: pd.DataFrame, id_col: str, label_col: str, model: str,
              noise_fraction: float, features: Sequence[str] | None, strategy: str, n_splits: int,
              n_repeats: int, n_bootstrap: int, seed: int, params: Mapping | None) -> dict[float, pd.DataFrame]:
    """``{effect size: rows}`` of a :func:`before_after` result that the curve would recompute identically."""
    if reuse is None or "settings" not in reuse.attrs:
        return {}
    s = dict(reuse.attrs["settings"])
    d = s.pop("effect_size")
    if isinstance(d, Mapping) or dict(reuse.attrs.get("params", {}).get(model, {})) != dict(params or {}):
        return {}
    want = _settings(table, id_col, label_col, 0.0, noise_fraction, features, strategy, n_splits, n_repeats,
                     n_bootstrap, seed)
    want.pop("effect_size")
    if s != want:
        return {}
    rows = reuse[(reuse["model"] == model) & (reuse["features"] == AUGMENTED)]
    if rows.empty:
        return {}
    return {float(d): rows.drop(columns="features").reset_index(drop=True)}


def curve_metric(curve: pd.DataFrame, metric: str = "roc_auc", model: str | None = None) -> pd.Series:
    """One metric of a :func:`value_of_data_curve` result by effect size (``model``: default the first)."""
    model = curve["model"].iloc[0] if model is None else model
    g = curve[(curve["metric"] == metric) & (curve["model"] == model)]
    if g.empty:
        raise ValueError(f"no {metric!r} rows for model {model!r} in the curve")
    return g.set_index("effect_size")["value"].sort_index()


# --------------------------------------------------------------------------------------------
# Verdicts: how much signal the snapshot carries, and how our figures sit beside the earlier project's
# --------------------------------------------------------------------------------------------

def signal_verdict(before: Mapping[str, pd.Series | Interval], permutation_significant: bool,
                   trace_below: float = TRACE_BELOW) -> str:
    """How much signal a table's own columns carry: ``"none"``, ``"trace"`` or ``"some"``.

    Parameters
    ----------
    before : mapping of model name -> Interval or Series with ``value``, ``low``, ``high``
        Each model's cross-validated ROC-AUC with its 95% interval, on the table's own columns.
    permutation_significant : bool
        Whether the label-permutation test found a signal.
    trace_below : float, default :data:`TRACE_BELOW`
        An interval that clears 0.5 while every model stays below this AUC and the permutation
        test finds nothing is a trace: on thousands of rows a bootstrap interval can just exclude
        0.5 without the model ranking churners usefully better than a coin flip.

    Returns
    -------
    str
        ``"none"`` (every interval covers 0.5, permutation test not significant), ``"trace"``, or
        ``"some"``.
    """
    if not before:
        raise ValueError("no model scores given")
    aucs = [Interval.from_value(row) for row in before.values()]
    covers = all(a.low <= 0.5 <= a.high for a in aucs)
    if not permutation_significant and covers:
        return "none"
    if not permutation_significant and max(a.value for a in aucs) < trace_below:
        return "trace"
    return "some"


def flag_everyone_f1(churn_rate: float) -> float:
    """F1 of flagging every user as a churner: ``2 p / (1 + p)`` at churn rate ``p`` (recall 1, precision p).

    What a model without signal can still score on F1 by calling everybody a churner.
    """
    p = float(churn_rate)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"churn_rate must be in [0, 1], got {churn_rate!r}")
    return 2 * p / (1 + p)


def earlier_figures(model: str, features: str = AUGMENTED) -> pd.Series | None:
    """The earlier project's reported figures (:data:`EARLIER_PROJECT`) for one model and feature set, or None."""
    return EARLIER_PROJECT.loc[(model, features)] if (model, features) in EARLIER_PROJECT.index else None


@dataclass(frozen=True)
class SnapshotSignal:
    """How much signal the snapshot's own columns carry (:func:`snapshot_signal`).

    Attributes
    ----------
    aucs : dict of str to Interval
        Each model's cross-validated ROC-AUC on the snapshot's own columns.
    permutation : churnlib.evaluation.PermutationResult
        The label-permutation test on the same columns.
    verdict : {"none", "trace", "some"}
        :func:`signal_verdict`.
    churn_rate : float
        Share of churners.
    trace_below : float
        The ROC-AUC under which an interval that just clears 0.5 is called a trace.
    """

    aucs: dict[str, Interval]
    permutation: ev.PermutationResult
    verdict: str
    churn_rate: float
    trace_below: float = TRACE_BELOW

    @property
    def covering_chance(self) -> list[str]:
        """Models whose ROC-AUC interval covers 0.5."""
        return [m for m, a in self.aucs.items() if a.covers(0.5)]

    @property
    def flag_everyone_f1(self) -> float:
        """F1 of calling every user a churner at this churn rate (:func:`flag_everyone_f1`)."""
        return flag_everyone_f1(self.churn_rate)

    @property
    def earlier_stalled_f1(self) -> float:
        """The F1 at which the earlier project's models stalled (:data:`EARLIER_PROJECT`, hist_gb / original)."""
        return float(EARLIER_PROJECT.loc[("hist_gb", ORIGINAL), "f1"])

    @property
    def stalled_f1_is_flag_everyone(self) -> bool:
        """Their stalled F1, as reported to two decimals, is the F1 of flagging everyone at this churn rate."""
        return abs(self.earlier_stalled_f1 - self.flag_everyone_f1) <= 0.005 + 1e-9


def snapshot_signal(long: pd.DataFrame, permutation: ev.PermutationResult, churn_rate: float,
                    trace_below: float = TRACE_BELOW) -> SnapshotSignal:
    """The verdict on the snapshot's own columns from a :func:`before_after` result and a permutation test.

    Parameters
    ----------
    long : pandas.DataFrame
        :func:`before_after` output; its ``original`` ROC-AUC rows are used, one per model.
    permutation : churnlib.evaluation.PermutationResult
        :func:`churnlib.evaluation.permutation_test` on the snapshot's own columns.
    churn_rate : float
        Share of churners in the table.
    trace_below : float
        Passed to :func:`signal_verdict`.

    Returns
    -------
    SnapshotSignal
    """
    rows = long[(long["metric"] == "roc_auc") & (long["features"] == ORIGINAL)]
    if rows.empty:
        raise ValueError("no ROC-AUC on the original columns in this before/after table")
    aucs = {r["model"]: Interval.from_row(r) for _, r in rows.iterrows()}
    verdict = signal_verdict(aucs, permutation.significant, trace_below)
    return SnapshotSignal(aucs, permutation, verdict, float(churn_rate), trace_below)


@dataclass(frozen=True)
class EarlierComparison:
    """Our figures with the synthetic features beside the earlier project's (:func:`compare_with_earlier`).

    Attributes
    ----------
    model : str
        Registry model.
    roc_auc, f1 : Interval
        Our cross-validated ROC-AUC and F1 with the synthetic features.
    theirs_roc_auc, theirs_f1 : float or None
        Their reported figures for the same model with synthetic features (None: not reported).
    """

    model: str
    roc_auc: Interval
    f1: Interval
    theirs_roc_auc: float | None = None
    theirs_f1: float | None = None

    @property
    def reported(self) -> bool:
        """They reported figures for this model."""
        return self.theirs_roc_auc is not None and math.isfinite(self.theirs_roc_auc)

    @property
    def theirs_auc_inside(self) -> bool:
        """Their ROC-AUC lies inside our 95% interval."""
        return self.reported and self.roc_auc.covers(self.theirs_roc_auc)

    @property
    def theirs_f1_above(self) -> bool:
        """Their F1 lies above our whole 95% interval."""
        return self.theirs_f1 is not None and self.f1.below(self.theirs_f1)


def compare_with_earlier(long: pd.DataFrame, model: str) -> EarlierComparison:
    """``model``'s figures with the synthetic features (from :func:`before_after`) beside the earlier project's."""
    g = long[(long["model"] == model) & (long["features"] == AUGMENTED)].set_index("metric")
    if g.empty:
        raise ValueError(f"no {model!r} rows with synthetic features in this before/after table")
    theirs = earlier_figures(model, AUGMENTED)
    num = lambda v: None if v is None or pd.isna(v) else float(v)  # noqa: E731
    return EarlierComparison(model, Interval.from_row(g.loc["roc_auc"]), Interval.from_row(g.loc["f1"]),
                             None if theirs is None else num(theirs["roc_auc"]),
                             None if theirs is None else num(theirs["f1"]))


# --------------------------------------------------------------------------------------------
# Feature by feature: drawn from the label vs measured from events
# --------------------------------------------------------------------------------------------

def _bootstrap_counts(groups: np.ndarray | None, n: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """How often each row is drawn in each bootstrap replicate, shape ``(n_bootstrap, n)``.

    The draws are those of :func:`churnlib.intervals.bootstrap_sampler` with ``default_rng(seed)``.
    """
    draw = bootstrap_sampler(groups, n, np.random.default_rng(seed))
    counts = np.empty((n_bootstrap, n), dtype=np.int64)
    for b in range(n_bootstrap):
        counts[b] = np.bincount(draw(), minlength=n)
    return counts


def _weighted_aucs(y: np.ndarray, x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC-AUC of each bootstrap replicate given as row counts; NaN where a replicate has one class.

    Mann-Whitney on the replicate: U = sum over (churner, other) pairs of [x_c > x_o] + 0.5 [x_c == x_o],
    the pairs counted with the rows' multiplicities (ties count half, as in ``roc_auc_score``). Computed
    on the values sorted once, in integer and half-integer arithmetic, so it equals the AUC of the
    resampled rows exactly.
    """
    order = np.argsort(x, kind="stable")
    xs, pos = x[order], y[order] == 1
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    c = counts[:, order].astype(float)
    w1 = np.add.reduceat(c * pos, starts, axis=1)      # churner draws per distinct value
    w0 = np.add.reduceat(c * ~pos, starts, axis=1)     # other draws per distinct value
    below = np.cumsum(w0, axis=1) - w0                 # other draws strictly below each value
    u = (w1 * (below + 0.5 * w0)).sum(axis=1)
    n1, n0 = w1.sum(axis=1), w0.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)


def single_feature_auc(table: pd.DataFrame, label_col: str, columns: Sequence[str], *,
                       directions: Mapping[str, int] | None = None, groups_col: str | None = None,
                       n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each column alone as a churn score: ROC-AUC with a 95% interval, and Cohen's d.

    Parameters
    ----------
    table : pandas.DataFrame
        Table with the label and the columns.
    label_col : str
        Binary label.
    columns : sequence of str
        Numeric columns scored one at a time (rows where a column is missing are left out for it).
    directions : dict of str to {+1, -1}, optional
        Expected churn direction per column (default +1): the column is multiplied by it, so an
        AUC above 0.5 and a positive d mean "goes the documented way", below 0.5 the opposite.
    groups_col : str, optional
        User ids: the bootstrap resamples users (a user on several rows counts once per draw).
    n_bootstrap, seed : int
        Bootstrap replicates and seed (95% percentile interval, as :func:`churnlib.evaluation.evaluate_predictions`).

    Returns
    -------
    pandas.DataFrame
        One row per column: ``feature``, ``n``, ``auc``, ``low``, ``high``, ``cohens_d`` (difference of
        the class means over the pooled standard deviation, on the value's own scale).
    """
    return _auc_rows(table, label_col, columns, directions, groups_col, n_bootstrap, seed, {})


def _auc_rows(table: pd.DataFrame, label_col: str, columns: Sequence[str], directions: Mapping[str, int] | None,
              groups_col: str | None, n_bootstrap: int, seed: int, draws: dict[bytes, np.ndarray]) -> pd.DataFrame:
    """:func:`single_feature_auc`; ``draws`` caches the bootstrap counts by the rows a column keeps (tables
    sharing a cache must have the same rows and groups)."""
    y_all = binary_label(table, label_col)
    groups_all = table[groups_col].to_numpy() if groups_col else None
    rows = []
    for col in columns:
        sign = (directions or {}).get(col, 1)
        x = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float) * sign
        ok = np.isfinite(x)
        y, x = y_all[ok], x[ok]
        auc = low = high = d = np.nan
        if len(np.unique(y)) == 2:
            auc = float(roc_auc_score(y, x))
            if n_bootstrap:
                key = np.packbits(ok).tobytes()
                if key not in draws:
                    draws[key] = _bootstrap_counts(None if groups_all is None else groups_all[ok], len(y),
                                                   n_bootstrap, seed)
                reps = _weighted_aucs(y, x, draws[key])
                reps = reps[np.isfinite(reps)]
                if len(reps):
                    low, high = np.percentile(reps, [2.5, 97.5])
            a, b = x[y == 1], x[y == 0]
            pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(x) - 2)) \
                if len(a) > 1 and len(b) > 1 else np.nan
            d = (a.mean() - b.mean()) / pooled if pooled and pooled > 0 else 0.0
        rows.append({"feature": col, "n": int(ok.sum()), "auc": auc, "low": low, "high": high, "cohens_d": d})
    return pd.DataFrame(rows, columns=["feature", "n", "auc", "low", "high", "cohens_d"])


def feature_contrast(events_table: pd.DataFrame, label_col: str = "churned", id_col: str = "userId", *,
                     effect_size: float | Mapping[str, float] = DEFAULT_EFFECT_SIZE,
                     noise_fraction: float = DEFAULT_NOISE_FRACTION, n_bootstrap: int = 200,
                     seed: int = 0) -> pd.DataFrame:
    """The same named signals, measured from events vs drawn from the label, on the same rows.

    The synthetic features are drawn from the event table's own labels
    (:func:`add_synthetic_features`), so both versions of each signal are scored against the same
    users, observation dates and churn labels; only where the values come from differs.

    Parameters
    ----------
    events_table : pandas.DataFrame
        :func:`churnlib.features.build_features` output (features computed before each observation date).
    label_col, id_col : str
        Label and user-id columns (the bootstrap resamples users).
    effect_size, noise_fraction, seed
        Passed to :func:`add_synthetic_features`.
    n_bootstrap : int
        Bootstrap replicates.

    Returns
    -------
    pandas.DataFrame
        One row per (synthetic feature, source): ``feature`` (synthetic name), ``source``
        ("drawn from the label" / "measured from events"), ``column`` (the column scored; None when the
        event log has no equivalent), ``n``, ``auc``, ``low``, ``high``, ``cohens_d``; AUC and d oriented
        in the feature's documented churn direction.
    """
    present = [c for c in SYNTHETIC_FEATURES if c in events_table.columns]
    base = events_table.drop(columns=present)  # e.g. the event log's own listening_time_trend_7d
    drawn = add_synthetic_features(base[[id_col, label_col]], label_col, effect_size=effect_size,
                                   noise_fraction=noise_fraction, seed=seed)
    dirs = {n: f.churn_direction for n, f in SYNTHETIC_FEATURES.items()}
    draws: dict[bytes, np.ndarray] = {}  # same rows and users in both tables: the draws are shared
    synth = _auc_rows(drawn, label_col, list(SYNTHETIC_FEATURES), dirs, id_col, n_bootstrap, seed, draws)
    synth.insert(1, "source", "drawn from the label")
    synth.insert(2, "column", synth["feature"])
    mapped = {n: c for n, c in EVENT_EQUIVALENTS.items() if c is not None and c in events_table.columns}
    measured = _auc_rows(events_table, label_col, list(mapped.values()), {c: dirs[n] for n, c in mapped.items()},
                         id_col, n_bootstrap, seed, draws)
    back = {c: n for n, c in mapped.items()}
    measured.insert(1, "source", "measured from events")
    measured.insert(2, "column", measured["feature"])
    measured["feature"] = measured["column"].map(back)
    missing = pd.DataFrame([{"feature": n, "source": "measured from events", "column": None, "n": 0}
                            for n in SYNTHETIC_FEATURES if n not in mapped])
    out = pd.concat([synth, measured, missing], ignore_index=True)
    out["feature"] = pd.Categorical(out["feature"], categories=list(SYNTHETIC_FEATURES), ordered=True)
    out = out.sort_values(["feature", "source"], kind="mergesort").reset_index(drop=True)
    out["feature"] = out["feature"].astype(str)
    return out


@dataclass(frozen=True)
class ContrastDirections:
    """Which signals separate churners, and which way (:func:`contrast_directions`).

    Attributes
    ----------
    assumed, reversed, unclear : list of str
        Measured signals whose ROC-AUC interval lies above 0.5 (the generator's assumed direction),
        below 0.5 (the opposite), or covers 0.5.
    no_equivalent : list of str
        Synthetic features with no event-log counterpart.
    drawn_assumed : list of str
        Drawn features whose interval lies above 0.5.
    n_drawn : int
        Drawn features scored.
    """

    assumed: list[str] = field(default_factory=list)
    reversed: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    no_equivalent: list[str] = field(default_factory=list)
    drawn_assumed: list[str] = field(default_factory=list)
    n_drawn: int = 0

    @property
    def n_measured(self) -> int:
        """Measured signals scored."""
        return len(self.assumed) + len(self.reversed) + len(self.unclear)


def contrast_directions(contrast: pd.DataFrame) -> ContrastDirections:
    """Sort the signals of a :func:`feature_contrast` table by what their ROC-AUC interval says about 0.5."""
    def iv(r: pd.Series) -> Interval:
        return Interval(r["auc"], r["low"], r["high"])

    measured = contrast[(contrast["source"] == "measured from events") & contrast["auc"].notna()]
    drawn = contrast[contrast["source"] == "drawn from the label"]
    ivs = {r["feature"]: iv(r) for _, r in measured.iterrows()}
    return ContrastDirections(
        assumed=[f for f, a in ivs.items() if a.above(0.5)],
        reversed=[f for f, a in ivs.items() if a.below(0.5)],
        unclear=[f for f, a in ivs.items() if not a.above(0.5) and not a.below(0.5)],
        no_equivalent=[n for n in SYNTHETIC_FEATURES if (n in set(contrast["feature"]))
                       and n not in ivs and EVENT_EQUIVALENTS.get(n) is None],
        drawn_assumed=[r["feature"] for _, r in drawn.iterrows() if iv(r).above(0.5)],
        n_drawn=len(drawn))
