"""Model registry, honest evaluation, thresholds, calibration and the training flow (synthetic tables)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from churnlib import evaluation as ev
from churnlib import models as M
from churnlib import thresholds as th
from churnlib import training as T
from churnlib.model_report import summary_table


def planted_table(n: int = 500, seed: int = 0, signal: float = 3.0, shuffle: bool = False) -> pd.DataFrame:
    """A snapshot-like table whose label depends on x1, x3 and a category; NaNs in both kinds.

    The signal is spread so that no single column separates the classes well enough to look like a
    leak to the leakage screen.
    """
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, n))
    plan = pd.Series(rng.choice(["free", "paid", "family"], size=n))
    logit = -1.3 + signal * (x1 + x3) / 2 + 1.0 * (plan == "free").to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if shuffle:
        y = rng.permutation(y)
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": x1, "x2": x2, "x3": x3,
                      "count": rng.poisson(3, n), "flag": rng.random(n) < 0.3,
                      "plan": plan.astype("str"), "churned": y})
    t.loc[rng.random(n) < 0.1, "x2"] = np.nan
    t.loc[rng.random(n) < 0.1, "plan"] = None
    return t


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return planted_table()


@pytest.fixture(scope="module")
def shuffled() -> pd.DataFrame:
    return planted_table(shuffle=True)


def xy(t: pd.DataFrame):
    return M.feature_frame(t, "user_id", "churned"), t["churned"].to_numpy(), t["user_id"].to_numpy()


# --- registry -----------------------------------------------------------------------------------

@pytest.mark.parametrize("model", M.MODELS)
def test_every_model_fits_mixed_table_with_missing_values(planted, model):
    X, y, _ = xy(planted.head(240))
    pipe = M.make_pipeline(model, "none", seed=0).fit(X, y)
    unseen = X.head(5).copy()
    unseen["plan"] = ["student", None, "free", "paid", "x"]  # unseen and missing categories
    unseen["x1"] = np.nan
    p = pipe.predict_proba(unseen)[:, 1]
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1))


@pytest.mark.parametrize("strategy", M.STRATEGIES)
def test_every_strategy_runs_and_resamples_only_when_fitting(planted, strategy):
    X, y, _ = xy(planted.head(300))
    pipe = M.make_pipeline("logreg", strategy, seed=0).fit(X, y)
    # prediction never resamples: one probability per input row, in order
    assert pipe.predict_proba(X).shape == (len(X), 2)
    if strategy in ("smote", "adasyn", "undersample", "smoteenn"):
        Xt = pipe[:-2].transform(X) if "resample" in pipe.named_steps else None
        _, yr = pipe.named_steps["resample"].fit_resample(Xt, y)
        assert abs(yr.mean() - 0.5) < abs(y.mean() - 0.5)  # it does rebalance the training rows


def test_class_weight_is_scale_pos_weight_for_xgboost_and_refused_where_meaningless():
    pipe = M.make_pipeline("xgboost", "class_weight", pos_weight=3.0)
    assert pipe.named_steps["model"].get_params()["scale_pos_weight"] == 3.0
    assert not M.supports("knn", "class_weight") and not M.supports("dummy", "smote")
    with pytest.raises(ValueError):
        M.make_pipeline("knn", "class_weight")
    with pytest.raises(ValueError, match="unknown model"):
        M.make_pipeline("svm")


def test_feature_frame_drops_keys_dates_and_split():
    t = pd.DataFrame({"userId": ["a"], "as_of": pd.to_datetime(["2018-11-01"], utc=True), "churned": [1],
                      "split": ["train"], "f": [1.0]})
    assert list(M.feature_frame(t, "userId", "churned", drop=["split"]).columns) == ["f"]


# --- splits and holdout --------------------------------------------------------------------------

def test_cv_is_group_aware_when_users_repeat(planted):
    stacked = pd.concat([planted.assign(as_of=d) for d in range(3)], ignore_index=True)
    y, g = stacked["churned"].to_numpy(), stacked["user_id"].to_numpy()
    for part in ev.cv_splits(y, g, n_splits=3, n_repeats=2, seed=1):
        assert sorted(np.concatenate([te for _, te in part])) == list(range(len(y)))
        for train, test in part:
            assert not set(g[train]) & set(g[test])
            assert abs(y[test].mean() - y.mean()) < 0.05


def test_holdout_from_split_column_and_from_fraction(planted):
    y, g = planted["churned"].to_numpy(), planted["user_id"].to_numpy()
    split = pd.Series(np.where(np.arange(len(y)) % 4 == 0, "Test", "train"))
    assert (ev.holdout_split(y, g, split) == (np.arange(len(y)) % 4 == 0)).all()
    with pytest.raises(ValueError, match="train"):
        ev.holdout_split(y, g, split.replace("train", "valid"))
    gg = np.repeat(np.arange(len(y) // 2), 2)
    test = ev.holdout_split(y, gg, fraction=0.25, seed=3)
    assert 0.2 < test.mean() < 0.3 and not set(gg[test]) & set(gg[~test])


# --- metrics, intervals, permutation -------------------------------------------------------------

def test_intervals_bracket_the_estimate_and_cover_chance_for_noise():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(25):  # a 95% interval on pure noise covers AUC 0.5 about 24 times in 25
        y = rng.integers(0, 2, 300)
        noise = ev.evaluate_predictions(y, rng.random(300), rng.random(300) < 0.5, n_bootstrap=80,
                                        seed=int(rng.integers(1e6)))
        assert (noise["low"] <= noise["value"]).all() and (noise["value"] <= noise["high"]).all()
        covered += noise.loc["roc_auc", "low"] < 0.5 < noise.loc["roc_auc", "high"]
    assert covered >= 20
    y = rng.integers(0, 2, 800)
    good = ev.evaluate_predictions(y, y * 0.8 + 0.1, y == 1, n_bootstrap=50)
    assert good.loc["roc_auc", "value"] == 1.0 and good.loc["f1", "value"] == 1.0
    assert good.loc["lift_top_decile", "value"] == pytest.approx(1 / y.mean())


def test_permutation_test_separates_planted_signal_from_shuffled_labels(planted, shuffled):
    pipe = M.make_pipeline("logreg", "none")
    real = ev.permutation_test(pipe, *xy(planted), n_permutations=19, seed=0)
    assert real.significant and real.score > 0.75 and "Signal detected" in real.statement()
    null = ev.permutation_test(pipe, *xy(shuffled), n_permutations=19, seed=0)
    assert not null.significant and abs(null.score - 0.5) < 0.08
    assert "No detectable signal" in null.statement()


def test_resampling_before_the_split_inflates_scores(planted):
    weak = planted_table(n=400, signal=0.4, seed=5)
    X, y, _ = xy(weak)
    demo = M.resampling_leak_demo(X, y, model="random_forest", strategy="smote", seed=0)
    right, leaky = demo.loc["inside folds (correct)"], demo.loc["before the split (leaky)"]
    assert leaky["roc_auc"] > right["roc_auc"] + 0.05
    assert leaky["test_churn_rate"] == pytest.approx(0.5, abs=0.02)
    # threads fit the same forest: the demo's numbers do not depend on n_jobs
    pd.testing.assert_frame_equal(M.resampling_leak_demo(X, y, model="random_forest", strategy="smote", seed=0,
                                                         n_jobs=2), demo)


# --- thresholds, bands, calibration ---------------------------------------------------------------

def test_f1_and_cost_thresholds_are_optimal_on_their_data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1)
    t = th.f1_threshold(y, p)
    grid = np.unique(p)
    assert f1_score(y, p >= t) == pytest.approx(max(f1_score(y, p >= g) for g in grid))

    def cost(thr, cfn, cfp):
        return cfn * np.sum((p < thr) & (y == 1)) + cfp * np.sum((p >= thr) & (y == 0))
    for cfn, cfp in ((10, 1), (1, 10)):
        tc = th.cost_threshold(y, p, cfn, cfp)
        assert cost(tc, cfn, cfp) == min(cost(g, cfn, cfp) for g in np.append(grid, 1.01))
    assert th.cost_threshold(y, p, 10, 1) < th.cost_threshold(y, p, 1, 10)


def test_cross_fitted_threshold_never_uses_the_fold_it_decides():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    p = rng.random((1, 300))
    splits = ev.cv_splits(y, None, n_splits=3, seed=0)
    before = th.cross_fitted_decisions(y, p, splits)
    test0 = splits[0][0][1]
    y2 = y.copy()
    y2[test0] = 1 - y2[test0]  # relabel one fold: its own decisions must not move
    after = th.cross_fitted_decisions(y2, p, splits)
    assert (before[0, test0] == after[0, test0]).all()


def test_risk_bands_are_ordered_around_the_threshold():
    bands = th.RiskBands.from_threshold(0.4)
    assert list(bands.assign([0.05, 0.2, 0.39, 0.4, 0.9])) == ["low", "medium", "medium", "high", "high"]


def test_calibration_is_chosen_only_when_it_helps():
    rng = np.random.default_rng(3)
    true_p = rng.random(3000)
    y = (rng.random(3000) < true_p).astype(int)
    skewed = th.choose_calibration(y, true_p ** 3)
    assert skewed.method is not None and skewed.brier[skewed.method] < 0.95 * skewed.brier["raw"]
    fine = th.choose_calibration(y, true_p)
    assert fine.method is None and (fine.calibrated_oof == true_p).all()
    rel = th.reliability_table(y, true_p)
    assert np.abs(rel["predicted"] - rel["observed"]).max() < 0.1


# --- the whole flow ---------------------------------------------------------------------------------

FAST = dict(models=("dummy", "logreg"), strategies=("none", "class_weight"), n_splits=3, n_repeats=1,
            search_budget=2, n_permutations=19, n_bootstrap=50, seed=0)


def test_training_on_planted_signal_uses_the_split_and_detects_signal(planted, tmp_path):
    t = planted.assign(split=np.where(np.arange(len(planted)) % 5 == 0, "test", "train"),
                       days_active=planted["churned"] * 5 + np.random.default_rng(0).random(len(planted)))
    r = T.run_training(t, "user_id", "churned", "split", **FAST)
    assert r.info["data"]["leakage_suspects_dropped"] == ["days_active"]  # a label proxy is left out
    assert r.info["data"]["rows_test"] == (t["split"] == "test").sum()
    assert r.chosen.model == "logreg" and 0 < r.threshold < 1
    assert r.holdout.loc["roc_auc", "low"] > 0.7 and r.signal_detected
    assert r.bands.high_from == r.threshold
    paths = r.save(tmp_path, data_fingerprint="abc")
    metrics = json.loads(paths["metrics"].read_text())
    cand = {(c["model"], c["strategy"]): c for c in metrics["candidates"]}
    assert set(cand) == {("dummy", "none"), ("logreg", "none"), ("logreg", "class_weight")}
    for c in cand.values():
        for where in ("cv", "holdout"):
            assert set(c[where]) == set(ev.METRICS)
            assert all(set(v) == {"value", "low", "high"} for v in c[where].values())
    assert metrics["chosen"]["threshold"]["rule"] == "f1" and metrics["chosen"]["reason"]
    assert metrics["signal_detected"] is True and metrics["data"]["fingerprint"] == "abc"
    assert not {"split", "days_active"} & {f["name"] for f in r.feature_schema}


def test_training_on_shuffled_labels_says_no_signal(shuffled):
    r = T.run_training(shuffled, "user_id", "churned", **FAST)
    assert not r.signal_detected
    assert r.holdout.loc["roc_auc", "low"] < 0.5 < r.holdout.loc["roc_auc", "high"]
    assert r.signal_statement().startswith("No detectable signal:")


def test_cost_rule_sets_the_threshold(planted):
    cheap_offers = T.run_training(planted, "user_id", "churned", cost_fn=20, cost_fp=1,
                                  **{**FAST, "models": ("logreg",), "strategies": ("none",), "search_budget": 0,
                                     "n_permutations": 1})
    assert cheap_offers.thresholds["rule"] == "cost"
    assert cheap_offers.threshold == cheap_offers.thresholds["cost"] < cheap_offers.thresholds["f1"]


def test_train_command_on_a_stacked_feature_table(planted, tmp_path):
    # a `churnlib features`-style parquet: the same users at two dates -> group-aware CV and holdout
    rows = planted.rename(columns={"user_id": "userId"})
    stacked = pd.concat([rows.assign(as_of=pd.Timestamp(d, tz="UTC")) for d in ("2018-11-01", "2018-11-08")],
                        ignore_index=True)
    path = tmp_path / "features.parquet"
    stacked.to_parquet(path)
    r = T.train_command(path, "userId", "churned", out=tmp_path / "models", **FAST)
    assert r.info["settings"]["group_aware"] and r.info["data"]["users_in_both_parts"] == 0
    assert "as_of" not in [f["name"] for f in r.feature_schema]
    assert {p.name for p in (tmp_path / "models").iterdir()} >= {
        "churn_model.joblib", "churn_model.manifest.json", "metrics.json"}


@pytest.mark.parametrize("method", ["random", "halving"])
def test_bounded_search_returns_parameters_from_the_space(planted, method):
    stacked = pd.concat([planted.assign(d=d) for d in range(2)], ignore_index=True)
    X, y, g = xy(stacked)
    params, score = M.search_model(M.make_pipeline("logreg"), "logreg", X, y, g, budget=4, method=method, seed=0)
    assert set(params) == {"model__C"} and 1e-3 <= params["model__C"] <= 1e2 and 0.3 < score <= 1
    assert M.search_model(M.make_pipeline("dummy"), "dummy", X, y, g, budget=4) == ({}, pytest.approx(np.nan, nan_ok=True))


def test_comparison_is_deterministic_for_a_seed(planted):
    X, y, g = xy(planted)
    runs = [M.compare_models(X, y, g, models=("random_forest",), strategies=("smote",), n_bootstrap=20, seed=s)
            for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0][0].oof, runs[1][0].oof)
    pd.testing.assert_frame_equal(runs[0][0].cv, runs[1][0].cv)
    assert not np.array_equal(runs[0][0].oof, runs[2][0].oof)  # the seed does drive folds and sampling


def test_summary_table_writes_intervals_and_errors():
    cv = pd.DataFrame({"value": [0.7123, 0.25], "low": [0.69, 0.2], "high": [0.735, 0.3]},
                      index=pd.Index(["roc_auc", "pr_auc"], name="metric"))
    ok = M.Candidate("logreg", "none", cv=cv, threshold=0.31, threshold_interval=(0.2, 0.4))
    failed = M.Candidate("logreg", "adasyn", error="ValueError: no neighbours")
    t = summary_table([ok, failed], metrics=("roc_auc", "pr_auc"))
    assert t.loc[("logreg", "none"), "roc_auc"] == "0.712 (0.690–0.735)"
    assert t.loc[("logreg", "none"), "threshold"] == "0.310 (0.200–0.400)"
    assert t.loc[("logreg", "adasyn"), "pr_auc"] == "ValueError: no neighbours"
    assert t.loc[("logreg", "adasyn"), "threshold"] == "n/a"


def test_threshold_interval_brackets_the_threshold(planted):
    X, y, g = xy(planted)
    c = M.compare_models(X, y, g, models=("logreg",), strategies=("none",), n_bootstrap=100, seed=0)[0]
    lo, hi = c.threshold_interval
    assert 0 <= lo <= c.threshold <= hi <= 1 and hi - lo < 0.6
    assert "–" in summary_table([c]).loc[("logreg", "none"), "threshold"]
