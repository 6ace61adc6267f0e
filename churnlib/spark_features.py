"""The feature table on Apache Spark: the same SQL, labels and types as :func:`churnlib.features.build_features`.

For logs that outgrow one machine. The feature definitions are not copied: Spark runs the text of
``churnlib/sql/features.sql`` as translated by :func:`churnlib.spark_sql.to_spark`. The labels
(:func:`churnlib.labels.observation_labels`, which DuckDB's path computes in pandas) are one SQL query
here, :data:`LABEL_SQL`, written in DuckDB's dialect and translated the same way; and the pandas
post-processing of ``build_features`` (missing counts are 0, missing categories ``"unknown"``,
``as_of`` a UTC timestamp in milliseconds, one row per eligible user and date, sorted) is done in
Spark, so nothing is collected to the driver but a few scalars.

``tests/test_spark_features.py`` checks that the table equals DuckDB's on the real Sparkify sample and
on simulated logs: same rows, columns and dtypes (after reading the parquet back with pandas),
integers and text exactly, floats within 1e-9 relative.

Entry points: :func:`features_spark` (a Spark DataFrame of cleaned events in, a Spark DataFrame out)
and :func:`build_features_spark` (``python -m churnlib features --engine spark``: path in, parquet
folder out, data-quality account returned).
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from churnlib.features import FEATURE_DICTIONARY, feature_sql, observation_dates_for_span
from churnlib.files import write_json
from churnlib.labels import LabelCensoredError, check_horizon, check_observation_dates, to_epoch_ms
from churnlib.load import DataQuality
from churnlib.outputs import OutputError, check_output, quality_path
from churnlib.schema import CHURN_PAGE, MS_PER_DAY
from churnlib.spark_load import load_events_spark
from churnlib.spark_session import get_spark
from churnlib.spark_sql import STACK_SEPARATOR, to_spark, to_spark_stacked

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["LABEL_SQL", "build_features_spark", "features_spark", "label_sql"]

#: Observation-date labels for all dates in one query (DuckDB dialect; Spark runs :func:`to_spark` of
#: it), the definition of :func:`churnlib.labels.observation_labels`. Relations: ``events`` and
#: ``dates`` (column ``as_of``, epoch ms); parameters ``$h`` (horizon, ms), ``$d`` (inactivity, ms) and
#: ``$inactive``. Eligible users have an event before ``as_of`` and no churn-page visit before it
#: (and, with ``$inactive``, an event after ``as_of - $d``); ``churned`` = first churn-page visit in
#: ``[as_of, as_of + $h)``, or, with ``$inactive``, a silence of at least ``$d`` ms starting at
#: ``as_of`` or at an event in that window. Events at or after ``as_of + $h + $d`` cannot change a
#: silence that starts in the window (it is at least ``$d`` long either way), so they are not read.
LABEL_SQL = f"""
WITH u AS (
    SELECT CAST(userId AS STRING) AS userId, CAST(ts AS BIGINT) AS ts, page
    FROM events
    WHERE userId IS NOT NULL AND CAST(userId AS STRING) <> ''
),
first_churn AS (
    SELECT userId, min(ts) AS first_churn FROM u WHERE page = '{CHURN_PAGE}' GROUP BY userId
),
last_before AS (
    SELECT u.userId, t.as_of, max(u.ts) AS last_before
    FROM u JOIN dates AS t ON u.ts < t.as_of
    GROUP BY u.userId, t.as_of
),
eligible AS (
    SELECT b.userId, b.as_of, c.first_churn
    FROM last_before AS b
    LEFT JOIN first_churn AS c ON c.userId = b.userId
    WHERE (c.first_churn IS NULL OR c.first_churn >= b.as_of)
      AND (NOT $inactive OR b.last_before > b.as_of - $d)
),
anchors AS (
    SELECT userId, as_of, as_of AS ts FROM eligible WHERE $inactive
    UNION
    SELECT u.userId, e.as_of, u.ts
    FROM u JOIN eligible AS e ON e.userId = u.userId
    WHERE $inactive AND u.ts >= e.as_of AND u.ts < e.as_of + $h + $d
),
silent AS (
    SELECT DISTINCT userId, as_of
    FROM (SELECT userId, as_of, ts,
                 lead(ts) OVER (PARTITION BY userId, as_of ORDER BY ts) AS next_ts
          FROM anchors) AS a
    WHERE ts < as_of + $h AND (next_ts IS NULL OR next_ts - ts >= $d)
)
SELECT
    e.userId,
    e.as_of,
    CASE WHEN e.first_churn < e.as_of + $h OR s.userId IS NOT NULL THEN 1 ELSE 0 END AS churned
FROM eligible AS e
LEFT JOIN silent AS s ON s.userId = e.userId AND s.as_of = e.as_of
"""

_SPARK_FILE = re.compile(r"(part-.*|_SUCCESS|_committed_.*|_started_.*|\..*\.crc)")


def label_sql() -> str:
    """The label query :data:`LABEL_SQL` (DuckDB dialect; parameters ``$as_of``, ``$end``, ``$d``, ``$inactive``)."""
    return LABEL_SQL


def _window_ms(horizon_days: float, inactivity_days: float | None) -> tuple[int, int | None]:
    h = int(round(horizon_days * MS_PER_DAY))
    d = int(round(inactivity_days * MS_PER_DAY)) if inactivity_days is not None else None
    return h, d


def _dates(as_of: object) -> list[int]:
    items = [as_of] if isinstance(as_of, (str, int)) or not isinstance(as_of, Iterable) else list(as_of)
    if not items:
        raise ValueError("at least one observation date (as_of) is needed")
    return sorted({to_epoch_ms(a) for a in items})


def _finish(rows: "DataFrame", as_of_ms: "Column") -> "DataFrame":
    """``build_features``' pandas post-processing, in Spark: counts 0 and categories ``"unknown"`` where
    a user has no feature row, types int64 / float64 / string, ``as_of`` a timestamp."""
    from pyspark.sql import functions as F

    cols = [F.col("userId").cast("string").alias("userId"),
            F.timestamp_millis(as_of_ms).alias("as_of"),
            F.col("churned").cast("bigint").alias("churned")]
    for f in FEATURE_DICTIONARY:
        c = F.col(f"`{f.name}`")
        if f.dtype == "int64":
            cols.append(F.coalesce(c.cast("bigint"), F.lit(0).cast("bigint")).alias(f.name))
        elif f.dtype == "float64":
            cols.append(c.cast("double").alias(f.name))
        else:
            cols.append(F.coalesce(c.cast("string"), F.lit("unknown")).alias(f.name))
    return rows.select(*cols)


def features_spark(spark: "SparkSession", events: "DataFrame", as_of: Sequence[object],
                   horizon_days: float = 30, inactivity_days: float | None = None, *,
                   log_end: object | None = None) -> "DataFrame":
    """The training table of :func:`churnlib.features.build_features`, computed by Spark.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        E.g. :func:`churnlib.spark_session.get_spark`.
    events : pyspark.sql.DataFrame
        Cleaned events in the Sparkify schema (:func:`churnlib.spark_load.load_events_spark`, or any
        frame with at least ``ts`` epoch ms, ``userId``, ``sessionId``, ``page``, ``level``, ``location``,
        ``userAgent``, ``gender``, ``artist``, ``song``, ``length``, ``registration``, ``itemInSession``).
        It is read once per date and query: cache it if it is costly to compute.
    as_of : sequence of int epoch ms or date-likes
        Observation dates (see :func:`churnlib.labels.to_epoch_ms`); several stack into one table.
    horizon_days : float, default 30
        Label window in days.
    inactivity_days : float, optional
        Silence that also counts as churn (see :func:`churnlib.labels.observation_labels`).
    log_end : date-like, optional
        Time up to which the log is complete; default its latest ``ts`` (one small Spark job).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; ``userId`` string, ``as_of`` timestamp (UTC), ``churned`` bigint 0/1, then the features of
        :data:`churnlib.features.FEATURE_DICTIONARY` in order (bigint / double / string, as their
        dtypes say); one row per eligible user and date, sorted by ``as_of`` then ``userId``.

    Raises
    ------
    ValueError
        No date, or a bad horizon / inactivity.
    churnlib.labels.LabelCensoredError
        The log ends before the latest label window (plus ``inactivity_days``) is fully observed.
    """
    from pyspark.sql import functions as F

    dates = _dates(as_of)
    if not (horizon_days > 0 and horizon_days < float("inf")):
        raise ValueError(f"features_spark: horizon_days must be > 0, got {horizon_days!r}")
    if inactivity_days is not None and not (inactivity_days > 0 and inactivity_days < float("inf")):
        raise ValueError(f"features_spark: inactivity_days must be > 0, got {inactivity_days!r}")
    h, d = _window_ms(horizon_days, inactivity_days)
    if log_end is None:
        end = events.agg(F.max(F.col("ts").cast("bigint"))).first()[0]
    else:
        end = to_epoch_ms(log_end)
    needed = dates[-1] + h + (d or 0)
    if end is None or end < needed:
        raise LabelCensoredError(
            f"features_spark: the log ends at {_iso(end)} but labels at as_of={_iso(dates[-1])} with horizon "
            f"{horizon_days} d" + (f" and inactivity {inactivity_days} d" if d is not None else "")
            + f" need it to reach {_iso(needed)}; choose an earlier as_of or pass log_end")

    tag = uuid.uuid4().hex
    dates_df = spark.createDataFrame([(t,) for t in dates], "as_of bigint")
    uid = F.col("userId").cast("string")
    # One copy of each user's rows before each date, keyed <userId>#<as_of>: one query for all dates.
    stacked = (events.where(uid.isNotNull() & (uid != ""))
               .crossJoin(F.broadcast(dates_df.withColumnRenamed("as_of", f"_as_of_{tag}")))
               .where(F.col("ts").cast("bigint") < F.col(f"_as_of_{tag}"))
               .withColumn("userId", F.concat(uid, F.lit(STACK_SEPARATOR), F.col(f"_as_of_{tag}").cast("string")))
               .drop(f"_as_of_{tag}"))
    views = {"events": f"churnlib_events_{tag}", "dates": f"churnlib_dates_{tag}"}
    events.createOrReplaceTempView(views["events"])
    dates_df.createOrReplaceTempView(views["dates"])
    stacked.createOrReplaceTempView(f"churnlib_stacked_{tag}")
    labels = spark.sql(to_spark(LABEL_SQL, tables=views),
                       args={"h": h, "d": d or 0, "inactive": d is not None})
    feats = spark.sql(to_spark_stacked(feature_sql(), tables={"events": f"churnlib_stacked_{tag}"}))
    key = feats["userId"]
    feats = (feats.withColumn("_as_of_ms", F.substring_index(key, STACK_SEPARATOR, -1).cast("bigint"))
             .withColumn("userId", F.regexp_extract(key, f"^(.*){re.escape(STACK_SEPARATOR)}[0-9]+$", 1)))
    rows = labels.join(feats, on=(labels["userId"] == feats["userId"]) & (labels["as_of"] == feats["_as_of_ms"]),
                       how="left").select(labels["userId"], labels["as_of"].alias("_label_as_of"), labels["churned"],
                                          *[feats[f"`{f.name}`"] for f in FEATURE_DICTIONARY])
    table = _finish(rows, F.col("_label_as_of"))
    return table.orderBy("as_of", "userId")


def _iso(ms: int | None) -> str:
    if ms is None:
        return "(empty log)"
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat()


def _is_uri(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None and not path.startswith("file://")


def _check_local_out(out: Path, events_path: str) -> None:
    """Refuse an output that is an input, inside an input folder, or a folder of something else."""
    inputs = [] if _is_uri(events_path) else [events_path]
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if not _SPARK_FILE.fullmatch(p.name)]
        if foreign:
            raise OutputError(f"is a folder holding {foreign[0]!r}, not a parquet table written by Spark; "
                              "give a new path (the table is written as a folder)", out)
        check_output(out, inputs=inputs, folder=True, sidecar=False)
        check_output(quality_path(out), inputs=inputs, sidecar=False)
    else:
        check_output(out, inputs=inputs)


def _replace(tmp: Path, out: Path) -> None:
    """Put the folder ``tmp`` where ``out`` is (a folder or file of a previous run), then drop the old one."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink(missing_ok=True)


def build_features_spark(events_path: str | os.PathLike, as_of: Sequence[str] | None = None,
                         horizon_days: float = 30, *, out: str | os.PathLike, master: str = "local[2]",
                         strict: bool = False, inactivity_days: float | None = None,
                         every_days: int = 7, memory: str | None = None) -> DataQuality:
    """``python -m churnlib features --engine spark``: load and clean on Spark, build, write parquet.

    The Spark counterpart of :func:`churnlib.features.features_command`, with the same checks (horizon,
    dates inside the log with their label window covered, output path, no empty table) and the same
    table (see :func:`features_spark`), written by Spark as one parquet folder that pandas, pyarrow,
    DuckDB and Spark read as one table (``pd.read_parquet(out)``). A local ``out`` is written to a
    temporary folder beside it and then renamed (a previous table at ``out``, file or folder, is
    replaced), with the data-quality account beside it (``<out>.quality.json``); a URI (``hdfs://``,
    ``s3a://`` ...) is written in place (overwrite) and the account is only returned.

    Parameters
    ----------
    events_path : path-like or URI
        Event log: parquet, NDJSON or a folder of them, anything
        :func:`churnlib.spark_load.load_events_spark` reads.
    as_of : list of str, optional
        Observation dates (``YYYY-MM-DD``, UTC). Default: every ``every_days`` days over the later half
        of the log, as :func:`churnlib.features.observation_dates` chooses them (for a window of
        ``horizon_days + inactivity_days``).
    horizon_days : float, default 30
        Label window in days.
    out : path-like or URI
        The parquet folder to write.
    master : str, default "local[2]"
        Spark master (see :func:`churnlib.spark_session.get_spark`; under ``spark-submit`` its
        ``--master`` wins).
    strict : bool, default False
        Refuse the log at its first defect instead of repairing or dropping rows.
    inactivity_days : float, optional
        Silence that also counts as churn.
    every_days : int, default 7
        Spacing of the default dates.
    memory : str, optional
        Driver memory for a session this call starts, e.g. ``"4g"``.

    Returns
    -------
    churnlib.load.DataQuality
        The log's data-quality account (what was read, kept, dropped and repaired).

    Raises
    ------
    ValueError
        A bad date or horizon, an unusable output (:class:`churnlib.outputs.OutputError`), a table that
        would be empty; :class:`churnlib.load.DataValidationError` for a bad log;
        :class:`churnlib.labels.LabelCensoredError` for dates too late for the log.
    """
    from pyspark.sql import functions as F

    horizon_days = check_horizon(horizon_days)
    src, dst = os.fspath(events_path), os.fspath(out)
    given = None
    if as_of is not None:
        given = []
        for a in as_of:
            try:
                given.append(to_epoch_ms(a))
            except (TypeError, ValueError):
                raise ValueError(f"as-of {a!r} is not a date; expected YYYY-MM-DD (UTC), e.g. 2018-11-01") from None
        if not given:
            raise ValueError("at least one observation date (--as-of) is needed")
    local = not _is_uri(dst)
    if local:
        _check_local_out(Path(dst), src)
    spark = get_spark(master, memory=memory)
    log = load_events_spark(spark, src, strict=strict)
    try:
        row = log.events.agg(F.min(F.col("ts").cast("bigint")), F.max(F.col("ts").cast("bigint"))).first()
        first, last = row[0], row[1]
        if given is None:
            # the label window, plus the silence that must be seen when inactivity counts
            window = horizon_days + (inactivity_days or 0)
            given = [to_epoch_ms(x) for x in observation_dates_for_span(first, last, window, every_days)]
        dates = sorted(set(given))
        check_observation_dates(dates, horizon_days, first, last)
        table = features_spark(spark, log.events, dates, horizon_days, inactivity_days, log_end=last)
        if local:
            target = Path(dst)
            tmp = target.with_name(f".{target.name}.spark-{uuid.uuid4().hex[:8]}")
            try:
                table.write.parquet(str(tmp))
                n = spark.read.parquet(str(tmp)).count()
                if n == 0:
                    raise ValueError(_EMPTY.format(src=src))
                _replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            write_json(quality_path(target), log.quality.to_dict())
        else:
            table.write.mode("overwrite").parquet(dst)
            if spark.read.parquet(dst).limit(1).count() == 0:
                raise ValueError(_EMPTY.format(src=src).replace("nothing written", f"{dst} holds an empty table"))
    finally:
        log.unpersist()
    return log.quality


_EMPTY = ("no user is eligible at the given date(s) in {src}: every user with history before them had already "
          "cancelled; nothing written (choose earlier dates)")
