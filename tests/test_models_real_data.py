"""The model comparison on real tables (CI-sized budgets; skipped when ../shared/data is absent)."""
from __future__ import annotations

import json

import pytest

from churnlib import features, scoring
from churnlib import training as T
from churnlib.load import load_snapshot

pytestmark = pytest.mark.real_data

BUDGET = dict(n_splits=3, n_repeats=1, search_budget=2, n_permutations=19, n_bootstrap=100, seed=0)


def test_spotify_snapshot_has_no_detectable_signal(spotify_snapshot, tmp_path):
    r = T.train_command(spotify_snapshot, "user_id", "is_churned", out=tmp_path,
                        models=("dummy", "logreg"), strategies=("none", "class_weight"), **BUDGET)
    auc = r.holdout.loc["roc_auc"]
    assert auc["low"] < 0.5 < auc["high"]
    assert not r.permutation.significant and r.permutation.p_value > 0.05
    assert not r.signal_detected and r.signal_statement().startswith("No detectable signal:")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["signal_detected"] is False and "No detectable signal" in metrics["signal_statement"]
    assert metrics["data"]["rows"] == 8000 and metrics["data"]["fingerprint"]
    assert "not clearly better than the baseline" in metrics["chosen"]["reason"]
    # the paired comparison on the same folds says the same: the leader is within noise of no skill
    assert metrics["selection"]["no_skill_within_noise"] is True
    assert metrics["baseline"]["verdict"] != "better"  # nothing beats default boosting on noise


@pytest.fixture(scope="module")
def mini(mini_user_features):
    return load_snapshot(mini_user_features, id_col="userId", label_col="churn").table


def test_mini_leakage_report_flags_tenure(mini):
    report = features.leakage_report(mini, "churn", exclude=("userId", "split"))
    assert "tenure_days" in report.loc[report["suspect"], "feature"].tolist()


def test_mini_runs_through_the_whole_comparison_with_its_split(mini, tmp_path):
    r = T.run_training(mini, "userId", "churn", "split", models=("dummy", "logreg", "lightgbm"),
                       strategies=("none", "class_weight", "smote"), **BUDGET)
    assert r.info["data"]["rows_test"] == int((mini["split"] == "test").sum())
    assert "tenure_days" in r.info["data"]["leakage_suspects_dropped"]
    assert "tenure_days" not in [f["name"] for f in r.feature_schema]
    assert all(c.error is None for c in r.candidates)
    assert r.chosen.model != "dummy" and 0 < r.threshold < 1
    assert r.holdout.loc["roc_auc", "low"] <= r.holdout.loc["roc_auc", "value"] <= r.holdout.loc["roc_auc", "high"]
    paths = r.save(tmp_path, data_fingerprint="mini")
    mini.drop(columns=["churn"]).to_parquet(tmp_path / "t.parquet")  # scoring needs no label
    risk = scoring.score_command(paths["artifact"], table=tmp_path / "t.parquet", out=tmp_path / "risk.csv")
    assert len(risk) == len(mini) and set(risk["risk_band"]) <= {"low", "medium", "high"}


def test_real_event_sample_scores_every_current_user(event_sample, tmp_path):
    from churnlib.simulate import write_event_log

    log = tmp_path / "sim.parquet"
    write_event_log(log, n_users=150, days=45, seed=4)
    table = features.build_features(log, features.observation_dates(log, 14), horizon_days=14)
    r = T.run_training(table, "userId", "churned", models=("logreg",), strategies=("none",), search_budget=0,
                       n_permutations=1, n_bootstrap=10)
    r.save(tmp_path / "m")
    risk = scoring.score_command(tmp_path / "m", events=event_sample, out=tmp_path / "risk.csv")
    assert len(risk) == 97 and risk["userId"].is_unique  # 97 real users, none cancelled in the sample
    assert risk["churn_probability"].between(0, 1).all()
