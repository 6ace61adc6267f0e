"""Imbalance strategies against no rebalancing: the paired comparison and the verdicts 04_imbalance prints."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlib import evaluation as ev
from churnlib import imbalance as I
from churnlib import imbalance_report as IR
from churnlib.intervals import Interval
from churnlib.models import Candidate, feature_frame

FAST = dict(n_bootstrap=100, seed=0)


def _labels(n: int = 600, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < 0.15).astype(int)


def _candidate(model: str, strategy: str, y: np.ndarray, oof: np.ndarray, groups=None) -> Candidate:
    """A candidate evaluated on given out-of-fold predictions (no model fitted)."""
    oof = np.atleast_2d(oof)
    cv = ev.evaluate_predictions(y, oof, oof >= 0.5, groups, n_bootstrap=FAST["n_bootstrap"], seed=FAST["seed"])
    return Candidate(model, strategy, cv=cv, oof=oof)


def _scores(y: np.ndarray, strength: float, noise: np.ndarray) -> np.ndarray:
    """Probabilities that rank churners higher by ``strength``, sharing the noise vector ``noise``."""
    z = strength * y + noise
    return 1 / (1 + np.exp(-z))


def test_gain_verdict_needs_the_whole_interval_above_zero():
    assert I.gain_verdict(Interval(0.03, 0.001, 0.06)) == "clear gain"
    assert I.gain_verdict(Interval(0.03, -0.001, 0.06)) == "no clear gain"
    assert I.gain_verdict(Interval(-0.03, -0.06, -0.001)) == "clear loss"
    assert I.gain_verdict(Interval(0.03)) == "no clear gain"  # no interval, no claim


def test_a_strategy_identical_to_none_differs_by_exactly_zero():
    y = _labels()
    noise = np.random.default_rng(1).normal(size=len(y))
    p = _scores(y, 1.0, noise)
    cands = [_candidate("logreg", "none", y, p), _candidate("logreg", "smote", y, p.copy())]
    splits = ev.cv_splits(y, None, 3, 1, 0)
    t = I.paired_differences(cands, y, None, splits, **FAST)
    r = t.loc[("logreg", "smote")]
    for m in I.PAIRED_METRICS:
        assert r[f"delta_{m}"] == r[f"delta_{m}_low"] == r[f"delta_{m}_high"] == 0
    assert r["verdict"] == "no clear gain" and r["folds_better"] == 0 and r["n_folds"] == 3
    assert r["brier_verdict"] == "no clear change"


def test_paired_interval_finds_a_gain_that_overlapping_intervals_hide():
    """Same users, shared noise: the two PR-AUC intervals overlap, the paired difference is clearly > 0."""
    y = _labels(800, seed=2)
    noise = np.random.default_rng(2).normal(size=len(y))
    plain, better = _scores(y, 1.0, noise), _scores(y, 1.25, noise)
    cands = [_candidate("m", "none", y, plain), _candidate("m", "class_weight", y, better)]
    a, b = (Interval.from_row(c.cv.loc["pr_auc"]) for c in cands)
    assert a.overlaps(b)  # the old rule (best low <= plain value) would call this "no clear gain"
    assert b.low <= a.value
    t = I.paired_differences(cands, y, None, ev.cv_splits(y, None, 4, 1, 0), **FAST)
    r = t.loc[("m", "class_weight")]
    assert r["verdict"] == "clear gain" and r["delta_pr_auc_low"] > 0 and r["folds_better"] == 4
    # the point difference is the difference of the two candidates' reported values
    assert r["delta_pr_auc"] == pytest.approx(b.value - a.value, abs=1e-12)
    roc = [c.cv.loc["roc_auc", "value"] for c in cands]
    assert r["delta_roc_auc"] == pytest.approx(roc[1] - roc[0], abs=1e-12)
    worse = [_candidate("m", "none", y, plain), _candidate("m", "undersample", y, _scores(y, 0.6, noise))]
    assert I.paired_differences(worse, y, None, ev.cv_splits(y, None, 4, 1, 0), **FAST).loc[
        ("m", "undersample"), "verdict"] == "clear loss"


def test_pairs_are_within_a_model_and_skip_failures_and_models_without_baseline():
    y = _labels(300, seed=3)
    noise = np.random.default_rng(3).normal(size=len(y))
    cands = [_candidate("logreg", "none", y, _scores(y, 1, noise)),
             _candidate("logreg", "smote", y, _scores(y, 1.1, noise)),
             Candidate("logreg", "adasyn", error="ValueError: no neighbours"),
             _candidate("lightgbm", "class_weight", y, _scores(y, 2, noise))]
    t = I.paired_differences(cands, y, None, ev.cv_splits(y, None, 3, 1, 0), **FAST)
    assert list(t.index) == [("logreg", "smote")]
    empty = I.paired_differences(cands[1:], y, None, ev.cv_splits(y, None, 3, 1, 0), **FAST)
    assert empty.empty and "verdict" in empty.columns


def test_user_bootstrap_keeps_rows_together_and_is_deterministic():
    y = np.repeat(_labels(200, seed=4), 2)
    groups = np.repeat(np.arange(200), 2)
    noise = np.random.default_rng(4).normal(size=len(y))
    cands = [_candidate("m", "none", y, _scores(y, 1, noise), groups),
             _candidate("m", "smote", y, _scores(y, 1.2, noise), groups)]
    splits = ev.cv_splits(y, groups, 3, 1, 0)
    a = I.paired_differences(cands, y, groups, splits, **FAST)
    b = I.paired_differences(cands, y, groups, splits, **FAST)
    pd.testing.assert_frame_equal(a, b)
    other = I.paired_differences(cands, y, groups, splits, n_bootstrap=100, seed=1)
    assert other.loc[("m", "smote"), "delta_pr_auc_low"] != a.loc[("m", "smote"), "delta_pr_auc_low"]


def test_findings_name_the_best_and_the_strategies_that_distort_probabilities():
    y = _labels(800, seed=5)
    noise = np.random.default_rng(5).normal(size=len(y))
    plain = _scores(y, 1.0, noise)
    inflated = np.sqrt(plain)  # same ranking, churn made to look more common: worse Brier, same PR-AUC
    cands = [_candidate("m", "none", y, plain), _candidate("m", "class_weight", y, inflated)]
    comp = I.StrategyComparison(cands, I.paired_differences(cands, y, None, ev.cv_splits(y, None, 3, 1, 0), **FAST))
    f = I.strategy_findings(comp)
    assert f.plain is cands[0] and f.worse_calibrated == ["m / class_weight"]
    text = IR.strategy_statement(comp)
    assert "clearly worsens the Brier score for m / class_weight" in text
    if f.best is f.plain:
        assert f.verdict is None and "No rebalancing strategy ranks churners better" in text
    else:
        assert f.verdict == "no clear gain" and "**no clear gain**" in text

    better = [_candidate("m", "none", y, plain), _candidate("m", "smote", y, _scores(y, 1.3, noise))]
    comp = I.StrategyComparison(better, I.paired_differences(better, y, None, ev.cv_splits(y, None, 3, 1, 0), **FAST))
    f = I.strategy_findings(comp)
    assert f.best.strategy == "smote" and f.verdict == "clear gain" and f.gain.above(0)
    assert "**clear gain**" in IR.strategy_statement(comp)
    numbers = IR.key_numbers(Interval(0.15, 0.13, 0.17), comp,
                             pd.DataFrame({"roc_auc": [0.7, 0.9], "pr_auc": [0.3, 0.8], "f1": [0.3, 0.8]},
                                          index=["inside folds (correct)", "before the split (leaky)"]), "smote")
    assert numbers["Gain over no rebalancing (paired PR-AUC)"].endswith(": clear gain")


def test_leak_verdict_follows_the_scores():
    demo = pd.DataFrame({"roc_auc": [0.70, 0.93], "pr_auc": [0.30, 0.90], "f1": [0.3, 0.85],
                         "test_churn_rate": [0.1, 0.5]},
                        index=["inside folds (correct)", "before the split (leaky)"])
    assert I.leak_inflates(demo)
    assert "would not hold on real customers" in IR.leak_statement(demo, "random_forest", "smote")
    same = demo.assign(roc_auc=[0.70, 0.69])
    assert not I.leak_inflates(same)
    assert "does not inflate" in IR.leak_statement(same, "random_forest", "smote")


def test_compare_strategies_pairs_real_candidates_on_their_own_splits():
    rng = np.random.default_rng(6)
    n = 400
    x1, x2 = rng.normal(size=(2, n))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2 + 1.5 * x1)))).astype(int)
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": x1, "x2": x2, "churned": y})
    X = feature_frame(t, "user_id", "churned")
    comp = I.compare_strategies(X, y, t["user_id"].to_numpy(), models=("logreg",),
                                strategies=("none", "class_weight"), n_splits=3, n_bootstrap=40, seed=0)
    assert [c.name for c in comp.candidates] == ["logreg / none", "logreg / class_weight"] and not comp.failed
    r = comp.paired.loc[("logreg", "class_weight")]
    none, cw = comp.candidates
    assert r["delta_pr_auc"] == pytest.approx(cw.cv.loc["pr_auc", "value"] - none.cv.loc["pr_auc", "value"], abs=1e-12)
    assert r["delta_brier"] == pytest.approx(cw.cv.loc["brier", "value"] - none.cv.loc["brier", "value"], abs=1e-12)
    assert r["delta_pr_auc_low"] <= r["delta_pr_auc"] <= r["delta_pr_auc_high"]
    assert r["brier_verdict"] == "worse calibrated"  # class weights make churn look far more common
    table = IR.paired_table(comp)
    assert list(table.index) == [("logreg", "class_weight")] and "(" in table.iloc[0]["Δ PR-AUC vs none"]
