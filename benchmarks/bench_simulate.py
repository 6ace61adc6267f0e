"""Benchmark: simulated event logs written to parquet.

1. Mid-size: ``write_event_log(n_users=--users, days=60)`` to a temporary parquet file (after a
   small warm-up run that loads the Numba cache), in events/s.
2. Baseline in the same run: the throughput of merely writing an equally sized, already built
   table (the mid-size log read back into memory, plain string columns) to parquet. The ratio
   says how much of the cost is simulation versus writing.
3. Threads: the mid-size log again with ``--jobs`` simulation threads (``n_jobs``), against the
   serial run of step 1 (the files must be byte for byte the same).
4. Full Sparkify scale: 22,278 users x 60 days in a child process, so its peak RSS
   (``VmHWM``, falling back to ``ru_maxrss``) is its own. Targets: at least 500,000 events/s, at most 60 s, at most 4 GB.

Usage::

    python benchmarks/bench_simulate.py [--users 2000] [--jobs 2] [--full-users 22278] [--skip-full]

Prints figures and PASS/FAIL per target; always exits 0 (the figures are the result).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_EVENTS_PER_S = 500_000
MAX_FULL_SECONDS = 60.0
MAX_RSS_GB = 4.0
FULL_USERS = 22_278
DAYS = 60

_CHILD = """
import json, resource, sys
from churnlib.simulate import write_event_log
out, n, days, chunk = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
write_event_log(out, n_users=32, days=2, seed=1)  # load the compiled kernel from the cache
stats = write_event_log(out, n_users=n, days=days, seed=7, chunk_users=chunk)
# VmHWM: this process's own peak (ru_maxrss can carry the parent's peak over fork/exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
stats["maxrss_bytes"] = (int(hwm[0].split()[1]) if hwm else
                         resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
print(json.dumps(stats))
"""


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=2000, help="users in the mid-size run")
    ap.add_argument("--full-users", type=int, default=FULL_USERS, help="users at full scale")
    ap.add_argument("--chunk-users", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2, help="simulation threads in the threads run")
    ap.add_argument("--skip-full", action="store_true", help="skip the full-scale child run")
    args = ap.parse_args(argv)

    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnlib.simulate import write_event_log

    with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
        tmp = Path(tmp)
        # warm-up: compile (first run ever) or load the Numba cache
        t0 = time.perf_counter()
        write_event_log(tmp / "warm.parquet", n_users=32, days=2, seed=1)
        warm = time.perf_counter() - t0

        mid = write_event_log(tmp / "mid.parquet", n_users=args.users, days=DAYS, seed=7,
                              chunk_users=args.chunk_users)
        # baseline: write the same number of rows from a pre-built in-memory table
        table = pq.read_table(tmp / "mid.parquet")
        table = pa.table({c: table.column(c).cast(pa.string())
                          if pa.types.is_dictionary(table.column(c).type) else table.column(c)
                          for c in table.column_names})
        t0 = time.perf_counter()
        pq.write_table(table, tmp / "base.parquet", compression="snappy",
                       row_group_size=max(1, table.num_rows // max(1, args.users // args.chunk_users)))
        base_s = time.perf_counter() - t0
        base_eps = table.num_rows / base_s
        del table

        print(f"warm-up (Numba compile or cache load): {warm:.1f} s")
        print(f"mid-size  : {args.users:,} users x {DAYS} days -> {mid['events']:,} events in "
              f"{mid['seconds']:.2f} s = {mid['events_per_s']:,.0f} events/s "
              f"({mid['bytes'] / 1e6:.0f} MB parquet)")
        print(f"baseline  : writing an equally sized pre-built table (plain strings) to parquet: "
              f"{base_s:.2f} s = {base_eps:,.0f} events/s")
        print(f"ratio     : simulate+write / write-only = {mid['events_per_s'] / base_eps:.2f}x; "
              f"vs the {TARGET_EVENTS_PER_S:,} events/s target = "
              f"{mid['events_per_s'] / TARGET_EVENTS_PER_S:.2f}x  "
              f"{_verdict(mid['events_per_s'] >= TARGET_EVENTS_PER_S)}")

        # threads: chunks of users simulated in parallel; the same bytes as the serial run
        import hashlib

        chunk = max(1, min(args.chunk_users, -(-args.users // args.jobs)))
        serial = write_event_log(tmp / "serial.parquet", n_users=args.users, days=DAYS, seed=7, chunk_users=chunk)
        par = write_event_log(tmp / "threads.parquet", n_users=args.users, days=DAYS, seed=7, chunk_users=chunk,
                              n_jobs=args.jobs)
        same = (hashlib.sha256((tmp / "serial.parquet").read_bytes()).digest()
                == hashlib.sha256((tmp / "threads.parquet").read_bytes()).digest())
        print(f"threads   : {args.jobs} threads, chunks of {chunk:,} users: {par['seconds']:.2f} s vs serial "
              f"{serial['seconds']:.2f} s = {serial['seconds'] / par['seconds']:.2f}x; identical file: "
              f"{_verdict(same)}")

        if args.skip_full:
            print("full scale: skipped (--skip-full)")
            return 0
        out = tmp / "full.parquet"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), str(args.full_users),
                               str(DAYS), str(args.chunk_users)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"full scale: FAILED to run (exit {proc.returncode})\n{proc.stderr[-2000:]}")
            return 0
        full = json.loads(proc.stdout.strip().splitlines()[-1])
        rss_gb = full["maxrss_bytes"] / 1024 ** 3
        print(f"full scale: {args.full_users:,} users x {DAYS} days -> {full['events']:,} events, "
              f"{full['churned']:,} cancellations, {full['bytes'] / 1e6:.0f} MB parquet")
        print(f"  time    : {full['seconds']:.1f} s (child wall {wall:.1f} s incl. start-up) "
              f"<= {MAX_FULL_SECONDS:.0f} s  {_verdict(full['seconds'] <= MAX_FULL_SECONDS)}")
        print(f"  speed   : {full['events_per_s']:,.0f} events/s >= {TARGET_EVENTS_PER_S:,}  "
              f"{_verdict(full['events_per_s'] >= TARGET_EVENTS_PER_S)}")
        print(f"  peak RSS: {rss_gb:.2f} GB <= {MAX_RSS_GB:.0f} GB  {_verdict(rss_gb <= MAX_RSS_GB)}")
    print(f"(this process peak RSS: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
