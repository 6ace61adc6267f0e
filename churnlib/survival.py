"""How long users stay: durations, Kaplan–Meier retention curves, cohort tests, a Cox model and
expected retention of today's users.

Statistics only (words and plots live in :mod:`churnlib.survival_report`). Built on statsmodels
(``statsmodels.duration``): lifelines, which the issue names, requires pandas<3 (lifelines#1685) and
the project is on pandas 3.

Conventions
-----------
* **Time origin.** A user's clock starts at registration (else at the first event) and stops at the
  :data:`~churnlib.schema.CHURN_PAGE` visit; users who did not cancel are *censored* at the end of the
  log: we know they stayed at least that long, not that they stayed. Durations are in days.
* **Left truncation (delayed entry).** A user registered before the log starts is only seen because
  they were still a customer when the log started. Such a user enters the risk set at their first
  observed event (``entry_days`` = days from registration to the first event), not at registration;
  counting them from registration would make early churn look rarer than it is (those who left
  before the log began are invisible). Users registered inside the log have ``entry_days = 0``.
* **Honest curves.** A curve stops where fewer than ``min_at_risk`` users remain at risk (its
  ``reach``); nothing is read off past it (``at`` gives NaN, the median is "not reached", expected
  retention is "cannot be estimated"). Pointwise bands are log–log (Greenwood standard errors).
* **Conditional start.** When fewer than ``min_at_risk`` users are at risk at day 0 (a log whose
  users nearly all registered before it began), a curve starts at the first tenure ``t0`` with at
  least ``min_at_risk`` at risk and is survival *conditional on having stayed* ``t0`` days
  (``RetentionCurve.start``); its median and ``at`` are conditional too. Expected retention of a
  user at tenure ``t >= t0`` (``S(t+h)/S(t)``) means the same as before; a user at ``t < t0`` would
  need ``S(t)``, which is not estimated: counted as not estimable, with the reason. Cohort curves
  follow the same rule each; the cohort that leaves soonest is then compared at a common day,
  conditional on the latest start among the cohorts.
* **Cox model.** Behavioural features at an observation date (the same leakage-safe
  :func:`churnlib.features.user_features`), duration from that date to cancellation, censored at the
  log's end; features standardised on the training users, so a hazard ratio is per standard
  deviation.

Additions to the agreed interface (nothing renamed): the durations table also carries ``entry_days``,
``first_ts``, ``last_ts`` and ``level_end``; :func:`observation_table` builds the Cox input from an
event log; :func:`compare_many` applies the FDR control across several cohort columns at once;
:func:`concordance_index` / :func:`concordance_interval` are public.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff
from statsmodels.stats.multitest import multipletests

from churnlib.features import user_features
from churnlib.intervals import Interval, bootstrap_sampler
from churnlib.labels import cancellation_labels, to_epoch_ms
from churnlib.load import DataValidationError
from churnlib.schema import CHURN_PAGE, EVENT_COLUMNS, MS_PER_DAY

__all__ = [
    "COHORT_COLUMNS",
    "CohortComparison",
    "CoxResult",
    "RetentionCurve",
    "compare_cohorts",
    "compare_many",
    "concordance_index",
    "concordance_interval",
    "durations_for",
    "durations_from_events",
    "durations_from_table",
    "expected_retention",
    "fit_cox",
    "kaplan_meier",
    "observation_table",
]

#: Cohort columns :func:`durations_from_events` derives (each fixed at the user's first event,
#: except ``registration_month``).
COHORT_COLUMNS: tuple[str, ...] = ("level", "device", "registration_month", "gender", "state")

_DUR = "duration_days"
_EVENT = "churned"
_ENTRY = "entry_days"


# --------------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------------

def _first_event_context(first_rows: pd.DataFrame) -> pd.DataFrame:
    """Device, state and gender at each user's first event, by the feature SQL's own rules.

    The one place survival reads those rules: :func:`churnlib.features.user_features` run on each
    user's first event alone (an observation date just after the last of them), so the device and
    state are exactly what a feature table would say about that event.
    """
    frame = first_rows.reindex(columns=list(EVENT_COLUMNS))
    as_of = int(first_rows["ts"].max()) + 1
    feats = user_features(frame, as_of)
    return feats.set_index("userId")[["device_type", "state", "gender"]].rename(
        columns={"device_type": "device"})


def durations_from_events(events: pd.DataFrame, *, end: int | str | None = None) -> pd.DataFrame:
    """One row per user: time from registration (or first event) to cancellation, or censoring.

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events (:func:`churnlib.load.load_events` ``.events``) with at least ``ts``,
        ``userId``, ``page``; ``level``, ``userAgent``, ``location``, ``gender``, ``registration``
        are used when present. Rows without a user are ignored.
    end : int or date-like, optional
        End of observation (epoch ms or a date); default the log's last event. Events after it are
        ignored; users who did not cancel by then are censored there.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``userId``: ``userId`` (str); ``start`` (registration, else first event; epoch
        ms); ``stop`` (cancellation, else ``end``; epoch ms); ``duration_days``; ``churned`` (1 =
        cancellation seen, 0 = censored); ``entry_days`` (delayed entry: days from ``start`` to the
        first observed event for users registered before the log starts, else 0); ``first_ts``,
        ``last_ts`` (epoch ms); cohorts ``level`` (at the first event), ``device``, ``state``,
        ``gender`` (at the first event, by the feature rules), ``registration_month``
        (``"YYYY-MM"`` of ``start``); and ``level_end`` (level at the last event).

    Raises
    ------
    DataValidationError
        When no user event is left.
    """
    missing = [c for c in ("ts", "userId", "page") if c not in events.columns]
    if missing:
        raise DataValidationError(f"events lack column(s) {missing}", column=missing[0])
    ts_all = events["ts"].to_numpy(dtype="int64")
    # the log starts with its first row, a guest's or logged-out one included
    log_start = int(ts_all.min()) if len(ts_all) else 0
    uid = events["userId"]
    keep = (uid.notna() & (uid.astype("string").str.len() > 0)).to_numpy()
    if end is not None:
        end_ms = to_epoch_ms(end)
        keep &= ts_all <= end_ms
    if not keep.any():
        raise DataValidationError("no user events to measure durations from", column="userId")
    rows = np.flatnonzero(keep)
    ts = ts_all[rows]
    codes, uniques = pd.factorize(uid.to_numpy()[rows])
    if end is None:
        end_ms = int(ts.max())
    # each user's first and last row (by time; ties keep the log's order)
    order = np.lexsort((np.arange(len(ts)), ts, codes))
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    first_i = rows[order[bounds[:-1]]]
    last_i = rows[order[bounds[1:] - 1]]
    users = pd.Index(np.asarray(uniques).astype(str), name="userId")
    first = events.iloc[first_i].set_axis(users)
    last = events.iloc[last_i].set_axis(users)
    # the churn definition of churnlib.labels, on the churn-page rows only (cheap)
    churn_rows = rows[events["page"].to_numpy()[rows] == CHURN_PAGE]
    labels = cancellation_labels(events.iloc[churn_rows][["userId", "ts", "page"]]).set_index("userId")
    churn_ts = labels["churn_ts"].astype("Float64").reindex(users).to_numpy(dtype="float64", na_value=np.nan)
    churned = np.isfinite(churn_ts).astype("int64")

    first_ts = ts_all[first_i]
    if "registration" in events.columns:
        reg_all = pd.to_numeric(events["registration"], errors="coerce").to_numpy(dtype="float64")[rows]
        reg = pd.Series(reg_all).groupby(codes).min().reindex(np.arange(len(uniques))).to_numpy(dtype="float64")
    else:
        reg = np.full(len(users), np.nan)
    # registration after the first event (a data oddity) or missing: start at the first event
    use_reg = np.isfinite(reg) & (reg <= first_ts)
    start = np.where(use_reg, reg, first_ts).astype("int64")
    stop = np.where(churned == 1, churn_ts, end_ms).astype("int64")
    duration = (stop - start) / MS_PER_DAY
    truncated = use_reg & (start < log_start)
    entry = np.where(truncated, (first_ts - start) / MS_PER_DAY, 0.0)
    # a user whose only observed moment is the cancellation enters just before it (else the event
    # would fall outside their own risk set)
    entry = np.minimum(entry, np.maximum(duration - 1.0 / MS_PER_DAY, 0.0))

    out = pd.DataFrame({
        "userId": users.astype(str),
        "start": start,
        "stop": stop,
        _DUR: duration,
        _EVENT: churned,
        _ENTRY: entry,
        "first_ts": first_ts,
        "last_ts": ts_all[last_i],
    })
    out["level"] = (first["level"].astype(str).to_numpy() if "level" in first.columns else "unknown")
    ctx = _first_event_context(first.reset_index(drop=True).assign(userId=users.to_numpy())).reindex(users)
    out["device"] = ctx["device"].fillna("unknown").to_numpy()
    out["registration_month"] = pd.to_datetime(start, unit="ms", utc=True).strftime("%Y-%m")
    out["gender"] = ctx["gender"].fillna("unknown").to_numpy()
    out["state"] = ctx["state"].fillna("unknown").to_numpy()
    out["level_end"] = (last["level"].astype(str).to_numpy()
                        if "level" in last.columns else "unknown")
    for c in ("level", "level_end"):
        out[c] = out[c].replace({"nan": "unknown", "None": "unknown", "<NA>": "unknown", "": "unknown"})
    return out.sort_values("userId", kind="stable").reset_index(drop=True)


def durations_from_table(table: pd.DataFrame, *, duration_col: str, event_col: str,
                         id_col: str | None = None) -> pd.DataFrame:
    """Durations from a one-row-per-user snapshot with a tenure column and the churn label.

    Parameters
    ----------
    table : pandas.DataFrame
        The snapshot.
    duration_col : str
        Tenure in days (time to cancellation for churned users, time observed so far for the rest).
    event_col : str
        The label: 1/True = cancelled (event), 0/False = still a customer (censored).
    id_col : str, optional
        User id column; default the row number.

    Returns
    -------
    pandas.DataFrame
        ``userId``, ``duration_days``, ``churned``, ``entry_days`` (0: a snapshot has no delayed
        entry), then every other column of ``table`` unchanged (cohort candidates).

    Raises
    ------
    DataValidationError
        A missing column, a negative/missing/non-numeric duration or a label that is not 0/1,
        naming the column and the first bad row (1-based).
    """
    for c in (duration_col, event_col) + ((id_col,) if id_col else ()):
        if c not in table.columns:
            raise DataValidationError(f"no column {c!r} in the table; columns: {list(table.columns)}",
                                      column=c)
    dur = pd.to_numeric(table[duration_col], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(dur) | (dur < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"duration must be a number of days >= 0, got {table[duration_col].iloc[i]!r}",
                                  line=i + 1, column=duration_col)
    ev_raw = table[event_col]
    ev = pd.to_numeric(ev_raw.astype("string").str.strip().str.lower().replace(
        {"true": "1", "false": "0", "yes": "1", "no": "0"}), errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isin(ev, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"label must be 0/1, got {ev_raw.iloc[i]!r}", line=i + 1, column=event_col)
    ids = table[id_col].astype(str).to_numpy() if id_col else np.arange(1, len(table) + 1).astype(str)
    out = pd.DataFrame({"userId": ids, _DUR: dur, _EVENT: ev.astype("int64"), _ENTRY: 0.0})
    rest = table.drop(columns=[c for c in (duration_col, event_col, id_col) if c]).reset_index(drop=True)
    rest = rest.drop(columns=[c for c in rest.columns if c in out.columns])
    return pd.concat([out, rest], axis=1)


def durations_for(loaded: Any, kind: str, *, duration_col: str | None = None, label_col: str | None = None,
                  id_col: str | None = None) -> pd.DataFrame | None:
    """Durations of whatever the notebooks loaded: an event log gives them itself; a snapshot table
    only through its tenure column.

    Parameters
    ----------
    loaded : churnlib.load.EventLog or churnlib.load.SnapshotTable
        From :func:`churnlib.load.load_events` / :func:`churnlib.load.load_snapshot`.
    kind : str
        ``"events"`` or ``"snapshot"``.
    duration_col, label_col, id_col : str, optional
        Snapshot tables: tenure (days), label and id columns (:func:`durations_from_table`).

    Returns
    -------
    pandas.DataFrame or None
        None for a snapshot without ``duration_col`` (it says whether each user left, not after how long).
    """
    if kind == "events":
        return durations_from_events(loaded.events)
    if not duration_col:
        return None
    return durations_from_table(loaded.table, duration_col=duration_col, event_col=label_col, id_col=id_col)


# --------------------------------------------------------------------------------------------
# Kaplan–Meier
# --------------------------------------------------------------------------------------------

def _arrays(durations: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    for c in (_DUR, _EVENT):
        if c not in durations.columns:
            raise KeyError(f"durations lack column {c!r} (see durations_from_events / durations_from_table)")
    time = durations[_DUR].to_numpy(dtype="float64")
    status = durations[_EVENT].to_numpy(dtype="float64")
    entry = durations[_ENTRY].to_numpy(dtype="float64") if _ENTRY in durations.columns else None
    if entry is not None and not (entry > 0).any():
        entry = None
    return time, status, entry


def _fit_km(time: np.ndarray, status: np.ndarray, entry: np.ndarray | None) -> SurvfuncRight:
    return SurvfuncRight(time, status, entry=entry)


def _step(times: np.ndarray, values: np.ndarray, x: np.ndarray, first: float = 1.0) -> np.ndarray:
    """Right-continuous step function through (times, values), ``first`` before the first time."""
    idx = np.searchsorted(times, x, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)] if len(values) else first, first)
    return np.asarray(out, dtype="float64")


def _at_risk_after(time: np.ndarray, ent: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Users at risk just after each ``grid`` tenure: ``#{entry <= g} - #{duration <= g}``."""
    return (np.searchsorted(np.sort(ent), grid, side="right")
            - np.searchsorted(np.sort(time), grid, side="right"))


def _start(time: np.ndarray, entry: np.ndarray | None, min_at_risk: int) -> float:
    """Where a curve can start: 0 when at least ``min_at_risk`` users are at risk just after day 0;
    else the tenure (an entry time) that opens the longest stretch with at least ``min_at_risk``
    users at risk (the first such stretch on ties); else 0 (no tenure has enough users: the curve
    stops at day 0).

    Under delayed entry a log whose users nearly all registered before it began follows few users
    through their first days; the curve then starts where enough are followed and is conditional
    on having stayed that long. The longest stretch rather than the first: a risk set that reaches
    ``min_at_risk`` for an hour and drops below it again would give a curve of one hour.
    """
    if len(time) == 0 or entry is None:
        return 0.0
    grid = np.unique(np.concatenate(([0.0], entry, time)))
    ok = _at_risk_after(time, entry, grid) >= min_at_risk
    if ok[0] or not ok.any():
        return 0.0
    edges = np.diff(np.concatenate(([0], ok.astype("int8"), [0])))
    first, after = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    ends = grid[np.minimum(after, len(grid) - 1)]
    best = int(np.argmax(ends - grid[first]))
    return float(grid[first[best]])


def _reach(time: np.ndarray, entry: np.ndarray | None, min_at_risk: int, start: float = 0.0) -> float:
    """The end of the longest stretch from ``start`` in which at least ``min_at_risk`` users are at risk.

    At risk at ``t``: ``entry < t <= duration``. Just after a stop time ``s`` the risk set is
    ``#{entry <= s} - #{duration <= s}``; the reach is the first stop time (or ``start``) from
    ``start`` on after which it is below ``min_at_risk``, or the last stop time.
    """
    if len(time) == 0:
        return float(start)
    ent = np.zeros_like(time) if entry is None else entry
    stops = np.unique(time)
    stops = stops[stops > start]
    if not len(stops):
        return float(start)
    grid = np.concatenate(([start], stops))
    low = np.flatnonzero(_at_risk_after(time, ent, grid) < min_at_risk)
    if not len(low):
        return float(stops[-1])
    return float(grid[low[0]])


def _conditional(time: np.ndarray, status: np.ndarray, entry: np.ndarray | None,
                 start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The users still at risk after ``start``, entering at ``max(entry, start)``: a product-limit
    fit on them is survival conditional on having stayed ``start`` days (all when ``start`` is 0)."""
    if start <= 0:
        return time, status, entry
    keep = time > start
    ent = np.zeros_like(time) if entry is None else entry
    return time[keep], status[keep], np.maximum(ent[keep], start)


@dataclass(frozen=True)
class RetentionCurve:
    """A Kaplan–Meier retention curve, cut where fewer than ``min_at_risk`` users remain at risk.

    When fewer than ``min_at_risk`` users are at risk at the start (a log whose users nearly all
    registered before it began: under delayed entry few are followed through their first days), the
    curve starts at ``start``, the first tenure with at least ``min_at_risk`` users at risk, and is
    the survival *conditional on having stayed* ``start`` days (product-limit over the cancellations
    after ``start`` only). Its median and :meth:`at` then refer to that conditional curve: "of users
    who had been subscribed for ``start`` days, half had cancelled by day ``median``".

    Attributes
    ----------
    table : pandas.DataFrame
        ``time`` (days since registration), ``survival``, ``low``, ``high`` (pointwise log–log
        band), ``at_risk``, ``events``: a first row at ``start`` (survival 1), one row per event time
        up to ``reach``, and a last row at ``reach`` itself (``events`` 0) so that a step plot ends
        there.
    median : Interval or None
        Median time to churn (days since registration; conditional on having stayed ``start`` days)
        with its interval; None when the curve does not fall below 0.5 within its reach ("not
        reached"). ``high`` is ``inf`` when the upper limit is not reached.
    reach : float
        Last day the curve is shown (at least ``min_at_risk`` users at risk from ``start`` up to
        there); ``reach <= start`` means no curve.
    n_users, n_events : int
        Users and cancellations behind the curve (all users given, including those who left before
        ``start``).
    min_at_risk : int
    level : float
        Coverage of the band and of the median's interval.
    label : str
        What the curve describes (e.g. the cohort's name).
    left_truncated : int
        Users with delayed entry (registered before the log started).
    start : float
        Tenure (days) the curve starts at: 0, or the tenure it is conditional on (see above).
    """

    table: pd.DataFrame
    median: Interval | None
    reach: float
    n_users: int
    n_events: int
    min_at_risk: int
    level: float
    label: str = "all users"
    left_truncated: int = 0
    _times: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _surv: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _se: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    start: float = 0.0

    @property
    def conditional(self) -> bool:
        """True when the curve starts after day 0 (survival conditional on having stayed ``start`` days)."""
        return self.start > 0

    def survival(self, days: float | np.ndarray) -> np.ndarray:
        """S(days) for an array of days (conditional on ``start``; NaN outside ``[start, reach]``)."""
        x = np.asarray(days, dtype="float64")
        s = _step(self._times, self._surv, x)
        return np.where((x >= self.start) & (x <= self.reach), s, np.nan)

    def at(self, days: float, given: float | None = None) -> Interval:
        """Survival at ``days`` with its pointwise interval; NaN outside ``[start, reach]``.

        Parameters
        ----------
        days : float
            Tenure in days.
        given : float, optional
            Condition on having stayed ``given`` days (``start <= given <= days``): S(days)/S(given),
            with the Greenwood variance of the events in between. Default: the curve's own ``start``.

        Returns
        -------
        Interval
        """
        days = float(days)
        given = self.start if given is None else float(given)
        if not (self.start <= given <= days <= self.reach):
            return Interval(float("nan"), level=self.level)
        x = np.array([given, days])
        s0, s = (float(v) for v in _step(self._times, self._surv, x))
        se0, se = (float(v) for v in _step(self._times, self._se, x, first=0.0))
        if given > self.start:
            if s0 <= 0:
                return Interval(float("nan"), level=self.level)
            # Greenwood: var(log S) is a sum over event times, so the part after `given` is the difference
            v = max((se / s) ** 2 - (se0 / s0) ** 2, 0.0) if s > 0 else 0.0
            s = s / s0
            se = s * np.sqrt(v)
        lo, hi = _loglog_band(np.array([s]), np.array([se]), self.level)
        return Interval(s, float(lo[0]), float(hi[0]), self.level)


def _loglog_band(s: np.ndarray, se: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = se / (s * np.abs(np.log(s)))
        lo = s ** np.exp(z * sigma)
        hi = s ** np.exp(-z * sigma)
    one = s >= 1.0
    lo = np.where(one, 1.0, lo)
    hi = np.where(one, 1.0, hi)
    zero = (s <= 0.0) | ~np.isfinite(sigma) & ~one
    lo = np.where(zero, np.where(s <= 0, 0.0, np.nan), lo)
    hi = np.where(zero, np.where(s <= 0, 0.0, np.nan), hi)
    return lo, hi


def kaplan_meier(durations: pd.DataFrame, *, min_at_risk: int = 20, level: float = 0.95,
                 label: str = "all users") -> RetentionCurve:
    """Kaplan–Meier retention curve with a pointwise band, cut at ``min_at_risk``.

    The curve starts at day 0 when at least ``min_at_risk`` users are at risk there. Otherwise
    (delayed entry: most users registered before the log began, so few are followed through their
    first days) it starts at the tenure ``t0`` that opens the longest stretch with at least
    ``min_at_risk`` users at risk (in practice the first tenure with that many) and
    estimates survival conditional on having stayed ``t0`` days: a product-limit over the
    cancellations after ``t0`` of the users still at risk then (each entering at ``max(entry,
    t0)``). The curve carries ``start = t0``; its median and :meth:`RetentionCurve.at` are
    conditional. When no tenure has ``min_at_risk`` users at risk the curve stops at day 0.

    Parameters
    ----------
    durations : pandas.DataFrame
        ``duration_days``, ``churned`` and optionally ``entry_days`` (delayed entry), as made by
        :func:`durations_from_events` or :func:`durations_from_table`.
    min_at_risk : int, default 20
        The curve stops where fewer users than this remain at risk.
    level : float, default 0.95
        Coverage of the band and of the median's interval.
    label : str
        Name carried by the curve.

    Returns
    -------
    RetentionCurve
    """
    time, status, entry = _arrays(durations)
    n_trunc = 0 if entry is None else int((entry > 0).sum())
    if len(time) == 0:
        empty = pd.DataFrame({"time": [0.0], "survival": [1.0], "low": [1.0], "high": [1.0],
                              "at_risk": [0], "events": [0]})
        return RetentionCurve(empty, None, 0.0, 0, 0, min_at_risk, level, label, n_trunc)
    start = _start(time, entry, min_at_risk)
    ctime, cstatus, centry = _conditional(time, status, entry, start)
    sf = _fit_km(ctime, cstatus, centry)
    times = np.asarray(sf.surv_times, dtype="float64")
    surv = np.asarray(sf.surv_prob, dtype="float64")
    se = np.nan_to_num(np.asarray(sf.surv_prob_se, dtype="float64"), nan=0.0)
    reach = _reach(time, entry, min_at_risk, start)
    keep = times <= reach
    lo, hi = _loglog_band(surv[keep], se[keep], level)
    ent = np.zeros_like(time) if entry is None else entry
    at0 = int(((ent <= start) & (time > start)).sum())
    at_reach = int(((ent < reach) & (time >= reach)).sum())
    s_reach = float(_step(times, surv, np.array([reach]))[0])
    lo_r, hi_r = _loglog_band(np.array([s_reach]), np.array([float(_step(times, se, np.array([reach]), 0.0)[0])]), level)
    table = pd.DataFrame({
        "time": np.concatenate(([start], times[keep], [reach])),
        "survival": np.concatenate(([1.0], surv[keep], [s_reach])),
        "low": np.concatenate(([1.0], lo, lo_r)),
        "high": np.concatenate(([1.0], hi, hi_r)),
        "at_risk": np.concatenate(([at0], np.asarray(sf.n_risk)[keep].astype("int64"), [at_reach])),
        "events": np.concatenate(([0], np.asarray(sf.n_events)[keep].astype("int64"), [0])),
    })
    median = None
    m = sf.quantile(0.5) if len(times) else float("nan")
    if np.isfinite(m) and m <= reach:
        lb, ub = sf.quantile_ci(0.5, alpha=1 - level, method="cloglog")
        ub = float("inf") if (not np.isfinite(ub) or ub > reach) else float(ub)
        median = Interval(float(m), float(lb), ub, level)
    return RetentionCurve(table, median, reach, int(len(time)), int(status.sum()), min_at_risk, level,
                          label, n_trunc, times, surv, se, start=start)


# --------------------------------------------------------------------------------------------
# Cohorts
# --------------------------------------------------------------------------------------------

@dataclass
class CohortComparison:
    """Retention curves per cohort and log-rank tests between them.

    Attributes
    ----------
    by : str
        The cohort column.
    curves : dict[str, RetentionCurve]
        One curve per cohort with at least ``min_users`` users (sorted by name).
    too_small : dict[str, int]
        Cohorts left out (name -> users): named, not drawn.
    sizes : pandas.DataFrame
        ``cohort``, ``users``, ``churned``, ``drawn`` for every cohort.
    tests : pandas.DataFrame
        ``test`` ("overall" or "A vs B"), ``kind`` ("overall"/"pairwise"), ``df``, ``statistic``
        (log-rank chi-square), ``p``, ``p_adjusted`` (Benjamini–Hochberg over the tests of this table,
        or of all tables passed to :func:`compare_many`), ``significant`` (p_adjusted < alpha).
        Pairwise rows only with three or more cohorts. ``note`` says why a test could not be
        made (p NaN, left out of the FDR family), e.g. cohorts never at risk at the same tenure.
    alpha : float
    soonest : str or None
        The cohort that leaves soonest; None unless the overall test is significant after FDR.
    basis : str
        How ``soonest`` was chosen: ``"median"`` (every drawn cohort reached its median) or
        ``"survival at day X"`` (the last day all curves reach); "" when the overall test is not
        significant; ``"none: no day that every curve reaches"`` when significant but no common day
        exists (e.g. registration months under delayed entry).
    horizon : float
        That common day (NaN when unused).
    given : float
        With the ``"survival at day X"`` basis, the tenure the cohorts are compared conditional on:
        the latest ``start`` among the drawn curves (0 when every curve starts at day 0); survival
        at ``horizon`` is then ``curve.at(horizon, given=given)``. Curves that start after day 0 are
        never compared by their medians (those are conditional on different tenures) unless they
        all start at the same day.
    """

    by: str
    curves: dict[str, RetentionCurve]
    too_small: dict[str, int]
    sizes: pd.DataFrame
    tests: pd.DataFrame
    alpha: float
    soonest: str | None = None
    basis: str = ""
    horizon: float = float("nan")
    given: float = 0.0

    @property
    def overall(self) -> pd.Series | None:
        """The overall test's row (None with fewer than two drawn cohorts)."""
        rows = self.tests.loc[self.tests["kind"] == "overall"]
        return None if rows.empty else rows.iloc[0]


def _cohort_labels(durations: pd.DataFrame, by: str) -> np.ndarray:
    if by not in durations.columns:
        raise KeyError(f"no cohort column {by!r}; columns: {list(durations.columns)}")
    s = durations[by]
    lab = s.astype("string").fillna("unknown").astype(str).to_numpy()
    return lab


def _logrank(time, status, entry, group) -> tuple[float, float, int, str]:
    df = int(len(np.unique(group)) - 1)
    try:
        chisq, p = survdiff(time, status, group, entry=entry)
    except np.linalg.LinAlgError:
        # e.g. registration-month cohorts under delayed entry: never at risk at the same tenure
        return float("nan"), float("nan"), df, "not testable: the cohorts are never at risk at the same time"
    if not np.isfinite(chisq):
        return float("nan"), float("nan"), df, "not testable: no cancellation while both were at risk"
    return float(chisq), float(p), df, ""


def _choose_soonest(comp: CohortComparison) -> None:
    comp.soonest, comp.basis, comp.horizon, comp.given = None, "", float("nan"), 0.0
    row = comp.overall
    if row is None or not bool(row["significant"]):
        return
    curves = comp.curves
    starts = {c.start for c in curves.values()}
    if len(starts) == 1 and all(c.median is not None for c in curves.values()):
        comp.soonest = min(curves, key=lambda k: curves[k].median.value)
        comp.basis = "median"
        return
    h = min(c.reach for c in curves.values())
    g = max(starts)
    if h <= g:
        comp.basis = "none: no day that every curve reaches"
        return
    comp.horizon, comp.given = float(h), float(g)
    comp.soonest = min(curves, key=lambda k: curves[k].at(h, given=g).value)
    comp.basis = f"survival at day {h:.0f}" + (f" of users who had stayed {g:.0f} days" if g > 0 else "")


def _adjust(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    tests = tests.copy()
    ok = tests["p"].notna().to_numpy()
    adj = np.full(len(tests), np.nan)
    if ok.any():
        adj[ok] = multipletests(tests.loc[ok, "p"].to_numpy(), method="fdr_bh")[1]
    tests["p_adjusted"] = adj
    tests["significant"] = np.nan_to_num(adj, nan=1.0) < alpha
    return tests


def compare_cohorts(durations: pd.DataFrame, by: str, *, min_users: int = 30, min_at_risk: int = 20,
                    alpha: float = 0.05, level: float = 0.95) -> CohortComparison:
    """Retention by cohort: curves, log-rank tests (overall and pairwise, BH FDR) and the cohort
    that leaves soonest.

    Parameters
    ----------
    durations : pandas.DataFrame
        A durations table with the column ``by``.
    by : str
        Cohort column (missing values form the cohort "unknown").
    min_users : int, default 30
        Cohorts with fewer users are named in ``too_small`` and neither drawn nor tested.
    min_at_risk : int, default 20
        Passed to :func:`kaplan_meier`.
    alpha : float, default 0.05
        False discovery rate.
    level : float, default 0.95
        Coverage of the curves' bands.

    Returns
    -------
    CohortComparison
    """
    groups = _cohort_labels(durations, by)
    time, status, entry = _arrays(durations)
    names, counts = np.unique(groups, return_counts=True)
    events = np.array([int(status[groups == n].sum()) for n in names])
    drawn = counts >= min_users
    sizes = pd.DataFrame({"cohort": names, "users": counts, "churned": events, "drawn": drawn})
    too_small = {str(n): int(c) for n, c, d in zip(names, counts, drawn) if not d}
    curves = {str(n): kaplan_meier(durations.loc[groups == n], min_at_risk=min_at_risk, level=level,
                                   label=str(n)) for n in names[drawn]}
    rows: list[dict[str, Any]] = []
    kept = names[drawn]
    if len(kept) >= 2:
        m = np.isin(groups, kept)
        chisq, p, df, note = _logrank(time[m], status[m], None if entry is None else entry[m], groups[m])
        rows.append({"test": "overall", "kind": "overall", "df": df, "statistic": chisq, "p": p, "note": note})
    if len(kept) >= 3:
        for a, b in combinations(kept, 2):
            m = (groups == a) | (groups == b)
            chisq, p, df, note = _logrank(time[m], status[m], None if entry is None else entry[m], groups[m])
            rows.append({"test": f"{a} vs {b}", "kind": "pairwise", "df": df, "statistic": chisq, "p": p,
                         "note": note})
    tests = pd.DataFrame(rows, columns=["test", "kind", "df", "statistic", "p", "note"])
    comp = CohortComparison(by, curves, too_small, sizes, _adjust(tests, alpha), alpha)
    _choose_soonest(comp)
    return comp


def compare_many(durations: pd.DataFrame, columns: Sequence[str], **kwargs: Any) -> dict[str, CohortComparison]:
    """:func:`compare_cohorts` for several cohort columns, with the Benjamini–Hochberg control over
    every test of every column together (the family a report reading all of them makes).

    Parameters
    ----------
    durations : pandas.DataFrame
    columns : sequence of str
        Cohort columns (absent ones are skipped).
    **kwargs
        Passed to :func:`compare_cohorts`.

    Returns
    -------
    dict[str, CohortComparison]
    """
    comps = {c: compare_cohorts(durations, c, **kwargs) for c in columns if c in durations.columns}
    if not comps:
        return comps
    alpha = next(iter(comps.values())).alpha
    allp = pd.concat([c.tests.assign(_by=k) for k, c in comps.items()], ignore_index=True)
    if allp.empty:
        return comps
    allp = _adjust(allp, alpha)
    for k, c in comps.items():
        part = allp.loc[allp["_by"] == k].drop(columns="_by").reset_index(drop=True)
        c.tests = part
        _choose_soonest(c)
    return comps


# --------------------------------------------------------------------------------------------
# Cox proportional hazards on features at an observation date
# --------------------------------------------------------------------------------------------

def observation_table(events: pd.DataFrame, as_of: int | str, *, end: int | str | None = None,
                      features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features at ``as_of`` of the users still customers then, with the time from ``as_of`` to
    cancellation (censored at ``end``).

    Features are :func:`churnlib.features.user_features` (events before ``as_of`` only, label
    pages excluded): the same leakage-safe features the classifier uses.

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events.
    as_of : int or date-like
        Observation date.
    end : int or date-like, optional
        End of follow-up; default the log's last event.
    features : pandas.DataFrame, optional
        ``user_features(events, as_of)`` when already computed (rows of other dates are ignored).

    Returns
    -------
    pandas.DataFrame
        The feature table plus ``duration_days`` and ``churned``; users who cancelled before
        ``as_of`` are left out.

    Raises
    ------
    DataValidationError
        ``as_of`` not before ``end``, or no user left.
    """
    t0 = to_epoch_ms(as_of)
    ts = events["ts"].to_numpy(dtype="int64")
    end_ms = int(ts.max()) if end is None else to_epoch_ms(end)
    if t0 >= end_ms:
        raise DataValidationError("the observation date must lie before the end of the log", column="as_of")
    if features is None:
        feats = user_features(events, t0)  # rows without a user are ignored by the feature SQL
    else:
        when = pd.Timestamp(t0, unit="ms", tz="UTC")
        feats = features.loc[features["as_of"] == when] if "as_of" in features.columns else features
    churn_rows = (events["page"] == CHURN_PAGE).to_numpy()
    lab = cancellation_labels(events.loc[churn_rows, ["userId", "ts", "page"]]).set_index("userId")
    cts = lab["churn_ts"].astype("Float64").reindex(feats["userId"].astype(str)).to_numpy(
        dtype="float64", na_value=np.nan)
    still = ~(cts < t0)
    churned = np.isfinite(cts) & (cts <= end_ms)
    stop = np.where(churned, cts, end_ms)
    out = feats.loc[still].copy()
    out[_DUR] = ((stop - t0) / MS_PER_DAY)[still]
    out[_EVENT] = churned[still].astype("int64")
    if out.empty:
        raise DataValidationError("no user is still a customer at the observation date", column="as_of")
    return out.reset_index(drop=True)


@dataclass
class CoxResult:
    """A Cox proportional-hazards model with its checks.

    Attributes
    ----------
    hazard_ratios : pandas.DataFrame
        One row per covariate: ``feature``, ``hazard_ratio``, ``low``, ``high`` (per standard
        deviation of the feature), ``coef``, ``se``, ``p``, ``sd`` (the training standard deviation:
        the ratio per unit is ``hazard_ratio ** (1 / sd)``), ``level``.
    ph_test : pandas.DataFrame
        Grambsch–Therneau test per covariate (``feature``, ``rho`` = correlation of the scaled
        Schoenfeld residuals with the rank of time, ``chisq``, ``df``, ``p``, ``p_adjusted`` (BH),
        ``fails``), plus a ``GLOBAL`` row; of the final model.
    ph_ok : bool
        No covariate fails in the final model.
    strategy : str
        ``"as is"``, ``"stratified by <names>"`` (stratifying fixed every failure), or
        ``"assumption fails: said so"`` (failures remain; see ``ph_failing``).
    strata : list[str]
        Columns the final model is stratified by (given or chosen).
    ph_failing : list[str]
        Covariates whose test fails in the final model.
    ph_failing_first : list[str]
        Covariates that failed in the first fit (before any stratification).
    ph_test_first : pandas.DataFrame
        The PH test of that first fit (same columns as ``ph_test``).
    concordance : Interval
        Harrell's C of the linear predictor on the held-out users, bootstrap interval.
    features : list[str]
        Covariates in the model.
    dropped : dict[str, str]
        Covariates left out and why (constant, collinear, not numeric, stratified).
    notes : list[str]
    n_train, n_test, events_train, events_test : int
    """

    hazard_ratios: pd.DataFrame
    ph_test: pd.DataFrame
    ph_ok: bool
    strategy: str
    strata: list[str]
    ph_failing: list[str]
    ph_failing_first: list[str]
    ph_test_first: pd.DataFrame
    concordance: Interval
    features: list[str]
    dropped: dict[str, str]
    notes: list[str]
    n_train: int
    n_test: int
    events_train: int
    events_test: int


def _prepare_columns(train: pd.DataFrame, features: Sequence[str], dropped: dict[str, str],
                     notes: list[str], r2_max: float = 0.99) -> tuple[list[str], pd.Series, pd.Series, pd.Series]:
    kept: list[str] = []
    for f in features:
        if f not in train.columns:
            dropped[f] = "not in the table"
            continue
        if not pd.api.types.is_numeric_dtype(train[f]):
            dropped[f] = "not numeric (pass it as strata instead)"
            continue
        kept.append(f)
    x = train[kept].astype("float64")
    med = x.median()
    n_nan = x.isna().sum()
    for f in kept:
        if n_nan[f]:
            notes.append(f"{f}: {int(n_nan[f])} missing values filled with the training median")
    x = x.fillna(med)
    sd = x.std(ddof=0)
    final: list[str] = []
    z_cols: list[np.ndarray] = []
    for f in kept:
        if not np.isfinite(sd[f]) or sd[f] <= 1e-12 * max(1.0, abs(float(x[f].mean()))):
            dropped[f] = "constant"
            continue
        z = ((x[f] - x[f].mean()) / sd[f]).to_numpy()
        if z_cols:
            a = np.column_stack(z_cols)
            beta, *_ = np.linalg.lstsq(a, z, rcond=None)
            r2 = 1.0 - float(np.sum((z - a @ beta) ** 2)) / float(np.sum(z ** 2))
            if r2 > r2_max:
                dropped[f] = f"collinear with the features kept before it (R² = {r2:.3f})"
                continue
        z_cols.append(z)
        final.append(f)
    return final, x[final].mean(), sd[final], med[final]


def _ph_test(res, time: np.ndarray, status: np.ndarray, names: list[str], alpha: float) -> pd.DataFrame:
    """Grambsch–Therneau test (as R's cox.zph with transform="rank" before survival 3.0, and
    lifelines' proportional_hazard_test): scaled Schoenfeld residuals against the rank of the event
    times, one chi-square (1 df) per covariate and a global one (df = covariates)."""
    resid = np.asarray(res.schoenfeld_residuals)
    ev = (status == 1) & np.all(np.isfinite(resid), axis=1)
    r = resid[ev]
    d = int(ev.sum())
    var = np.asarray(res.cov_params())
    g = stats.rankdata(time[ev])
    g = g - g.mean()
    scaled = d * r @ var
    sgg = float(np.sum(g ** 2))
    num = g @ scaled
    chisq = num ** 2 / (d * np.diag(var) * sgg)
    rho = np.array([np.corrcoef(g, scaled[:, j])[0, 1] if np.std(scaled[:, j]) > 0 else np.nan
                    for j in range(len(names))])
    p = stats.chi2.sf(chisq, 1)
    u = g @ r
    glob = float(u @ var @ u * d / sgg)
    out = pd.DataFrame({"feature": names, "rho": rho, "chisq": chisq, "df": 1, "p": p})
    out["p_adjusted"] = multipletests(p, method="fdr_bh")[1] if len(p) else p
    out["fails"] = out["p_adjusted"] < alpha
    glob_row = pd.DataFrame({"feature": ["GLOBAL"], "rho": [np.nan], "chisq": [glob], "df": [len(names)],
                             "p": [stats.chi2.sf(glob, len(names))], "p_adjusted": [np.nan], "fails": [False]})
    glob_row["fails"] = glob_row["p"] < alpha
    return pd.concat([out, glob_row], ignore_index=True)


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
                      weights: np.ndarray | None = None) -> float:
    """Harrell's C: among pairs where one user cancelled strictly before the other's time, the
    share in which that user had the higher risk (ties in risk count a half).

    Vectorised over blocks of event rows (memory O(block x n), no Python loop over pairs).
    ``weights`` (per user, e.g. bootstrap counts) weight each pair by the product.
    """
    return float(_concordance_many(np.asarray(time, float), np.asarray(event, float),
                                   np.asarray(risk, float),
                                   None if weights is None else np.asarray(weights, float)[None, :])[0])


def _concordance_many(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
                      w: np.ndarray | None, block: int = 2048) -> np.ndarray:
    n = len(time)
    w = np.ones((1, n)) if w is None else w
    ev = np.flatnonzero(event == 1)
    num = np.zeros(w.shape[0])
    den = np.zeros(w.shape[0])
    for lo in range(0, len(ev), block):
        e = ev[lo:lo + block]
        later = time[None, :] > time[e, None]
        conc = later * ((risk[None, :] < risk[e, None]) + 0.5 * (risk[None, :] == risk[e, None]))
        we = w[:, e]
        num += np.einsum("be,bj,ej->b", we, w, conc, optimize=True)
        den += np.einsum("be,bj,ej->b", we, w, later.astype(float), optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def concordance_interval(time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, n_boot: int = 200,
                         level: float = 0.95, seed: int = 0) -> Interval:
    """Harrell's C with a percentile bootstrap interval over users
    (:func:`churnlib.intervals.bootstrap_sampler`)."""
    time, event, risk = (np.asarray(a, dtype="float64") for a in (time, event, risk))
    value = concordance_index(time, event, risk)
    n = len(time)
    if n < 2 or n_boot < 1:
        return Interval(value, level=level)
    draw = bootstrap_sampler(None, n, np.random.default_rng(seed))
    w = np.stack([np.bincount(draw(), minlength=n) for _ in range(n_boot)]).astype("float64")
    samples = np.concatenate([_concordance_many(time, event, risk, w[i:i + 50])
                              for i in range(0, n_boot, 50)])
    return Interval.from_samples(value, samples, level)


def _converged(res) -> bool:
    ok = getattr(res, "mle_retvals", {}) or {}
    return (bool(ok.get("converged", True)) and bool(np.all(np.isfinite(res.params)))
            and bool(np.all(np.isfinite(res.bse))))


def _fit_ph(x: np.ndarray, time: np.ndarray, status: np.ndarray, strata: np.ndarray | None,
            notes: list[str] | None = None):
    """PHReg fit: Newton first; BFGS when Newton fails.

    statsmodels' Newton has no step halving: with a heavy-tailed covariate (e.g. a rate 30 SD out)
    its steps overflow and it returns NaN coefficients or stops unconverged, with a warning only.
    """
    model = PHReg(time, x, status=status, strata=strata, ties="breslow")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(disp=False)
        if not _converged(res):
            res = model.fit(disp=False, method="bfgs", maxiter=2000)
            if notes is not None and _converged(res):
                notes.append("fitted by BFGS (Newton's steps overflowed on a heavy-tailed feature)")
    if not _converged(res):
        raise ValueError(f"the Cox fit did not converge with {x.shape[1]} covariates: use fewer "
                         "features, e.g. churnlib.features.MAIN_FEATURES")
    return res


def fit_cox(table: pd.DataFrame, *, features: Sequence[str], strata: str | Sequence[str] | None = None,
            test_size: float = 0.3, seed: int = 0, duration_col: str = _DUR, event_col: str = _EVENT,
            id_col: str = "userId", level: float = 0.95, ph_alpha: float = 0.05,
            max_strata_levels: int = 5, n_boot: int = 200) -> CoxResult:
    """Cox proportional hazards on features at an observation date, with the PH check.

    Steps: split users into training and held-out (``test_size``, ``seed``); fill missing values
    with training medians; drop constant and collinear columns (noted); standardise on the
    training users (hazard ratios per standard deviation); fit (Breslow ties); test proportional
    hazards per covariate (Grambsch–Therneau, BH across covariates at ``ph_alpha``). When a
    *categorical-like* covariate (at most ``max_strata_levels`` distinct values) fails, refit
    stratified by it; failures of other covariates are reported, not hidden. Harrell's C of the
    linear predictor on the held-out users, with a bootstrap interval.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per user, e.g. :func:`observation_table`.
    features : sequence of str
        Numeric feature columns.
    strata : str or sequence of str, optional
        Columns to stratify by from the start.
    test_size : float, default 0.3
        Share of users held out for the concordance.
    seed : int, default 0
        Split and bootstrap seed.
    duration_col, event_col, id_col : str
        Column names.
    level : float, default 0.95
        Coverage of the hazard ratios' and concordance's intervals.
    ph_alpha : float, default 0.05
        FDR of the PH tests.
    max_strata_levels : int, default 5
        A covariate with at most this many distinct values may be stratified by.
    n_boot : int, default 200
        Bootstrap draws for the concordance.

    Returns
    -------
    CoxResult

    Raises
    ------
    ValueError
        Too few events to fit (fewer than 10 in the training users) or no usable feature.
    """
    strata_cols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    for c in (duration_col, event_col, *strata_cols):
        if c not in table.columns:
            raise KeyError(f"no column {c!r} in the table")
    ids = table[id_col].astype(str).to_numpy() if id_col in table.columns else np.arange(len(table)).astype(str)
    users = np.unique(ids)
    rng = np.random.default_rng(seed)
    test_users = rng.choice(users, size=int(round(test_size * len(users))), replace=False)
    is_test = np.isin(ids, test_users)
    train, test = table.loc[~is_test], table.loc[is_test]
    if int(train[event_col].sum()) < 10:
        raise ValueError(f"too few cancellations among the training users ({int(train[event_col].sum())}) "
                         "to fit a Cox model")
    dropped: dict[str, str] = {}
    notes: list[str] = []
    feats = [f for f in features if f not in strata_cols]
    for f in features:
        if f in strata_cols:
            dropped[f] = "stratified by"
    cols, mean, sd, med = _prepare_columns(train, feats, dropped, notes)
    if not cols:
        raise ValueError("no usable feature for the Cox model")

    def design(df: pd.DataFrame, use: list[str]) -> np.ndarray:
        return ((df[use].astype("float64").fillna(med[use]) - mean[use]) / sd[use]).to_numpy()

    t_tr = train[duration_col].to_numpy(dtype="float64")
    e_tr = train[event_col].to_numpy(dtype="float64")

    def strata_codes(df: pd.DataFrame, names: list[str]) -> np.ndarray | None:
        if not names:
            return None
        key = df[names].astype(str).agg("|".join, axis=1)
        return pd.factorize(key)[0]

    def fit(use: list[str], st: list[str]):
        res = _fit_ph(design(train, use), t_tr, e_tr, strata_codes(train, st), notes)
        return res, _ph_test(res, t_tr, e_tr, use, ph_alpha)

    use = list(cols)
    res, ph = fit(use, strata_cols)
    ph_first = ph
    failing_first = ph.loc[(ph["feature"] != "GLOBAL") & ph["fails"], "feature"].tolist()
    strat = list(strata_cols)
    categorical = [f for f in failing_first if train[f].nunique(dropna=True) <= max_strata_levels]
    if categorical:
        for f in categorical:
            dropped[f] = "stratified by (its hazards are not proportional)"
        use = [f for f in use if f not in categorical]
        strat = strat + categorical
        if not use:
            raise ValueError("no feature left after stratifying")
        res, ph = fit(use, strat)
    failing = ph.loc[(ph["feature"] != "GLOBAL") & ph["fails"], "feature"].tolist()
    if not failing and categorical:
        strategy = "stratified by " + ", ".join(categorical)
    elif not failing:
        strategy = "as is"
    else:
        strategy = "assumption fails: said so"
        notes.append("proportional hazards fail for " + ", ".join(failing)
                     + ": their hazard ratios are averages over time")
    params = np.asarray(res.params)
    ci = np.asarray(res.conf_int(alpha=1 - level))
    hr = pd.DataFrame({"feature": use, "hazard_ratio": np.exp(params), "low": np.exp(ci[:, 0]),
                       "high": np.exp(ci[:, 1]), "coef": params, "se": np.asarray(res.bse),
                       "p": np.asarray(res.pvalues), "sd": sd[use].to_numpy(), "level": level})
    if len(test) >= 2 and int(test[event_col].sum()) >= 1:
        risk = design(test, use) @ params
        conc = concordance_interval(test[duration_col].to_numpy(float), test[event_col].to_numpy(float),
                                    risk, n_boot=n_boot, level=level, seed=seed)
    else:
        conc = Interval(float("nan"), level=level)
        notes.append("no held-out cancellation: concordance not measured")
    return CoxResult(hr, ph, not failing, strategy, strat, failing, failing_first, ph_first, conc, use, dropped, notes,
                     int(len(train)), int(len(test)), int(train[event_col].sum()), int(test[event_col].sum()))


# --------------------------------------------------------------------------------------------
# Expected retention of today's users
# --------------------------------------------------------------------------------------------

def _km_arrays(time, status, entry, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    time, status, entry = _conditional(time, status, entry, start)
    if len(time) == 0 or status.sum() == 0:
        return np.empty(0), np.empty(0)
    sf = _fit_km(time, status, entry)
    return np.asarray(sf.surv_times, dtype="float64"), np.asarray(sf.surv_prob, dtype="float64")


def expected_retention(durations: pd.DataFrame, *, horizons: Sequence[float] = (30, 60, 90),
                       active_only: bool = True, active_days: float = 30, level: float = 0.95, seed: int = 0,
                       n_boot: int = 200, min_at_risk: int = 20) -> pd.DataFrame:
    """How many of today's users will still be here in ``horizons`` days.

    For each user still a customer at the end (not cancelled) with tenure ``t`` (their
    ``duration_days``), the chance of staying ``h`` more days is ``S(t+h)/S(t)`` from the
    Kaplan–Meier curve of their group; the sum over users is the expected number still here. It is
    only computed for users with ``t+h`` within the curve's reach (never extrapolated): the others
    are counted in ``not_estimable`` with the reason. Interval: bootstrap over users (the curve is
    refitted on each draw).

    When the group's curve starts at ``t0 > 0`` (see :func:`kaplan_meier`: too few users at risk
    at shorter tenures), the curve is conditional on having stayed ``t0`` days; ``S(t+h)/S(t)`` for
    ``t >= t0`` is the same ratio on it, so the meaning is unchanged. A user with tenure ``t < t0``
    would need ``S(t)``, which is not estimated: such users are counted in ``not_estimable``, the
    reason says so, and ``start`` gives ``t0``.

    Groups: ``"all"`` (curve from every user) and ``"paying"`` (users whose level at their last
    event is paid; curve from the users paying at their last event, so that paying subscribers'
    own churn is used), the latter only when the table has ``level_end``.

    Parameters
    ----------
    durations : pandas.DataFrame
        A durations table (``last_ts``, ``stop`` and ``level_end`` used when present).
    horizons : sequence of float, default (30, 60, 90)
        Days ahead.
    active_only : bool, default True
        Count only users with an event in the last ``active_days`` days of the log (when the
        table has ``last_ts``/``stop``); False: every user who has not cancelled.
    active_days : float, default 30
    level : float, default 0.95
    seed : int, default 0
    n_boot : int, default 200
    min_at_risk : int, default 20
        The curve's reach (see :func:`kaplan_meier`).

    Returns
    -------
    pandas.DataFrame
        One row per group and horizon: ``group``, ``horizon``, ``users`` (today's users in the
        group), ``estimable``, ``not_estimable``, ``expected``, ``expected_low``,
        ``expected_high`` (users still here among the estimable), ``share``, ``share_low``,
        ``share_high`` (expected / estimable), ``level``, ``start`` (the tenure the group's curve
        starts at, 0 or ``t0``), ``reason`` ("" when every user counts).
    """
    time, status, entry = _arrays(durations)
    ent = np.zeros_like(time) if entry is None else entry
    current = status == 0
    if active_only and {"last_ts", "stop"} <= set(durations.columns):
        end = float(np.nanmax(durations["stop"].to_numpy(dtype="float64")))
        current &= durations["last_ts"].to_numpy(dtype="float64") >= end - active_days * MS_PER_DAY
    groups: dict[str, np.ndarray] = {"all": np.ones(len(time), dtype=bool)}
    if "level_end" in durations.columns:
        groups["paying"] = durations["level_end"].astype(str).to_numpy() == "paid"
    hs = np.asarray(list(horizons), dtype="float64")
    rows: list[dict[str, Any]] = []
    for gi, (name, member) in enumerate(groups.items()):
        idx = np.flatnonzero(member)
        t, s, e = time[idx], status[idx], ent[idx]
        cur = current[idx]
        ge = None if entry is None else e
        t0 = _start(t, ge, min_at_risk) if len(idx) else 0.0
        reach = _reach(t, ge, min_at_risk, t0) if len(idx) else 0.0
        if len(idx):
            ts_, sp = _km_arrays(t, s, ge, t0)
        # value
        tt = t[cur]
        vals, est = [], []
        for h in hs:
            ok = (tt >= t0) & (tt + h <= reach)
            est.append(ok)
            if len(idx) and ok.any():
                s0 = _step(ts_, sp, tt[ok])
                s1 = _step(ts_, sp, tt[ok] + h)
                with np.errstate(invalid="ignore", divide="ignore"):
                    vals.append(float(np.nansum(np.where(s0 > 0, s1 / s0, 0.0))))
            else:
                vals.append(float("nan"))
        # bootstrap over the group's users
        boots = np.full((n_boot, len(hs)), np.nan)
        if len(idx) >= 2 and n_boot > 0 and cur.any():
            rng = np.random.default_rng([seed, gi])
            draw = bootstrap_sampler(None, len(idx), rng)
            for b in range(n_boot):
                k = draw()
                bt, bs, be, bc = t[k], s[k], e[k], cur[k]
                bts, bsp = _km_arrays(bt, bs, None if entry is None else be, t0)
                btt = bt[bc]
                for j, h in enumerate(hs):
                    ok = (btt >= t0) & (btt + h <= reach)
                    if ok.any():
                        s0 = _step(bts, bsp, btt[ok])
                        s1 = _step(bts, bsp, btt[ok] + h)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            # the share among the draw's estimable users (a sum over a draw with
                            # more current users than today's could exceed them)
                            boots[b, j] = float(np.nansum(np.where(s0 > 0, s1 / s0, 0.0))) / int(ok.sum())
        for j, h in enumerate(hs):
            n_cur = int(cur.sum())
            n_est = int(est[j].sum())
            share = (Interval.from_samples(vals[j] / n_est, boots[:, j], level) if n_est
                     else Interval(float("nan"), level=level))
            iv = Interval(share.value * n_est, share.low * n_est, share.high * n_est, level) if n_est else share
            n_young = int((tt < t0).sum())
            young = (f"{n_young} of {n_cur} users have been subscribed for less than {t0:.0f} days, where the "
                     f"curve starts (fewer than {min_at_risk} users are followed at shorter tenures)")
            if n_cur == 0:
                reason = "no current users in this group"
            elif n_est == 0 and n_young == n_cur:
                reason = f"cannot be estimated: {young}"
            elif n_est == 0:
                reason = (f"cannot be estimated: every user's tenure + {h:g} days lies beyond the curve's "
                          f"reach ({reach:.0f} days, where fewer than {min_at_risk} users remain at risk)"
                          + (f"; {young}" if n_young else ""))
            elif n_est < n_cur:
                late = n_cur - n_est - n_young
                parts = ([f"for {late} of {n_cur} users tenure + {h:g} days lies beyond the curve's reach "
                          f"({reach:.0f} days)"] if late else []) + ([young] if n_young else [])
                reason = f"cannot be estimated for {n_cur - n_est} of {n_cur} users: " + "; ".join(parts)
                if not n_young:
                    reason = (f"cannot be estimated for {n_cur - n_est} of {n_cur} users: tenure + {h:g} days "
                              f"lies beyond the curve's reach ({reach:.0f} days)")
            else:
                reason = ""
            rows.append({"group": name, "horizon": float(h), "users": n_cur, "estimable": n_est,
                         "not_estimable": n_cur - n_est, "expected": iv.value, "expected_low": iv.low,
                         "expected_high": iv.high, "share": share.value, "share_low": share.low,
                         "share_high": share.high, "level": level, "start": float(t0), "reason": reason})
    return pd.DataFrame(rows)
