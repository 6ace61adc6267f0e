"""Events given in memory, and scoring an event log at an observation date (the service's path)."""
from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import features, scoring
from churnlib.labels import to_epoch_ms
from churnlib.load import DataValidationError, load_event_records, load_events
from churnlib.model import ChurnModel
from churnlib.schema import CHURN_PAGE, MS_PER_DAY

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sparkify_events_2018-11_sample.ndjson.gz"
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/data (real Sparkify sample) is absent")


def _sample_records() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_ndjson(records: list[dict], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    return path


def _defective(records: list[dict]) -> list[dict]:
    """The sample plus defects: bad and ISO timestamps, ts in seconds, text numbers, duplicates."""
    out = [dict(r) for r in records]
    named = [i for i, r in enumerate(out) if r.get("userId")]
    out[named[3]]["ts"] = "not a time"
    out[named[5]]["ts"] = pd.Timestamp(out[named[5]]["ts"], unit="ms", tz="UTC").isoformat()
    out[named[7]]["ts"] = pd.Timestamp(out[named[7]]["ts"], unit="ms").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    out[named[9]]["ts"] = out[named[9]]["ts"] // 1000
    out[named[11]]["length"] = "215.5"
    out[named[13]]["sessionId"] = str(out[named[13]]["sessionId"])
    out[named[15]]["page"] = "Not A Page"
    out[named[17]].pop("itemInSession")
    out.append(dict(out[named[20]]))  # exact duplicate, last
    out.insert(30, dict(out[named[40]]))  # a duplicate of a later record: the first one is kept
    out.insert(2, {**out[named[1]], "userId": ""})  # one more guest row
    return out


def _assert_same_log(mem, file) -> None:
    pd.testing.assert_frame_equal(mem.events, file.events)
    pd.testing.assert_series_equal(mem.page_counts_read, file.page_counts_read)
    a, b = mem.quality, file.quality
    assert (a.rows_read, a.rows_kept, a.dropped, a.repaired, a.notes) == (
        b.rows_read, b.rows_kept, b.dropped, b.repaired, b.notes)
    # the same places, counted in events instead of lines
    assert a.locations == {k: v.replace("line ", "event ") for k, v in b.locations.items()}
    assert a.unit == "event" and a.text().startswith(f"read {a.rows_read:,} events from request")


# --- load_event_records ------------------------------------------------------------------------


@needs_sample
def test_records_load_exactly_as_the_same_events_in_an_ndjson_file(tmp_path):
    records = _sample_records()
    _assert_same_log(load_event_records(records), load_events(_write_ndjson(records, tmp_path / "s.ndjson")))


@needs_sample
def test_defective_records_are_repaired_dropped_and_counted_as_in_a_file(tmp_path):
    records = _defective(_sample_records())
    mem = load_event_records(records)
    _assert_same_log(mem, load_events(_write_ndjson(records, tmp_path / "d.ndjson")))
    q = mem.quality
    for reason in ("bad timestamp", "exact duplicate row", "unknown page", "logged-out/guest row with empty userId"):
        assert q.dropped.get(reason, 0) >= 1, reason
    for reason in ("ts in seconds converted to ms", "numeric text converted", "sessionId string cast to integer",
                   "itemInSession derived from order in session"):
        assert q.repaired.get(reason, 0) >= 1, reason
    # ISO timestamps are read, not dropped: only the one unparseable ts is a bad timestamp
    assert q.dropped["bad timestamp"] == 1
    assert q.locations["bad timestamp"].startswith("event ") and q.locations["bad timestamp"].endswith("column 'ts'")


@needs_sample
def test_strict_records_fail_where_the_file_fails(tmp_path):
    records = _defective(_sample_records())
    with pytest.raises(DataValidationError) as in_file:
        load_events(_write_ndjson(records, tmp_path / "d.ndjson"), strict=True)
    with pytest.raises(DataValidationError) as in_memory:
        load_event_records(records, strict=True, source="request")
    m, f = in_memory.value, in_file.value
    assert (m.line, m.column, m.message.replace("event starts", "line starts")) == (f.line, f.column, f.message)
    assert m.file == "request" and m.unit == "event"
    assert str(m).startswith(f"request, event {f.line}, column 'ts': bad timestamp")


def test_bad_record_lists_are_refused_with_clear_errors():
    good = {"ts": 1541000000000, "userId": "7", "sessionId": 1, "page": "NextSong", "level": "free"}
    with pytest.raises(DataValidationError, match="the list is empty") as err:
        load_event_records([])
    assert err.value.file == "request" and err.value.line is None
    with pytest.raises(DataValidationError, match="must be a list"):
        load_event_records({"events": [good]})
    with pytest.raises(DataValidationError, match="must be an object") as err:
        load_event_records([good, good, 3], source="body")
    assert (err.value.file, err.value.line, err.value.unit) == ("body", 3, "event")
    assert str(err.value).startswith("body, event 3: ")
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['sessionId'\]") as err:
        load_event_records([{k: v for k, v in good.items() if k != "sessionId"}])
    assert err.value.column == "sessionId"
    with pytest.raises(DataValidationError, match="not JSON") as err:
        load_event_records([good, {**good, "length": object()}])
    assert err.value.line == 2
    with pytest.raises(DataValidationError, match="no usable events") as err:
        load_event_records([{**good, "ts": "yesterday"}])
    # numpy numbers and timestamps (a Python caller's values) are taken as the numbers / ISO text they are
    log = load_event_records([{**good, "ts": np.int64(1541000000000), "sessionId": np.int64(1)},
                              {**good, "ts": pd.Timestamp("2018-11-01T00:00:01Z"), "itemInSession": 1}])
    assert log.events["ts"].tolist() == [1541000000000, 1541030401000]


# --- score_events / score_command --as-of ------------------------------------------------------


@pytest.fixture(scope="module")
def event_model(sim_trained):
    """A model trained as the pipeline trains it (run_training on build_features), CI-sized."""
    return sim_trained[0]


@pytest.fixture(scope="module")
def log(sim_log):
    return load_events(sim_log)


def _mid_date(events: pd.DataFrame) -> str:
    """A midnight 60% into the log, leaving 14 days of label window after it."""
    first, last = int(events["ts"].min()), int(events["ts"].max())
    d = pd.Timestamp(first + 0.6 * (last - first), unit="ms", tz="UTC").floor("D")
    assert d + pd.Timedelta(days=14) <= pd.Timestamp(last, unit="ms", tz="UTC")
    return f"{d:%Y-%m-%d}"


def test_score_as_of_gives_the_notebook_probabilities(event_model, sim_log, log, tmp_path):
    D = _mid_date(log.events)
    risk = scoring.score_command(event_model, events=sim_log, out=tmp_path / "risk.csv", as_of=D, reasons=False)
    # the notebook path: the feature table at the same date (02), scored with the model (05)
    table = features.build_features(sim_log, D, horizon_days=14)
    model = ChurnModel.load(event_model)
    expect = pd.Series(model.churn_probability(table), index=table["userId"].to_numpy())
    assert set(risk["userId"]) == set(table["userId"])
    got = risk.set_index("userId")["churn_probability"]
    np.testing.assert_allclose(got.loc[expect.index].to_numpy(), expect.to_numpy(), rtol=0, atol=1e-12)
    assert (pd.to_datetime(risk["as_of"], utc=True) == pd.Timestamp(D, tz="UTC")).all()
    notes = " ".join(risk.attrs["quality"].notes)
    assert f"current users scored as of {D}" in notes and f"at or after {D} ignored" in notes


def test_as_of_decides_features_and_who_is_scored(event_model, log):
    model = ChurnModel.load(event_model)
    ev = log.events
    D = _mid_date(ev)
    t = to_epoch_ms(D)
    at_end = scoring.score_events(model, log, reasons=False)
    mid = scoring.score_events(model, log, D, reasons=False)
    assert at_end.as_of == scoring.default_as_of(ev) == (int(ev["ts"].max()) // MS_PER_DAY + 1) * MS_PER_DAY
    assert mid.as_of == t
    # the same users get other features at an earlier date
    both = sorted(set(at_end.features["userId"]) & set(mid.features["userId"]))
    a = at_end.features.set_index("userId").loc[both]
    b = mid.features.set_index("userId").loc[both]
    differs = [c for c in a.columns if not a[c].equals(b[c])]
    assert len(differs) >= len(a.columns) // 2, differs
    # events at or after as_of change nothing: the same as a log cut at as_of
    cut = features.user_features(ev[ev["ts"] < t].reset_index(drop=True), t).set_index("userId")
    pd.testing.assert_frame_equal(b, cut.loc[b.index, b.columns], check_index_type=False)
    # a user who cancelled before as_of is left out; one who cancels after it is scored
    cancel = ev[ev["page"] == CHURN_PAGE].groupby("userId")["ts"].min()
    before, after = cancel[cancel < t].index, cancel[cancel >= t].index
    after = [u for u in after if (ev.loc[ev["userId"] == u, "ts"] < t).any()]
    assert len(before) and len(after), "the simulated log should have cancellations on both sides of D"
    assert not set(before) & set(mid.scores["userId"])
    assert set(after) <= set(mid.scores["userId"])
    assert mid.left_out["cancelled before as_of"] == len(before)
    assert list(mid.features["userId"]) == list(mid.scores["userId"])
    assert mid.features.columns.tolist() == ["userId", *model.feature_names]
    # the caller's log account is not changed by scoring
    assert not any("current users scored" in n for n in log.quality.notes)


def test_no_user_left_and_bad_as_of_are_errors(event_model, log, tmp_path):
    model = ChurnModel.load(event_model)
    ev = log.events
    with pytest.raises(DataValidationError, match="no current users to score"):
        scoring.score_events(model, log, int(ev["ts"].min()))  # nobody has an event before it
    for bad in ("yesterday", "2018-13-40", 1541000000, True):
        with pytest.raises(DataValidationError) as err:
            scoring.score_events(model, log, bad)
        assert err.value.column == "as_of"
    with pytest.raises(ValueError, match="--as-of"):
        scoring.score_command(event_model, table=tmp_path / "t.csv", out=tmp_path / "r.csv", as_of="2018-11-01")


def test_parse_as_of_forms():
    ev = pd.DataFrame({"ts": [1541000000000, 1541100000000]})
    midnight = (1541100000000 // MS_PER_DAY + 1) * MS_PER_DAY
    assert scoring.parse_as_of(None, ev) == scoring.default_as_of(ev) == midnight
    assert scoring.parse_as_of("2018-11-20", ev) == int(pd.Timestamp("2018-11-20", tz="UTC").value // 10**6)
    assert scoring.parse_as_of("2018-11-20T06:00:00+02:00", ev) == int(
        pd.Timestamp("2018-11-20T04:00:00", tz="UTC").value // 10**6)
    assert scoring.parse_as_of(1542672000000, ev) == scoring.parse_as_of("1542672000000", ev) == 1542672000000


# --- the in-memory path is fast and gives the same answers ---------------------------------------


@needs_sample
def test_shared_connection_gives_the_same_features_and_is_thread_safe(tmp_path):
    records = _sample_records()
    by_user: dict[str, list[dict]] = {}
    for r in records:
        if r.get("userId"):
            by_user.setdefault(r["userId"], []).append(r)
    users = sorted(by_user, key=lambda u: -len(by_user[u]))[:8]
    # the whole sample (8,056 events: a small input) through the shared database vs a new one
    whole = load_event_records(records).events
    for t in ("2018-11-10", scoring.default_as_of(whole)):
        pd.testing.assert_frame_equal(features.user_features(whole, t),
                                      features.user_features(whole, t, memory_limit="1GB"))
    logs = {u: load_event_records(by_user[u]) for u in users}
    as_of = {u: scoring.default_as_of(logs[u].events) for u in users}
    expect = {}
    for u in users:
        # a new database (the batch path: memory_limit opens one) vs the shared one
        fresh = features.user_features(logs[u].events, as_of[u], memory_limit="1GB")
        shared = features.user_features(logs[u].events, as_of[u])
        pd.testing.assert_frame_equal(shared, fresh)
        expect[u] = shared
    errors, results = [], {}

    def work(u):
        try:
            for _ in range(3):
                got_log = load_event_records(by_user[u])
                pd.testing.assert_frame_equal(got_log.events, logs[u].events)
                results[u] = features.user_features(got_log.events, as_of[u])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for u in users:
        pd.testing.assert_frame_equal(results[u], expect[u])
