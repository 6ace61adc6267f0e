"""Load and validate event logs and snapshot tables, with an account of every row.

Two kinds of input:

* **events** -- a Sparkify-style event log (one row per event): NDJSON (``.json``, ``.jsonl``,
  ``.ndjson``, each optionally ``.gz``), parquet with a ``page`` column, or a folder of such files.
  Read with DuckDB (out of core, parallel); the cleaned result comes back as pandas. Events held in
  memory (a request's JSON body) go through the same staging and cleaning with
  :func:`load_event_records`, one JSON line per record, located as ``"event 3"``.
* **snapshot** -- one row per user with a binary churn label: CSV (optionally ``.gz``) or parquet.

Every row read ends up *kept* or *dropped* (``rows_read == rows_kept + sum(dropped)``), and kept
rows that were changed are counted under *repaired*; see :class:`DataQuality`. ``strict=True``
turns every defect into a :class:`DataValidationError` naming the file, the line (or parquet row)
and the column. Two things are not defects and are dropped (and counted) in both modes: rows with
an empty or null ``userId`` (Sparkify's logged-out and guest rows, a normal part of the schema)
and blank lines.

Defect policy for events (lenient mode; strict mode raises on each of these instead):

======================================  ====================================================
defect                                  lenient outcome (reason counted in ``quality``)
======================================  ====================================================
unparseable / truncated JSON line       dropped: ``"unparseable line"``
line that is not UTF-8                  dropped: ``"non-UTF-8 line"``
other unreadable line                   dropped: ``"unreadable line"``
ts null / non-numeric / not finite      dropped: ``"bad timestamp"``
ts outside the plausible window         dropped: ``"implausible timestamp"``
ts in plausible epoch seconds           repaired x1000: ``"ts in seconds converted to ms"``
numeric text in ts/length/status/...    repaired: ``"numeric text converted"``
blank text in length/status/...         repaired (null): ``"blank value read as missing"``
userId empty / null / absent            dropped (also strict): ``"logged-out/guest row ..."``
userId number in a file with string ids repaired: ``"numeric userId cast to string"``
userId of another type                  dropped: ``"bad userId"``
sessionId null / not an integer         dropped: ``"bad sessionId"``
sessionId as a digit string             repaired: ``"sessionId string cast to integer"``
page not in KNOWN_PAGES / not text      dropped: ``"unknown page"``
itemInSession null / not an integer     repaired: ``"itemInSession derived from order in session"``
status / length / registration bad      repaired: ``"bad <col> set to null"``
length < 0                              repaired: ``"negative length set to null"``
registration in plausible seconds       repaired: ``"registration in seconds converted to ms"``
registration outside the window         repaired: ``"implausible registration set to null"``
auth / level outside the schema values  repaired: ``"unknown <col> set to null"``
text column holding a number etc.       repaired: ``"non-text <col> cast to string"``
exact duplicate of an earlier row       dropped: ``"exact duplicate row"`` (first one kept)
======================================  ====================================================

Always errors (both modes): nonexistent path, unsupported extension, folder without data files,
a file without rows, a file missing a required column (:data:`~churnlib.schema.REQUIRED_EVENT_COLUMNS`),
an unreadable file (e.g. corrupt gzip or parquet), and no row left after cleaning.

Timestamps. The plausible window is 2000-01-01T00:00Z to now + 1 day. A numeric ``ts`` (or a
numeric string) is epoch milliseconds when it falls in that window; it is epoch *seconds* (and
multiplied by 1000, counted) only when it falls in the same window read as seconds
(946,684,800 to now/1000 + 86,400). Anything else -- ``0``, ``1e9`` milliseconds (1970),
``1e13`` (year 2286), ISO dates before 2000 or in the future -- is implausible: dropped and
counted in lenient mode, an error naming file, line and column in strict mode. ``registration``
follows the same rule, but an implausible one is set to null (the event itself is kept).

Supported conversions that are not defects: ISO-8601 ``ts`` strings (naive ones are UTC), a file
whose ``userId`` values are all numbers (cast to string, noted in ``quality.notes``), float
``registration``, optional columns absent from a file (nulls).

Performance (2 shared cores, under load): a 5M-row parquet file in ~20 s, NDJSON ~40k lines/s
(JSON is parsed in DuckDB, but three passes per line: validity, types, values).

Known limitation: NDJSON is read line by line with DuckDB's CSV reader; a raw ``\\x01`` byte
(never valid inside JSON) truncates its line, which then fails JSON parsing and is dropped or
reported as unparseable.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import html
import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pandas as pd
import pyarrow as pa

from churnlib.schema import (
    AUTH_VALUES,
    EVENT_COLUMNS,
    KNOWN_PAGES,
    LEVEL_VALUES,
    REQUIRED_EVENT_COLUMNS,
    SNAPSHOT_DEFAULT_ID,
    SNAPSHOT_DEFAULT_LABEL,
)

__all__ = [
    "DataQuality",
    "DataValidationError",
    "EventLog",
    "SnapshotTable",
    "data_fingerprint",
    "detect_kind",
    "load_event_records",
    "load_events",
    "load_snapshot",
    "memory_cursor",
    "RECORD_UNIT",
    "SMALL_INPUT_ROWS",
    "not_feature_columns",
    "load_table",
    "MIN_PLAUSIBLE_MS",
    "BLANK_REASON",
    "BLANK_VALUE_REASON",
    "GUEST_REASON",
    "IMPLAUSIBLE_TS_REASON",
    "LOSSLESS_REPAIRS",
    "NON_DEFECT_DROPS",
    "NUMERIC_TEXT_REASON",
    "clean_events_sql",
    "event_drop_column",
    "event_file_kind",
    "event_files",
    "event_repair_notes",
    "event_repair_rules",
    "numeric_userid_note",
]

GUEST_REASON = "logged-out/guest row with empty userId"
BLANK_REASON = "blank line"
#: Drop reasons that are not defects: counted, but no error in strict mode.
NON_DEFECT_DROPS = frozenset({GUEST_REASON, BLANK_REASON})

_NDJSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv",)
_TEXT_COLS = tuple(
    c for c in EVENT_COLUMNS
    if c not in {"ts", "userId", "sessionId", "page", "status", "itemInSession", "registration", "length"}
)
_NUM_TYPES = "('BIGINT','UBIGINT','DOUBLE','HUGEINT','UHUGEINT')"
_EXCERPT = 80
_WS = "' \t\r\n'"  # SQL literal: the whitespace a blank value may hold
#: Earliest plausible event time (2000-01-01T00:00Z, epoch ms); the latest is now + 1 day.
MIN_PLAUSIBLE_MS = 946_684_800_000
_MAX_MS = 1e14  # anything later is garbage, and would overflow BIGINT after x1000
IMPLAUSIBLE_TS_REASON = "implausible timestamp"
#: What a location counts for events given in memory (:func:`load_event_records`): "event 3".
RECORD_UNIT = "event"
NUMERIC_TEXT_REASON = "numeric text converted"
BLANK_VALUE_REASON = "blank value read as missing"
#: Repairs that lose nothing (a number sent as text, a missing position in the session, a blank
#: meaning missing): ``load_event_records(..., strict=True, lossless_ok=True)`` accepts and counts
#: them while still refusing every defect that drops an event or a value (the prediction service).
LOSSLESS_REPAIRS = frozenset({NUMERIC_TEXT_REASON, BLANK_VALUE_REASON, "sessionId string cast to integer",
                              "numeric userId cast to string", "itemInSession derived from order in session",
                              "ts in seconds converted to ms", "registration in seconds converted to ms"})


def _plausible_window() -> tuple[int, int]:
    """(earliest, latest) plausible event time in epoch ms: 2000-01-01 and now + 1 day."""
    return MIN_PLAUSIBLE_MS, int(time.time() * 1000) + 86_400_000


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------

class DataValidationError(ValueError):
    """Bad input, located as precisely as possible.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str or None
        The file (or folder) concerned.
    line : int or None
        1-based line number (NDJSON, CSV) or row number (parquet), when known.
    column : str or None
        The column concerned, when known.
    unit : str, default "line"
        What ``line`` counts: ``"line"`` (NDJSON, CSV), ``"row"`` (parquet) or ``"event"`` (records
        given in memory, :func:`load_event_records`: ``file`` is then the source's name, e.g.
        ``"request"``, and is not called a file).
    """

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 column: str | None = None, unit: str = "line") -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = None if line is None else int(line)
        self.column = column
        self.unit = str(unit)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.unit == RECORD_UNIT else f"file {self.file}")
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return (", ".join(where) + ": " if where else "") + self.message

    def __reduce__(self):  # keep the keyword-only attributes through pickling (multiprocessing)
        return (_rebuild_error, (self.message, self.file, self.line, self.column, self.unit))


def _rebuild_error(message, file, line, column, unit="line") -> DataValidationError:
    return DataValidationError(message, file=file, line=line, column=column, unit=unit)


@dataclass
class DataQuality:
    """Account of what happened to every row read.

    Attributes
    ----------
    source : str
        The file or folder loaded.
    kind : str
        ``"events"`` or ``"snapshot"``.
    rows_read : int
        Rows (lines, for NDJSON; blank lines included) read from the source.
    rows_kept : int
        Rows in the result.
    dropped : dict of str to int
        Reason -> rows dropped. ``rows_read == rows_kept + sum(dropped.values())``.
    repaired : dict of str to int
        Reason -> kept rows that were changed (a row can be repaired for several reasons).
    notes : list of str
        Things worth knowing that are not row counts (ignored files, conversions applied).
    locations : dict of str to str
        Reason (a key of ``dropped`` or ``repaired``) -> the first place it happened, e.g.
        ``"line 17"`` or ``"row 3, column 'length'"``.
    unit : str or None
        What ``rows_read`` counts, when it is not the file's lines or rows: ``"event"`` for
        records given in memory (:func:`load_event_records`). Used by :meth:`text`.
    """

    source: str
    kind: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_kept + sum(self.dropped.values()):
            raise AssertionError(
                f"row accounting broken for {self.source}: read {self.rows_read} != kept "
                f"{self.rows_kept} + dropped {sum(self.dropped.values())}"
            )

    def add_repair(self, reason: str, n: int, location: str | None = None) -> None:
        """Count ``n`` more kept rows repaired for ``reason`` (later stages extend the account).

        Parameters
        ----------
        reason : str
            Plain words, e.g. ``"blank value read as missing"``.
        n : int
            Rows concerned; ``0`` adds nothing.
        location : str or None
            Where it first happened (kept if the reason already has one).
        """
        n = int(n)
        if n <= 0:
            return
        self.repaired[reason] = self.repaired.get(reason, 0) + n
        if location and reason not in self.locations:
            self.locations[reason] = str(location)

    def add_note(self, text: str) -> None:
        """Add a note (something worth knowing that is not a row count), once.

        Parameters
        ----------
        text : str
            One plain sentence.
        """
        if text not in self.notes:
            self.notes.append(str(text))

    def to_dict(self) -> dict:
        """The account as plain JSON-able data.

        Returns
        -------
        dict
            Keys ``source``, ``kind``, ``rows_read``, ``rows_kept``, ``dropped``, ``repaired``,
            ``notes`` and ``locations``.
        """
        return {"source": self.source, "kind": self.kind, "rows_read": int(self.rows_read),
                "rows_kept": int(self.rows_kept),
                "dropped": {str(k): int(v) for k, v in self.dropped.items()},
                "repaired": {str(k): int(v) for k, v in self.repaired.items()},
                "notes": [str(n) for n in self.notes],
                "locations": {str(k): str(v) for k, v in self.locations.items()}}

    def text(self) -> str:
        """The account in plain words, as a command-line user reads it.

        Returns
        -------
        str
            ``"read 1,204 rows from x.csv; kept 1,198"``, then one line per drop and repair
            reason (largest first) with its count and first location, then the notes.
        """
        if self.unit:
            unit = f"{self.unit}s"
        else:
            unit = "lines" if self.kind == "events" and not self.source.endswith((".parquet", ".pq")) else "rows"
        out = [f"read {self.rows_read:,} {unit} from {self.source}; kept {self.rows_kept:,}"]
        for verb, d in (("dropped", self.dropped), ("repaired", self.repaired)):
            for reason, n in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])):
                where = self.locations.get(reason)
                out.append(f"  {verb} {n:,}: {reason}" + (f" (first at {where})" if where else ""))
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def table(self) -> pd.DataFrame:
        """The account as a table.

        Returns
        -------
        pandas.DataFrame
            Columns ``outcome`` (``"kept"``, ``"dropped"``, ``"repaired"``), ``reason``, ``rows``
            and ``share_of_read`` (rows / rows_read). The ``kept`` row comes first, then drops
            and repairs, each by decreasing count.
        """
        rows = [("kept", "kept", self.rows_kept)]
        for outcome, d in (("dropped", self.dropped), ("repaired", self.repaired)):
            rows += [(outcome, r, n) for r, n in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))]
        out = pd.DataFrame(rows, columns=["outcome", "reason", "rows"]).astype({"rows": "int64"})
        out["share_of_read"] = out["rows"] / self.rows_read if self.rows_read else float("nan")
        return out

    def _repr_html_(self) -> str:
        head = (f"<p><b>{html.escape(self.kind)}</b> from <code>{html.escape(self.source)}</code>: "
                f"{self.rows_read:,} rows read, {self.rows_kept:,} kept</p>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        table = self.table().to_html(index=False, float_format=lambda x: f"{x:.2%}")
        return head + table + (f"<ul>{notes}</ul>" if notes else "")


@dataclass
class EventLog:
    """A cleaned event log.

    Attributes
    ----------
    events : pandas.DataFrame
        Cleaned events: the :data:`~churnlib.schema.EVENT_COLUMNS`, sorted by
        ``ts, userId, sessionId, itemInSession``.
    quality : DataQuality
        What was dropped and repaired.
    page_counts_read : pandas.Series
        Page -> rows read with that page (before any dropping; guest rows included).
    """

    events: pd.DataFrame
    quality: DataQuality
    page_counts_read: pd.Series


@dataclass
class SnapshotTable:
    """A validated one-row-per-user snapshot table.

    Attributes
    ----------
    table : pandas.DataFrame
        The rows kept, in file order; ``id_col`` as str, ``label_col`` as int64 0/1.
    id_col, label_col : str or None
        Names of the id and label columns (None when the table has none, see :func:`load_table`).
    quality : DataQuality
        What was dropped and repaired.
    not_features : dict of str to str
        Column -> why it must not become a feature (a unique text value per row, i.e. an id
        other than ``id_col``; one value in every row).
    """

    table: pd.DataFrame
    id_col: str | None
    label_col: str | None
    quality: DataQuality
    not_features: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Paths, kinds and fingerprints
# --------------------------------------------------------------------------------------------

def _suffix_kind(p: Path) -> str | None:
    """'ndjson', 'parquet', 'csv' or None from the file name."""
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(_NDJSON_SUFFIXES):
            return "ndjson"
        if name.endswith(_CSV_SUFFIXES):
            return "csv"
        return None
    if name.endswith(_NDJSON_SUFFIXES):
        return "ndjson"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    return None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataValidationError("no such file or folder", file=path)


def _folder_files(path: Path) -> tuple[list[Path], list[Path]]:
    """(data files, ignored files) under a folder, sorted; hidden files are skipped."""
    data, ignored = [], []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if not p.is_file() or any(part.startswith((".", "_")) for part in rel.parts):
            continue
        (data if _suffix_kind(p) else ignored).append(p)
    return data, ignored


def _parquet_columns(path: Path) -> list[str]:
    try:
        con = duckdb.connect()
        try:
            return [r[0] for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
        finally:
            con.close()
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot read parquet file: {_short(exc)}", file=path) from None


def detect_kind(path: str | Path) -> str:
    """Tell an event log from a snapshot table by file name (and parquet schema).

    Parameters
    ----------
    path : str or Path
        A file or a folder.

    Returns
    -------
    str
        ``"events"`` for NDJSON files (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``),
        parquet with a ``page`` column, or a folder of those; ``"snapshot"`` for CSV
        (optionally ``.gz``), parquet without ``page``, or a folder of those.

    Raises
    ------
    DataValidationError
        Nonexistent path, unsupported extension, a folder without data files or with both kinds.
    """
    path = Path(path)
    _check_regular(path)
    if path.is_dir():
        files, _ = _folder_files(path)
        if not files:
            raise DataValidationError(
                "folder holds no data files (.json/.jsonl/.ndjson[.gz], .parquet, .csv[.gz])", file=path)
        kinds = {detect_kind(f) for f in files}
        if len(kinds) > 1:
            raise DataValidationError("folder mixes event files and snapshot files", file=path)
        return kinds.pop()
    sk = _suffix_kind(path)
    if sk == "ndjson":
        return "events"
    if sk == "csv":
        return "snapshot"
    if sk == "parquet":
        return "events" if "page" in _parquet_columns(path) else "snapshot"
    raise DataValidationError(
        "unsupported file type: expected .json, .jsonl, .ndjson (optionally .gz), .parquet "
        "or .csv (optionally .gz)", file=path)


def data_fingerprint(path: str | Path) -> str:
    """SHA-256 of the input's bytes, stable across machines.

    Parameters
    ----------
    path : str or Path
        A file (hash of its bytes) or a folder (hash over every file below it, in sorted order of
        relative POSIX path, each contributing its path and its bytes).

    Returns
    -------
    str
        Hex digest.
    """
    path = Path(path)
    _check_regular(path)
    h = hashlib.sha256()
    if path.is_file():
        _hash_file(h, path)
        return h.hexdigest()
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    for p in files:
        rel = p.relative_to(path).as_posix().encode()
        h.update(len(rel).to_bytes(8, "big") + rel + p.stat().st_size.to_bytes(8, "big"))
        _hash_file(h, p)
    return h.hexdigest()


def _hash_file(h, p: Path) -> None:
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


# --------------------------------------------------------------------------------------------
# DuckDB helpers
# --------------------------------------------------------------------------------------------

def _short(exc: BaseException) -> str:
    """First meaningful line of a DuckDB error, without its class prefix."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^[A-Za-z ]*Error: ", "", msg)


def _line_from(exc: BaseException) -> int | None:
    m = re.search(r"(?:Line|line):? (\d+)", str(exc))
    return int(m.group(1)) if m else None


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    try:
        con.execute("SET enable_progress_bar=false")  # no progress bars in logs
    except duckdb.Error:
        # Inside Jupyter without ipywidgets DuckDB refuses to touch this setting (it renders no bar there).
        pass
    return con


_SHARED: dict[tuple[str, ...], tuple[int, duckdb.DuckDBPyConnection]] = {}
_SHARED_LOCK = threading.Lock()
_LOAD_SETTINGS = ("SET TimeZone='UTC'", "SET enable_progress_bar=false")
#: Inputs up to this many rows count as small for :func:`memory_cursor`.
SMALL_INPUT_ROWS = 50_000
# For small inputs the fixed cost of each query dominates: one thread (no scheduling of workers
# for a few thousand rows) and IN lists kept as expressions (DuckDB otherwise turns each
# `x IN (5 constants)` into a join, i.e. one more pipeline per column). Results are the same.
_SMALL_SETTINGS = ("SET threads=1", "SET disabled_optimizers='in_clause'")


def memory_cursor(settings: Sequence[str] = (), *, rows: int | None = None) -> duckdb.DuckDBPyConnection:
    """A new connection to a process-wide in-memory DuckDB database, for inputs held in memory.

    Opening a DuckDB database costs about 20 ms (a large part of loading one user's events); a
    cursor of an open one costs microseconds. Each cursor is its own connection: its temporary
    tables, views and registered frames are its own and vanish when it is closed.

    Parameters
    ----------
    settings : sequence of str
        ``SET`` statements the database is opened with (and each cursor runs again): one database
        per distinct set of settings, so that callers needing different settings never share one.
    rows : int, optional
        Size of the input. Up to :data:`SMALL_INPUT_ROWS` rows, a database tuned for small inputs
        (single-threaded, IN lists not rewritten as joins: 30-40% less time per query for one
        user's events; the same results).

    Returns
    -------
    duckdb.DuckDBPyConnection
        Use it from one thread, and close it when done. Calling this function is thread-safe
        (e.g. from a server's thread pool); a forked process opens its own database.
    """
    key = tuple(settings) + (_SMALL_SETTINGS if rows is not None and rows <= SMALL_INPUT_ROWS else ())
    with _SHARED_LOCK:
        pid, db = _SHARED.get(key, (None, None))
        if pid != os.getpid():
            db = duckdb.connect()
            for stmt in key:
                _apply_setting(db, stmt)
            _SHARED[key] = (os.getpid(), db)
        cur = db.cursor()
    try:
        for stmt in key:
            _apply_setting(cur, stmt)
    except BaseException:
        cur.close()
        raise
    return cur


def _apply_setting(con, stmt: str) -> None:
    try:
        con.execute(stmt)
    except duckdb.Error:
        # Inside Jupyter without ipywidgets DuckDB refuses to touch the progress-bar setting.
        if "progress_bar" not in stmt:
            raise


def _q(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

def _stage_columns() -> str:
    cols = ["file_idx INTEGER", "ord BIGINT", "excerpt VARCHAR", "problem VARCHAR"]
    for c in EVENT_COLUMNS:
        cols += [f"k_{c} VARCHAR", f"s_{c} VARCHAR", f"n_{c} DOUBLE"]
    return ", ".join(cols)


def _stage_ndjson(con, idx: int, path: Path) -> None:
    """Stage one NDJSON file: one row per physical line, with its 1-based line number."""
    rej, scan = f"rej_{idx}", f"rejscan_{idx}"
    # One VARCHAR column per line: a delimiter that cannot occur in valid JSON, no quoting.
    src = (f"read_csv({_q(str(path))}, columns={{'line': 'VARCHAR'}}, header=false, "
           f"delim='\x01', quote='', escape='', auto_detect=false, strict_mode=false, "
           f"null_padding=false, ignore_errors=true, store_rejects=true, "
           f"rejects_table='{rej}', rejects_scan='{scan}', compression='auto')")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT ordinality AS ord0, line "
                    f"FROM {src} WITH ORDINALITY")
        rejects = con.execute(
            f"SELECT line, any_value(error_type), any_value(csv_line) FROM {rej} "
            f"GROUP BY line ORDER BY line").fetchall()
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot read file: {_short(exc)}", file=path,
                                  line=_line_from(exc)) from None
    if rejects:
        # Rejected lines are missing from the ordinality count: shift the numbers back.
        # Good lines before reject j (1-based rank) = line_j - j, a nondecreasing key.
        con.execute("CREATE OR REPLACE TEMP TABLE rejadj (adj BIGINT, n BIGINT)")
        con.executemany("INSERT INTO rejadj VALUES (?, ?)",
                        [(int(r[0]) - j, j) for j, r in enumerate(rejects, start=1)])
        con.execute("""CREATE OR REPLACE TEMP TABLE raw AS
            SELECT raw.ord0 + coalesce(a.n, 0) AS ord0, raw.line
            FROM raw ASOF LEFT JOIN (SELECT adj, max(n) AS n FROM rejadj GROUP BY adj) a
              ON raw.ord0 > a.adj""")
    try:
        con.execute(_parse_raw_sql(idx))
        if rejects:
            con.executemany(
                "INSERT INTO stg (file_idx, ord, excerpt, problem) VALUES (?, ?, ?, ?)",
                [(idx, int(r[0]), (r[2] or "")[:_EXCERPT],
                  "non-UTF-8 line" if "ENCODING" in str(r[1]).upper() else "unreadable line")
                 for r in rejects])
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot parse file: {_short(exc)}", file=path) from None


def _parse_raw_sql(idx: int) -> str:
    """SQL staging the JSON lines of ``raw (ord0, line)`` into ``stg`` as file ``idx``.

    The one parser of JSON events: NDJSON files (:func:`_stage_ndjson`) and records given in memory
    (:func:`load_event_records`, one JSON line per record) both go through it.
    """
    paths = ", ".join(_q(f"$.{c}") for c in EVENT_COLUMNS)
    # Two parses per line (types, then values as text) instead of one per field.
    vals = ", ".join(
        f"kt[{i}] AS k_{c}, vs[{i}] AS s_{c}, "
        f"CASE WHEN kt[{i}] IN {_NUM_TYPES} THEN TRY_CAST(vs[{i}] AS DOUBLE) END AS n_{c}"
        for i, c in enumerate(EVENT_COLUMNS, start=1))
    ws = "' \t\r'"
    sql = f"""
    INSERT INTO stg
    WITH p AS (
        SELECT ord0 AS ord, line,
            CASE WHEN line IS NULL OR trim(line, {ws}) = '' THEN '{BLANK_REASON}'
                 WHEN NOT json_valid(line) OR left(ltrim(line, {ws}), 1) <> '{{' THEN 'unparseable line'
            END AS problem
        FROM raw),
    k AS MATERIALIZED (SELECT ord, line, problem,
                 CASE WHEN problem IS NULL THEN json_type(line, [{paths}]) END AS kt,
                 CASE WHEN problem IS NULL THEN json_extract_string(line, [{paths}]) END AS vs
          FROM p)
    SELECT {idx}, ord, left(line, {_EXCERPT}), problem, {vals} FROM k
    """
    return sql


def _stage_parquet(con, idx: int, path: Path) -> int:
    """Stage one parquet file: typed columns mapped onto the (kind, text, number) triples."""
    try:
        schema = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot read parquet file: {_short(exc)}", file=path) from None
    types = {r[0]: str(r[1]).upper() for r in schema}
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in types]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {missing}; columns present: {sorted(types)}",
            file=path, column=", ".join(missing))
    exprs = []
    for c in EVENT_COLUMNS:
        t = types.get(c)
        col = _ident(c)
        need_text = c == "userId" or c in _TEXT_COLS or c == "page"
        if t is None:
            exprs.append(f"NULL AS k_{c}, NULL AS s_{c}, NULL AS n_{c}")
            continue
        if re.match(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|U?HUGEINT)$", t):
            kind, num = "'BIGINT'", f"CAST({col} AS DOUBLE)"
        elif t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
            kind, num = "'DOUBLE'", f"CAST({col} AS DOUBLE)"
        elif t.startswith("TIMESTAMP") or t == "DATE":
            kind, num = "'TIMESTAMP'", f"CAST(epoch_ms(CAST({col} AS TIMESTAMPTZ)) AS DOUBLE)"
        elif t == "VARCHAR":
            kind, num = "'VARCHAR'", "NULL"
        elif t == "BOOLEAN":
            kind, num = "'BOOLEAN'", "NULL"
        else:
            kind, num = "'OTHER'", "NULL"
        text = col if t == "VARCHAR" else (f"CAST({col} AS VARCHAR)" if need_text or kind == "'OTHER'"
                                           or kind == "'BOOLEAN'" else "NULL")
        exprs.append(f"CASE WHEN {col} IS NULL THEN 'NULL' ELSE {kind} END AS k_{c}, "
                     f"{text} AS s_{c}, {num} AS n_{c}")
    try:
        # A view, not a copy: parquet is already typed, so the cleaning query reads it directly.
        con.execute(f"CREATE TEMP VIEW pq_{idx} AS SELECT {idx} AS file_idx, file_row_number + 1 "
                    f"AS ord, NULL::VARCHAR AS excerpt, NULL::VARCHAR AS problem, {', '.join(exprs)} "
                    f"FROM read_parquet({_q(str(path))}, file_row_number=true)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet({_q(str(path))})").fetchone()[0])
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot read parquet file: {_short(exc)}", file=path) from None


# Repair flags: (reason, column, SQL condition on the `c` CTE). Only counted on kept rows.
def _repair_rules() -> list[tuple[str, str, str]]:
    rules = [
        ("ts in seconds converted to ms", "ts", "ts_sec"),
        (NUMERIC_TEXT_REASON, "ts", "ts_numstr IS NOT NULL AND ts_iso IS NULL"),
        ("numeric userId cast to string", "userId", f"k_userId IN {_NUM_TYPES} AND uid_mixed"),
        ("sessionId string cast to integer", "sessionId", "k_sessionId = 'VARCHAR'"),
        ("itemInSession derived from order in session", "itemInSession", "iis_raw IS NULL"),
        (NUMERIC_TEXT_REASON, "itemInSession", "k_itemInSession = 'VARCHAR' AND iis_raw IS NOT NULL"),
        (NUMERIC_TEXT_REASON, "status", "k_status = 'VARCHAR' AND status_v IS NOT NULL"),
        (NUMERIC_TEXT_REASON, "length", "k_length = 'VARCHAR' AND len_raw IS NOT NULL"),
        (NUMERIC_TEXT_REASON, "registration", "k_registration = 'VARCHAR' AND reg_numstr IS NOT NULL"),
        (BLANK_VALUE_REASON, "status", f"k_status = 'VARCHAR' AND trim(s_status, {_WS}) = ''"),
        (BLANK_VALUE_REASON, "length", f"k_length = 'VARCHAR' AND trim(s_length, {_WS}) = ''"),
        (BLANK_VALUE_REASON, "registration", f"k_registration = 'VARCHAR' AND trim(s_registration, {_WS}) = ''"),
        ("bad status set to null", "status",
         f"k_status NOT IN ('NULL') AND status_v IS NULL AND NOT (k_status = 'VARCHAR' AND trim(s_status, {_WS}) = '')"),
        ("negative length set to null", "length", "len_raw < 0"),
        ("bad length set to null", "length",
         f"k_length NOT IN ('NULL') AND len_raw IS NULL AND NOT (k_length = 'VARCHAR' AND trim(s_length, {_WS}) = '')"),
        ("registration in seconds converted to ms", "registration", "reg_sec"),
        ("implausible registration set to null", "registration", "reg_raw IS NOT NULL AND reg_ms IS NULL"),
        ("bad registration set to null", "registration",
         f"k_registration NOT IN ('NULL') AND reg_raw IS NULL AND NOT (k_registration = 'VARCHAR' AND trim(s_registration, {_WS}) = '')"),
        ("unknown auth set to null", "auth", f"auth_txt IS NOT NULL AND auth_txt NOT IN {_sql_set(AUTH_VALUES)}"),
        ("unknown level set to null", "level", f"level_txt IS NOT NULL AND level_txt NOT IN {_sql_set(LEVEL_VALUES)}"),
    ]
    rules += [(f"non-text {c} cast to string", c, f"k_{c} NOT IN ('VARCHAR', 'NULL')") for c in _TEXT_COLS]
    return rules


def event_repair_rules() -> list[tuple[str, str, str]]:
    """The repair rules of the event cleaning, in the order of the flags ``r0, r1, ...``.

    The one definition both engines use: the DuckDB loader counts repairs with it, and
    :mod:`churnlib.spark_load` reads the same flags from the same cleaning query
    (:func:`clean_events_sql`).

    Returns
    -------
    list of (str, str, str)
        ``(reason, column, SQL condition)``; flag ``r{i}`` of :func:`clean_events_sql` is rule ``i``
        (true on a row the rule repaired). A reason can have several rules (one per column).
    """
    return _repair_rules()


def event_drop_column(reason: str) -> str | None:
    """The column a drop reason of the event cleaning concerns (None: the whole row or line).

    Parameters
    ----------
    reason : str
        A key of ``DataQuality.dropped``, e.g. ``"implausible timestamp"``.

    Returns
    -------
    str or None
        ``"ts"`` for timestamp drops, ``"userId"``, ``"sessionId"``, ``"page"``; None otherwise.
    """
    return _DROP_COLUMN.get(reason)


#: Repairs noted per column in ``quality.notes``, in this order, with what the column held.
_COLUMN_NOTES = ((NUMERIC_TEXT_REASON, "numbers stored as text: read as numbers"),
                 (BLANK_VALUE_REASON, "blank text: read as missing"))


def event_repair_notes(rule_counts: Sequence[int]) -> list[str]:
    """The per-column notes of an event account (numbers stored as text, blank values).

    Parameters
    ----------
    rule_counts : sequence of int
        Kept rows flagged by each rule of :func:`event_repair_rules` (same order and length).

    Returns
    -------
    list of str
        ``"column 'length' held 3 numbers stored as text: read as numbers"``, numeric text first,
        then blank values, each in rule order; rules with no row give no note.
    """
    rules = _repair_rules()
    out: list[str] = []
    for reason, verb in _COLUMN_NOTES:
        out += [f"column {rules[i][1]!r} held {int(n):,} {verb}" for i, n in enumerate(rule_counts)
                if rules[i][0] == reason and n]
    return out


def numeric_userid_note(n: int) -> str:
    """The note for ``n`` numeric userId values in files whose ids are all numbers (cast to string).

    Parameters
    ----------
    n : int
        Values cast (positive).

    Returns
    -------
    str
        One plain sentence.
    """
    return f"{n} numeric userId value(s) in file(s) with only numeric ids cast to string"


def _sql_set(values: Iterable[str]) -> str:
    return "(" + ", ".join(_q(v) for v in sorted(values)) + ")"


_DROP_COLUMN = {
    "unparseable line": None, "non-UTF-8 line": None, "unreadable line": None,
    "bad timestamp": "ts", IMPLAUSIBLE_TS_REASON: "ts", "bad userId": "userId", "bad sessionId": "sessionId",
    "unknown page": "page", "exact duplicate row": None,
}


def _num_text(col: str) -> str:
    """SQL: the finite number a VARCHAR value spells (trimmed), else NULL."""
    v = f"TRY_CAST(trim(s_{col}, {_WS}) AS DOUBLE)"
    return f"CASE WHEN k_{col} = 'VARCHAR' AND isfinite({v}) THEN {v} END"


def clean_events_sql() -> str:
    """The query that cleans staged event rows: the one definition of the event rules.

    Reads ``stg_all`` (one row per line or parquet row: ``file_idx, ord, excerpt, problem`` and,
    per column of :data:`~churnlib.schema.EVENT_COLUMNS`, its JSON/parquet kind ``k_<col>``
    (``'BIGINT'``, ``'DOUBLE'``, ``'VARCHAR'``, ``'TIMESTAMP'``, ``'BOOLEAN'``, ``'NULL'``, other),
    text ``s_<col>`` and number ``n_<col>``) and ``mix`` (``file_idx, uid_mixed``). Written in
    DuckDB SQL; :mod:`churnlib.spark_load` runs it on Spark through :func:`churnlib.spark_sql.to_spark`.

    Returns
    -------
    str
        A ``WITH ... SELECT`` returning ``file_idx, ord, excerpt, drop_reason, page_read, k_page``,
        the cleaned event columns and one flag ``r{i}`` per rule of :func:`event_repair_rules`. The
        plausible-time window ends at the time of the call (now + 1 day).
    """
    nums = _NUM_TYPES
    lo_ms, hi_ms = _plausible_window()
    lo_s, hi_s = lo_ms / 1000, hi_ms / 1000
    text_exprs = ",\n".join(
        f"CASE WHEN k_{c} IS NULL OR k_{c} = 'NULL' THEN NULL ELSE s_{c} END AS {c}_txt"
        for c in _TEXT_COLS)
    rules = _repair_rules()
    flags = ",\n".join(f"({cond}) IS TRUE AS r{i}" for i, (_, _, cond) in enumerate(rules))
    return f"""
    WITH a AS (
        SELECT stg_all.*, mix.uid_mixed,
            CASE WHEN k_ts = 'VARCHAR' THEN epoch_ms(TRY_CAST(s_ts AS TIMESTAMPTZ)) END AS ts_iso,
            CASE WHEN k_ts = 'VARCHAR' THEN TRY_CAST(s_ts AS DOUBLE) END AS ts_numstr,
            CASE WHEN k_userId = 'VARCHAR' THEN s_userId
                 WHEN k_userId IN ('BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT') THEN s_userId
                 WHEN k_userId = 'DOUBLE' AND n_userId = round(n_userId) AND abs(n_userId) < 9e15
                      THEN CAST(CAST(n_userId AS BIGINT) AS VARCHAR)
            END AS uid,
            CASE WHEN k_sessionId IN {nums} AND n_sessionId = round(n_sessionId) AND abs(n_sessionId) < 9e18
                      THEN CAST(n_sessionId AS BIGINT)
                 WHEN k_sessionId = 'VARCHAR' AND regexp_full_match(trim(s_sessionId), '-?[0-9]{{1,18}}')
                      THEN CAST(trim(s_sessionId) AS BIGINT)
            END AS sid,
            CASE WHEN k_page = 'VARCHAR' AND s_page IN {_sql_set(KNOWN_PAGES)} THEN s_page END AS page_ok,
            coalesce(n_itemInSession, {_num_text("itemInSession")}) AS iis_num,
            coalesce(n_status, {_num_text("status")}) AS status_num,
            {_num_text("registration")} AS reg_numstr,
            CASE WHEN k_length IN {nums} AND isfinite(n_length) THEN n_length
                 ELSE {_num_text("length")} END AS len_raw,
            {text_exprs}
        FROM stg_all JOIN mix USING (file_idx)),
    a2 AS (
        SELECT a.*,
            CASE WHEN (k_itemInSession IN {nums} OR k_itemInSession = 'VARCHAR')
                      AND iis_num = round(iis_num) AND iis_num >= 0 AND iis_num < 9e18
                      THEN CAST(iis_num AS BIGINT) END AS iis_raw,
            CASE WHEN (k_status IN {nums} OR k_status = 'VARCHAR')
                      AND status_num = round(status_num) AND abs(status_num) < 2e9
                      THEN CAST(status_num AS BIGINT) END AS status_v,
            CASE WHEN k_registration IN {nums} AND isfinite(n_registration) THEN n_registration
                 WHEN k_registration = 'TIMESTAMP' THEN n_registration
                 WHEN reg_numstr IS NOT NULL THEN reg_numstr
                 WHEN k_registration = 'VARCHAR'
                      THEN CAST(epoch_ms(TRY_CAST(s_registration AS TIMESTAMPTZ)) AS DOUBLE)
            END AS reg_raw
        FROM a),
    b AS (
        SELECT a2.*,
            CASE WHEN k_ts IN {nums} OR k_ts = 'TIMESTAMP' THEN n_ts
                 WHEN ts_iso IS NOT NULL THEN CAST(ts_iso AS DOUBLE)
                 ELSE ts_numstr END AS ts_raw,
            coalesce(k_ts IN {nums} OR (k_ts = 'VARCHAR' AND ts_iso IS NULL), false) AS ts_may_be_sec,
            coalesce(reg_raw >= {lo_s} AND reg_raw <= {hi_s}
                     AND (k_registration IN {nums} OR reg_numstr IS NOT NULL), false) AS reg_sec
        FROM a2),
    c AS (
        SELECT b.*,
            ts_may_be_sec AND ts_raw >= {lo_s} AND ts_raw <= {hi_s} AS ts_sec,
            ts_raw IS NOT NULL AND isfinite(ts_raw) AS ts_finite,
            CASE WHEN ts_raw IS NULL OR NOT isfinite(ts_raw) THEN NULL
                 WHEN ts_may_be_sec AND ts_raw >= {lo_s} AND ts_raw <= {hi_s}
                      THEN CAST(round(ts_raw * 1000) AS BIGINT)
                 WHEN ts_raw >= {lo_ms} AND ts_raw <= {hi_ms} THEN CAST(round(ts_raw) AS BIGINT)
            END AS ts_v,
            CASE WHEN reg_sec THEN round(reg_raw * 1000)
                 WHEN reg_raw >= {lo_ms} AND reg_raw <= {hi_ms} THEN round(reg_raw) END AS reg_ms
        FROM b)
    SELECT file_idx, ord, excerpt,
        CASE WHEN problem IS NOT NULL THEN problem
             WHEN k_userId IS NULL OR k_userId = 'NULL'
                  OR (k_userId = 'VARCHAR' AND trim(s_userId) = '') THEN '{GUEST_REASON}'
             WHEN uid IS NULL THEN 'bad userId'
             WHEN ts_v IS NULL AND ts_finite THEN '{IMPLAUSIBLE_TS_REASON}'
             WHEN ts_v IS NULL THEN 'bad timestamp'
             WHEN sid IS NULL THEN 'bad sessionId'
             WHEN page_ok IS NULL THEN 'unknown page'
        END AS drop_reason,
        s_page AS page_read, k_page,
        ts_v AS ts, uid AS userId, sid AS sessionId, page_ok AS page,
        auth_txt AS auth, method_txt AS method,
        status_v AS status,
        CASE WHEN level_txt IN {_sql_set(LEVEL_VALUES)} THEN level_txt END AS level,
        iis_raw AS itemInSession,
        location_txt AS location, userAgent_txt AS userAgent, firstName_txt AS firstName,
        lastName_txt AS lastName,
        CAST(reg_ms AS BIGINT) AS registration,
        gender_txt AS gender, artist_txt AS artist, song_txt AS song,
        CASE WHEN len_raw >= 0 THEN len_raw END AS length,
        {flags}
    FROM c
    """.replace("auth_txt AS auth,",
                f"CASE WHEN auth_txt IN {_sql_set(AUTH_VALUES)} THEN auth_txt END AS auth,")


def _clean_sql() -> str:
    return "CREATE OR REPLACE TEMP TABLE cl AS" + clean_events_sql()


def event_file_kind(path: str | Path) -> str | None:
    """What the loaders read a file as, from its name: ``"ndjson"``, ``"parquet"``, ``"csv"`` or None.

    Parameters
    ----------
    path : str or Path
        A file name or path (only the name is looked at; ``.gz`` is allowed for NDJSON and CSV).

    Returns
    -------
    str or None
    """
    return _suffix_kind(Path(path))


def event_files(path: str | Path) -> tuple[list[Path], list[str]]:
    """The event files :func:`load_events` reads for a path, and the notes it starts the account with.

    Parameters
    ----------
    path : str or Path
        An event file or a folder (read recursively in sorted order; hidden files skipped).

    Returns
    -------
    files : list of Path
        NDJSON and parquet files, in the order their rows are numbered.
    notes : list of str
        E.g. the non-event files ignored in the folder.

    Raises
    ------
    DataValidationError
        Nonexistent path, not a regular file, unsupported extension, folder without event files.
    """
    return _event_files(Path(path))


def _event_files(path: Path) -> tuple[list[Path], list[str]]:
    _check_regular(path)
    notes: list[str] = []
    if path.is_dir():
        files, ignored = _folder_files(path)
        files = [f for f in files if _suffix_kind(f) in ("ndjson", "parquet")]
        if not files:
            raise DataValidationError(
                "folder holds no event files (.json, .jsonl, .ndjson, optionally .gz, or .parquet)",
                file=path)
        if ignored:
            notes.append(f"ignored {len(ignored)} non-event file(s) in the folder: "
                         + ", ".join(p.relative_to(path).as_posix() for p in ignored[:10]))
        return files, notes
    kind = _suffix_kind(path)
    if kind not in ("ndjson", "parquet"):
        raise DataValidationError(
            "unsupported file type for an event log: expected .json, .jsonl, .ndjson "
            "(optionally .gz) or .parquet", file=path)
    return [path], notes


def load_events(path: str | Path, *, strict: bool = False) -> EventLog:
    """Load, validate and clean an event log.

    Parameters
    ----------
    path : str or Path
        An NDJSON file (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``), a parquet file,
        or a folder of such files (read recursively in sorted order; hidden files and other
        extensions are ignored and listed in ``quality.notes``).
    strict : bool, default False
        Raise :class:`DataValidationError` on the first defect (in file, line order) instead of
        repairing or dropping it. Guest rows (empty ``userId``) and blank lines are dropped and
        counted in both modes. See the module docstring for the defect policy.

    Returns
    -------
    EventLog
        ``events`` with dtypes ts int64 (epoch ms UTC), userId str, sessionId int64, page str,
        status Int64, itemInSession int64, registration Int64 (epoch ms), length float64, other
        columns str (nullable); sorted by ``ts, userId, sessionId, itemInSession``.

    Raises
    ------
    DataValidationError
        See the module docstring.
    """
    path = Path(path)
    files, notes = _event_files(path)
    con = _connect()
    try:
        con.execute(f"CREATE TEMP TABLE stg ({_stage_columns()})")
        parts = ["SELECT * FROM stg"]
        for idx, f in enumerate(files):
            if _suffix_kind(f) == "parquet":
                n = _stage_parquet(con, idx, f)
                parts.append(f"SELECT * FROM pq_{idx}")
                empty = n == 0
            else:
                _stage_ndjson(con, idx, f)
                _check_required_ndjson(con, idx, f)
                empty = _only_blank(con, idx)
            if empty:
                if len(files) == 1:
                    raise DataValidationError("file is empty: no rows to load", file=f)
                notes.append(f"empty file (no rows): {f.relative_to(path).as_posix()}")
        _combine_staged(con, parts)
        return _finish_events(con, path, files, notes, strict)
    except DataValidationError:
        raise
    except duckdb.Error as exc:  # anything not located more precisely above
        raise DataValidationError(f"cannot load event log: {_short(exc)}", file=path) from None
    finally:
        con.close()


def load_event_records(records: Sequence[Mapping[str, Any]], *, strict: bool = False,
                       source: str = "request", lossless_ok: bool = False) -> EventLog:
    """Load, validate and clean events given in memory, e.g. the ``events`` of a JSON request body.

    The same rules, repairs, drops, counts and words as :func:`load_events`, through the same
    code: each record becomes one JSON line, staged and cleaned exactly as a line of an NDJSON
    file. Locations name the record (1-based) with the unit ``"event"``: ``"event 3, column
    'ts'"``; errors carry ``file=source``, ``line=<record number>``, ``column`` and
    ``unit="event"``.

    Parameters
    ----------
    records : sequence of mapping
        One mapping per event in the Sparkify schema; ``ts`` in epoch ms (a number) or an
        ISO-8601 string (naive: UTC). Values must be JSON values (numpy scalars, ``datetime``
        and ``pandas.Timestamp`` are accepted and written as numbers or ISO text).
    strict : bool, default False
        Raise on the first defect (in record order) instead of repairing or dropping it; guest
        records (empty ``userId``) are dropped and counted in both modes.
    source : str, default "request"
        Name of the input in the account and in errors.
    lossless_ok : bool, default False
        With ``strict``: accept (and count) the repairs in :data:`LOSSLESS_REPAIRS` (``"179"`` for
        a session id, a missing ``itemInSession``), refuse the rest.

    Returns
    -------
    EventLog
        As :func:`load_events` (``quality.unit == "event"``; ``rows_read`` counts records).

    Raises
    ------
    DataValidationError
        Not a list, an empty list, a record that is not a mapping or holds a value that is not
        JSON, a required key (:data:`~churnlib.schema.REQUIRED_EVENT_COLUMNS`) absent from every
        record, no record left after cleaning; in strict mode any defect.
    """
    unit = RECORD_UNIT
    if isinstance(records, (str, bytes, bytearray, Mapping)) or not isinstance(records, (Sequence, pd.Series)):
        raise DataValidationError(f"events must be a list of event objects, not {type(records).__name__}",
                                  file=source, unit=unit)
    if len(records) == 0:
        raise DataValidationError("no events: the list is empty", file=source, unit=unit)
    lines = [_record_line(r, i, source) for i, r in enumerate(records, start=1)]
    con = memory_cursor(_LOAD_SETTINGS, rows=len(lines))
    try:
        con.execute(f"CREATE TEMP TABLE stg ({_stage_columns()})")
        raw = pa.table({"ord0": pa.array(range(1, len(lines) + 1), type=pa.int64()),
                        "line": pa.array(lines, type=pa.string())})
        con.register("raw", raw)  # read in place (no copy): the parse below and the missing-key check
        con.execute(_parse_raw_sql(0))
        _check_required_ndjson(con, 0, source, unit)
        _combine_staged(con, ["SELECT * FROM stg"])
        return _finish_events(con, source, [source], [], strict, unit,
                              allowed=LOSSLESS_REPAIRS if lossless_ok else frozenset())
    except DataValidationError:
        raise
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot load events: {_short(exc)}", file=source, unit=unit) from None
    finally:
        con.close()


def _json_value(o: Any) -> Any:
    """JSON form of the non-JSON scalars a Python caller may hold (numpy numbers, datetimes)."""
    if isinstance(o, (pd.Timestamp, dt.datetime, dt.date)):
        return o.isoformat()
    item = getattr(o, "item", None)
    if callable(item):
        v = item()
        if isinstance(v, (bool, int, float, str)) or v is None:
            return v
    raise TypeError(f"a {type(o).__name__} is not a JSON value")


# One encoder for every record: ``json.dumps`` with options builds a new one per call.
_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_value, allow_nan=True)


def _record_line(record: Any, i: int, source: str) -> str:
    """One record as one JSON line (what an NDJSON file would hold), or a located error."""
    if not isinstance(record, Mapping):
        raise DataValidationError(f"an event must be an object (a mapping of column to value), not "
                                  f"{type(record).__name__}", file=source, line=i, unit=RECORD_UNIT)
    try:
        # allow_nan: NaN / Infinity are written as such (invalid JSON), so the record is an
        # "unparseable line", as the same value in a file would be.
        text = _RECORD_ENCODER.encode(record)  # json.dumps(record, ensure_ascii=False, default=..., allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"an event value is not JSON: {exc}", file=source, line=i,
                                  unit=RECORD_UNIT) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it escaped, as a file would
        text = json.dumps(record, ensure_ascii=True, default=_json_value, allow_nan=True)
    return text


def _combine_staged(con, parts: list[str]) -> None:
    """View ``stg_all`` over the staged parts, and ``mix``: per file, are its userIds mixed types."""
    con.execute(f"CREATE TEMP VIEW stg_all AS {' UNION ALL '.join(parts)}")
    con.execute(f"""CREATE TEMP TABLE mix AS SELECT file_idx,
        count(*) FILTER (WHERE k_userId IN {_NUM_TYPES}) AS n_num,
        count(*) FILTER (WHERE k_userId = 'VARCHAR' AND trim(s_userId) <> '') AS n_str,
        n_num > 0 AND n_str > 0 AS uid_mixed
        FROM stg_all GROUP BY file_idx""")


def _only_blank(con, idx: int) -> bool:
    return con.execute(
        f"SELECT count(*) FILTER (WHERE problem IS DISTINCT FROM '{BLANK_REASON}') = 0 "
        f"FROM stg WHERE file_idx = ?", [idx]).fetchone()[0]


def _check_required_ndjson(con, idx: int, f: Path | str, unit: str | None = None) -> None:
    """A required key absent from every parsed line of a file (or every record) is a missing column."""
    present = ", ".join(f"count(k_{c}) AS {c}" for c in REQUIRED_EVENT_COLUMNS)
    row = con.execute(f"SELECT count(*) FILTER (WHERE problem IS NULL), {present} "
                      f"FROM stg WHERE file_idx = ?", [idx]).fetchone()
    if row[0] == 0:
        return
    missing = [c for c, n in zip(REQUIRED_EVENT_COLUMNS, row[1:]) if n == 0]
    if missing:
        keys = con.execute(
            "SELECT DISTINCT unnest(json_keys(line)) FROM (SELECT line FROM raw "
            "WHERE json_valid(line) AND left(ltrim(line), 1) = '{' LIMIT 1000) ORDER BY 1").fetchall()
        raise DataValidationError(
            f"missing required column(s) {missing}; columns present: {[k[0] for k in keys]}",
            file=f, column=", ".join(missing), unit=unit or "line")


def _finish_events(con, path: Path | str, files: list[Path] | list[str], notes: list[str], strict: bool,
                   unit: str | None = None, allowed: frozenset[str] = frozenset()) -> EventLog:
    """Clean the staged rows (``stg_all``, ``mix``): drops, repairs, duplicates, the account.

    ``unit`` is None for files (locations name lines or parquet rows, and the file inside a
    folder); for records given in memory it is :data:`RECORD_UNIT` and ``path`` the source's name.
    """
    rules = _repair_rules()
    con.execute(_clean_sql())
    # Exact duplicates: identical cleaned values in every column; the first (file, line) is kept.
    cols = ", ".join(_ident(c) for c in EVENT_COLUMNS)
    # A 64-bit hash finds candidate groups cheaply; exact comparison only within them.
    # Most inputs have no two rows with the same hash: then nothing to compare or mark (one cheap query).
    if con.execute(f"SELECT count(*) > count(DISTINCT hash({cols})) FROM cl WHERE drop_reason IS NULL").fetchone()[0]:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE dup AS
            WITH h AS (SELECT file_idx, ord, hash({cols}) AS h FROM cl WHERE drop_reason IS NULL),
            cand AS (SELECT h FROM h GROUP BY h HAVING count(*) > 1),
            rows AS (SELECT cl.* FROM cl JOIN h USING (file_idx, ord) SEMI JOIN cand USING (h))
            SELECT file_idx, ord FROM (
                SELECT file_idx, ord, row_number() OVER (PARTITION BY {cols} ORDER BY file_idx, ord) AS rn
                FROM rows) WHERE rn > 1""")
        con.execute("""UPDATE cl SET drop_reason = 'exact duplicate row'
                       FROM dup WHERE cl.file_idx = dup.file_idx AND cl.ord = dup.ord""")

    if strict:
        _raise_first_defect(con, files, rules, unit, allowed)

    rows_read = con.execute("SELECT count(*) FROM cl").fetchone()[0]
    locations: dict[str, str] = {}
    dropped = {}
    for reason, n, first in con.execute(
            "SELECT drop_reason, count(*), min({'f': file_idx, 'o': ord}) FROM cl "
            "WHERE drop_reason IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall():
        dropped[reason] = n
        locations[reason] = _event_where(path, files, first["f"], first["o"], _DROP_COLUMN.get(reason), unit)
    # A reason can have several rules (one per column): rows count once per reason.
    reasons = list(dict.fromkeys(r for r, _, _ in rules))
    by_reason = {r: [i for i, rule in enumerate(rules) if rule[0] == r] for r in reasons}
    sums = ", ".join(f"count(*) FILTER (WHERE {' OR '.join(f'r{i}' for i in by_reason[r])})"
                     for r in reasons)
    counts = con.execute(f"SELECT {sums} FROM cl WHERE drop_reason IS NULL").fetchone()
    repaired = {r: int(n) for r, n in zip(reasons, counts) if n}
    if repaired:
        found = [i for r in repaired for i in by_reason[r]]
        firsts = con.execute("SELECT " + ", ".join(
            f"min({{'f': file_idx, 'o': ord}}) FILTER (WHERE r{i})" for i in found)
            + " FROM cl WHERE drop_reason IS NULL").fetchone()
        for r in repaired:
            cands = [(first["f"], first["o"], rules[i][1]) for i, first in zip(found, firsts)
                     if rules[i][0] == r and first is not None]
            f_idx, ord_, column = min(cands)
            locations[r] = _event_where(path, files, f_idx, ord_, column, unit)
    noted = [i for r, _ in _COLUMN_NOTES if r in repaired for i in by_reason[r]]
    if noted:
        per_rule = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE r{i})" for i in noted)
                               + " FROM cl WHERE drop_reason IS NULL").fetchone()
        rule_counts = [0] * len(rules)
        for i, n in zip(noted, per_rule):
            rule_counts[i] = int(n)
        notes += event_repair_notes(rule_counts)
    numeric_ids = con.execute("SELECT coalesce(sum(n_num), 0) FROM mix WHERE n_str = 0").fetchone()[0]
    if numeric_ids:
        notes.append(numeric_userid_note(numeric_ids))

    page_counts = con.execute(
        "SELECT page_read, count(*) AS n FROM cl WHERE k_page = 'VARCHAR' "
        "GROUP BY 1 ORDER BY n DESC, page_read").fetchall()
    page_counts_read = pd.Series({p: int(n) for p, n in page_counts}, dtype="int64", name="rows_read")
    page_counts_read.index = pd.Index(page_counts_read.index, dtype=str, name="page")

    # itemInSession repair: position within (userId, sessionId) by time, then line.
    derive = "itemInSession derived from order in session" in repaired
    out_cols = ", ".join(
        "coalesce(itemInSession, row_number() OVER (PARTITION BY userId, sessionId "
        "ORDER BY ts, file_idx, ord) - 1) AS itemInSession" if c == "itemInSession" and derive
        else _ident(c) for c in EVENT_COLUMNS)
    # Through Arrow: much faster than .df() for the string columns.
    events = con.sql(
        f"SELECT * FROM (SELECT {out_cols}, file_idx, ord FROM cl WHERE drop_reason IS NULL) "
        f"ORDER BY ts, userId, sessionId, itemInSession, file_idx, ord").to_arrow_table()
    events = events.select(list(EVENT_COLUMNS)).to_pandas(types_mapper=_arrow_types)
    rows_kept = len(events)
    quality = DataQuality(source=str(path), kind="events", rows_read=int(rows_read),
                          rows_kept=rows_kept, dropped={k: int(v) for k, v in dropped.items()},
                          repaired=repaired, notes=notes, locations=locations, unit=unit)
    if rows_kept == 0:
        what = f"{unit}s" if unit else "rows"
        raise DataValidationError(
            f"no usable {what}: all {rows_read} {what} read were dropped ({quality.dropped})", file=path,
            unit=unit or "line")
    return EventLog(events=_event_dtypes(events), quality=quality, page_counts_read=page_counts_read)


def _event_where(path: Path | str, files: list[Path] | list[str], file_idx: int, ord_: int,
                 column: str | None, unit: str | None = None) -> str:
    """'line 17, column 'ts'' (or 'row 3' for parquet), prefixed by the file inside a folder."""
    if unit:  # records in memory: no file to name
        return _where(unit, ord_, column)
    f = files[file_idx]
    where = _where("row" if _suffix_kind(f) == "parquet" else "line", ord_, column)
    return f"{f.relative_to(path).as_posix()}, {where}" if path.is_dir() else where


def _raise_first_defect(con, files: list[Path] | list[str], rules, unit: str | None = None,
                        allowed: frozenset[str] = frozenset()) -> None:
    non_defect = ", ".join(_q(r) for r in NON_DEFECT_DROPS)
    refused = [i for i, rule in enumerate(rules) if rule[0] not in allowed]
    any_flag = " OR ".join(f"r{i}" for i in refused)
    flag_list = ", ".join(f"r{i}" for i in refused)
    row = con.execute(f"""
        SELECT file_idx, ord, excerpt, drop_reason, {flag_list} FROM cl
        WHERE (drop_reason IS NOT NULL AND drop_reason NOT IN ({non_defect}))
           OR (drop_reason IS NULL AND ({any_flag}))
        ORDER BY file_idx, ord LIMIT 1""").fetchone()
    if row is None:
        return
    file_idx, ord_, excerpt, reason = row[:4]
    f = files[file_idx]
    where = unit or ("row" if _suffix_kind(Path(f)) == "parquet" else "line")
    if reason is not None:
        column = _DROP_COLUMN.get(reason)
        what = reason
    else:
        i = next(i for i, v in zip(refused, row[4:]) if v)
        what, column = rules[i][0], rules[i][1]
    tail = f"; {where} starts: {excerpt!r}" if excerpt is not None else ""
    # files keep the error's "line" wording (parquet rows included), records say "event"
    raise DataValidationError(f"{what} (strict mode){tail}", file=f, line=int(ord_), column=column,
                              unit=unit or "line")


def _arrow_types(t):
    import pyarrow as pa
    if pa.types.is_integer(t):
        return pd.Int64Dtype()  # keeps nulls as <NA>; non-null columns are cast to int64 below
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.StringDtype(storage="pyarrow", na_value=float("nan"))
    return None


def _event_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for c in EVENT_COLUMNS:
        s = df[c]
        if c in ("ts", "sessionId", "itemInSession"):
            out[c] = s.astype("int64")
        elif c in ("status", "registration"):
            out[c] = s.astype("Int64")
        elif c == "length":
            out[c] = s.astype("float64")
        else:
            out[c] = s.astype("str")
    # one frame built at once (not column by column): less overhead per call, the same frame
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "t", "y")
_FALSE = ("0", "false", "no", "f", "n")
#: Label texts read as a missing label (dropped and counted, an error in strict mode).
_NULL_LABELS = ("", "nan", "na", "n/a", "null", "none")
NOT_NUMBER_REASON = "non-numeric value in a numeric column set to missing"
#: A text column is taken as numeric when at least this share of its values are numbers
#: (and at least ``_MIN_NUMERIC`` are): the rest are counted and set to missing.
_NUMERIC_SHARE = 0.95
_MIN_NUMERIC = 10
#: A text column unique in every row is only called an id from this many rows on.
_MIN_ROWS_FOR_ID = 20
_SQL_INT = "'[+-]?[0-9]{1,18}'"


def load_snapshot(path: str | Path, *, id_col: str = SNAPSHOT_DEFAULT_ID,
                  label_col: str = SNAPSHOT_DEFAULT_LABEL, strict: bool = False) -> SnapshotTable:
    """Load and validate a one-row-per-user snapshot table.

    Parameters
    ----------
    path : str or Path
        A CSV (optionally ``.gz``, header row required) or parquet file.
    id_col, label_col : str
        The user-id column (cast to str) and the binary churn label column.
    strict : bool, default False
        Raise on the first defect instead of repairing or dropping it.

    Returns
    -------
    SnapshotTable
        Rows in file order; ``label_col`` int64 0/1, ``id_col`` str, other columns typed as in
        :func:`load_table`; ``not_features`` lists columns that must not become features.

    Raises
    ------
    DataValidationError
        Missing id/label column (message lists the columns present); a label value that is not
        binary (names column and line, and lists the values found); null id or label, label
        spellings other than numbers, duplicate ids, blank or text values in numeric columns
        (strict only; lenient repairs/drops and counts); unreadable file.

    Notes
    -----
    See :func:`load_table` for the column rules. Labels: numbers 0/1 (also ``0.0/1.0``) and
    booleans are read as they are; ``true/false``, ``yes/no``, ``t/f``, ``y/n`` (any case) are
    mapped to 1/0 and counted under a reason naming the spellings found; empty, ``NaN``,
    ``NA``, ``null`` labels are missing (the row is dropped, counted as ``"null label"``).
    Exact duplicate rows keep their first occurrence; ids appearing on rows that differ are
    *conflicting*: all their rows are dropped in lenient mode (no way to tell which is right).
    """
    return _load_table_file(path, id_col, label_col, strict)


def load_table(path: str | Path, *, id_col: str | None = None, label_col: str | None = None,
               strict: bool = False) -> SnapshotTable:
    """Load a per-user table (CSV, CSV.gz or parquet) whose id and label columns are optional.

    Parameters
    ----------
    path : str or Path
        A CSV (optionally ``.gz``, header row required, an UTF-8 BOM is skipped) or parquet file.
    id_col : str or None
        The id column (cast to str; null ids dropped, duplicate ids handled as in
        :func:`load_snapshot`). None: no id, no duplicate check.
    label_col : str or None
        The binary label column (read as in :func:`load_snapshot`). None: no label
        (``SnapshotTable.label_col`` is None).
    strict : bool, default False
        Raise :class:`DataValidationError` naming file, line (parquet: row) and column on the
        first defect instead of repairing or dropping it.

    Returns
    -------
    SnapshotTable
        Rows kept in file order, with ``quality`` and ``not_features``.

    Raises
    ------
    DataValidationError
        Nonexistent path, a folder or a non-regular file (FIFO, device: refused without being
        opened), unsupported extension, empty or header-only file, truncated or corrupt gzip or
        parquet, a named column that is missing, a non-binary label; in strict mode any defect.

    Notes
    -----
    Column rules (lenient outcome; strict mode raises instead):

    * a CSV row that does not parse (ragged, bad quoting) is dropped: ``"malformed CSV row"``;
      a line that is not UTF-8 is dropped: ``"non-UTF-8 line"`` (its real line is named);
    * a text column whose values are all numbers is read as numbers: for CSV that is simply
      how CSV works; for parquet (numbers stored as text) it is counted under
      ``"numeric text converted"`` and noted;
    * a text column at least 95% numbers (and at least 10 of them) is read as numbers; the
      other values are set to missing, counted under ``"non-numeric value in a numeric column
      set to missing"`` and noted with examples;
    * blank or whitespace-only strings in a numeric column are missing values, counted under
      ``"blank value read as missing"`` (an empty CSV field is an ordinary missing value);
    * a text column unique in every row (from 20 rows on), other than ``id_col``, and a column
      with a single value in every row are listed in ``not_features`` with a note.

    Line numbers are CSV lines (header = line 1) assuming no quoted field spans lines; for
    parquet they are 1-based row numbers.
    """
    return _load_table_file(path, id_col, label_col, strict)


def _check_regular(path: Path) -> None:
    """Refuse FIFOs, sockets and devices without opening them (reading a FIFO blocks)."""
    _check_exists(path)
    if not path.is_dir() and not path.is_file():
        raise DataValidationError("not a regular file (a pipe, socket or device): refused without "
                                  "reading it", file=path)


def _load_table_file(path, id_col: str | None, label_col: str | None, strict: bool) -> SnapshotTable:
    path = Path(path)
    _check_regular(path)
    if path.is_dir():
        raise DataValidationError("a snapshot must be one file, not a folder", file=path)
    kind = _suffix_kind(path)
    if kind not in ("csv", "parquet"):
        raise DataValidationError("unsupported file type for a snapshot: expected .csv, .csv.gz "
                                  "or .parquet", file=path)
    if path.stat().st_size == 0:
        raise DataValidationError("file is empty: no rows to load", file=path)
    con = _connect()
    try:
        return _load_snapshot(con, path, kind, id_col, label_col, strict)
    except DataValidationError:
        raise
    except duckdb.Error as exc:
        raise DataValidationError(f"cannot load table: {_short(exc)}", file=path,
                                  line=_line_from(exc)) from None
    finally:
        con.close()


def _csv_header(path: Path) -> list[str]:
    """The header row, decoded on its own (a bad byte further down is that line's problem)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.readline()
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read the CSV header: {exc}", file=path, line=1) from None
    try:
        first = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"the CSV header is not UTF-8 ({exc.reason} at byte {exc.start})",
                                  file=path, line=1) from None
    if not first.strip():
        raise DataValidationError("file is empty: no header and no rows", file=path, line=1)
    header = next(csv.reader([first.rstrip("\r\n")]))
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup or any(h.strip() == "" for h in header):
        raise DataValidationError(f"CSV header has duplicate or empty column names: {header}",
                                  file=path, line=1)
    return header


def _shift_for_rejects(con, table: str, col: str, rejected: list[int]) -> None:
    """Renumber ``table.col`` (1-based ordinals that skipped ``rejected`` positions) to positions.

    Good rows before the j-th rejected position r_j (j 1-based) number r_j - j, a nondecreasing
    key; an ordinal k sits after every reject whose key is < k.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE rejadj (adj BIGINT, n BIGINT)")
    con.executemany("INSERT INTO rejadj VALUES (?, ?)",
                    [(int(r) - j, j) for j, r in enumerate(sorted(rejected), start=1)])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT t.* REPLACE (t.{col} + coalesce(a.n, 0) AS {col})
        FROM {table} t ASOF LEFT JOIN (SELECT adj, max(n) AS n FROM rejadj GROUP BY adj) a
          ON t.{col} > a.adj""")


def _where(unit: str, line: int, column: str | None = None) -> str:
    return f"{unit} {int(line)}" + (f", column {column!r}" if column else "")


def _stage_csv(con, path: Path, strict: bool) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """Read a CSV into ``snap`` (all VARCHAR, ``__line`` = physical line); drops of bad rows."""
    header = _csv_header(path)
    # Explicit comma dialect and all-VARCHAR columns: the sniffer gives up on ragged files,
    # and typing is done below once bad rows are out. Bad rows are collected with their line.
    cols = "{" + ", ".join(f"{_q(h)}: 'VARCHAR'" for h in header) + "}"
    src = (f"read_csv({_q(str(path))}, header=true, columns={cols}, delim=',', quote='\"', "
           f"escape='\"', auto_detect=false, strict_mode=true, null_padding=false, "
           f"ignore_errors=true, store_rejects=true, rejects_table='snaprej', "
           f"rejects_scan='snapscan', compression='auto')")
    try:
        con.execute(f"CREATE TEMP TABLE snap AS SELECT ordinality AS __line, * "
                    f"EXCLUDE (ordinality) FROM {src} WITH ORDINALITY")
        rejects = con.execute("SELECT line, any_value(error_type), any_value(csv_line) FROM snaprej "
                              "GROUP BY line ORDER BY line").fetchall()
    except duckdb.Error as exc:
        what = "truncated or corrupt gzip file" if "gzip" in str(exc).lower() else "cannot read csv file"
        raise DataValidationError(f"{what}: {_short(exc)}", file=path,
                                  line=_line_from(exc)) from None
    dropped: dict[str, int] = {}
    locations: dict[str, str] = {}
    if rejects:
        line, etype, text = rejects[0]
        if strict:
            what = ("line is not UTF-8" if "ENCODING" in str(etype).upper()
                    else f"malformed CSV row ({str(etype).lower()})")
            raise DataValidationError(
                f"{what}; {len(rejects)} such row(s) (strict mode); line starts: "
                f"{str(text)[:_EXCERPT]!r}", file=path, line=int(line))
        for line, etype, _ in rejects:
            reason = "non-UTF-8 line" if "ENCODING" in str(etype).upper() else "malformed CSV row"
            dropped[reason] = dropped.get(reason, 0) + 1
            locations.setdefault(reason, _where("line", line))
        _shift_for_rejects(con, "snap", "__line", [int(r[0]) - 1 for r in rejects])
    con.execute("UPDATE snap SET __line = __line + 1")  # header is line 1
    return header, dropped, locations


def _type_text_columns(con, path: Path, kind: str, schema: dict[str, str], id_col: str | None,
                       label_col: str | None, strict: bool) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Type the text columns of ``snap`` in place.

    Returns the per-cell repair flags ``(reason, column, flag column)`` added to ``snap`` and
    notes. CSV: every column but the label (the id is typed silently, as before); parquet:
    VARCHAR columns but the id and label.
    """
    cands = [c for c in schema if c != label_col and schema[c] == "VARCHAR"
             and not (kind == "parquet" and c == id_col)]
    if not cands:
        return [], []
    def value(c: str) -> str:
        return f"nullif(trim({_ident(c)}, {_WS}), '')"

    # Two passes: counts for every column, then first lines and examples only where a repair, a note
    # or a strict-mode error can need them (most columns of a clean table need none; 3x faster).
    counts = con.execute("SELECT " + ", ".join(
        f"count({value(c)}), "
        f"count(*) FILTER (WHERE {value(c)} IS NOT NULL AND regexp_full_match({value(c)}, {_SQL_INT})), "
        f"count(*) FILTER (WHERE {value(c)} IS NOT NULL AND TRY_CAST({value(c)} AS DOUBLE) IS NOT NULL), "
        f"count(*) FILTER (WHERE {_ident(c)} IS NOT NULL AND {value(c)} IS NULL)" for c in cands) + " FROM snap").fetchone()
    counts = {c: counts[4 * i: 4 * i + 4] for i, c in enumerate(cands)}

    def needs_detail(n_val: int, n_num: int, n_blank: int) -> bool:
        mixed = n_val and n_num < n_val and n_num >= _MIN_NUMERIC and n_num >= _NUMERIC_SHARE * n_val
        return bool(n_blank or mixed or (kind == "parquet" and n_val and n_num == n_val))

    detailed = [c for c in cands if needs_detail(counts[c][0], counts[c][2], counts[c][3])]
    details = {c: (None, None, None, []) for c in cands}
    if detailed:
        row = con.execute("SELECT " + ", ".join(
            f"min(__line) FILTER (WHERE {_ident(c)} IS NOT NULL AND {value(c)} IS NULL), "
            f"min(__line) FILTER (WHERE {value(c)} IS NOT NULL AND TRY_CAST({value(c)} AS DOUBLE) IS NULL), "
            f"min(__line) FILTER (WHERE {value(c)} IS NOT NULL), "
            f"list(DISTINCT {value(c)}) FILTER (WHERE {value(c)} IS NOT NULL AND TRY_CAST({value(c)} AS DOUBLE) "
            "IS NULL)[1:3]" for c in detailed) + " FROM snap").fetchone()
        details.update({c: row[4 * i: 4 * i + 4] for i, c in enumerate(detailed)})
    exprs: dict[str, str] = {}
    flags, notes = [], []
    for c in cands:
        (n_val, n_int, n_num, n_blank), (first_blank, first_text, first_val, examples) = counts[c], details[c]
        raw, v = _ident(c), f"nullif(trim({_ident(c)}, {_WS}), '')"
        counted = c != id_col
        if n_val and n_num == n_val:
            target = "BIGINT" if n_int == n_val else "DOUBLE"
            if counted and kind == "parquet":
                if strict:
                    raise DataValidationError(
                        "numbers stored as text in a numeric column (strict mode)", file=path,
                        line=first_val, column=c)
                flags.append((NUMERIC_TEXT_REASON, c, f"{v} IS NOT NULL"))
                notes.append(f"column {c!r} holds numbers stored as text: read as numbers "
                             f"({n_val:,} values)")
        elif counted and n_val and n_num >= _MIN_NUMERIC and n_num >= _NUMERIC_SHARE * n_val:
            target = "DOUBLE"
            if strict:
                raise DataValidationError(
                    f"text value in a numeric column (strict mode); {n_val - n_num} such value(s), "
                    f"e.g. {examples}", file=path, line=first_text, column=c)
            flags.append((NOT_NUMBER_REASON, c, f"{v} IS NOT NULL AND TRY_CAST({v} AS DOUBLE) IS NULL"))
            if kind == "parquet":
                flags.append((NUMERIC_TEXT_REASON, c, f"TRY_CAST({v} AS DOUBLE) IS NOT NULL"))
            notes.append(f"column {c!r} is {n_num / n_val:.1%} numbers: read as numbers, its "
                         f"{n_val - n_num:,} other value(s) (e.g. {', '.join(map(repr, examples))}) "
                         "set to missing")
        else:
            exprs[c] = f"nullif({raw}, '') AS {raw}" if kind == "csv" else raw
            continue
        if counted and n_blank:
            if strict:
                raise DataValidationError("blank value in a numeric column (strict mode)", file=path,
                                          line=first_blank, column=c)
            flags.append((BLANK_VALUE_REASON, c, f"{raw} IS NOT NULL AND {v} IS NULL"))
        exprs[c] = f"TRY_CAST({v} AS {target}) AS {raw}"
    sel = ["__line"] + [exprs.get(c, _ident(c)) for c in schema]
    sel += [f"({cond}) IS TRUE AS __f{j}" for j, (_, _, cond) in enumerate(flags)]
    con.execute(f"CREATE OR REPLACE TEMP TABLE snap AS SELECT {', '.join(sel)} FROM snap")
    return flags, notes


def _label_sql(lq: str, ltype: str) -> tuple[str, str]:
    """SQL for the label value (1, 0, NULL missing, -1 not binary) and its 'spelled' flag."""
    if ltype == "BOOLEAN":
        return f"CASE WHEN {lq} THEN 1 WHEN NOT {lq} THEN 0 END", "false"
    if ltype != "VARCHAR":  # numbers
        return (f"CASE WHEN {lq} IS NULL OR isnan(CAST({lq} AS DOUBLE)) THEN NULL WHEN {lq} = 1 THEN 1 "
                f"WHEN {lq} = 0 THEN 0 ELSE -1 END"), "false"
    lab = f"lower(trim({lq}))"
    num = f"TRY_CAST({lab} AS DOUBLE)"
    y = (f"CASE WHEN {lq} IS NULL OR {lab} IN {_sql_set(_NULL_LABELS)} OR isnan({num}) THEN NULL "
         f"WHEN {num} = 1 THEN 1 WHEN {num} = 0 THEN 0 "
         f"WHEN {lab} IN {_sql_set(_TRUE)} THEN 1 WHEN {lab} IN {_sql_set(_FALSE)} THEN 0 ELSE -1 END")
    return y, f"{num} IS NULL"


def _load_snapshot(con, path: Path, kind: str, id_col: str | None, label_col: str | None,
                   strict: bool) -> SnapshotTable:
    unit = "row" if kind == "parquet" else "line"
    dropped: dict[str, int] = {}
    locations: dict[str, str] = {}
    if kind == "csv":
        _, dropped, locations = _stage_csv(con, path, strict)
    else:
        try:
            con.execute(f"CREATE TEMP TABLE snap AS SELECT file_row_number + 1 AS __line, * "
                        f"EXCLUDE (file_row_number) FROM read_parquet({_q(str(path))}, "
                        f"file_row_number=true)")
        except duckdb.Error as exc:
            raise DataValidationError(f"cannot read parquet file: {_short(exc)}", file=path) from None
    schema = {r[0]: str(r[1]).upper() for r in con.execute("DESCRIBE snap").fetchall()
              if r[0] != "__line"}
    missing = [c for c in (id_col, label_col) if c is not None and c not in schema]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing}; columns present: {list(schema)}", file=path,
            column=", ".join(missing))
    rows_read = con.execute("SELECT count(*) FROM snap").fetchone()[0] + sum(dropped.values())
    if rows_read == 0:
        raise DataValidationError("file is empty: no rows to load (a header only)", file=path)

    flags, notes = _type_text_columns(con, path, kind, schema, id_col, label_col, strict)
    schema = {r[0]: str(r[1]).upper() for r in con.execute("DESCRIBE snap").fetchall()
              if r[0] != "__line" and not r[0].startswith("__f")}

    if id_col is not None:
        idq = _ident(id_col)
        if schema[id_col] in ("DOUBLE", "FLOAT"):  # integral DOUBLE ids lose their '.0'
            id_text = (f"CASE WHEN {idq} = round({idq}) AND abs({idq}) < 9e18 THEN "
                       f"CAST(CAST({idq} AS BIGINT) AS VARCHAR) ELSE CAST({idq} AS VARCHAR) END")
        else:
            id_text = f"nullif(trim(CAST({idq} AS VARCHAR)), '')"
    else:
        id_text = "NULL"
    if label_col is not None:
        lq = _ident(label_col)
        y_sql, spelled_sql = _label_sql(lq, schema[label_col])
        lab_text = f"trim(CAST({lq} AS VARCHAR))"
    else:
        y_sql, spelled_sql, lab_text = "0", "false", "NULL"
    con.execute(f"""CREATE TEMP TABLE s2 AS SELECT snap.*, {id_text} AS __id, {lab_text} AS __lab,
        {y_sql} AS __y, ({spelled_sql}) IS TRUE AS __spelled FROM snap""")

    if label_col is not None:
        bad = con.execute("SELECT __line, __lab FROM s2 WHERE __y = -1 ORDER BY __line LIMIT 1").fetchone()
        if bad is not None:
            n_bad = con.execute("SELECT count(*) FROM s2 WHERE __y = -1").fetchone()[0]
            values = [r[0] for r in con.execute(
                "SELECT __lab FROM s2 WHERE __lab IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 "
                "LIMIT 8").fetchall()]
            raise DataValidationError(
                f"label is not binary: {bad[1]!r} ({n_bad} such row(s)); values found: "
                f"{', '.join(map(repr, values))}; expected 0/1, true/false or yes/no",
                file=path, line=bad[0], column=label_col)

    data_cols = ", ".join(_ident(c) for c in schema)
    id_drop = "WHEN s2.__id IS NULL THEN 'null id'" if id_col is not None else ""
    lab_drop = "WHEN s2.__y IS NULL THEN 'null label'" if label_col is not None else ""
    dup = ("WHEN d.__rn > 1 THEN 'exact duplicate row' "
           "WHEN s2.__id IN (SELECT __id FROM conflict) THEN 'conflicting duplicate id'"
           if id_col is not None else "")
    case = f"CASE {id_drop} {lab_drop} {dup} END" if (id_drop or lab_drop) else "NULL"
    con.execute(f"""CREATE TEMP TABLE s3 AS
        WITH d AS (
            SELECT __line, __id, row_number() OVER (PARTITION BY {data_cols} ORDER BY __line) AS __rn
            FROM s2 WHERE __id IS NOT NULL AND __y IS NOT NULL),
        conflict AS (
            SELECT __id FROM d WHERE __rn = 1 GROUP BY __id HAVING count(*) > 1)
        SELECT s2.__line, s2.__lab, CAST({case} AS VARCHAR) AS __drop,
            s2.__y IS NOT NULL AND s2.__spelled AS __relabel
        FROM s2 LEFT JOIN d USING (__line)""")

    if strict:
        row = con.execute("SELECT __line, __drop, __lab FROM s3 WHERE __drop IS NOT NULL "
                          "OR __relabel ORDER BY __line LIMIT 1").fetchone()
        if row is not None:
            line, why, lab_value = row
            column = label_col if why in (None, "null label") else id_col
            what = why or f"label {lab_value!r} is not 0/1 (would be mapped to 0/1)"
            if why == "exact duplicate row":
                column = None
            raise DataValidationError(f"{what} (strict mode)", file=path, line=int(line), column=column)

    for reason, n, first in con.execute(
            "SELECT __drop, count(*), min(__line) FROM s3 WHERE __drop IS NOT NULL GROUP BY 1 "
            "ORDER BY 1").fetchall():
        dropped[reason] = dropped.get(reason, 0) + int(n)
        column = {"null id": id_col, "null label": label_col, "conflicting duplicate id": id_col}.get(reason)
        locations.setdefault(reason, _where(unit, first, column))

    repaired: dict[str, int] = {}
    kept = "FROM s2 JOIN s3 USING (__line) WHERE s3.__drop IS NULL"
    if label_col is not None:
        spell = con.execute(f"SELECT s2.__lab, count(*), min(__line) {kept} AND __relabel "
                            "GROUP BY 1 ORDER BY 1").fetchall()
        if spell:
            words = "/".join(repr(s[0]) for s in spell)
            reason = f"label {label_col!r} spelled {words} mapped to 1/0"
            repaired[reason] = int(sum(s[1] for s in spell))
            locations[reason] = _where(unit, min(s[2] for s in spell), label_col)
    if flags:
        reasons = list(dict.fromkeys(r for r, _, _ in flags))
        parts = []
        for r in reasons:
            idx = [j for j, f in enumerate(flags) if f[0] == r]
            parts.append(f"count(*) FILTER (WHERE {' OR '.join(f'__f{j}' for j in idx)})")
            parts += [f"min(__line) FILTER (WHERE __f{j})" for j in idx]
        stats = con.execute(f"SELECT {', '.join(parts)} {kept}").fetchone()
        k = 0
        for r in reasons:
            idx = [j for j, f in enumerate(flags) if f[0] == r]
            n, firsts = stats[k], stats[k + 1: k + 1 + len(idx)]
            k += 1 + len(idx)
            if n:
                repaired[r] = int(n)
                line, j = min((f, j) for f, j in zip(firsts, idx) if f is not None)
                locations[r] = _where(unit, line, flags[j][1])

    select = ", ".join(
        f"s2.__id AS {_ident(c)}" if c == id_col else
        f"CAST(s2.__y AS BIGINT) AS {_ident(c)}" if c == label_col else f"s2.{_ident(c)}"
        for c in schema)
    table = con.execute(f"SELECT {select} {kept} ORDER BY __line").df()
    if id_col is not None:
        table[id_col] = table[id_col].astype("str")
    if label_col is not None:
        table[label_col] = table[label_col].astype("int64")
        ltype = schema[label_col]
        if ltype not in ("VARCHAR", "BOOLEAN", "BIGINT", "INTEGER") and not repaired:
            notes.append(f"label {label_col!r} stored as {ltype.lower()} 0.0/1.0: read as 0/1")
    if id_col is not None and kind == "parquet" and schema[id_col] != "VARCHAR":
        notes.append(f"id column {id_col!r} ({schema[id_col].lower()}) cast to string")
    not_features = not_feature_columns(table, id_col, label_col)
    notes += [f"column {c!r} is not a feature: {why}" for c, why in not_features.items()]
    quality = DataQuality(source=str(path), kind="snapshot", rows_read=int(rows_read),
                          rows_kept=len(table), dropped={k: int(v) for k, v in dropped.items()},
                          repaired=repaired, notes=notes, locations=locations)
    if len(table) == 0:
        raise DataValidationError(f"no usable rows: all {rows_read} rows dropped ({quality.dropped})",
                                  file=path)
    return SnapshotTable(table=table, id_col=id_col, label_col=label_col, quality=quality,
                         not_features=not_features)


def not_feature_columns(table: pd.DataFrame, id_col: str | None, label_col: str | None) -> dict[str, str]:
    """Columns that must not become features: constant, empty, or a unique text per row.

    Returns
    -------
    dict of str to str
        Column -> why it is not a feature (the id and label columns are never listed).
    """
    out: dict[str, str] = {}
    n = len(table)
    for c in table.columns:
        if c in (id_col, label_col) or n < 2:
            continue
        s = table[c]
        if s.isna().all():
            out[c] = "empty: no value in any row"
        elif s.nunique(dropna=False) == 1:
            out[c] = "constant: one value in every row"
        elif (n >= _MIN_ROWS_FOR_ID and not pd.api.types.is_numeric_dtype(s)
              and not pd.api.types.is_bool_dtype(s) and s.notna().all() and s.is_unique):
            out[c] = "unique text per row: an id other than the id column"
    return out
