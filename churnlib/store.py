"""The prediction store: every served prediction, with the features the model saw, in one SQLite file.

``python -m churnlib serve`` appends one row per prediction with
:meth:`PredictionStore.append`: when it was served (UTC, milliseconds), the user, the model version
(:attr:`churnlib.model.ChurnModel.version`), the observation date ``as_of`` (epoch ms; NULL for
models scoring feature rows), the model's feature values as JSON, the churn probability, the risk
band and where the prediction came from (``source``: ``"service"`` for the server; other writers
name themselves).
:func:`churnlib.monitoring.monitor_store` reads a window of it back (:meth:`PredictionStore.read`)
and compares the served features with the model's *training reference*: ``reference.parquet``
beside the artifact (:func:`write_reference` / :func:`read_reference`), the training rows' features
as the final model saw them.

The file is SQLite in WAL mode: readers never block the writer, one writer at a time. Every
:meth:`~PredictionStore.append` is one ``BEGIN IMMEDIATE`` transaction (all of a batch or none of
it), waited for up to ``timeout`` seconds when another process holds the write lock, so the store is
safe from a thread pool (the service's handlers share one connection behind a lock) and from several
processes. ``synchronous=NORMAL``: a committed prediction survives the process crashing or being
killed; a power cut may lose the last commits but never corrupts the file. The schema version is
``PRAGMA user_version`` (:data:`SCHEMA_VERSION`); a store written by a newer churnlib is refused, and
so is a file that is not a churnlib prediction store (:class:`StoreError`, naming the path).

Feature values are stored exactly: integers as JSON integers, floats by their shortest exact
decimal form (``repr``), text as strings; missing and non-finite values as ``null``.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from churnlib import paths
from churnlib.files import atomic_write, sha256_file
from churnlib.load import DataValidationError

__all__ = [
    "APPLICATION_ID",
    "BASE_COLUMNS",
    "DEFAULT_STORE",
    "PredictionStore",
    "REFERENCE_NAME",
    "SCHEMA_VERSION",
    "StoreError",
    "default_store_path",
    "read_reference",
    "reference_path",
    "served_at_text",
    "write_reference",
]

#: Where ``serve`` keeps its predictions by default (relative to the project root; git-ignored).
DEFAULT_STORE = "data/predictions.sqlite"
#: Schema version written to ``PRAGMA user_version``.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of a churnlib prediction store ("CHRN").
APPLICATION_ID = 0x4348524E
#: Name of the training reference beside a model artifact.
REFERENCE_NAME = "reference.parquet"
#: Columns of :meth:`PredictionStore.read` before the feature columns.
BASE_COLUMNS = ("served_at", "user_id", "model_version", "as_of", "churn_probability", "risk_band", "source")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    served_at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    as_of INTEGER,
    features TEXT NOT NULL,
    churn_probability REAL NOT NULL,
    risk_band TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_served_at ON predictions (served_at);
CREATE INDEX IF NOT EXISTS predictions_version_served_at ON predictions (model_version, served_at);
"""


class StoreError(DataValidationError):
    """A prediction store that cannot be used: not a store, a newer schema, unreadable, absent.

    A :class:`churnlib.load.DataValidationError` (the command line prints ``error: <message>`` and
    exits 2), located by the store's path (``file``).
    """


def default_store_path() -> Path:
    """:data:`DEFAULT_STORE` under the project root."""
    return paths.project_root() / DEFAULT_STORE


def served_at_text(when: str | datetime | pd.Timestamp | None = None) -> str:
    """A time as the store writes it: UTC ISO-8601 with milliseconds, ``2018-11-20T09:30:00.123Z``.

    ``None`` is now; a time without a zone is read as UTC. The text sorts as the times do, so
    windows are selected on it directly.
    """
    if when is None:
        now = datetime.now(timezone.utc)
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


_INF = (math.inf, -math.inf)


def _json_value(v: Any) -> Any:
    """One value as JSON-ready Python: numbers exact, missing and non-finite as None."""
    t = type(v)
    if t is float:
        return None if v != v or v in _INF else v
    if t is int or t is str or t is bool:
        return v
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (pd.Timestamp, datetime)):
        return pd.Timestamp(v).isoformat()
    return str(v)


def _feature_json(features: pd.DataFrame, names: list[str]) -> list[str]:
    """Each row's feature values as a JSON object, keys in ``names`` order.

    The frame is converted once (``to_numpy(object)``: Python floats, ints and strings), not column by
    column: for the service's single-user appends a per-column pandas access costs more than the values.
    """
    if not names:
        return ["{}"] * len(features)
    pos = {c: i for i, c in enumerate(features.columns)}
    index = [pos[c] for c in names]
    values = features.to_numpy(dtype=object)[:, index]
    encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    return [encode(dict(zip(names, map(_json_value, row)))) for row in values.tolist()]


def _as_of_values(as_of: Any, scores: pd.DataFrame) -> list:
    if as_of is not None:
        return [int(as_of)] * len(scores)
    if "as_of" in scores.columns:  # a stacked feature table: each row's own observation date
        col = scores["as_of"]
        if pd.api.types.is_datetime64_any_dtype(col):
            ms = pd.to_datetime(col, utc=True).dt.as_unit("ms").astype("int64")
            return [None if m else int(v) for v, m in zip(ms.tolist(), col.isna().tolist())]
        return [None if pd.isna(v) else int(v) for v in col]
    return [None] * len(scores)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, str)


def _expand(texts: list[str]) -> pd.DataFrame:
    """The JSON feature objects as columns: numbers as float64, text as ``str``."""
    records = [json.loads(t) for t in texts]
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))
    out = {}
    for name in names:
        values = [r.get(name) for r in records]
        present = [v for v in values if v is not None]
        if all(_is_number(v) for v in present):
            out[name] = pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
        else:
            out[name] = pd.Series([None if v is None else str(v) for v in values], dtype="str")
    return pd.DataFrame(out, index=pd.RangeIndex(len(records)))


def _time_arg(value: Any, name: str) -> str | None:
    if value is None:
        return None
    try:
        return served_at_text(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a date or time (e.g. 2018-11-20 or 2018-11-20T09:30Z), "
                         f"not {value!r}") from exc


class PredictionStore:
    """Served predictions in a SQLite file (WAL mode), appended from many threads or processes.

    Parameters
    ----------
    path : path-like, optional
        The store file (default :func:`default_store_path`); created with its folder when absent
        (unless ``readonly``).
    readonly : bool, default False
        Open an existing store for reading only (monitoring); an absent file is an error.
    timeout : float, default 30
        Seconds to wait for another process's write lock before an append fails.

    Raises
    ------
    StoreError
        The file is not a churnlib prediction store (another SQLite database, or not SQLite at all),
        was written by a newer churnlib (``user_version`` above :data:`SCHEMA_VERSION`), is a folder,
        or (``readonly``) does not exist.

    Examples
    --------
    >>> with PredictionStore("data/predictions.sqlite") as store:          # doctest: +SKIP
    ...     store.append(scored.scores, scored.features, model_version=model.version, as_of=scored.as_of)
    ...     served = store.read(since="2018-11-20")
    """

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False,
                 timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = bool(readonly)
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._pid = os.getpid()
        if self.path.is_dir():
            raise StoreError("is a folder; give the prediction store's file path "
                             f"(e.g. {Path(self.path) / Path(DEFAULT_STORE).name})", file=self.path)
        if self.readonly and not self.path.exists():
            raise StoreError("no prediction store here (a server started with --store PATH writes one)",
                             file=self.path)
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    # ---- connection ---------------------------------------------------------------------
    def _open(self) -> None:
        mode = "ro" if self.readonly else "rwc"
        uri = f"file:{quote(str(self.path.absolute()))}?mode={mode}"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None,
                                  check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the prediction store: {exc}", file=self.path) from None
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._prepare(con)
        except sqlite3.DatabaseError as exc:
            con.close()
            raise StoreError(f"is not a churnlib prediction store (SQLite: {exc})", file=self.path) from None
        except BaseException:
            con.close()
            raise
        self._con = con
        self._pid = os.getpid()

    def _check_version(self, con: sqlite3.Connection) -> int:
        # One read snapshot: another process may commit the schema between three separate reads
        # (tables already there, application id not yet read as set).
        own = not con.in_transaction
        if own:
            con.execute("BEGIN")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            app = con.execute("PRAGMA application_id").fetchone()[0]
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            if own:
                con.execute("COMMIT")
        if app != APPLICATION_ID and (tables or version):
            raise StoreError("is a SQLite database but not a churnlib prediction store "
                             f"(tables: {', '.join(tables[:5]) or 'none'}); give another --store path",
                             file=self.path)
        if version > SCHEMA_VERSION:
            raise StoreError(f"was written by a newer churnlib (store schema version {version}; this one "
                             f"reads up to {SCHEMA_VERSION}); upgrade churnlib or use another store",
                             file=self.path)
        return version

    def _prepare(self, con: sqlite3.Connection) -> None:
        version = self._check_version(con)
        if self.readonly:
            if version == 0:
                raise StoreError("is an empty file, not a churnlib prediction store", file=self.path)
            return
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot use write-ahead logging here (journal mode stays {mode!r}); "
                             "put the store on a local disk", file=self.path)
        con.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            con.execute("BEGIN IMMEDIATE")  # another process may be creating it at the same moment
            try:
                if self._check_version(con) < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            raise StoreError("the prediction store is closed", file=self.path)
        if os.getpid() != self._pid:  # a forked child: never share the parent's SQLite connection
            self._con = None
            self._open()
        return self._con

    def close(self) -> None:
        """Close the connection (appends committed so far stay)."""
        with self._lock:
            if self._con is not None and os.getpid() == self._pid:
                self._con.close()
            self._con = None

    def __enter__(self) -> "PredictionStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PredictionStore({str(self.path)!r}{', readonly' if self.readonly else ''})"

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode of the file (``"wal"``)."""
        with self._lock:
            return str(self._connection().execute("PRAGMA journal_mode").fetchone()[0]).lower()

    @property
    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the file."""
        with self._lock:
            return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

    # ---- writing --------------------------------------------------------------------------
    def append(self, scores: pd.DataFrame, features: pd.DataFrame, *, model_version: str, as_of: int | None,
               source: str = "service", served_at: str | datetime | pd.Timestamp | None = None,
               id_col: str | None = None, columns: Sequence[str] | None = None) -> int:
        """Append one row per scored user, in one transaction (all rows or none).

        Parameters
        ----------
        scores : pandas.DataFrame
            What scoring returned: the id column first (or ``id_col``), ``churn_probability`` and
            ``risk_band`` (other columns are not stored).
        features : pandas.DataFrame
            The model's feature values as the model saw them, one row per row of ``scores`` in the
            same order (the id column, when present, must match).
        model_version : str
            :attr:`churnlib.model.ChurnModel.version`.
        as_of : int or None
            The observation date in epoch ms; None for models scoring feature rows (then a
            stacked table's own ``as_of`` column in ``scores`` is used when present).
        source : str, default "service"
            ``"service"`` or ``"score"``.
        served_at : str or datetime, optional
            When the predictions were made (default: now, UTC).
        id_col : str, optional
            The user-id column (default: the first column of ``scores``).
        columns : sequence of str, optional
            The feature columns to store (default: every column of ``features`` but the id and
            ``as_of``).

        Returns
        -------
        int
            Rows written.

        Raises
        ------
        ValueError
            Misaligned inputs (other lengths or ids), a missing column, an empty model version.
        StoreError
            A read-only or closed store; the write lock not obtained within ``timeout``.
        """
        if self.readonly:
            raise StoreError("opened read-only: cannot append predictions", file=self.path)
        if not model_version:
            raise ValueError("model_version is required (ChurnModel.version)")
        n = len(scores)
        if len(features) != n:
            raise ValueError(f"scores has {n} row(s) but features {len(features)}: one feature row per prediction")
        if n == 0:
            return 0
        id_col = id_col or scores.columns[0]
        missing = [c for c in (id_col, "churn_probability", "risk_band") if c not in scores.columns]
        if missing:
            raise ValueError(f"scores lacks the column(s) {missing}")
        ids = [str(v) for v in scores[id_col].tolist()]
        if id_col in features.columns and [str(v) for v in features[id_col].tolist()] != ids:
            raise ValueError(f"features and scores are not in the same row order (column {id_col!r} differs)")
        names = list(columns) if columns is not None else [c for c in features.columns if c not in (id_col, "as_of")]
        absent = [c for c in names if c not in features.columns]
        if absent:
            raise ValueError(f"features lacks the column(s) {absent[:10]}")
        texts = _feature_json(features, names)
        when = served_at_text(served_at)
        proba = scores["churn_probability"].to_numpy(dtype=np.float64).tolist()
        bands = [str(v) for v in scores["risk_band"].tolist()]
        rows = list(zip([when] * n, ids, [str(model_version)] * n, _as_of_values(as_of, scores), texts, proba,
                        bands, [str(source)] * n))
        with self._lock:
            con = self._connection()
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"could not write predictions: {exc} (another process held the store for "
                                 f"more than {self.timeout:g} s)", file=self.path) from None
            try:
                con.executemany("INSERT INTO predictions (served_at, user_id, model_version, as_of, features, "
                                "churn_probability, risk_band, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return n

    # ---- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT count(*) FROM predictions").fetchone()[0])

    def _where(self, since: Any, until: Any, model_version: str | None) -> tuple[str, list]:
        clauses, args = [], []
        lo, hi = _time_arg(since, "since"), _time_arg(until, "until")
        if lo is not None:
            clauses.append("served_at >= ?")
            args.append(lo)
        if hi is not None:
            clauses.append("served_at <= ?")
            args.append(hi)
        if model_version is not None:
            clauses.append("model_version = ?")
            args.append(str(model_version))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def read(self, *, since: str | datetime | pd.Timestamp | None = None,
             until: str | datetime | pd.Timestamp | None = None,
             model_version: str | None = None) -> pd.DataFrame:
        """The stored predictions served in ``[since, until]`` (both ends included), oldest first.

        Parameters
        ----------
        since, until : str or datetime, optional
            Bounds on ``served_at`` (a time without a zone is UTC; a date alone is its midnight).
        model_version : str, optional
            Only predictions of this model version.

        Returns
        -------
        pandas.DataFrame
            :data:`BASE_COLUMNS` -- ``served_at`` (``datetime64[ms, UTC]``), ``user_id`` (str),
            ``model_version`` (str), ``as_of`` (Int64 epoch ms, missing for row models),
            ``churn_probability`` (float64), ``risk_band`` (str), ``source`` (str) -- then one column
            per feature: float64 for numbers, str for text (missing values stay missing). Rows of
            model versions with other features hold missing values in the columns they lack.
        """
        where, args = self._where(since, until, model_version)
        with self._lock:
            rows = self._connection().execute(
                "SELECT served_at, user_id, model_version, as_of, churn_probability, risk_band, source, features "
                f"FROM predictions{where} ORDER BY served_at, id", args).fetchall()
        cols = list(zip(*rows)) if rows else [[] for _ in range(8)]
        base = pd.DataFrame({
            "served_at": pd.to_datetime(pd.Series(cols[0], dtype="str"), utc=True, format="ISO8601").dt.as_unit("ms"),
            "user_id": pd.Series(cols[1], dtype="str"),
            "model_version": pd.Series(cols[2], dtype="str"),
            "as_of": pd.Series(cols[3], dtype="Int64"),
            "churn_probability": pd.Series(cols[4], dtype="float64"),
            "risk_band": pd.Series(cols[5], dtype="str"),
            "source": pd.Series(cols[6], dtype="str"),
        })
        feats = _expand(list(cols[7]))
        return pd.concat([base, feats], axis=1) if len(feats.columns) else base

    def span(self, model_version: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last ``served_at`` (of one model version), or None when there is none."""
        where, args = self._where(None, None, model_version)
        with self._lock:
            lo, hi = self._connection().execute(f"SELECT min(served_at), max(served_at) FROM predictions{where}",
                                                args).fetchone()
        return None if lo is None else (pd.Timestamp(lo), pd.Timestamp(hi))

    def versions(self, *, since: Any = None, until: Any = None) -> dict[str, int]:
        """Predictions per model version served in ``[since, until]``, most first."""
        where, args = self._where(since, until, None)
        with self._lock:
            rows = self._connection().execute(
                f"SELECT model_version, count(*) FROM predictions{where} GROUP BY model_version "
                "ORDER BY count(*) DESC, model_version", args).fetchall()
        return {v: int(n) for v, n in rows}


# --------------------------------------------------------------------------------------------
# The training reference beside a model artifact
# --------------------------------------------------------------------------------------------

def reference_path(model: str | os.PathLike) -> Path:
    """``reference.parquet`` beside a model artifact (the ``.joblib``, its manifest or their folder)."""
    model = Path(model)
    folder = model if model.is_dir() or not model.suffix else model.parent
    return folder / REFERENCE_NAME


def write_reference(frame: pd.DataFrame, path: str | os.PathLike, *, id_col: str,
                    features: Iterable[str]) -> dict[str, Any]:
    """Write the training reference (atomically) and describe it for the manifest.

    Parameters
    ----------
    frame : pandas.DataFrame
        The training rows: the id column, ``as_of`` when the table has it, and the model's features
        as the final model saw them (:meth:`churnlib.model.ChurnModel.prepare`).
    path : path-like
        Usually ``<models>/reference.parquet`` (:func:`reference_path`).
    id_col : str
    features : iterable of str
        The model's feature names (recorded).

    Returns
    -------
    dict
        ``file`` (name), ``sha256``, ``rows``, ``users``, ``as_of`` (latest observation date, ISO,
        or None) and ``features`` (count): what ``metrics.json`` and the manifest record.
    """
    path = Path(path)
    frame = frame.copy(deep=False)
    frame.attrs = {}  # e.g. a loader's data-quality account: not part of the reference
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    latest = None
    if "as_of" in frame.columns and len(frame):
        latest = pd.Timestamp(frame["as_of"].max()).isoformat()
    return {"file": path.name, "sha256": sha256_file(path), "rows": int(len(frame)),
            "users": int(frame[id_col].nunique()) if id_col in frame.columns else None,
            "as_of": latest, "features": len(list(features)), "id_col": id_col}


def read_reference(model: str | os.PathLike, info: dict[str, Any] | None = None) -> pd.DataFrame:
    """Read the training reference beside a model artifact, checked against the model's manifest.

    Parameters
    ----------
    model : path-like
        The artifact, its manifest or their folder.
    info : dict, optional
        The model's manifest information (:attr:`churnlib.model.ChurnModel.info`); its
        ``reference.sha256`` must match the file.

    Raises
    ------
    churnlib.load.DataValidationError
        No reference beside the model (trained before churnlib wrote one, or saved without its
        training rows), or a file that is not the one the model was saved with.
    """
    path = reference_path(model)
    recorded = (info or {}).get("reference") or {}
    if not path.exists() or not recorded.get("sha256"):
        raise DataValidationError(
            "the model has no training reference (reference.parquet beside the artifact, written by "
            "`python -m churnlib train` or 05_models since the prediction store exists); retrain the model "
            "with this version of churnlib, or pass the table it was trained on with --reference",
            file=path if path.exists() else path.parent)
    digest = sha256_file(path)
    if digest != recorded["sha256"]:
        raise DataValidationError(
            f"{path.name} is not the reference this model was saved with (SHA-256 {digest[:12]}, the "
            f"manifest records {str(recorded['sha256'])[:12]}); retrain, or pass the training table with --reference",
            file=path)
    return pd.read_parquet(path)
