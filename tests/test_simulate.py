"""Tests for the event simulator: determinism, schema, invariants, writer and strict loading."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnlib.schema import CHURN_PAGE, EVENT_COLUMNS, KNOWN_PAGES, PAGE_METHOD_STATUS
from churnlib.simulate import SimulatorConfig, simulate_events, write_event_log

START_MS = int(pd.Timestamp("2018-10-01", tz="UTC").value // 1_000_000)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    # big enough to contain cancellations, upgrades, downgrades, guests and mid-session logouts
    return simulate_events(600, 60, seed=3)


def _users(ev: pd.DataFrame) -> pd.DataFrame:
    return ev[ev["userId"] != ""]


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- determinism -----------------------------------------------------------------------------
def test_same_seed_same_events_and_different_seed_differs():
    a = simulate_events(150, 20, seed=11)
    b = simulate_events(150, 20, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = simulate_events(150, 20, seed=12)
    assert len(a) != len(c) or not a["ts"].equals(c["ts"])


def test_written_file_is_identical_for_a_seed_and_independent_of_chunking(tmp_path):
    p1, p2, p3 = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    s1 = write_event_log(p1, 250, 20, seed=5, chunk_users=100)
    write_event_log(p2, 250, 20, seed=5, chunk_users=100)
    s3 = write_event_log(p3, 250, 20, seed=5, chunk_users=37)
    assert _sha(p1) == _sha(p2)
    d1, d3 = pd.read_parquet(p1), pd.read_parquet(p3)
    pd.testing.assert_frame_equal(d1, d3)
    assert s1["events"] == s3["events"] == len(d1)
    assert pq.ParquetFile(p1).metadata.num_row_groups == 3  # one row group per chunk
    # and the in-memory simulation is the same log
    mem = simulate_events(250, 20, seed=5)
    pd.testing.assert_frame_equal(mem.reset_index(drop=True), d1.reset_index(drop=True),
                                  check_dtype=False)


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()[:16]


def test_default_output_is_unchanged_by_the_catalogue_and_thread_options(tmp_path):
    # digest of simulate_events(120, 15, seed=5) as the simulator produced it before catalogue_seed,
    # id_offset and n_jobs existed: the cached default log must not change
    a = simulate_events(120, 15, seed=5)
    assert _digest(a) == "73f9470fbfd10b36"
    pd.testing.assert_frame_equal(a, simulate_events(120, 15, seed=5, catalogue_seed=5, id_offset=0))
    # threads simulate chunks in parallel; the file is byte for byte the serial one
    p1, p2 = tmp_path / "serial.parquet", tmp_path / "threads.parquet"
    s1 = write_event_log(p1, 250, 20, seed=5, chunk_users=60)
    s2 = write_event_log(p2, 250, 20, seed=5, chunk_users=60, n_jobs=3)
    assert _sha(p1) == _sha(p2) and s1["sessions"] == s2["sessions"]
    # sessions stay numbered 1, 2, ... over users in order across the parallel chunks
    sid = pd.read_parquet(p2).groupby("userId", sort=False)["sessionId"].agg(["min", "max"])
    assert sid["min"].min() == 1 and sid["max"].max() == s2["sessions"]


def test_a_new_window_shares_the_reference_catalogue():
    ref = simulate_events(300, 15, seed=7)
    shared = simulate_events(120, 15, seed=8, catalogue_seed=7, start="2018-12-03", id_offset=10**7)
    own = simulate_events(120, 15, seed=8, start="2018-12-03")
    # what churnlib.monitoring drew before the simulator had catalogue_seed (same seed -> same events)
    assert _digest(shared) == "0d1fa05fdabc6fcb"
    users = shared.loc[shared["userId"] != "", "userId"].astype(int)
    assert users.min() > 10**7 and users.max() <= 10**7 + 120

    def songs(ev: pd.DataFrame) -> pd.DataFrame:
        return ev[ev["song"].notna()].drop_duplicates("song")[["song", "length"]]

    # the same catalogue: every title also played in the reference has the reference's length, and
    # most titles are found there; a catalogue of its own shares some titles, never their lengths
    same = songs(shared).merge(songs(ref), on="song")
    assert (same["length_x"] == same["length_y"]).all() and len(same) > 0.5 * len(songs(shared))
    other = songs(own).merge(songs(ref), on="song")
    assert (other["length_x"] != other["length_y"]).mean() > 0.9
    # the users are the same draws: a user's first-session traits (gender, level) do not depend on the catalogue
    first = lambda ev: ev[ev["userId"] != ""].groupby("userId", sort=False)[["gender", "level"]].first()  # noqa: E731
    np.testing.assert_array_equal(first(shared).to_numpy(), first(own).to_numpy())


# --- schema and plausibility -----------------------------------------------------------------
def test_columns_types_and_method_status(events):
    assert tuple(events.columns) == EVENT_COLUMNS
    assert events["ts"].dtype == np.int64 and events["sessionId"].dtype == np.int64
    assert events["itemInSession"].dtype == np.int64
    assert set(events["page"].unique()) <= KNOWN_PAGES
    ms = events[["page", "method", "status"]].drop_duplicates()
    for r in ms.itertuples():
        assert (r.method, r.status) == PAGE_METHOD_STATUS[r.page], r.page
    assert events["ts"].min() >= START_MS
    assert events["ts"].max() < START_MS + 60 * 86_400_000
    assert set(events["auth"].unique()) <= {"Logged In", "Logged Out", "Guest", "Cancelled"}
    assert set(events["level"].unique()) == {"free", "paid"}


def test_user_columns_look_real(events):
    u = _users(events)
    per_user = u.groupby("userId")[["firstName", "lastName", "gender", "location", "userAgent",
                                    "registration"]].nunique()
    assert (per_user == 1).all().all()  # one identity per user
    assert set(u["gender"].unique()) == {"M", "F"}
    locs = u["location"].drop_duplicates()
    assert locs.str.fullmatch(r"[^,]+, [A-Z]{2}(-[A-Z]{2})*").all(), locs[:5].tolist()
    assert u["userAgent"].str.startswith("Mozilla/5.0 (").all()
    songs = u[u["page"] == "NextSong"]
    assert songs[["song", "artist", "length"]].notna().all().all()
    assert u.loc[u["page"] != "NextSong", ["song", "artist", "length"]].isna().all().all()
    assert 235 <= songs["length"].mean() <= 265  # Sparkify: about 249 s
    # long-tailed popularity: the top 1% of songs get a large share of plays
    plays = songs["song"].value_counts()
    assert plays.iloc[: max(1, len(plays) // 100)].sum() / plays.sum() > 0.10
    assert plays.iloc[-1] == 1


def test_logged_out_and_guest_rows(events):
    anon = events[events["userId"] == ""]
    share = len(anon) / len(events)
    assert 0.015 <= share <= 0.06  # real logs: 286/8,056 (3.6%), 8,346/286,500 (2.9%)
    assert set(anon["auth"].unique()) <= {"Logged Out", "Guest"}
    assert anon[["firstName", "lastName", "location", "userAgent", "gender"]].isna().all().all()
    assert anon["registration"].isna().all()
    assert {"Login", "Home"} <= set(anon["page"].unique())
    guests = events[events["auth"] == "Guest"]
    assert {"Register", "Submit Registration"} <= set(guests["page"].unique())
    # every logged-in row has a user
    assert (events.loc[events["auth"].isin(["Logged In", "Cancelled"]), "userId"] != "").all()


# --- invariants ------------------------------------------------------------------------------
def test_sessions_count_up_and_time_never_goes_back(events):
    ev = events.sort_values(["sessionId", "itemInSession"], kind="stable")
    g = ev.groupby("sessionId")
    assert (g["itemInSession"].transform("min") == 0).all()
    assert (g.cumcount() == ev["itemInSession"]).all()  # 0, 1, 2, ... without gaps
    assert (g["ts"].diff().fillna(0) >= 0).all()
    # a session belongs to one user
    assert (_users(ev).groupby("sessionId")["userId"].nunique() == 1).all()


def test_registration_before_first_event(events):
    u = _users(events)
    first = u.groupby("userId")["ts"].min()
    reg = u.groupby("userId")["registration"].first()
    assert (reg <= first).all()


def test_cancellation_ends_the_user(events):
    u = _users(events).sort_values(["userId", "ts", "itemInSession"], kind="stable")
    conf = u[u["page"] == CHURN_PAGE]
    assert len(conf) > 0
    assert (conf["auth"] == "Cancelled").all()
    assert conf["userId"].is_unique
    last = u.groupby("userId").tail(1).set_index("userId")
    assert (last.loc[conf["userId"], "page"] == CHURN_PAGE).all()  # nothing after it
    # Cancel comes right before the confirmation
    prev = u.groupby("userId")["page"].shift(1)
    assert (prev[u["page"] == CHURN_PAGE] == "Cancel").all()
    assert ((u["page"] == "Cancel").sum()) == len(conf)


def test_level_changes_only_after_a_submit(events):
    u = _users(events).sort_values(["userId", "ts", "itemInSession"], kind="stable")
    prev_level = u.groupby("userId")["level"].shift(1)
    prev_page = u.groupby("userId")["page"].shift(1)
    changed = prev_level.notna() & (u["level"] != prev_level)
    assert changed.any()
    ok = ((u["level"] == "paid") & (prev_page == "Submit Upgrade")) | (
        (u["level"] == "free") & (prev_page == "Submit Downgrade"))
    assert ok[changed].all()
    # the submit row itself still carries the old level
    assert (u.loc[u["page"] == "Submit Upgrade", "level"] == "free").all()
    assert (u.loc[u["page"] == "Submit Downgrade", "level"] == "paid").all()


def test_upgrade_and_downgrade_pages_match_level(events):
    u = _users(events)
    assert (u.loc[u["page"] == "Downgrade", "level"] == "paid").all()
    free_ads = (u["page"] == "Roll Advert")[u["level"] == "free"].mean()
    paid_ads = (u["page"] == "Roll Advert")[u["level"] == "paid"].mean()
    assert free_ads > 10 * paid_ads


def test_config_changes_behaviour():
    base = simulate_events(200, 30, seed=2)
    more = simulate_events(200, 30, seed=2, config=SimulatorConfig(thumbs_up=0.15))
    share = lambda d: (d["page"] == "Thumbs Up").mean()  # noqa: E731
    assert share(more) > 2 * share(base)


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate_events(0, 10)
    with pytest.raises(ValueError):
        simulate_events(10, 0)
    with pytest.raises(ValueError, match="id_offset"):
        simulate_events(10, 5, id_offset=-1)


# --- writer ----------------------------------------------------------------------------------
def test_writer_is_atomic_and_rejects_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match="unknown output type"):
        write_event_log(tmp_path / "events.csv", 10, 5)
    out = tmp_path / "sub" / "events.parquet"
    stats = write_event_log(out, 50, 10, seed=1)
    assert out.exists() and stats["events"] == pq.ParquetFile(out).metadata.num_rows
    assert sorted(p.name for p in out.parent.iterdir()) == ["events.parquet"]  # no temp left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's private 0600
    assert stats["users"] == 50 and stats["seconds"] > 0


def test_ndjson_output_matches_parquet(tmp_path):
    pj, pp = tmp_path / "e.json.gz", tmp_path / "e.parquet"
    write_event_log(pj, 80, 15, seed=9)
    write_event_log(pp, 80, 15, seed=9)
    with gzip.open(pj, "rt") as fh:
        first = json.loads(fh.readline())
    assert list(first) == list(EVENT_COLUMNS)
    assert isinstance(first["userId"], str) and isinstance(first["ts"], int)
    js = pd.read_json(pj, lines=True, dtype={"userId": str})
    pa_ = pd.read_parquet(pp)
    assert len(js) == len(pa_)
    assert js["ts"].tolist() == pa_["ts"].tolist()
    assert js["page"].tolist() == pa_["page"].tolist()


@pytest.mark.parametrize("name", ["events.parquet", "events.json.gz"])
def test_loader_accepts_output_in_strict_mode(tmp_path, name):
    load = pytest.importorskip("churnlib.load")
    out = tmp_path / name
    write_event_log(out, 120, 20, seed=4)
    raw = pd.read_parquet(out) if name.endswith("parquet") else pd.read_json(
        out, lines=True, dtype={"userId": str})
    log = load.load_events(out, strict=True)
    anon = int((raw["userId"].fillna("") == "").sum())
    assert len(log.events) == len(raw) - anon
    assert sum(log.quality.dropped.values()) == anon
    assert not log.quality.repaired
    assert re.fullmatch(r"\d+", log.events["userId"].iloc[0])


# --- large logs: a folder of parquet files written chunk by chunk ------------------------------
def _folder_events(folder) -> pd.DataFrame:
    """The files of a partitioned log read one by one, in name order, concatenated."""
    files = sorted(folder.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_partitioned_log_holds_the_single_file_events_and_loads_the_same(tmp_path):
    from churnlib.load import load_events
    from churnlib.simulate import write_partitioned_log

    one, folder = tmp_path / "one.parquet", tmp_path / "log"
    s1 = write_event_log(one, 120, 15, seed=5, chunk_users=50)
    s2 = write_partitioned_log(folder, 120, 15, seed=5, chunk_users=50)
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet", "part-00001.parquet",
                                                        "part-00002.parquet"]
    pd.testing.assert_frame_equal(_folder_events(folder), pd.read_parquet(one))
    assert pq.read_schema(folder / "part-00001.parquet").equals(pq.read_schema(one))
    for key in ("events", "users", "sessions", "churned"):
        assert s2[key] == s1[key], key
    assert s2["files"] == 3 and s2["bytes"] == sum(p.stat().st_size for p in folder.iterdir())
    # each user's events sit in one file
    users = [set(pd.read_parquet(p, columns=["userId"])["userId"]) - {""} for p in sorted(folder.iterdir())]
    assert not (users[0] & users[1]) and not (users[1] & users[2])
    # DuckDB's loader reads the folder as the one log: same events, same account
    a, b = load_events(folder), load_events(one)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert (a.quality.rows_read, a.quality.rows_kept) == (b.quality.rows_read, b.quality.rows_kept)
    assert a.quality.dropped == b.quality.dropped and not a.quality.notes
    # the folder gets the permissions of a folder made by mkdir (not mkdtemp's 0700), its files those of a file
    (tmp_path / "made").mkdir()
    assert folder.stat().st_mode & 0o777 == (tmp_path / "made").stat().st_mode & 0o777
    assert (folder / "part-00000.parquet").stat().st_mode & 0o777 == one.stat().st_mode & 0o777


def test_partitioned_log_by_event_count_refuses_to_clobber_and_leaves_nothing_on_failure(tmp_path):
    from churnlib.simulate import write_partitioned_log

    folder = tmp_path / "log"
    s = write_partitioned_log(folder, n_events=20_000, days=15, seed=9, chunk_users=40)
    assert s["target_events"] == 20_000 and abs(s["events"] / 20_000 - 1) < 0.25
    # the same events as the single-file writer for the number of users it chose
    one = tmp_path / "one.parquet"
    write_event_log(one, s["users"], 15, seed=9)
    pd.testing.assert_frame_equal(_folder_events(folder), pd.read_parquet(one))
    with pytest.raises(FileExistsError, match="already exists"):
        write_partitioned_log(folder, 10, 5, seed=1)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(ValueError, match="chunk_users"):  # fails mid-way: the old log stays as it was
        write_partitioned_log(folder, 10, 5, seed=1, chunk_users=0, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == before
    s2 = write_partitioned_log(folder, 10, 5, seed=1, overwrite=True)
    assert s2["files"] == 1 and len(_folder_events(folder)) == s2["events"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a folder written by"):
        write_partitioned_log(tmp_path / "mine", 10, 5, seed=1, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "mine", "one.parquet"]  # no temporary left
    with pytest.raises(ValueError, match="exactly one"):
        write_partitioned_log(tmp_path / "x", 10, 5, n_events=100)
    with pytest.raises(ValueError, match="n_events"):
        write_partitioned_log(tmp_path / "x", n_events=float("nan"))


def test_partitioned_log_reads_in_spark(spark, tmp_path):
    from churnlib.simulate import write_partitioned_log

    folder = tmp_path / "log"
    assert write_partitioned_log(folder, 30, 7, seed=4, chunk_users=12)["files"] == 3
    df = spark.read.parquet(str(folder))
    assert df.columns == list(EVENT_COLUMNS)
    got = pd.DataFrame([tuple(r) for r in df.collect()], columns=df.columns)
    want = _folder_events(folder)

    def canonical(d: pd.DataFrame) -> pd.DataFrame:  # same value, same form: numbers as float, text as str
        d = d.copy()
        for c in d.columns:
            d[c] = d[c].astype("float64") if c in ("ts", "sessionId", "status", "itemInSession", "registration",
                                                   "length") else d[c].map(lambda v: None if v is None or v != v else str(v))
        return d.sort_values(list(d.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(canonical(got), canonical(want))
