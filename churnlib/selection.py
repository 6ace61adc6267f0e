"""Model selection without a winner's curse, and the check that CV and the holdout agree.

The statistics behind the choice that :func:`churnlib.training.run_training` makes; the plain words
are in :mod:`churnlib.model_report`.

* :func:`fold_scores` -- one candidate's score on each CV fold (every candidate is scored on the
  same folds, so two candidates can be compared fold by fold).
* :func:`paired_difference` -- the mean per-fold difference of two candidates with the corrected
  resampled t interval (Nadeau & Bengio 2003: the folds' training sets overlap, so the plain
  t interval is too narrow; the variance is inflated by ``1/J + n_test/n_train``).
* :func:`select_candidate` -- the leader by cross-validated score, every candidate compared to it
  paired on the same folds, and the **one-standard-error rule**: the simplest candidate (in
  :data:`SIMPLICITY` order) whose mean paired shortfall to the leader is at most one standard error
  of that shortfall is chosen. When the leader is clearly better than every other candidate, that
  is the leader itself.
* :func:`confirm_search` -- a bounded search run on part of the training rows and confirmed on the
  rest, which the search never saw; the tuned parameters are kept only when they beat the registry
  defaults there by more than one standard error, and the optimism (search CV score minus the
  confirmed score) is reported.
* :func:`compare_with_baseline` -- the chosen model against a default gradient-boosting model on
  the holdout, paired by a bootstrap over users.
* :func:`check_agreement` -- the holdout estimate against the CV interval and their combined
  uncertainty, and any CV fold whose score stands apart from the other folds, with the likely
  causes (leak, shift between the parts, small holdout, ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone

from churnlib import evaluation as ev
from churnlib.files import jsonable
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.models import Candidate, search_model
from churnlib.rank_metrics import average_precision, rank_auc

__all__ = [
    "BASELINE",
    "CAUSES",
    "SIMPLICITY",
    "STRATEGY_SIMPLICITY",
    "Agreement",
    "BaselineCheck",
    "SearchCheck",
    "Selection",
    "check_agreement",
    "compare_with_baseline",
    "confirm_search",
    "fold_scores",
    "paired_difference",
    "ranking_score",
    "select_candidate",
    "simplicity",
]

#: Models from simplest to most complex, by the size of the fitted model and so its cost to score and
#: to explain: one weight per column; 100 small boosted trees (15 leaves, depth 4, 31 leaves); 200 deep
#: trees; every training row kept (KNN compares each new user with all of them). Registry models
#: missing here rank last. The no-skill ``dummy`` is never chosen.
SIMPLICITY: tuple[str, ...] = ("logreg", "lightgbm", "xgboost", "hist_gb", "random_forest", "extra_trees", "knn")
#: Imbalance strategies from simplest to most complex: nothing, a weight, then resamplers by cost.
STRATEGY_SIMPLICITY: tuple[str, ...] = ("none", "class_weight", "undersample", "smote", "adasyn", "smoteenn")
#: The default gradient-boosting baseline every chosen model is held against: (model, strategy).
BASELINE: tuple[str, str] = ("hist_gb", "none")

_NO_SKILL = {"dummy"}


def simplicity(model: str, strategy: str) -> tuple[int, int]:
    """Sort key: smaller is simpler (model first, then imbalance strategy; unknown names last)."""
    m = SIMPLICITY.index(model) if model in SIMPLICITY else len(SIMPLICITY)
    s = STRATEGY_SIMPLICITY.index(strategy) if strategy in STRATEGY_SIMPLICITY else len(STRATEGY_SIMPLICITY)
    return m, s


def ranking_score(y: np.ndarray, p: np.ndarray, metric: str = "pr_auc") -> float:
    """ROC-AUC (``"roc_auc"``) or PR-AUC (``"pr_auc"``) of ``p`` against ``y``; NaN with one class."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if len(np.unique(y)) < 2:
        return float("nan")
    if metric == "roc_auc":
        return float(rank_auc(y, p[None, :])[0])
    if metric == "pr_auc":
        return float(average_precision(y, p))
    raise ValueError(f"unknown ranking metric {metric!r}: 'roc_auc' or 'pr_auc'")


def fold_scores(y: np.ndarray, oof: np.ndarray, splits: Sequence, metric: str = "pr_auc") -> np.ndarray:
    """Score of out-of-fold predictions on each CV fold.

    Parameters
    ----------
    y : array of 0/1, shape (n,)
    oof : array, shape (n_repeats, n)
        Out-of-fold probabilities (:func:`churnlib.evaluation.oof_predict` on ``splits``).
    splits : list of list of (train_idx, test_idx)
        The partitions of :func:`churnlib.evaluation.cv_splits`, one per repeat.
    metric : {"pr_auc", "roc_auc"}

    Returns
    -------
    numpy.ndarray, shape (n_repeats, n_splits)
    """
    y = np.asarray(y).astype(int)
    P = np.atleast_2d(oof)
    return np.array([[ranking_score(y[te], P[r, te], metric) for _, te in part] for r, part in enumerate(splits)])


def _test_train_ratio(splits: Sequence) -> float:
    return float(np.mean([len(te) / max(1, len(tr)) for part in splits for tr, te in part]))


def paired_difference(a: np.ndarray, b: np.ndarray, test_train_ratio: float,
                      level: float = 0.95) -> tuple[Interval, float]:
    """Mean per-fold difference ``a - b`` with the corrected resampled t interval.

    Parameters
    ----------
    a, b : arrays of the same shape
        Fold scores of two candidates on the same folds (:func:`fold_scores`).
    test_train_ratio : float
        Mean test rows over training rows of a fold (1/(K-1) for K-fold).
    level : float

    Returns
    -------
    (Interval, float)
        The mean difference with its interval, and its standard error
        ``sqrt((1/J + n_test/n_train) * s^2)`` over the J fold differences (NaN bounds when J < 2).
    """
    d = (np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).ravel()
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return Interval(float("nan")), float("nan")
    mean = float(d.mean())
    if len(d) < 2:
        return Interval(mean), float("nan")
    se = math.sqrt((1 / len(d) + test_train_ratio) * float(d.var(ddof=1)))
    t = float(stats.t.ppf((1 + level) / 2, len(d) - 1))
    return Interval(mean, mean - t * se, mean + t * se, level), se


# --------------------------------------------------------------------------------------------
# The choice among candidates
# --------------------------------------------------------------------------------------------

@dataclass
class Selection:
    """Candidates compared to the leader on the same folds, and the one chosen.

    Attributes
    ----------
    metric : str
        The selection metric (PR-AUC).
    table : pandas.DataFrame
        One row per evaluated candidate, leader first then by CV score: ``model``, ``strategy``,
        ``cv`` (pooled out-of-fold score), ``fold_mean``, ``shortfall`` (leader minus candidate,
        mean over folds) with ``shortfall_low``/``shortfall_high`` and ``se``, ``within_noise``
        (the leader is not clearly better: the interval covers 0), ``within_one_se``, ``eligible``
        (not the no-skill baseline), ``leader``, ``chosen``.
    leader, chosen : str
        Names ``"model / strategy"``.
    rule : {"leader", "one_standard_error"}
        ``"leader"`` when the leader itself is the simplest candidate within one standard error.
    n_folds : int
        Fold differences per comparison.
    level : float
    """

    metric: str
    table: pd.DataFrame
    leader: str
    chosen: str
    rule: str
    n_folds: int
    level: float = 0.95

    @property
    def within_noise(self) -> list[str]:
        """Eligible candidates other than the leader that the leader does not clearly beat."""
        t = self.table
        return t.loc[t["within_noise"] & t["eligible"] & ~t["leader"], "name"].tolist()

    @property
    def leader_clearly_best(self) -> bool:
        """The leader beats every other eligible candidate beyond the noise of the folds."""
        return not self.within_noise

    def no_skill_within_noise(self) -> bool | None:
        """Whether the leader is not clearly better than the no-skill baseline (None without one)."""
        rows = self.table[~self.table["eligible"]]
        return None if rows.empty else bool(rows["within_noise"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record for ``metrics.json``."""
        cols = ["model", "strategy", "cv", "fold_mean", "shortfall", "shortfall_low", "shortfall_high", "se",
                "within_noise", "within_one_se", "eligible", "leader", "chosen"]
        return jsonable({
            "metric": self.metric, "level": self.level, "n_folds": self.n_folds,
            "leader": self.leader, "chosen": self.chosen, "rule": self.rule, "simplicity": list(SIMPLICITY),
            "strategy_simplicity": list(STRATEGY_SIMPLICITY),
            "leader_clearly_best": self.leader_clearly_best, "within_noise_of_leader": self.within_noise,
            "no_skill_within_noise": self.no_skill_within_noise(),
            "rule_text": ("one-standard-error rule: the simplest candidate whose mean paired shortfall to the "
                          "leader on the same folds is at most one standard error (corrected resampled t); "
                          "simplicity order: " + ", ".join(SIMPLICITY) + "; then strategies "
                          + ", ".join(STRATEGY_SIMPLICITY)),
            "candidates": self.table[cols].to_dict(orient="records"),
        })


def select_candidate(candidates: Sequence[Candidate], y: np.ndarray, splits: Sequence, *,
                     metric: str = "pr_auc", level: float = 0.95) -> Selection:
    """Compare every candidate to the leader on the same folds and choose by the one-standard-error rule.

    Parameters
    ----------
    candidates : sequence of Candidate
        Evaluated on ``splits`` (their ``oof`` comes from those folds); failed ones are skipped.
    y : array of 0/1
        Training labels.
    splits : list of list of (train_idx, test_idx)
    metric : {"pr_auc", "roc_auc"}
    level : float
        Level of the paired intervals.

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        When no candidate other than the no-skill baseline was evaluated.
    """
    ok = [c for c in candidates if c.cv is not None and c.oof is not None]
    eligible = [c for c in ok if c.model not in _NO_SKILL]
    if not eligible:
        raise ValueError("no candidate other than the no-skill baseline was evaluated")
    leader = min(eligible, key=lambda c: (-c.cv.loc[metric, "value"], simplicity(c.model, c.strategy)))
    ratio = _test_train_ratio(splits)
    lead_scores = fold_scores(y, leader.oof, splits, metric)
    rows = []
    for c in ok:
        s = lead_scores if c is leader else fold_scores(y, c.oof, splits, metric)
        diff, se = paired_difference(lead_scores, s, ratio, level)
        if c is leader:
            within = one_se = True
        else:  # the leader is clearly better only when the whole interval of its lead is above 0
            within = not diff.above(0) if diff.known else diff.value <= 0
            one_se = diff.value <= 0 or (math.isfinite(se) and diff.value <= se)
        rows.append({"name": c.name, "model": c.model, "strategy": c.strategy,
                     "cv": float(c.cv.loc[metric, "value"]), "fold_mean": float(np.nanmean(s)),
                     "shortfall": diff.value, "shortfall_low": diff.low, "shortfall_high": diff.high, "se": se,
                     "within_noise": bool(within), "within_one_se": bool(one_se),
                     "eligible": c.model not in _NO_SKILL, "leader": c is leader,
                     "_simple": simplicity(c.model, c.strategy)})
    table = pd.DataFrame(rows)
    pool = table[table["eligible"] & table["within_one_se"]]
    chosen = pool.loc[pool["_simple"].idxmin(), "name"]
    table["chosen"] = table["name"] == chosen
    table = table.sort_values(["leader", "cv"], ascending=[False, False]).drop(columns="_simple").reset_index(drop=True)
    return Selection(metric=metric, table=table, leader=leader.name, chosen=chosen,
                     rule="leader" if chosen == leader.name else "one_standard_error",
                     n_folds=int(np.size(lead_scores)), level=level)


# --------------------------------------------------------------------------------------------
# A search confirmed on rows it did not use
# --------------------------------------------------------------------------------------------

@dataclass
class SearchCheck:
    """A bounded search run on one part of the training rows and confirmed on the other.

    Attributes
    ----------
    method : str
    budget : int
    params : dict
        Best parameters found (empty when there was nothing to tune).
    search_score : float
        Their cross-validated score on the search part: the number a search reports, optimistic
        because it is the best of ``budget`` tries.
    default_score, tuned_score : float
        Registry defaults and tuned parameters, fitted on the search part and scored on the
        confirmation part.
    gain : Interval
        ``tuned_score - default_score`` with a bootstrap interval over the confirmation part's users.
    gain_se : float
        Bootstrap standard error of the gain.
    kept : bool
        The gain exceeds one standard error (the defaults are the simpler choice).
    why : str
    rows_search, rows_confirm : int
    metric : str
    """

    method: str
    budget: int
    params: dict = field(default_factory=dict)
    search_score: float = float("nan")
    default_score: float = float("nan")
    tuned_score: float = float("nan")
    gain: Interval = field(default_factory=lambda: Interval(float("nan")))
    gain_se: float = float("nan")
    kept: bool = False
    why: str = "no search space or budget"
    rows_search: int = 0
    rows_confirm: int = 0
    metric: str = "pr_auc"

    @property
    def optimism(self) -> float:
        """Search CV score minus the tuned parameters' score on the confirmation part."""
        return float(self.search_score - self.tuned_score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (``metrics.json``: ``chosen.search``)."""
        return jsonable({
            "method": self.method, "budget": self.budget, "best_params": self.params,
            f"best_cv_{self.metric}": self.search_score, "kept": self.kept, "why": self.why,
            "confirmation": {"metric": self.metric, "rows_search": self.rows_search,
                             "rows_confirm": self.rows_confirm, "default": self.default_score,
                             "tuned": self.tuned_score, "gain": self.gain.to_dict(), "gain_se": self.gain_se},
            "optimism": self.optimism if math.isfinite(self.optimism) else None,
        })


def confirm_search(pipe, model: str, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                   n_splits: int = 3, budget: int = 6, method: str = "random", fraction: float = 0.3,
                   metric: str = "pr_auc", n_bootstrap: int = 200, seed: int = 0, n_jobs: int = 1) -> SearchCheck:
    """Search on part of the training rows, confirm on the rest, keep the tuned parameters only if confirmed.

    Parameters
    ----------
    pipe
        The chosen candidate's pipeline (registry defaults).
    model : str
        Registry name (selects the search space of :func:`churnlib.models.search_model`).
    X, y, groups
        Training part and user ids (a user's rows stay on one side).
    n_splits, budget, method
        As in :func:`churnlib.models.search_model`.
    fraction : float, default 0.3
        Share of the training rows set aside for the confirmation (stratified, group-aware; rounded
        to a whole number of folds, so 0.3 sets aside a third).
    metric : {"pr_auc", "roc_auc"}
    n_bootstrap, seed, n_jobs : int

    Returns
    -------
    SearchCheck
    """
    check = SearchCheck(method=method, budget=budget, metric=metric)
    y = np.asarray(y).astype(int)
    if budget <= 0:
        return check
    try:
        confirm = ev.holdout_split(y, groups, None, fraction, seed + 1)
    except ValueError as exc:  # too few rows of a class to set any aside
        check.why = f"too few rows to set a confirmation part aside ({exc}); search not run"
        return check
    a, b = ~confirm, confirm
    g_a = None if groups is None else np.asarray(groups)[a]
    params, score = search_model(pipe, model, X[a], y[a], g_a, n_splits=n_splits, budget=budget,
                                 method=method, seed=seed, n_jobs=n_jobs)
    check.rows_search, check.rows_confirm = int(a.sum()), int(b.sum())
    if not params:
        return check
    check.params, check.search_score = params, score
    y_b = y[b]
    p_def = clone(pipe).fit(X[a], y[a]).predict_proba(X[b])[:, 1]
    p_tun = clone(pipe).set_params(**params).fit(X[a], y[a]).predict_proba(X[b])[:, 1]
    check.default_score = ranking_score(y_b, p_def, metric)
    check.tuned_score = ranking_score(y_b, p_tun, metric)
    gain = check.tuned_score - check.default_score
    rng = np.random.default_rng(seed)
    draw = bootstrap_sampler(None if groups is None else np.asarray(groups)[b], len(y_b), rng)
    reps = []
    for _ in range(n_bootstrap):
        i = draw()
        reps.append(ranking_score(y_b[i], p_tun[i], metric) - ranking_score(y_b[i], p_def[i], metric))
    reps = np.asarray(reps, dtype=float)
    check.gain = Interval.from_samples(gain, reps)
    check.gain_se = float(np.nanstd(reps, ddof=1)) if np.isfinite(reps).sum() > 1 else float("nan")
    check.kept = bool(gain > 0 and (not math.isfinite(check.gain_se) or gain > check.gain_se))
    check.why = ("the tuned parameters beat the registry defaults on rows the search did not use by more than "
                 "one standard error" if check.kept else
                 "on rows the search did not use the tuned parameters do not beat the registry defaults by more "
                 "than one standard error; the defaults are kept")
    return check


# --------------------------------------------------------------------------------------------
# The default gradient-boosting baseline
# --------------------------------------------------------------------------------------------

@dataclass
class BaselineCheck:
    """The chosen model against the default gradient-boosting baseline on the holdout.

    Attributes
    ----------
    name : str
        The baseline, ``"hist_gb / none"`` (scikit-learn's HistGradientBoosting, registry defaults).
    holdout : pandas.DataFrame
        The baseline's holdout metrics (``value``/``low``/``high``).
    differences : dict of str -> Interval
        Chosen minus baseline per ranking metric, paired bootstrap over the holdout's users.
    metric : str
        The metric the verdict rests on (with ROC-AUC also required not to be worse).
    same_model : bool
        The chosen model is the baseline itself (default gradient boosting, untuned).
    """

    name: str
    holdout: pd.DataFrame
    differences: dict[str, Interval]
    metric: str = "pr_auc"
    same_model: bool = False

    @property
    def verdict(self) -> str:
        """``"same model"``, ``"better"``, ``"worse"`` or ``"no clear difference"``."""
        if self.same_model:
            return "same model"
        if any(d.below(0) for d in self.differences.values()):
            return "worse"
        if self.differences[self.metric].above(0):
            return "better"
        return "no clear difference"

    @property
    def beaten(self) -> bool:
        """The chosen model is clearly better than the baseline on the holdout."""
        return self.verdict == "better"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (``metrics.json``: ``baseline``)."""
        return jsonable({
            "model": self.name, "metric": self.metric, "same_model": self.same_model, "verdict": self.verdict,
            "beaten": self.beaten,
            "holdout": {m: {k: float(v) for k, v in r.items()} for m, r in self.holdout.iterrows()},
            "difference": {m: d.to_dict() for m, d in self.differences.items()},
        })


def compare_with_baseline(y_test: np.ndarray, p_chosen: np.ndarray, p_baseline: np.ndarray,
                          groups_test: np.ndarray | None = None, *, baseline_holdout: pd.DataFrame,
                          name: str = " / ".join(BASELINE), metric: str = "pr_auc", same_model: bool = False,
                          n_bootstrap: int = 200, seed: int = 0) -> BaselineCheck:
    """Paired bootstrap over the holdout's users: chosen model minus baseline, ROC-AUC and PR-AUC.

    Parameters
    ----------
    y_test : array of 0/1
    p_chosen, p_baseline : arrays
        Holdout probabilities of the final model and of the baseline (fitted on the same training
        rows and columns).
    groups_test : array, optional
        User ids (the bootstrap keeps a user's rows together).
    baseline_holdout : pandas.DataFrame
        The baseline's holdout metrics (for the record).
    name, metric, same_model
        See :class:`BaselineCheck`.
    n_bootstrap, seed : int

    Returns
    -------
    BaselineCheck
    """
    y = np.asarray(y_test).astype(int)
    rng = np.random.default_rng(seed)
    draw = bootstrap_sampler(groups_test, len(y), rng)
    metrics = ("roc_auc", "pr_auc")
    point = {m: ranking_score(y, p_chosen, m) - ranking_score(y, p_baseline, m) for m in metrics}
    reps = {m: [] for m in metrics}
    for _ in range(n_bootstrap):
        i = draw()
        for m in metrics:
            reps[m].append(ranking_score(y[i], p_chosen[i], m) - ranking_score(y[i], p_baseline[i], m))
    diffs = {m: Interval.from_samples(point[m], np.asarray(reps[m])) for m in metrics}
    return BaselineCheck(name=name, holdout=baseline_holdout, differences=diffs, metric=metric,
                         same_model=same_model)


# --------------------------------------------------------------------------------------------
# CV and holdout agreement
# --------------------------------------------------------------------------------------------

#: Likely causes of a disagreement, as codes (:mod:`churnlib.model_report` words them).
CAUSES: tuple[str, ...] = ("leak", "shift", "small_holdout", "optimism", "more_training_rows")


@dataclass
class Agreement:
    """Does the holdout confirm the cross-validated estimate, and do the folds agree with each other?

    Attributes
    ----------
    comparisons : pandas.DataFrame
        Index: metric (the holdout estimate *disagrees* when ``beyond_combined``; lying outside the
        CV interval alone is reported but expected often of a small holdout); ``cv``, ``cv_low``, ``cv_high``, ``holdout``, ``holdout_low``,
        ``holdout_high``, ``difference`` (holdout minus CV), ``z`` (the difference over the
        combined standard error of both estimates), ``outside_cv_interval``, ``beyond_combined``.
    folds : pandas.DataFrame
        One row per metric, repeat and fold: ``score``, ``se`` (bootstrap over the fold's users),
        ``z`` (its difference to the mean of the repeat's other folds over the pooled standard error
        of the folds), ``apart`` (``|z| > z_fold``).
    churn_rate_train, churn_rate_test : float
    shift_p : float
        Two-proportion test of the churn rates of the parts.
    n_test, n_test_churners : int
    split_given : bool
        The parts come from a split column (not a random holdout).
    z_fold : float
    """

    comparisons: pd.DataFrame
    folds: pd.DataFrame
    churn_rate_train: float
    churn_rate_test: float
    shift_p: float
    n_test: int
    n_test_churners: int
    split_given: bool = False
    z_fold: float = 3.0

    @property
    def holdout_flagged(self) -> list[str]:
        """Metrics whose holdout estimate differs from CV beyond their combined uncertainty: a disagreement."""
        c = self.comparisons
        return c.index[c["beyond_combined"]].tolist()

    @property
    def outside_cv_interval(self) -> list[str]:
        """Metrics whose holdout estimate lies outside the CV interval (with or without a disagreement).

        Alone this is weak evidence: a holdout smaller than the training part has the wider
        interval, so its estimate often falls outside the CV interval by chance.
        """
        c = self.comparisons
        return c.index[c["outside_cv_interval"]].tolist()

    @property
    def direction(self) -> str | None:
        """``"above"``/``"below"`` when the flagged (else the outside) holdout estimates lie above/below CV."""
        names = self.holdout_flagged or self.outside_cv_interval
        flagged = self.comparisons.loc[names, "difference"]
        if flagged.empty:
            return None
        return "above" if (flagged > 0).sum() >= (flagged < 0).sum() else "below"

    @property
    def folds_apart(self) -> pd.DataFrame:
        """The folds whose score stands apart from the other folds."""
        return self.folds[self.folds["apart"]]

    @property
    def agree(self) -> bool:
        """No holdout estimate flagged and no fold apart."""
        return not self.holdout_flagged and self.folds_apart.empty

    @property
    def small_holdout(self) -> bool:
        """Fewer than 100 churners in the holdout, or its ROC-AUC interval wider than 0.1."""
        c = self.comparisons
        wide = "roc_auc" in c.index and (c.loc["roc_auc", "holdout_high"] - c.loc["roc_auc", "holdout_low"]) > 0.1
        return self.n_test_churners < 100 or bool(wide)

    @property
    def causes(self) -> list[str]:
        """Likely causes, most likely first (codes of :data:`CAUSES`); empty when everything agrees."""
        if self.agree and not self.outside_cv_interval:
            return []
        out: list[str] = []
        high_fold = bool((self.folds_apart["z"] > 0).any())
        if high_fold or (self.direction == "below" and self.holdout_flagged):
            out.append("leak")
        # a random holdout differs from the training part only by chance; a split column (or churn
        # rates that differ) can separate different times, sources or kinds of users
        if self.shift_p < 0.05 or self.split_given:
            out.append("shift")
        if self.direction is not None and self.small_holdout:
            out.append("small_holdout")
        if self.direction == "below" and self.holdout_flagged:
            out.append("optimism")
        if self.direction == "above":
            out.append("more_training_rows")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (``metrics.json``: ``agreement``)."""
        return jsonable({
            "agree": self.agree, "holdout_flagged": self.holdout_flagged,
            "outside_cv_interval": self.outside_cv_interval, "direction": self.direction,
            "causes": self.causes,
            "holdout_vs_cv": {m: r.to_dict() for m, r in self.comparisons.iterrows()},
            "folds": self.folds.to_dict(orient="records"),
            "folds_apart": self.folds_apart.to_dict(orient="records"),
            "z_fold": self.z_fold, "churn_rate_train": self.churn_rate_train,
            "churn_rate_test": self.churn_rate_test, "churn_rate_shift_p": self.shift_p,
            "n_test": self.n_test, "n_test_churners": self.n_test_churners, "split_given": self.split_given,
            "small_holdout": self.small_holdout,
        })


def _se_from_interval(low: float, high: float, level: float = 0.95) -> float:
    return (high - low) / (2 * float(stats.norm.ppf((1 + level) / 2)))


def _two_proportion_p(y1: np.ndarray, y2: np.ndarray) -> float:
    n1, n2 = len(y1), len(y2)
    k1, k2 = float(np.sum(y1)), float(np.sum(y2))
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) if 0 < pooled < 1 else 0.0
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(k1 / n1 - k2 / n2) / se))


def check_agreement(cv: pd.DataFrame, holdout: pd.DataFrame, y_train: np.ndarray, oof: np.ndarray,
                    splits: Sequence, y_test: np.ndarray, groups_train: np.ndarray | None = None, *,
                    metrics: Sequence[str] = ("roc_auc", "pr_auc"), split_given: bool = False,
                    z_combined: float = 1.96, z_fold: float = 3.0, n_bootstrap: int = 200,
                    seed: int = 0) -> Agreement:
    """Compare the holdout estimate with the CV estimate, and each CV fold with the others.

    Parameters
    ----------
    cv, holdout : pandas.DataFrame
        Metric tables (``value``/``low``/``high``) of the chosen candidate's cross-validation and
        of the final model on the holdout.
    y_train, oof, splits
        Training labels, the chosen candidate's out-of-fold probabilities and the folds.
    y_test : array of 0/1
        Holdout labels.
    groups_train : array, optional
        User ids of the training part (each fold's bootstrap keeps a user's rows together).
    metrics : sequence of str
        Ranking metrics checked.
    split_given : bool
        The parts come from a split column.
    z_combined : float, default 1.96
        A difference beyond this many combined standard errors is flagged.
    z_fold : float, default 3.0
        A fold further than this many standard errors from the mean of the other folds stands apart
        (strict, since several folds are looked at and the fold's own bootstrap leaves out the
        variation from refitting).
    n_bootstrap, seed : int

    Returns
    -------
    Agreement
    """
    rows = {}
    for m in metrics:
        c, h = Interval.from_row(cv.loc[m]), Interval.from_row(holdout.loc[m])
        se = math.hypot(_se_from_interval(c.low, c.high), _se_from_interval(h.low, h.high))
        diff = h.value - c.value
        z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
        rows[m] = {"cv": c.value, "cv_low": c.low, "cv_high": c.high, "holdout": h.value,
                   "holdout_low": h.low, "holdout_high": h.high, "difference": diff, "z": z,
                   "outside_cv_interval": bool(c.known and not c.covers(h.value)),
                   "beyond_combined": bool(abs(z) > z_combined)}
    comparisons = pd.DataFrame.from_dict(rows, orient="index")

    y = np.asarray(y_train).astype(int)
    P = np.atleast_2d(oof)
    rng = np.random.default_rng(seed)
    fold_rows = []
    for r, part in enumerate(splits):
        for m in metrics:
            scores, ses = [], []
            for _, te in part:
                yt, pt = y[te], P[r, te]
                scores.append(ranking_score(yt, pt, m))
                draw = bootstrap_sampler(None if groups_train is None else np.asarray(groups_train)[te], len(te), rng)
                reps = np.array([ranking_score(yt[i], pt[i], m) for i in (draw() for _ in range(n_bootstrap))])
                ses.append(float(np.nanstd(reps, ddof=1)) if np.isfinite(reps).sum() > 1 else float("nan"))
            scores, ses = np.array(scores), np.array(ses)
            k = len(scores)
            # under "every fold scores the same", every fold has the same sampling error: the pooled one
            # (a fold's own bootstrap error shrinks as its score nears 1 and would exaggerate such a fold)
            common = math.sqrt(float(np.nanmean(ses ** 2))) if np.isfinite(ses).any() else float("nan")
            for i in range(k):
                others = np.delete(np.arange(k), i)
                se = common * math.sqrt(1 + 1 / len(others))
                d = scores[i] - np.nanmean(scores[others])
                z = d / se if se > 0 else (0.0 if d == 0 else math.copysign(math.inf, d))
                fold_rows.append({"metric": m, "repeat": r, "fold": i, "score": float(scores[i]),
                                  "se": float(ses[i]), "others_mean": float(np.nanmean(scores[others])),
                                  "z": float(z), "apart": bool(np.isfinite(d) and abs(z) > z_fold)})
    folds = pd.DataFrame(fold_rows, columns=["metric", "repeat", "fold", "score", "se", "others_mean", "z", "apart"])
    y_te = np.asarray(y_test).astype(int)
    return Agreement(comparisons=comparisons, folds=folds, churn_rate_train=float(y.mean()),
                     churn_rate_test=float(y_te.mean()), shift_p=_two_proportion_p(y, y_te),
                     n_test=int(len(y_te)), n_test_churners=int(y_te.sum()), split_given=split_given,
                     z_fold=z_fold)
