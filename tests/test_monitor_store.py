"""Monitoring served features: a real store filled with scored users of simulated logs, against the
training reference that ``train`` writes beside the model."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from churnlib import features as F
from churnlib import monitoring_report as mr
from churnlib import scenarios as sc
from churnlib import training as T
from churnlib.drift import MIN_ROWS
from churnlib.files import sha256_file
from churnlib.labels import to_epoch_ms
from churnlib.load import DataValidationError
from churnlib.model import ChurnModel
from churnlib.monitoring import STORE_OUTPUTS, monitor_store
from churnlib.schema import CHURN_PAGE
from churnlib.scoring import score_frame
from churnlib.store import REFERENCE_NAME, PredictionStore, read_reference

FAST = dict(models=("logreg",), strategies=("none",), search_budget=0, n_permutations=1, n_bootstrap=20)
PLANTED = {"error_per_song", "error_per_session_hour", "app_crash_count_30d"}  # what error_spike changes


def _served(model: ChurnModel, scenario: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Score the current users of a simulated log the way `score --events` does, at the same offset into
    the log as the reference's latest observation date."""
    events = sc.simulate_window(sc.scenario_config(scenario), n_users=300, seed=seed, catalogue_seed=7,
                                start="2018-12-03", id_offset=10**6 * seed)
    as_of = to_epoch_ms(F.observation_dates(events, 14)[-1])
    feats = F.user_features(events, as_of)
    gone = set(events.loc[(events["page"] == CHURN_PAGE) & (events["ts"] < as_of), "userId"].astype(str))
    feats = feats[~feats["userId"].isin(gone)].reset_index(drop=True)
    scores = score_frame(model, feats, "userId", reasons=False)
    return scores, feats[["userId", *model.feature_names]], as_of


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A model trained by `train` on a simulated log, and a store holding two served weeks: users of the
    same process (week of 2019-01-10) and of a faulty release (error_spike, week of 2019-02-10)."""
    tmp = tmp_path_factory.mktemp("served")
    log = sc.simulate_window(sc.scenario_config("same_process"), n_users=300, seed=7, catalogue_seed=7,
                             start="2018-10-01", out=tmp / "log.parquet")
    table = F.build_features(log, F.observation_dates(log, 14), horizon_days=14)
    table.to_parquet(tmp / "features.parquet")
    result = T.train_command(tmp / "features.parquet", "userId", "churned", out=tmp / "models", **FAST)
    model = ChurnModel.load(tmp / "models")
    store = tmp / "predictions.sqlite"
    with PredictionStore(store) as st:
        for scenario, seed, when in (("same_process", 8, "2019-01-10T12:00Z"), ("error_spike", 9, "2019-02-10T12:00Z")):
            scores, feats, as_of = _served(model, scenario, seed)
            st.append(scores, feats, model_version=model.version, as_of=as_of, served_at=when)
    return {"tmp": tmp, "models": tmp / "models", "store": store, "model": model, "result": result,
            "table": table}


def test_train_writes_the_training_reference_and_records_its_digest(served):
    models, model, result = served["models"], served["model"], served["result"]
    path = models / REFERENCE_NAME
    assert result.info["written"]["reference"] == str(path)
    metrics = json.loads((models / "metrics.json").read_text())
    digest = sha256_file(path)
    assert metrics["reference"]["sha256"] == digest == model.info["reference"]["sha256"]
    ref = read_reference(models, model.info)
    assert list(ref.columns) == ["userId", "as_of", *model.feature_names]
    assert len(ref) == metrics["data"]["rows_train"] == metrics["reference"]["rows"]
    # the training rows exactly: no holdout user, every training user
    table = served["table"]
    assert set(ref["userId"]) | set(table["userId"]) == set(table["userId"])
    assert len(set(ref["userId"])) == metrics["reference"]["users"] < table["userId"].nunique()
    pd.testing.assert_frame_equal(
        ref.drop(columns=["userId", "as_of"]),
        model.prepare(table.merge(ref[["userId", "as_of"]], on=["userId", "as_of"])), check_dtype=True)


def test_a_same_process_week_stays_quiet_and_a_faulty_release_is_found(served):
    quiet = monitor_store(served["store"], served["models"], end="2019-01-10", out_dir=served["tmp"] / "quiet",
                          plot=mr.write_store_figure, wording=mr.store_text)
    loud = monitor_store(served["store"], served["models"], end="2019-02-10", out_dir=served["tmp"] / "loud",
                         plot=mr.write_store_figure, wording=mr.store_text)
    assert quiet.enough and loud.enough and quiet.users == loud.users > MIN_ROWS
    assert not PLANTED & set(quiet.drifted) and len(quiet.drifted) < len(loud.drifted)
    assert PLANTED <= set(loud.drifted) and set(loud.drifted[:3]) <= PLANTED | {"error"}
    assert loud.fired and not quiet.fired
    # each window holds only its own week: the other week's users are outside it
    assert quiet.rows == loud.rows == quiet.users
    for res, folder in ((quiet, "quiet"), (loud, "loud")):
        out = served["tmp"] / folder
        assert {p.name for p in out.iterdir()} == set(STORE_OUTPUTS.values())
        summary = json.loads((out / STORE_OUTPUTS["summary"]).read_text())
        assert summary["status"] == "ok" and summary["drifted"] == res.drifted
        assert summary["model"]["version"] == served["model"].version and summary["text"] == res.text()
        drift_csv = pd.read_csv(out / STORE_OUTPUTS["drift"])
        assert set(drift_csv["feature"]) == set(served["model"].feature_names) | {"churn probability"}
    text = loud.text()
    assert "error_per_song (PSI" in text and "KS" in text and "7 days" in text
    assert f"{loud.users:,} users" in text and "Drift found" in text
    assert "No feature drifted" in quiet.text()


def test_each_user_counts_once_with_the_latest_prediction(served, tmp_path):
    store = tmp_path / "p.sqlite"
    shutil.copy(served["store"], store)  # the module's store is closed: its WAL is checkpointed into it
    model = served["model"]
    with PredictionStore(store) as st:
        week = st.read(until="2019-01-11", model_version=model.version)
        again = week.copy()
        again["error_per_song"] = 1.0  # the same users scored again later in the window, with other values
        scores = again.rename(columns={"user_id": "userId"})[["userId", "churn_probability", "risk_band"]]
        feats = again.rename(columns={"user_id": "userId"})[["userId", *model.feature_names]]
        st.append(scores, feats, model_version=model.version, as_of=None, served_at="2019-01-10T13:00Z")
        st.append(scores.head(5), feats.head(5), model_version="0123456789ab", as_of=None,
                  served_at="2019-01-10T14:00Z")
    res = monitor_store(store, served["models"], end="2019-01-10", out_dir=tmp_path / "out")
    assert res.rows == 2 * len(week) and res.users == len(week)
    assert "error_per_song" in res.drifted  # the later rows are the ones compared
    assert res.other_versions == {"0123456789ab": 5} and "other model versions" in res.notes[0]


def test_a_window_with_too_few_users_says_so(served, tmp_path):
    store = tmp_path / "p.sqlite"
    model = served["model"]
    with PredictionStore(served["store"], readonly=True) as full:
        week = full.read(until="2019-01-11")
    with PredictionStore(store) as st:
        few = week.head(MIN_ROWS - 1).rename(columns={"user_id": "userId"})
        st.append(few[["userId", "churn_probability", "risk_band"]], few[["userId", *model.feature_names]],
                  model_version=model.version, as_of=None, served_at="2019-01-10T12:00Z")
    res = monitor_store(store, served["models"], out_dir=tmp_path / "out", plot=mr.write_store_figure,
                        wording=mr.store_text)
    assert res.status == "too few rows" and not res.enough and not res.fired and res.drifted == []
    assert f"the window holds {MIN_ROWS - 1} users" in res.text() and "--window-days" in res.text()
    assert not (tmp_path / "out" / STORE_OUTPUTS["figure"]).exists()
    assert json.loads((tmp_path / "out" / STORE_OUTPUTS["summary"]).read_text())["status"] == "too few rows"
    # the window ends at the latest prediction by default; an empty window is not a crash either
    empty = monitor_store(store, served["models"], end="2018-01-01", out_dir=tmp_path / "out2")
    assert empty.users == 0 and empty.status == "too few rows"


def test_a_model_without_reference_needs_one_and_accepts_the_training_table(served, tmp_path):
    bare = tmp_path / "models"
    bare.mkdir()
    for p in served["models"].iterdir():
        if p.name != REFERENCE_NAME:
            shutil.copy(p, bare / p.name)
    with pytest.raises(DataValidationError, match="retrain the model with this version of churnlib.*--reference"):
        monitor_store(served["store"], bare, out_dir=tmp_path / "out")
    (bare / REFERENCE_NAME).write_bytes(b"PAR1 not the reference")
    with pytest.raises(DataValidationError, match="not the reference this model was saved with"):
        monitor_store(served["store"], bare, out_dir=tmp_path / "out")
    res = monitor_store(served["store"], bare, reference=served["tmp"] / "features.parquet", end="2019-02-10",
                        out_dir=tmp_path / "out")
    assert res.reference.endswith("features.parquet") and PLANTED <= set(res.drifted)
    with pytest.raises(DataValidationError, match="end must be a date"):
        monitor_store(served["store"], served["models"], end="soon", out_dir=tmp_path / "out")


def test_save_writes_the_training_rows_the_model_was_fitted_on_or_the_rows_given(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    t = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": rng.normal(size=n), "x2": rng.integers(0, 9, n),
                      "plan": rng.choice(["free", "paid"], n)})
    t["is_churned"] = (rng.random(n) < 1 / (1 + np.exp(1.5 - 2 * t["x1"]))).astype(int)
    t["split"] = np.where(np.arange(n) % 4 == 0, "test", "train")
    r = T.run_training(t, "user_id", "is_churned", "split", **FAST)
    written = r.save(tmp_path / "a")
    ref = pd.read_parquet(written["reference"])
    assert ref["user_id"].tolist() == t.loc[t["split"] == "train", "user_id"].tolist()
    assert list(ref.columns) == ["user_id", *r.model.feature_names]
    given = r.save(tmp_path / "b", reference=t[t["split"] == "train"])
    pd.testing.assert_frame_equal(pd.read_parquet(given["reference"]), ref)
    # no rows to write: no reference, and metrics.json says why
    r.train_rows = None
    r.save(tmp_path / "c")
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert m["reference"]["file"] is None and "no reference rows" in m["reference"]["why"]
    assert not (tmp_path / "c" / REFERENCE_NAME).exists()
