"""Benchmark: the feature build on one machine, DuckDB vs Spark ``local[2]``, on the same parquet log.

For each size (``--sizes``, events; default 3 million and 32 million) a simulated log is written as a
folder of parquet files (:func:`churnlib.simulate.write_partitioned_log`, 60 days, seed 7; cached under
``<tmp>/churnlib_bench/spark/`` and reused by later runs, with the writer's own figures beside it). Then
the same feature build runs on each engine, each in a child process of its own, at the same observation dates
(those of ``make report``: :func:`churnlib.features.observation_dates` with a 14-day label window):

* **DuckDB** (the baseline): :func:`churnlib.features.features_command`, what
  ``python -m churnlib features`` runs: load and validate the log into pandas, build labels and
  features, write parquet. Peak memory is the child's own peak RSS (``VmHWM``; DuckDB runs inside it).
* **DuckDB straight from parquet** (information): :func:`churnlib.features.build_features` on the
  folder with a DuckDB ``memory_limit`` (``--duckdb-memory``), the out-of-core path the loader's
  validation and repairs do not run on.
* **Spark**: :func:`churnlib.spark_features.build_features_spark` on ``local[2]`` (the driver bound to
  127.0.0.1 by :func:`churnlib.spark_session.get_spark`), driver memory ``--spark-memory``. Peak memory
  is counted for the Python driver *and* the JVM it starts: every process of the child's tree is polled
  in ``/proc`` (every 0.2 s) for its peak RSS (``VmHWM``, kept by the kernel, so short peaks count) and
  the sampled sum of the tree's RSS. Wall time includes the JVM start; the start alone is printed too.

Each build has a memory budget (``--max-gb``, default half the memory available at the start): the
parent polls the child's process tree and stops a build that goes over it, and reports that it does not
fit, rather than pushing a shared machine into the OOM killer.

The Spark table is compared with DuckDB's (integers exactly, floats within 1e-9 relative) and the
ratios Spark / DuckDB printed. On one machine Spark is expected to be slower: its point is that the same
build runs on a cluster. The writer's peak RSS at each size shows that writing a log takes
bounded memory whatever its size.

Usage::

    python benchmarks/bench_spark.py                        # 3M and 32M events (tens of minutes on 2 cores)
    python benchmarks/bench_spark.py --sizes 3e6            # one size
    python benchmarks/bench_spark.py --quick                # ~300k events, a smoke run

Prints figures; always exits 0 (the figures are the result). Without Java the Spark half is skipped with
the install command.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DAYS, SEED, HORIZON = 60, 7, 14.0
QUICK_SIZES = (3e5,)
GB = 1024 ** 3


# --------------------------------------------------------------------------------------------
# Memory of a process tree, from /proc (Linux).
# --------------------------------------------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:  # gone
        return {}


def _kib(value: str | None) -> int:
    return int(value.split()[0]) * 1024 if value else 0


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/<pid>/task/*/children``, else a scan of ``/proc``)."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                kids += [int(k) for k in fh.read().split()]
        return kids
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _status(int(entry)).get("PPid", "").strip() == str(pid):
            kids.append(int(entry))
    return kids


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


class TreeMemory:
    """Poll this process and its descendants: per-process peak RSS and the peak of the tree's sum.

    A daemon thread reads ``/proc/<pid>/status`` of the tree every ``interval`` seconds until
    :meth:`stop`; it holds one small record per process seen, so it is bounded.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.procs: dict[int, dict] = {}
        self.peak_sum = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        total = 0
        for pid in _tree(os.getpid()):
            st = _status(pid)
            if not st:
                continue
            rec = self.procs.setdefault(pid, {"name": st.get("Name", "?").strip(), "hwm": 0})
            rec["name"] = st.get("Name", rec["name"]).strip()  # after exec: java, not bash
            rec["hwm"] = max(rec["hwm"], _kib(st.get("VmHWM")), _kib(st.get("VmRSS")))
            total += _kib(st.get("VmRSS"))
        self.peak_sum = max(self.peak_sum, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> dict:
        self.sample()
        self._stop.set()
        self._thread.join()
        me = os.getpid()
        others = [r for p, r in self.procs.items() if p != me]
        jvm = [r["hwm"] for r in others if r["name"] == "java"]
        return {"driver_gb": self.procs.get(me, {"hwm": 0})["hwm"] / GB,
                "jvm_gb": max(jvm, default=0) / GB,
                "others_gb": sum(r["hwm"] for r in others if r["name"] != "java") / GB,
                "tree_sum_gb": self.peak_sum / GB,
                "processes": sorted({r["name"] for r in others})}


def _own_peak_gb() -> float:
    return _kib(_status(os.getpid()).get("VmHWM")) / GB


# --------------------------------------------------------------------------------------------
# Child processes: one per measurement, so each peak is its own.
# --------------------------------------------------------------------------------------------

def _child_simulate(out: str, n_events: str, days: str, seed: str) -> dict:
    from churnlib.simulate import write_event_log, write_partitioned_log

    with tempfile.TemporaryDirectory() as tmp:  # load the compiled kernel from Numba's cache first
        write_event_log(Path(tmp) / "warm.parquet", n_users=32, days=2, seed=1)
    stats = write_partitioned_log(out, n_events=float(n_events), days=float(days), seed=int(seed))
    stats["peak_rss_gb"] = _own_peak_gb()
    return stats


def _child_duckdb(log: str, dates: str, horizon: str, out: str) -> dict:
    import pandas as pd

    from churnlib.features import features_command

    t0 = time.perf_counter()
    table = features_command(log, dates.split(","), float(horizon), out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_gb": _own_peak_gb(), "rows": len(table),
            "positives": int(table["churned"].sum()), "pandas": pd.__version__}


def _child_duckdb_parquet(log: str, dates: str, horizon: str, out: str, memory_limit: str) -> dict:
    from churnlib.features import build_features

    t0 = time.perf_counter()
    table = build_features(log, dates.split(","), horizon_days=float(horizon), memory_limit=memory_limit)
    table.to_parquet(out, index=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_gb": _own_peak_gb(), "rows": len(table),
            "positives": int(table["churned"].sum())}


def _child_spark(log: str, dates: str, horizon: str, out: str, master: str, memory: str) -> dict:
    mem = TreeMemory()
    from churnlib.spark_features import build_features_spark
    from churnlib.spark_session import get_spark, stop_spark

    t0 = time.perf_counter()
    get_spark(master, memory=memory)  # build_features_spark runs on this session
    started = time.perf_counter() - t0
    try:
        build_features_spark(log, as_of=dates.split(","), horizon_days=float(horizon), master=master, out=out)
        seconds = time.perf_counter() - t0
        figures = mem.stop()  # before the JVM stops: its peak is read while it runs
    finally:
        stop_spark()
    import pyarrow.parquet as pq

    table = pq.read_table(out, columns=["churned"])
    return {"seconds": seconds, "start_seconds": started, **figures, "rows": table.num_rows,
            "positives": int(sum(v for v in table.column("churned").to_pylist() if v))}


_CHILDREN = {"simulate": _child_simulate, "duckdb": _child_duckdb, "duckdb-parquet": _child_duckdb_parquet,
             "spark": _child_spark}


class MemoryExceeded(RuntimeError):
    """A child's process tree went over the memory budget and was stopped."""


def _tree_rss(pid: int) -> int:
    return sum(_kib(_status(p).get("VmRSS")) for p in _tree(pid))


def _run_child(kind: str, *args: str, max_gb: float | None = None, max_seconds: float | None = None) -> dict:
    """Run one measurement in a child process; stop it (and its tree) if its RSS passes ``max_gb`` or it
    runs longer than ``max_seconds``.

    The budget protects a shared machine: a build that would not fit is stopped early and reported
    as such instead of driving the machine into swap or the OOM killer.
    """
    cmd = [sys.executable, __file__, "--child", kind, *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True)
        t0, peak = time.perf_counter(), 0
        while proc.poll() is None:
            rss = _tree_rss(proc.pid)
            peak = max(peak, rss)
            if max_gb is not None and rss > max_gb * GB:
                os.killpg(proc.pid, 9)  # the child's own process group (start_new_session): it and its JVM
                proc.wait()
                raise MemoryExceeded(f"stopped after {time.perf_counter() - t0:.0f} s at {rss / GB:.1f} GB "
                                     f"(over the {max_gb:.1f} GB budget of --max-gb): it needs more memory than that")
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise MemoryExceeded(f"stopped after {max_seconds:.0f} s (the --max-minutes budget) at "
                                     f"{peak / GB:.1f} GB peak: it did not finish")
            time.sleep(0.25)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        log = Path(tempfile.gettempdir()) / f"bench_spark_{kind}_{os.getpid()}.stderr.txt"
        log.write_text(stderr)
        causes = [line.strip() for line in stderr.splitlines()
                  if "OutOfMemoryError" in line or line.lstrip().startswith("Caused by:")][:3]
        raise RuntimeError(f"{kind} run failed (exit {proc.returncode}); its stderr: {log}\n"
                           + "\n".join(causes + stderr.strip().splitlines()[-2:]))
    return json.loads(stdout.strip().splitlines()[-1])


def _available_gb() -> float:
    with open("/proc/meminfo", encoding="ascii") as fh:
        info = dict(line.split(":", 1) for line in fh)
    return _kib(info["MemAvailable"].strip()) / GB


# --------------------------------------------------------------------------------------------
# The parent.
# --------------------------------------------------------------------------------------------

def _log(cache: Path, n_events: float, days: int, seed: int) -> tuple[Path, dict, bool]:
    """The cached log of about ``n_events`` events (written in a child process when absent)."""
    name = f"events_n{int(n_events)}_d{days}_s{seed}"
    path, meta = cache / name, cache / f"{name}.json"
    if path.is_dir() and meta.is_file():
        return path, json.loads(meta.read_text()), True
    if path.exists():  # a log without its figures (an interrupted run): write it again
        import shutil

        shutil.rmtree(path)
    stats = _run_child("simulate", str(path), repr(float(n_events)), str(days), str(seed))
    meta.write_text(json.dumps(stats, indent=2))
    return path, stats, False


def _compare(a_path: Path, b_path: Path) -> list[str]:
    """Columns on which the two feature tables differ (integers exactly, floats 1e-9 relative)."""
    import numpy as np
    import pandas as pd

    a, b = pd.read_parquet(a_path), pd.read_parquet(b_path)
    if sorted(a.columns) != sorted(b.columns):
        return [f"columns: {sorted(set(a.columns) ^ set(b.columns))}"]
    for d in (a, b):
        d["as_of"] = pd.to_datetime(d["as_of"], utc=True).astype("int64") // 10 ** 6  # any unit -> ms
    a = a.sort_values(["as_of", "userId"]).reset_index(drop=True)
    b = b.sort_values(["as_of", "userId"]).reset_index(drop=True)[list(a.columns)]
    if len(a) != len(b) or not (a["userId"].astype(str) == b["userId"].astype(str)).all():
        return ["rows (user x date)"]
    bad = []
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            ok = np.allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=0, equal_nan=True)
        elif pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            ok = bool((x.astype("int64") == y.astype("int64")).all())
        else:
            ok = bool((x.astype(str) == y.astype(str)).all())
        if not ok:
            bad.append(col)
    return bad


def _size(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"a size is a number of events >= 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="3e6,32e6", help="comma-separated log sizes in events (default 3e6,32e6)")
    p.add_argument("--quick", action="store_true", help="one log of about 300,000 events (a smoke run)")
    p.add_argument("--days", type=int, default=DAYS)
    p.add_argument("--horizon", type=float, default=HORIZON, help="label window in days (make report's: 14)")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--spark-memory", default="4g", help="Spark driver memory (local: the whole run)")
    p.add_argument("--engines", default="duckdb,duckdb-parquet,spark",
                   help="which builds to run: duckdb (the CLI's), duckdb-parquet, spark")
    p.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory limit of the duckdb-parquet build")
    p.add_argument("--max-minutes", type=float, default=30,
                   help="stop a build that runs longer than this (so make bench always ends; default 30)")
    p.add_argument("--max-gb", type=float, default=None,
                   help="memory budget of one build; a build going over it is stopped and reported "
                        "(default: half the memory available at the start)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "churnlib_bench" / "spark"),
                   help="folder for the simulated logs (reused between runs)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        print(json.dumps(_CHILDREN[kind](*rest)))
        return 0

    sizes = QUICK_SIZES if args.quick else tuple(_size(s) for s in args.sizes.split(",") if s.strip())
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    from churnlib.features import observation_dates
    from churnlib.spark_session import java_missing_reason

    unknown = set(engines) - {"duckdb", "duckdb-parquet", "spark"}
    if unknown:
        p.error(f"unknown engine(s) {sorted(unknown)}; use duckdb, duckdb-parquet, spark")
    max_gb = args.max_gb if args.max_gb is not None else _available_gb() / 2
    missing = java_missing_reason() if "spark" in engines else None
    if missing:
        print(f"bench_spark: the Spark half is skipped: {missing}")
        engines = [e for e in engines if e != "spark"]
    print(f"bench_spark: feature build, DuckDB (features_command, in-process) vs Spark {args.master} "
          f"(build_features_spark, driver memory {args.spark_memory}); {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GB:.0f} GB RAM, "
          f"{_available_gb():.0f} GB available; memory budget per build {max_gb:.1f} GB", flush=True)
    for n in sizes:
        log, w, cached = _log(cache, n, args.days, SEED)
        print(f"\n[{n:,.0f} events] log {log} ({'cached; ' if cached else ''}written by the writer in "
              f"{w['seconds']:.0f} s, peak RSS {w['peak_rss_gb']:.2f} GB): {w['events']:,} events, "
              f"{w['users']:,} users x {args.days} days, {w['files']} files, {w['bytes'] / 1e6:,.0f} MB", flush=True)
        dates = observation_dates(log, args.horizon)
        print(f"  observation dates {', '.join(dates)}; {args.horizon:g}-day label window", flush=True)
        runs: dict[str, dict] = {}
        with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmp:
            outs = {e: Path(tmp) / f"{e}.parquet" for e in engines}
            for engine in engines:
                common = (str(log), ",".join(dates), str(args.horizon), str(outs[engine]))
                try:
                    if engine == "duckdb":
                        r = _run_child("duckdb", *common, max_gb=max_gb, max_seconds=60 * args.max_minutes)
                        print(f"  DuckDB, the CLI's build (load and validate into pandas, then features): "
                              f"{r['seconds']:.1f} s, peak RSS {r['peak_rss_gb']:.2f} GB; {r['rows']:,} rows "
                              f"(user x date), {r['positives']:,} churned", flush=True)
                    elif engine == "duckdb-parquet":
                        r = _run_child("duckdb-parquet", *common, args.duckdb_memory, max_gb=max_gb, max_seconds=60 * args.max_minutes)
                        print(f"  DuckDB straight from parquet (build_features on the folder, memory_limit "
                              f"{args.duckdb_memory}; no loader repairs): {r['seconds']:.1f} s, peak RSS "
                              f"{r['peak_rss_gb']:.2f} GB; {r['rows']:,} rows", flush=True)
                    else:
                        r = _run_child("spark", *common, args.master, args.spark_memory, max_gb=max_gb, max_seconds=60 * args.max_minutes)
                        r["peak_rss_gb"] = r["driver_gb"] + r["jvm_gb"] + r["others_gb"]
                        print(f"  Spark {args.master}: {r['seconds']:.1f} s (of which {r['start_seconds']:.1f} s "
                              f"JVM start), peak RSS driver {r['driver_gb']:.2f} GB + JVM {r['jvm_gb']:.2f} GB"
                              + (f" + others {r['others_gb']:.2f} GB" if r["others_gb"] else "")
                              + f" (tree sum sampled {r['tree_sum_gb']:.2f} GB); {r['rows']:,} rows, "
                              f"{r['positives']:,} churned", flush=True)
                    runs[engine] = r
                except MemoryExceeded as exc:
                    print(f"  {engine}: {exc}", flush=True)
                except RuntimeError as exc:
                    print(f"  {engine}: FAILED: {' | '.join(str(exc).splitlines()[-6:])}", flush=True)
            base = next((e for e in ("duckdb", "duckdb-parquet") if e in runs), None)
            if base and "spark" in runs:
                d, sp = runs[base], runs["spark"]
                print(f"  Spark / DuckDB ({base}): time {sp['seconds'] / d['seconds']:.1f}x "
                      f"({(sp['seconds'] - sp['start_seconds']) / d['seconds']:.1f}x without the JVM start), "
                      f"peak memory {sp['peak_rss_gb'] / d['peak_rss_gb']:.1f}x", flush=True)
            if "duckdb" in runs and "duckdb-parquet" in runs:
                d, q = runs["duckdb"], runs["duckdb-parquet"]
                print(f"  DuckDB from parquet / the CLI's build: time {q['seconds'] / d['seconds']:.2f}x, "
                      f"peak memory {q['peak_rss_gb'] / d['peak_rss_gb']:.2f}x", flush=True)
            if base and "spark" in runs:
                bad = _compare(outs[base], outs["spark"])
                print(f"  {'PASS' if not bad else 'FAIL'}: the Spark table equals DuckDB's ({base}; integers "
                      f"exactly, floats 1e-9 relative)" + ("" if not bad else f"; they differ on {', '.join(bad[:10])}"),
                      flush=True)
    print("\nbench_spark: done (timings on a shared machine vary; compare ratios measured in the same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
