"""Drift statistics, monitoring decisions and their wording (churnlib.drift, .monitoring, .monitoring_report)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import StandardScaler

from churnlib import drift as dr
from churnlib import evaluation as ev
from churnlib import monitoring as mo
from churnlib import monitoring_report as mr
from churnlib import pipeline
from churnlib import scenarios as sc
from churnlib import thresholds as th
from churnlib.eda import Rate
from churnlib.intervals import Interval
from churnlib.model import ChurnModel


# --------------------------------------------------------------------------------------------
# PSI and KS
# --------------------------------------------------------------------------------------------

def test_psi_is_zero_for_identical_samples_and_grows_with_the_shift():
    x = np.random.default_rng(0).normal(size=2000)
    assert dr.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    values = [dr.psi(x, x + shift) for shift in (0.1, 0.3, 0.6, 1.2)]
    assert all(v > 0 for v in values)
    assert values == sorted(values)


def test_psi_counts_missing_values_as_their_own_bin():
    x = pd.Series(np.random.default_rng(1).normal(size=1000))
    y = x.copy()
    y[:400] = np.nan  # same values, but 40% now missing
    assert dr.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert dr.psi(x, y) > 0.25


def test_categorical_psi_handles_unseen_and_many_categories():
    rng = np.random.default_rng(2)
    ref = pd.Series(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    same = pd.Series(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    new = pd.Series(rng.choice(["a", "b", "c", "never_seen"], size=1000, p=[0.3, 0.2, 0.1, 0.4]))
    assert np.isfinite(dr.psi(ref, new, categorical=True))
    assert dr.psi(ref, new, categorical=True) > 0.25
    assert dr.psi(ref, same, categorical=True) < 0.05
    # 50 equally likely categories at 250 rows: rare ones are pooled, so the noise stays small
    states = [f"s{i}" for i in range(50)]
    a, b = pd.Series(rng.choice(states, 250)), pd.Series(rng.choice(states, 250))
    assert dr.psi(a, b, categorical=True) < 0.25


def test_ks_matches_scipy_and_ignores_missing_values():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=200)
    assert dr.ks(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    a_nan = np.r_[a, [np.nan] * 20]
    assert dr.ks(a_nan, b) == pytest.approx(stats.ks_2samp(a, b).statistic)


# --------------------------------------------------------------------------------------------
# Drift report and false alarms on a synthetic process
# --------------------------------------------------------------------------------------------

def _process(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """A mix like the feature table: continuous, skewed, zero-inflated counts, rates, categories."""
    cols = {}
    for i in range(10):
        cols[f"normal_{i}"] = rng.normal(size=n)
        cols[f"skewed_{i}"] = rng.lognormal(0, 1, size=n)
        cols[f"count_{i}"] = rng.poisson(0.3 + i, size=n) * (rng.random(n) < 0.6)
    cols["rate_with_gaps"] = np.where(rng.random(n) < 0.2, np.nan, rng.beta(2, 5, size=n))
    cols["state"] = rng.choice([f"s{i}" for i in range(40)], size=n)
    cols["device"] = rng.choice(["desktop", "mobile", "tablet"], size=n, p=[0.6, 0.3, 0.1])
    cols["normal_3"] = cols["normal_3"] + shift
    return pd.DataFrame(cols)


def test_drift_report_fires_on_a_planted_shift_and_names_the_feature():
    rng = np.random.default_rng(4)
    ref, cur = _process(300, rng), _process(300, rng, shift=1.0)
    rep = dr.drift_report(ref, cur)
    assert rep.fired
    assert "normal_3" in set(rep.drifted["feature"])
    assert rep.table.loc[rep.table["feature"] == "normal_3", "reason"].item().startswith("PSI")
    assert rep.n_checked == ref.shape[1]
    assert "normal_3" in mr.drift_summary(rep)


def test_too_few_rows_are_not_judged():
    rng = np.random.default_rng(5)
    rep = dr.drift_report(_process(30, rng), _process(30, rng, shift=3.0))
    assert not rep.fired
    assert rep.n_checked == 0


def test_fresh_samples_of_the_same_process_mostly_stay_quiet():
    # 60 independent pairs at the monitored size (about 250 users per window), 33 features:
    # if the monitor's false-alarm rate were 10% or more, seeing at most 10% alarms would be
    # unlikely; a few alarms are expected and allowed.
    rng = np.random.default_rng(6)
    fired = [dr.drift_report(_process(250, rng), _process(250, rng)).fired for _ in range(60)]
    rate = Rate(int(np.sum(fired)), len(fired))
    assert rate.value <= 0.10, str(rate)


def test_false_alarm_rate_compares_disjoint_fresh_samples():
    fa = sc.false_alarm_rate(2, n_users=80, n_users_reference=120, days=45, horizon_days=7, seed=11)
    assert fa.rate.total == 2 and len(fa.n_drifted) == 2
    rate, lo, hi = fa.as_list()
    assert 0 <= lo <= rate <= hi <= 1
    # each side holds at most its simulated users (some already cancelled before the date)
    assert all(0 < n <= 120 for n in fa.n_reference) and all(0 < n <= 80 for n in fa.n_current)
    assert "pairs" in mr.false_alarm_statement(fa)
    # threads change nothing
    again = sc.false_alarm_rate(2, n_users=80, n_users_reference=120, days=45, horizon_days=7, seed=11, n_jobs=2)
    np.testing.assert_array_equal(fa.n_drifted, again.n_drifted)
    assert (fa.n_reference, fa.n_current) == (again.n_reference, again.n_current)


# --------------------------------------------------------------------------------------------
# Simulated scenarios
# --------------------------------------------------------------------------------------------

def test_simulate_window_matches_the_simulator_when_seeds_agree():
    from churnlib.simulate import simulate_events

    a = simulate_events(20, 10, 3)
    b = sc.simulate_window(n_users=20, days=10, seed=3, catalogue_seed=3, start="2018-10-01")
    pd.testing.assert_frame_equal(a, b)


def test_scenario_config_changes_only_the_named_knobs():
    from churnlib.simulate import SimulatorConfig

    base = SimulatorConfig()
    assert sc.scenario_config("same_process", base) == base
    ads = sc.scenario_config("more_adverts", base)
    assert ads.advert_free > base.advert_free and ads.error == base.error
    assert sc.scenario_config("error_spike", base).error > base.error
    with pytest.raises(ValueError, match="unknown scenario"):
        sc.scenario_config("meteor_strike")


@pytest.fixture(scope="module")
def reference_window() -> pd.DataFrame:
    return sc.scenario_window("same_process", n_users=300, seed=7, catalogue_seed=7, start="2018-10-01",
                              all_dates=False)


@pytest.mark.parametrize("scenario, expected", [
    ("more_adverts", {"roll_advert_per_song"}),
    ("error_spike", {"app_crash_count_30d", "error_per_song", "error_per_session_hour"}),
])
def test_simulated_drift_is_detected_where_it_was_planted(reference_window, scenario, expected):
    cur = sc.scenario_window(scenario, n_users=300, seed=8, all_dates=False)
    rep = dr.drift_report(reference_window, cur)
    assert expected & set(rep.drifted["feature"]), mr.drift_summary(rep)
    # the planted change is among the largest shifts, not a side effect of noise elsewhere
    assert expected & set(rep.table["feature"].head(5))


# --------------------------------------------------------------------------------------------
# Performance and recommendation
# --------------------------------------------------------------------------------------------

def _labelled(n: int, rng: np.random.Generator,
              coef: tuple[float, float] = (2.0, 0.0)) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    logit = -1.5 + coef[0] * X["x1"] + coef[1] * X["x2"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y.to_numpy()


def _pipe():
    return sk_pipeline(StandardScaler(), LogisticRegression())


def _fitted(X, y, **kw) -> ChurnModel:
    return ChurnModel.fit(_pipe(), X, y, **kw)


def test_performance_check_and_recommendation_follow_the_model():
    rng = np.random.default_rng(7)
    X_old, y_old = _labelled(600, rng)
    model = _fitted(X_old, y_old)
    X_ref, y_ref = _labelled(400, rng)
    X_same, y_same = _labelled(400, rng)
    X_new, y_new = _labelled(400, rng, coef=(0.0, 2.0))  # churn now depends on another behaviour
    quiet = dr.drift_report(X_ref, X_same)
    same = mo.performance_check(model, X_ref, y_ref, X_same, y_same, n_bootstrap=50)
    worse = mo.performance_check(model, X_ref, y_ref, X_new, y_new, n_bootstrap=50)
    assert list(same.columns[:3]) == ["reference", "reference_low", "reference_high"]
    assert worse.loc["roc_auc", "change"] < same.loc["roc_auc", "change"]
    assert mo.recommend(quiet, same).action == "no action"
    assert mo.recommend(quiet, worse).action == "retrain" and mo.recommend(quiet, worse).degraded
    shifted = dr.drift_report(X_ref, X_same.assign(x2=X_same["x2"] + 2))
    assert mo.recommend(shifted, same).action == "investigate"
    assert mo.recommend(shifted, None).action == "investigate" and not mo.recommend(shifted, None).measured
    assert mr.retrain_recommendation(quiet, same).startswith("No action")
    assert mr.retrain_recommendation(quiet, worse).startswith("Retrain")
    assert mr.retrain_recommendation(shifted, same).startswith("Investigate, no retraining needed yet")
    assert mr.retrain_recommendation(shifted, None).startswith("Investigate:")
    # the threshold is the model's unless given
    at_half = mo.performance_check(model, X_ref, y_ref, X_same, y_same, threshold=0.5, n_bootstrap=0)
    own = mo.performance_check(model, X_ref, y_ref, X_same, y_same, n_bootstrap=0)
    assert at_half.loc["roc_auc", "reference"] == own.loc["roc_auc", "reference"]
    p = model.churn_probability(X_ref)
    assert own.loc["recall", "reference"] == pytest.approx(ev.metric_values(y_ref, p, p >= model.threshold)["recall"])


def _perf(ref: tuple[float, float, float], cur: tuple[float, float, float]) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(["reference", "reference_low", "reference_high", "current", "current_low",
                                   "current_high"], [*ref, *cur]))], index=["roc_auc"])


@pytest.mark.parametrize("current, drifted, action", [
    ((0.70, 0.66, 0.74), False, "retrain"),       # reference 0.80 above the whole new interval
    ((0.70, 0.66, 0.74), True, "retrain"),
    ((0.76, 0.70, 0.81), False, "no action"),     # the interval still covers 0.80
    ((0.76, 0.70, 0.81), True, "investigate"),
    ((np.nan, np.nan, np.nan), True, "investigate"),  # no labels yet
    ((np.nan, np.nan, np.nan), False, "no action"),
])
def test_recommendation_rule(current, drifted, action):
    rng = np.random.default_rng(15)
    ref = _process(300, rng)
    rep = dr.drift_report(ref, _process(300, rng, shift=1.0 if drifted else 0.0), features=["normal_3"])
    assert rep.fired == drifted
    rec = mo.recommend(rep, _perf((0.80, 0.77, 0.83), current))
    assert rec.action == action
    text = mr.recommendation_text(rec)
    assert text.lower().startswith(action if action != "no action" else "no action")
    if rec.measured:
        assert Interval(*current).text() in text  # the one interval text form


# --------------------------------------------------------------------------------------------
# Champion / challenger
# --------------------------------------------------------------------------------------------

def test_a_clearly_better_challenger_replaces_the_champion(tmp_path):
    rng = np.random.default_rng(8)
    X_old, y_old = _labelled(500, rng)
    champion = _fitted(X_old, y_old)
    X_tr, y_tr = _labelled(500, rng, coef=(0.0, 2.5))
    X_ho, y_ho = _labelled(400, rng, coef=(0.0, 2.5))
    res = mo.challenge(champion, X_tr, y_tr, X_ho, y_ho, n_bootstrap=50)
    assert res.decision == "replaced" and res.replaced
    assert res.challenger.value > res.champion.value
    assert res.difference.above(0)
    assert 0 <= res.challenger_threshold <= 1
    assert res.n_train == 500 and res.n_holdout == 400
    # a replacing challenger is saved as a verifiable artifact of its own
    path = mo.save_challenger(res, tmp_path / "challenger", metadata={"when": "2018-11-15"})
    loaded = ChurnModel.load(path.parent)
    assert loaded.threshold == pytest.approx(res.challenger_threshold)
    assert loaded.info["challenge"]["decision"] == "replaced" and loaded.feature_names == ["x1", "x2"]
    np.testing.assert_allclose(loaded.predict_proba(X_ho), res.challenger_model.predict_proba(X_ho))


def test_a_worse_challenger_does_not_replace_and_both_scores_are_recorded(tmp_path):
    rng = np.random.default_rng(9)
    X_old, y_old = _labelled(500, rng)
    champion = _fitted(X_old, y_old)
    X_tr, y_tr = _labelled(500, rng)
    X_ho, y_ho = _labelled(400, rng)
    res = mo.challenge(champion, X_tr, rng.permutation(y_tr), X_ho, y_ho, n_bootstrap=50)
    assert res.decision == "kept champion"
    for iv in (res.champion, res.challenger):
        assert iv.covers(iv.value)
    entry = res.record("2018-11-15", {"scenario": "test"})
    assert entry["champion"] == list(res.champion.as_tuple()) and entry["challenger"] == list(res.challenger.as_tuple())
    assert entry["difference"] == list(res.difference.as_tuple())
    # a tie on the point estimate does not replace under either rule
    tie = mo.challenge(champion, X_old, y_old, X_ho, y_ho, rule="point", n_bootstrap=50)
    assert tie.decision == "kept champion"


def test_calibrated_champion_yields_a_calibrated_challenger():
    rng = np.random.default_rng(10)
    X, y = _labelled(400, rng)
    champion = _fitted(X, y, calibration="sigmoid")
    X_ho, y_ho = _labelled(300, rng)
    res = mo.challenge(champion, X, y, X_ho, y_ho, n_bootstrap=50)
    assert res.challenger_model.calibration == "sigmoid"
    assert res.info["calibration"] == "sigmoid"


def test_the_challenger_is_the_champion_refitted_out_of_fold():
    # what challenge fitted before ChurnModel existed: out-of-fold probabilities on cv_splits, the
    # F1 threshold on them, the pipeline refitted on all rows
    rng = np.random.default_rng(16)
    X, y = _labelled(400, rng)
    g = np.repeat(np.arange(200), 2).astype(str)
    X_ho, y_ho = _labelled(300, rng)
    res = mo.challenge(_fitted(X, y), X, y, X_ho, y_ho, groups_train=g, n_splits=3, seed=4, n_bootstrap=20)
    oof = ev.oof_predict(_pipe(), X, y, ev.cv_splits(y, g, 3, 1, 4))[0]
    assert res.challenger_threshold == pytest.approx(th.f1_threshold(y, oof))
    np.testing.assert_allclose(res.challenger_model.churn_probability(X_ho),
                               _pipe().fit(X, y).predict_proba(X_ho)[:, 1])
    # a given challenger is judged as it is
    again = mo.challenge(_fitted(X, y), X, y, X_ho, y_ho, challenger=res.challenger_model, seed=4, n_bootstrap=20)
    assert again.challenger_model is res.challenger_model and again.challenger == res.challenger


def test_challenge_window_holds_out_new_users_only():
    rng = np.random.default_rng(17)
    ref, new = _table(300, rng), _table(200, rng)
    new["userId"] = "n" + new["userId"]
    champion = _fitted(ref[["x1", "x2"]], ref["churned"])
    res = mo.challenge_window(champion, ref, new, holdout_share=0.5, n_bootstrap=20, seed=1)
    assert res.info["n_reference"] == 300 and res.info["n_new_train"] + res.n_holdout == 200
    assert res.n_train == 300 + res.info["n_new_train"] and res.info["n_holdout_users"] == res.n_holdout
    lines = mr.challenge_lines(res)
    assert len(lines) == 3 and res.champion.text() in lines[1] and res.decision in lines[2]


def test_decision_history_appends(tmp_path):
    rng = np.random.default_rng(11)
    X, y = _labelled(300, rng)
    res = mo.challenge(_fitted(X, y), X, y, *_labelled(200, rng), n_bootstrap=50)
    path = tmp_path / "models" / "champion_history.json"
    mo.record_decision(res, path, when="2018-11-15")
    history = mo.record_decision(res, path, when="2018-11-22", context={"scenario": "x"})
    saved = json.loads(path.read_text())
    assert saved == history and [h["when"] for h in saved] == ["2018-11-15", "2018-11-22"]
    assert saved[1]["scenario"] == "x" and saved[0]["decision"] in ("replaced", "kept champion")


def test_summary_has_the_agreed_keys():
    rng = np.random.default_rng(12)
    X, y = _labelled(300, rng)
    model = _fitted(X, y)
    X2, y2 = _labelled(300, rng)
    drift = dr.drift_report(X, X2.assign(x1=X2["x1"] + 2))
    perf = mo.performance_check(model, X, y, X2, y2, n_bootstrap=50)
    res = mo.challenge(model, X, y, X2, y2, n_bootstrap=50)
    fa = sc.FalseAlarmResult(Rate(1, 10), np.array([1] + [0] * 9), pd.Series({"x1": 1}), [100] * 10, [100] * 10)
    summary = mo.monitoring_summary(reference="r", current="c", drift=drift, performance=perf,
                                    recommendation=mr.retrain_recommendation(drift, perf), false_alarms=fa,
                                    challenge_result=res, scenarios={"shift": drift})
    assert set(summary) == {"status", "mode", "reference", "current", "drifted_features", "n_features_checked",
                            "performance",
                            "recommendation", "false_alarm_rate", "n_false_alarm_samples", "challenger",
                            "scenarios"}
    assert summary["drifted_features"][0]["feature"] == "x1"
    assert summary["status"] == "run" and summary["mode"] == "scenarios"
    assert summary["performance"]["current"]["roc_auc"] == list(Interval.from_row(perf.loc["roc_auc"], "current").as_tuple())
    assert summary["false_alarm_rate"] == fa.as_list() and summary["n_false_alarm_samples"] == 10
    assert summary["scenarios"] == {"shift": {"n_drifted": len(drift.drifted), "fired": True}}
    assert summary["challenger"]["decision"] in ("replaced", "kept champion")
    json.dumps(summary, allow_nan=False)


def _table(n: int, rng: np.random.Generator) -> pd.DataFrame:
    X, y = _labelled(n, rng)
    return X.assign(userId=[f"u{i}" for i in range(n)], churned=y)


def test_load_champion_falls_back_to_a_small_deterministic_model(tmp_path):
    rng = np.random.default_rng(13)
    table = _table(400, rng)
    a, why = mo.load_champion(table, model_path=tmp_path / "none.joblib", seed=3)
    b, _ = mo.load_champion(table, model_path=tmp_path / "none.joblib", seed=3)
    assert "no model at" in why and "CI-sized" in why
    assert a.feature_names == ["x1", "x2"] and 0 < a.threshold < 1 and a.calibration is None
    np.testing.assert_array_equal(a.churn_probability(table), b.churn_probability(table))
    # a saved model that needs other columns (e.g. trained on a snapshot table) is not used
    other = _fitted(table[["x1", "x2"]].rename(columns={"x1": "age"}), table["churned"])
    other.save(tmp_path / "other" / "churn_model.joblib")
    _, why = mo.load_champion(table, model_path=tmp_path / "other" / "churn_model.joblib", seed=3)
    assert "lack" in why
    # a usable saved model is the champion, described by its manifest
    saved = _fitted(table[["x1", "x2"]], table["churned"], calibration="sigmoid",
                    info={"model": {"model": "logreg", "strategy": "none"}})
    saved.save(tmp_path / "models" / "churn_model.joblib")
    champ, why = mo.load_champion(table, output_dir=tmp_path, seed=3)
    assert why.startswith("the champion saved by 05_models") and "logreg / none, calibration sigmoid" in why
    np.testing.assert_allclose(champ.churn_probability(table), saved.churn_probability(table))
    # a tampered artifact is refused and replaced by the fallback
    (tmp_path / "models" / "churn_model.joblib").write_bytes(b"not a model")
    _, why = mo.load_champion(table, output_dir=tmp_path, seed=3)
    assert "cannot be used" in why and "CI-sized" in why


def test_reference_window_refuses_a_snapshot_table(spotify_snapshot, tmp_path):
    ref = sc.reference_window(spotify_snapshot, n_users=40, days=30, seed=3, horizon_days=7, output_dir=tmp_path)
    assert ref.simulated and ref.catalogue_seed == 3 and any("one-row-per-user" in n for n in ref.notes)
    assert {"userId", "as_of", "churned"} <= set(ref.table.columns)
    assert ref.latest["as_of"].nunique() == 1
    # the simulated log's start and users, read without loading it, are what the loader finds
    from churnlib.load import load_events

    events = load_events(ref.log, strict=True).events
    assert ref.n_users == events.loc[events["userId"] != "", "userId"].nunique()
    assert ref.start == pd.Timestamp(events["ts"].min(), unit="ms", tz="UTC").floor("D")


def test_stable_floats_removes_last_digit_noise_and_nothing_else():
    rng = np.random.default_rng(14)
    x = rng.lognormal(3, 2, size=1000)
    table = pd.DataFrame({"hours": x, "count": np.arange(1000), "state": ["CA"] * 1000})
    noisy = table.assign(hours=x * (1 + 1e-13))
    a, b = dr.stable_floats(table), dr.stable_floats(noisy)
    assert (a["hours"] == b["hours"]).mean() > 0.99
    np.testing.assert_allclose(a["hours"], x, rtol=1e-6)
    assert a["count"].equals(table["count"]) and a["state"].equals(table["state"])


# --------------------------------------------------------------------------------------------
# Scenarios end to end, and their wording
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario_run():
    ref = sc.scenario_window("same_process", n_users=200, days=45, seed=7, catalogue_seed=7, start="2018-10-01",
                             horizon_days=7)
    champion = _fitted(ref[["n_sessions", "sessions_7d", "thumbs_down_per_song"]], ref["churned"])
    run = mo.run_scenarios(dr.latest_rows(ref), champion, ["error_spike", "same_process"], current="error_spike",
                           n_users=200, days=45, window_seed=8, catalogue_seed=7, start="2018-10-01",
                           horizon_days=7, n_bootstrap=20, seed=3)
    return run, champion


def test_run_scenarios_measures_every_window_like_the_single_checks(scenario_run):
    run, champion = scenario_run
    assert list(run.results) == ["same_process", "error_spike"] and run.reported == ["same_process", "error_spike"]
    assert run.current == "error_spike" and "error_spike" in run.fired
    same, spike = run["same_process"], run["error_spike"]
    assert spike.drift.table.loc[spike.drift.table["feature"] == "error_per_song", "drifted"].item()
    # each scenario's performance is performance_check against the baseline window
    expected = mo.performance_check(champion, same.window, same.window["churned"], spike.window,
                                    spike.window["churned"], groups_ref=same.window["userId"],
                                    groups_new=spike.window["userId"], n_bootstrap=20, seed=3)
    pd.testing.assert_frame_equal(spike.performance, expected)
    assert (same.performance["change"].fillna(0) == 0).all()
    assert spike.recommendation == mo.recommend(spike.drift, spike.performance)
    # same users in every scenario: the windows differ only by the planted change
    assert set(same.window["userId"]) & set(spike.window["userId"])


def test_scenario_tables_and_figures(scenario_run):
    import matplotlib

    matplotlib.use("Agg")
    run, _ = scenario_run
    table = mr.scenario_table(run)
    assert list(table.index) == run.reported
    roc = Interval.from_row(run["error_spike"].performance.loc["roc_auc"], "current")
    assert table.loc["error_spike", "ROC-AUC (95% interval)"] == roc.text()
    assert table.loc["error_spike", "recommendation"] in ("Retrain", "Investigate, no retraining needed yet")
    overview = mr.scenario_overview(run)
    assert overview.loc["error_spike", "fired"] and overview["features drifted"].ge(0).all()
    perf = mr.performance_table(run["error_spike"].performance)
    assert list(perf.index) == ["roc_auc", "pr_auc", "brier"] and perf.loc["roc_auc", "new window (95% interval)"] == roc.text()
    assert "under the 'error_spike' scenario" in mr.window_description(run)
    assert mr.plot_drift(run.reports).axes and mr.plot_performance(run["error_spike"].performance).axes


# --------------------------------------------------------------------------------------------
# Monitoring without time: two tables of users (snapshot data)
# --------------------------------------------------------------------------------------------

def _spotify_halves(path, tmp_path, shift: dict | None = None):
    """Two random halves of the Spotify snapshot as CSV files, the second optionally shifted."""
    table = pd.read_csv(path)
    idx = np.random.default_rng(0).permutation(len(table))
    a, b = table.iloc[np.sort(idx[: len(table) // 2])], table.iloc[np.sort(idx[len(table) // 2:])].copy()
    for col, f in (shift or {}).items():
        b[col] = f(b[col])
    a.to_csv(tmp_path / "reference.csv", index=False)
    b.to_csv(tmp_path / "current.csv", index=False)
    return tmp_path / "reference.csv", tmp_path / "current.csv"


def test_two_random_halves_of_the_spotify_snapshot_raise_no_alarm(spotify_snapshot, tmp_path):
    ref, cur = _spotify_halves(spotify_snapshot, tmp_path)
    out = tmp_path / "out" / "monitoring.json"
    result = mo.monitor_command(ref, cur, out, id_col="user_id", label_col="is_churned", n_false_alarm_samples=10)
    assert not result.drift.fired, result.drift.drifted
    assert result.drift.n_checked == 10  # every column but the id and the label
    assert result.false_alarms.rate.count == 0
    assert result.recommendation.action == "no action"
    written = json.loads(out.read_text())
    assert written["status"] == "run" and written["mode"] == "tables" and written["drifted_features"] == []
    assert written["quality"]["current"]["rows_kept"] == 4000
    assert json.loads(pipeline.key_path(out).read_text())["stage"] == "monitoring"


def test_a_planted_shift_between_two_tables_is_found_and_named(spotify_snapshot, tmp_path):
    ref, cur = _spotify_halves(spotify_snapshot, tmp_path, {
        "listening_time": lambda s: (s * 1.3).round().astype(int),
        "device_type": lambda s: s.where(np.arange(len(s)) % 3 != 0, "Smart TV")})
    result = mo.monitor_command(ref, cur, tmp_path / "m.json", id_col="user_id", label_col="is_churned",
                                n_false_alarm_samples=0, wording=mr.recommendation_text)
    assert set(result.drift.drifted["feature"]) == {"listening_time", "device_type"}
    assert result.recommendation.action == "investigate"
    written = json.loads((tmp_path / "m.json").read_text())
    assert {d["feature"] for d in written["drifted_features"]} == {"listening_time", "device_type"}
    assert written["recommendation"].startswith("Investigate")
    assert "cannot be measured yet (no model was given)" in written["recommendation"]
    assert "listening_time" in mr.command_text(result)


def _snapshot(n: int, rng: np.random.Generator, shift: float = 0.0, coef: float = 2.0) -> pd.DataFrame:
    x1, x2 = rng.normal(shift, 1, n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(1.5 - coef * x1))).astype(int)
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": x1, "x2": x2, "is_churned": y})


def test_compare_tables_scores_the_model_and_measures_it_on_labelled_current_users():
    rng = np.random.default_rng(21)
    train, ref, cur = _snapshot(1500, rng), _snapshot(600, rng), _snapshot(600, rng, shift=1.0, coef=0.0)
    model = _fitted(train[["x1", "x2"]], train["is_churned"])
    res = mo.compare_tables(ref, cur, model=model, n_bootstrap=50, n_false_alarm_samples=0)
    assert list(res.drift.drifted["feature"]) == ["x1"]
    assert res.score_drift.fired  # x1 moves the scores
    # the label no longer follows x1: the model's ranking falls below the reference table's
    assert "reference table" in res.performance_reference
    assert res.recommendation.action == "retrain"
    assert "lower beyond the noise" in mr.table_performance_text(res)
    # a current table without labels: inputs and scores compared, performance not measured
    unlabelled = mo.compare_tables(ref, cur.drop(columns="is_churned"), model=model, n_false_alarm_samples=0)
    assert unlabelled.performance is None and unlabelled.recommendation.action == "investigate"
    assert any("no labels" in n for n in unlabelled.notes)
    # a model's own holdout figures are the reference when it has them
    model.info["holdout"] = {"roc_auc": {"value": 0.8, "low": 0.75, "high": 0.85},
                             "pr_auc": {"value": 0.5, "low": 0.45, "high": 0.55}}
    held = mo.compare_tables(ref, cur, model=model, n_bootstrap=50, n_false_alarm_samples=0)
    assert "holdout" in held.performance_reference and held.performance.loc["roc_auc", "reference"] == 0.8
    summary = mo.table_summary(held, mr.recommendation_text(held.recommendation))
    assert summary["performance"]["reference"]["roc_auc"] == [0.8, 0.75, 0.85]
    json.dumps(summary, allow_nan=False)


def test_compare_tables_notes_columns_only_one_table_has():
    rng = np.random.default_rng(5)
    ref, cur = _snapshot(300, rng), _snapshot(300, rng)
    res = mo.compare_tables(ref.assign(old=1.0), cur.assign(new="a"), n_false_alarm_samples=0,
                            exclude=["x2"])
    assert list(res.drift.table["feature"]) == ["x1"]
    assert any("only in the reference" in n and "old" in n for n in res.notes)
    assert any("only in the current" in n and "new" in n for n in res.notes)
    with pytest.raises(mo.DataValidationError, match="share no feature"):
        mo.compare_tables(ref[["user_id", "x1"]], cur[["user_id", "x2"]], n_false_alarm_samples=0)


def test_false_alarms_on_random_halves_count_alarms_on_one_population():
    rng = np.random.default_rng(3)
    calm = mo.table_false_alarms(_process(600, rng), 8, seed=1)
    assert calm.n_pairs == 8 and calm.rate.count <= 2
    # a table that mixes two populations in sorted order is still one population for random halves
    mixed = pd.concat([_process(300, rng), _process(300, rng, shift=2.0)], ignore_index=True)
    assert mo.table_false_alarms(mixed, 8, seed=1).rate.count <= 2


def test_plan_monitoring_never_puts_simulated_data_in_place_of_a_table(tmp_path, spotify_snapshot):
    assert mo.plan_monitoring(None).mode == "scenarios"
    plan = mo.plan_monitoring(spotify_snapshot)
    assert plan.mode == "not run" and not plan.run
    assert "second table" in plan.reason and "CURRENT=" in plan.how and "churnlib monitor" in plan.how
    assert "needs a second table" in mr.not_run_text(plan)
    assert list(mr.not_run_key_numbers(plan)) == ["Monitoring"]
    summary = mo.not_run_summary(plan)
    assert summary["status"] == "not run" and "drifted_features" not in summary
    both = mo.plan_monitoring(None, reference=spotify_snapshot, current=spotify_snapshot)
    assert both.mode == "tables" and both.current == spotify_snapshot
    log = tmp_path / "events.json"
    log.write_text('{"ts": 1, "userId": "1", "sessionId": 1, "page": "NextSong"}\n')
    with pytest.raises(mo.DataValidationError, match="not an event log"):
        mo.plan_monitoring(log, current=spotify_snapshot)
    with pytest.raises(mo.DataValidationError, match="reference table"):
        mo.plan_monitoring(None, current=spotify_snapshot)


def test_monitoring_notebook_on_a_snapshot_without_current_writes_not_run(tmp_path, spotify_snapshot):
    papermill = pytest.importorskip("papermill")
    from churnlib import paths, summary

    papermill.execute_notebook(
        str(mr_notebook()), str(tmp_path / "07.ipynb"), kernel_name="churnlib", progress_bar=False,
        parameters={"data": str(spotify_snapshot), "id_col": "user_id", "label_col": "is_churned",
                    "output_dir": str(tmp_path)}, cwd=str(mr_notebook().parent))
    written = json.loads((paths.processed_data_dir(tmp_path) / "monitoring.json").read_text())
    assert written["status"] == "not run" and "second table" in written["reason"]
    numbers = json.loads((paths.reports_dir(tmp_path) / "key_numbers" / "07_monitoring.json").read_text())
    assert list(numbers) == ["Monitoring"]
    # nothing simulated was made in place of the user's table
    assert not list(tmp_path.rglob("simulated_*"))
    section = summary.changes_section(summary.load_inputs(tmp_path).monitoring)
    assert "not run" in section.title and "PSI" not in section.text and "drift" in section.text
    assert "Drifted features" not in section.numbers


def mr_notebook():
    from churnlib import paths

    return paths.project_root() / "notebooks" / "07_monitoring.ipynb"


def test_monitor_command_line_prints_the_comparison_and_refuses_to_overwrite_an_input(spotify_snapshot, tmp_path,
                                                                                     capsys):
    from churnlib.cli import main

    ref, cur = _spotify_halves(spotify_snapshot, tmp_path, {"listening_time": lambda s: (s * 1.3).round().astype(int)})
    out = tmp_path / "m.json"
    assert main(["monitor", "--reference", str(ref), "--current", str(cur), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "listening_time" in printed and f"read 4,000 rows from {cur}" in printed
    assert json.loads(out.read_text())["recommendation"].startswith("Investigate: 1 of")
    before = cur.read_bytes()
    assert main(["monitor", "--reference", str(ref), "--current", str(cur), "--out", str(cur)]) == 2
    assert "is also the input" in capsys.readouterr().err and cur.read_bytes() == before
