"""Scoring a feature table and an event log with a saved model."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from churnlib import artifact as A
from churnlib import evaluation as ev
from churnlib import scoring
from churnlib import models as M
from churnlib import thresholds as th
from churnlib.calibration import CalibratedClassifier
from churnlib.load import DataValidationError, load_events
from churnlib.model import ARTIFACT_NAME, ChurnModel, feature_schema


@pytest.fixture(scope="module")
def event_model(sim_trained):
    """The session's model trained on event features of the simulated log, and its feature table."""
    return sim_trained


def test_score_a_table_writes_ids_probabilities_labels_and_bands(event_model, tmp_path):
    out, table = event_model
    path = tmp_path / "table.csv"
    table.drop(columns=["churned"]).to_csv(path, index=False)
    risk = scoring.score_command(out, table=path, out=tmp_path / "risk.csv")
    written = pd.read_csv(tmp_path / "risk.csv", dtype={"userId": str})
    # a stacked feature table keys rows by user and date: as_of is written; reasons by default
    assert list(written.columns) == ["userId", "as_of", *scoring.OUTPUT_COLUMNS, *scoring.REASON_COLUMNS,
                                     scoring.WARNINGS_COLUMN]
    assert list(written["userId"]) == list(table["userId"])
    assert (pd.to_datetime(written["as_of"], utc=True) == table["as_of"].reset_index(drop=True)).all()
    # the holdout rows of the table may hold categories the training part never had: those, and only
    # those, are flagged
    model = ChurnModel.load(out)
    unseen = np.zeros(len(table), dtype=bool)
    for f in model.schema:
        if f["kind"] == "categorical":
            unseen |= (~table[f["name"]].isin(f["categories"]) & table[f["name"]].notna()).to_numpy()
    flagged = written[scoring.WARNINGS_COLUMN].notna().to_numpy()
    assert (flagged == unseen).all()
    assert written.loc[flagged, scoring.WARNINGS_COLUMN].str.contains(": unseen category '").all()
    quality = json.loads((tmp_path / "risk.csv.quality.json").read_text())
    assert quality["rows_read"] == quality["rows_kept"] == quality["rows_scored"] == len(table)
    assert quality["model_version"] == model.version == risk.attrs["model_version"]  # which model scored them
    assert risk.attrs["quality"].to_dict() == {k: quality[k] for k in risk.attrs["quality"].to_dict()}
    p = risk["churn_probability"].to_numpy()
    np.testing.assert_allclose(p, model.churn_probability(table))
    assert ((p >= model.threshold) == risk["churn_label"].astype(bool)).all()
    expect = np.where(p >= model.bands.high_from, "high", np.where(p >= model.bands.medium_from, "medium", "low"))
    assert (risk["risk_band"].to_numpy() == expect).all()
    # labels with more churn get higher scores on average (the model learned something)
    assert p[table["churned"] == 1].mean() > p[table["churned"] == 0].mean()


def test_score_an_event_log_as_of_its_last_day(event_model, sim_log, tmp_path):
    out, _ = event_model
    risk = scoring.score_command(out, events=sim_log, out=tmp_path / "risk.csv")
    ev = load_events(sim_log).events
    account = risk.attrs["quality"]
    assert account.kind == "events" and account.rows_kept == len(ev)
    assert any(n.startswith(f"{ev['userId'].nunique():,} users in the log") for n in account.notes)
    gone = set(ev.loc[ev["page"] == "Cancellation Confirmation", "userId"])
    assert set(risk["userId"]) == set(ev["userId"]) - gone  # current users only, each once
    assert risk["userId"].is_unique and risk["churn_probability"].between(0, 1).all()
    feats = scoring.features_from_events(sim_log)
    assert (feats["as_of"] > pd.Timestamp(int(ev["ts"].max()), unit="ms", tz="UTC")).all()


def test_scoring_refuses_bad_inputs(event_model, tmp_path):
    out, table = event_model
    path = tmp_path / "t.parquet"
    table.drop(columns=["thumbs_down_per_song"]).to_parquet(path)
    with pytest.raises(DataValidationError, match="thumbs_down_per_song") as err:
        scoring.score_command(out, table=path, out=tmp_path / "r.csv")
    assert err.value.file == str(path)
    with pytest.raises(ValueError, match="exactly one"):
        scoring.score_command(out, out=tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.csv.quality.json").exists()


def test_tampered_model_is_refused_before_scoring(event_model, tmp_path):
    out, table = event_model
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    art = copy / ARTIFACT_NAME
    art.write_bytes(art.read_bytes()[:-1] + bytes([art.read_bytes()[-1] ^ 0xFF]))
    table.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(A.ArtifactError):
        scoring.score_command(copy, table=tmp_path / "t.parquet", out=tmp_path / "r.csv")


# --------------------------------------------------------------------------------------------
# Reasons and the speed work
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lgbm_model(event_model, tmp_path_factory):
    """A calibrated LightGBM pipeline (the usual final model) saved as an artifact, and its table."""
    _, table = event_model
    X = M.feature_frame(table, "userId", "churned")
    y = table["churned"].to_numpy()
    g = table["userId"].to_numpy()
    pipe = M.make_pipeline("lightgbm", "none", seed=0)
    oof = ev.oof_predict(pipe, X, y, ev.cv_splits(y, g, 3, 1, 0))[0]
    estimator = CalibratedClassifier(pipe, "isotonic").fit(X, y, oof_proba=oof)
    model = ChurnModel(estimator, threshold=0.3, schema=feature_schema(X), id_col="userId",
                       bands=th.RiskBands(medium_from=0.15, high_from=0.3))
    out = tmp_path_factory.mktemp("lgbm")
    model.save(out)
    return out, table


@pytest.mark.parametrize("which", ["logreg", "lightgbm"])
def test_probabilities_equal_the_models_own_predict_proba(which, event_model, lgbm_model):
    out, table = event_model if which == "logreg" else lgbm_model
    fresh = ChurnModel.load(out)  # untouched by score_frame's thread settings
    X = fresh.prepare(table)
    expect = fresh.estimator.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(fresh.churn_probability(table), expect)
    for _, step in fresh.pipeline.steps:  # as scoring ran before the speed work: every step with n_jobs at 2
        if "n_jobs" in step.get_params(deep=False):
            step.set_params(n_jobs=2)
    np.testing.assert_array_equal(fresh.estimator.predict_proba(X)[:, 1], expect)
    model = ChurnModel.load(out)
    for n_jobs in (1, 2):
        for reasons in (False, True):
            got = scoring.score_frame(model, table, n_jobs=n_jobs, reasons=reasons)["churn_probability"]
            np.testing.assert_array_equal(got.to_numpy(), expect)


def test_scoring_leaves_the_callers_table_unchanged(event_model):
    out, table = event_model
    model = ChurnModel.load(out)
    frame = table.drop(columns=["churned"]).head(30).copy()
    frame["events_7d"] = frame["events_7d"].astype(str)  # numbers as text: coerced for the model only
    before = frame.copy()
    scored = scoring.score_frame(model, frame, reasons=False)
    pd.testing.assert_frame_equal(frame, before)
    ref = scoring.score_frame(model, table.drop(columns=["churned"]).head(30), reasons=False)
    np.testing.assert_allclose(scored["churn_probability"], ref["churn_probability"])


@pytest.mark.parametrize("which", ["logreg", "lightgbm"])
def test_reasons_name_risk_raising_features_in_plain_words(which, event_model, lgbm_model):
    out, table = event_model if which == "logreg" else lgbm_model
    model = ChurnModel.load(out)
    scored = scoring.score_frame(model, table)
    assert list(scored.columns) == ["userId", "as_of", *scoring.OUTPUT_COLUMNS, *scoring.REASON_COLUMNS,
                                    scoring.WARNINGS_COLUMN]
    assert scored["churn_probability"].equals(scoring.score_frame(model, table, reasons=False)["churn_probability"])
    by = model.shap(table).by_feature()
    labels = {f.replace("_", " "): f for f in model.feature_names}
    for i, row in scored.iterrows():
        texts = [t for t in row[list(scoring.REASON_COLUMNS)] if pd.notna(t)]
        feats = [labels[t.split(": ")[0]] for t in texts]
        assert all(t.endswith("(raises risk)") for t in texts)
        assert all(by.loc[i, f] > 0 for f in feats)  # only features that raise this user's risk
        assert feats == list(by.loc[i].sort_values(ascending=False).index[:len(feats)])  # strongest first
        assert len(texts) == min(3, int((by.loc[i] > 0).sum()))
    assert scored["reason_1"].notna().mean() > 0.9


def test_score_command_writes_reasons_to_the_csv(event_model, tmp_path):
    out, table = event_model
    path = tmp_path / "table.parquet"
    table.drop(columns=["churned"]).to_parquet(path)
    scoring.score_command(out, table=path, out=tmp_path / "risk.csv", reasons=True)
    written = pd.read_csv(tmp_path / "risk.csv", dtype={"userId": str})
    assert list(written.columns) == ["userId", "as_of", *scoring.OUTPUT_COLUMNS, *scoring.REASON_COLUMNS,
                                     scoring.WARNINGS_COLUMN]
    assert written["reason_1"].dropna().str.endswith("(raises risk)").all()
    scoring.score_command(out, table=path, out=tmp_path / "plain.csv", reasons=False)
    assert list(pd.read_csv(tmp_path / "plain.csv").columns) == ["userId", "as_of", *scoring.OUTPUT_COLUMNS,
                                                                 scoring.WARNINGS_COLUMN]


def test_scored_reasons_quote_the_training_median(tmp_path):
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"days_since_last_login": rng.exponential(5, 200), "songs_7d": rng.poisson(30, 200)})
    y = (X["days_since_last_login"] + rng.normal(0, 1, 200) > 6).astype(int).to_numpy()
    ChurnModel(M.make_pipeline("logreg").fit(X, y), threshold=0.5, schema=feature_schema(X), id_col="user_id",
               bands=th.RiskBands(medium_from=0.25, high_from=0.5)).save(tmp_path)
    model = ChurnModel.load(tmp_path / ARTIFACT_NAME)
    scored = scoring.score_frame(model, X.assign(user_id=range(200)))
    assert list(scored["user_id"]) == [str(i) for i in range(200)]
    texts = scored["reason_1"].dropna()
    assert len(texts) and texts.str.contains(", typical ", regex=False).all()
    median = X["days_since_last_login"].median()
    far = scored.loc[X["days_since_last_login"] > 15, "reason_1"]
    assert len(far) and far.str.contains(f", typical {median:.1f} (raises risk)", regex=False).all()


def test_a_table_without_the_id_column_is_refused_not_numbered(event_model):
    out, table = event_model
    with pytest.raises(DataValidationError, match="no id column 'userId'") as err:
        scoring.score_frame(ChurnModel.load(out), table.drop(columns=["userId"]).head(7), reasons=False)
    assert err.value.column == "userId"


def test_a_snapshot_without_as_of_keys_rows_by_id_alone(event_model):
    out, table = event_model
    latest = table[table["as_of"] == table["as_of"].max()].drop(columns=["as_of", "churned"]).head(20)
    scored = scoring.score_frame(ChurnModel.load(out), latest, reasons=False)
    assert list(scored.columns) == ["userId", *scoring.OUTPUT_COLUMNS, scoring.WARNINGS_COLUMN]
    assert list(scored["userId"]) == list(latest["userId"]) and (scored[scoring.WARNINGS_COLUMN] == "").all()
    twice = pd.concat([latest, latest.head(3)])
    with pytest.raises(DataValidationError, match="duplicate id"):
        scoring.score_frame(ChurnModel.load(out), twice, reasons=False)
