"""Observation-date features: one row per (user, observation date), joined to the churn label.

Every feature of a row is computed from that user's events strictly before the observation date
(``as_of``), with the label pages (:data:`~churnlib.schema.LABEL_PAGES`) removed -- the same gate as
:func:`churnlib.labels.feature_events`. The label comes from
:func:`churnlib.labels.observation_labels` (churn within ``[as_of, as_of + horizon)``).

The definitions live once, as portable SQL with readable CTEs, in ``churnlib/sql/features.sql``
(input relation ``events``, bound parameter ``$as_of`` in epoch ms). DuckDB runs it embedded and out
of core on a pandas DataFrame or directly on parquet files; the result comes back as pandas.
:data:`FEATURE_DICTIONARY` documents every output column (name, group, meaning, unit).

Several observation dates stack into one training table; keep ``userId`` for group-aware splits
(the same user appears once per date).
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence, Union

import duckdb
import numpy as np
import pandas as pd

from churnlib.eda import churn_rate
from churnlib.files import atomic_write, write_json
from churnlib.labels import check_horizon, check_observation_dates, observation_labels, to_epoch_ms
from churnlib.load import SMALL_INPUT_ROWS, load_events, memory_cursor
from churnlib.outputs import check_output, quality_path
from churnlib.plotting import CLASS_PALETTE
from churnlib.schema import CHURN_PAGE, MS_PER_DAY

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.pyplot as plt

__all__ = [
    "FEATURE_DICTIONARY",
    "Feature",
    "KEY_COLUMNS",
    "build_features",
    "feature_columns",
    "feature_dictionary",
    "feature_sql",
    "features_command",
    "key_numbers",
    "leakage_report",
    "MAIN_FEATURES",
    "observation_dates",
    "observation_dates_for_span",
    "plot_leakage",
    "user_features",
]


#: Columns of a feature table that are keys or the label, not features.
KEY_COLUMNS: tuple[str, ...] = ("userId", "as_of", "churned")


@dataclass(frozen=True)
class Feature:
    """One documented feature column.

    Attributes
    ----------
    name : str
        Column name in the feature table.
    group : str
        Family (tenure, recency, frequency, sessions, listening, pages, support, ratios, diversity,
        subscription, trends, context).
    meaning : str
        What the value measures, stated for stakeholders.
    unit : str
        Unit of the value (``"days"``, ``"count"``, ``"share"``, ``"category"`` ...).
    dtype : str
        pandas dtype of the column: ``"int64"``, ``"float64"`` or ``"str"``.
    """

    name: str
    group: str
    meaning: str
    unit: str
    dtype: str


def _f(name: str, group: str, meaning: str, unit: str, dtype: str = "float64") -> Feature:
    return Feature(name, group, meaning, unit, dtype)


_PAGES = (  # (column stem, Sparkify page)
    ("thumbs_up", "Thumbs Up"),
    ("thumbs_down", "Thumbs Down"),
    ("add_friend", "Add Friend"),
    ("add_to_playlist", "Add to Playlist"),
    ("roll_advert", "Roll Advert"),
    ("error", "Error"),
    ("help", "Help"),
    ("settings", "Settings"),
    ("save_settings", "Save Settings"),
    ("upgrade", "Upgrade"),
    ("submit_upgrade", "Submit Upgrade"),
    ("downgrade", "Downgrade"),
    ("submit_downgrade", "Submit Downgrade"),
)

_W = "the last {w} days before the observation date"


def _dictionary() -> list[Feature]:
    feats = [
        _f("tenure_days", "tenure", "Days from registration to the observation date", "days"),
        _f("history_days", "tenure", "Days from the user's first event in the log to the observation date",
           "days"),
        _f("days_since_last_event", "recency", "Days since the user's last event", "days"),
        _f("days_since_last_song", "recency", "Days since the user's last song (NaN: never played one)",
           "days"),
        _f("days_since_last_login", "recency",
           "Days since the user's last login; a login is the start of a session (Sparkify logs a "
           "Login page only for logged-out to logged-in transitions, so session starts are used)",
           "days"),
    ]
    for kind, what in (("events", "Events (all pages)"), ("songs", "Songs played")):
        feats += [_f(f"{kind}_{w}d", "frequency", f"{what} in {_W.format(w=w)}", "count", "int64")
                  for w in (7, 14, 30)]
    feats += [_f(f"sessions_{w}d", "frequency", f"Sessions with at least one event in {_W.format(w=w)}",
                 "count", "int64") for w in (7, 14, 30)]
    feats += [_f(f"active_days_{w}d", "frequency",
                 f"Active days (24-hour periods counted back from the observation date with at least "
                 f"one event) in {_W.format(w=w)}", "days", "int64") for w in (7, 14, 30)]
    feats += [
        _f("login_frequency_30d", "frequency",
           "Logins (session starts) in the last 30 days before the observation date", "count", "int64"),
        _f("n_sessions", "sessions", "Sessions before the observation date", "count", "int64"),
        _f("session_minutes_mean", "sessions",
           "Mean session length: first event to the end of the last event (a song ends after its "
           "length), cut at the observation date", "minutes"),
        _f("session_minutes_median", "sessions", "Median session length (as above)", "minutes"),
        _f("songs_per_session", "sessions", "Mean songs per session", "songs/session"),
        _f("session_gap_hours_mean", "sessions",
           "Mean gap from the end of one session to the start of the next (NaN: one session)", "hours"),
        _f("session_gap_hours_median", "sessions", "Median gap between consecutive sessions", "hours"),
        _f("events_total", "listening", "Events before the observation date (all pages)", "count",
           "int64"),
        _f("songs_total", "listening", "Songs played before the observation date", "count", "int64"),
        _f("listening_hours_total", "listening", "Listening time: sum of song lengths", "hours"),
        _f("listening_hours_7d", "listening", f"Listening time in {_W.format(w=7)}", "hours"),
        _f("listening_hours_30d", "listening", f"Listening time in {_W.format(w=30)}", "hours"),
    ]
    for stem, page in _PAGES:
        feats += [
            _f(stem, "pages", f"Visits to the '{page}' page", "count", "int64"),
            _f(f"{stem}_per_song", "ratios" if stem == "roll_advert" else "pages",
               ("Adverts per song: " if stem == "roll_advert" else "")
               + f"'{page}' visits per song played (NaN: no songs)", "per song"),
            _f(f"{stem}_per_session_hour", "pages",
               f"'{page}' visits per hour of session time (NaN: no session time)", "per hour"),
        ]
    feats += [
        _f("customer_support_contact_30d", "support",
           "Customer-support contacts: 'Help' page visits in the last 30 days", "count", "int64"),
        _f("app_crash_count_30d", "support",
           "App crashes: 'Error' page events in the last 30 days", "count", "int64"),
        _f("thumbs_up_share", "ratios", "Thumbs up / (thumbs up + thumbs down) (NaN: no thumbs)",
           "share"),
        _f("skips_total", "ratios",
           "Skipped songs: a song followed by the next song of the same session before its length "
           "elapsed", "count", "int64"),
        _f("skip_rate", "ratios", "Skipped songs / songs played (NaN: no songs)", "share"),
        _f("skip_rate_7d", "ratios", f"Skip rate in {_W.format(w=7)} (NaN: no songs)", "share"),
        _f("unique_songs", "diversity", "Distinct (artist, song) pairs played", "count", "int64"),
        _f("unique_artists", "diversity", "Distinct artists played", "count", "int64"),
        _f("unique_songs_per_session", "diversity", "Distinct songs / sessions", "songs/session"),
        _f("unique_artists_per_session", "diversity", "Distinct artists / sessions",
           "artists/session"),
        _f("top_artist_share", "diversity",
           "Share of plays going to the user's most played artist (NaN: no songs)", "share"),
        _f("level_paid", "subscription", "Current level is paid (level of the latest event)", "0/1",
           "int64"),
        _f("days_as_paid", "subscription",
           "Time on the paid level: each session's closing level counts from its start to the next "
           "session's start (the last one up to the observation date)", "days"),
        _f("level_changes", "subscription",
           "Level changes (free to paid or back), within and between sessions", "count", "int64"),
        _f("events_trend_7d", "trends",
           "Events, last 7 days vs the 7 before: (a - b) / (a + b), -1 to 1, 0 when both are empty",
           "relative change"),
        _f("listening_time_trend_7d", "trends",
           "Listening time, last 7 days vs the 7 before: (a - b) / (a + b), 0 when both are empty",
           "relative change"),
        _f("freq_of_use_trend_14d", "trends",
           "Logins (session starts), last 14 days vs the 14 before: (a - b) / (a + b), 0 when both "
           "are empty", "relative change"),
        _f("events_trend_14d", "trends",
           "Events, last 14 days vs the 14 before: (a - b) / (a + b), 0 when both are empty",
           "relative change"),
        _f("skip_rate_increase_7d", "trends",
           "Skip rate of the last 7 days minus that of the 7 before (NaN: no songs in either)",
           "share points"),
        _f("weekly_events_slope", "trends",
           "Slope of weekly event counts over the last 4 weeks (from the user's first week; NaN: "
           "fewer than 2 weeks)", "events/week per week"),
        _f("weekly_events_cv", "trends",
           "Spread of weekly event counts over the last 4 weeks: std / mean (NaN: fewer than 2 weeks)",
           "ratio"),
        _f("night_share", "trends", "Share of events 00-06 h UTC", "share"),
        _f("morning_share", "trends", "Share of events 06-12 h UTC", "share"),
        _f("afternoon_share", "trends", "Share of events 12-18 h UTC", "share"),
        _f("evening_share", "trends", "Share of events 18-24 h UTC", "share"),
        _f("weekend_share", "trends", "Share of events on Saturday or Sunday (UTC)", "share"),
        _f("device_type", "context", "Device from the latest userAgent: desktop, mobile, tablet",
           "category", "str"),
        _f("os", "context", "Operating system from the latest userAgent", "category", "str"),
        _f("browser", "context", "Browser from the latest userAgent", "category", "str"),
        _f("state", "context", "US state from the latest location (first state of a metro area)",
           "category", "str"),
        _f("gender", "context", "Gender as registered", "category", "str"),
    ]
    return feats


#: Every feature column of :func:`user_features` / :func:`build_features`, in output order.
FEATURE_DICTIONARY: tuple[Feature, ...] = tuple(_dictionary())


def feature_dictionary() -> pd.DataFrame:
    """The feature dictionary as a table.

    Returns
    -------
    pandas.DataFrame
        One row per feature, in output order: ``name``, ``group``, ``meaning``, ``unit``, ``dtype``.
    """
    return pd.DataFrame([asdict(f) for f in FEATURE_DICTIONARY])


def feature_columns(table: pd.DataFrame | None = None) -> list[str]:
    """Names of the feature columns (of ``table`` if given, in the dictionary's order)."""
    names = [f.name for f in FEATURE_DICTIONARY]
    return names if table is None else [n for n in names if n in table.columns]


def feature_sql() -> str:
    """The portable SQL of the feature definitions (relation ``events``, parameter ``$as_of``)."""
    return _feature_sql_text()


@functools.lru_cache(maxsize=1)
def _feature_sql_text() -> str:  # read once per process: a per-request cost for the service
    return resources.files("churnlib").joinpath("sql/features.sql").read_text(encoding="utf-8")


#: Features the report shows churned vs retained: the named signals plus recency and dislikes.
MAIN_FEATURES: tuple[str, ...] = (
    "days_since_last_login", "login_frequency_30d", "freq_of_use_trend_14d",
    "listening_time_trend_7d", "skip_rate_increase_7d", "thumbs_down_per_song",
    "roll_advert_per_song", "customer_support_contact_30d", "app_crash_count_30d",
)


# --- engine -------------------------------------------------------------------------------------

#: What the builders accept: a cleaned DataFrame, or a parquet file, folder or glob.
Events = Union[pd.DataFrame, str, os.PathLike]
DateLike = Union[str, int, pd.Timestamp, "dt.date", np.datetime64]


def _settings() -> tuple[str, ...]:
    # Spill to the system temp folder (not the caller's cwd).
    return (f"SET temp_directory = '{Path(tempfile.gettempdir()) / 'churnlib_duckdb'}'",
            "SET preserve_insertion_order = false")


def _connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for stmt in _settings():
        con.execute(stmt)
    if memory_limit:  # the limit keeps RSS bounded
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def _connect_for(events: Events, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    """A connection for ``events``: for a small DataFrame (one user, a service request) without a
    memory limit, a cursor of a shared in-memory database tuned for small inputs
    (:func:`churnlib.load.memory_cursor`, same settings) instead of opening a new one (about 20 ms
    of one user's ~50); otherwise a new database, as for every batch."""
    if isinstance(events, pd.DataFrame) and not memory_limit and len(events) <= SMALL_INPUT_ROWS:
        return memory_cursor(_settings(), rows=len(events))
    return _connect(memory_limit)


def _is_parquet(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in (".parquet", ".pq") or p.is_dir() or any(ch in path for ch in "*?[")


def _attach_events(con: duckdb.DuckDBPyConnection, events: Events) -> None:
    """Expose the input as relation ``events``: a DataFrame, or parquet read directly by DuckDB."""
    if isinstance(events, pd.DataFrame):
        con.register("events", events)
        return
    path = os.fspath(events)
    if _is_parquet(path):
        if Path(path).is_dir():
            path = str(Path(path) / "**" / "*.parquet")
        literal = path.replace("'", "''")
        con.execute(f"CREATE TEMP VIEW events AS SELECT * FROM read_parquet('{literal}')")
        return
    con.register("events", load_events(path).events)


def _finish_types(df: pd.DataFrame) -> pd.DataFrame:
    typed = {}
    for f in FEATURE_DICTIONARY:
        col = df[f.name]
        if f.dtype in ("int64", "float64") and col.dtype == f.dtype:
            continue  # already right (an int64 column holds no missing value): nothing to do
        numpy_number = isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf"  # not Int64/object
        v = col.to_numpy() if f.dtype == "int64" and numpy_number else None
        if v is not None and v.dtype.kind == "f":
            v = np.where(np.isnan(v), 0, v)
        if v is not None and (v.dtype.kind != "f" or np.isfinite(v).all()):
            typed[f.name] = v.astype(np.int64)  # = fillna(0).astype("int64"), without pandas' overhead
        elif f.dtype == "int64":
            typed[f.name] = col.fillna(0).astype("int64")
        elif f.dtype == "float64":
            typed[f.name] = col.astype("float64")
        else:
            typed[f.name] = col.fillna("unknown").astype(str)
    # One new frame rather than ~100 column assignments (10 ms of pandas overhead per call, which
    # is most of one user's features apart from the SQL); same columns, order, dtypes and values.
    return pd.DataFrame({c: typed.get(c, df[c]) for c in df.columns}, index=df.index)


def _features_one(con: duckdb.DuckDBPyConnection, sql: str, as_of_ms: int) -> pd.DataFrame:
    df = con.execute(sql, {"as_of": as_of_ms}).df()
    df.insert(1, "as_of", pd.Series(pd.Timestamp(as_of_ms, unit="ms", tz="UTC"), index=df.index,
                                    dtype="datetime64[ms, UTC]"))
    df["userId"] = df["userId"].astype(str)
    return _finish_types(df)


def _as_of_list(as_of: DateLike | Iterable[DateLike]) -> list[int]:
    items = [as_of] if isinstance(as_of, (str, int, np.integer, pd.Timestamp)) or not isinstance(
        as_of, Iterable) else list(as_of)
    if not items:
        raise ValueError("at least one observation date (as_of) is needed")
    return sorted({to_epoch_ms(a) for a in items})


def user_features(events: Events, as_of: DateLike | Iterable[DateLike], *,
                  memory_limit: str | None = None) -> pd.DataFrame:
    """Features of every user with events before each observation date (no label).

    Parameters
    ----------
    events : pandas.DataFrame or path-like
        Cleaned events (see :func:`churnlib.load.load_events`), or a parquet file, folder or glob
        in the Sparkify schema, read directly by DuckDB (rows with an empty ``userId`` are ignored).
        Other paths are read with :func:`churnlib.load.load_events`.
    as_of : date-like or sequence of date-likes
        Observation date(s); see :func:`churnlib.labels.to_epoch_ms`.
    memory_limit : str, optional
        DuckDB memory limit, e.g. ``"4GB"`` (DuckDB spills to disk beyond it).

    Returns
    -------
    pandas.DataFrame
        ``userId`` (str), ``as_of`` (datetime64[ms, UTC]) and the columns of
        :data:`FEATURE_DICTIONARY`; sorted by ``as_of`` then ``userId``.
    """
    dates = _as_of_list(as_of)
    sql = feature_sql()
    con = _connect_for(events, memory_limit)
    try:
        _attach_events(con, events)
        parts = [_features_one(con, sql, t) for t in dates]
    finally:
        con.close()
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["as_of", "userId"], kind="mergesort").reset_index(drop=True)


# Exactly the rows observation_labels needs, so that a 26M-row log never goes to pandas. Following
# its definition: eligibility needs each user's latest event before as_of and any churn-page visit
# before as_of; cancellation needs the churn-page visits; inactivity needs the gaps of at least d
# between consecutive events from as_of up to the first event at or after as_of + h. Keeping the
# first and last event of each d-wide bucket keeps every such gap and creates none.
_LABEL_SQL = f"""
WITH u AS (
    SELECT CAST(userId AS STRING) AS userId, CAST(ts AS BIGINT) AS ts, page
    FROM events
    WHERE userId IS NOT NULL AND CAST(userId AS STRING) <> ''
)
SELECT userId, max(ts) AS ts, 'before' AS page FROM u WHERE ts < $as_of GROUP BY userId
UNION ALL
SELECT userId, ts, page FROM u WHERE page = '{CHURN_PAGE}'
UNION ALL
SELECT userId, min(ts) AS ts, 'in' AS page FROM u
WHERE $inactive AND ts >= $as_of AND ts < $end GROUP BY userId, floor((ts - $as_of) / $d)
UNION ALL
SELECT userId, max(ts) AS ts, 'in' AS page FROM u
WHERE $inactive AND ts >= $as_of AND ts < $end GROUP BY userId, floor((ts - $as_of) / $d)
UNION ALL
SELECT userId, min(ts) AS ts, 'after' AS page FROM u WHERE $inactive AND ts >= $end GROUP BY userId
"""


def _labels_one(con: duckdb.DuckDBPyConnection, as_of_ms: int, horizon_days: float, inactivity_days: float | None,
                log_end: int | None) -> pd.DataFrame:
    h = int(round(horizon_days * MS_PER_DAY))
    d = int(round(inactivity_days * MS_PER_DAY)) if inactivity_days else MS_PER_DAY
    slim = con.execute(_LABEL_SQL, {"as_of": as_of_ms, "end": as_of_ms + h, "d": d,
                                    "inactive": inactivity_days is not None}).df()
    slim = slim.sort_values(["userId", "ts", "page"], kind="mergesort").reset_index(drop=True)
    return observation_labels(slim, as_of_ms, horizon_days=horizon_days,
                              inactivity_days=inactivity_days, log_end=log_end)


def observation_dates(events: Events, horizon_days: float = 30, every_days: int = 7,
                      start_fraction: float = 0.5) -> list[str]:
    """Default observation dates: every ``every_days`` days over the later part of the log.

    Dates are UTC midnights from the first midnight after ``start_fraction`` of the log's span
    (so that the earlier part provides feature history) to the last one whose label window
    ``[as_of, as_of + horizon_days)`` still fits in the log. When the log is too short for that,
    the latest midnight whose window fits is used alone.

    Parameters
    ----------
    events : pandas.DataFrame or path-like
        As for :func:`user_features`.
    horizon_days : float, default 30
        Label window in days.
    every_days : int, default 7
        Spacing of the dates in days.
    start_fraction : float, default 0.5
        Where in the log's span the first date may fall.

    Returns
    -------
    list of str
        ISO dates (``"2018-11-07"``), ascending.

    Raises
    ------
    ValueError
        When no date after the log's first event leaves room for the label window.
    """
    con = _connect()
    try:
        _attach_events(con, events)
        first, last = con.execute(
            "SELECT min(CAST(ts AS BIGINT)), max(CAST(ts AS BIGINT)) FROM events").fetchone()
    finally:
        con.close()
    return observation_dates_for_span(first, last, horizon_days, every_days, start_fraction)


def observation_dates_for_span(first: int | None, last: int | None, horizon_days: float = 30,
                               every_days: int = 7, start_fraction: float = 0.5) -> list[str]:
    """:func:`observation_dates` of a log whose events run from ``first`` to ``last`` (epoch ms).

    For engines that find the span themselves (:mod:`churnlib.spark_features`).

    Parameters
    ----------
    first, last : int or None
        The log's first and last ``ts`` (epoch ms); None for an empty log.
    horizon_days, every_days, start_fraction
        As for :func:`observation_dates`.

    Returns
    -------
    list of str
        ISO dates, ascending.

    Raises
    ------
    ValueError
        An empty log, or one too short for the label window.
    """
    if first is None:
        raise ValueError("observation_dates: the event log is empty")
    start = pd.Timestamp(first + start_fraction * (last - first), unit="ms", tz="UTC").ceil("D")
    latest = pd.Timestamp(last - horizon_days * MS_PER_DAY, unit="ms", tz="UTC")
    dates = pd.date_range(start, latest, freq=f"{every_days}D") if start <= latest else []
    if not len(dates) and latest.floor("D") > pd.Timestamp(first, unit="ms", tz="UTC"):
        # A short log: the one date that still leaves the label window, with whatever history.
        dates = [latest.floor("D")]
    if not len(dates):
        raise ValueError(
            f"observation_dates: the log ({pd.Timestamp(first, unit='ms'):%Y-%m-%d} to "
            f"{pd.Timestamp(last, unit='ms'):%Y-%m-%d}) is too short for a {horizon_days}-day "
            f"label window after {start_fraction:.0%} of its span")
    return [d.strftime("%Y-%m-%d") for d in dates]


def build_features(
    events: Events,
    as_of: DateLike | Iterable[DateLike],
    horizon_days: float = 30,
    inactivity_days: float | None = None,
    *,
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """The training table: one row per (user, observation date) with label and features.

    For each observation date ``as_of`` the rows are the users eligible for a label
    (:func:`churnlib.labels.observation_labels`: active before ``as_of`` and not already churned),
    with ``churned`` = churn within ``[as_of, as_of + horizon_days)`` and the features of
    :data:`FEATURE_DICTIONARY`, computed only from events strictly before ``as_of`` without the
    label pages.

    Parameters
    ----------
    events : pandas.DataFrame or path-like
        Cleaned events, or parquet file/folder/glob (see :func:`user_features`).
    as_of : date-like or sequence of date-likes
        Observation date(s); several dates stack into one table.
    horizon_days : float, default 30
        Label window in days.
    inactivity_days : float, optional
        Silence that also counts as churn (see :func:`churnlib.labels.observation_labels`).
    memory_limit : str, optional
        DuckDB memory limit, e.g. ``"4GB"``.

    Returns
    -------
    pandas.DataFrame
        ``userId`` (str), ``as_of`` (datetime64[ms, UTC]), ``churned`` (int64 0/1), then the
        features in dictionary order; sorted by ``as_of`` then ``userId``.

    Raises
    ------
    churnlib.labels.LabelCensoredError
        When the log does not cover ``as_of + horizon_days`` (choose an earlier date).
    """
    dates = _as_of_list(as_of)
    sql = feature_sql()
    con = _connect(memory_limit)
    try:
        _attach_events(con, events)
        log_end = int(con.execute("SELECT max(ts) FROM events").fetchone()[0])
        parts = []
        for t in dates:
            labels = _labels_one(con, t, horizon_days, inactivity_days, log_end)
            feats = _features_one(con, sql, t)
            rows = labels[["userId", "churned"]].merge(feats, on="userId", how="left", validate="1:1")
            # A user whose only events before as_of are label pages has no feature events.
            rows["as_of"] = pd.Series(pd.Timestamp(t, unit="ms", tz="UTC"), index=rows.index,
                                      dtype="datetime64[ms, UTC]")
            parts.append(_finish_types(rows))
    finally:
        con.close()
    out = pd.concat(parts, ignore_index=True)
    out = out[["userId", "as_of", "churned", *feature_columns()]]
    out["churned"] = out["churned"].astype("int64")
    return out.sort_values(["as_of", "userId"], kind="mergesort").reset_index(drop=True)


def features_command(events_path: str | os.PathLike, as_of: Sequence[str], horizon_days: float,
                     out: str | os.PathLike, *, strict: bool = False) -> pd.DataFrame:
    """``python -m churnlib features``: check, load, build, write parquet atomically, return the table.

    Before any work the output is checked (:func:`churnlib.outputs.check_output`: not the input, not a
    folder, not under a file), and so are the horizon (:func:`churnlib.labels.check_horizon`: finite,
    at least a day) and, once the log is read, the dates
    (:func:`churnlib.labels.check_observation_dates`: inside the log, label window covered). A table
    with no rows is refused rather than written. The data-quality account of the log is written
    beside the table (:func:`churnlib.outputs.quality_path`: ``<out>.quality.json``).

    Parameters
    ----------
    events_path : path-like
        Event log in any format :func:`churnlib.load.load_events` reads.
    as_of : list of str
        Observation dates.
    horizon_days : float
        Label window in days.
    out : path-like
        Parquet file to write (written to a temporary file beside it, then renamed).
    strict : bool, default False
        Refuse the log at its first defect instead of repairing or dropping rows (and counting them).

    Returns
    -------
    pandas.DataFrame
        The table written (see :func:`build_features`); ``attrs["quality"]`` holds the log's
        :class:`churnlib.load.DataQuality`.

    Raises
    ------
    ValueError
        A bad ``--as-of`` or horizon, an unusable output path (:class:`churnlib.outputs.OutputError`),
        a table that would be empty; :class:`churnlib.load.DataValidationError` for a bad log.
    """
    horizon_days = check_horizon(horizon_days)
    dates = []
    for a in as_of:
        try:
            dates.append(to_epoch_ms(a))
        except (TypeError, ValueError):
            raise ValueError(f"as-of {a!r} is not a date; expected YYYY-MM-DD (UTC), e.g. 2018-11-01") from None
    if not dates:
        raise ValueError("at least one observation date (--as-of) is needed")
    check_output(out, inputs=[events_path])
    log = load_events(events_path, strict=strict)
    ts = log.events["ts"]
    first, last = (int(ts.min()), int(ts.max())) if len(ts) else (None, None)
    check_observation_dates(sorted(set(dates)), horizon_days, first, last)
    table = build_features(log.events, sorted(set(dates)), horizon_days=horizon_days)
    if table.empty:
        raise ValueError(f"no user is eligible at the given date(s) in {events_path}: every user with history "
                         "before them had already cancelled; nothing written (choose earlier dates)")
    atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False))
    write_json(quality_path(out), log.quality.to_dict())
    table.attrs["quality"] = log.quality
    return table


# --- leakage ------------------------------------------------------------------------------------


def leakage_report(
    table: pd.DataFrame,
    label_col: str = "churned",
    exclude: Iterable[str] = ("userId", "as_of", "user_id"),
    *,
    auc_threshold: float = 0.80,
    corr_threshold: float = 0.70,
    seed: int = 0,
) -> pd.DataFrame:
    """Single-feature screening for label leakage.

    Each feature on its own is scored against the label: ROC-AUC, reported as
    ``max(auc, 1 - auc)`` (a feature that ranks the classes backwards is just as telling), and the
    Pearson correlation. A feature is a suspect when its AUC is at least ``auc_threshold`` or its
    ``|corr|`` at least ``corr_threshold``: no honest behavioural feature separates churners that
    well on its own, so such a feature likely encodes the label or the future.

    Numeric and boolean columns are used as they are (datetimes as epoch ms), rows with a missing
    value left out. Categorical columns are target-encoded out of fold (5 folds: each row gets its
    category's churn rate in the other folds, the overall rate for unseen categories), so a
    category that determines the label stands out while an id-like column does not.

    Parameters
    ----------
    table : pandas.DataFrame
        Any feature table: :func:`build_features` output or a snapshot table.
    label_col : str, default "churned"
        Binary label column (0/1, bool, or two distinct values; the larger one is the positive).
    exclude : iterable of str
        Columns that are not features (ids, dates); absent names are ignored.
    auc_threshold, corr_threshold : float
        Suspect thresholds.
    seed : int
        Seed of the out-of-fold split for categorical columns.

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``kind`` (numeric/categorical), ``n`` (rows used),
        ``auc``, ``corr``, ``suspect`` (bool), ``reason`` (empty unless suspect); suspects first,
        then by decreasing AUC, then by name.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold

    if label_col not in table.columns:
        raise KeyError(f"leakage_report: no label column {label_col!r}")
    y_raw = table[label_col]
    values = pd.unique(y_raw.dropna())
    if len(values) != 2:
        raise ValueError(f"leakage_report: label {label_col!r} must have two values, has {len(values)}")
    positive = max(values.tolist())
    y_all = (y_raw == positive).astype(float).where(y_raw.notna())

    skip = set(exclude) | {label_col}
    rows = []
    for col in [c for c in table.columns if c not in skip]:
        s = table[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            kind, x = "numeric", s.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            kind, x = "numeric", s.astype("int64").astype("float64").where(s.notna())
        else:
            kind, x = "categorical", _oof_target_encode(s, y_all, KFold(5, shuffle=True,
                                                                         random_state=seed))
        ok = x.notna() & y_all.notna()
        xv, yv = x[ok].to_numpy(float), y_all[ok].to_numpy(float)
        auc = corr = np.nan
        if len(np.unique(yv)) == 2 and len(np.unique(xv)) > 1:
            a = roc_auc_score(yv, xv)
            auc = max(a, 1 - a)
            corr = float(np.corrcoef(xv, yv)[0, 1])
        elif len(np.unique(yv)) == 2:
            auc = 0.5  # constant feature: no information
        reasons = []
        if auc >= auc_threshold:
            reasons.append(f"AUC {auc:.3f} >= {auc_threshold:.2f}")
        if abs(corr) >= corr_threshold:
            reasons.append(f"|corr| {abs(corr):.3f} >= {corr_threshold:.2f}")
        rows.append({"feature": col, "kind": kind, "n": int(ok.sum()), "auc": auc, "corr": corr,
                     "suspect": bool(reasons), "reason": "; ".join(reasons)})
    report = pd.DataFrame(rows, columns=["feature", "kind", "n", "auc", "corr", "suspect", "reason"])
    report = report.sort_values(["suspect", "auc", "feature"], ascending=[False, False, True],
                                kind="mergesort", na_position="last")
    return report.reset_index(drop=True)


def _oof_target_encode(s: pd.Series, y: pd.Series, folds) -> pd.Series:
    """Each row's category churn rate computed on the other folds (unseen: the overall rate)."""
    cat = s.astype("string").fillna("<missing>").to_numpy(dtype=object)
    yv = y.to_numpy(float)
    out = np.full(len(s), np.nan)
    idx = np.arange(len(s))
    for train, test in folds.split(idx):
        tr = pd.DataFrame({"c": cat[train], "y": yv[train]}).dropna()
        rates = tr.groupby("c")["y"].mean()
        prior = tr["y"].mean()
        out[test] = pd.Series(cat[test]).map(rates).fillna(prior).to_numpy(float)
    return pd.Series(out, index=s.index)


def plot_leakage(report: pd.DataFrame, top: int = 20, auc_threshold: float = 0.80) -> "plt.Figure":
    """Bar chart of the strongest single-feature AUCs, with the suspect threshold.

    Parameters
    ----------
    report : pandas.DataFrame
        Output of :func:`leakage_report`.
    top : int, default 20
        Number of features shown (highest AUC first).
    auc_threshold : float, default 0.80
        Where the suspect line is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Titled with the finding (suspects found or the best honest AUC).
    """
    import matplotlib.pyplot as plt

    shown = report.dropna(subset=["auc"]).sort_values("auc", ascending=False, kind="mergesort")
    shown = shown.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(shown) + 1.4))
    colors = [CLASS_PALETTE["churned"] if s else CLASS_PALETTE["retained"] for s in shown["suspect"]]
    ax.barh(shown["feature"], shown["auc"], color=colors)
    ax.axvline(auc_threshold, color="grey", ls="--", lw=1)
    ax.set_xlim(0.5, 1.0)
    ax.set_xlabel("single-feature ROC-AUC, max(auc, 1 - auc)")
    n_suspects = int(report["suspect"].sum())
    if n_suspects:
        worst = report.loc[report["suspect"]].iloc[0]
        title = (f"{n_suspects} leakage suspect{'s' if n_suspects > 1 else ''}: "
                 f"{worst['feature']} alone scores AUC {worst['auc']:.2f}")
    elif len(shown):
        best = shown.iloc[-1]
        title = (f"No leakage suspects: the strongest single feature, {best['feature']}, "
                 f"scores AUC {best['auc']:.2f}")
    else:
        title = "No feature could be scored against the label"
    ax.set_title(title)
    return fig


def key_numbers(table: pd.DataFrame, label_col: str = "churned", *, leakage: pd.DataFrame | None = None,
                horizon_days: float | None = None) -> dict[str, str]:
    """Headline numbers of the feature step, for ``reports/index.html``.

    Parameters
    ----------
    table : pandas.DataFrame
        A feature table of :func:`build_features` (``userId``, ``as_of``, label, features), or a
        snapshot table (one row per user).
    label_col : str, default "churned"
        Its label column.
    leakage : pandas.DataFrame, optional
        The table's :func:`leakage_report`; None when it was not screened (one class only).
    horizon_days : float, optional
        Label window of a feature table.

    Returns
    -------
    dict
        Label -> short string, in display order.
    """
    rate = str(churn_rate(table[label_col]))
    if leakage is None:
        screened = "not screened (one class)"
    else:
        suspects = leakage.loc[leakage["suspect"], "feature"].tolist()
        screened = f"{len(suspects)}" + (f" ({', '.join(suspects)})" if suspects else "")
    if "as_of" not in table.columns:
        return {"Rows": f"{len(table):,}", "Positive rate": rate,
                "Features": f"{table.shape[1] - 2} snapshot columns", "Leakage suspects": screened}
    dates = sorted(table["as_of"].dt.strftime("%Y-%m-%d").unique())
    return {
        "Rows (user x date)": f"{len(table):,}",
        "Users": f"{table['userId'].nunique():,}",
        "Observation dates": f"{len(dates)} ({', '.join(dates)})",
        "Label window": f"{horizon_days:g} days" if horizon_days is not None else "n/a",
        "Positive rate": rate,
        "Features": f"{len(feature_columns(table))}",
        "Leakage suspects": screened,
    }
