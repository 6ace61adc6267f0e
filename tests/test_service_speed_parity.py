"""The service's fast paths give exactly what the general code gives (no timing here: see benchmarks/).

* :func:`churnlib.input_checks.check_input` checks numeric features held as NumPy numbers in one pass
  over a 2-D block, and short plain-ASCII category columns without pandas' string machinery; forcing
  the column-by-column code (the general path) must give the same rows, warnings, issues and errors.
* :func:`churnlib.load.load_event_records` reads the records' JSON lines in place, writes them with
  one reused encoder and skips the duplicate search when no two rows share a hash: the same events,
  account and error words as an NDJSON file of the same records.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import features, input_checks, scoring
from churnlib.load import DataValidationError, load_event_records, load_events
from churnlib.model import ChurnModel
from churnlib.simulate import write_event_log
from churnlib.training import run_training

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sparkify_events_2018-11_sample.ndjson.gz"
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/data (real Sparkify sample) is absent")


@pytest.fixture
def general_path(monkeypatch):
    """Force check_input's column-by-column code: no numeric block, no short-text shortcut."""
    def use() -> None:
        monkeypatch.setattr(input_checks, "_plain_number", lambda dtype: False)
        monkeypatch.setattr(input_checks, "_SHORT_ROWS", -1)
    return use


def _schema() -> list[dict]:
    return [
        {"name": "age", "kind": "numeric", "dtype": "float64", "min": 18.0, "max": 90.0, "n_missing": 0},
        {"name": "songs", "kind": "numeric", "dtype": "int64", "min": 0.0, "max": 500.0},
        {"name": "ratio", "kind": "numeric", "dtype": "float64", "min": 0.0, "max": 1.0, "n_missing": 12},
        {"name": "flag", "kind": "numeric", "dtype": "bool", "min": 0.0, "max": 1.0},
        {"name": "const", "kind": "numeric", "dtype": "float64", "min": 5.0, "max": 5.0, "n_missing": 0},
        {"name": "shift", "kind": "numeric", "dtype": "float64", "min": -3.0, "max": 2.0},
        {"name": "norange", "kind": "numeric", "dtype": "float64", "n_missing": 0},
        {"name": "as_text", "kind": "numeric", "dtype": "float64", "min": 0.0, "max": 10.0},
        {"name": "country", "kind": "categorical", "dtype": "object", "categories": ["FR", "US", "DE"],
         "n_categories": 3, "n_missing": 0},
        {"name": "device", "kind": "categorical", "dtype": "object", "categories": ["pc", "mac"], "n_categories": 3},
        {"name": "tier", "kind": "categorical", "dtype": "object", "categories": ["free", "paid"], "n_categories": 2},
    ]


def _frame(rows: int) -> pd.DataFrame:
    """Every kind of defect the checks know, in numeric NumPy columns and short text columns."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({
        "uid": [f"u{i}" for i in range(rows)],
        "age": rng.uniform(18, 90, rows),
        "songs": rng.integers(0, 500, rows).astype("int64"),
        "ratio": rng.uniform(0, 1, rows),
        "flag": rng.integers(0, 2, rows).astype(bool),
        "const": np.full(rows, 5.0),
        "shift": rng.uniform(-3, 2, rows),
        "norange": rng.normal(size=rows),
        "as_text": [str(v) for v in rng.integers(0, 10, rows)],
        "country": pd.Series(rng.choice(["FR", "US", "DE"], rows), dtype="str"),
        "device": pd.Series(rng.choice(["pc", "mac"], rows), dtype=object),
        "tier": pd.Series(rng.choice(["free", "paid"], rows), dtype="str"),
    })
    if rows >= 8:
        df.loc[1, "age"] = 1e12  # far above
        df.loc[2, "age"] = np.nan  # missing where training had none
        df.loc[3, "age"] = -np.inf  # far below
        df.loc[2, "songs"] = -1  # negative where training was >= 0
        df.loc[4, "ratio"] = np.nan  # usually missing: a note, not a flag
        df.loc[5, "const"] = 40.0  # constant column: range max(|5|, 1)
        df.loc[6, "shift"] = -30.0
        df.loc[7, "norange"] = np.nan
        df.loc[1, "as_text"] = "abc"  # text that is not a number
        df.loc[3, "country"] = "XX"  # unseen
        df.loc[4, "country"] = " "  # blank: missing, not unseen
        df.loc[5, "country"] = " FR"  # not a known category as given
        df.loc[6, "country"] = np.nan
        df.loc[1, "device"] = "linux"  # the schema lists only some: never unseen
        df.loc[2, "tier"] = "gratuit\u00e9"  # non-ASCII: the general path
        df.loc[3, "tier"] = None
        df.loc[7, "tier"] = "VIP\t"  # a control character: the general path
    return df


def _same_check(a: input_checks.InputCheck, b: input_checks.InputCheck) -> None:
    pd.testing.assert_frame_equal(a.frame, b.frame)
    pd.testing.assert_series_equal(a.warnings, b.warnings)
    assert [i.to_dict() for i in a.issues] == [i.to_dict() for i in b.issues]
    assert (a.notes, a.usual_missing, a.rows_in, a.key) == (b.notes, b.usual_missing, b.rows_in, b.key)


@pytest.mark.parametrize("rows", [1, 12, 300])
def test_check_input_fast_paths_equal_the_general_path(rows, general_path):
    frame = _frame(rows)
    fast = input_checks.check_input(_schema(), frame, id_col="uid")
    if rows >= 8:  # the defects were seen (the test is not vacuous)
        assert fast.rows_flagged >= 6
        assert {i.check for i in fast.issues} >= {"far outside range", "missing value", "unseen category",
                                                  "not a number", "numeric text"}
    general_path()
    _same_check(fast, input_checks.check_input(_schema(), frame, id_col="uid"))


def test_check_input_fast_paths_equal_the_general_path_with_duplicates_and_lines(general_path):
    frame = pd.concat([_frame(12), _frame(12).iloc[[3, 5]]], ignore_index=True)
    kw = dict(id_col="uid", allow_duplicates=True, source="t.csv", lines=np.arange(2, len(frame) + 2))
    fast = input_checks.check_input(_schema(), frame, **kw)
    assert fast.rows_out == 12 and any(i.check == "duplicate id" for i in fast.issues)
    general_path()
    _same_check(fast, input_checks.check_input(_schema(), frame, **kw))


@pytest.mark.parametrize("column, value", [("age", 1e12), ("songs", -1), ("country", "XX"), ("age", np.nan),
                                           ("shift", -30.0)])
def test_strict_errors_are_the_same_words_on_both_paths(column, value, general_path):
    frame = _frame(3).assign(as_text=1.0)  # numbers, not text: the one defect is the one set here
    frame.loc[2, column] = value
    with pytest.raises(DataValidationError) as fast:
        input_checks.check_input(_schema(), frame, id_col="uid", strict=True, source="t.csv",
                                 lines=np.arange(2, 5))
    general_path()
    with pytest.raises(DataValidationError) as general:
        input_checks.check_input(_schema(), frame, id_col="uid", strict=True, source="t.csv",
                                 lines=np.arange(2, 5))
    assert str(fast.value) == str(general.value) and fast.value.line == 4 == general.value.line


# --- one user's events, end to end ---------------------------------------------------------------


def _sample_user(user: str) -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if str(r.get("userId")) == user]


@pytest.fixture(scope="module")
def event_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("log") / "sim.parquet"
    write_event_log(path, n_users=150, days=45, seed=3)
    table = features.build_features(path, features.observation_dates(path, 14), horizon_days=14)
    r = run_training(table, "userId", "churned", models=("logreg",), strategies=("none",), search_budget=0,
                     n_permutations=1, n_bootstrap=10)
    out = tmp_path_factory.mktemp("model")
    r.save(out)
    return ChurnModel.load(out)


@needs_sample
def test_one_real_users_score_is_the_same_on_the_fast_and_general_paths(event_model, general_path):
    log = load_event_records(_sample_user("49"), strict=True, source="request", lossless_ok=True)
    fast = scoring.score_events(event_model, log, None, source="request")
    general_path()
    general = scoring.score_events(event_model, log, None, source="request")
    pd.testing.assert_frame_equal(fast.scores, general.scores)
    pd.testing.assert_frame_equal(fast.features, general.features)
    assert fast.quality.to_dict() == general.quality.to_dict()
    assert fast.check.to_dict() == general.check.to_dict()


@needs_sample
def test_records_without_and_with_duplicates_load_as_the_same_file(tmp_path):
    records = _sample_user("49")
    for recs, dups in ((records, 0), (records + [dict(records[10]), dict(records[3]), dict(records[10])], 3)):
        path = tmp_path / f"u{dups}.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
        mem, file = load_event_records(recs), load_events(path)
        pd.testing.assert_frame_equal(mem.events, file.events)
        assert (mem.quality.dropped, mem.quality.repaired) == (file.quality.dropped, file.quality.repaired)
        assert mem.quality.dropped.get("exact duplicate row", 0) == dups
        assert len(mem.events) == len(records) - sum(1 for r in records if not r.get("userId"))


def test_a_strict_error_quotes_the_record_as_json_dumps_writes_it():
    good = {"artist": "Sigur R\u00f3s", "ts": 1541000000000, "userId": "7", "sessionId": np.int64(1),
            "itemInSession": 0, "page": "NextSong", "level": "free", "length": 215.5}
    bad = {**good, "ts": "not a time"}
    with pytest.raises(DataValidationError) as err:
        load_event_records([good, bad], strict=True)
    expected = json.dumps({**bad, "sessionId": 1}, ensure_ascii=False)[:80]
    assert err.value.line == 2 and err.value.message.endswith(f"event starts: {expected!r}")
