"""Score users with a saved model: ``python -m churnlib score``.

Input is either a feature/snapshot table with the model's feature columns, or a raw event log, for
which features are built at an observation date ``as_of`` (default: the end of the log's last day;
:func:`parse_as_of`) by the code that built the training table, from the events before it (users who
cancelled before it are left out: they are no longer customers). :func:`score_events` is that path
in memory, shared by the command line and the prediction service. Output: one row per user with the churn probability, the label
at the model's threshold and a risk band (low / medium / high), and optionally each user's top three
reasons: the features that raise that user's risk most, in plain words (:mod:`churnlib.explain`).

Before scoring, the input is checked against the model's feature schema
(:func:`churnlib.input_checks.check_input`): a missing id column, repeated ids or missing feature
columns are errors naming the file and column; numbers stored as text, unseen categories, missing
values and values far outside the training range are counted in the data-quality account and
flagged per row in the ``input_warnings`` column (empty for a clean row). ``strict=True`` turns
each of them into an error naming the line and column. :func:`score_command` reads tables with
:func:`churnlib.load.load_table` and logs with :func:`churnlib.load.load_events`, returns the account
as ``frame.attrs["quality"]`` and writes it beside the risk file (``<out>.quality.json``), only once
scoring succeeded: a failed run leaves an existing output as it was.

Speed: probabilities run the model's own pipeline unchanged (identical outputs), with threads for
the model step only; the ``ColumnTransformer`` stays in-process (its ``n_jobs`` spawns worker
processes and memory-maps the data, which costs far more than the transform itself). Reasons use the
fastest exact SHAP route of the model (LightGBM ``pred_contrib``, XGBoost ``pred_contribs``) and
are much slower than probabilities.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlib.features import user_features
from churnlib.files import atomic_write, write_json
from churnlib.input_checks import InputCheck, check_input
from churnlib.labels import to_epoch_ms
from churnlib.load import MIN_PLAUSIBLE_MS, DataQuality, DataValidationError, EventLog, load_events, load_table
from churnlib.model import ChurnModel
from churnlib.outputs import check_output, quality_path
from churnlib.schema import CHURN_PAGE, MS_PER_DAY

__all__ = ["OUTPUT_COLUMNS", "REASON_COLUMNS", "ScoredEvents", "WARNINGS_COLUMN", "default_as_of",
           "features_from_events", "parse_as_of", "score_checked", "score_command", "score_events",
           "score_frame"]

#: Columns of the risk file after the id column.
OUTPUT_COLUMNS: tuple[str, ...] = ("churn_probability", "churn_label", "risk_band")
#: Columns added by ``reasons=True``: each user's top three risk-raising features, in plain words.
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")
#: Last column: the row's input problems in plain words, empty when none (:func:`churnlib.input_checks.check_input`).
WARNINGS_COLUMN = "input_warnings"


def score_frame(model: ChurnModel, frame: pd.DataFrame, id_col: str | None = None,
                n_jobs: int = 2, reasons: bool = True, *, strict: bool = False,
                allow_duplicates: bool = False) -> pd.DataFrame:
    """Score a table in memory, with each user's top three reasons and input warnings.

    Parameters
    ----------
    model : churnlib.model.ChurnModel
        From :meth:`ChurnModel.load <churnlib.model.ChurnModel.load>`.
    frame : pandas.DataFrame
        Rows to score, with the id column and the model's feature columns (never changed).
    id_col : str, optional
        Id column (default: the training id column). It must be present: rows are never numbered
        in its place.
    n_jobs : int, default 2
        Threads for models that predict in parallel (tree ensembles); scoring is a batch job.
    reasons : bool, default True
        Add :data:`REASON_COLUMNS`: per user, the (at most) three features whose SHAP values raise
        that user's churn risk most, e.g. ``"days since last login: 23 (raises risk)"``
        (:meth:`churnlib.model.ChurnModel.explain`). Fewer than three features raising the risk leave
        the remaining columns missing (empty in the CSV); the constant baseline model leaves all of
        them missing. Much slower than the probabilities (SHAP values for every user and feature).
    strict, allow_duplicates : bool, default False
        See :func:`churnlib.input_checks.check_input`.

    Returns
    -------
    pandas.DataFrame
        The id column (and ``as_of`` for a stacked feature table), :data:`OUTPUT_COLUMNS`
        (and :data:`REASON_COLUMNS`) and :data:`WARNINGS_COLUMN`, in input order.

    Raises
    ------
    churnlib.load.DataValidationError
        See :func:`churnlib.input_checks.check_input`.
    """
    check = check_input(model, frame, id_col=id_col, strict=strict, allow_duplicates=allow_duplicates)
    return score_checked(model, check, n_jobs=n_jobs, reasons=reasons)


def score_checked(model: ChurnModel, check: InputCheck, *, n_jobs: int, reasons: bool) -> pd.DataFrame:
    """Score rows that :func:`churnlib.input_checks.check_input` already checked (:func:`score_frame`
    without checking them again): the id columns, :data:`OUTPUT_COLUMNS` (and :data:`REASON_COLUMNS`)
    and :data:`WARNINGS_COLUMN` from ``check``."""
    frame = check.frame
    model.set_threads(n_jobs)
    p = model.churn_probability(frame)
    out = pd.DataFrame({c: frame[c].to_numpy() for c in check.key})
    out["churn_probability"] = p
    out["churn_label"] = (p >= model.threshold).astype("int64")
    out["risk_band"] = model.risk_band(proba=p)
    if reasons:  # reasons quote the training median ("typical 81%")
        why = model.explain(frame, k=len(REASON_COLUMNS), n_jobs=n_jobs)
        for c in REASON_COLUMNS:
            out[c] = why[c].to_numpy()
    out[WARNINGS_COLUMN] = check.warnings.to_numpy()
    return out


def features_from_events(events: str | os.PathLike, *, strict: bool = False,
                         as_of: str | int | None = None) -> pd.DataFrame:
    """Features of every current user of an event log at ``as_of`` (default: the end of its last day).

    Users who cancelled before ``as_of`` are left out (already gone); events at or after it are
    ignored. The rows :func:`score_events` scores, before the input checks.

    Raises
    ------
    churnlib.load.DataValidationError
        The log cannot be read, a bad ``as_of``, or no current user (every user cancelled).
    """
    log = load_events(events, strict=strict)
    return _current_users(log.events, parse_as_of(as_of, log.events), str(events))[0]


def default_as_of(events: pd.DataFrame) -> int:
    """The observation date ``score --events`` uses by default: midnight (UTC) after the last event.

    Every event of the log then counts (features use events strictly before ``as_of``).

    Parameters
    ----------
    events : pandas.DataFrame
        Cleaned events with a ``ts`` column (epoch ms).

    Returns
    -------
    int
        Epoch milliseconds.

    Raises
    ------
    churnlib.load.DataValidationError
        No events.
    """
    if len(events) == 0:
        raise DataValidationError("no events: the observation date cannot be taken from an empty log",
                                  column="as_of")
    last = int(events["ts"].max())
    return (last // MS_PER_DAY + 1) * MS_PER_DAY


def parse_as_of(value: str | int | None, events: pd.DataFrame) -> int:
    """The observation date to score at, in epoch ms (UTC).

    Parameters
    ----------
    value : str, int or None
        None: :func:`default_as_of`. A date (``"2018-11-20"``: its midnight UTC), an ISO-8601
        datetime (UTC unless it carries an offset), or epoch milliseconds (an integer, or a string
        of digits).
    events : pandas.DataFrame
        The cleaned events (for the default).

    Returns
    -------
    int
        Epoch milliseconds.

    Raises
    ------
    churnlib.load.DataValidationError
        A value that is not a date, or before 2000-01-01 (e.g. epoch seconds); ``column`` is
        ``"as_of"``.
    """
    if value is None:
        return default_as_of(events)
    given = value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    try:
        ms = to_epoch_ms(value)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"as_of {given!r} is not a date: expected YYYY-MM-DD, an ISO-8601 datetime (UTC unless it "
            "has an offset) or epoch milliseconds", column="as_of") from None
    if ms < MIN_PLAUSIBLE_MS:
        raise DataValidationError(
            f"as_of {given!r} is before 2000-01-01: epoch milliseconds expected (not seconds)",
            column="as_of")
    return ms


@dataclass
class ScoredEvents:
    """Users of an event log scored at one observation date (:func:`score_events`).

    Attributes
    ----------
    scores : pandas.DataFrame
        What ``python -m churnlib score --events`` writes: ``userId``, ``as_of``,
        :data:`OUTPUT_COLUMNS` (and :data:`REASON_COLUMNS`) and :data:`WARNINGS_COLUMN`.
    features : pandas.DataFrame
        ``userId`` and the model's feature columns, as the model saw them; rows in the order of
        ``scores``.
    as_of : int
        The observation date, epoch ms (UTC).
    quality : churnlib.load.DataQuality
        The log's load account (a copy) extended with the users left out and the input checks.
    left_out : dict of str to int
        Users of the log not scored, by reason: ``"cancelled before as_of"``, ``"no events before
        as_of"``; reasons with no user are absent.
    check : churnlib.input_checks.InputCheck
        The input checks of the feature rows.
    """

    scores: pd.DataFrame
    features: pd.DataFrame
    as_of: int
    quality: DataQuality
    left_out: dict[str, int]
    check: InputCheck | None = None


def score_events(model: ChurnModel, log: EventLog | pd.DataFrame, as_of: str | int | None = None, *,
                 reasons: bool = True, strict: bool = False, n_jobs: int = 1,
                 source: str | None = None) -> ScoredEvents:
    """Score the current users of an event log at an observation date.

    The users with events before ``as_of`` who had not cancelled before it get the features of
    :func:`churnlib.features.user_features` (the code that built the training table: events
    strictly before ``as_of``, label pages removed), checked by
    :func:`churnlib.input_checks.check_input` and scored as :func:`score_frame` does. Events at or
    after ``as_of`` are ignored (counted in a note); users who cancelled before ``as_of`` and users
    with no events before it are left out (counted in ``left_out`` and a note).

    Parameters
    ----------
    model : churnlib.model.ChurnModel
        A model trained on event features (id column ``userId``).
    log : churnlib.load.EventLog or pandas.DataFrame
        A loaded log (:func:`churnlib.load.load_events`, :func:`churnlib.load.load_event_records`),
        or cleaned events in that form.
    as_of : str, int or None
        See :func:`parse_as_of`; None: midnight after the last event.
    reasons : bool, default True
        Add each user's top three risk-raising features (:data:`REASON_COLUMNS`).
    strict : bool, default False
        Refuse a feature row with any input problem (see :func:`churnlib.input_checks.check_input`).
    n_jobs : int, default 1
        Threads for models that predict in parallel.
    source : str, optional
        Name of the input in errors and the account (default: the log's source, else ``"events"``).

    Returns
    -------
    ScoredEvents

    Raises
    ------
    churnlib.load.DataValidationError
        A bad ``as_of``, no user left to score, feature rows failing the input checks.
    """
    if isinstance(log, EventLog):
        events, quality = log.events, copy.deepcopy(log.quality)
        source = source or quality.source
    else:
        events, source = log, source or "events"
        quality = DataQuality(source=source, kind="events", rows_read=len(events), rows_kept=len(events))
    t = parse_as_of(as_of, events)
    current, left_out = _current_users(events, t, source, quality)
    check = check_input(model, current, id_col="userId", strict=strict, source=source)
    check.apply_to(quality, per="users")
    scores = score_checked(model, check, n_jobs=n_jobs, reasons=reasons)
    features = check.frame[["userId", *model.feature_names]].reset_index(drop=True)
    return ScoredEvents(scores=scores, features=features, as_of=t, quality=quality, left_out=left_out,
                        check=check)


def _when(t: int) -> str:
    ts = pd.Timestamp(t, unit="ms", tz="UTC")
    return f"{ts:%Y-%m-%d}" if t % MS_PER_DAY == 0 else f"{ts:%Y-%m-%d %H:%M:%S} UTC"


def _current_users(ev: pd.DataFrame, as_of: int, source: str,
                   quality: DataQuality | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Feature rows of the users current at ``as_of``, and the users left out by reason."""
    if len(ev) == 0:
        raise DataValidationError("no events to score", file=source)
    before = ev["ts"].to_numpy() < as_of
    users = pd.unique(ev["userId"].astype(str))
    gone = set(ev.loc[before & (ev["page"] == CHURN_PAGE).to_numpy(), "userId"].astype(str))
    table = user_features(ev, as_of)  # events strictly before as_of, as in training
    current = table[~table["userId"].isin(gone)].reset_index(drop=True)
    when = _when(as_of)
    n_users, n_gone = len(users), len(gone)
    n_none = n_users - n_gone - len(current)  # no (feature) events before as_of
    left_out = {k: v for k, v in (("cancelled before as_of", n_gone), ("no events before as_of", n_none)) if v}
    if len(current) == 0:
        if n_gone == n_users:
            what = f"all {n_users:,} user(s) in the log cancelled (a {CHURN_PAGE!r} event) before {when}"
        else:
            what = (f"of {n_users:,} user(s) in the log, {n_gone:,} cancelled before {when} and {n_none:,} "
                    f"have no events before it")
        raise DataValidationError(f"no current users to score: {what}", file=source)
    if quality is not None:
        n_after = int((~before).sum())
        quality.add_note(
            f"{n_users:,} users in the log; {n_gone:,} already cancelled before {when} and left out; "
            + (f"{n_none:,} with no events before {when} left out; " if n_none else "")
            + f"{len(current):,} current users scored as of {when}")
        if n_after:
            quality.add_note(f"{n_after:,} events at or after {when} ignored (features use events before as_of)")
    return current, left_out


def _row_lines(snap: Any, path: Path) -> tuple[np.ndarray | None, str]:
    """Each kept row's line (CSV, header = line 1) or row (parquet) number, when it can be known."""
    unit = "row" if path.name.lower().endswith((".parquet", ".pq")) else "line"
    lines = getattr(snap, "lines", None)
    if lines is not None:
        return np.asarray(lines), unit
    if sum(snap.quality.dropped.values()):
        return None, unit  # rows were dropped while loading: positions no longer give lines; ids locate
    return np.arange(len(snap.table)) + (1 if unit == "row" else 2), unit


def score_command(model: str | os.PathLike, events: str | os.PathLike | None = None,
                  table: str | os.PathLike | None = None, out: str | os.PathLike = "risk.csv",
                  id_col: str | None = None, n_jobs: int = 2, reasons: bool = True, *,
                  strict: bool = False, allow_duplicates: bool = False,
                  as_of: str | int | None = None) -> pd.DataFrame:
    """``python -m churnlib score``: write ``id, churn_probability, churn_label, risk_band[, reasons], input_warnings``.

    Parameters
    ----------
    model : path-like
        The artifact (``.joblib``, its manifest, or the folder holding it); verified before use.
    events : path-like, optional
        An event log (:func:`churnlib.load.load_events`): its users current at ``as_of`` are scored
        (:func:`score_events`).
    table : path-like, optional
        A table with the id column and the model's feature columns (CSV, CSV.gz or parquet, read
        with :func:`churnlib.load.load_table`). Exactly one of ``events`` and ``table``.
    out : path-like, default "risk.csv"
        CSV to write (atomically); the data-quality account goes beside it
        (:func:`churnlib.outputs.quality_path`: ``<out>.quality.json``).
    id_col : str, optional
        Id column of ``table`` (default: the training id column; ``userId`` for event logs).
    n_jobs : int, default 2
        Threads for models that predict in parallel.
    reasons : bool, default True
        Add ``reason_1`` .. ``reason_3``: each user's top three risk-raising features
        (see :func:`score_frame`).
    strict : bool, default False
        Refuse the input at its first defect (loading or scoring checks), naming file, line and column.
    allow_duplicates : bool, default False
        Score the first row of a repeated id and drop (and count) the others, instead of refusing.
    as_of : str or int, optional
        With ``events`` only: the observation date (:func:`parse_as_of`; default: midnight after the
        log's last event). Users who cancelled before it are left out, events at or after it ignored.

    Returns
    -------
    pandas.DataFrame
        What was written; ``attrs["quality"]`` is the :class:`churnlib.load.DataQuality` account:
        the input's load account extended with the scoring checks.

    Raises
    ------
    churnlib.artifact.ArtifactError
        The artifact fails verification.
    churnlib.outputs.OutputError
        ``out`` is an input, a folder, or under a file (checked before any work).
    churnlib.load.DataValidationError
        Unreadable input, no id column, missing feature columns, repeated ids, no user to score;
        in strict mode any defect.
    ValueError
        Neither or both inputs; ``as_of`` with a table.
    """
    if (events is None) == (table is None):
        raise ValueError("give exactly one input: an event log (--events) or a feature table (--table)")
    if as_of is not None and table is not None:
        raise ValueError("--as-of applies to an event log (--events); a feature table's rows already hold "
                         "their features")
    check_output(out, inputs=(events, table, model))
    loaded = ChurnModel.load(model)
    if events is not None:
        log = load_events(events, strict=strict)
        result = score_events(loaded, log, as_of, reasons=reasons, strict=strict, n_jobs=n_jobs,
                              source=str(events))
        scored, quality, check = result.scores, result.quality, result.check
    else:
        path = Path(table)
        snap = load_table(path, strict=strict)
        quality = snap.quality
        # which columns could be features is the model's business here, not the loader's
        for c, why in snap.not_features.items():
            text = f"column {c!r} is not a feature: {why}"
            if text in quality.notes:
                quality.notes.remove(text)
        lines, unit = _row_lines(snap, path)
        check = check_input(loaded, snap.table, id_col=id_col or loaded.id_col, strict=strict,
                            allow_duplicates=allow_duplicates, source=str(path), lines=lines, unit=unit)
        check.apply_to(quality)
        scored = score_checked(loaded, check, n_jobs=n_jobs, reasons=reasons)
    scored.attrs["quality"] = quality
    scored.attrs["model_version"] = loaded.version
    atomic_write(out, lambda tmp: scored.to_csv(tmp, index=False, float_format="%.6f"))
    write_json(quality_path(out), {
        **quality.to_dict(), "command": "score", "output": str(out), "rows_scored": len(scored),
        "rows_flagged": check.rows_flagged, "model": loaded.info.get("sha256"),
        "model_version": loaded.version, "checks": check.to_dict()})
    return scored
