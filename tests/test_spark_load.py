"""The Spark event loader cleans a log as the DuckDB loader does: same rows, values and account.

Each test loads the same input with :func:`churnlib.load.load_events` (DuckDB) and
:func:`churnlib.spark_load.load_events_spark` (one local Spark session, fixture ``spark``) and compares:
the Spark frame collected and sorted equals the DuckDB frame (integers and strings exactly, floats within
1e-9 relative), and the data-quality accounts are equal (counts, first locations, notes).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib.load import DataValidationError, clean_events_sql, load_events
from churnlib.schema import EVENT_COLUMNS
from churnlib.spark_sql import to_spark

spark_load = pytest.importorskip("churnlib.spark_load")
pytest.importorskip("pyspark")

TS0 = 1_541_105_830_796  # 2018-11-01T20:57:10.796Z


def _event(i: int, **over) -> dict:
    row = {"ts": TS0 + 1000 * i, "userId": str(10 + i % 3), "sessionId": 100 + i % 3, "page": "NextSong",
           "auth": "Logged In", "method": "PUT", "status": 200, "level": "paid", "itemInSession": i,
           "location": "Tampa, FL", "userAgent": "Mozilla/5.0", "firstName": "Ann", "lastName": "Lee",
           "registration": 1_540_000_000_000.0, "gender": "F", "artist": "A", "song": "S", "length": 200.5 + i}
    row.update(over)
    return row


def _write_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((t if isinstance(t, bytes) else t.encode()) + b"\n" for t in lines)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = df[list(EVENT_COLUMNS)].copy()
    for c in out.columns:  # one comparable form: None for missing, Python values otherwise
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    key = [c for c in EVENT_COLUMNS if c != "length"]
    return out.sort_values(key, na_position="first", key=lambda s: s.map(repr)).reset_index(drop=True)


def _assert_same(spark, path, **kw):
    """Load ``path`` with both engines and assert the frames and the accounts are equal."""
    duck = load_events(path, **kw)
    log = spark_load.load_events_spark(spark, str(path), **kw)
    try:
        got = log.events.toPandas()
        assert list(got.columns) == list(EVENT_COLUMNS)
        types = dict(log.events.dtypes)
        assert {c: types[c] for c in ("ts", "sessionId", "itemInSession", "status", "registration")} == dict.fromkeys(
            ("ts", "sessionId", "itemInSession", "status", "registration"), "bigint")
        assert types["length"] == "double" and types["userId"] == "string"
        a, b = _sorted(duck.events), _sorted(got)
        assert len(a) == len(b)
        for c in EVENT_COLUMNS:
            if c == "length":
                x = a[c].astype(float).to_numpy()
                y = b[c].astype(float).to_numpy()
                assert np.array_equal(np.isnan(x), np.isnan(y))
                np.testing.assert_allclose(x[~np.isnan(x)], y[~np.isnan(y)], rtol=1e-9, atol=0)
            else:
                assert a[c].tolist() == b[c].tolist(), c
        dq, sq = duck.quality.to_dict(), log.quality.to_dict()
        assert sq == dq
        assert log.page_counts_read.to_dict() == duck.page_counts_read.to_dict()
        assert list(log.page_counts_read.index) == list(duck.page_counts_read.index)
    finally:
        log.unpersist()
    return duck, log


def test_real_event_sample_equals_duckdb(spark, event_sample):
    duck, log = _assert_same(spark, event_sample)
    assert log.quality.dropped["logged-out/guest row with empty userId"] > 0  # the sample has guests
    assert log.quality.rows_kept == len(duck.events) > 7000


def _defect_folder(tmp: Path) -> Path:
    """A folder log: simulated parquet part files and an NDJSON file, with planted defects."""
    from churnlib.simulate import write_event_log

    sim = tmp / "sim.parquet"
    write_event_log(sim, n_users=12, days=6, seed=5)
    ev = pd.read_parquet(sim)
    ev = ev.sort_values(["ts", "userId"]).reset_index(drop=True)
    d = tmp / "log"
    (d / "part=1").mkdir(parents=True)
    half = len(ev) // 2
    a = ev.iloc[:half].copy()
    a.loc[a.index[:5], "userId"] = ""                                   # guests
    a = pd.concat([a, a.iloc[10:13]], ignore_index=True)                 # exact duplicate rows
    a.loc[a.index[20], "ts"] = 0                                         # implausible timestamps
    a.loc[a.index[21], "ts"] = 10 ** 13
    a["length"] = [("" if i % 17 == 0 else " " if i % 19 == 0 else repr(v)) if pd.notna(v) else None
                   for i, v in enumerate(a["length"])]                   # numbers as text, blanks
    a.to_parquet(d / "part=1" / "a.parquet", index=False)
    b = ev.iloc[half:].drop(columns=["song", "artist", "registration"])   # optional columns absent
    b.loc[b.index[3], "page"] = "Teleport"                               # unknown page
    b.to_parquet(d / "part=1" / "b.parquet", index=False)
    rows = [_event(i) for i in range(12)]
    rows[2]["status"] = "200"                                            # numeric text
    rows[3]["length"] = "  "                                             # blank value
    rows[4]["ts"] = TS0 // 1000                                          # seconds
    rows[5]["ts"] = "2018-11-02T10:00:00Z"                               # ISO text
    rows[6]["sessionId"] = "101"                                         # id as text
    rows[7]["itemInSession"] = None                                      # derived from order
    rows[8]["userId"] = None                                             # guest
    rows[9]["ts"] = "1970-01-02T00:00:00Z"                               # implausible ISO
    rows[10]["registration"] = 1e13                                      # implausible registration
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "")                                                  # blank line
    lines.insert(6, lines[5])                                            # duplicate line
    lines.insert(9, '{"ts": 1, "userId": ')                              # truncated line
    _write_lines(d / "c.ndjson.gz", lines)
    (d / "README.txt").write_text("not events\n")
    (d / "_SUCCESS").write_text("")
    return d


def test_planted_defects_equal_duckdb(spark, tmp_path):
    path = _defect_folder(tmp_path)
    duck, log = _assert_same(spark, path)
    q = log.quality
    for reason in ("logged-out/guest row with empty userId", "exact duplicate row", "implausible timestamp",
                   "unknown page", "unparseable line", "blank line"):
        assert q.dropped.get(reason, 0) > 0, reason
    for reason in ("numeric text converted", "blank value read as missing", "ts in seconds converted to ms",
                   "sessionId string cast to integer", "itemInSession derived from order in session",
                   "implausible registration set to null"):
        assert q.repaired.get(reason, 0) > 0, reason
    assert any("README.txt" in n for n in q.notes)
    assert q.locations["unparseable line"].startswith("c.ndjson.gz, line 10")


def test_strict_mode_names_the_same_place(spark, tmp_path):
    rows = [json.dumps(_event(i)) for i in range(6)]
    rows.insert(4, json.dumps(_event(9, ts=0)))
    path = _write_lines(tmp_path / "bad.ndjson", rows)
    with pytest.raises(DataValidationError) as duck:
        load_events(path, strict=True)
    with pytest.raises(DataValidationError) as got:
        spark_load.load_events_spark(spark, str(path), strict=True)
    e, d = got.value, duck.value
    assert (e.file, e.line, e.column) == (d.file, d.line, d.column) == (str(path), 5, "ts")
    assert "implausible timestamp" in str(e) and "value read: '0'" in str(e)


@pytest.mark.parametrize("kind", ["ndjson", "parquet"])
def test_missing_required_column_names_file_and_column(spark, tmp_path, kind):
    rows = [{k: v for k, v in _event(i).items() if k != "sessionId"} for i in range(3)]
    if kind == "ndjson":
        path = _write_lines(tmp_path / "nosess.ndjson", [json.dumps(r) for r in rows])
    else:
        path = tmp_path / "nosess.parquet"
        pd.DataFrame(rows).to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as got:
        spark_load.load_events_spark(spark, str(path))
    with pytest.raises(DataValidationError) as duck:
        load_events(path)
    assert got.value.column == duck.value.column == "sessionId"
    assert got.value.file == duck.value.file == str(path)
    assert str(got.value) == str(duck.value)


def test_cleaning_query_is_the_loaders():
    sql = to_spark(clean_events_sql()).lower()
    for gone in ("epoch_ms(", "isfinite(", "regexp_full_match("):
        assert gone not in sql
    assert "r0" in sql and "drop_reason" in sql
