"""The prediction store: exact round trip, concurrency (threads and processes), reopening, bad files."""
from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from churnlib import store as S
from churnlib.load import DataValidationError
from churnlib.store import PredictionStore, StoreError


def _batch(n: int, start: int = 0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"u{start + i}" for i in range(n)]
    p = rng.random(n)
    scores = pd.DataFrame({"userId": ids, "churn_probability": p, "churn_label": (p > 0.5).astype(int),
                           "risk_band": np.where(p > 0.5, "high", "low"), "reason_1": "x"})
    features = pd.DataFrame({"userId": ids, "songs_7d": rng.integers(0, 10**6, n),
                             "skip_rate": rng.random(n) / 3, "device_type": rng.choice(["desktop", "mobile"], n)})
    return scores, features


def test_round_trip_keeps_every_value_exactly(tmp_path):
    scores, feats = _batch(5)
    feats.loc[1, "skip_rate"] = np.nan
    feats.loc[2, "device_type"] = None
    feats["tiny"] = [1e-300, 0.1 + 0.2, -0.0, 123456789.123456789, 2.0 ** 52 + 1]
    with PredictionStore(tmp_path / "p.sqlite") as st:
        assert st.append(scores, feats, model_version="abc123def456", as_of=1_542_672_000_000,
                         served_at="2018-11-20T09:30:00.1234Z") == 5
        out = st.read()
    assert list(out.columns[:7]) == list(S.BASE_COLUMNS)
    assert out["served_at"].dtype == "datetime64[ms, UTC]"
    assert (out["served_at"] == pd.Timestamp("2018-11-20T09:30:00.123Z")).all()
    assert out["user_id"].tolist() == scores["userId"].tolist()
    assert (out["as_of"] == 1_542_672_000_000).all() and out["as_of"].dtype == "Int64"
    assert out["churn_probability"].tolist() == scores["churn_probability"].tolist()  # bit for bit
    assert out["risk_band"].tolist() == scores["risk_band"].tolist()
    assert (out["source"] == "service").all() and (out["model_version"] == "abc123def456").all()
    for c in ("songs_7d", "skip_rate", "tiny"):
        assert out[c].dtype == np.float64
        np.testing.assert_array_equal(out[c].to_numpy(), feats[c].to_numpy(dtype=float))  # NaN at the same place
    assert pd.api.types.is_string_dtype(out["device_type"]) and out["device_type"].isna().tolist() == [
        False, False, True, False, False]
    assert "reason_1" not in out and "churn_label" not in out  # only what the store keeps
    # the stored JSON: integers as integers, missing as null (strict JSON)
    raw = sqlite3.connect(tmp_path / "p.sqlite").execute("SELECT features FROM predictions LIMIT 2").fetchall()
    first, second = (json.loads(r[0]) for r in raw)
    assert isinstance(first["songs_7d"], int) and second["skip_rate"] is None


def test_read_selects_the_window_and_the_model_version(tmp_path):
    st = PredictionStore(tmp_path / "p.sqlite")
    for day, version in ((1, "a"), (2, "a"), (3, "b"), (4, "a")):
        st.append(*_batch(3, start=10 * day), model_version=version, as_of=None, source="score",
                  served_at=f"2018-11-0{day}T12:00:00Z")
    assert len(st) == 12
    assert st.read(since="2018-11-02", until="2018-11-03T12:00Z")["served_at"].dt.day.tolist() == [2] * 3 + [3] * 3
    assert set(st.read(model_version="a")["served_at"].dt.day) == {1, 2, 4}
    assert st.versions(since="2018-11-02") == {"a": 6, "b": 3}
    assert st.span("b") == (pd.Timestamp("2018-11-03T12:00Z"), pd.Timestamp("2018-11-03T12:00Z"))
    assert st.read()["as_of"].isna().all()
    with pytest.raises(ValueError, match="since"):
        st.read(since="not a date")


def test_a_stacked_tables_own_as_of_is_kept_per_row(tmp_path):
    scores, feats = _batch(2)
    scores.insert(1, "as_of", pd.to_datetime(["2018-11-01", "2018-11-08"], utc=True))
    with PredictionStore(tmp_path / "p.sqlite") as st:
        st.append(scores, feats, model_version="v", as_of=None, source="score")
        assert st.read()["as_of"].tolist() == [1541030400000, 1541635200000]


def test_misaligned_inputs_are_refused_and_nothing_is_written(tmp_path):
    scores, feats = _batch(4)
    with PredictionStore(tmp_path / "p.sqlite") as st:
        with pytest.raises(ValueError, match="same row order"):
            st.append(scores, feats.iloc[::-1], model_version="v", as_of=None)
        with pytest.raises(ValueError, match="one feature row per prediction"):
            st.append(scores, feats.head(3), model_version="v", as_of=None)
        with pytest.raises(ValueError, match="model_version"):
            st.append(scores, feats, model_version="", as_of=None)
        assert len(st) == 0


def test_empty_store_reads_as_an_empty_typed_frame(tmp_path):
    with PredictionStore(tmp_path / "sub" / "p.sqlite") as st:  # the folder is created
        out = st.read()
        assert len(st) == 0 and st.span() is None and st.versions() == {}
    assert list(out.columns) == list(S.BASE_COLUMNS) and len(out) == 0
    assert out["served_at"].dtype == "datetime64[ms, UTC]" and out["churn_probability"].dtype == np.float64


def test_wal_mode_schema_version_and_reopening_keep_every_row(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PredictionStore(path)
    assert st.journal_mode == "wal" and st.schema_version == S.SCHEMA_VERSION
    st.append(*_batch(7), model_version="v", as_of=None)
    st.close()
    with pytest.raises(StoreError, match="closed"):
        len(st)
    with PredictionStore(path) as again:
        again.append(*_batch(3, start=100), model_version="v", as_of=None)
    with PredictionStore(path, readonly=True) as ro:
        assert len(ro) == 10 and ro.read()["user_id"].nunique() == 10
        with pytest.raises(StoreError, match="read-only"):
            ro.append(*_batch(1), model_version="v", as_of=None)


def test_appends_from_many_threads_lose_nothing(tmp_path):
    st = PredictionStore(tmp_path / "p.sqlite")

    def work(i: int) -> int:
        return st.append(*_batch(1 + i % 5, start=1000 * i, seed=i), model_version="v", as_of=None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = sum(pool.map(work, range(200)))
    out = st.read()
    assert written == len(st) == len(out) == sum(1 + i % 5 for i in range(200))
    assert out["user_id"].is_unique  # no row written twice, none lost
    st.close()


def _process_worker(path: str, worker: int, batches: int) -> None:
    with PredictionStore(path) as st:
        for b in range(batches):
            st.append(*_batch(10, start=100_000 * worker + 10 * b, seed=b), model_version=f"w{worker}", as_of=None)


def test_appends_from_two_processes_lose_nothing(tmp_path):
    path = tmp_path / "p.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(str(path), w, 40)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with PredictionStore(path, readonly=True) as st:
        assert st.versions() == {"w0": 400, "w1": 400}
        assert st.read()["user_id"].is_unique


def test_a_file_that_is_not_a_store_is_refused_naming_it(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all, " * 100)
    with pytest.raises(StoreError, match="not a churnlib prediction store") as err:
        PredictionStore(text)
    assert isinstance(err.value, DataValidationError) and err.value.file == str(text)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="SQLite database but not a churnlib prediction store"):
        PredictionStore(other)
    with pytest.raises(StoreError, match="folder"):
        PredictionStore(tmp_path)
    with pytest.raises(StoreError, match="no prediction store here"):
        PredictionStore(tmp_path / "absent.sqlite", readonly=True)
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_store_from_a_newer_churnlib_is_refused(tmp_path):
    path = tmp_path / "p.sqlite"
    PredictionStore(path).close()
    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA user_version = {S.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer churnlib"):
        PredictionStore(path)


def test_default_path_and_served_at_text():
    assert S.default_store_path().as_posix().endswith("data/predictions.sqlite")
    assert S.served_at_text("2018-11-20T10:30:00.5+01:00") == "2018-11-20T09:30:00.500Z"
    assert S.served_at_text(pd.Timestamp("2018-11-20")) == "2018-11-20T00:00:00.000Z"
