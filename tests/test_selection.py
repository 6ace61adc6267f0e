"""Selection without a winner's curse, and CV-holdout agreement (churnlib.selection, model_report words)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnlib import evaluation as ev
from churnlib import model_report as R
from churnlib import models as M
from churnlib import selection as S
from churnlib import training as T
from churnlib.models import Candidate


def scored(y: np.ndarray, oof: np.ndarray, model: str, strategy: str = "none") -> Candidate:
    """A candidate as compare_models makes it, from out-of-fold probabilities."""
    cv = ev.evaluate_predictions(y, oof, oof >= 0.5, n_bootstrap=0)
    return Candidate(model, strategy, cv=cv, oof=np.atleast_2d(oof))


@pytest.fixture
def folds():
    """Labels, five folds and a fresh random generator (each test draws the same numbers)."""
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.3).astype(int)
    return y, ev.cv_splits(y, None, n_splits=5, n_repeats=1, seed=0), rng


def informative(y, rng, strength=1.5):
    return 1 / (1 + np.exp(-(strength * (y - 0.5) + rng.normal(size=len(y)))))


# --- paired comparison and the rule ------------------------------------------------------------

def test_simplicity_order_ranks_small_models_first_and_covers_the_registry():
    assert S.simplicity("logreg", "none") < S.simplicity("logreg", "smote") < S.simplicity("lightgbm", "none")
    # small boosted models before forests of deep trees, and KNN (keeps every training row) last
    assert S.simplicity("lightgbm", "smote") < S.simplicity("random_forest", "none") < S.simplicity("knn", "none")
    assert S.SIMPLICITY[0] == "logreg" and "dummy" not in S.SIMPLICITY
    assert set(S.SIMPLICITY) == set(M.MODELS) - {"dummy"}


def test_paired_difference_is_zero_for_identical_scores_and_corrected_otherwise():
    a = np.array([[0.70, 0.72, 0.68, 0.71, 0.69]])
    iv, se = S.paired_difference(a, a, 0.25)
    assert iv.value == 0 and iv.low == 0 and iv.high == 0 and se == 0
    b = a - np.array([[0.01, 0.03, -0.01, 0.02, 0.0]])
    iv, se = S.paired_difference(a, b, 0.25)
    d = (a - b).ravel()
    naive = d.std(ddof=1) / np.sqrt(len(d))
    assert se > naive  # the overlap of training folds widens the interval
    assert iv.value == pytest.approx(d.mean()) and iv.low < iv.value < iv.high


def test_identical_candidates_are_within_noise_and_the_simpler_one_is_chosen(folds):
    y, splits, rng = folds
    p = informative(y, rng)
    complex_ = scored(y, p, "xgboost")
    simple = scored(y, p, "logreg", "class_weight")
    complex_.cv.loc["pr_auc", "value"] += 0.01  # the complex one leads on paper
    sel = S.select_candidate([complex_, simple, scored(y, np.full(len(y), y.mean()), "dummy")], y, splits)
    assert sel.leader == "xgboost / none"
    assert sel.within_noise == ["logreg / class_weight"] and not sel.leader_clearly_best
    assert sel.chosen == "logreg / class_weight" and sel.rule == "one_standard_error"
    assert sel.no_skill_within_noise() is False
    record = json.loads(json.dumps(sel.to_dict()))
    assert record["chosen"] == "logreg / class_weight" and len(record["candidates"]) == 3


def test_a_clearly_better_leader_is_kept_even_when_complex(folds):
    y, splits, rng = folds
    strong = scored(y, informative(y, rng, 3.0), "xgboost")
    weak = scored(y, rng.random(len(y)), "logreg")
    sel = S.select_candidate([weak, strong], y, splits)
    assert sel.chosen == sel.leader == "xgboost / none" and sel.rule == "leader" and sel.leader_clearly_best
    row = sel.table.set_index("name").loc["logreg / none"]
    assert row["shortfall_low"] > 0 and not row["within_noise"]
    assert any("leads clearly" in s for s in R.selection_sentences({"selection": sel.to_dict()}))


# --- a search confirmed on rows it did not use --------------------------------------------------

def planted(n=600, seed=0, shuffle=False):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X["a"] - 1.5)))).astype(int)
    if shuffle:
        y = rng.permutation(y)
    return X, y, np.array([f"u{i}" for i in range(n)])


def test_search_on_noise_is_not_kept_and_its_optimism_is_reported():
    X, y, g = planted(shuffle=True)
    check = S.confirm_search(M.make_pipeline("knn"), "knn", X, y, g, budget=6, seed=0)
    assert check.rows_search + check.rows_confirm == len(y) and check.rows_confirm > 0.25 * len(y)
    assert not check.kept and check.params
    assert check.optimism == pytest.approx(check.search_score - check.tuned_score)
    d = check.to_dict()
    assert d["kept"] is False and d["confirmation"]["rows_search"] == check.rows_search
    assert "defaults kept" in R.search_sentence({"chosen": {"search": d}})


def test_a_real_gain_is_confirmed_and_kept():
    X, y, g = planted()
    bad_default = M.make_pipeline("knn").set_params(model__n_neighbors=1)  # 0/1 scores: a poor ranking
    check = S.confirm_search(bad_default, "knn", X, y, g, budget=6, seed=0)
    assert check.kept and check.gain.low > 0 and check.tuned_score > check.default_score


def test_no_budget_no_search():
    X, y, g = planted(n=100)
    check = S.confirm_search(M.make_pipeline("logreg"), "logreg", X, y, g, budget=0)
    assert not check.kept and not check.params and check.rows_search == 0


# --- the default gradient-boosting baseline -------------------------------------------------------

def test_baseline_verdicts(folds):
    y, _, rng = folds
    good, noise = informative(y, rng, 3.0), rng.random(len(y))
    h = pd.DataFrame({"value": [0.5], "low": [0.4], "high": [0.6]}, index=["roc_auc"])
    worse = S.compare_with_baseline(y, noise, good, baseline_holdout=h, n_bootstrap=100)
    assert worse.verdict == "worse" and not worse.beaten and worse.differences["roc_auc"].below(0)
    better = S.compare_with_baseline(y, good, noise, baseline_holdout=h, n_bootstrap=100)
    assert better.verdict == "better" and better.beaten
    tie = S.compare_with_baseline(y, good, good, baseline_holdout=h, n_bootstrap=100)
    assert tie.verdict == "no clear difference"
    text = R.baseline_sentence({"baseline": worse.to_dict()})
    assert "does better than the chosen model" in text


# --- CV and holdout agreement ----------------------------------------------------------------------

def metric_table(y, p, n_bootstrap=200):
    return ev.evaluate_predictions(y, p, p >= 0.5, n_bootstrap=n_bootstrap, seed=1)


def test_holdout_from_the_same_process_agrees(folds):
    y, splits, rng = folds
    oof = informative(y, rng)
    y_te = (rng.random(400) < 0.3).astype(int)
    p_te = informative(y_te, rng)
    a = S.check_agreement(metric_table(y, oof), metric_table(y_te, p_te), y, oof[None], splits, y_te)
    assert a.agree and not a.holdout_flagged and a.folds_apart.empty and a.causes == []
    assert "agree" in R.agreement_sentences({"agreement": a.to_dict()})[0]


def test_a_planted_shift_between_the_parts_is_flagged(folds):
    y, splits, rng = folds
    oof = informative(y, rng, 3.0)
    y_te = (rng.random(400) < 0.5).astype(int)  # other churn rate, and the relation is gone
    p_te = rng.random(400)
    a = S.check_agreement(metric_table(y, oof), metric_table(y_te, p_te), y, oof[None], splits, y_te,
                          split_given=True)
    assert not a.agree and "roc_auc" in a.holdout_flagged and a.direction == "below"
    assert "shift" in a.causes and a.shift_p < 0.05
    words = " ".join(R.agreement_sentences({"agreement": a.to_dict(), "settings": {"n_splits": 5}}))
    assert "disagrees with cross-validation" in words and "shift between the parts" in words
    assert any(s.startswith("Caution") for s in R.summary_sentences({"agreement": a.to_dict()}))


def test_a_fold_that_stands_apart_is_flagged_as_a_possible_leak(folds):
    y, splits, rng = folds
    oof = informative(y, rng, 1.0)
    leaky = splits[0][2][1]
    oof[leaky] = 0.05 + 0.9 * y[leaky]  # one fold scored perfectly: a leak in those rows
    a = S.check_agreement(metric_table(y, oof), metric_table(y, oof), y, oof[None], splits, y)
    apart = a.folds_apart
    assert set(apart["fold"]) == {2} and (apart["z"] > 0).all()
    assert not a.agree and a.causes[0] == "leak"
    assert any("stands apart" in s for s in R.agreement_sentences({"agreement": a.to_dict()}))


def test_small_holdout_outside_the_cv_interval_alone_is_only_noted(folds):
    y, splits, rng = folds
    oof = informative(y, rng)
    cv = metric_table(y, oof)
    ho = cv.copy()
    ho.loc["roc_auc", "value"] = cv.loc["roc_auc", "high"] + 0.005  # just outside the CV interval
    ho.loc["roc_auc", ["low", "high"]] = ho.loc["roc_auc", "value"] + np.array([-0.08, 0.08])  # a wide holdout
    a = S.check_agreement(cv, ho, y, oof[None], splits, y[:60])
    assert a.outside_cv_interval == ["roc_auc"] and not a.holdout_flagged and a.agree
    words = " ".join(R.agreement_sentences({"agreement": a.to_dict()}))
    assert "weak evidence" in words and "disagrees" not in words


# --- the whole flow records it all ------------------------------------------------------------------

def test_run_training_records_selection_checks_in_metrics(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    x1, x2 = rng.normal(size=(2, n))
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x1 - 1.2)))).astype(int)
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": x1, "x2": x2, "churned": y})
    r = T.run_training(t, "user_id", "churned", models=("dummy", "logreg", "hist_gb"), strategies=("none",),
                       n_splits=3, search_budget=2, n_permutations=1, n_bootstrap=50, seed=0)
    m = json.loads(r.save(tmp_path, data_fingerprint="x")["metrics"].read_text())
    assert {c["model"] for c in m["selection"]["candidates"]} == {"dummy", "logreg", "hist_gb"}
    assert m["selection"]["chosen"] == r.chosen.name
    assert m["baseline"]["model"] == "hist_gb / none" and m["baseline"]["verdict"]
    assert set(m["agreement"]["holdout_vs_cv"]) == {"roc_auc", "pr_auc"}
    assert "confirmation" in m["chosen"]["search"] and "optimism" in m["chosen"]["search"]
    assert {"CV vs holdout", "vs default gradient boosting"} <= set(r.key_numbers())
    assert not R.paired_table(m).empty and not R.agreement_table(m).empty
    assert R.summary_sentences(m) and R.baseline_sentence(m)


def test_a_single_candidate_is_not_called_a_clear_winner(folds):
    y, splits, rng = folds
    sel = S.select_candidate([scored(y, informative(y, rng), "logreg")], y, splits)
    assert sel.chosen == sel.leader == "logreg / none"
    assert R.selection_sentences({"selection": sel.to_dict()}) == ["Only one candidate was compared: logreg / none."]
    assert R.summary_sentences({"selection": sel.to_dict()}) == []
