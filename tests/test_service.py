"""The prediction service through FastAPI's TestClient: every endpoint, every error, the store, parity.

The real server process (uvicorn on a free port, restarts) is ``tests/test_service_server.py``.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churnlib import features, load, scoring, service
from churnlib import models as M
from churnlib.artifact import ArtifactError
from churnlib.intervals import Interval
from churnlib.model import ARTIFACT_NAME, ChurnModel
from churnlib.store import PredictionStore

AS_OF = "2018-11-10"
TRAIN_DATES = ["2018-10-22", "2018-10-29"]


# --------------------------------------------------------------------------------------------
# Fixtures: a small event model (calibrated LightGBM, the usual final model) and a row model
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def events(sim_log) -> pd.DataFrame:
    return pd.read_parquet(sim_log)


@pytest.fixture(scope="module")
def event_model_dir(sim_log, tmp_path_factory) -> Path:
    table = features.build_features(sim_log, TRAIN_DATES, horizon_days=14)
    X = M.feature_frame(table, "userId", "churned")
    model = ChurnModel.fit(M.make_pipeline("lightgbm"), X, table["churned"], groups=table["userId"],
                           calibration="sigmoid")
    out = tmp_path_factory.mktemp("event_model")
    model.save(out, info={"holdout": {"roc_auc": {"value": 0.71, "low": 0.65, "high": 0.77}},
                          "data_fingerprint": "f" * 64, "data": {"rows": len(table), "users": 150},
                          "model": {"model": "lightgbm", "strategy": "none"}})
    return out


@pytest.fixture(scope="module")
def event_model(event_model_dir) -> ChurnModel:
    return ChurnModel.load(event_model_dir)


@pytest.fixture(scope="module")
def client(event_model_dir):
    with TestClient(service.create_app(event_model_dir), raise_server_exceptions=False) as c:
        yield c


def _records(events: pd.DataFrame, users: list[str], until: str | None = "2018-11-11") -> list[dict[str, Any]]:
    """Raw events as JSON objects (epoch-ms ts; missing values as null), before ``until`` when given."""
    keep = events["userId"].isin(users)
    if until is not None:
        keep &= events["ts"] < pd.Timestamp(until, tz="UTC").value // 10**6
    rows = events[keep].to_dict("records")
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def _current_users(events: pd.DataFrame, n: int) -> list[str]:
    """Users active before AS_OF who never cancelled, from the 20th busiest on (small requests, fast tests)."""
    before = events[events["ts"] < pd.Timestamp(AS_OF, tz="UTC").value // 10**6]
    gone = set(events.loc[events["page"] == "Cancellation Confirmation", "userId"])
    counts = before[before["userId"].ne("") & ~before["userId"].isin(gone)].groupby("userId").size()
    return list(counts.sort_values(ascending=False).index[20:20 + n])


def _error(resp) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    (d,) = resp.json()["detail"]
    return d


def _expected_load_error(records: list[dict[str, Any]]) -> load.DataValidationError:
    with pytest.raises(load.DataValidationError) as err:
        load.load_event_records(records, strict=True, source="request")
    return err.value


# --------------------------------------------------------------------------------------------
# Health, model info, docs
# --------------------------------------------------------------------------------------------

def test_health_names_the_model_and_counts_uptime(client, event_model):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model_loaded"] is True
    assert h["model_version"] == event_model.version and len(h["model_version"]) == 12
    assert h["input"] == "events" and h["uptime_seconds"] >= 0 and h["store"] is None
    assert client.get("/health").json()["uptime_seconds"] >= h["uptime_seconds"]


def test_model_info_reports_the_manifest(client, event_model):
    info = client.get("/model/info").json()
    assert info["model_version"] == event_model.version and info["sha256"] == event_model.info["sha256"]
    assert info["threshold"] == pytest.approx(event_model.threshold)
    assert info["risk_bands"]["high_from"] == pytest.approx(event_model.bands.high_from)
    auc = info["metrics"]["holdout"]["roc_auc"]
    assert auc["text"] == Interval(0.71, 0.65, 0.77).text() and auc["low"] == 0.65
    assert [f["name"] for f in info["feature_schema"]] == event_model.feature_names
    assert info["training_data"]["fingerprint"] == "f" * 64
    assert info["versions"]["saved_with"]["lightgbm"] == info["versions"]["running"]["lightgbm"]
    assert info["versions"]["running"]["fastapi"] and info["input"] == "events"


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/health", "/model/info", "/predict", "/predict/batch"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"PredictRequest", "PredictResponse", "BatchResponse", "Prediction"} <= set(schemas)
    assert {"userId", "churn_probability", "churn_pred", "risk_band", "reasons", "model_version",
            "inference_timestamp"} <= set(schemas["PredictResponse"]["properties"])
    assert set(spec["paths"]["/predict"]["post"]["responses"]) >= {"200", "413", "422", "500"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_a_tampered_model_is_refused_before_anything_listens(event_model_dir, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(service.uvicorn, "run", lambda app, **kw: calls.append(kw))
    service.serve(event_model_dir, port=8123)
    assert calls == [{"host": "127.0.0.1", "port": 8123, "log_level": "warning"}]  # loopback by default
    copy = tmp_path / "m"
    shutil.copytree(event_model_dir, copy)
    art = copy / ARTIFACT_NAME
    data = art.read_bytes()
    art.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(ArtifactError, match="SHA-256"):
        service.serve(copy)
    with pytest.raises(ArtifactError):
        service.create_app(copy)
    assert len(calls) == 1


# --------------------------------------------------------------------------------------------
# Predictions and parity with `python -m churnlib score`
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_scores(event_model_dir, sim_log, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("cli") / "risk.csv"
    return scoring.score_command(event_model_dir, events=sim_log, out=out, as_of=AS_OF, n_jobs=1).set_index("userId")


def test_one_user_equals_the_command_line(client, events, cli_scores, event_model):
    (user,) = _current_users(events, 1)
    r = client.post("/predict", json={"events": _records(events, [user]), "as_of": AS_OF})
    assert r.status_code == 200, r.text
    got = r.json()
    want = cli_scores.loc[user]
    assert got["userId"] == user
    assert got["churn_probability"] == pytest.approx(want["churn_probability"], rel=1e-12, abs=1e-15)
    assert got["churn_pred"] == want["churn_label"] == int(got["churn_probability"] >= event_model.threshold)
    assert got["risk_band"] == want["risk_band"]
    assert got["reasons"] == [t for t in want[list(scoring.REASON_COLUMNS)] if isinstance(t, str)]
    assert 1 <= len(got["reasons"]) <= 3 and all(t.endswith("(raises risk)") for t in got["reasons"])
    assert got["model_version"] == event_model.version
    assert pd.Timestamp(got["as_of"]) == pd.Timestamp(AS_OF, tz="UTC")
    assert abs(pd.Timestamp(got["inference_timestamp"]) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)


def test_batch_equals_the_command_line(client, events, cli_scores):
    users = _current_users(events, 8)  # events after as_of are ignored: a day of them is enough
    r = client.post("/predict/batch", json={"events": _records(events, users), "as_of": AS_OF})
    assert r.status_code == 200, r.text
    body = r.json()
    got = pd.DataFrame(body["predictions"]).set_index("userId")
    assert sorted(got.index) == sorted(users) and body["n_predictions"] == len(users)
    want = cli_scores.loc[got.index]
    np.testing.assert_allclose(got["churn_probability"], want["churn_probability"], rtol=1e-12, atol=0)
    assert (got["risk_band"] == want["risk_band"]).all() and (got["churn_pred"] == want["churn_label"]).all()


def test_as_of_defaults_to_midnight_after_the_last_event(client, events, event_model):
    (user,) = _current_users(events, 1)
    records = _records(events, [user])[:300]
    r = client.post("/predict", json={"events": records})
    assert r.status_code == 200, r.text
    last = max(e["ts"] for e in records)
    assert pd.Timestamp(r.json()["as_of"]) == pd.Timestamp(last, unit="ms", tz="UTC").normalize() + pd.Timedelta(days=1)
    iso = [{**e, "ts": pd.Timestamp(e["ts"], unit="ms", tz="UTC").isoformat()} for e in records]  # ISO ts too
    again = client.post("/predict", json={"events": iso, "as_of": int(pd.Timestamp(r.json()["as_of"]).value // 10**6)})
    assert again.json()["churn_probability"] == pytest.approx(r.json()["churn_probability"], rel=1e-12)


def test_unknown_fields_are_ignored_with_a_note(client, events):
    (user,) = _current_users(events, 1)
    records = _records(events, [user])[:300]
    plain = client.post("/predict", json={"events": records, "as_of": AS_OF}).json()
    extra = [{**e, "favourite_colour": "blue"} if i % 2 else e for i, e in enumerate(records)]
    r = client.post("/predict", json={"events": extra, "as_of": AS_OF, "priority": "high"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["churn_probability"] == plain["churn_probability"]
    assert any("'favourite_colour'" in n and f"in {len(records) // 2:,} events, first event 2" in n
               for n in got["notes"])
    assert any("body field" in n and "'priority'" in n for n in got["notes"])
    assert not plain["notes"] or not any("unknown" in n for n in plain["notes"])


# --------------------------------------------------------------------------------------------
# Bad input: 422 naming the field, with the loader's and the checks' words
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_user(events) -> list[dict[str, Any]]:
    (user,) = _current_users(events, 1)
    return _records(events, [user])[:40]


def test_a_bad_timestamp_names_the_event_and_field(client, one_user):
    records = [dict(e) for e in one_user]
    records[3]["ts"] = "yesterday"
    err = _expected_load_error(records)
    d = _error(client.post("/predict", json={"events": records, "as_of": AS_OF}))
    assert d["loc"] == ["body", "events", 3, "ts"] and err.line == 4 and err.column == "ts"
    assert d["msg"] == err.message


@pytest.mark.parametrize("field", ["userId", "page"])
def test_missing_user_or_page_is_refused_in_the_loaders_words(client, one_user, field):
    records = [{k: v for k, v in e.items() if k != field} for e in one_user]  # absent from every event
    err = _expected_load_error(records)
    d = _error(client.post("/predict", json={"events": records, "as_of": AS_OF}))
    assert d["msg"] == err.message and d["loc"] == ["body", "events", field] and err.column == field
    one = [dict(e) for e in one_user]
    one[5]["page"] = None  # one event without a page: a defect, refused with its place
    if field == "page":
        err = _expected_load_error(one)
        d = _error(client.post("/predict", json={"events": one, "as_of": AS_OF}))
        assert d["loc"][:3] == ["body", "events", 5] and d["msg"] == err.message


def test_no_events_and_several_users_are_refused(client, events):
    assert _error(client.post("/predict", json={"events": [], "as_of": AS_OF}))["loc"] == ["body", "events"]
    d = _error(client.post("/predict", json={"as_of": AS_OF}))
    assert d["loc"] == ["body", "events"] and "required" in d["msg"]
    two = _current_users(events, 2)
    d = _error(client.post("/predict", json={"events": _records(events, two), "as_of": AS_OF}))
    assert d["loc"] == ["body", "events"] and "/predict/batch" in d["msg"] and "2 users" in d["msg"]


def test_a_bad_as_of_names_the_field(client, one_user):
    d = _error(client.post("/predict", json={"events": one_user, "as_of": "20/11/2018 noon"}))
    assert d["loc"] == ["body", "as_of"]
    log = load.load_event_records(one_user, source="request")
    with pytest.raises(load.DataValidationError) as err:
        scoring.parse_as_of("20/11/2018 noon", log.events)
    assert d["msg"] == err.value.message
    d = _error(client.post("/predict", json={"events": one_user, "as_of": [2018, 11, 20]}))
    assert d["loc"] == ["body", "as_of"] and "as_of must be" in d["msg"]


def test_body_shape_errors_are_plain_words(client, one_user):
    d = client.post("/predict", content=b'{"events": [', headers={"content-type": "application/json"}).json()
    assert d["detail"][0]["msg"].startswith("the body is not valid JSON")
    d = _error(client.post("/predict", json={"events": {"ts": 1}}))
    assert d["loc"] == ["body", "events"] and d["msg"] == "field events must be a JSON list"
    d = _error(client.post("/predict", json={"events": [one_user[0], 7]}))
    assert d["loc"] == ["body", "events", 1] and d["msg"] == "events item 1 must be a JSON object"
    assert "input" not in d and "url" not in d  # no echo of the request, no links to pydantic's site


def test_lenient_events_drop_defects_and_say_so(event_model, one_user):
    records = [dict(e) for e in one_user]
    records[3]["ts"] = "yesterday"
    with TestClient(service.create_app(event_model, strict_events=False)) as c:
        r = c.post("/predict", json={"events": records, "as_of": AS_OF})
    assert r.status_code == 200, r.text
    assert any(n.startswith("dropped 1 event: ") and "ts" in n for n in r.json()["notes"])


# --------------------------------------------------------------------------------------------
# Too large: 413
# --------------------------------------------------------------------------------------------

def test_too_large_bodies_and_batches_are_413(event_model, events, one_user):
    limits = service.Limits(max_body_bytes=20_000, max_events=30, max_users=2)
    with TestClient(service.create_app(event_model, limits=limits)) as c:
        big = json.dumps({"events": one_user * 10}).encode()
        r = c.post("/predict", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "Content-Length" in r.json()["detail"][0]["msg"]

        def chunks():  # streamed (chunked), no Content-Length: counted as it arrives
            for i in range(0, len(big), 4096):
                yield big[i:i + 4096]
        r = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "20,000 bytes" in r.json()["detail"][0]["msg"]
        r = c.post("/predict", json={"events": one_user[:31]})
        assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body", "events"]
        three = _current_users(events, 3)
        few = [e for u in three for e in _records(events, [u])[:5]]
        r = c.post("/predict/batch", json={"events": few, "as_of": AS_OF})
        assert r.status_code == 413 and "3 users" in r.json()["detail"][0]["msg"]
        assert c.post("/predict", json={"events": one_user[:30], "as_of": AS_OF}).status_code == 200


# --------------------------------------------------------------------------------------------
# Unexpected failures: 500 without a traceback
# --------------------------------------------------------------------------------------------

def test_an_unexpected_failure_is_a_500_without_traceback(client, one_user, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/app.py line 12")
    monkeypatch.setattr(scoring, "score_events", boom)
    with caplog.at_level(logging.ERROR, logger="churnlib.service"):
        r = client.post("/predict", json={"events": one_user, "as_of": AS_OF})
    assert r.status_code == 500
    body = r.json()
    assert "Traceback" not in r.text and "secret" not in r.text and "RuntimeError" not in r.text
    assert body["request_id"] and "internal error" in body["detail"]
    logged = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert logged and logged[0].exc_info and "secret internals" in str(logged[0].exc_info[1])


# --------------------------------------------------------------------------------------------
# The prediction store
# --------------------------------------------------------------------------------------------

def test_every_prediction_is_stored_with_the_features_the_model_saw(event_model, events, tmp_path):
    users = _current_users(events, 4)
    records = {u: _records(events, [u])[:200] for u in users}
    with PredictionStore(tmp_path / "p.sqlite") as store:
        with TestClient(service.create_app(event_model, store=store)) as c:
            one = c.post("/predict", json={"events": records[users[0]], "as_of": AS_OF}).json()
            rest = [e for u in users[1:] for e in records[u]]
            batch = c.post("/predict/batch", json={"events": rest, "as_of": AS_OF}).json()
            health = c.get("/health").json()
        rows = store.read()
    assert health["predictions_served"] == 4 and health["store"] == str(tmp_path / "p.sqlite")
    assert list(rows["user_id"]) == users[:1] + [p["userId"] for p in batch["predictions"]]
    served = [one["churn_probability"]] + [p["churn_probability"] for p in batch["predictions"]]
    np.testing.assert_allclose(rows["churn_probability"], served, rtol=1e-12)
    assert (rows["model_version"] == event_model.version).all() and (rows["source"] == "service").all()
    assert (rows["as_of"] == pd.Timestamp(AS_OF, tz="UTC").value // 10**6).all()
    log = load.load_event_records(rest, source="request")
    want = scoring.score_events(event_model, log, AS_OF, reasons=False).features.set_index("userId")
    got = rows.iloc[1:].set_index("user_id")[event_model.feature_names]
    for f in event_model.feature_names:
        a, b = got.loc[want.index, f].to_numpy(), want[f].to_numpy()
        if event_model.schema[event_model.feature_names.index(f)]["kind"] == "numeric":
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, err_msg=f)
        else:
            assert list(map(str, a)) == list(map(str, b)), f


def test_a_store_failure_keeps_the_answer_and_says_so(event_model, one_user, tmp_path, monkeypatch, caplog):
    with PredictionStore(tmp_path / "p.sqlite") as store:
        def broken(*args, **kwargs):
            raise OSError("disk full")
        monkeypatch.setattr(store, "append", broken)
        with TestClient(service.create_app(event_model, store=store)) as c, \
                caplog.at_level(logging.ERROR, logger="churnlib.service"):
            r = c.post("/predict", json={"events": one_user, "as_of": AS_OF})
            health = c.get("/health").json()
    assert r.status_code == 200 and 0 <= r.json()["churn_probability"] <= 1
    assert any("not recorded in the prediction store" in n for n in r.json()["notes"])
    assert health["store_failures"] == 1 and any("store append failed" in rec.getMessage() for rec in caplog.records)


# --------------------------------------------------------------------------------------------
# Concurrency: handlers run in a thread pool
# --------------------------------------------------------------------------------------------

def test_concurrent_requests_get_the_same_answers_as_sequential_ones(client, events):
    users = _current_users(events, 4)
    bodies = [{"events": _records(events, [u])[:120], "as_of": AS_OF} for u in users]
    sequential = [client.post("/predict", json=b).json()["churn_probability"] for b in bodies]
    got: dict[int, float] = {}

    def call(i: int) -> None:
        got[i] = client.post("/predict", json=bodies[i]).json()["churn_probability"]
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [got[i] for i in range(len(bodies))] == sequential


# --------------------------------------------------------------------------------------------
# Models trained on a table: feature rows
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def row_model(tmp_path_factory) -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(11)
    n = 400
    table = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "age": rng.integers(18, 70, n).astype(float),
                          "country": rng.choice(["DE", "FR", "US"], n),
                          "listening_time": rng.exponential(60, n)})
    y = (table["listening_time"] + rng.normal(0, 20, n) < 40).astype(int)
    model = ChurnModel.fit(M.make_pipeline("logreg"), table.drop(columns="user_id"), y, id_col="user_id")
    out = tmp_path_factory.mktemp("row_model")
    model.save(out)
    return ChurnModel.load(out), table


def test_a_row_model_scores_feature_rows_like_score_frame(row_model, tmp_path):
    model, table = row_model
    rows = table.head(30).copy()
    rows.loc[3, "country"] = "XX"  # unseen category: scored and flagged, as `score` does
    want = scoring.score_frame(model, rows, n_jobs=1)
    with PredictionStore(tmp_path / "p.sqlite") as store, \
            TestClient(service.create_app(model, store=store)) as c:
        assert c.get("/health").json()["input"] == "rows"
        one = c.post("/predict", json={"rows": rows.head(1).to_dict("records")})
        assert one.status_code == 200, one.text
        assert one.json()["userId"] == "u0" and one.json()["as_of"] is None
        assert one.json()["churn_probability"] == pytest.approx(want["churn_probability"].iloc[0], rel=1e-12)
        payload = rows.to_dict("records")
        payload[0]["age"] = str(payload[0]["age"])  # a number as text: converted and flagged, as `score` does
        payload[1]["nickname"] = "Bo"
        batch = c.post("/predict/batch", json={"rows": payload})
        assert batch.status_code == 200, batch.text
        stored = store.read()
    got = pd.DataFrame(batch.json()["predictions"])
    np.testing.assert_allclose(got["churn_probability"], want["churn_probability"], rtol=1e-12)
    assert list(got["userId"]) == list(rows["user_id"]) and list(got["risk_band"]) == list(want["risk_band"])
    text = rows.astype({"age": object})
    text.loc[0, "age"] = str(rows.loc[0, "age"])
    expect_warn = scoring.score_frame(model, text, n_jobs=1, reasons=False)[scoring.WARNINGS_COLUMN]
    assert list(got["input_warnings"]) == list(expect_warn) and "unseen category 'XX'" in got.loc[3, "input_warnings"]
    assert any("'nickname'" in n and "row 2" in n for n in batch.json()["notes"])
    assert len(stored) == 31 and list(stored["user_id"].iloc[1:]) == list(rows["user_id"])
    np.testing.assert_allclose(stored["age"].iloc[1:].astype(float), rows["age"])


def test_a_row_model_refuses_events_and_missing_columns(row_model):
    model, table = row_model
    with TestClient(service.create_app(model)) as c:
        d = _error(c.post("/predict", json={"events": [{"ts": 1541106106796, "userId": "9"}]}))
        assert d["loc"] == ["body", "rows"] and "feature rows" in d["msg"]
        rows = table.drop(columns=["listening_time"]).head(2).to_dict("records")
        with pytest.raises(load.DataValidationError) as err:
            scoring.score_frame(model, pd.DataFrame(rows), reasons=False)
        d = _error(c.post("/predict/batch", json={"rows": rows}))
        assert d["msg"] == err.value.message and d["loc"] == ["body", "rows", "listening_time"]
        two = c.post("/predict/batch", json={"rows": table.drop(columns=["age", "country"]).head(2).to_dict("records")})
        assert [d["loc"] for d in two.json()["detail"]] == [["body", "rows", "age"], ["body", "rows", "country"]]
        d = _error(c.post("/predict", json={"rows": table.head(2).to_dict("records")}))
        assert "/predict/batch" in d["msg"]
        d = _error(c.post("/predict", json={"rows": table.head(1).to_dict("records"), "as_of": AS_OF}))
        assert d["loc"] == ["body", "as_of"]
        dup = table.head(3).to_dict("records") + [table.head(3).to_dict("records")[1]]
        d = _error(c.post("/predict/batch", json={"rows": dup}))
        assert d["loc"][:2] == ["body", "rows"] and "duplicate id" in d["msg"]


def test_a_model_of_the_real_snapshot_table_is_served_with_rows(spotify_snapshot, tmp_path):
    snap = load.load_table(spotify_snapshot, id_col="user_id", label_col="is_churned").table.head(600)
    X = M.feature_frame(snap, "user_id", "is_churned")
    ChurnModel.fit(M.make_pipeline("logreg"), X, snap["is_churned"], id_col="user_id").save(tmp_path)
    model = ChurnModel.load(tmp_path)
    rows = snap.drop(columns="is_churned").tail(50)
    want = scoring.score_frame(model, rows, n_jobs=1)
    with TestClient(service.create_app(model)) as c:
        r = c.post("/predict/batch", json={"rows": json.loads(rows.to_json(orient="records"))})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json()["predictions"])
    assert list(got["userId"]) == list(rows["user_id"].astype(str))
    np.testing.assert_allclose(got["churn_probability"], want["churn_probability"], rtol=1e-12)
    assert got["reasons"].map(len).le(3).all()


def test_lossless_repairs_are_made_and_noted_while_lossy_defects_are_refused(client, one_user):
    records = [dict(e, sessionId=str(e["sessionId"])) for e in one_user]
    ok = client.post("/predict", json={"events": records, "as_of": AS_OF})
    assert ok.status_code == 200, ok.text
    assert any("sessionId string cast to integer" in n and n.startswith("repaired ") for n in ok.json()["notes"])
    plain = client.post("/predict", json={"events": [dict(e) for e in one_user], "as_of": AS_OF}).json()
    assert ok.json()["churn_probability"] == plain["churn_probability"]
    records[2]["length"] = -5.0  # would be set to missing: refused, naming the event and field
    d = _error(client.post("/predict", json={"events": records, "as_of": AS_OF}))
    assert d["loc"] == ["body", "events", 2, "length"] and "negative length" in d["msg"]
