"""Drift monitoring and champion/challenger retraining (churnlib.monitoring)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline as sk_pipeline
from sklearn.preprocessing import StandardScaler

from churnlib import monitoring as mo
from churnlib.eda import Rate


# --------------------------------------------------------------------------------------------
# PSI and KS
# --------------------------------------------------------------------------------------------

def test_psi_is_zero_for_identical_samples_and_grows_with_the_shift():
    x = np.random.default_rng(0).normal(size=2000)
    assert mo.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    values = [mo.psi(x, x + shift) for shift in (0.1, 0.3, 0.6, 1.2)]
    assert all(v > 0 for v in values)
    assert values == sorted(values)


def test_psi_counts_missing_values_as_their_own_bin():
    x = pd.Series(np.random.default_rng(1).normal(size=1000))
    y = x.copy()
    y[:400] = np.nan  # same values, but 40% now missing
    assert mo.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert mo.psi(x, y) > 0.25


def test_categorical_psi_handles_unseen_and_many_categories():
    rng = np.random.default_rng(2)
    ref = pd.Series(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    same = pd.Series(rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]))
    new = pd.Series(rng.choice(["a", "b", "c", "never_seen"], size=1000, p=[0.3, 0.2, 0.1, 0.4]))
    assert np.isfinite(mo.psi(ref, new, categorical=True))
    assert mo.psi(ref, new, categorical=True) > 0.25
    assert mo.psi(ref, same, categorical=True) < 0.05
    # 50 equally likely categories at 250 rows: rare ones are pooled, so the noise stays small
    states = [f"s{i}" for i in range(50)]
    a, b = pd.Series(rng.choice(states, 250)), pd.Series(rng.choice(states, 250))
    assert mo.psi(a, b, categorical=True) < 0.25


def test_ks_matches_scipy_and_ignores_missing_values():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=200)
    assert mo.ks(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    a_nan = np.r_[a, [np.nan] * 20]
    assert mo.ks(a_nan, b) == pytest.approx(stats.ks_2samp(a, b).statistic)


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
    rep = mo.drift_report(ref, cur)
    assert rep.fired
    assert "normal_3" in set(rep.drifted["feature"])
    assert rep.table.loc[rep.table["feature"] == "normal_3", "reason"].item().startswith("PSI")
    assert rep.n_checked == ref.shape[1]
    assert "normal_3" in rep.summary()


def test_too_few_rows_are_not_judged():
    rng = np.random.default_rng(5)
    rep = mo.drift_report(_process(30, rng), _process(30, rng, shift=3.0))
    assert not rep.fired
    assert rep.n_checked == 0


def test_fresh_samples_of_the_same_process_mostly_stay_quiet():
    # 60 independent pairs at the monitored size (about 250 users per window), 33 features:
    # if the monitor's false-alarm rate were 10% or more, seeing at most 10% alarms would be
    # unlikely; a few alarms are expected and allowed.
    rng = np.random.default_rng(6)
    fired = [mo.drift_report(_process(250, rng), _process(250, rng)).fired for _ in range(60)]
    rate = Rate(int(np.sum(fired)), len(fired))
    assert rate.value <= 0.10, str(rate)


def test_false_alarm_rate_compares_disjoint_fresh_samples():
    fa = mo.false_alarm_rate(2, n_users=80, n_users_reference=120, days=45, horizon_days=7, seed=11)
    assert fa.rate.total == 2 and len(fa.n_drifted) == 2
    rate, lo, hi = fa.as_list()
    assert 0 <= lo <= rate <= hi <= 1
    # each side holds at most its simulated users (some already cancelled before the date)
    assert all(0 < n <= 120 for n in fa.n_reference) and all(0 < n <= 80 for n in fa.n_current)
    assert "pairs" in fa.statement()


# --------------------------------------------------------------------------------------------
# Simulated scenarios
# --------------------------------------------------------------------------------------------

def test_simulate_window_matches_the_simulator_when_seeds_agree():
    from churnlib.simulate import simulate_events

    a = simulate_events(20, 10, 3)
    b = mo.simulate_window(n_users=20, days=10, seed=3, catalogue_seed=3, start="2018-10-01")
    pd.testing.assert_frame_equal(a, b)


def test_scenario_config_changes_only_the_named_knobs():
    from churnlib.simulate import SimulatorConfig

    base = SimulatorConfig()
    assert mo.scenario_config("same_process", base) == base
    ads = mo.scenario_config("more_adverts", base)
    assert ads.advert_free > base.advert_free and ads.error == base.error
    assert mo.scenario_config("error_spike", base).error > base.error
    with pytest.raises(ValueError, match="unknown scenario"):
        mo.scenario_config("meteor_strike")


@pytest.fixture(scope="module")
def reference_window() -> pd.DataFrame:
    return mo.scenario_window("same_process", n_users=300, seed=7, catalogue_seed=7, start="2018-10-01",
                              all_dates=False)


@pytest.mark.parametrize("scenario, expected", [
    ("more_adverts", {"roll_advert_per_song"}),
    ("error_spike", {"app_crash_count_30d", "error_per_song", "error_per_session_hour"}),
])
def test_simulated_drift_is_detected_where_it_was_planted(reference_window, scenario, expected):
    cur = mo.scenario_window(scenario, n_users=300, seed=8, all_dates=False)
    rep = mo.drift_report(reference_window, cur)
    assert expected & set(rep.drifted["feature"]), rep.summary()
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


def _fitted(X, y):
    return sk_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def test_performance_check_and_recommendation_follow_the_model():
    rng = np.random.default_rng(7)
    X_old, y_old = _labelled(600, rng)
    model = _fitted(X_old, y_old)
    X_ref, y_ref = _labelled(400, rng)
    X_same, y_same = _labelled(400, rng)
    X_new, y_new = _labelled(400, rng, coef=(0.0, 2.0))  # churn now depends on another behaviour
    quiet = mo.drift_report(X_ref, X_same)
    same = mo.performance_check(model, X_ref, y_ref, X_same, y_same, n_bootstrap=50)
    worse = mo.performance_check(model, X_ref, y_ref, X_new, y_new, n_bootstrap=50)
    assert list(same.columns[:3]) == ["reference", "reference_low", "reference_high"]
    assert worse.loc["roc_auc", "change"] < same.loc["roc_auc", "change"]
    assert mo.retrain_recommendation(quiet, same).startswith("No action")
    assert mo.retrain_recommendation(quiet, worse).startswith("Retrain")
    shifted = mo.drift_report(X_ref, X_same.assign(x2=X_same["x2"] + 2))
    assert mo.retrain_recommendation(shifted, same).startswith("Investigate")
    assert mo.retrain_recommendation(shifted, None).startswith("Investigate")


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
    assert res.challenger[0] > res.champion[0]
    assert res.difference[1] > 0
    assert 0 <= res.challenger_threshold <= 1
    assert res.n_train == 500 and res.n_holdout == 400
    # a replacing challenger is saved as a verifiable artifact of its own
    from churnlib.artifact import load_artifact

    path = mo.save_challenger(res, tmp_path / "challenger", id_col="userId",
                              feature_schema=[{"name": c, "kind": "numeric"} for c in X_tr.columns],
                              metadata={"when": "2018-11-15"})
    loaded = load_artifact(path.parent)
    assert loaded.threshold == pytest.approx(res.challenger_threshold)
    assert loaded.manifest["challenge"]["decision"] == "replaced"
    np.testing.assert_allclose(loaded.estimator.predict_proba(X_ho), res.challenger_model.predict_proba(X_ho))


def test_a_worse_challenger_does_not_replace_and_both_scores_are_recorded(tmp_path):
    rng = np.random.default_rng(9)
    X_old, y_old = _labelled(500, rng)
    champion = _fitted(X_old, y_old)
    X_tr, y_tr = _labelled(500, rng)
    X_ho, y_ho = _labelled(400, rng)
    res = mo.challenge(champion, X_tr, rng.permutation(y_tr), X_ho, y_ho, n_bootstrap=50)
    assert res.decision == "kept champion"
    for triple in (res.champion, res.challenger):
        value, low, high = triple
        assert low <= value <= high
    entry = res.record("2018-11-15", {"scenario": "test"})
    assert entry["champion"] == list(res.champion) and entry["challenger"] == list(res.challenger)
    # a tie on the point estimate does not replace under either rule
    tie = mo.challenge(champion, X_old, y_old, X_ho, y_ho, rule="point", n_bootstrap=50)
    assert tie.decision == "kept champion"


def test_calibrated_champion_yields_a_calibrated_challenger():
    from churnlib.thresholds import CalibratedModel

    rng = np.random.default_rng(10)
    X, y = _labelled(400, rng)
    base = _fitted(X, y)
    champion = CalibratedModel(base, "sigmoid", base.predict_proba(X)[:, 1], y)
    X_ho, y_ho = _labelled(300, rng)
    res = mo.challenge(champion, X, y, X_ho, y_ho, n_bootstrap=50)
    assert isinstance(res.challenger_model, CalibratedModel)
    assert res.info["calibration"] == "sigmoid"


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
    drift = mo.drift_report(X, X2.assign(x1=X2["x1"] + 2))
    perf = mo.performance_check(model, X, y, X2, y2, n_bootstrap=50)
    res = mo.challenge(model, X, y, X2, y2, n_bootstrap=50)
    fa = mo.FalseAlarmResult(Rate(1, 10), np.array([1] + [0] * 9), pd.Series({"x1": 1}), [100] * 10, [100] * 10)
    summary = mo.monitoring_summary(reference="r", current="c", drift=drift, performance=perf,
                                    recommendation=mo.retrain_recommendation(drift, perf), false_alarms=fa,
                                    challenge_result=res, scenarios={"shift": drift})
    assert set(summary) == {"reference", "current", "drifted_features", "n_features_checked", "performance",
                            "recommendation", "false_alarm_rate", "n_false_alarm_samples", "challenger",
                            "scenarios"}
    assert summary["drifted_features"][0]["feature"] == "x1"
    assert len(summary["performance"]["current"]["roc_auc"]) == 3
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
    assert a.feature_names == ["x1", "x2"] and 0 < a.threshold < 1
    np.testing.assert_array_equal(a.estimator.predict_proba(table[["x1", "x2"]]),
                                  b.estimator.predict_proba(table[["x1", "x2"]]))
    # a saved model that needs other columns (e.g. trained on a snapshot table) is not used
    from churnlib.artifact import save_artifact

    other = _fitted(table[["x1", "x2"]].rename(columns={"x1": "age"}), table["churned"])
    save_artifact(other, tmp_path / "churn_model.joblib", threshold=0.5,
                  risk_bands={"medium_from": 0.25, "high_from": 0.5}, id_col="userId",
                  feature_schema=[{"name": "age", "kind": "numeric"}, {"name": "x2", "kind": "numeric"}])
    _, why = mo.load_champion(table, model_path=tmp_path / "churn_model.joblib", seed=3)
    assert "lack" in why


def test_reference_window_refuses_a_snapshot_table(spotify_snapshot, tmp_path):
    ref = mo.reference_window(spotify_snapshot, n_users=40, days=30, seed=3, horizon_days=7, output_dir=tmp_path)
    assert ref.simulated and ref.catalogue_seed == 3 and any("one-row-per-user" in n for n in ref.notes)
    assert {"userId", "as_of", "churned"} <= set(ref.table.columns)
    assert ref.latest["as_of"].nunique() == 1


def test_stable_floats_removes_last_digit_noise_and_nothing_else():
    rng = np.random.default_rng(14)
    x = rng.lognormal(3, 2, size=1000)
    table = pd.DataFrame({"hours": x, "count": np.arange(1000), "state": ["CA"] * 1000})
    noisy = table.assign(hours=x * (1 + 1e-13))
    a, b = mo.stable_floats(table), mo.stable_floats(noisy)
    assert (a["hours"] == b["hours"]).mean() > 0.99
    np.testing.assert_allclose(a["hours"], x, rtol=1e-6)
    assert a["count"].equals(table["count"]) and a["state"].equals(table["state"])
