"""Feature validation: which features carry churn signal, which repeat each other, which to keep.

The statistics of ``notebooks/03_feature_validation.ipynb`` (its plain-words text, tables and plots
are in :mod:`churnlib.validation_report`). Every step runs on the **training part** of the very
table the modelling step uses (:func:`churnlib.training.training_table`), cut exactly as
:func:`churnlib.training.split_table` cuts it (same seed and holdout fraction), so no choice made here
has seen the holdout.

* :func:`feature_ladder` -- nested feature sets: baseline counts -> + windows -> + trends -> + contact
  signals (event tables), or original columns -> + synthetic features (snapshot tables).
* :func:`compare_feature_sets` -- every set in the same repeated, group-aware CV; ROC-AUC, PR-AUC and
  F1 with 95% intervals, and a paired comparison of consecutive sets on the same out-of-fold rows;
  :func:`difference_verdict`, :func:`ladder_findings` and :func:`pruning_cost` read it.
* :mod:`churnlib.feature_stats` -- univariate tests with FDR, redundancy clusters, permutation
  importance and mutual information (re-exported here).
* :func:`select_features` -- the conservative rule: drop leakage suspects (single columns and
  relations across columns, :func:`churnlib.leakage.screen_leaks`), constant columns and
  redundant duplicates; keep the rest.
* :func:`save_feature_set` / :func:`load_feature_set` -- ``data/processed/feature_set.json``, read by
  the modelling step.
* :func:`run_validation` -- all of the above on a table, as the notebook runs it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from churnlib import evaluation as ev
from churnlib import paths
from churnlib import thresholds as th
from churnlib.feature_stats import (
    consistent_features,
    importance,
    permutation_drops,
    redundancy_clusters,
    univariate_tests,
)
from churnlib.features import KEY_COLUMNS, feature_dictionary
from churnlib.files import atomic_write_text
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.leakage import LeakageScreen, screen_leaks
from churnlib.load import data_fingerprint
from churnlib.models import make_pipeline, negatives_per_positive
from churnlib.rank_metrics import f1_from_decisions, mean_ranking_scores, rank_auc
from churnlib.synthetic import add_synthetic_features
from churnlib.training import split_table

__all__ = [
    "FEATURE_SET_FILE",
    "LADDER_STEPS",
    "SNAPSHOT_STEPS",
    "FeatureSelection",
    "LadderFindings",
    "ValidationResult",
    "compare_feature_sets",
    "consistent_features",
    "difference_verdict",
    "feature_ladder",
    "importance",
    "ladder_findings",
    "load_feature_set",
    "permutation_drops",
    "pruning_cost",
    "redundancy_clusters",
    "run_validation",
    "save_feature_set",
    "select_features",
    "table_kind",
    "univariate_tests",
]

#: File name of the chosen feature set under ``paths.processed_data_dir``.
FEATURE_SET_FILE = "feature_set.json"
#: Who writes the feature set (recorded in the file).
WRITTEN_BY = "03_feature_validation"

#: Step names of the event-table ladder, in order.
LADDER_STEPS: tuple[str, ...] = ("baseline counts", "+ windows", "+ trends", "+ contact signals")
#: Step names of the snapshot ladder.
SNAPSHOT_STEPS: tuple[str, ...] = ("original columns", "+ synthetic features")

#: Sparkify pages whose visits signal friction or contact: help, errors, adverts, thumbs down.
CONTACT_PAGES: tuple[str, ...] = ("help", "error", "roll_advert", "thumbs_down")
_WINDOW_SUFFIXES = ("_7d", "_14d", "_30d")
_RATE_SUFFIXES = ("_per_song", "_per_session_hour")


# --------------------------------------------------------------------------------------------
# Ladder
# --------------------------------------------------------------------------------------------

def table_kind(table: pd.DataFrame) -> str:
    """``"events"`` for a feature table built from an event log (``userId``, ``as_of``, ``churned``), else ``"snapshot"``."""
    return "events" if set(KEY_COLUMNS) <= set(table.columns) else "snapshot"


def _event_step(name: str, group: str | None) -> int:
    """Ladder step (0-3) of one event feature; see :func:`feature_ladder`."""
    if group == "trends":
        return 2
    stem = name
    for suffix in _RATE_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
    if group in ("support", "ratios") or (group == "pages" and stem in CONTACT_PAGES):
        return 3
    if (group in ("frequency", "recency", "sessions") or name.endswith(_WINDOW_SUFFIXES)
            or (group == "pages" and stem != name)):
        return 1
    if group is None:  # not in the feature dictionary: only in the full set
        return 3
    return 0


def feature_ladder(columns: Sequence[str], kind: str = "events", *,
                   synthetic: Sequence[str] = ()) -> dict[str, list[str]]:
    """Nested feature sets, each one the previous plus a family of features.

    Event tables (groups from :func:`churnlib.features.feature_dictionary`):

    1. ``baseline counts`` -- who the user is and how much they did overall: groups tenure,
       listening (totals), diversity, subscription and context, and the lifetime visit counts of
       the pages that are not contact signals (thumbs up, add friend, add to playlist, settings,
       save settings, upgrade, submit upgrade, downgrade, submit downgrade).
    2. ``+ windows`` -- time-resolved activity: groups frequency, recency and sessions, any column
       ending in ``_7d``/``_14d``/``_30d`` (e.g. ``listening_hours_7d``), and the per-song and
       per-session-hour rates of the non-contact pages.
    3. ``+ trends`` -- group trends (last period vs the one before, weekly slope, time-of-day shares).
    4. ``+ contact signals`` -- group support, group ratios (skips, thumbs-up share, adverts per
       song) and every count or rate of the Help, Error, Roll Advert and Thumbs Down pages.
       Columns not in the dictionary also enter here, so the last set is every column given.

    Snapshot tables: ``original columns`` -> ``+ synthetic features`` (the latter only when
    ``synthetic`` names columns present in ``columns``).

    Parameters
    ----------
    columns : sequence of str
        Candidate feature columns (ids and label already removed).
    kind : {"events", "snapshot"}
    synthetic : sequence of str
        Synthetic columns (drawn from the label; for the comparison only). For event tables they
        form an extra last step ``+ synthetic features`` when present.

    Returns
    -------
    dict of str to list of str
        Step name -> columns, in ladder order; every set contains the previous one. Steps that
        would add no column are left out.
    """
    if kind not in ("events", "snapshot"):
        raise ValueError(f"kind must be 'events' or 'snapshot', got {kind!r}")
    columns = list(columns)
    synth = [c for c in columns if c in set(synthetic)]
    real = [c for c in columns if c not in set(synth)]
    if kind == "snapshot":
        increments = [real]
        names = [SNAPSHOT_STEPS[0]]
    else:
        groups = dict(feature_dictionary()[["name", "group"]].itertuples(index=False))
        increments = [[] for _ in LADDER_STEPS]
        for c in real:
            increments[_event_step(c, groups.get(c))].append(c)
        names = list(LADDER_STEPS)
    if synth:
        increments.append(synth)
        names.append(SNAPSHOT_STEPS[1])
    ladder: dict[str, list[str]] = {}
    current: list[str] = []
    for name, add in zip(names, increments):
        if not add:
            continue
        current = current + add
        ladder[name] = list(current)
    return ladder


# --------------------------------------------------------------------------------------------
# Comparison of feature sets
# --------------------------------------------------------------------------------------------

_COMPARED = ("roc_auc", "pr_auc", "f1")
_PAIRED = ("roc_auc", "pr_auc")


def _scores(y: np.ndarray, P: np.ndarray, H: np.ndarray, idx) -> np.ndarray:
    """ROC-AUC, PR-AUC and F1 of probabilities ``P`` and decisions ``H`` (repeats x rows) on rows
    ``idx``, each averaged over repeats (as :func:`churnlib.evaluation.evaluate_predictions` scores);
    the AUCs are NaN when ``idx`` holds one class only."""
    yy = y[idx]
    Q, D = P[:, idx], H[:, idx]
    return np.array([*mean_ranking_scores(yy, Q), f1_from_decisions(yy, D).mean()])


def difference_verdict(difference: Interval) -> str:
    """``"helps"`` when the interval of a paired difference lies above 0, ``"hurts"`` when below,
    else ``"no clear change"`` (also when the interval is unknown)."""
    if difference.above(0):
        return "helps"
    if difference.below(0):
        return "hurts"
    return "no clear change"


def compare_feature_sets(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None,
                         sets: Mapping[str, Sequence[str]], *, model: str = "logreg",
                         strategy: str = "class_weight", n_splits: int = 3, n_repeats: int = 1,
                         n_bootstrap: int = 200, seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Cross-validate one model on each feature set with the same splits, and compare consecutive sets.

    Parameters
    ----------
    X : pandas.DataFrame
        Training features (every column any set names).
    y : array of 0/1
        Labels.
    groups : array, optional
        User ids: folds and bootstrap keep a user's rows together.
    sets : mapping of str to sequence of str
        Set name -> columns, in the order to compare (e.g. :func:`feature_ladder`).
    model, strategy : str
        A :data:`churnlib.models.MODELS` x :data:`churnlib.models.STRATEGIES` pipeline
        (preprocessing inside the folds).
    n_splits, n_repeats : int
        Repeated stratified (group) K-fold, computed once and shared by every set.
    n_bootstrap : int
        Bootstrap replicates over users for every interval (the same draws for every set, and the
        draws :func:`churnlib.evaluation.evaluate_predictions` makes with this seed).
    seed, n_jobs : int

    Returns
    -------
    pandas.DataFrame
        One row per set (index ``set``): ``n_features``, ``added``; ``roc_auc``, ``pr_auc``, ``f1``
        each with ``_low``/``_high`` (95% intervals; F1 at a threshold chosen on the other folds);
        ``delta_roc_auc`` and ``delta_pr_auc`` with ``_low``/``_high`` -- the paired difference to
        the previous set on the same out-of-fold rows and bootstrap draws; ``folds_better`` -- in how
        many of the CV folds the ROC-AUC rose over the previous set (of ``n_folds``); ``gain_roc_auc``
        with ``_low``/``_high`` -- the same paired difference to the first set; ``verdict`` --
        :func:`difference_verdict` of the ROC-AUC difference (``"first"`` for the first set).
    """
    if not sets:
        raise ValueError("no feature sets to compare")
    missing = sorted({c for cols in sets.values() for c in cols} - set(X.columns))
    if missing:
        raise KeyError(f"columns not in X: {missing}")
    y = np.asarray(y).astype(int)
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)
    pipe = make_pipeline(model, strategy, pos_weight=negatives_per_positive(y), seed=seed, n_jobs=1)
    names = list(sets)
    oofs: list[np.ndarray] = []
    hards: list[np.ndarray] = []
    rows = []
    prev: list[str] = []
    for name in names:
        cols = list(sets[name])
        if not cols:
            raise ValueError(f"feature set {name!r} is empty")
        oof = ev.oof_predict(pipe, X[cols], y, splits, n_jobs=n_jobs)
        oofs.append(oof)
        hards.append(th.cross_fitted_decisions(y, oof, splits))
        rows.append({"set": name, "n_features": len(cols), "added": len(set(cols) - set(prev))})
        prev = cols

    # one bootstrap over users scores every set on the same draws: the sets' own intervals and the
    # paired differences between them come from the same replicates
    draw = bootstrap_sampler(groups, len(y), np.random.default_rng(seed))
    point = np.array([_scores(y, P, H, slice(None)) for P, H in zip(oofs, hards)])  # (sets, metrics)
    reps = np.array([[_scores(y, P, H, idx) for P, H in zip(oofs, hards)]
                     for idx in (draw() for _ in range(n_bootstrap))]).reshape(n_bootstrap, len(names), 3)
    folds = [(r, test) for r, part in enumerate(splits) for _, test in part]
    fold_auc = np.array([[rank_auc(y[test], P[r, test][None, :])[0] for r, test in folds]
                         for P in oofs])  # (sets, folds)

    def interval(value: float, samples: np.ndarray) -> Interval:
        return Interval.from_samples(value, samples) if n_bootstrap else Interval(value)

    def put(row: dict, name: str, iv: Interval) -> None:
        row[name], row[f"{name}_low"], row[f"{name}_high"] = iv.as_tuple()

    for k, row in enumerate(rows):
        for j, m in enumerate(_COMPARED):
            put(row, m, interval(point[k, j], reps[:, k, j]))
        row["n_folds"] = len(folds)
        if k == 0:
            for m in (*(f"delta_{m}" for m in _PAIRED), "gain_roc_auc"):
                put(row, m, Interval(np.nan))
            row["folds_better"], row["verdict"] = np.nan, "first"
            continue
        for j, m in enumerate(_PAIRED):
            put(row, f"delta_{m}", interval(point[k, j] - point[k - 1, j], reps[:, k, j] - reps[:, k - 1, j]))
        # cumulative gain over the first set, on the same draws
        put(row, "gain_roc_auc", interval(point[k, 0] - point[0, 0], reps[:, k, 0] - reps[:, 0, 0]))
        row["folds_better"] = int(np.sum(fold_auc[k] > fold_auc[k - 1]))
        row["verdict"] = difference_verdict(Interval.from_row(row, "delta_roc_auc"))
    out = pd.DataFrame(rows).set_index("set")
    out.attrs.update(model=model, strategy=strategy, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    return out


@dataclass(frozen=True)
class LadderFindings:
    """What a :func:`compare_feature_sets` result shows, for the sentences and the figure title.

    Attributes
    ----------
    beats_chance : bool
        Some set's ROC-AUC interval lies above 0.5.
    first_beats_chance : bool
        The first set's does.
    best : str
        The set with the highest ROC-AUC.
    helps, hurts : list of str
        Steps whose paired ROC-AUC difference to the previous set lies above / below 0.
    total_gain : Interval or None
        ROC-AUC of the last set minus the first (paired); None with a single set.
    total_gain_clear : bool
        That interval excludes 0.
    """

    beats_chance: bool
    first_beats_chance: bool
    best: str
    helps: list[str]
    hurts: list[str]
    total_gain: Interval | None
    total_gain_clear: bool


def ladder_findings(comparison: pd.DataFrame) -> LadderFindings:
    """Read a :func:`compare_feature_sets` result: signal at all, which steps clearly help or hurt,
    and whether all steps together clearly change the ROC-AUC."""
    auc = [Interval.from_row(r, "roc_auc") for _, r in comparison.iterrows()]
    gain = Interval.from_row(comparison.iloc[-1], "gain_roc_auc") if len(comparison) > 1 else None
    return LadderFindings(
        beats_chance=any(a.above(0.5) for a in auc),
        first_beats_chance=auc[0].above(0.5),
        best=str(comparison["roc_auc"].idxmax()),
        helps=[str(n) for n in comparison.index[comparison["verdict"] == "helps"]],
        hurts=[str(n) for n in comparison.index[comparison["verdict"] == "hurts"]],
        total_gain=gain,
        total_gain_clear=gain is not None and (gain.above(0) or gain.below(0)),
    )


def pruning_cost(check: pd.DataFrame) -> bool:
    """True when the chosen set ranks measurably worse than all candidates: the interval of its paired
    ROC-AUC difference (last row of ``check``, a :func:`compare_feature_sets` result) lies below 0."""
    return Interval.from_row(check.iloc[-1], "delta_roc_auc").below(0)


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

@dataclass
class FeatureSelection:
    """The chosen feature set and why each candidate was kept or dropped.

    Attributes
    ----------
    features : list of str
        Chosen columns, in the table's order.
    reasons : dict of str to str
        Every candidate column -> ``"kept..."`` or ``"dropped: ..."``.
    leakage : pandas.DataFrame
        :func:`churnlib.features.leakage_report` on the rows used.
    clusters : pandas.DataFrame
        :func:`redundancy_clusters` of the features left after removing suspects and constants.
    settings : dict
        Thresholds and seed.
    screen : churnlib.leakage.LeakageScreen, optional
        The whole leakage screen (relations across columns, probe); None when only a single-column
        report was given.
    """

    features: list[str]
    reasons: dict[str, str]
    leakage: pd.DataFrame
    clusters: pd.DataFrame
    settings: dict = field(default_factory=dict)
    screen: LeakageScreen | None = None

    @property
    def dropped(self) -> dict[str, str]:
        """Dropped column -> reason (without the ``"dropped: "`` prefix)."""
        return {c: r.removeprefix("dropped: ") for c, r in self.reasons.items() if r.startswith("dropped")}

    def table(self) -> pd.DataFrame:
        """One row per candidate: ``feature``, ``decision`` (kept/dropped), ``reason``."""
        return pd.DataFrame([{"feature": c, "decision": "dropped" if r.startswith("dropped") else "kept",
                              "reason": r.removeprefix("dropped: ")} for c, r in self.reasons.items()])


def select_features(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                    leakage: pd.DataFrame | LeakageScreen | None = None, redundancy_threshold: float = 0.9,
                    never: Mapping[str, str] | None = None, seed: int = 0) -> FeatureSelection:
    """The conservative rule: drop what is certainly harmful or duplicated, keep the rest.

    In order:

    1. columns in ``never`` (e.g. synthetic columns drawn from the label) -- dropped with the
       given reason;
    2. leakage: the columns :func:`churnlib.leakage.screen_leaks` drops (computed on these rows
       unless given) -- single-column suspects and the columns of every relation across columns
       that encodes the label; when every column is flagged none is dropped (a precomputed
       single-column :func:`churnlib.features.leakage_report` is still accepted: then its suspects);
    3. constant columns (at most one distinct value on these rows) -- dropped: no signal possible;
    4. redundant duplicates (:func:`redundancy_clusters` at ``redundancy_threshold`` on what is
       left) -- every cluster member but its representative dropped.

    Features with no significant univariate difference are **kept**: a few hundred users give the
    tests little power, and a feature may matter together with others.

    Parameters
    ----------
    X, y, groups
        Training features, labels and user ids (``groups`` is unused by the rule; accepted for a
        uniform signature).
    leakage : churnlib.leakage.LeakageScreen or pandas.DataFrame, optional
        A precomputed screen (or single-column report) on the same rows.
    redundancy_threshold : float, default 0.9
        |Spearman rho| from which features are duplicates.
    never : mapping of str to str, optional
        Column -> reason for columns that must never be chosen.
    seed : int
        Seed of the leakage screen's folds.

    Returns
    -------
    FeatureSelection
    """
    y = np.asarray(y).astype(int)
    never = dict(never or {})
    reasons: dict[str, str] = {}
    for c in X.columns:
        if c in never:
            reasons[c] = f"dropped: {never[c]}"
    cand = [c for c in X.columns if c not in reasons]
    screen = screen_leaks(X[cand], y, groups, seed=seed) if leakage is None else leakage
    if isinstance(screen, LeakageScreen):
        leakage = screen.single
        for c in screen.dropped:
            if c in cand:
                why = screen.reasons[c]
                reasons[c] = (f"dropped: leakage suspect ({why.removeprefix('single-column suspect: ')})"
                              if why.startswith("single") else
                              f"dropped: leakage across columns ({why.removeprefix('part of a relation across columns: ')})")
    else:
        screen = None
        flagged = leakage.loc[leakage["suspect"] & leakage["feature"].isin(cand)]
        if len(flagged) < len(cand):  # as split_table: if everything is a suspect, nothing is dropped
            for _, r in flagged.iterrows():
                reasons[r["feature"]] = f"dropped: leakage suspect ({r['reason']})"
    cand = [c for c in cand if c not in reasons]
    for c in cand:
        if X[c].nunique(dropna=True) <= 1:
            reasons[c] = "dropped: constant on the training part (no signal possible)"
    cand = [c for c in cand if c not in reasons]
    clusters = redundancy_clusters(X[cand], redundancy_threshold, y=y)
    for _, r in clusters.iterrows():
        if not r["kept"]:
            reasons[r["feature"]] = (f"dropped: redundant with {r['duplicate_of']} "
                                     f"(Spearman ρ = {r['rho']:.2f})")
    sizes = clusters.loc[clusters["kept"] & (clusters["cluster_size"] > 1)]
    for c in cand:
        if c in reasons:
            continue
        big = sizes.loc[sizes["feature"] == c]
        if len(big):
            n = int(big["cluster_size"].iloc[0]) - 1
            reasons[c] = f"kept: represents {n} feature{'s' if n > 1 else ''} with |ρ| ≥ {redundancy_threshold:g}"
        else:
            reasons[c] = "kept"
    ordered = {c: reasons[c] for c in X.columns}
    chosen = [c for c in X.columns if not ordered[c].startswith("dropped")]
    if not chosen:
        raise ValueError("no feature left after selection")
    return FeatureSelection(chosen, ordered, leakage, clusters,
                            settings={"redundancy_threshold": redundancy_threshold, "seed": seed,
                                      "rule": "drop leakage suspects, constant columns and redundant duplicates; "
                                              "keep the rest"}, screen=screen)


# --------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------

def save_feature_set(selection: FeatureSelection, *, id_col: str, label_col: str,
                     source_path: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> Path:
    """Write ``processed_data_dir(output_dir)/feature_set.json`` atomically, for the modelling step.

    The file holds ``features``, ``id_col``, ``label_col``, ``fingerprint`` (of ``source_path``,
    :func:`churnlib.load.data_fingerprint`), ``source``, ``dropped`` (column -> reason) and
    ``written_by``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    payload = {"features": list(selection.features), "id_col": id_col, "label_col": label_col,
               "fingerprint": data_fingerprint(source_path), "source": str(source_path),
               "dropped": dict(selection.dropped), "written_by": WRITTEN_BY}
    folder = paths.processed_data_dir(output_dir)
    out = folder / FEATURE_SET_FILE
    # readers see the old file or the new one, never half of one
    atomic_write_text(out, json.dumps(payload, indent=2, ensure_ascii=False))
    return out


def load_feature_set(output_dir: str | os.PathLike | None = None) -> dict | None:
    """The feature set written by :func:`save_feature_set`, or None when there is none.

    Raises
    ------
    ValueError
        When the file exists but is not a valid feature set (names the file).
    """
    path = paths.processed_data_dir(output_dir) / FEATURE_SET_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    need = {"features", "id_col", "label_col", "fingerprint", "source", "dropped", "written_by"}
    if not isinstance(data, dict) or not need <= set(data) or not isinstance(data["features"], list):
        raise ValueError(f"{path}: not a feature set (needs keys {sorted(need)})")
    return data


# --------------------------------------------------------------------------------------------
# The whole validation
# --------------------------------------------------------------------------------------------

@dataclass
class ValidationResult:
    """Everything :func:`run_validation` measured and decided, on the training part only.

    Attributes
    ----------
    kind : str
        ``"events"`` or ``"snapshot"``.
    X, y, groups
        Training part (candidate features before selection), labels and user ids.
    description : str
        How the holdout (never looked at) was drawn.
    ladder : dict
        The compared feature sets (leakage suspects left out).
    comparison : pandas.DataFrame
        :func:`compare_feature_sets` of the ladder.
    synthetic : list of str
        Synthetic columns used in the comparison only (snapshot tables).
    univariate, clusters, importance, leakage : pandas.DataFrame
    selection : FeatureSelection
    check : pandas.DataFrame
        The chosen set vs all candidate features (suspects out) in the same CV.
    settings : dict
    screen : churnlib.leakage.LeakageScreen, optional
        The leakage screen of the training part (``leakage`` is its single-column report).
    """

    kind: str
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    description: str
    ladder: dict[str, list[str]]
    comparison: pd.DataFrame
    synthetic: list[str]
    univariate: pd.DataFrame
    clusters: pd.DataFrame
    importance: pd.DataFrame
    leakage: pd.DataFrame
    selection: FeatureSelection
    check: pd.DataFrame
    settings: dict
    screen: LeakageScreen | None = None

    @property
    def signal_detected(self) -> bool:
        """Some set without synthetic columns has a ROC-AUC interval above 0.5."""
        real = [n for n, cols in self.ladder.items() if not set(cols) & set(self.synthetic)]
        return bool((self.comparison.loc[real, "roc_auc_low"] > 0.5).any())

    @property
    def best_real_set(self) -> str:
        """The set without synthetic columns with the highest ROC-AUC."""
        real = [n for n, cols in self.ladder.items() if not set(cols) & set(self.synthetic)]
        return str(self.comparison.loc[real, "roc_auc"].idxmax())


def run_validation(table: pd.DataFrame, id_col: str, label_col: str, split_col: str | None = None, *,
                   kind: str | None = None, model: str = "logreg", strategy: str = "class_weight",
                   n_splits: int = 3, n_repeats: int = 1, n_bootstrap: int = 200,
                   holdout_fraction: float = 0.2, exclude: Sequence[str] = (), redundancy_threshold: float = 0.9,
                   n_permutations: int = 5, synthetic_effect_size: float | None = 0.7, alpha: float = 0.05,
                   seed: int = 0, n_jobs: int = 1) -> ValidationResult:
    """Validate the features of a table on its training part, as the modelling step will cut it.

    1. :func:`churnlib.training.split_table` with the same ``split_col``, ``holdout_fraction``,
       ``seed`` and ``exclude``: the holdout is set aside and never looked at;
    2. leakage screen on the training part (:func:`churnlib.leakage.screen_leaks`: single columns,
       relations across columns, a probe);
    3. the ladder (:func:`feature_ladder`, suspects left out) compared in one CV; for snapshot tables
       the synthetic features of :func:`churnlib.synthetic.add_synthetic_features` are added as a
       last step (comparison only -- they are drawn from the label);
    4. univariate tests, redundancy clusters, permutation importance + mutual information;
    5. :func:`select_features`, and the chosen set vs all candidates in the same CV.

    Parameters
    ----------
    table : pandas.DataFrame
        Feature table or snapshot table (as :func:`churnlib.training.training_table` returns it).
    id_col, label_col, split_col : str
        As in :func:`churnlib.training.run_training`.
    kind : {"events", "snapshot"}, optional
        Default: :func:`table_kind`.
    model, strategy : str
        Pipeline for the comparisons and the permutation importance.
    n_splits, n_repeats, n_bootstrap, holdout_fraction, exclude, seed, n_jobs
        As in :func:`churnlib.training.run_training`.
    redundancy_threshold : float
        |Spearman rho| from which features are duplicates.
    n_permutations : int
        Shuffles per feature and fold for permutation importance.
    synthetic_effect_size : float, optional
        Effect size of the synthetic features for snapshot tables (None: no synthetic step).
    alpha : float
        FDR level of the univariate tests.

    Returns
    -------
    ValidationResult
    """
    kind = kind or table_kind(table)
    parts = split_table(table, id_col, label_col, split_col, holdout_fraction=holdout_fraction, seed=seed,
                        exclude=exclude, drop_suspects=False)
    X, y, g = parts.X, parts.y, parts.groups
    screen = screen_leaks(X, y, g, seed=seed)
    leakage = screen.single
    suspects = screen.dropped  # never every column
    clean = [c for c in X.columns if c not in set(suspects)]

    synthetic: list[str] = []
    X_ladder = X[clean]
    if kind == "snapshot" and synthetic_effect_size is not None:
        lab = "__label__"
        with_synth = add_synthetic_features(X[clean].assign(**{lab: y}), lab, effect_size=synthetic_effect_size,
                                            seed=seed)
        synthetic = [c for c in with_synth.columns if c not in X.columns and c != lab]
        X_ladder = pd.concat([X[clean], with_synth[synthetic].set_axis(X.index)], axis=1)
    ladder = feature_ladder(list(X_ladder.columns), kind, synthetic=synthetic)
    budget = dict(model=model, strategy=strategy, n_splits=n_splits, n_repeats=n_repeats, seed=seed, n_jobs=n_jobs)
    comparison = compare_feature_sets(X_ladder, y, g, ladder, n_bootstrap=n_bootstrap, **budget)

    univariate = univariate_tests(X[clean], y, g, alpha=alpha, seed=seed)
    selection = select_features(X, y, g, leakage=screen, redundancy_threshold=redundancy_threshold,
                                never={c: "synthetic column drawn from the label" for c in synthetic}, seed=seed)
    imp = importance(X[clean], y, g, n_permutations=n_permutations, **budget)
    check = compare_feature_sets(X, y, g, {"all candidates (suspects out)": clean, "chosen set": selection.features},
                                 n_bootstrap=n_bootstrap, **budget)
    settings = {**budget, "n_bootstrap": n_bootstrap, "holdout_fraction": holdout_fraction,
                "split_col": split_col, "exclude": list(exclude), "redundancy_threshold": redundancy_threshold,
                "n_permutations": n_permutations, "synthetic_effect_size": synthetic_effect_size, "alpha": alpha}
    return ValidationResult(kind=kind, X=X, y=y, groups=g, description=parts.description, ladder=ladder,
                            comparison=comparison, synthetic=synthetic, univariate=univariate,
                            clusters=selection.clusters, importance=imp, leakage=leakage, selection=selection,
                            check=check, settings=settings, screen=screen)
