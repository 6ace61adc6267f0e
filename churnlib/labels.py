"""Churn labels and the leakage gate for feature inputs.

Two label definitions:

* :func:`cancellation_labels` -- whole-log labels: a user churned if they ever reached
  :data:`~churnlib.schema.CHURN_PAGE`. Simple, but any feature computed over the whole log leaks
  (e.g. tenure ends at the cancellation), so use it for description, not for prediction.
* :func:`observation_labels` -- observation-date labels: stand at ``as_of``, look only at the past
  for features (through :func:`feature_events`) and at ``[as_of, as_of + horizon)`` for the label.

All times are epoch milliseconds (UTC), as produced by :func:`churnlib.load.load_events`.
Rows with an empty or null ``userId`` (Sparkify's logged-out and guest rows) belong to no user and
are ignored by every function here.
"""
from __future__ import annotations

import datetime as _dt
import numbers

import numpy as np
import pandas as pd

from churnlib.schema import CHURN_PAGE, LABEL_PAGES, MS_PER_DAY

__all__ = [
    "LabelCensoredError",
    "cancellation_labels",
    "check_horizon",
    "check_observation_dates",
    "feature_events",
    "observation_labels",
    "to_epoch_ms",
]

_SORT_KEYS = ("ts", "userId", "sessionId", "itemInSession")


class LabelCensoredError(ValueError):
    """The log does not extend far enough past ``as_of`` to observe the label (right-censoring)."""


def to_epoch_ms(when: object) -> int:
    """Convert a point in time to integer epoch milliseconds (UTC).

    Parameters
    ----------
    when : str, pandas.Timestamp, datetime.datetime, datetime.date, numpy.datetime64 or int
        A date (``"2018-11-15"``) or ISO-8601 datetime string, a timestamp object, or an integer
        that is already epoch milliseconds. Naive datetimes and strings without an offset are taken
        as UTC; aware ones are converted to UTC.

    Returns
    -------
    int
        Milliseconds since 1970-01-01T00:00:00Z (sub-millisecond parts are floored).

    Raises
    ------
    TypeError
        For booleans, floats and other types (a float is ambiguous: seconds or milliseconds?).
    ValueError
        For a string that is not a date.
    """
    if isinstance(when, (bool, np.bool_)):
        raise TypeError("to_epoch_ms: a boolean is not a point in time")
    if isinstance(when, numbers.Integral):
        return int(when)
    if isinstance(when, (str, pd.Timestamp, _dt.datetime, _dt.date, np.datetime64)):
        try:
            ts = pd.Timestamp(when)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"to_epoch_ms: cannot parse {when!r} as a date or datetime") from exc
        if ts is pd.NaT:
            raise ValueError(f"to_epoch_ms: {when!r} is not a point in time")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    raise TypeError(
        f"to_epoch_ms: expected str, Timestamp, datetime or int epoch ms, got {type(when).__name__}"
    )


def _require(events: pd.DataFrame, columns: tuple[str, ...], func: str) -> None:
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise KeyError(f"{func}: events lack column(s) {missing}; present: {list(events.columns)}")


def _user_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Rows that belong to a user (non-null, non-empty userId), with userId as str."""
    uid = events["userId"]
    keep = uid.notna() & (uid.astype("string").str.len() > 0)
    out = events.loc[keep, :].copy()
    out["userId"] = out["userId"].astype(str)
    return out


def _ts_ms(events: pd.DataFrame) -> pd.Series:
    return events["ts"].astype("int64")


def cancellation_labels(events: pd.DataFrame) -> pd.DataFrame:
    """Whole-log churn labels: a user churned if they ever reached the cancellation page.

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events with at least ``userId``, ``ts`` (epoch ms) and ``page``.

    Returns
    -------
    pandas.DataFrame
        One row per user (sorted by ``userId``) with ``userId`` (str), ``churned`` (int 0/1) and
        ``churn_ts`` (Int64: epoch ms of the user's first visit to
        :data:`~churnlib.schema.CHURN_PAGE`, ``<NA>`` if none).
    """
    _require(events, ("userId", "ts", "page"), "cancellation_labels")
    ev = _user_rows(events)
    users = pd.Index(sorted(ev["userId"].unique()), name="userId")
    churn_ts = (
        ev.loc[ev["page"] == CHURN_PAGE]
        .assign(ts=lambda d: _ts_ms(d))
        .groupby("userId")["ts"].min()
        .reindex(users)
        .astype("Int64")
    )
    return pd.DataFrame(
        {
            "userId": users.astype(str),
            "churned": churn_ts.notna().astype("int64").to_numpy(),
            "churn_ts": churn_ts.to_numpy(),
        }
    ).astype({"churn_ts": "Int64"})


def feature_events(events: pd.DataFrame, as_of: object) -> pd.DataFrame:
    """The only events features may be computed from at observation date ``as_of``.

    Keeps rows with ``ts < as_of`` and removes every row whose page is in
    :data:`~churnlib.schema.LABEL_PAGES` (those pages *are* the label). Rows are returned in a
    deterministic order (stable sort by ``ts, userId, sessionId, itemInSession`` where present)
    with a fresh index, so appending events at or after ``as_of`` never changes the result.

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events with at least ``ts`` (epoch ms) and ``page``.
    as_of : str, Timestamp, datetime or int epoch ms
        The observation date; see :func:`to_epoch_ms`.

    Returns
    -------
    pandas.DataFrame
        A copy of the qualifying rows, same columns as ``events``.
    """
    _require(events, ("ts", "page"), "feature_events")
    cutoff = to_epoch_ms(as_of)
    keep = (_ts_ms(events) < cutoff) & ~events["page"].isin(LABEL_PAGES).to_numpy()
    out = events.loc[keep.to_numpy(), :]
    keys = [k for k in _SORT_KEYS if k in out.columns]
    out = out.sort_values(keys, kind="mergesort", na_position="last") if keys else out
    return out.reset_index(drop=True)


def observation_labels(
    events: pd.DataFrame,
    as_of: object,
    horizon_days: float = 30,
    inactivity_days: float | None = None,
    *,
    log_end: object | None = None,
) -> pd.DataFrame:
    """Observation-date churn labels: does the user churn within ``[as_of, as_of + horizon)``?

    Let ``t = as_of``, ``h = horizon_days`` and ``d = inactivity_days``.

    **Eligible users** have at least one event with ``ts < t`` and no visit to
    :data:`~churnlib.schema.CHURN_PAGE` before ``t``. If ``d`` is set, users already inactive at
    ``t`` (last event before ``t`` at or before ``t - d``) are also excluded: they churned before
    the observation date under the same definition.

    **Label.** ``churned = 1`` with ``churn_reason = "cancelled"`` if the user's first visit to the
    churn page is in ``[t, t + h)`` (``t`` included, ``t + h`` excluded). Otherwise, if ``d`` is
    set, ``churned = 1`` with ``churn_reason = "inactive"`` if a silence of at least ``d`` days
    begins in the window: at ``t`` itself or at one of the user's events ``e`` with
    ``t <= e < t + h``, the user's next event (strictly later than that point) is at least ``d``
    days later, or never comes. Otherwise ``churned = 0`` and ``churn_reason`` is ``None``.
    Cancellation takes precedence over inactivity.

    **Right-censoring.** A label is only observable if the log covers the window: up to
    ``t + h`` for cancellations, and up to ``t + h + d`` when inactivity counts (a silence that
    begins just before ``t + h`` needs ``d`` more days to be seen). If ``log_end`` (default: the
    latest ``ts`` in ``events``, all rows) is earlier, :class:`LabelCensoredError` is raised
    rather than silently labelling censored users 0. Pass ``log_end`` when the log is known to be
    complete up to a later time than its last event.

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events with at least ``userId``, ``ts`` (epoch ms) and ``page``.
    as_of : str, Timestamp, datetime or int epoch ms
        Observation date ``t``; see :func:`to_epoch_ms`.
    horizon_days : float, default 30
        Window length ``h`` in days (> 0).
    inactivity_days : float or None, default None
        Silence length ``d`` in days (> 0) that also counts as churn; ``None``: cancellations only.
    log_end : str, Timestamp, datetime, int epoch ms or None, keyword-only
        Time up to which the log is complete; default the latest event.

    Returns
    -------
    pandas.DataFrame
        One row per eligible user, sorted by ``userId``: ``userId`` (str), ``as_of``
        (Timestamp UTC), ``churned`` (int 0/1), ``churn_reason`` (``"cancelled"``,
        ``"inactive"`` or ``None``; object dtype).

    Raises
    ------
    ValueError
        Non-positive ``horizon_days`` / ``inactivity_days``.
    LabelCensoredError
        The log ends before the window (plus ``d``) is fully observed.
    """
    _require(events, ("userId", "ts", "page"), "observation_labels")
    if not (horizon_days > 0 and np.isfinite(horizon_days)):
        raise ValueError(f"observation_labels: horizon_days must be > 0, got {horizon_days!r}")
    if inactivity_days is not None and not (inactivity_days > 0 and np.isfinite(inactivity_days)):
        raise ValueError(f"observation_labels: inactivity_days must be > 0, got {inactivity_days!r}")
    t = to_epoch_ms(as_of)
    h = int(round(horizon_days * MS_PER_DAY))
    d = None if inactivity_days is None else int(round(inactivity_days * MS_PER_DAY))
    end = to_epoch_ms(log_end) if log_end is not None else (
        int(_ts_ms(events).max()) if len(events) else None
    )
    needed = t + h + (d or 0)
    if end is None or end < needed:
        raise LabelCensoredError(
            f"observation_labels: the log ends at {_iso(end)} but labels at as_of={_iso(t)} with "
            f"horizon {horizon_days} d"
            + (f" and inactivity {inactivity_days} d" if d is not None else "")
            + f" need it to reach {_iso(needed)}; choose an earlier as_of or pass log_end"
        )

    ev = _user_rows(events)[["userId", "ts", "page"]]
    ev = ev.assign(ts=_ts_ms(ev))
    is_churn = (ev["page"] == CHURN_PAGE).to_numpy()
    before = ev["ts"].to_numpy() < t
    last_before = ev.loc[before].groupby("userId")["ts"].max()
    first_churn = ev.loc[is_churn].groupby("userId")["ts"].min()

    eligible = last_before.index
    eligible = eligible[~eligible.isin(first_churn.index[first_churn < t])]
    if d is not None:
        eligible = eligible[(last_before.reindex(eligible) > t - d).to_numpy()]
    eligible = pd.Index(sorted(eligible), name="userId")

    fc = first_churn.reindex(eligible)
    cancelled = ((fc >= t) & (fc < t + h)).fillna(False).to_numpy(dtype=bool)

    inactive = np.zeros(len(eligible), dtype=bool)
    if d is not None and len(eligible):
        # Anchors: as_of itself plus each event in [t, t+h); a silence starts at an anchor if the
        # next event strictly after it is >= d later (or there is none).
        after = ev.loc[(ev["ts"] >= t) & ev["userId"].isin(eligible), ["userId", "ts"]]
        anchors = pd.concat(
            [pd.DataFrame({"userId": eligible.to_numpy(), "ts": t}), after], ignore_index=True
        ).drop_duplicates().sort_values(["userId", "ts"], kind="mergesort")
        nxt = anchors.groupby("userId")["ts"].shift(-1)
        silent = nxt.isna() | (nxt - anchors["ts"] >= d)
        in_window = anchors["ts"] < t + h
        hit = anchors.loc[(silent & in_window).to_numpy(), "userId"].unique()
        inactive = eligible.isin(hit)

    reason = np.where(cancelled, "cancelled", np.where(inactive, "inactive", None))
    return pd.DataFrame(
        {
            "userId": pd.Series(eligible.astype(str), dtype=str),
            "as_of": pd.Series([pd.Timestamp(t, unit="ms", tz="UTC")] * len(eligible),
                               dtype="datetime64[ms, UTC]"),
            "churned": (cancelled | inactive).astype("int64"),
            "churn_reason": pd.Series(list(reason), dtype=object),
        }
    )


def check_horizon(horizon_days: object, *, minimum_days: float = 1.0) -> float:
    """A label window length a command can use, or a :class:`ValueError` saying why not.

    Parameters
    ----------
    horizon_days : float
        Window length in days (``--horizon``).
    minimum_days : float, default 1
        Shortest window accepted: a window under a day labels almost nobody (a zero-length window
        labels nobody at all).

    Returns
    -------
    float
        ``horizon_days`` as a float.

    Raises
    ------
    ValueError
        Not a number, NaN, infinite, negative, zero or under ``minimum_days``; the message says what
        is expected.
    """
    try:
        h = float(horizon_days)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"horizon {horizon_days!r} is not a number of days") from None
    if not np.isfinite(h):
        raise ValueError(f"horizon {h} is not a finite number of days; give the label window in days, "
                         f"e.g. 30")
    if h <= 0:
        raise ValueError(f"horizon {h:g} days is not positive; give the label window in days, e.g. 30")
    if h < minimum_days:
        raise ValueError(f"horizon {h:g} days is under {minimum_days:g} day(s): the label window "
                         f"[as_of, as_of + horizon) would be (almost) empty, so (almost) nobody could "
                         f"be labelled churned; give the window in days, e.g. 30")
    return h


def check_observation_dates(as_of_ms: list[int], horizon_days: float, first_ms: int | None,
                            last_ms: int | None) -> None:
    """Refuse observation dates that would give an empty or censored table, saying why.

    Parameters
    ----------
    as_of_ms : list of int
        Observation dates in epoch ms (:func:`to_epoch_ms`).
    horizon_days : float
        Label window in days.
    first_ms, last_ms : int or None
        The log's first and last event (epoch ms); ``None`` for an empty log.

    Raises
    ------
    ValueError
        The log is empty; a date at or before the log's first event (no user has history: the
        table would have no rows); a date whose label window ``[as_of, as_of + horizon)`` runs past
        the log's last event (labels censored: :class:`LabelCensoredError`). The message gives the
        log's span and the range of usable dates.
    """
    if first_ms is None or last_ms is None:
        raise ValueError("the event log has no events with a user and a time: nothing to build features from")
    h = int(round(horizon_days * MS_PER_DAY))
    span = f"the log runs from {_day(first_ms)} to {_day(last_ms)}"
    usable = (f"usable dates with a {horizon_days:g}-day window: after {_day(first_ms)} and up to "
              f"{_day(last_ms - h)}" if last_ms - h > first_ms else
              f"the log is too short for a {horizon_days:g}-day window; use a shorter --horizon")
    for t in as_of_ms:
        if t <= first_ms:
            raise ValueError(f"as-of {_day(t)} is not after the start of the log ({span}): no user has any "
                             f"history before it, so the table would have no rows; {usable}")
        if t + h > last_ms:
            raise LabelCensoredError(
                f"as-of {_day(t)} with a {horizon_days:g}-day horizon needs the log to reach "
                f"{_day(t + h)}, but {span}: the labels would be censored (users who churn after the "
                f"log ends would count as staying); {usable}")


def _day(ms: int) -> str:
    try:
        ts = pd.Timestamp(ms, unit="ms", tz="UTC")
    except (OverflowError, ValueError):  # outside pandas' range (years 1677-2262)
        return f"epoch ms {ms}"
    return ts.strftime("%Y-%m-%d") if ts == ts.floor("D") else ts.strftime("%Y-%m-%d %H:%M UTC")


def _iso(ms: int | None) -> str:
    return "<empty log>" if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()
