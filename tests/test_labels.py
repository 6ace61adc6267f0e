"""Tests for churnlib.labels: label definitions, window edges, eligibility and the leakage gate."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnlib.labels import (
    LabelCensoredError,
    cancellation_labels,
    feature_events,
    observation_labels,
    to_epoch_ms,
)
from churnlib.schema import CHURN_PAGE, KNOWN_PAGES, LABEL_PAGES

DAY = 86_400_000
T0 = to_epoch_ms("2018-10-01")  # start of the hand-made logs


def ev(rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    """Events from (userId, day offset from T0, page) tuples."""
    df = pd.DataFrame(rows, columns=["userId", "day", "page"])
    return pd.DataFrame(
        {
            "ts": (T0 + (df["day"] * DAY).round()).astype("int64"),
            "userId": df["userId"].astype(str),
            "sessionId": np.arange(len(df), dtype="int64"),
            "page": df["page"].astype(str),
            "itemInSession": np.zeros(len(df), dtype="int64"),
        }
    )


# -- to_epoch_ms ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "when",
    [
        "2018-11-01",
        "2018-11-01T00:00:00",
        "2018-11-01T00:00:00Z",
        "2018-11-01T01:00:00+01:00",
        pd.Timestamp("2018-11-01", tz="UTC"),
        pd.Timestamp("2018-10-31 20:00", tz="America/New_York"),
        dt.datetime(2018, 11, 1),
        dt.datetime(2018, 11, 1, tzinfo=dt.timezone.utc),
        dt.date(2018, 11, 1),
        np.datetime64("2018-11-01T00:00:00"),
        1541030400000,
        np.int64(1541030400000),
    ],
)
def test_to_epoch_ms_accepts_every_form(when):
    # 2018-11-01T00:00:00Z is 1541030400 s after the epoch.
    assert to_epoch_ms(when) == 1_541_030_400_000


@pytest.mark.parametrize("bad, exc", [(True, TypeError), (1.5e12, TypeError), ("not a date", ValueError),
                                      (None, TypeError)])
def test_to_epoch_ms_rejects(bad, exc):
    with pytest.raises(exc):
        to_epoch_ms(bad)


# -- cancellation_labels -------------------------------------------------------------------------

def test_cancellation_labels_one_row_per_user():
    events = ev([
        ("b", 1, "NextSong"), ("b", 2, "Cancel"), ("b", 2.001, CHURN_PAGE),
        ("a", 1, "Home"), ("a", 3, "NextSong"),
        ("", 1, "Home"),  # logged-out row: no user
        ("c", 5, CHURN_PAGE), ("c", 6, CHURN_PAGE),  # two visits: the first one counts
    ])
    out = cancellation_labels(events)
    assert list(out.columns) == ["userId", "churned", "churn_ts"]
    assert out["userId"].tolist() == ["a", "b", "c"]
    assert out["churned"].tolist() == [0, 1, 1]
    assert str(out["churn_ts"].dtype) == "Int64"
    assert out["churn_ts"].isna().tolist() == [True, False, False]
    assert out.loc[out.userId == "b", "churn_ts"].item() == T0 + round(2.001 * DAY)
    assert out.loc[out.userId == "c", "churn_ts"].item() == T0 + 5 * DAY


def test_cancellation_labels_missing_column_is_clear():
    with pytest.raises(KeyError, match="page"):
        cancellation_labels(pd.DataFrame({"userId": ["a"], "ts": [1]}))


# -- feature_events ------------------------------------------------------------------------------

def test_feature_events_cuts_at_as_of_and_removes_label_pages():
    events = ev([
        ("a", 1, "NextSong"), ("a", 2, "Cancel"), ("a", 2.5, CHURN_PAGE),
        ("b", 9.999, "Home"), ("b", 10, "NextSong"), ("b", 11, "Home"),
    ])
    as_of = T0 + 10 * DAY
    out = feature_events(events, as_of)
    assert not out["page"].isin(LABEL_PAGES).any()
    assert (out["ts"] < as_of).all()
    # exactly the event at as_of is excluded, the one just before is kept
    assert sorted(out["ts"].tolist()) == [T0 + DAY, T0 + round(9.999 * DAY)]
    assert list(out.columns) == list(events.columns)


def test_feature_events_accepts_date_strings():
    events = ev([("a", 0, "Home"), ("a", 31, "Home")])  # 2018-10-01 and 2018-11-01
    assert len(feature_events(events, "2018-11-01")) == 1
    assert len(feature_events(events, "2018-11-01T00:00:00.001Z")) == 2


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3", ""]),
        st.integers(min_value=-30 * DAY, max_value=30 * DAY),
        st.sampled_from(sorted(KNOWN_PAGES)),
    ),
    max_size=25,
)


def _frame(rows: list[tuple[str, int, str]], start_session: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.Series([T0 + r[1] for r in rows], dtype="int64"),
            "userId": pd.Series([r[0] for r in rows], dtype=str),
            "sessionId": pd.Series(range(start_session, start_session + len(rows)), dtype="int64"),
            "page": pd.Series([r[2] for r in rows], dtype=str),
            "itemInSession": pd.Series([0] * len(rows), dtype="int64"),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=events_strategy,
    extra=st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "u9", ""]), st.integers(min_value=0, max_value=40 * DAY),
                  st.sampled_from(sorted(KNOWN_PAGES))),
        min_size=1, max_size=10,
    ),
    shuffle_seed=st.integers(min_value=0, max_value=2**16),
)
def test_appending_future_events_never_changes_feature_events(base, extra, shuffle_seed):
    as_of = T0  # base events straddle as_of; extra events are all at or after it
    events = _frame(base)
    later = _frame([(u, off, p) for u, off, p in extra], start_session=1000)
    assert (later["ts"] >= as_of).all()
    combined = pd.concat([events, later], ignore_index=True)
    # also interleave: position in the frame must not matter either
    shuffled = combined.sample(frac=1, random_state=shuffle_seed)
    expected = feature_events(events, as_of)
    pd.testing.assert_frame_equal(feature_events(combined, as_of), expected)
    pd.testing.assert_frame_equal(feature_events(shuffled, as_of), expected)
    assert not expected["page"].isin(LABEL_PAGES).any()
    assert (expected["ts"] < as_of).all()


# -- observation_labels --------------------------------------------------------------------------

AS_OF = T0 + 30 * DAY


def _labels(events, **kw):
    out = observation_labels(events, AS_OF, **kw)
    return dict(zip(out["userId"], zip(out["churned"], out["churn_reason"])))


def window_log() -> pd.DataFrame:
    return ev([
        ("early", 5, "NextSong"), ("early", 20, "Cancel"), ("early", 20, CHURN_PAGE),  # cancelled before t
        ("edge_in", 29, "Home"), ("edge_in", 30, CHURN_PAGE),                # cancels exactly at t
        ("edge_out", 29, "Home"), ("edge_out", 60, CHURN_PAGE),              # exactly at t + h
        ("last_ms", 29, "Home"), ("last_ms", 60 - 1 / DAY, CHURN_PAGE),      # 1 ms before t + h
        ("stay", 10, "Home"), ("stay", 40, "NextSong"),
        ("newcomer", 35, "Home"), ("newcomer", 36, CHURN_PAGE),              # no event before t
        ("", 10, "Home"),                                                    # guest row
        ("filler", 0, "Home"), ("filler", 100, "Home"),                      # log reaches day 100
    ])


def test_observation_labels_window_edges_and_eligibility():
    out = observation_labels(window_log(), AS_OF, horizon_days=30)
    assert list(out.columns) == ["userId", "as_of", "churned", "churn_reason"]
    assert out["userId"].tolist() == sorted(out["userId"].tolist())
    assert (out["as_of"] == pd.Timestamp(AS_OF, unit="ms", tz="UTC")).all()
    assert str(out["as_of"].dt.tz) == "UTC"
    labels = dict(zip(out["userId"], zip(out["churned"], out["churn_reason"])))
    assert labels == {
        "edge_in": (1, "cancelled"),
        "edge_out": (0, None),
        "last_ms": (1, "cancelled"),
        "stay": (0, None),
        "filler": (0, None),
    }
    # excluded: cancelled before t, no event before t, guest
    assert {"early", "newcomer", ""}.isdisjoint(out["userId"])


def test_observation_labels_horizon_changes_window():
    labels = _labels(window_log(), horizon_days=31)
    assert labels["edge_out"] == (1, "cancelled")


def test_observation_labels_inactivity():
    d = 7
    events = ev([
        ("daily", 29, "Home"), *[("daily", 30 + k, "NextSong") for k in range(0, 60, 3)],
        ("gap_in_window", 29, "Home"), ("gap_in_window", 31, "Home"),
        *[("gap_in_window", 38 + k, "Home") for k in range(0, 60, 3)],
        ("gap_short", 29, "Home"), ("gap_short", 31, "Home"), ("gap_short", 37.9, "Home"),
        *[("gap_short", 38 + k, "Home") for k in range(0, 60, 3)],
        ("silent_from_t", 25, "Home"), ("silent_from_t", 37, "Home"),
        *[("silent_from_t", 37 + k, "Home") for k in range(0, 60, 3)],
        ("already_gone", 1, "Home"), ("already_gone", 23, "Home"),   # last event <= t - d
        ("quits", 29, "Home"), ("quits", 59, "Home"),                 # last event inside window
        ("gap_after", 29, "Home"), *[("gap_after", 30 + k, "Home") for k in range(0, 30, 3)],
        ("gap_after", 61, "Home"), ("gap_after", 80, "Home"),          # gap starts at day 61: outside
        ("canc", 29, "Home"), ("canc", 31, CHURN_PAGE),
        ("filler", 0, "Home"), ("filler", 100, "Home"),
    ])
    # gap_after's events are every 3 days from day 30 to 57, then 61: its last in-window anchor
    # is day 57, next event day 61 (4 d < 7 d), so no silence begins in [30, 60).
    labels = _labels(events, horizon_days=30, inactivity_days=d)
    assert labels["daily"] == (0, None)
    assert labels["gap_in_window"] == (1, "inactive")      # 31 -> 38 is exactly 7 days
    assert labels["gap_short"] == (0, None)                 # 6.9 days
    assert labels["silent_from_t"] == (1, "inactive")       # silent from t (30) to day 37
    assert labels["quits"] == (1, "inactive")               # nothing after day 59
    assert labels["gap_after"] == (0, None)
    assert labels["canc"] == (1, "cancelled")               # cancellation takes precedence
    assert "already_gone" not in labels
    # without inactivity, only cancellation counts and already_gone is eligible again
    plain = _labels(events, horizon_days=30)
    assert plain["quits"] == (0, None) and plain["already_gone"] == (0, None)
    assert sum(c for c, _ in plain.values()) == 1


def test_observation_labels_right_censoring_raises():
    events = ev([("a", 0, "Home"), ("a", 50, "Home")])
    with pytest.raises(LabelCensoredError, match="2018-11-30"):
        observation_labels(events, AS_OF, horizon_days=30)  # needs the log to reach day 60
    with pytest.raises(LabelCensoredError):
        observation_labels(ev([("a", 29, "Home"), ("a", 65, "Home")]), AS_OF, horizon_days=30,
                           inactivity_days=7)  # needs day 67
    # the log reaches day 67 exactly: observable
    ok = observation_labels(ev([("a", 29, "Home"), ("a", 67, "Home")]), AS_OF, horizon_days=30,
                            inactivity_days=7)
    assert ok["churned"].tolist() == [1]  # silent from day 30 to day 67
    # an explicit log_end overrides the last event
    out = observation_labels(events, AS_OF, horizon_days=30, log_end=T0 + 60 * DAY)
    assert out["churned"].tolist() == [0]


def test_observation_labels_rejects_bad_parameters():
    with pytest.raises(ValueError, match="horizon_days"):
        observation_labels(window_log(), AS_OF, horizon_days=0)
    with pytest.raises(ValueError, match="inactivity_days"):
        observation_labels(window_log(), AS_OF, inactivity_days=-1)


def test_labels_never_use_events_outside_their_window():
    # Events after t + h (+ d) must not change labels (they only extend the log).
    base = window_log()
    more = ev([("stay", 150, CHURN_PAGE), ("edge_out", 200, "Home"), ("zzz", 150, "Home")])
    a = observation_labels(base, AS_OF, horizon_days=30, inactivity_days=5)
    b = observation_labels(pd.concat([base, more], ignore_index=True), AS_OF, horizon_days=30,
                           inactivity_days=5)
    pd.testing.assert_frame_equal(a, b)
