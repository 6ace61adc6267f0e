"""Malformed-input corpus for the loaders.

Each case builds one small bad input in ``tmp_path`` and states what strict and lenient mode must
do: raise a :class:`DataValidationError` naming the file and the line and/or column, or load and
account for the defect in ``quality`` with the right count.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from churnlib.load import DataValidationError, load_events, load_snapshot, load_table

TS0 = 1_541_105_830_796  # 2018-11-01T20:57:10.796Z


def event(i: int, **over) -> dict:
    """A valid Sparkify event; ``i`` makes it unique."""
    row = {
        "ts": TS0 + 1000 * i, "userId": str(10 + i % 3), "sessionId": 100 + i % 3, "page": "NextSong",
        "auth": "Logged In", "method": "PUT", "status": 200, "level": "paid", "itemInSession": i,
        "location": "Tampa, FL", "userAgent": "Mozilla/5.0", "firstName": "Ann", "lastName": "Lee",
        "registration": 1_540_000_000_000.0, "gender": "F", "artist": "A", "song": "S",
        "length": 200.5 + i,
    }
    row.update(over)
    return row


def lines(rows: list[dict]) -> list[str]:
    return [json.dumps(r) for r in rows]


def write_lines(path: Path, text_lines: list[str | bytes]) -> Path:
    data = b"".join((t if isinstance(t, bytes) else t.encode()) + b"\n" for t in text_lines)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def good(n: int = 5) -> list[str]:
    return lines([event(i) for i in range(n)])


def with_line(n_good: int, pos: int, bad: str | bytes) -> list[str | bytes]:
    """``n_good`` valid lines with ``bad`` inserted so that it is line ``pos`` (1-based)."""
    out: list[str | bytes] = list(good(n_good))
    out.insert(pos - 1, bad)
    return out


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]
    kind: str = "events"                       # "events", "snapshot" or "table"
    kwargs: dict = field(default_factory=dict)
    # strict mode: None -> must load; else expected (line, column, message fragment)
    strict: tuple[int | None, str | None, str] | None = None
    # lenient mode: None -> same error as strict; else expected counts
    dropped: dict[str, int] | None = None
    repaired: dict[str, int] | None = None
    rows_read: int | None = None
    lenient_raises: bool = False
    check: Callable[[object], None] | None = None   # extra assertion on the lenient result


def _load(case: Case, path: Path, strict: bool):
    """Load ``path``; any exception other than DataValidationError fails the test outright."""
    fn = {"events": load_events, "snapshot": load_snapshot, "table": load_table}[case.kind]
    try:
        return fn(path, strict=strict, **case.kwargs)
    except DataValidationError:
        raise
    except Exception as exc:  # the failure being tested for: a library error escaping
        pytest.fail(f"{type(exc).__name__} escaped instead of DataValidationError: {exc}")


def _folder_no_data(tmp: Path) -> Path:
    d = tmp / "logs"
    d.mkdir()
    (d / "README.md").write_text("no data here\n")
    (d / "notes.txt").write_text("x\n")
    return d


def _parquet(tmp: Path, name: str, df: pd.DataFrame) -> Path:
    p = tmp / name
    df.to_parquet(p, index=False)
    return p


def _csv(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _check_seconds(log) -> None:
    assert log.events["ts"].min() == (TS0 // 1000) * 1000
    assert (log.events["ts"] > 1e12).all()


def _check_mixed_ids(log) -> None:
    assert "42" in set(log.events["userId"])
    assert all(isinstance(u, str) for u in log.events["userId"])


def _check_negative_length(log) -> None:
    assert log.events["length"].isna().sum() == 1
    assert (log.events["length"].dropna() >= 0).all()


def _check_item_derived(log) -> None:
    ev = log.events
    # user 11 / session 101 holds events 1 and 4; event 4 lost its itemInSession (now 1)
    s = ev[(ev.userId == "11") & (ev.sessionId == 101)]
    assert s["itemInSession"].tolist() == [1, 1]


CASES = [
    Case("truncated_line", lambda t: write_lines(t / "trunc.ndjson", with_line(4, 3, good(1)[0][:57])),
         strict=(3, None, "unparseable line"), dropped={"unparseable line": 1}, rows_read=5),
    Case("not_a_json_object", lambda t: write_lines(t / "arr.jsonl", with_line(3, 2, "[1, 2, 3]")),
         strict=(2, None, "unparseable line"), dropped={"unparseable line": 1}, rows_read=4),
    Case("empty_file", lambda t: write_lines(t / "empty.ndjson", []),
         strict=(None, None, "empty"), lenient_raises=True),
    Case("only_blank_lines", lambda t: write_lines(t / "blank.ndjson", ["", "  "]),
         strict=(None, None, "empty"), lenient_raises=True),
    Case("missing_required_column",
         lambda t: write_lines(t / "nosess.ndjson",
                               lines([{k: v for k, v in event(i).items() if k != "sessionId"}
                                      for i in range(3)])),
         strict=(None, "sessionId", "missing required column"), lenient_raises=True),
    Case("parquet_missing_page",
         lambda t: _parquet(t, "nopage.parquet", pd.DataFrame([event(i) for i in range(3)]).drop(columns="page")),
         strict=(None, "page", "missing required column"), lenient_raises=True),
    Case("non_numeric_ts", lambda t: write_lines(t / "badts.ndjson", with_line(4, 2, json.dumps(event(9, ts="yesterday")))),
         strict=(2, "ts", "bad timestamp"), dropped={"bad timestamp": 1}, rows_read=5),
    Case("ts_in_seconds", lambda t: write_lines(t / "secs.ndjson", with_line(4, 1, json.dumps(event(9, ts=TS0 // 1000)))),
         strict=(1, "ts", "ts in seconds"), dropped={}, repaired={"ts in seconds converted to ms": 1},
         rows_read=5, check=_check_seconds),
    Case("non_utf8_bytes",
         lambda t: write_lines(t / "latin1.ndjson.gz",
                               with_line(4, 3, json.dumps(event(9, firstName="Zoe")).replace("Zoe", "Zo\xe9").encode("latin-1"))),
         strict=(3, None, "non-UTF-8"), dropped={"non-UTF-8 line": 1}, rows_read=5),
    Case("duplicated_rows", lambda t: write_lines(t / "dup.ndjson", good(4) + [good(4)[1]]),
         strict=(5, None, "exact duplicate row"), dropped={"exact duplicate row": 1}, rows_read=5),
    Case("unknown_page", lambda t: write_lines(t / "page.ndjson", with_line(4, 4, json.dumps(event(9, page="Teleport")))),
         strict=(4, "page", "unknown page"), dropped={"unknown page": 1}, rows_read=5),
    Case("negative_length", lambda t: write_lines(t / "neg.ndjson", with_line(4, 2, json.dumps(event(9, length=-3.5)))),
         strict=(2, "length", "negative length"), dropped={}, repaired={"negative length set to null": 1},
         rows_read=5, check=_check_negative_length),
    Case("null_and_empty_userId_are_guests",
         lambda t: write_lines(t / "guest.ndjson", good(3) + lines([event(7, userId=None), event(8, userId="")])),
         strict=None, dropped={"logged-out/guest row with empty userId": 2}, rows_read=5),
    Case("mixed_userId_types", lambda t: write_lines(t / "mixed.ndjson", with_line(4, 2, json.dumps(event(9, userId=42)))),
         strict=(2, "userId", "numeric userId"), dropped={}, repaired={"numeric userId cast to string": 1},
         rows_read=5, check=_check_mixed_ids),
    Case("null_sessionId", lambda t: write_lines(t / "nosid.ndjson", with_line(4, 3, json.dumps(event(9, sessionId=None)))),
         strict=(3, "sessionId", "bad sessionId"), dropped={"bad sessionId": 1}, rows_read=5),
    Case("wrong_type_status", lambda t: write_lines(t / "status.ndjson", with_line(4, 5, json.dumps(event(9, status="OK")))),
         strict=(5, "status", "bad status"), dropped={}, repaired={"bad status set to null": 1}, rows_read=5),
    Case("unknown_auth", lambda t: write_lines(t / "auth.ndjson", with_line(4, 2, json.dumps(event(9, auth="Hacker")))),
         strict=(2, "auth", "unknown auth"), dropped={}, repaired={"unknown auth set to null": 1}, rows_read=5),
    Case("null_itemInSession",
         lambda t: write_lines(t / "iis.ndjson", good(4) + lines([event(4, itemInSession=None)])),
         strict=(5, "itemInSession", "itemInSession derived"), dropped={},
         repaired={"itemInSession derived from order in session": 1}, rows_read=5, check=_check_item_derived),
    Case("parquet_bad_ts_string",
         lambda t: _parquet(t, "badts.parquet",
                            pd.DataFrame([event(i) for i in range(3)]).assign(ts=["2018-11-01T00:00:00Z", "garbage", "2018-11-02"])),
         strict=(2, "ts", "bad timestamp"), dropped={"bad timestamp": 1}, rows_read=3),
    Case("all_rows_guests", lambda t: write_lines(t / "guests.ndjson", lines([event(i, userId="") for i in range(3)])),
         strict=(None, None, "no usable rows"), lenient_raises=True),
    Case("corrupt_gzip", lambda t: (t / "bad.ndjson.gz").write_bytes(b"\x1f\x8b\x08garbage-not-gzip") and t / "bad.ndjson.gz",
         strict=(None, None, "cannot read"), lenient_raises=True),
    Case("nonexistent_path", lambda t: t / "nope.ndjson", strict=(None, None, "no such file"), lenient_raises=True),
    Case("unsupported_extension", lambda t: write_lines(t / "events.txt", good(2)),
         strict=(None, None, "unsupported file type"), lenient_raises=True),
    Case("folder_without_data_files", _folder_no_data,
         strict=(None, None, "no event files"), lenient_raises=True),
    # -- snapshots --
    Case("snapshot_missing_label", lambda t: _csv(t, "nolabel.csv", "user_id,age\n1,30\n2,40\n"),
         kind="snapshot", strict=(None, "is_churned", "columns present: ['user_id', 'age']"), lenient_raises=True),
    Case("snapshot_non_binary_label", lambda t: _csv(t, "lab.csv", "user_id,is_churned\n1,0\n2,1\n3,2\n4,0\n"),
         kind="snapshot", strict=(4, "is_churned", "not binary"), lenient_raises=True),
    Case("snapshot_label_words", lambda t: _csv(t, "words.csv", "user_id,is_churned\n1,no\n2,Yes\n3,0\n"),
         kind="snapshot", strict=(2, "is_churned", "not 0/1"), dropped={},
         repaired={"label 'is_churned' spelled 'Yes'/'no' mapped to 1/0": 2}, rows_read=3,
         check=lambda s: s.table["is_churned"].tolist() == [0, 1, 0] or pytest.fail("labels")),
    Case("snapshot_exact_duplicate", lambda t: _csv(t, "dupe.csv", "user_id,is_churned\n1,0\n2,1\n1,0\n"),
         kind="snapshot", strict=(4, None, "exact duplicate row"), dropped={"exact duplicate row": 1}, rows_read=3),
    Case("snapshot_conflicting_ids", lambda t: _csv(t, "conf.csv", "user_id,is_churned\n1,0\n2,1\n3,0\n2,0\n"),
         kind="snapshot", strict=(3, "user_id", "conflicting duplicate id"),
         dropped={"conflicting duplicate id": 2}, rows_read=4),
    Case("snapshot_null_label", lambda t: _csv(t, "nulllab.csv", "user_id,is_churned\n1,0\n2,\n3,1\n"),
         kind="snapshot", strict=(3, "is_churned", "null label"), dropped={"null label": 1}, rows_read=3),
    Case("snapshot_ragged_row", lambda t: _csv(t, "rag.csv", "user_id,is_churned\n1,0\n2,1,9\n3,0\n"),
         kind="snapshot", strict=(3, None, "malformed CSV row"), dropped={"malformed CSV row": 1}, rows_read=3),
    Case("snapshot_custom_columns_missing", lambda t: _csv(t, "mini.csv", "userId,churn\n1,0\n"),
         kind="snapshot", kwargs={"id_col": "user", "label_col": "churn"},
         strict=(None, "user", "columns present: ['userId', 'churn']"), lenient_raises=True),
    Case("snapshot_unsupported_extension", lambda t: _csv(t, "snap.tsv", "user_id\tis_churned\n1\t0\n"),
         kind="snapshot", strict=(None, None, "unsupported file type"), lenient_raises=True),
]


# -- issue 13 / 12.4: timestamps, numbers as text, blanks, encodings, special files, labels --

def _fifo(tmp: Path, name: str) -> Path:
    p = tmp / name
    os.mkfifo(p)
    return p


def _csv_bytes(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return p


def _big_csv(n: int, bad_line: int | None = None, bad: bytes = b"") -> bytes:
    """A snapshot CSV with ``n`` rows; line ``bad_line`` (1-based, header = 1) replaced by ``bad``."""
    out = [b"user_id,age,plan,is_churned"] + [f"{i},{20 + i % 50},p{i % 3},{i % 2}".encode()
                                              for i in range(1, n + 1)]
    if bad_line is not None:
        out[bad_line - 1] = bad
    return b"\n".join(out) + b"\n"


def _truncated_gz(tmp: Path) -> Path:
    data = gzip.compress(_big_csv(3000), mtime=0)
    p = tmp / "cut.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    return p


def _events_parquet(tmp: Path, name: str, **cols) -> Path:
    df = pd.DataFrame([event(i) for i in range(4)])
    for c, v in cols.items():
        df[c] = v
    return _parquet(tmp, name, df)


def _check_lengths_numeric(log) -> None:
    assert str(log.events["length"].dtype) == "float64"
    assert sorted(log.events["length"].dropna()) == [200.5, 201.5, 202.5, 203.5]
    assert any("length" in n and "numbers stored as text" in n for n in log.quality.notes)


def _check_located(reason: str, where: str):
    def check(out) -> None:
        assert out.quality.locations[reason] == where, out.quality.locations
        assert where in out.quality.text() and reason in out.quality.text()
    return check


def _check_age_numeric(snap) -> None:
    assert pd.api.types.is_numeric_dtype(snap.table["age"])
    assert snap.table["age"].isna().sum() == sum(snap.quality.repaired.get(r, 0) for r in
                                                 ("blank value read as missing",
                                                  "non-numeric value in a numeric column set to missing"))


def _check_not_feature(col: str, fragment: str):
    def check(snap) -> None:
        assert fragment in snap.not_features[col]
        assert snap.id_col not in snap.not_features
        assert any(col in n and "not a feature" in n for n in snap.quality.notes)
    return check


UNIQUE_TEXT = "user_id,email,age,is_churned\n" + "".join(
    f"{i},u{i}@x.org,{20 + i % 7},{i % 2}\n" for i in range(1, 26))
CONSTANT = "user_id,country,age,is_churned\n" + "".join(f"{i},SE,{20 + i},{i % 2}\n" for i in range(1, 6))
MOSTLY_NUMERIC = "user_id,age,is_churned\n" + "".join(
    f"{i},{'unknown' if i == 17 else 20 + i},{i % 2}\n" for i in range(1, 41))

CASES += [
    # timestamps: plausibility window (2000-01-01 .. now + 1 day), seconds only when plausible
    Case("ts_zero_is_implausible", lambda t: write_lines(t / "ts0.ndjson", with_line(4, 2, json.dumps(event(9, ts=0)))),
         strict=(2, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5,
         check=_check_located("implausible timestamp", "line 2, column 'ts'")),
    Case("ts_1e13_year_2286", lambda t: write_lines(t / "ts13.ndjson", with_line(4, 3, json.dumps(event(9, ts=1e13)))),
         strict=(3, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5),
    Case("ts_iso_1970", lambda t: write_lines(t / "iso70.ndjson",
                                               with_line(4, 4, json.dumps(event(9, ts="1970-01-02T00:00:00Z")))),
         strict=(4, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5),
    Case("ts_ms_in_1971_not_seconds", lambda t: write_lines(t / "ts71.ndjson",
                                                            with_line(4, 1, json.dumps(event(9, ts=50_000_000_000)))),
         strict=(1, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5),
    Case("ts_iso_far_future", lambda t: write_lines(t / "iso2999.ndjson",
                                                     with_line(4, 5, json.dumps(event(9, ts="2999-01-01T00:00:00Z")))),
         strict=(5, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5),
    Case("ts_negative", lambda t: write_lines(t / "tsneg.ndjson", with_line(4, 2, json.dumps(event(9, ts=-5)))),
         strict=(2, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=5),
    Case("ts_seconds_as_string", lambda t: write_lines(t / "tssec.ndjson",
                                                        with_line(4, 1, json.dumps(event(9, ts=str(TS0 // 1000))))),
         strict=(1, "ts", "ts in seconds"), dropped={},
         repaired={"ts in seconds converted to ms": 1, "numeric text converted": 1}, rows_read=5,
         check=_check_seconds),
    Case("parquet_ts_ms_year_2286",
         lambda t: _events_parquet(t, "ts2286.parquet", ts=[TS0, 10**13, TS0 + 2000, TS0 + 3000]),
         strict=(2, "ts", "implausible timestamp"), dropped={"implausible timestamp": 1}, rows_read=4,
         check=_check_located("implausible timestamp", "row 2, column 'ts'")),
    Case("registration_implausible", lambda t: write_lines(t / "reg.ndjson",
                                                            with_line(4, 3, json.dumps(event(9, registration=1e13)))),
         strict=(3, "registration", "implausible registration"), dropped={},
         repaired={"implausible registration set to null": 1}, rows_read=5),
    # numbers stored as text in event logs: converted and counted, as ts strings are
    Case("parquet_length_as_strings",
         lambda t: _events_parquet(t, "lenstr.parquet", length=["200.5", "201.5", "202.5", "203.5"]),
         strict=(1, "length", "numeric text converted"), dropped={}, repaired={"numeric text converted": 4},
         rows_read=4, check=_check_lengths_numeric),
    Case("parquet_length_strings_with_blanks",
         lambda t: _events_parquet(t, "lenblank.parquet", length=["200.5", " ", "", "3"]),
         strict=(1, "length", "numeric text converted"), dropped={},
         repaired={"numeric text converted": 2, "blank value read as missing": 2}, rows_read=4,
         check=_check_located("blank value read as missing", "row 2, column 'length'")),
    Case("ndjson_length_numeric_string", lambda t: write_lines(t / "len.ndjson",
                                                                with_line(4, 3, json.dumps(event(9, length="12.5")))),
         strict=(3, "length", "numeric text converted"), dropped={}, repaired={"numeric text converted": 1},
         rows_read=5, check=lambda log: 12.5 in set(log.events["length"]) or pytest.fail("length")),
    Case("ndjson_status_numeric_string", lambda t: write_lines(t / "st.ndjson",
                                                                with_line(4, 2, json.dumps(event(9, status="200")))),
         strict=(2, "status", "numeric text converted"), dropped={}, repaired={"numeric text converted": 1},
         rows_read=5, check=lambda log: log.events["status"].notna().all() or pytest.fail("status")),
    Case("ndjson_length_blank_string", lambda t: write_lines(t / "lenb.ndjson",
                                                              with_line(4, 2, json.dumps(event(9, length="  ")))),
         strict=(2, "length", "blank value"), dropped={}, repaired={"blank value read as missing": 1}, rows_read=5),
    # special files and encodings
    Case("fifo_named_jsonl", lambda t: _fifo(t, "pipe.jsonl"),
         strict=(None, None, "not a regular file"), lenient_raises=True),
    Case("fifo_named_csv", lambda t: _fifo(t, "pipe.csv"), kind="snapshot",
         strict=(None, None, "not a regular file"), lenient_raises=True),
    Case("ndjson_with_bom", lambda t: write_lines(t / "bom.ndjson", [b"\xef\xbb\xbf" + good(3)[0].encode()] + good(3)[1:]),
         strict=None, dropped={}, rows_read=3),
    Case("snapshot_csv_with_bom", lambda t: _csv_bytes(t, "bom.csv", b"\xef\xbb\xbfuser_id,age,is_churned\n1,30,0\n2,40,1\n"),
         kind="snapshot", strict=None, dropped={}, rows_read=2),
    Case("table_csv_gz_with_bom", lambda t: _csv_bytes(t, "bom.csv.gz", b"\xef\xbb\xbfuser_id,age\n1,30\n2,40\n"),
         kind="table", kwargs={"id_col": "user_id"}, strict=None, dropped={}, rows_read=2),
    Case("latin1_byte_near_top", lambda t: _csv_bytes(t, "lat1.csv", _big_csv(400, 2, b"1,2\xe9,p1,1")),
         kind="snapshot", strict=(2, None, "not UTF-8"), dropped={"non-UTF-8 line": 1}, rows_read=400,
         check=_check_located("non-UTF-8 line", "line 2")),
    Case("latin1_byte_far_down", lambda t: _csv_bytes(t, "lat2.csv.gz", _big_csv(3000, 2500, b"2499,2\xe9,p1,1")),
         kind="snapshot", strict=(2500, None, "not UTF-8"), dropped={"non-UTF-8 line": 1}, rows_read=3000),
    Case("truncated_csv_gz", _truncated_gz, kind="snapshot",
         strict=(None, None, "truncated or corrupt gzip"), lenient_raises=True),
    Case("header_only_csv", lambda t: _csv(t, "head.csv", "user_id,age,is_churned\n"), kind="table",
         strict=(None, None, "no rows"), lenient_raises=True),
    # numeric columns read as text in tables
    Case("csv_blank_in_numeric_column", lambda t: _csv(t, "blank.csv", "user_id,age,is_churned\n1,30,0\n2, ,1\n3,,0\n"),
         kind="snapshot", strict=(3, "age", "blank value"), dropped={},
         repaired={"blank value read as missing": 1}, rows_read=3,  # line 4's empty field: plain missing
         check=lambda s: (s.table["age"].isna().tolist() == [False, True, True]
                          and pd.api.types.is_numeric_dtype(s.table["age"])) or pytest.fail("age")),
    Case("csv_tab_blank_in_numeric_column", lambda t: _csv(t, "tab.csv", "user_id,age,is_churned\n1,\t,0\n2,41.5,1\n"),
         kind="table", kwargs={"id_col": "user_id", "label_col": "is_churned"}, strict=(2, "age", "blank value"),
         dropped={}, repaired={"blank value read as missing": 1}, rows_read=2, check=_check_age_numeric),
    Case("csv_mostly_numeric_with_text", lambda t: _csv(t, "mostly.csv", MOSTLY_NUMERIC), kind="snapshot",
         strict=(18, "age", "text value in a numeric column"), dropped={},
         repaired={"non-numeric value in a numeric column set to missing": 1}, rows_read=40,
         check=_check_age_numeric),
    Case("parquet_numeric_column_as_text",
         lambda t: _parquet(t, "agestr.parquet", pd.DataFrame({"user_id": ["a", "b", "c"], "age": ["30", "41", "52"],
                                                               "is_churned": [0, 1, 0]})),
         kind="snapshot", strict=(1, "age", "numbers stored as text"), dropped={},
         repaired={"numeric text converted": 3}, rows_read=3, check=_check_age_numeric),
    Case("parquet_numeric_text_with_blank",
         lambda t: _parquet(t, "agebl.parquet", pd.DataFrame({"user_id": ["a", "b", "c"], "age": ["30", " ", "5.5"],
                                                              "is_churned": [0, 1, 0]})),
         kind="table", kwargs={"id_col": "user_id", "label_col": "is_churned"},
         strict=(1, "age", "numbers stored as text"), dropped={},
         repaired={"numeric text converted": 2, "blank value read as missing": 1}, rows_read=3,
         check=_check_age_numeric),
    # labels
    Case("snapshot_float_labels", lambda t: _csv(t, "flt.csv", "user_id,is_churned\n1,0.0\n2,1.0\n3,0.0\n"),
         kind="snapshot", strict=None, dropped={}, repaired={}, rows_read=3),
    Case("parquet_float_labels_with_nan",
         lambda t: _parquet(t, "nanlab.parquet", pd.DataFrame({"user_id": [1, 2, 3], "is_churned": [0.0, float("nan"), 1.0]})),
         kind="snapshot", strict=(2, "is_churned", "null label"), dropped={"null label": 1}, repaired={}, rows_read=3),
    Case("csv_nan_label", lambda t: _csv(t, "nan.csv", "user_id,is_churned\n1,0\n2,1\n3,NaN\n"),
         kind="snapshot", strict=(4, "is_churned", "null label"), dropped={"null label": 1}, rows_read=3),
    Case("label_yes_mixed_with_2", lambda t: _csv(t, "yes2.csv", "user_id,is_churned\n1,Yes\n2,no\n3,2\n"),
         kind="snapshot", strict=(4, "is_churned", "values found: '2', 'Yes', 'no'"), lenient_raises=True),
    Case("parquet_int_label_2",
         lambda t: _parquet(t, "lab2.parquet", pd.DataFrame({"user_id": ["a", "b", "c"], "is_churned": [0, 1, 2]})),
         kind="snapshot", strict=(3, "is_churned", "not binary"), lenient_raises=True),
    Case("label_spellings_reported", lambda t: _csv(t, "tf.csv", "user_id,is_churned\n1,TRUE\n2,false\n3,1\n"),
         kind="snapshot", strict=(2, "is_churned", "not 0/1"), dropped={},
         repaired={"label 'is_churned' spelled 'TRUE'/'false' mapped to 1/0": 2}, rows_read=3,
         check=_check_located("label 'is_churned' spelled 'TRUE'/'false' mapped to 1/0", "line 2, column 'is_churned'")),
    # tables without label; columns that must not become features
    Case("table_without_label_or_id", lambda t: _csv(t, "nolab.csv", "a,b\n1,x\n2,y\n2,y\n"), kind="table",
         strict=None, dropped={}, rows_read=3),
    Case("table_unique_text_column", lambda t: _csv(t, "uniq.csv", UNIQUE_TEXT), kind="table",
         kwargs={"id_col": "user_id", "label_col": "is_churned"}, strict=None, dropped={}, rows_read=25,
         check=_check_not_feature("email", "unique text per row")),
    Case("table_constant_column", lambda t: _csv(t, "const.csv", CONSTANT), kind="snapshot",
         strict=None, dropped={}, rows_read=5, check=_check_not_feature("country", "constant")),
]

IDS = [c.name for c in CASES]


def test_corpus_is_large_and_distinct():
    assert len(CASES) >= 60
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_strict_mode(case: Case, tmp_path: Path):
    path = case.build(tmp_path)
    if case.strict is None:
        out = _load(case, path, strict=True)
        assert out.quality.rows_read == case.rows_read
        assert out.quality.dropped == case.dropped
        return
    line, column, fragment = case.strict
    with pytest.raises(DataValidationError) as info:
        _load(case, path, strict=True)
    err = info.value
    msg = str(err)
    assert err.file == str(path) and str(path) in msg
    assert fragment in msg
    if line is not None:
        assert err.line == line and f"line {line}" in msg
    if column is not None:
        assert err.column is not None and column in err.column
        assert f"column {err.column!r}" in msg


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_lenient_mode(case: Case, tmp_path: Path):
    path = case.build(tmp_path)
    if case.lenient_raises:
        with pytest.raises(DataValidationError) as info:
            _load(case, path, strict=False)
        assert str(path) in str(info.value) and case.strict[2] in str(info.value)
        return
    out = _load(case, path, strict=False)
    q = out.quality
    assert q.rows_read == case.rows_read
    assert q.dropped == case.dropped
    assert q.repaired == (case.repaired or {})
    assert q.rows_read == q.rows_kept + sum(q.dropped.values())
    frame = out.events if case.kind == "events" else out.table
    assert len(frame) == q.rows_kept
    table = q.table()
    assert table.loc[table.outcome == "kept", "rows"].item() == q.rows_kept
    assert table.loc[table.outcome == "dropped", "rows"].sum() == sum(q.dropped.values())
    if case.check is not None:
        case.check(out)


def test_foreign_exceptions_are_reported(tmp_path: Path, monkeypatch):
    # The guard in _load must turn a library error into a test failure, not let it pass.
    case = Case("x", lambda t: t / "x.ndjson")
    monkeypatch.setattr(f"{__name__}.load_events", lambda *a, **k: (_ for _ in ()).throw(KeyError("k")))
    with pytest.raises(pytest.fail.Exception, match="KeyError escaped"):
        _load(case, tmp_path / "x.ndjson", strict=False)


def test_truncated_line_error_quotes_the_line(tmp_path: Path):
    bad = good(1)[0][:57]
    path = write_lines(tmp_path / "t.ndjson", with_line(2, 2, bad))
    with pytest.raises(DataValidationError) as info:
        load_events(path, strict=True)
    assert bad in str(info.value)


def test_line_numbers_survive_rejected_lines(tmp_path: Path):
    # The reader skips rejected (non-UTF-8 / ragged) lines; later line numbers must stay physical.
    rows: list[str | bytes] = list(good(6))
    rows[1] = b'{"bad": "\xff\xfe"}'
    rows[2] = b'{"bad": "\xe9"}'
    rows[4] = json.dumps(event(9, page="Teleport"))
    path = write_lines(tmp_path / "shift.ndjson", rows)
    assert load_events(path).quality.dropped == {"non-UTF-8 line": 2, "unknown page": 1}
    with pytest.raises(DataValidationError) as info:
        load_events(path, strict=True)
    assert info.value.line == 2
    # snapshot: a ragged row (dropped in lenient mode) before a non-binary label on line 6
    csv_path = _csv(tmp_path, "s.csv", "user_id,is_churned\n1,0\n2,1,7\n3,0\n4,1,1\n5,maybe\n")
    with pytest.raises(DataValidationError) as info:
        load_snapshot(csv_path)
    assert info.value.line == 6 and info.value.column == "is_churned"


@pytest.mark.parametrize("rejected", [[], [1], [2, 3], [1, 2, 5], [4, 9, 10]])
def test_shift_for_rejects_maps_ordinals_to_positions(rejected: list[int]):
    import duckdb

    from churnlib.load import _shift_for_rejects

    total = 12
    good_positions = [p for p in range(1, total + 1) if p not in rejected]
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE t AS SELECT range + 1 AS pos FROM range(?)", [len(good_positions)])
    if rejected:
        _shift_for_rejects(con, "t", "pos", rejected)
    assert [r[0] for r in con.execute("SELECT pos FROM t ORDER BY pos").fetchall()] == good_positions


def test_unknown_page_still_counted_in_page_counts_read(tmp_path: Path):
    path = write_lines(tmp_path / "p.ndjson", with_line(3, 2, json.dumps(event(9, page="Teleport"))))
    log = load_events(path)
    assert log.page_counts_read.to_dict() == {"NextSong": 3, "Teleport": 1}
    assert set(log.events["page"]) == {"NextSong"}
