"""Score users with a saved model: ``python -m churnlib score``.

Input is either a feature/snapshot table with the model's feature columns, or a raw event log, for
which features are built as of the end of the log's last day (users who already cancelled are left
out: they are no longer customers). Output: one row per user with the churn probability, the label
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

import os
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

from churnlib.features import user_features
from churnlib.files import atomic_write, write_json
from churnlib.input_checks import InputCheck, check_input
from churnlib.load import DataQuality, DataValidationError, load_events, load_table
from churnlib.model import ChurnModel
from churnlib.outputs import check_output, quality_path
from churnlib.schema import CHURN_PAGE, MS_PER_DAY

__all__ = ["OUTPUT_COLUMNS", "REASON_COLUMNS", "WARNINGS_COLUMN", "features_from_events", "score_command",
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
    return _score_checked(model, check, n_jobs=n_jobs, reasons=reasons)


def _score_checked(model: ChurnModel, check: InputCheck, *, n_jobs: int, reasons: bool) -> pd.DataFrame:
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


def features_from_events(events: str | os.PathLike, *, strict: bool = False) -> pd.DataFrame:
    """Features of every current user of an event log, as of the end of the log's last day.

    Users with a cancellation confirmation in the log are left out (already gone).

    Raises
    ------
    churnlib.load.DataValidationError
        The log cannot be read, or has no current user (every user cancelled).
    """
    return _current_users(events, strict)[0]


def _current_users(events: str | os.PathLike, strict: bool) -> tuple[pd.DataFrame, DataQuality]:
    log = load_events(events, strict=strict)
    ev = log.events
    last = int(ev["ts"].max())
    as_of = (last // MS_PER_DAY + 1) * MS_PER_DAY  # midnight after the last event: every event counts
    table = user_features(ev, as_of)
    gone = set(ev.loc[ev["page"] == CHURN_PAGE, "userId"].astype(str))
    current = table[~table["userId"].isin(gone)].reset_index(drop=True)
    n_users = int(ev["userId"].nunique())
    if len(current) == 0:
        raise DataValidationError(
            f"no current users to score: all {n_users:,} user(s) in the log cancelled "
            f"(a {CHURN_PAGE!r} event)", file=events)
    quality = log.quality
    quality.add_note(f"{n_users:,} users in the log; {n_users - len(current):,} already cancelled and left out; "
                     f"{len(current):,} current users scored as of {pd.Timestamp(as_of, unit='ms', tz='UTC'):%Y-%m-%d}")
    return current, quality


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
                  strict: bool = False, allow_duplicates: bool = False) -> pd.DataFrame:
    """``python -m churnlib score``: write ``id, churn_probability, churn_label, risk_band[, reasons], input_warnings``.

    Parameters
    ----------
    model : path-like
        The artifact (``.joblib``, its manifest, or the folder holding it); verified before use.
    events : path-like, optional
        An event log (:func:`churnlib.load.load_events`): features are built as of the end of its
        last day, for the users who have not cancelled.
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
        Neither or both inputs.
    """
    if (events is None) == (table is None):
        raise ValueError("give exactly one input: an event log (--events) or a feature table (--table)")
    check_output(out, inputs=(events, table, model))
    loaded = ChurnModel.load(model)
    if events is not None:
        frame, quality = _current_users(events, strict)
        check = check_input(loaded, frame, id_col="userId", strict=strict, allow_duplicates=allow_duplicates,
                            source=str(events))
        check.apply_to(quality, per="users")
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
    scored = _score_checked(loaded, check, n_jobs=n_jobs, reasons=reasons)
    scored.attrs["quality"] = quality
    atomic_write(out, lambda tmp: scored.to_csv(tmp, index=False, float_format="%.6f"))
    write_json(quality_path(out), {
        **quality.to_dict(), "command": "score", "output": str(out), "rows_scored": len(scored),
        "rows_flagged": check.rows_flagged, "model": loaded.info.get("sha256"), "checks": check.to_dict()})
    return scored
