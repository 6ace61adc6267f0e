"""Tests for churnlib.features: definitions on hand-made logs, the leakage gate, labels, real data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnlib import features as F
from churnlib.eda import churn_rate
from churnlib.labels import LabelCensoredError, observation_labels, to_epoch_ms
from churnlib.schema import KNOWN_PAGES, LABEL_PAGES

DAY = 86_400_000
HOUR = 3_600_000
AS_OF = to_epoch_ms("2020-01-29")  # a Wednesday, midnight UTC

COLUMNS = ["ts", "userId", "sessionId", "page", "level", "itemInSession", "location", "userAgent",
           "registration", "gender", "artist", "song", "length"]
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/36.0.1985.143 Safari/537.36")


def make_events(rows: list[dict]) -> pd.DataFrame:
    """Cleaned-schema events from dicts with at least ts, userId, sessionId, page."""
    defaults = {"level": "free", "itemInSession": 0, "location": "Austin-Round Rock, TX",
                "userAgent": CHROME_MAC, "registration": AS_OF - 40 * DAY, "gender": "F",
                "artist": None, "song": None, "length": np.nan}
    df = pd.DataFrame([{**defaults, **r} for r in rows])[COLUMNS]
    return df.astype({"ts": "int64", "userId": str, "sessionId": "int64", "itemInSession": "int64",
                      "length": "float64", "registration": "Int64"})


def song(ts, uid, sid, item, length, artist="A", title="s1", level="free"):
    return {"ts": ts, "userId": uid, "sessionId": sid, "page": "NextSong", "itemInSession": item,
            "length": length, "artist": artist, "song": title, "level": level}


def page(ts, uid, sid, item, name, level="free"):
    return {"ts": ts, "userId": uid, "sessionId": sid, "page": name, "itemInSession": item,
            "level": level}


@pytest.fixture(scope="module")
def hand_log() -> pd.DataFrame:
    s1, s2, s3 = AS_OF - 20 * DAY, AS_OF - 10 * DAY, AS_OF - 1 * DAY
    rows = [
        # session 1 (free): the 2nd song starts 50 s into the 1st (100 s long): one skip
        page(s1, "a", 1, 0, "Home"),
        song(s1 + 1_000, "a", 1, 1, 100.0, "A", "s1"),
        song(s1 + 51_000, "a", 1, 2, 100.0, "A", "s2"),
        page(s1 + 60_000, "a", 1, 3, "Thumbs Up"),
        song(s1 + 200_000, "a", 1, 4, 100.0, "B", "s1"),
        # session 2: upgrade inside the session
        page(s2, "a", 2, 0, "Submit Upgrade"),
        song(s2 + 1_000, "a", 2, 1, 300.0, "A", "s1", level="paid"),
        # session 3 (paid), one day before as_of
        song(s3, "a", 3, 0, 200.0, "A", "s1", level="paid"),
        page(s3 + 1_000, "a", 3, 1, "Help", level="paid"),
        page(s3 + 2_000, "a", 3, 2, "Error", level="paid"),
        # label pages before as_of and anything at as_of never count
        page(AS_OF - HOUR, "a", 3, 3, "Cancel", level="paid"),
        song(AS_OF, "a", 3, 4, 100.0, "C", "s9", level="paid"),
        # user b: window edges -- exactly 7 days before as_of is inside the 7-day window
        page(AS_OF - 7 * DAY - 1, "b", 10, 0, "Home"),
        song(AS_OF - 7 * DAY, "b", 10, 1, 250.0, "A", "s1"),
    ]
    return make_events(rows)


@pytest.fixture(scope="module")
def hand_row(hand_log) -> pd.DataFrame:
    return F.user_features(hand_log, AS_OF).set_index("userId")


# -- dictionary ----------------------------------------------------------------------------------

def test_dictionary_documents_exactly_the_output_columns(hand_log):
    out = F.user_features(hand_log, AS_OF)
    assert list(out.columns) == ["userId", "as_of", *F.feature_dictionary()["name"]]
    d = F.feature_dictionary()
    assert d["name"].is_unique
    assert (d["meaning"].str.len() > 10).all() and (d["unit"].str.len() > 0).all()
    for f in F.FEATURE_DICTIONARY:
        expected = {"int64": "int64", "float64": "float64", "str": "str"}[f.dtype]
        assert str(out[f.name].dtype) == expected, f.name


def test_named_signals_are_provided():
    names = set(F.feature_dictionary()["name"])
    for name in ["listening_time_trend_7d", "login_frequency_30d", "days_since_last_login",
                 "skip_rate_increase_7d", "freq_of_use_trend_14d", "customer_support_contact_30d",
                 "app_crash_count_30d"]:
        assert name in names
    login = F.feature_dictionary().set_index("name").loc["days_since_last_login", "meaning"]
    assert "session" in login  # the dictionary says what a login is


def test_sql_is_packaged_and_parameterised():
    sql = F.feature_sql()
    assert "$as_of" in sql and "FROM events" in sql


# -- definitions on a hand-made log --------------------------------------------------------------

def test_counts_exclude_label_pages_and_events_at_as_of(hand_row):
    a = hand_row.loc["a"]
    assert a["songs_total"] == 5
    assert a["events_total"] == 10  # 11 rows before as_of, minus the Cancel
    assert a["n_sessions"] == 3
    assert a["unique_songs"] == 3 and a["unique_artists"] == 2
    assert a["top_artist_share"] == pytest.approx(4 / 5)
    assert a["thumbs_up"] == 1 and a["thumbs_up_share"] == 1.0
    assert a["customer_support_contact_30d"] == 1 and a["app_crash_count_30d"] == 1
    assert a["submit_upgrade"] == 1
    assert a["help_per_song"] == pytest.approx(1 / 5)
    assert a["listening_hours_total"] == pytest.approx((100 * 3 + 300 + 200) / 3600)


def test_skips(hand_row):
    a = hand_row.loc["a"]
    assert a["skips_total"] == 1
    assert a["skip_rate"] == pytest.approx(1 / 5)
    # neither the last 7 days nor the 7 before hold a skip
    assert a["skip_rate_increase_7d"] == 0.0
    # b's only song is in the last 7 days: no rate for the 7 before, so no change either
    assert np.isnan(hand_row.loc["b", "skip_rate_increase_7d"])


def test_recency_tenure_and_windows(hand_row):
    a, b = hand_row.loc["a"], hand_row.loc["b"]
    assert a["tenure_days"] == pytest.approx(40)
    assert a["days_since_last_login"] == pytest.approx(1)
    assert a["days_since_last_event"] == pytest.approx((DAY - 2_000) / DAY)
    assert (a["sessions_7d"], a["sessions_14d"], a["sessions_30d"]) == (1, 2, 3)
    assert (a["active_days_7d"], a["active_days_30d"]) == (1, 3)
    assert a["login_frequency_30d"] == 3
    assert (b["events_7d"], b["events_14d"], b["songs_7d"]) == (1, 2, 1)
    assert b["active_days_7d"] == 1 and b["active_days_14d"] == 2


def test_sessions_and_subscription(hand_row):
    a = hand_row.loc["a"]
    # session 1 ends when its last song ends: 200 s + 100 s after it started
    s1_end = AS_OF - 20 * DAY + 300_000
    gap1 = (AS_OF - 10 * DAY - s1_end) / HOUR
    gap2 = (AS_OF - 1 * DAY - (AS_OF - 10 * DAY + 301_000)) / HOUR
    assert a["session_gap_hours_mean"] == pytest.approx((gap1 + gap2) / 2)
    # sessions last 300 s, 301 s and 200 s (the last song runs past the Error page)
    assert a["session_minutes_median"] == pytest.approx(300_000 / 60_000)
    assert a["session_minutes_mean"] == pytest.approx(801_000 / 3 / 60_000)
    assert a["level_paid"] == 1 and a["level_changes"] == 1
    # paid from session 2's start to session 3's, then session 3 up to as_of
    assert a["days_as_paid"] == pytest.approx(10)


def test_trends(hand_row):
    a = hand_row.loc["a"]
    last7, prev7 = 3, 2  # session 3 (song, help, error) vs session 2 (upgrade, song)
    assert a["events_trend_7d"] == pytest.approx((last7 - prev7) / (last7 + prev7))
    assert a["listening_time_trend_7d"] == pytest.approx((200 - 300) / (200 + 300))
    # logins: sessions 2 and 3 in the last 14 days, session 1 in the 14 before
    assert a["freq_of_use_trend_14d"] == pytest.approx((2 - 1) / (2 + 1))
    weekly = np.array([3, 2, 5])  # weeks back 0, 1, 2 (first event 20 days back)
    assert a["weekly_events_slope"] == pytest.approx(np.polyfit([0, -1, -2], weekly, 1)[0])
    assert a["weekly_events_cv"] == pytest.approx(weekly.std(ddof=1) / weekly.mean())


def test_context(hand_row):
    a = hand_row.loc["a"]
    assert (a["device_type"], a["os"], a["browser"], a["state"], a["gender"]) == (
        "desktop", "macOS", "Chrome", "TX", "F")


def test_input_order_does_not_matter(hand_log):
    shuffled = hand_log.sample(frac=1, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(F.user_features(shuffled, AS_OF), F.user_features(hand_log, AS_OF))


# -- the leakage gate (property-based) -----------------------------------------------------------

@pytest.fixture(scope="module")
def sim_events() -> pd.DataFrame:
    from churnlib.simulate import simulate_events

    ev = simulate_events(60, 30, seed=11)
    return ev.loc[ev["userId"] != ""].reset_index(drop=True)


SIM_AS_OF = to_epoch_ms("2018-10-16")


@pytest.fixture(scope="module")
def sim_baseline(sim_events) -> pd.DataFrame:
    return F.user_features(sim_events, SIM_AS_OF)


def _event_rows(draw_ts, users, sessions):
    return st.fixed_dictionaries({
        "ts": draw_ts,
        "userId": st.sampled_from(users),
        "sessionId": st.sampled_from(sessions),
        "page": st.sampled_from(sorted(KNOWN_PAGES)),
        "level": st.sampled_from(["free", "paid"]),
        "itemInSession": st.integers(0, 500),
        "location": st.sampled_from(["Boston, MA", "Nowhere", None]),
        "userAgent": st.sampled_from(["Mozilla/5.0 (iPhone)", CHROME_MAC, None]),
        "gender": st.sampled_from(["M", "F", None]),
        "artist": st.sampled_from(["A", "Z", None]),
        "song": st.sampled_from(["s1", "s2", None]),
        "length": st.one_of(st.none(), st.floats(0, 1000)),
        "registration": st.integers(0, 2 * SIM_AS_OF),
    })


def _append(events: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    extra = pd.DataFrame(rows).astype({"ts": "int64", "sessionId": "int64", "itemInSession": "int64",
                                       "length": "float64", "registration": "float64"})
    return pd.concat([events, extra], ignore_index=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_events_at_or_after_as_of_change_nothing(sim_events, sim_baseline, data):
    users = sorted(sim_events["userId"].unique())[:10] + ["new-user"]
    sessions = sorted(sim_events["sessionId"].unique())[:20] + [10**9]
    ts = st.integers(SIM_AS_OF, SIM_AS_OF + 40 * DAY)
    rows = data.draw(st.lists(_event_rows(ts, users, sessions), min_size=1, max_size=30))
    pd.testing.assert_frame_equal(F.user_features(_append(sim_events, rows), SIM_AS_OF), sim_baseline)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_label_pages_before_as_of_change_nothing(sim_events, sim_baseline, data):
    users = sorted(sim_events["userId"].unique())[:10] + ["new-user"]
    sessions = sorted(sim_events["sessionId"].unique())[:20]
    ts = st.integers(SIM_AS_OF - 30 * DAY, SIM_AS_OF - 1)
    rows = data.draw(st.lists(_event_rows(ts, users, sessions).map(
        lambda r: r | {"page": r["ts"] % 2 and "Cancel" or "Cancellation Confirmation"}),
        min_size=1, max_size=30))
    assert {r["page"] for r in rows} <= LABEL_PAGES
    pd.testing.assert_frame_equal(F.user_features(_append(sim_events, rows), SIM_AS_OF), sim_baseline)


def test_label_pages_before_as_of_leave_training_features_unchanged(sim_events):
    table = F.build_features(sim_events, SIM_AS_OF, horizon_days=7)
    users = table["userId"].iloc[:3].tolist()
    cancel = make_events([page(SIM_AS_OF - DAY, u, 10**9, 0, "Cancel") for u in users])
    table2 = F.build_features(pd.concat([sim_events, cancel], ignore_index=True), SIM_AS_OF,
                              horizon_days=7)
    pd.testing.assert_frame_equal(table2, table)


# -- labels and the training table ---------------------------------------------------------------

@pytest.mark.parametrize("inactivity_days", [None, 3, 0.5])
def test_labels_match_observation_labels(sim_events, inactivity_days):
    positives = 0
    for as_of in ["2018-10-08", "2018-10-15"]:
        table = F.build_features(sim_events, as_of, horizon_days=7, inactivity_days=inactivity_days)
        expected = observation_labels(sim_events, as_of, horizon_days=7,
                                      inactivity_days=inactivity_days)
        assert table["userId"].tolist() == expected["userId"].tolist()
        assert table["churned"].tolist() == expected["churned"].tolist()
        positives += table["churned"].sum()
    assert positives > 0  # the check above saw churners


def test_dates_stack_into_one_table(sim_events):
    dates = ["2018-10-15", "2018-10-08"]
    table = F.build_features(sim_events, dates, horizon_days=7)
    parts = [F.build_features(sim_events, d, horizon_days=7) for d in sorted(dates)]
    pd.testing.assert_frame_equal(table, pd.concat(parts, ignore_index=True))
    assert not table.duplicated(["userId", "as_of"]).any()
    assert list(table.columns[:3]) == ["userId", "as_of", "churned"]
    assert table.groupby("as_of")["userId"].apply(lambda s: s.is_monotonic_increasing).all()


def test_parquet_input_matches_dataframe(sim_events, tmp_path):
    path = tmp_path / "events.parquet"
    sim_events.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(F.build_features(str(path), "2018-10-15", horizon_days=7),
                                  F.build_features(sim_events, "2018-10-15", horizon_days=7))


def test_parquet_folder_and_glob_inputs(sim_events, tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    half = len(sim_events) // 2
    sim_events.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
    sim_events.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    expected = F.user_features(sim_events, "2018-10-15")
    pd.testing.assert_frame_equal(F.user_features(folder, "2018-10-15"), expected)
    pd.testing.assert_frame_equal(F.user_features(str(folder / "part-*.parquet"), "2018-10-15"), expected)


def test_censored_label_raises(sim_events):
    with pytest.raises(LabelCensoredError):
        F.build_features(sim_events, "2018-10-25", horizon_days=30)


def test_features_command_writes_parquet_atomically(sim_events, tmp_path):
    src = tmp_path / "events.parquet"
    sim_events.to_parquet(src, index=False)
    out = tmp_path / "out" / "features.parquet"
    table = F.features_command(src, ["2018-10-08", "2018-10-15"], 7, out)
    pd.testing.assert_frame_equal(pd.read_parquet(out), table, check_dtype=False)
    assert table["as_of"].nunique() == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.parquet", "features.parquet.quality.json"]  # no temp file left


# -- the real Sparkify sample --------------------------------------------------------------------

@pytest.mark.real_data
def test_real_sample_featurises_and_matches_hand_computed_values(event_sample):
    from churnlib.load import load_events

    as_of = "2018-11-20"
    events = load_events(event_sample).events
    table = F.build_features(events, as_of, horizon_days=7)
    assert len(table) > 50 and table["userId"].is_unique and (table["churned"] == 0).all()

    # Independent computation from the raw rows with plain pandas.
    raw = pd.read_json(event_sample, lines=True, dtype={"userId": str})
    t = to_epoch_ms(as_of)
    raw = raw[(raw["userId"] != "") & (raw["ts"] < t)]
    got = table.set_index("userId")
    for uid in ["49", "80", "15"]:
        u = raw[raw["userId"] == uid].sort_values(["ts", "itemInSession"])
        songs = u[u["page"] == "NextSong"]
        last7 = u[u["ts"] >= t - 7 * DAY]
        skips = 0
        for _, s in songs.groupby("sessionId"):
            nxt = s["ts"].shift(-1)
            skips += int((nxt < s["ts"] + s["length"] * 1000).sum())
        row = got.loc[uid]
        assert row["songs_total"] == len(songs)
        assert row["events_7d"] == len(last7)
        assert row["n_sessions"] == u["sessionId"].nunique()
        assert row["help"] == (u["page"] == "Help").sum()
        assert row["unique_artists"] == songs["artist"].nunique()
        assert row["listening_hours_total"] == pytest.approx(songs["length"].sum() / 3600)
        assert row["days_since_last_event"] == pytest.approx((t - u["ts"].max()) / DAY)
        assert row["tenure_days"] == pytest.approx((t - u["registration"].iloc[0]) / DAY)
        assert row["active_days_7d"] == ((t - 1 - last7["ts"]) // DAY).nunique()
        assert row["skips_total"] == skips
        assert row["level_paid"] == int(u["level"].iloc[-1] == "paid")
        assert row["state"] == u["location"].iloc[-1].split(", ")[1][:2]


# -- defaults for the notebook -------------------------------------------------------------------

def test_observation_dates_fit_the_label_window(sim_events):
    dates = F.observation_dates(sim_events, horizon_days=3, every_days=4)
    first, last = sim_events["ts"].min(), sim_events["ts"].max()
    ms = [to_epoch_ms(d) for d in dates]
    assert ms == sorted(ms) and len(ms) >= 2
    assert all(b - a == 4 * DAY for a, b in zip(ms, ms[1:]))
    assert ms[0] >= first + (last - first) / 2 and ms[-1] + 3 * DAY <= last
    assert ms[-1] + 4 * DAY + 3 * DAY > last  # no later date would have fitted
    F.build_features(sim_events, dates, horizon_days=3)  # every default date can be labelled
    # a short log falls back to the latest date that leaves the window; none at all is an error
    (late,) = F.observation_dates(sim_events, horizon_days=25)
    assert first < to_epoch_ms(late) <= last - 25 * DAY
    with pytest.raises(ValueError, match="too short"):
        F.observation_dates(sim_events, horizon_days=31)


def test_main_features_are_documented():
    assert set(F.MAIN_FEATURES) <= set(F.feature_columns())


def test_key_numbers_of_a_feature_table_and_a_snapshot():
    table = pd.DataFrame({
        "userId": ["a", "b", "a", "b"],
        "as_of": pd.to_datetime(["2018-10-01", "2018-10-01", "2018-10-08", "2018-10-08"], utc=True),
        "churned": [0, 1, 0, 0], "tenure_days": [1.0, 2.0, 8.0, 9.0]})
    leaks = pd.DataFrame({"feature": ["tenure_days"], "suspect": [True]})
    n = F.key_numbers(table, leakage=leaks, horizon_days=14)
    assert n["Rows (user x date)"] == "4" and n["Users"] == "2"
    assert n["Observation dates"] == "2 (2018-10-01, 2018-10-08)"
    assert n["Label window"] == "14 days" and n["Features"] == "1"
    assert n["Leakage suspects"] == "1 (tenure_days)"
    assert n["Positive rate"] == str(churn_rate(table["churned"]))
    snap = pd.DataFrame({"id": [1, 2, 3], "y": [0, 1, 1], "x": [0.1, 0.2, 0.3]})
    s = F.key_numbers(snap, "y", leakage=None)
    assert s["Features"] == "1 snapshot columns" and s["Leakage suspects"] == "not screened (one class)"


def test_features_are_bit_identical_across_runs(tmp_path):
    """DuckDB adds floats in a thread-dependent order; the SQL sums integers so reruns match exactly."""
    from churnlib.simulate import write_event_log

    path = tmp_path / "events.parquet"
    write_event_log(path, n_users=400, days=60, seed=11)
    dates = F.observation_dates(path, 14)
    first = F.build_features(path, dates, horizon_days=14)
    for _ in range(3):
        again = F.build_features(path, dates, horizon_days=14)
        differ = [c for c in first.columns if not first[c].equals(again[c])]
        assert not differ, f"features differ between two builds of the same log: {differ}"
