"""One configured Spark session for churnlib: local, quiet, UTC and bound to the loopback address.

:func:`get_spark` starts (or returns) the process-wide :class:`pyspark.sql.SparkSession` that the
Spark engine of churnlib (:mod:`churnlib.spark_load`, :mod:`churnlib.spark_features`) runs on:

* the driver binds to ``127.0.0.1`` (``spark.driver.host`` / ``spark.driver.bindAddress``) and the web
  UI is off, so a local run opens no port beyond the loopback interface;
* the session time zone is UTC (the feature SQL works in epoch milliseconds, but any timestamp that
  Spark renders or parses is UTC, as in DuckDB), and parquet timestamps are written in milliseconds
  (pandas reads them back as ``datetime64[ms, UTC]``, the dtype of ``as_of`` in churnlib's tables);
* local masters get few shuffle partitions (2 per core) instead of Spark's 200, which dominate the
  run time of small logs; adaptive execution is left on;
* log4j logs only errors and the console progress bar is off, so stderr stays readable;
* Hive's metastore (derby) and the SQL warehouse go to a temporary folder, never into the work tree.

On a cluster (``spark://...``, ``yarn``, ``k8s://...``) only the address binding to ``127.0.0.1`` is
left out (executors must reach the driver); the rest applies unchanged. :func:`java_missing_reason`
tells, without starting anything, whether Spark can run here, and how to install what is missing.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["JAVA_INSTALL_COMMAND", "MIN_JAVA", "get_spark", "java_missing_reason", "stop_spark"]

#: The command that installs a Java runtime Spark accepts (Debian/Ubuntu, as root).
JAVA_INSTALL_COMMAND = "apt-get install -y openjdk-17-jre-headless"
#: Oldest Java major version PySpark 4 runs on.
MIN_JAVA = 17

_LOCK = threading.Lock()
# log4j2 configuration for the driver: errors only, from the JVM's first line on.
_LOG4J = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""
_TMP: str | None = None


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        res = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', res.stderr + res.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


@contextlib.contextmanager
def _quiet_pandas_warning() -> Iterator[None]:
    """Hide PySpark's warning that pandas 3 is newer than it was tested with (churnlib moves no data
    through PySpark's pandas conversion; the equality tests check the results)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        yield


def java_missing_reason() -> str | None:
    """Why Spark cannot run on this machine, or None when it can.

    Checks that PySpark imports and that a Java runtime of version :data:`MIN_JAVA` or later is found
    (``$JAVA_HOME/bin/java``, else ``java`` on ``PATH``). Starts no JVM.

    Returns
    -------
    str or None
        None when PySpark and Java are usable; otherwise a plain-words reason ending with the
        command that fixes it (:data:`JAVA_INSTALL_COMMAND`, or the pip install of PySpark).
    """
    try:
        with _quiet_pandas_warning():
            importlib.import_module("pyspark.sql")
    except ImportError:
        return ("PySpark is not installed: run `make setup` (or `.venv/bin/pip install -r "
                "requirements.lock`)")
    java = _java_binary()
    if java is None:
        return f"no Java runtime found (Spark needs Java {MIN_JAVA}+): run `{JAVA_INSTALL_COMMAND}` as root"
    major = _java_major(java)
    if major is None:
        return f"{java} did not report its version (Spark needs Java {MIN_JAVA}+): run `{JAVA_INSTALL_COMMAND}`"
    if major < MIN_JAVA:
        return (f"{java} is Java {major}; Spark needs Java {MIN_JAVA}+: run `{JAVA_INSTALL_COMMAND}` "
                "and point JAVA_HOME at it")
    return None


def _is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[") or master.startswith("local-cluster")


def _local_cores(master: str) -> int:
    m = re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", master)
    if m:
        return max(1, int(m.group(1)))
    if master == "local":
        return 1
    return os.cpu_count() or 1


def _under_spark_submit() -> bool:
    """True in a Python driver that ``spark-submit`` started (its ``--master`` and ``--conf`` rule)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _tmp_dir() -> str:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="churnlib-spark-")
        atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
    return _TMP


def get_spark(master: str = "local[2]", *, app_name: str = "churnlib", memory: str | None = None) -> "SparkSession":
    """The process-wide Spark session, configured for churnlib (started on first call).

    Parameters
    ----------
    master : str, default "local[2]"
        Spark master URL: ``local[N]``, ``spark://host:port``, ``yarn``, ``k8s://...``. Ignored when a
        session is already active in this process (that session is returned, with the session time
        zone set to UTC) and in a driver started by ``spark-submit``, where the submit command's
        ``--master`` wins.
    app_name : str, default "churnlib"
        Application name shown by the cluster manager.
    memory : str, optional
        Driver memory, e.g. ``"4g"`` (for a local master this is the memory of the whole run). Only
        effective when this call starts the JVM.

    Returns
    -------
    pyspark.sql.SparkSession
        Session time zone UTC, few shuffle partitions on local masters, driver bound to 127.0.0.1 on
        local masters, UI off, logging at ERROR level.
    """
    with _quiet_pandas_warning():
        from pyspark.sql import SparkSession

    with _LOCK, _quiet_pandas_warning():
        active = SparkSession.getActiveSession()
        if active is None:
            tmp = _tmp_dir()
            # Quiet the JVM from its first line (before the log level can be set), and keep derby's
            # log and metastore out of the working directory.
            local = _is_local(master)
            if local:
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
                # Python workers (the loader's line numbering) run this interpreter, not whatever `python3`
                # is first on PATH (another version, without pyspark's dependencies).
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            log4j = os.path.join(tmp, "log4j2.properties")
            with open(log4j, "w", encoding="utf-8") as fh:
                fh.write(_LOG4J)
            java_opts = (f"-Dderby.system.home={os.path.join(tmp, 'derby')} -Duser.timezone=UTC "
                         f"-Dlog4j2.configurationFile=file:{log4j}")
            b = SparkSession.builder.appName(app_name)
            if not _under_spark_submit():
                b = b.master(master)
            b = (b
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MILLIS")
                 .config("spark.sql.warehouse.dir", os.path.join(tmp, "warehouse"))
                 .config("spark.sql.catalogImplementation", "in-memory")
                 .config("spark.driver.extraJavaOptions", java_opts)
                 .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC"))
            if local:
                b = (b.config("spark.local.dir", os.path.join(tmp, "local"))
                     .config("spark.driver.host", "127.0.0.1")
                     .config("spark.driver.bindAddress", "127.0.0.1")
                     .config("spark.sql.shuffle.partitions", str(2 * _local_cores(master)))
                     .config("spark.default.parallelism", str(2 * _local_cores(master))))
            if memory:
                b = b.config("spark.driver.memory", memory)
            spark = b.getOrCreate()
            spark.sparkContext.setLogLevel("ERROR")
        else:
            spark = active
            spark.conf.set("spark.sql.session.timeZone", "UTC")
            spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MILLIS")
        return spark


def stop_spark() -> None:
    """Stop the active Spark session (and its JVM's context), if any. Safe to call twice."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - nothing to stop
        return
    with _LOCK:
        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
