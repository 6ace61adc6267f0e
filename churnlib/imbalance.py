"""Imbalance strategies compared with no rebalancing, paired on the same folds and users.

The statistics of ``notebooks/04_imbalance.ipynb`` (its plain words are in
:mod:`churnlib.model_report`). Every strategy is evaluated by :func:`churnlib.models.compare_models`
on the same CV splits, so each row's out-of-fold prediction comes from a model that never saw it,
for every strategy alike. A strategy is then compared with the same model **without** rebalancing
on those same rows: the difference in PR-AUC (and ROC-AUC, Brier score) is computed on the pooled
out-of-fold predictions and on every bootstrap draw of users (the same draws for both), which gives
a 95% interval of the *difference* -- a paired comparison, far tighter than two overlapping
intervals. A strategy brings a **clear gain** only when that interval lies above 0.

* :func:`compare_strategies` -- models x strategies, and the paired differences to ``"none"``.
* :func:`paired_differences` -- the paired comparison of candidates already evaluated.
* :func:`gain_verdict` / :func:`strategy_findings` -- the verdicts ``04_imbalance`` prints.
* :func:`leak_inflates` -- what resampling before the split does to the scores
  (:func:`churnlib.models.resampling_leak_demo`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from churnlib import evaluation as ev
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.models import STRATEGIES, Candidate, compare_models
from churnlib.rank_metrics import average_precision, mean_ranking_scores

__all__ = [
    "PAIRED_METRICS",
    "StrategyComparison",
    "StrategyFindings",
    "compare_strategies",
    "gain_verdict",
    "leak_inflates",
    "paired_differences",
    "strategy_findings",
]

#: Metrics compared pairwise with the baseline strategy (PR-AUC decides the verdict).
PAIRED_METRICS: tuple[str, ...] = ("pr_auc", "roc_auc", "brier")


def _scores(y: np.ndarray, P: np.ndarray, idx) -> np.ndarray:
    """PR-AUC, ROC-AUC and Brier score of probabilities ``P`` (repeats x rows) on rows ``idx``,
    averaged over repeats as :func:`churnlib.evaluation.evaluate_predictions` averages them
    (the AUCs are NaN when ``idx`` holds one class only)."""
    yy, Q = y[idx], P[:, idx]
    brier = float(np.mean([np.mean((q - yy) ** 2) for q in Q]))
    roc, pr = mean_ranking_scores(yy, Q)
    return np.array([pr, roc, brier])


def gain_verdict(difference: Interval) -> str:
    """Verdict on a paired difference in PR-AUC (strategy minus no rebalancing).

    Returns
    -------
    str
        ``"clear gain"`` when the interval lies above 0, ``"clear loss"`` when it lies below 0,
        else ``"no clear gain"`` (also when the interval is unknown).
    """
    if difference.above(0):
        return "clear gain"
    if difference.below(0):
        return "clear loss"
    return "no clear gain"


def paired_differences(candidates: Sequence[Candidate], y: np.ndarray, groups: np.ndarray | None, splits, *,
                       baseline: str = "none", n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each strategy minus the same model's ``baseline`` strategy, on the same rows, folds and users.

    Parameters
    ----------
    candidates : sequence of Candidate
        Evaluated on ``splits`` (:func:`churnlib.models.compare_models`); failed ones are skipped.
    y : array of 0/1
        Training labels.
    groups : array, optional
        User ids: the bootstrap resamples users, keeping their rows together.
    splits : list of list of (train, test)
        The CV partitions the candidates were evaluated on (:func:`churnlib.evaluation.cv_splits`).
    baseline : str, default "none"
        The strategy every other strategy is compared with.
    n_bootstrap : int
        Bootstrap draws; the same draws score both sides of every difference (and, with the same
        ``seed``, they are the draws behind each candidate's own intervals).
    seed : int

    Returns
    -------
    pandas.DataFrame
        Index ``(model, strategy)`` for every candidate other than the baseline whose model has a
        baseline candidate; for each of :data:`PAIRED_METRICS` ``delta_<metric>`` with ``_low`` and
        ``_high`` (95% interval of the paired difference); ``folds_better`` (CV folds in which the
        strategy's PR-AUC is higher) of ``n_folds``; ``verdict`` (:func:`gain_verdict` of the
        PR-AUC difference) and ``brier_verdict`` (``"worse calibrated"``/``"better calibrated"`` when
        the Brier difference interval lies above/below 0, else ``"no clear change"``).
    """
    y = np.asarray(y).astype(int)
    ok = [c for c in candidates if c.oof is not None]
    base = {c.model: c for c in ok if c.strategy == baseline}
    pairs = [(c, base[c.model]) for c in ok if c.strategy != baseline and c.model in base]
    cols = ["model", "strategy"] + [f"delta_{m}{s}" for m in PAIRED_METRICS for s in ("", "_low", "_high")] + [
        "folds_better", "n_folds", "verdict", "brier_verdict"]
    if not pairs:
        return pd.DataFrame(columns=cols).set_index(["model", "strategy"])
    used = list({id(c): c for pair in pairs for c in pair}.values())
    pos = {id(c): k for k, c in enumerate(used)}
    point = np.array([_scores(y, c.oof, slice(None)) for c in used])  # (candidates, metrics)
    draw = bootstrap_sampler(groups, len(y), np.random.default_rng(seed))
    reps = np.array([[_scores(y, c.oof, idx) for c in used] for idx in (draw() for _ in range(n_bootstrap))])
    reps = reps.reshape(n_bootstrap, len(used), len(PAIRED_METRICS))
    folds = [(r, test) for r, part in enumerate(splits) for _, test in part]
    fold_ap = np.array([[average_precision(y[test], c.oof[r, test]) if len(np.unique(y[test])) == 2 else np.nan
                         for r, test in folds] for c in used])  # (candidates, folds)
    rows = []
    for c, b in pairs:
        i, j = pos[id(c)], pos[id(b)]
        row: dict = {"model": c.model, "strategy": c.strategy}
        for k, m in enumerate(PAIRED_METRICS):
            value = point[i, k] - point[j, k]
            iv = Interval.from_samples(value, reps[:, i, k] - reps[:, j, k]) if n_bootstrap else Interval(value)
            row[f"delta_{m}"], row[f"delta_{m}_low"], row[f"delta_{m}_high"] = iv.as_tuple()
        row["folds_better"] = int(np.sum(fold_ap[i] > fold_ap[j]))
        row["n_folds"] = len(folds)
        row["verdict"] = gain_verdict(Interval.from_row(row, "delta_pr_auc"))
        brier = Interval.from_row(row, "delta_brier")
        row["brier_verdict"] = ("worse calibrated" if brier.above(0) else "better calibrated" if brier.below(0)
                                else "no clear change")
        rows.append(row)
    return pd.DataFrame(rows, columns=cols).set_index(["model", "strategy"])


@dataclass
class StrategyComparison:
    """Models x imbalance strategies on the same CV splits, and their paired differences to the baseline.

    Attributes
    ----------
    candidates : list of Candidate
        :func:`churnlib.models.compare_models` output.
    paired : pandas.DataFrame
        :func:`paired_differences` of the candidates.
    baseline : str
        The strategy compared against (``"none"``).
    settings : dict
        CV and bootstrap settings.
    """

    candidates: list[Candidate]
    paired: pd.DataFrame
    baseline: str = "none"
    settings: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[Candidate]:
        """Candidates that could not run on this data (e.g. a resampler without enough neighbours)."""
        return [c for c in self.candidates if c.error]


def compare_strategies(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None = None, *,
                       models: Sequence[str] = ("logreg",), strategies: Sequence[str] = STRATEGIES,
                       baseline: str = "none", n_splits: int = 3, n_repeats: int = 1, n_bootstrap: int = 200,
                       seed: int = 0, n_jobs: int = 1) -> StrategyComparison:
    """Evaluate every model x strategy on the same CV splits, then pair each strategy with ``baseline``.

    Parameters
    ----------
    X, y, groups
        Training features, labels and user ids (group-aware folds when ids repeat).
    models, strategies : sequences of str
        As in :func:`churnlib.models.compare_models` (include ``baseline`` among the strategies to
        get paired differences).
    baseline : str, default "none"
    n_splits, n_repeats, n_bootstrap, seed, n_jobs
        As in :func:`churnlib.models.compare_models`; the paired bootstrap uses the same seed.

    Returns
    -------
    StrategyComparison
    """
    y = np.asarray(y).astype(int)
    candidates = compare_models(X, y, groups, models=models, strategies=strategies, n_splits=n_splits,
                                n_repeats=n_repeats, n_bootstrap=n_bootstrap, seed=seed, n_jobs=n_jobs)
    splits = ev.cv_splits(y, groups, n_splits, n_repeats, seed)  # the splits compare_models used
    paired = paired_differences(candidates, y, groups, splits, baseline=baseline, n_bootstrap=n_bootstrap,
                                seed=seed)
    settings = {"models": list(models), "strategies": list(strategies), "n_splits": n_splits,
                "n_repeats": n_repeats, "n_bootstrap": n_bootstrap, "seed": seed}
    return StrategyComparison(candidates, paired, baseline, settings)


@dataclass(frozen=True)
class StrategyFindings:
    """What ``04_imbalance`` concludes.

    Attributes
    ----------
    best : Candidate
        The candidate with the highest cross-validated PR-AUC.
    plain : Candidate or None
        The same model without rebalancing (None when it was not evaluated).
    gain : Interval or None
        Paired PR-AUC difference best minus plain (None when the best is plain or there is no plain).
    verdict : str or None
        :func:`gain_verdict` of ``gain``.
    worse_calibrated : list of str
        Candidates whose Brier score is clearly worse than their model's without rebalancing (the
        paired interval of the difference lies above 0): their probabilities need calibrating.
    """

    best: Candidate
    plain: Candidate | None
    gain: Interval | None
    verdict: str | None
    worse_calibrated: list[str]


def strategy_findings(comparison: StrategyComparison) -> StrategyFindings:
    """The best strategy by PR-AUC, and whether it clearly beats no rebalancing (paired)."""
    ok = [c for c in comparison.candidates if c.cv is not None]
    if not ok:
        raise ValueError("no candidate could be evaluated")
    best = max(ok, key=lambda c: c.cv.loc["pr_auc", "value"])
    plain = next((c for c in ok if c.model == best.model and c.strategy == comparison.baseline), None)
    gain = verdict = None
    paired = comparison.paired
    if plain is not None and plain is not best and (best.model, best.strategy) in paired.index:
        gain = Interval.from_row(paired.loc[(best.model, best.strategy)], "delta_pr_auc")
        verdict = gain_verdict(gain)
    worse = [f"{m} / {s}" for (m, s), r in paired.iterrows() if r["brier_verdict"] == "worse calibrated"]
    return StrategyFindings(best, plain, gain, verdict, worse)


def leak_inflates(demo: pd.DataFrame) -> bool:
    """True when resampling before the split scores a higher ROC-AUC than resampling inside the
    training folds (a :func:`churnlib.models.resampling_leak_demo` result): the leak inflates."""
    right = demo.loc[[i for i in demo.index if "correct" in i]].iloc[0]
    leaky = demo.loc[[i for i in demo.index if "leaky" in i]].iloc[0]
    return bool(leaky["roc_auc"] > right["roc_auc"])
