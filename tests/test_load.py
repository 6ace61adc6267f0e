"""Loader unit tests on small hand-made logs in every supported format."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from churnlib.load import (
    DataQuality,
    DataValidationError,
    EventLog,
    data_fingerprint,
    detect_kind,
    load_events,
    load_snapshot,
)
from churnlib.schema import EVENT_COLUMNS

TS0 = 1_541_105_830_796

# Four events of two users, deliberately out of time order in the file.
ROWS = [
    {"ts": TS0 + 3000, "userId": "2", "sessionId": 7, "page": "Home", "auth": "Logged In",
     "method": "GET", "status": 200, "level": "free", "itemInSession": 1, "location": "Austin, TX",
     "userAgent": "UA", "firstName": "Bo", "lastName": "Ng", "registration": 1540000000123.0,
     "gender": "M", "artist": None, "song": None, "length": None},
    {"ts": TS0, "userId": "1", "sessionId": 5, "page": "NextSong", "auth": "Logged In",
     "method": "PUT", "status": 200, "level": "paid", "itemInSession": 0, "location": "Tampa, FL",
     "userAgent": "UA", "firstName": "Al", "lastName": "Ko", "registration": 1539000000000.0,
     "gender": "F", "artist": "Muse", "song": "Uprising", "length": 304.5},
    {"ts": TS0 + 1000, "userId": "2", "sessionId": 7, "page": "NextSong", "auth": "Logged In",
     "method": "PUT", "status": 200, "level": "free", "itemInSession": 0, "location": "Austin, TX",
     "userAgent": "UA", "firstName": "Bo", "lastName": "Ng", "registration": 1540000000123.0,
     "gender": "M", "artist": "Björk", "song": "Jóga", "length": 305.0},
    {"ts": TS0 + 3000, "userId": "1", "sessionId": 5, "page": "Thumbs Up", "auth": "Logged In",
     "method": "PUT", "status": 307, "level": "paid", "itemInSession": 1, "location": "Tampa, FL",
     "userAgent": "UA", "firstName": "Al", "lastName": "Ko", "registration": 1539000000000.0,
     "gender": "F", "artist": None, "song": None, "length": None},
]
EXPECTED_ORDER = [(TS0, "1"), (TS0 + 1000, "2"), (TS0 + 3000, "1"), (TS0 + 3000, "2")]


def ndjson_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path, index=False)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(ndjson_bytes(rows), mtime=0))
    else:
        path.write_bytes(ndjson_bytes(rows))
    return path


def assert_clean(log: EventLog) -> None:
    ev = log.events
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert str(ev["ts"].dtype) == "int64"
    assert str(ev["sessionId"].dtype) == "int64"
    assert str(ev["itemInSession"].dtype) == "int64"
    assert str(ev["status"].dtype) == "Int64"
    assert str(ev["registration"].dtype) == "Int64"
    assert str(ev["length"].dtype) == "float64"
    assert pd.api.types.is_string_dtype(ev["userId"]) and pd.api.types.is_string_dtype(ev["page"])
    assert list(zip(ev["ts"], ev["userId"])) == EXPECTED_ORDER
    assert ev["registration"].tolist() == [1539000000000, 1540000000123, 1539000000000, 1540000000123]
    assert ev["length"].isna().tolist() == [False, False, True, True]
    assert ev.loc[1, "artist"] == "Björk"
    assert pd.isna(ev.loc[2, "artist"])
    assert log.quality.rows_read == 4 and log.quality.rows_kept == 4
    assert log.quality.dropped == {} and log.quality.repaired == {}
    assert log.page_counts_read.to_dict() == {"NextSong": 2, "Home": 1, "Thumbs Up": 1}


@pytest.mark.parametrize("name", ["e.ndjson", "e.jsonl", "e.json", "e.json.gz", "e.ndjson.gz",
                                  "e.jsonl.gz", "e.parquet"])
def test_every_format_loads_the_same(tmp_path: Path, name: str):
    log = load_events(write(tmp_path / name, ROWS))
    assert_clean(log)
    assert log.quality.kind == "events" and log.quality.source == str(tmp_path / name)


def test_folder_of_mixed_files(tmp_path: Path):
    d = tmp_path / "logs"
    (d / "part").mkdir(parents=True)
    write(d / "a.ndjson.gz", ROWS[:1])
    write(d / "part" / "b.parquet", ROWS[1:3])
    write(d / "c.jsonl", ROWS[3:])
    (d / "README.md").write_text("not data")
    (d / ".hidden.ndjson").write_text("garbage\n")
    log = load_events(d)
    assert_clean(log)
    assert any("README.md" in n for n in log.quality.notes)
    assert detect_kind(d) == "events"


def test_duplicates_across_files_in_a_folder(tmp_path: Path):
    d = tmp_path / "logs"
    d.mkdir()
    write(d / "a.ndjson", ROWS)
    write(d / "b.ndjson", ROWS[:2])
    log = load_events(d)
    assert log.quality.dropped == {"exact duplicate row": 2}
    assert len(log.events) == 4
    with pytest.raises(DataValidationError) as info:
        load_events(d, strict=True)
    assert info.value.file == str(d / "b.ndjson") and info.value.line == 1


def test_iso_timestamps_equal_epoch_ms(tmp_path: Path):
    iso_rows = [dict(r, ts=pd.Timestamp(r["ts"], unit="ms", tz="UTC").isoformat()) for r in ROWS]
    iso_rows[0]["ts"] = pd.Timestamp(ROWS[0]["ts"], unit="ms", tz="UTC").tz_convert("Europe/Berlin").isoformat()
    iso_rows[1]["ts"] = pd.Timestamp(ROWS[1]["ts"], unit="ms").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]  # naive: UTC
    for name in ("iso.ndjson", "iso.parquet"):
        log = load_events(write(tmp_path / name, iso_rows), strict=True)
        assert_clean(log)


def test_parquet_timestamp_column(tmp_path: Path):
    df = pd.DataFrame(ROWS)
    df["ts"] = pd.to_datetime(df["ts"], unit="ms", utc=True)
    path = tmp_path / "tsz.parquet"
    df.to_parquet(path, index=False)
    assert_clean(load_events(path, strict=True))


def test_numeric_user_ids_become_strings(tmp_path: Path):
    rows = [dict(r, userId=int(r["userId"])) for r in ROWS]
    for name in ("num.ndjson", "num.parquet"):
        log = load_events(write(tmp_path / name, rows), strict=True)  # all numeric: not a defect
        assert_clean(log)
        assert all(type(u) is str for u in log.events["userId"])
        assert any("numeric userId" in n for n in log.quality.notes)


def test_optional_columns_may_be_absent(tmp_path: Path):
    rows = [{k: r[k] for k in ("ts", "userId", "sessionId", "page", "itemInSession")} for r in ROWS]
    log = load_events(write(tmp_path / "min.ndjson", rows), strict=True)
    assert list(log.events.columns) == list(EVENT_COLUMNS)
    assert log.events["artist"].isna().all() and log.events["status"].isna().all()
    assert list(zip(log.events["ts"], log.events["userId"])) == EXPECTED_ORDER


def test_deterministic_sort_ties(tmp_path: Path):
    rows = [dict(ROWS[1], sessionId=s, itemInSession=i, ts=TS0) for s, i in [(9, 1), (3, 5), (9, 0), (3, 2)]]
    ev = load_events(write(tmp_path / "ties.ndjson", rows)).events
    assert list(zip(ev["sessionId"], ev["itemInSession"])) == [(3, 2), (3, 5), (9, 0), (9, 1)]


def test_crlf_and_blank_lines(tmp_path: Path):
    text = "\r\n".join(json.dumps(r) for r in ROWS[:2]) + "\r\n\r\n" + json.dumps(ROWS[2]) + "\n\n" + json.dumps(ROWS[3])
    path = tmp_path / "crlf.ndjson"
    path.write_bytes(text.encode())
    log = load_events(path, strict=True)
    assert log.quality.dropped == {"blank line": 2}
    assert log.quality.rows_read == 6
    assert list(zip(log.events["ts"], log.events["userId"])) == EXPECTED_ORDER


def test_quality_table_and_html():
    q = DataQuality(source="x.ndjson", kind="events", rows_read=10, rows_kept=6,
                    dropped={"bad timestamp": 1, "unknown page": 3}, repaired={"negative length set to null": 2})
    t = q.table()
    assert list(t.columns) == ["outcome", "reason", "rows", "share_of_read"]
    assert t.iloc[0].tolist() == ["kept", "kept", 6, 0.6]
    assert t["reason"].tolist() == ["kept", "unknown page", "bad timestamp", "negative length set to null"]
    assert t["share_of_read"].tolist() == [0.6, 0.3, 0.1, 0.2]
    html = q._repr_html_()
    assert "x.ndjson" in html and "unknown page" in html and "<table" in html
    with pytest.raises(AssertionError, match="accounting"):
        DataQuality(source="x", kind="events", rows_read=10, rows_kept=6, dropped={"a": 1})


def test_error_message_names_its_parts():
    err = DataValidationError("bad value", file="f.ndjson", line=3, column="ts")
    assert str(err) == "file f.ndjson, line 3, column 'ts': bad value"
    assert isinstance(err, ValueError)
    assert (err.file, err.line, err.column) == ("f.ndjson", 3, "ts")
    import pickle
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.line == 3


# -- detect_kind and fingerprints --------------------------------------------------------------

def test_detect_kind(tmp_path: Path):
    assert detect_kind(write(tmp_path / "a.json.gz", ROWS)) == "events"
    assert detect_kind(write(tmp_path / "a.parquet", ROWS)) == "events"
    snap = tmp_path / "s.parquet"
    pd.DataFrame({"user_id": [1], "is_churned": [0]}).to_parquet(snap)
    assert detect_kind(snap) == "snapshot"
    csv = tmp_path / "s.csv.gz"
    csv.write_bytes(gzip.compress(b"user_id,is_churned\n1,0\n"))
    assert detect_kind(csv) == "snapshot"
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match="unsupported"):
        detect_kind(tmp_path / "x.xlsx")
    with pytest.raises(DataValidationError, match="no such file"):
        detect_kind(tmp_path / "missing.csv")


def test_fingerprint_is_stable_and_content_sensitive(tmp_path: Path):
    a = write(tmp_path / "a.ndjson", ROWS)
    f1 = data_fingerprint(a)
    assert f1 == data_fingerprint(str(a)) and len(f1) == 64
    import hashlib
    assert f1 == hashlib.sha256(a.read_bytes()).hexdigest()
    d = tmp_path / "d"
    d.mkdir()
    write(d / "x.ndjson", ROWS[:2])
    write(d / "y.ndjson", ROWS[2:])
    g1 = data_fingerprint(d)
    assert g1 == data_fingerprint(d)
    (d / "y.ndjson").rename(d / "z.ndjson")  # same bytes, different name
    assert data_fingerprint(d) != g1
    (d / "z.ndjson").rename(d / "y.ndjson")
    assert data_fingerprint(d) == g1
    write(d / "y.ndjson", ROWS[2:3])
    assert data_fingerprint(d) != g1


# -- snapshots ---------------------------------------------------------------------------------

def test_snapshot_csv_and_parquet_agree(tmp_path: Path):
    df = pd.DataFrame({"user_id": [3, 1, 2], "age": [30, 41, 22], "skip_rate": [0.2, 0.5, 0.0],
                       "country": ["DE", "US", None], "is_churned": [1, 0, 0]})
    csv = tmp_path / "s.csv"
    df.to_csv(csv, index=False)
    pq = tmp_path / "s.parquet"
    df.to_parquet(pq, index=False)
    a, b = load_snapshot(csv, strict=True), load_snapshot(pq, strict=True)
    for snap in (a, b):
        t = snap.table
        assert t["user_id"].tolist() == ["3", "1", "2"]
        assert t["is_churned"].tolist() == [1, 0, 0] and str(t["is_churned"].dtype) == "int64"
        assert str(t["age"].dtype) == "int64" and str(t["skip_rate"].dtype) == "float64"
        assert pd.isna(t.loc[2, "country"])
        assert (snap.id_col, snap.label_col) == ("user_id", "is_churned")
        assert snap.quality.kind == "snapshot" and snap.quality.rows_kept == 3


def test_snapshot_boolean_label_parquet(tmp_path: Path):
    pq = tmp_path / "b.parquet"
    pd.DataFrame({"uid": ["a", "b"], "left": [True, False]}).to_parquet(pq)
    snap = load_snapshot(pq, id_col="uid", label_col="left", strict=True)
    assert snap.table["left"].tolist() == [1, 0] and snap.quality.repaired == {}
