"""Load, validate and clean an event log on Apache Spark, as :func:`churnlib.load.load_events` does.

For a log too large for one machine: :func:`load_events_spark` reads parquet (a file, or a folder of
part files) and NDJSON (``.json``, ``.jsonl``, ``.ndjson``, each optionally ``.gz``) from a local path or
any URI Spark reads (``hdfs://``, ``s3a://``, ...), and applies the loader's rules with the loader's
own definitions:

* the cleaning query is :func:`churnlib.load.clean_events_sql` (DuckDB SQL), run on Spark through
  :func:`churnlib.spark_sql.to_spark`; its repair flags are :func:`churnlib.load.event_repair_rules`;
  drop reasons, notes, the required columns and the account (:class:`churnlib.load.DataQuality`) are
  the loader's. Only the *staging* is Spark's own: each line (NDJSON) or row (parquet) becomes the
  ``stg_all`` row the cleaning query reads (kind, text and number of each column), with Spark's JSON
  parser (``try_parse_json`` / ``schema_of_variant``) instead of DuckDB's;
* required columns (a clear error naming the file and the column), numeric text and blank values,
  guests (empty ``userId``, dropped and counted), exact duplicates (first in file, line order kept),
  implausible timestamps (the same window), ``itemInSession`` derived from the order in a session:
  the same rows, values and counts as the DuckDB loader.

Line numbers. NDJSON lines are numbered exactly, also for split files: each line's number is its
position in its block of the file (from ``monotonically_increasing_id`` within a task) plus the lines
of the file's earlier blocks (one small aggregate, one extra pass over the text). Parquet rows are
numbered with ``_metadata.row_index``. Locations and strict-mode errors therefore name the same file,
line (or row) and column as the DuckDB loader.

Differences from the DuckDB loader that remain (edge cases, none in a Sparkify log):

* JSON with a repeated key in an object is an ``"unparseable line"`` (Spark's parser refuses it; DuckDB
  reads it); ``\\x01`` bytes do not truncate a line;
* a line that is not UTF-8 is found with ``is_valid_utf8``; its excerpt may differ;
* numbers written into text columns (e.g. ``"artist": 1.50``) keep Spark's rendering (``"1.50"``);
  JSON objects in text columns keep Spark's JSON text;
* a text ``ts`` that Spark parses as a date but DuckDB does not (a bare year such as ``"2018"``) is a
  timestamp on Spark and a number (implausible) on DuckDB;
* Spark's double parsing also accepts Java forms DuckDB rejects (``"1.5d"``, ``"0x1p3"``);
* unsigned 64-bit parquet integers are read by Spark as DECIMAL(20,0) (numbers, as DuckDB reads them);
* row order: ``events`` is a distributed frame with no order (the DuckDB loader sorts by ``ts,
  userId, sessionId, itemInSession``); sort it when order matters.
"""
from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import pandas as pd
import sqlglot

from churnlib.load import (
    BLANK_REASON,
    NON_DEFECT_DROPS,
    DataQuality,
    DataValidationError,
    clean_events_sql,
    event_drop_column,
    event_file_kind,
    event_files,
    event_repair_notes,
    event_repair_rules,
    numeric_userid_note,
)
from churnlib.schema import EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS
from churnlib.spark_sql import to_spark

__all__ = ["SparkEventLog", "load_events_spark"]

_EXCERPT = 80
_NUM_KINDS = ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT", "UHUGEINT")
_STRING_COLS = tuple(c for c in EVENT_COLUMNS
                     if c not in {"ts", "sessionId", "status", "itemInSession", "registration", "length"})
_LOCK = threading.Lock()


@dataclass
class SparkEventLog:
    """A cleaned event log held by Spark.

    Attributes
    ----------
    events : pyspark.sql.DataFrame
        The :data:`~churnlib.schema.EVENT_COLUMNS`: ``ts`` bigint (epoch ms UTC), ``userId`` string,
        ``sessionId`` bigint, ``page`` string, ``status`` bigint (nullable), ``itemInSession`` bigint,
        ``registration`` bigint (nullable, epoch ms), ``length`` double, other columns string. The same
        rows and values as :func:`churnlib.load.load_events`, in no particular order. Backed by the
        cleaned rows cached while the account was computed (:meth:`unpersist` frees them).
    quality : churnlib.load.DataQuality
        What was dropped and repaired: the same counts, locations and notes as the DuckDB loader.
    page_counts_read : pandas.Series
        Page -> rows read with that page (before any dropping; guest rows included).
    """

    events: "object"
    quality: DataQuality
    page_counts_read: pd.Series
    _cached: "object" = None

    def unpersist(self) -> None:
        """Release the cached cleaned rows (``events`` stays usable: it is recomputed from the files)."""
        if self._cached is not None:
            self._cached.unpersist()


# --------------------------------------------------------------------------------------------
# The cleaning query, in SQL both engines read
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    uri: str        # what Spark reads
    rel: str        # name in locations (relative to the folder)
    kind: str       # "ndjson" or "parquet"
    key: str        # normalised path, to match _metadata.file_path
    name: str       # the file as errors name it (a local path as the loader names it)


def _key(uri: str) -> str:
    u = urlparse(uri)
    path = unquote(u.path) if u.scheme else uri
    return os.path.normpath(path)


def _is_uri(path: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path)) and not path.startswith("file://")


def _list_files(spark, path: str) -> tuple[list[_File], list[str], bool]:
    """(files, notes, is_folder), with the DuckDB loader's rules and errors."""
    if not _is_uri(path):
        local = Path(unquote(urlparse(path).path) if path.startswith("file://") else path)
        files, notes = event_files(local)
        is_dir = local.is_dir()
        return ([_File(os.path.abspath(f), f.relative_to(local).as_posix() if is_dir else f.name,
                       event_file_kind(f), _key(os.path.abspath(f)), str(f)) for f in files], notes, is_dir)
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hpath):
        raise DataValidationError("no such file or folder", file=path)
    status = fs.getFileStatus(hpath)
    if not status.isDirectory():
        kind = event_file_kind(PurePosixPath(urlparse(path).path).name)
        if kind not in ("ndjson", "parquet"):
            raise DataValidationError(
                "unsupported file type for an event log: expected .json, .jsonl, .ndjson "
                "(optionally .gz) or .parquet", file=path)
        uri = status.getPath().toString()
        return [_File(uri, PurePosixPath(urlparse(path).path).name, kind, _key(uri), path)], [], False
    base = status.getPath().toString().rstrip("/")
    found = []
    it = fs.listFiles(hpath, True)
    while it.hasNext():
        uri = it.next().getPath().toString()
        rel = uri[len(base):].lstrip("/")
        parts = tuple(rel.split("/"))
        if any(p.startswith((".", "_")) for p in parts):
            continue
        found.append((parts, uri, rel))
    found.sort()
    files, ignored = [], []
    for _, uri, rel in found:
        kind = event_file_kind(rel)
        (files if kind in ("ndjson", "parquet") else ignored).append((uri, rel, kind))
    if not files:
        raise DataValidationError(
            "folder holds no event files (.json, .jsonl, .ndjson, optionally .gz, or .parquet)", file=path)
    notes = []
    if ignored:
        notes.append(f"ignored {len(ignored)} non-event file(s) in the folder: "
                     + ", ".join(rel for _, rel, _ in ignored[:10]))
    return [_File(uri, rel, kind, _key(uri), uri) for uri, rel, kind in files], notes, True


# --------------------------------------------------------------------------------------------
# Staging: one row per line / parquet row, as the cleaning query reads it
# --------------------------------------------------------------------------------------------

def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def _file_index(spark, keys: dict[str, int], fps: list[str]):
    """Small frame (fp, file_idx) for the file paths Spark reports."""
    rows = []
    for fp in fps:
        k = _key(fp)
        if k not in keys:
            raise DataValidationError(f"Spark read a file not in the listing: {fp}")
        rows.append((fp, keys[k]))
    return rows


def _stage_ndjson(spark, files: list[_File], keys: dict[str, int], tag: str):
    """Stage NDJSON files: (file_idx, ord, excerpt, problem, k_/s_/n_ per column)."""
    from pyspark.sql import functions as F

    raw = (spark.read.text([f.uri for f in files])
           .select(F.col("value").alias("line"), F.col("_metadata.file_path").alias("fp"),
                   F.col("_metadata.file_block_start").alias("bs"),
                   F.monotonically_increasing_id().alias("mid")))
    try:
        blocks = raw.groupBy("fp", "bs").agg(F.count(F.lit(1)).alias("n"), F.min("mid").alias("m0")).collect()
    except Exception as exc:  # corrupt gzip, unreadable file
        raise DataValidationError(f"cannot read file: {_short(exc)}",
                                  file=files[0].name if len(files) == 1 else None) from None
    by_file: dict[str, list] = {}
    for b in blocks:
        by_file.setdefault(b["fp"], []).append(b)
    offsets = []
    for fp, (_, idx) in zip(by_file, _file_index(spark, keys, list(by_file))):
        base = 0
        for b in sorted(by_file[fp], key=lambda r: r["bs"]):
            offsets.append((fp, int(b["bs"]), idx, base - int(b["m0"]) + 1))
            base += int(b["n"])
    if not offsets:
        return None
    off = spark.createDataFrame(offsets, "fp string, bs bigint, file_idx int, off bigint")
    lines = raw.join(F.broadcast(off), ["fp", "bs"]).select(
        "file_idx", (F.col("mid") + F.col("off")).alias("ord"), "line")
    view = f"churnlib_ndjson_{tag}"
    lines.createOrReplaceTempView(view)
    ints = "('BIGINT', 'INT', 'SMALLINT', 'TINYINT')"
    # Each value is extracted and typed once (x_, t_), then mapped to DuckDB's JSON kinds.
    extract = ", ".join(f"CASE WHEN problem IS NULL THEN variant_get(v, '$.{c}') END AS x_{c}"
                        for c in EVENT_COLUMNS)
    typed = ", ".join(f"x_{c}, schema_of_variant(x_{c}) AS t_{c}" for c in EVENT_COLUMNS)
    cols = []
    for c in EVENT_COLUMNS:
        t = f"t_{c}"
        cols.append(f"CASE WHEN {t} IN {ints} OR {t} RLIKE '^DECIMAL\\\\([0-9]+,0\\\\)$' THEN 'BIGINT' "
                    f"WHEN {t} IN ('DOUBLE', 'FLOAT') OR {t} LIKE 'DECIMAL%' THEN 'DOUBLE' "
                    f"WHEN {t} = 'STRING' THEN 'VARCHAR' WHEN {t} = 'BOOLEAN' THEN 'BOOLEAN' "
                    f"WHEN {t} = 'VOID' THEN 'NULL' WHEN {t} LIKE 'OBJECT%' THEN 'OBJECT' "
                    f"WHEN {t} LIKE 'ARRAY%' THEN 'ARRAY' WHEN {t} IS NOT NULL THEN 'OTHER' END AS k_{c}")
        cols.append(f"CASE WHEN {t} <> 'VOID' THEN variant_get(x_{c}, '$', 'string') END AS s_{c}")
        cols.append(f"CASE WHEN {t} IN {ints} OR {t} IN ('DOUBLE', 'FLOAT') OR {t} LIKE 'DECIMAL%' "
                    f"THEN try_variant_get(x_{c}, '$', 'double') END AS n_{c}")
    ws = "' \\t\\r'"
    sql = f"""
    SELECT file_idx, ord, left(line, {_EXCERPT}) AS excerpt, problem, {', '.join(cols)}
    FROM (SELECT file_idx, ord, line, problem, {typed}
    FROM (SELECT file_idx, ord, line, problem, {extract}
    FROM (SELECT file_idx, ord, line, v,
                CASE WHEN NOT is_valid_utf8(line) THEN 'non-UTF-8 line'
                     WHEN trim(BOTH {ws} FROM line) = '' THEN '{BLANK_REASON}'
                     WHEN left(trim(LEADING {ws} FROM line), 1) <> '{{' OR v IS NULL THEN 'unparseable line'
                END AS problem
    FROM (SELECT file_idx, ord, line, try_parse_json(line) AS v
    FROM (SELECT file_idx, ord,
                 CASE WHEN ord = 1 THEN regexp_replace(line, '^\\\\x{{FEFF}}', '') ELSE line END AS line
          FROM {view})))))
    """
    return spark.sql(sql)


def _spark_kind(dtype) -> tuple[str, str]:
    """(kind literal, number expression template) for a Spark column type, as DuckDB stages parquet."""
    from pyspark.sql import types as T

    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "BIGINT", "CAST({c} AS DOUBLE)"
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "DOUBLE", "CAST({c} AS DOUBLE)"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return "TIMESTAMP", "CAST(unix_millis(CAST({c} AS TIMESTAMP)) AS DOUBLE)"
    if isinstance(dtype, T.StringType):
        return "VARCHAR", "NULL"
    if isinstance(dtype, T.BooleanType):
        return "BOOLEAN", "NULL"
    return "OTHER", "NULL"


def _stage_parquet(spark, files: list[_File], keys: dict[str, int], schema, tag: str):
    """Stage parquet files of one schema: typed columns mapped onto (kind, text, number)."""
    from pyspark.sql import functions as F

    df = spark.read.schema(schema).parquet(*[f.uri for f in files])
    types = {fld.name: fld.dataType for fld in schema.fields}
    try:
        fps = [r["fp"] for r in df.select(F.col("_metadata.file_path").alias("fp")).distinct().collect()]
    except Exception as exc:
        raise DataValidationError(f"cannot read parquet file: {_short(exc)}",
                                  file=files[0].name if len(files) == 1 else None) from None
    if not fps:
        return None
    idx = spark.createDataFrame(_file_index(spark, keys, fps), "fp string, file_idx int")
    view = f"churnlib_parquet_{tag}"
    (df.select("*", F.col("_metadata.file_path").alias("__fp"), F.col("_metadata.row_index").alias("__row"))
       .join(F.broadcast(idx.withColumnRenamed("fp", "__fp")), "__fp")
       .createOrReplaceTempView(view))
    exprs = []
    for c in EVENT_COLUMNS:
        if c not in types:
            exprs.append(f"CAST(NULL AS STRING) AS k_{c}, CAST(NULL AS STRING) AS s_{c}, "
                         f"CAST(NULL AS DOUBLE) AS n_{c}")
            continue
        col = f"`{c}`"
        kind, num = _spark_kind(types[c])
        need_text = c in _STRING_COLS
        text = (col if kind == "VARCHAR" else
                f"CAST({col} AS STRING)" if need_text or kind in ("OTHER", "BOOLEAN") else "CAST(NULL AS STRING)")
        exprs.append(f"CASE WHEN {col} IS NULL THEN 'NULL' ELSE '{kind}' END AS k_{c}, {text} AS s_{c}, "
                     f"CAST({num.format(c=col)} AS DOUBLE) AS n_{c}")
    return spark.sql(f"SELECT file_idx, __row + 1 AS ord, CAST(NULL AS STRING) AS excerpt, "
                     f"CAST(NULL AS STRING) AS problem, {', '.join(exprs)} FROM {view}")


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------

def _where(f: _File, is_dir: bool, ord_: int, column: str | None) -> str:
    unit = "row" if f.kind == "parquet" else "line"
    where = f"{unit} {int(ord_)}" + (f", column {column!r}" if column else "")
    return f"{f.rel}, {where}" if is_dir else where


def load_events_spark(spark, path: str, *, strict: bool = False) -> SparkEventLog:
    """Load, validate and clean an event log with Spark, by the rules of :func:`churnlib.load.load_events`.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        E.g. :func:`churnlib.spark_session.get_spark`.
    path : str
        A parquet file, an NDJSON file (``.json``, ``.jsonl``, ``.ndjson``, optionally ``.gz``) or a
        folder of such files (read recursively in sorted order; hidden files and other extensions
        are ignored and noted): a local path or any URI Spark reads.
    strict : bool, default False
        Raise :class:`~churnlib.load.DataValidationError` on the first defect (in file, line order)
        instead of repairing or dropping it; guest rows and blank lines are dropped in both modes.

    Returns
    -------
    SparkEventLog
        ``events`` (a Spark DataFrame with the loader's columns and types, the same rows and values),
        ``quality`` (the same account) and ``page_counts_read``.

    Raises
    ------
    DataValidationError
        As :func:`churnlib.load.load_events`: nonexistent path, unsupported extension, folder without
        event files, empty file, a required column missing (naming file and column), an unreadable
        file, no row left; in strict mode the first defect, naming the file, the line (parquet: row),
        the column and the value read.

    Notes
    -----
    See the module docstring for what still differs from the DuckDB loader (edge cases of JSON
    parsing and number rendering) and how lines are numbered.
    """
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    source = str(path)
    files, notes, is_dir = _list_files(spark, source)
    keys = {f.key: i for i, f in enumerate(files)}
    tag = uuid.uuid4().hex[:12]

    # Parquet: schema per file (the required-column check), then one read per distinct schema.
    schemas = {}
    for i, f in enumerate(files):
        if f.kind != "parquet":
            continue
        try:
            schemas[i] = spark.read.parquet(f.uri).schema
        except Exception as exc:
            raise DataValidationError(f"cannot read parquet file: {_short(exc)}", file=f.name) from None
    parts = []
    parquet_missing = {}
    for i, sch in schemas.items():
        names = [fld.name for fld in sch.fields]
        missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in names]
        if missing:
            parquet_missing[i] = DataValidationError(
                f"missing required column(s) {missing}; columns present: {sorted(names)}",
                file=files[i].name, column=", ".join(missing))
    if parquet_missing and min(parquet_missing) == 0 or len(parquet_missing) == len(files):
        raise parquet_missing[min(parquet_missing)]  # nothing to read before it
    groups: dict[str, list[int]] = {}
    for i, sch in schemas.items():
        groups.setdefault(sch.json(), []).append(i)
    for j, idxs in enumerate(groups.values()):
        part = _stage_parquet(spark, [files[i] for i in idxs], keys, schemas[idxs[0]], f"{tag}_{j}")
        if part is not None:
            parts.append(part)
    nd = [f for f in files if f.kind == "ndjson"]
    if nd:
        part = _stage_ndjson(spark, nd, keys, tag)
        if part is not None:
            parts.append(part)

    stg = None
    for p in parts:
        stg = p if stg is None else stg.unionByName(p)
    nums = "', '".join(_NUM_KINDS)
    per_file = {}
    if stg is not None:
        stg = stg.persist(StorageLevel.MEMORY_AND_DISK)  # parsed once: read by the checks and the cleaning
        stats = stg.groupBy("file_idx").agg(
            F.count(F.lit(1)).alias("rows"),
            F.expr(f"count_if(problem IS DISTINCT FROM '{BLANK_REASON}')").alias("non_blank"),
            F.expr("count_if(problem IS NULL)").alias("parsed"),
            *[F.count(f"k_{c}").alias(f"has_{c}") for c in REQUIRED_EVENT_COLUMNS],
            F.expr(f"count_if(k_userId IN ('{nums}'))").alias("n_num"),
            F.expr("count_if(k_userId = 'VARCHAR' AND trim(s_userId) <> '')").alias("n_str"))
        try:
            per_file = {int(r["file_idx"]): r for r in stats.collect()}
        except DataValidationError:
            raise
        except Exception as exc:
            raise DataValidationError(f"cannot load event log: {_short(exc)}", file=source) from None
    for i, f in enumerate(files):  # file order: the first problem is the one the DuckDB loader reports
        r = per_file.get(i)
        if i in parquet_missing:
            raise parquet_missing[i]
        if f.kind == "ndjson" and r is not None and r["parsed"] > 0:
            missing = [c for c in REQUIRED_EVENT_COLUMNS if r[f"has_{c}"] == 0]
            if missing:
                raise DataValidationError(
                    f"missing required column(s) {missing}; columns present: {_json_keys(spark, f)}",
                    file=f.name, column=", ".join(missing))
        if r is None or r["non_blank"] == 0:
            if len(files) == 1:
                raise DataValidationError("file is empty: no rows to load", file=f.name)
            notes.append(f"empty file (no rows): {f.rel}")
    if stg is None:
        raise DataValidationError("no usable rows: all 0 rows read were dropped ({})", file=source)

    mix = spark.createDataFrame(
        [(i, int(r["n_num"]), int(r["n_str"]), bool(r["n_num"] > 0 and r["n_str"] > 0)) for i, r in per_file.items()],
        "file_idx int, n_num bigint, n_str bigint, uid_mixed boolean")
    rules = event_repair_rules()
    # The query names its inputs stg_all and mix (and qualifies columns with them, which renaming the
    # relations would break): the views exist under those names only while Spark analyses the query.
    sql = to_spark(clean_events_sql())
    if strict:  # the values read, for the error message
        tree = sqlglot.parse_one(sql, read="spark")
        sql = tree.select(*[f"s_{c}" for c in EVENT_COLUMNS], copy=False).sql(dialect="spark")
    with _LOCK:
        stg.createOrReplaceTempView("stg_all")
        mix.createOrReplaceTempView("mix")
        try:
            cl = spark.sql(sql)
        finally:
            spark.catalog.dropTempView("stg_all")
            spark.catalog.dropTempView("mix")

    # Exact duplicates: identical cleaned values in every column; the first (file, line) is kept.
    kept = F.col("drop_reason").isNull()
    w = Window.partitionBy(kept, *[F.col(c) for c in EVENT_COLUMNS]).orderBy("file_idx", "ord")
    cl = cl.withColumn("drop_reason", F.when(kept & (F.row_number().over(w) > 1), F.lit("exact duplicate row"))
                       .otherwise(F.col("drop_reason")))
    cl = cl.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        quality, page_counts = _account(cl, files, is_dir, source, notes, rules, per_file, strict)
    except BaseException:
        cl.unpersist()
        raise
    finally:
        stg.unpersist()
    events = cl.filter(F.col("drop_reason").isNull())
    item = F.col("itemInSession")
    if "itemInSession derived from order in session" in quality.repaired:
        order = Window.partitionBy("userId", "sessionId").orderBy("ts", "file_idx", "ord")
        item = F.coalesce(F.col("itemInSession"), F.row_number().over(order) - 1)
    types = {"ts": "bigint", "sessionId": "bigint", "status": "bigint", "itemInSession": "bigint",
             "registration": "bigint", "length": "double"}
    events = events.select(*[(item if c == "itemInSession" else F.col(c)).cast(types.get(c, "string")).alias(c)
                             for c in EVENT_COLUMNS])
    return SparkEventLog(events=events, quality=quality, page_counts_read=page_counts, _cached=cl)


def _json_keys(spark, f: _File) -> list[str]:
    """Keys of the first 1,000 JSON object lines of a file (for the missing-column message)."""
    from pyspark.sql import functions as F

    lines = spark.read.text(f.uri).limit(5000)
    keys = (lines.select(F.explode(F.expr("json_object_keys(value)")).alias("k"))
            .distinct().collect())
    return sorted(r["k"] for r in keys)


def _raise_first_defect(cl, files: list[_File], rules) -> None:
    from pyspark.sql import functions as F

    non_defect = F.col("drop_reason").isin(*sorted(NON_DEFECT_DROPS))
    any_flag = F.lit(False)
    for i in range(len(rules)):
        any_flag = any_flag | F.col(f"r{i}")
    bad = cl.filter((F.col("drop_reason").isNotNull() & ~non_defect)
                    | (F.col("drop_reason").isNull() & any_flag))
    row = bad.orderBy("file_idx", "ord").first()
    if row is None:
        return
    f = files[int(row["file_idx"])]
    reason = row["drop_reason"]
    if reason is not None:
        what, column = reason, event_drop_column(reason)
    else:
        i = next(i for i in range(len(rules)) if row[f"r{i}"])
        what, column = rules[i][0], rules[i][1]
    tail = ""
    if column is not None:
        tail = f"; value read: {row[f's_{column}']!r}"
    if row["excerpt"] is not None:
        tail += f"; line starts: {row['excerpt']!r}"
    raise DataValidationError(f"{what} (strict mode){tail}", file=f.name, line=int(row["ord"]), column=column)


def _account(cl, files, is_dir, source, notes, rules, per_file, strict) -> tuple[DataQuality, pd.Series]:
    from pyspark.sql import functions as F

    first = F.struct("file_idx", "ord")
    reasons = list(dict.fromkeys(r for r, _, _ in rules))
    aggs = [F.count(F.lit(1)).alias("n"), F.min(first).alias("first")]
    for i in range(len(rules)):
        aggs += [F.count_if(F.col(f"r{i}")).alias(f"c{i}"), F.min(F.when(F.col(f"r{i}"), first)).alias(f"f{i}")]
    for j, r in enumerate(reasons):
        cond = F.lit(False)
        for i, rule in enumerate(rules):
            if rule[0] == r:
                cond = cond | F.col(f"r{i}")
        aggs.append(F.count_if(cond).alias(f"q{j}"))
    try:
        groups = cl.groupBy("drop_reason").agg(*aggs).collect()
    except Exception as exc:
        raise DataValidationError(f"cannot load event log: {_short(exc)}", file=source) from None
    if strict:
        _raise_first_defect(cl, files, rules)
    rows_read = sum(int(g["n"]) for g in groups)
    dropped, locations = {}, {}
    kept_row = None
    for g in sorted(groups, key=lambda g: (g["drop_reason"] is None, g["drop_reason"] or "")):
        reason = g["drop_reason"]
        if reason is None:
            kept_row = g
            continue
        dropped[reason] = int(g["n"])
        f_idx, ord_ = g["first"]
        locations[reason] = _where(files[f_idx], is_dir, ord_, event_drop_column(reason))
    repaired = {}
    rule_counts = [0] * len(rules)
    if kept_row is not None:
        rule_counts = [int(kept_row[f"c{i}"]) for i in range(len(rules))]
        for j, r in enumerate(reasons):
            n = int(kept_row[f"q{j}"])
            if n:
                repaired[r] = n
                cands = [(kept_row[f"f{i}"][0], kept_row[f"f{i}"][1], rules[i][1])
                         for i, rule in enumerate(rules) if rule[0] == r and kept_row[f"f{i}"] is not None]
                f_idx, ord_, column = min(cands)
                locations[r] = _where(files[f_idx], is_dir, ord_, column)
    notes = list(notes) + event_repair_notes([n if rules[i][0] in repaired else 0
                                              for i, n in enumerate(rule_counts)])
    numeric_ids = sum(int(r["n_num"]) for r in per_file.values() if int(r["n_str"]) == 0)
    if numeric_ids:
        notes.append(numeric_userid_note(numeric_ids))
    pages = (cl.filter(F.col("k_page") == "VARCHAR").groupBy("page_read").count().collect())
    pages = sorted(((r["page_read"], int(r["count"])) for r in pages), key=lambda pn: (-pn[1], pn[0]))
    page_counts = pd.Series({p: n for p, n in pages}, dtype="int64", name="rows_read")
    page_counts.index = pd.Index(page_counts.index, dtype=str, name="page")
    rows_kept = int(kept_row["n"]) if kept_row is not None else 0
    quality = DataQuality(source=source, kind="events", rows_read=rows_read, rows_kept=rows_kept,
                          dropped=dropped, repaired=repaired, notes=notes, locations=locations)
    if rows_kept == 0:
        raise DataValidationError(
            f"no usable rows: all {rows_read} rows read were dropped ({quality.dropped})", file=source)
    return quality, page_counts
