"""Score users with a saved model: ``python -m churnlib score``.

Input is either a feature/snapshot table with the model's feature columns, or a raw event log, for
which features are built as of the end of the log's last day (users who already cancelled are left
out: they are no longer customers). Output: one row per user with the churn probability, the label
at the model's threshold and a risk band (low / medium / high), and optionally each user's top three
reasons: the features that raise that user's risk most, in plain words (:mod:`churnlib.explain`).

Speed: probabilities run the model's own pipeline unchanged (identical outputs), with threads for
the model step only; the ``ColumnTransformer`` stays in-process (its ``n_jobs`` spawns worker
processes and memory-maps the data, which costs far more than the transform itself). Reasons use the
fastest exact SHAP route of the model (LightGBM ``pred_contrib``, XGBoost ``pred_contribs``) and
are much slower than probabilities.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from churnlib.features import user_features
from churnlib.files import atomic_write
from churnlib.load import load_events
from churnlib.model import ChurnModel
from churnlib.schema import CHURN_PAGE, MS_PER_DAY

__all__ = ["OUTPUT_COLUMNS", "REASON_COLUMNS", "features_from_events", "score_command", "score_frame"]

#: Columns of the risk file after the id column.
OUTPUT_COLUMNS: tuple[str, ...] = ("churn_probability", "churn_label", "risk_band")
#: Columns added by ``reasons=True``: each user's top three risk-raising features, in plain words.
REASON_COLUMNS: tuple[str, ...] = ("reason_1", "reason_2", "reason_3")


def score_frame(model: ChurnModel, frame: pd.DataFrame, id_col: str | None = None,
                n_jobs: int = 2, reasons: bool = True) -> pd.DataFrame:
    """Score a table in memory, with each user's top three reasons.

    Parameters
    ----------
    model : churnlib.model.ChurnModel
        From :meth:`ChurnModel.load <churnlib.model.ChurnModel.load>`.
    frame : pandas.DataFrame
        Rows to score, with the model's feature columns.
    id_col : str, optional
        Id column (default: the training id column; absent ids are numbered 0..n-1 as ``row``).
    n_jobs : int, default 2
        Threads for models that predict in parallel (tree ensembles); scoring is a batch job.
    reasons : bool, default True
        Add :data:`REASON_COLUMNS`: per user, the (at most) three features whose SHAP values raise
        that user's churn risk most, e.g. ``"days since last login: 23 (raises risk)"``
        (:meth:`churnlib.model.ChurnModel.explain`). Fewer than three features raising the risk leave
        the remaining columns missing (empty in the CSV); the constant baseline model leaves all of
        them missing. Much slower than the probabilities (SHAP values for every user and feature).

    Returns
    -------
    pandas.DataFrame
        The id column then :data:`OUTPUT_COLUMNS` (and :data:`REASON_COLUMNS`), in input order.
    """
    id_col = id_col or model.id_col
    model.set_threads(n_jobs)
    p = model.churn_probability(frame)
    band = model.risk_band(proba=p)
    ids = frame[id_col].astype(str).to_numpy() if id_col in frame.columns else np.arange(len(frame))
    out = pd.DataFrame({id_col if id_col in frame.columns else "row": ids, "churn_probability": p,
                        "churn_label": (p >= model.threshold).astype("int64"), "risk_band": band})
    if reasons:  # reasons quote the training median ("typical 81%")
        why = model.explain(frame, k=len(REASON_COLUMNS), n_jobs=n_jobs)
        for c in REASON_COLUMNS:
            out[c] = why[c].to_numpy()
    return out


def features_from_events(events: str | os.PathLike) -> pd.DataFrame:
    """Features of every current user of an event log, as of the end of the log's last day.

    Users with a cancellation confirmation in the log are left out (already gone).
    """
    ev = load_events(events).events
    last = int(ev["ts"].max())
    as_of = (last // MS_PER_DAY + 1) * MS_PER_DAY  # midnight after the last event: every event counts
    table = user_features(ev, as_of)
    gone = set(ev.loc[ev["page"] == CHURN_PAGE, "userId"].astype(str))
    return table[~table["userId"].isin(gone)].reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    raise ValueError(f"unsupported table type (expected .csv, .csv.gz or .parquet): {path}")


def score_command(model: str | os.PathLike, events: str | os.PathLike | None = None,
                  table: str | os.PathLike | None = None, out: str | os.PathLike = "risk.csv",
                  id_col: str | None = None, n_jobs: int = 2, reasons: bool = True) -> pd.DataFrame:
    """``python -m churnlib score``: write ``user id, churn_probability, churn_label, risk_band[, reasons]``.

    Parameters
    ----------
    model : path-like
        The artifact (``.joblib``, its manifest, or the folder holding it); verified before use.
    events : path-like, optional
        An event log: features are built as of the end of its last day.
    table : path-like, optional
        A table with the model's feature columns (CSV/parquet). Exactly one of ``events`` and
        ``table``.
    out : path-like, default "risk.csv"
        CSV to write (atomically).
    id_col : str, optional
        Id column of ``table`` (default: the training id column; ``userId`` for event logs).
    n_jobs : int, default 2
        Threads for models that predict in parallel.
    reasons : bool, default True
        Add ``reason_1`` .. ``reason_3``: each user's top three risk-raising features
        (see :func:`score_frame`).

    Returns
    -------
    pandas.DataFrame
        What was written.

    Raises
    ------
    churnlib.artifact.ArtifactError
        The artifact fails verification.
    ValueError
        Neither or both inputs, or the input lacks feature columns.
    """
    if (events is None) == (table is None):
        raise ValueError("give exactly one input: an event log (--events) or a feature table (--table)")
    loaded = ChurnModel.load(model)
    if events is not None:
        frame, id_col = features_from_events(events), "userId"
    else:
        frame = _read_table(Path(table))
    scored = score_frame(loaded, frame, id_col=id_col, n_jobs=n_jobs, reasons=reasons)
    atomic_write(out, lambda tmp: scored.to_csv(tmp, index=False, float_format="%.6f"))
    return scored
