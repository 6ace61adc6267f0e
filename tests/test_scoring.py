"""Scoring a feature table and an event log with a saved model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnlib import artifact as A
from churnlib import features, scoring
from churnlib import models as M


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory):
    from churnlib.simulate import write_event_log

    path = tmp_path_factory.mktemp("log") / "sim.parquet"
    write_event_log(path, n_users=150, days=45, seed=3)
    return path


@pytest.fixture(scope="module")
def event_model(sim_log, tmp_path_factory):
    """A model trained on event features of the simulated log (run_training, CI-sized)."""
    table = features.build_features(sim_log, features.observation_dates(sim_log, 14), horizon_days=14)
    r = M.run_training(table, "userId", "churned", models=("logreg",), strategies=("none",), search_budget=0,
                       n_permutations=1, n_bootstrap=10)
    out = tmp_path_factory.mktemp("model")
    r.save(out)
    return out, table


def test_score_a_table_writes_ids_probabilities_labels_and_bands(event_model, tmp_path):
    out, table = event_model
    path = tmp_path / "table.csv"
    table.drop(columns=["churned"]).to_csv(path, index=False)
    risk = scoring.score_command(out, table=path, out=tmp_path / "risk.csv")
    written = pd.read_csv(tmp_path / "risk.csv", dtype={"userId": str})
    assert list(written.columns) == ["userId", *scoring.OUTPUT_COLUMNS]
    assert list(written["userId"]) == list(table["userId"])
    model = A.load_artifact(out)
    p = risk["churn_probability"].to_numpy()
    assert ((p >= model.threshold) == risk["churn_label"].astype(bool)).all()
    expect = np.where(p >= model.risk_bands["high_from"], "high",
                      np.where(p >= model.risk_bands["medium_from"], "medium", "low"))
    assert (risk["risk_band"].to_numpy() == expect).all()
    # labels with more churn get higher scores on average (the model learned something)
    assert p[table["churned"] == 1].mean() > p[table["churned"] == 0].mean()


def test_score_an_event_log_as_of_its_last_day(event_model, sim_log, tmp_path):
    from churnlib.load import load_events

    out, _ = event_model
    risk = scoring.score_command(out, events=sim_log, out=tmp_path / "risk.csv")
    ev = load_events(sim_log).events
    gone = set(ev.loc[ev["page"] == "Cancellation Confirmation", "userId"])
    assert set(risk["userId"]) == set(ev["userId"]) - gone  # current users only, each once
    assert risk["userId"].is_unique and risk["churn_probability"].between(0, 1).all()
    feats = scoring.features_from_events(sim_log)
    assert (feats["as_of"] > pd.Timestamp(int(ev["ts"].max()), unit="ms", tz="UTC")).all()


def test_scoring_refuses_bad_inputs(event_model, tmp_path):
    out, table = event_model
    path = tmp_path / "t.parquet"
    table.drop(columns=["thumbs_down_per_song"]).to_parquet(path)
    with pytest.raises(ValueError, match="thumbs_down_per_song"):
        scoring.score_command(out, table=path, out=tmp_path / "r.csv")
    with pytest.raises(ValueError, match="exactly one"):
        scoring.score_command(out, out=tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()


def test_tampered_model_is_refused_before_scoring(event_model, tmp_path):
    import shutil

    out, table = event_model
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    art = copy / M.ARTIFACT_NAME
    art.write_bytes(art.read_bytes()[:-1] + bytes([art.read_bytes()[-1] ^ 0xFF]))
    table.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(A.ArtifactError):
        scoring.score_command(copy, table=tmp_path / "t.parquet", out=tmp_path / "r.csv")
