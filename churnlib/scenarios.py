"""Simulated new windows for monitoring: drift scenarios, the reference window, false alarms.

* :func:`scenario_config` / :func:`scenario_window` -- simulated new windows with planted drift
  (more adverts, an app-error spike, a new user cohort) or none (``same_process``), over the
  reference log's song catalogue (``catalogue_seed`` of :func:`churnlib.simulate.simulate_events`):
  with a catalogue of its own, a fresh sample of the same behaviour already shifts per-hour features
  enough to fire the monitor;
* :func:`reference_window` -- the log the champion was trained on and its feature table;
* :func:`false_alarm_rate` -- how often the monitor fires on two fresh samples of the *same*
  process (with ~100 features and two statistics each, multiple testing is the main risk of a drift
  monitor). At the CI size (about 250 current users per window, 99 features, default thresholds)
  it fired on 2 of 40 pairs in development (5%, Wilson 95% interval 1-17%); the notebook measures
  the rate again for the sizes it monitors.

Performance, recommendations and champion/challenger decisions are in :mod:`churnlib.monitoring`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnlib import features as feats
from churnlib.datasets import default_event_log
from churnlib.drift import KS_THRESHOLD, MIN_ROWS, PSI_THRESHOLD, drift_report, latest_rows, stable_floats
from churnlib.eda import Rate
from churnlib.intervals import Interval
from churnlib.labels import to_epoch_ms
from churnlib.load import detect_kind, load_events
from churnlib.schema import CHURN_PAGE
from churnlib.simulate import SimulatorConfig, event_chunks, simulate_events, write_event_log
from churnlib.training import training_table

__all__ = [
    "FalseAlarmResult",
    "ReferenceWindow",
    "SCENARIOS",
    "false_alarm_rate",
    "reference_window",
    "scenario_config",
    "scenario_window",
    "simulate_window",
]


# --------------------------------------------------------------------------------------------
# Simulated windows
# --------------------------------------------------------------------------------------------

#: Drift scenarios: name -> (plain description, changes to the calibrated simulator). Factors
#: multiply the base value; ``"set"`` replaces it.
SCENARIOS: dict[str, tuple[str, dict[str, tuple[str, float]]]] = {
    "same_process": ("a fresh sample of users from the same process (no change)", {}),
    "more_adverts": ("twice as many adverts per song for free users (an advertising push)",
                     {"advert_free": ("mul", 2.0)}),
    "error_spike": ("five times the app-error rate (a faulty release)", {"error": ("mul", 5.0)}),
    "new_cohort": ("a new cohort: many users registering during the window, fewer of them paid, "
                   "coming back less often (approximated with the simulator's registration share, "
                   "starting paid share and session rate)",
                   {"p_new_user": ("set", 0.30), "p_paid_start": ("set", 0.10),
                    "session_rate_median": ("mul", 0.75)}),
}


def scenario_config(name: str, base: SimulatorConfig | None = None) -> SimulatorConfig:
    """The simulator configuration of a drift scenario.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIOS`: ``"same_process"``, ``"more_adverts"``, ``"error_spike"``,
        ``"new_cohort"``.
    base : churnlib.simulate.SimulatorConfig, optional
        The reference process (default: the calibrated configuration).

    Returns
    -------
    churnlib.simulate.SimulatorConfig
        A copy of ``base`` with the scenario's changes (``dataclasses.replace``).
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {list(SCENARIOS)}")
    base = base if base is not None else SimulatorConfig()
    changes = {k: (getattr(base, k) * v if op == "mul" else v) for k, (op, v) in SCENARIOS[name][1].items()}
    return dataclasses.replace(base, **changes)


def simulate_window(config: SimulatorConfig | None = None, *, n_users: int = 300, days: float = 60, seed: int = 8,
                    catalogue_seed: int = 7, start: str = "2018-12-03", id_offset: int = 0,
                    out: str | os.PathLike | None = None, n_jobs: int = 1) -> pd.DataFrame | Path:
    """Simulate new users of the *same service*: a fresh user sample over an unchanged catalogue.

    Two simulator seeds are two services (each draws its own song catalogue), so the users come from
    ``seed`` and the catalogue from ``catalogue_seed`` (the reference log's seed); see
    :func:`churnlib.simulate.simulate_events`.

    Parameters
    ----------
    config : SimulatorConfig, optional
        The process (default: the calibrated one; see :func:`scenario_config`).
    n_users, days, start
        Size and time span of the window (UTC start).
    seed : int
        Seed of the users (use one the reference did not use).
    catalogue_seed : int
        Seed of the reference log, whose catalogue the window shares.
    id_offset : int
        User ids are ``id_offset + 1 ... id_offset + n_users`` (keeps them apart from the reference's).
    out : path-like, optional
        Write the events to this parquet file instead (DuckDB then reads it directly, much faster
        than from pandas for large windows).
    n_jobs : int, default 1
        Simulation threads (the events do not depend on it).

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        Events in the Sparkify schema, or ``out``.
    """
    kw = dict(start=start, config=config, catalogue_seed=catalogue_seed, id_offset=id_offset, n_jobs=n_jobs)
    if out is None:
        return simulate_events(n_users, days, seed, **kw)
    write_event_log(out, n_users, days, seed, chunk_users=2000, **kw)
    return Path(out)


def scenario_window(name: str, *, n_users: int = 300, days: float = 60, seed: int = 8, catalogue_seed: int = 7,
                    start: str = "2018-12-03", horizon_days: float = 14, base: SimulatorConfig | None = None,
                    all_dates: bool = True, id_offset: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Simulate a new window under a scenario and build its labelled feature table.

    Parameters
    ----------
    name : str
        Scenario (see :func:`scenario_config`).
    n_users, days, seed, catalogue_seed, start, id_offset, n_jobs
        See :func:`simulate_window`. The default start is nine weeks after the simulator's default
        start: a later window on the same weekday, so the weekly pattern stays aligned.
    horizon_days : float
        Label window after each observation date.
    base : SimulatorConfig, optional
        The reference process.
    all_dates : bool, default True
        Stack the weekly observation dates over the log's second half (for performance checks);
        False keeps only the latest (one row per user, for drift).

    Returns
    -------
    pandas.DataFrame
        As :func:`churnlib.features.build_features`, float columns through
        :func:`churnlib.drift.stable_floats`.
    """
    with tempfile.TemporaryDirectory(prefix="churnlib-window-") as tmp:
        events = simulate_window(scenario_config(name, base), n_users=n_users, days=days, seed=seed,
                                 catalogue_seed=catalogue_seed, start=start, id_offset=id_offset,
                                 out=Path(tmp) / "events.parquet", n_jobs=n_jobs)
        dates = feats.observation_dates(events, horizon_days)
        table = feats.build_features(events, dates if all_dates else dates[-1:], horizon_days=horizon_days)
    return stable_floats(table)


@dataclass
class ReferenceWindow:
    """The reference window: the event log the champion was trained on, and its feature table.

    Attributes
    ----------
    table : pandas.DataFrame
        Labelled features at the log's weekly observation dates (float columns through
        :func:`churnlib.drift.stable_floats`).
    log : pathlib.Path
        The event log.
    start : pandas.Timestamp
        The log's first day (UTC midnight).
    n_users : int
        Users in the log.
    simulated : bool
        The log is a simulated default log (so simulated new windows share its process).
    catalogue_seed : int
        The simulator seed of that log (new windows reuse its song catalogue).
    source : str
        Where the table came from.
    notes : list of str
        Plain remarks for the report (e.g. why a given file was not used).
    """

    table: pd.DataFrame
    log: Path
    start: pd.Timestamp
    n_users: int
    simulated: bool
    catalogue_seed: int
    source: str
    notes: list[str]

    @property
    def latest(self) -> pd.DataFrame:
        """One row per user at the latest observation date (what drift is measured on)."""
        return latest_rows(self.table)

    @property
    def as_of(self) -> pd.Timestamp:
        """The latest observation date."""
        return self.table["as_of"].max()


#: Name of a log written by :func:`churnlib.datasets.default_event_log` (its size and seed).
_SIMULATED_LOG = re.compile(r"simulated_u\d+_d[\d.]+_s(\d+)_")


def _log_span(log: Path) -> tuple[pd.Timestamp, int]:
    """First day (UTC midnight) and number of users of an event log."""
    if _SIMULATED_LOG.match(log.name) and log.suffix == ".parquet":
        # the simulator's own parquet passes strict loading unchanged: read two numbers, not the log
        with duckdb.connect() as con:
            first, users = con.execute("SELECT min(ts), count(DISTINCT userId) FILTER (WHERE userId <> '') "
                                       "FROM read_parquet(?)", [str(log)]).fetchone()
    else:
        events = load_events(log).events
        first, users = events["ts"].min(), events.loc[events["userId"] != "", "userId"].nunique()
    return pd.Timestamp(first, unit="ms", tz="UTC").floor("D"), int(users)


def reference_window(data: str | os.PathLike | None = None, data_kind: str | None = None, *, n_users: int = 300,
                     days: float = 60, seed: int = 7, horizon_days: float = 14,
                     output_dir: str | os.PathLike | None = None) -> ReferenceWindow:
    """The reference window of the monitoring notebook.

    * ``data`` None: the simulated default log, with the feature table ``02_features`` wrote when it
      is there (the champion's training data), else built the same way.
    * an event log: that log and its features (via :func:`churnlib.training.training_table`).
    * a snapshot table: not usable -- monitoring compares two windows of an event log -- so the
      simulated default log is used instead, and a note says so.
    """
    notes: list[str] = []
    kind = (data_kind or detect_kind(Path(data))) if data is not None else None
    if kind is not None and kind != "events":
        notes.append(f"`{data}` is a one-row-per-user table: drift monitoring compares two windows of an event "
                     "log, so the simulated default log is the reference instead.")
    log = Path(data) if kind == "events" else default_event_log(n_users, days, seed, output_dir=output_dir)
    start, n_log_users = _log_span(log)
    table = source = None
    if kind in (None, "events"):
        table, _, _, source, _ = training_table(data if kind == "events" else None, "events" if kind else None,
                                                n_users=n_users, days=days, seed=seed, horizon_days=horizon_days,
                                                output_dir=output_dir)
    if table is None or not {"userId", "as_of", "churned"} <= set(table.columns):
        dates = feats.observation_dates(log, horizon_days)
        table = feats.build_features(log, dates, horizon_days=horizon_days)
        source = f"features built from the event log `{log}` ({len(dates)} observation dates)"
    # a log written by churnlib.datasets.default_event_log names its size and seed
    sim = _SIMULATED_LOG.match(log.name)
    if sim is None:
        notes.append("The new windows are simulated by the built-in simulator while the reference log is not: part "
                     "of any drift below is the gap between the simulator and the real service.")
    catalogue_seed = int(sim.group(1)) if sim else seed
    return ReferenceWindow(stable_floats(table), log, start, n_log_users, sim is not None, catalogue_seed, source,
                           notes)


# --------------------------------------------------------------------------------------------
# False alarms
# --------------------------------------------------------------------------------------------

@dataclass
class FalseAlarmResult:
    """How often the monitor fires on two fresh samples of the same process.

    Attributes
    ----------
    rate : churnlib.eda.Rate
        Pairs with at least one drifted feature, of all pairs (Wilson interval).
    n_drifted : numpy.ndarray
        Drifted features per pair.
    by_feature : pandas.Series
        How many pairs flagged each feature (features never flagged left out).
    n_reference, n_current : list of int
        Rows of each pair's two samples.
    """

    rate: Rate
    n_drifted: np.ndarray
    by_feature: pd.Series
    n_reference: list[int]
    n_current: list[int]

    @property
    def interval(self) -> Interval:
        """The false-alarm rate with its Wilson 95% interval."""
        lo, hi = self.rate.interval
        return Interval(self.rate.value, lo, hi)

    @property
    def n_pairs(self) -> int:
        """Pairs compared."""
        return int(self.rate.total)

    def as_list(self) -> list[float]:
        """``[rate, low, high]``."""
        return [float(x) for x in self.interval.as_tuple()]


def _current_users(log: Path, t: int) -> pd.DataFrame:
    """Features at ``t`` of the users a feature table holds then: active before it and not yet
    cancelled (the eligibility of :func:`churnlib.labels.observation_labels`; drift needs no labels,
    so none are built)."""
    table = feats.user_features(log, t)
    with duckdb.connect() as con:
        gone = con.execute("SELECT DISTINCT CAST(userId AS VARCHAR) FROM read_parquet(?) WHERE page = ? AND ts < ?",
                           [str(log), CHURN_PAGE, t]).fetchall()
    return table[~table["userId"].isin({g[0] for g in gone})]


def _same_process_users(n_users: int, days: float, seed: int, catalogue_seed: int, start: str,
                        horizon_days: float, as_of: str | None, base: SimulatorConfig | None,
                        n_jobs: int) -> pd.DataFrame:
    """Features of the users current at ``as_of`` in one simulated same-process log.

    Features are per user, so the log is simulated and featurised one chunk of users at a time: the
    same table as from the whole log at once, with memory bounded by a chunk (the whole log of a
    full-size run is about 10^8 events).
    """
    chunks = event_chunks(n_users, days, seed, start=start, config=scenario_config("same_process", base),
                          chunk_users=2000, catalogue_seed=catalogue_seed, n_jobs=n_jobs)
    with tempfile.TemporaryDirectory(prefix="churnlib-false-alarms-") as tmp:
        def save(i: int, table: pa.Table, compression: str | None = "snappy") -> Path:
            path = Path(tmp) / f"chunk_{i:05d}.parquet"
            pq.write_table(table, path, compression=compression)
            return path

        if as_of is not None:
            t = to_epoch_ms(as_of)
            parts = []
            for i, table in enumerate(chunks):
                # features and cancellations are read strictly before t: later events need no writing
                # (a short-lived file: no compression)
                path = save(i, table.filter(pc.less(table.column("ts"), t)), None)
                parts.append(_current_users(path, t))
                path.unlink()
        else:  # the latest observation date of the whole log, then every chunk at it
            files, first, last = [], [], []
            for i, table in enumerate(chunks):
                files.append(save(i, table))
                first.append(pc.min(table.column("ts")).as_py())
                last.append(pc.max(table.column("ts")).as_py())
            span = pd.DataFrame({"ts": [min(first), max(last)]})
            t = to_epoch_ms(feats.observation_dates(span, horizon_days)[-1])
            parts = [_current_users(f, t) for f in files]
    table = pd.concat(parts, ignore_index=True)
    # the order churnlib.features.user_features gives the whole log
    table = table.sort_values(["as_of", "userId"], kind="mergesort").reset_index(drop=True)
    return stable_floats(table)


def false_alarm_rate(n_samples: int = 10, *, n_users: int = 300, n_users_reference: int | None = None,
                     days: float = 60, seed: int = 1000, catalogue_seed: int = 7, start: str = "2018-10-01",
                     horizon_days: float = 14, as_of: str | None = None, base: SimulatorConfig | None = None,
                     features: Sequence[str] | None = None, psi_threshold: float = PSI_THRESHOLD,
                     ks_threshold: float = KS_THRESHOLD, bins: int = 10, min_rows: int = MIN_ROWS,
                     n_jobs: int = 1) -> FalseAlarmResult:
    """Run the monitor on ``n_samples`` pairs of fresh samples from one process and count alarms.

    The simulator gives every user an independent random stream, so one log of
    ``n_samples * (n_users_reference + n_users)`` users cut into consecutive blocks of users is
    ``2 * n_samples`` independent samples (simulated and featurised chunk by chunk).

    Parameters
    ----------
    n_samples : int
        Pairs compared.
    n_users, n_users_reference : int
        Simulated users of the new and of the reference sample of each pair (``n_users_reference``
        defaults to ``n_users``); use the sizes of the windows being monitored, since the false
        alarms depend on them.
    days, seed, catalogue_seed, start, horizon_days, base
        The simulated process and its log (see :func:`simulate_window`); the samples are the users
        current at the latest observation date that leaves ``horizon_days`` of log (as in
        :func:`scenario_window`).
    as_of : str, optional
        The observation date instead (e.g. the reference window's).
    features, psi_threshold, ks_threshold, bins, min_rows
        As for :func:`churnlib.drift.drift_report`.
    n_jobs : int, default 1
        Simulation threads (the result does not depend on it).

    Returns
    -------
    FalseAlarmResult
    """
    n_ref = n_users_reference or n_users
    block = n_ref + n_users
    table = _same_process_users(n_samples * block, days, seed, catalogue_seed, start, horizon_days, as_of, base,
                                n_jobs)
    idx = table["userId"].astype(int).to_numpy() - 1
    pair, offset = idx // block, idx % block
    counts, flagged, n_r, n_c = [], {}, [], []
    for i in range(n_samples):
        ref = table[(pair == i) & (offset < n_ref)]
        cur = table[(pair == i) & (offset >= n_ref)]
        rep = drift_report(ref, cur, features=features, psi_threshold=psi_threshold, ks_threshold=ks_threshold,
                           bins=bins, min_rows=min_rows)
        counts.append(len(rep.drifted))
        n_r.append(len(ref))
        n_c.append(len(cur))
        for f in rep.drifted["feature"]:
            flagged[f] = flagged.get(f, 0) + 1
    counts = np.array(counts)
    by = pd.Series(flagged, dtype="int64").sort_values(ascending=False, kind="mergesort")
    return FalseAlarmResult(Rate(int((counts > 0).sum()), n_samples), counts, by, n_r, n_c)
