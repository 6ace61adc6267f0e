"""evaluation.metric_values computes ROC-AUC and PR-AUC without scikit-learn's validation: same values."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churnlib import evaluation as ev


@pytest.mark.parametrize("seed", range(6))
def test_ranking_metrics_equal_scikit_learn_with_ties_and_bootstrap_replicates(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = (rng.random(n) < rng.uniform(0.05, 0.5)).astype(int)
    y[:2] = [0, 1]
    p = np.round(rng.random(n), int(rng.integers(1, 4)))  # coarse rounding: many ties
    for idx in [np.arange(n), rng.integers(0, n, n), rng.integers(0, n, n)]:
        if len(np.unique(y[idx])) < 2:
            continue
        got = ev.metric_values(y[idx], p[idx], p[idx] >= 0.5)
        assert got["roc_auc"] == pytest.approx(roc_auc_score(y[idx], p[idx]), abs=1e-12)
        assert got["pr_auc"] == pytest.approx(average_precision_score(y[idx], p[idx]), abs=1e-12)


def test_one_class_gives_no_ranking_metric():
    got = ev.metric_values(np.zeros(10, int), np.linspace(0, 1, 10), np.zeros(10, bool))
    assert np.isnan(got["roc_auc"]) and np.isnan(got["pr_auc"])


def test_mean_ranking_scores_average_the_repeats_and_say_nan_for_one_class():
    from churnlib.rank_metrics import mean_ranking_scores

    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.2).astype(int)
    P = rng.random((3, 200))
    roc, pr = mean_ranking_scores(y, P)
    assert roc == pytest.approx(np.mean([roc_auc_score(y, q) for q in P]), abs=1e-12)
    assert pr == pytest.approx(np.mean([average_precision_score(y, q) for q in P]), abs=1e-12)
    assert all(np.isnan(mean_ranking_scores(np.zeros(5, int), P[:, :5])))
