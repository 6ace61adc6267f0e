"""Benchmark: the prediction service over HTTP (aims: one user p99 under 50 ms; batch within 2x the CLI per user).

A model is trained the way ``05_models`` trains it (``run_training``, CI-sized budget) on features of
a simulated log and saved as an artifact. A real server process is then started
(``python -m churnlib serve``: uvicorn on 127.0.0.1, a free port, a prediction store in a temporary
folder, so every prediction is also written to SQLite as in production) and called over loopback
with ``http.client`` (one keep-alive connection per client thread; request bodies encoded before
the clock starts, so the figures are the server's and the network stack's):

* single user, ``POST /predict`` with one current user's raw events (the user whose count is nearest
  ``--events``, about 1,000): latency p50/p95/p99 over ``--requests`` requests with 1 client, then with
  8 concurrent clients (the same total, split between them; on a small machine 8 clients queue);
* batch, ``POST /predict/batch`` with the raw events of ``--users`` current users, as the fewest
  requests the service's limits allow (:class:`churnlib.service.Limits`: body bytes, events, users per
  request), sent one after the other: throughput in users/s;
* in process, for the single user: :func:`churnlib.load.load_event_records` and
  :func:`churnlib.scoring.score_events` without HTTP (where a request's time goes);
* baseline, in the same run and on the same users and date: ``score --events``
  (:func:`churnlib.scoring.score_command`, in process: verify the artifact, read the parquet log, build
  features, score with reasons, write the CSV), for the batch's users and for the single user;
  per-user cost of the service over the CLI's, and whether both give the same probabilities.

Usage::

    python benchmarks/bench_service.py            # batch of 1,000 users, 400 requests per latency run
    python benchmarks/bench_service.py --quick    # batch of 300 users, 100 requests per latency run

Prints figures and PASS/FAIL against the aims; exits 0 (the figures are the result).
"""
from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

AIM_P99_MS = 50.0
AIM_BATCH_RATIO = 2.0
START_DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def _wait_healthy(proc: subprocess.Popen, port: int, err_path: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {err_path.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer on /health within {START_DEADLINE_S:.0f} s")


def _latencies(port: int, body: bytes, n_requests: int, clients: int) -> tuple[np.ndarray, float]:
    """Per-request seconds (all clients) and the wall time; every answer must be 200."""
    per_client = max(1, n_requests // clients)
    times: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    start = threading.Barrier(clients + 1)

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            status, data = _post(conn, "/predict", body)
            times[i].append(time.perf_counter() - t0)
            if status != 200:
                failures.append(f"{status}: {data[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} failed request(s), e.g. {failures[0]}")
    return np.concatenate([np.asarray(t) for t in times]), wall


def _user_json(events: pd.DataFrame) -> dict[str, bytes]:
    """Each user's events as the inside of a JSON array (no brackets), in log order."""
    return {u: g.to_json(orient="records").encode()[1:-1] for u, g in events.groupby("userId", sort=False)}


def _batch_bodies(chunks: dict[str, bytes], counts: pd.Series, as_of: str, limits) -> list[tuple[int, bytes]]:
    """Pack users into the fewest requests within the limits: (users, body) per request."""
    tail = f'],"as_of":"{as_of}"}}'.encode()
    head = b'{"events":['
    bodies, current, size, n_events = [], [], 0, 0
    budget = int(limits.max_body_bytes * 0.95) - len(head) - len(tail)
    for user, chunk in chunks.items():
        fits = (size + len(chunk) + 1 <= budget and n_events + counts[user] <= limits.max_events
                and len(current) < limits.max_users)
        if current and not fits:
            bodies.append((len(current), head + b",".join(current) + tail))
            current, size, n_events = [], 0, 0
        if len(chunk) > budget or counts[user] > limits.max_events:
            raise RuntimeError(f"user {user}: {counts[user]:,} events do not fit one request")
        current.append(chunk)
        size += len(chunk) + 1
        n_events += int(counts[user])
    if current:
        bodies.append((len(current), head + b",".join(current) + tail))
    return bodies


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _ms(seconds: np.ndarray) -> str:
    p50, p95, p99 = np.percentile(seconds * 1000, [50, 95, 99])
    return f"p50 {p50:6.1f} ms, p95 {p95:6.1f} ms, p99 {p99:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="users in the batch")
    parser.add_argument("--events", type=int, default=1000, help="events of the single user (nearest count)")
    parser.add_argument("--requests", type=int, default=400, help="requests per latency run")
    parser.add_argument("--quick", action="store_true", help="300 users in the batch, 100 requests per run")
    args = parser.parse_args(argv)
    n_users, n_requests = (300, 100) if args.quick else (args.users, args.requests)

    from churnlib import features, load, scoring
    from churnlib.input_checks import check_input
    from churnlib.model import ChurnModel
    from churnlib.schema import CHURN_PAGE, MS_PER_DAY
    from churnlib.service import Limits
    from churnlib.simulate import write_event_log
    from churnlib.store import PredictionStore
    from churnlib.training import run_training

    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        tmp = Path(tmp)
        log = tmp / "sim.parquet"
        write_event_log(log, n_users=int(n_users * 1.3) + 50, days=60, seed=7)
        table = features.build_features(log, features.observation_dates(log, 14), horizon_days=14)
        t0 = time.perf_counter()
        result = run_training(table, "userId", "churned", models=("dummy", "logreg", "lightgbm"),
                              strategies=("none",), search_budget=3, n_permutations=1, n_bootstrap=20, seed=7)
        result.save(tmp / "models")
        model = ChurnModel.load(tmp / "models")
        print(f"training table {len(table):,} rows x {len(result.feature_schema)} features; chosen "
              f"{result.chosen.name} in {time.perf_counter() - t0:.1f} s; model {model.version}")

        events = pd.read_parquet(log)
        gone = set(events.loc[events["page"] == CHURN_PAGE, "userId"])
        current = events[events["userId"].ne("") & ~events["userId"].isin(gone)]
        counts = current.groupby("userId").size()
        single = (counts - args.events).abs().idxmin()
        batch_users = list(counts.index[:n_users])
        if len(batch_users) < n_users:
            print(f"note: only {len(batch_users):,} current users in the simulated log")
        batch_events = current[current["userId"].isin(batch_users)]
        as_of_ms = (int(batch_events["ts"].max()) // MS_PER_DAY + 1) * MS_PER_DAY  # score --events' default
        as_of = f"{pd.Timestamp(as_of_ms, unit='ms', tz='UTC'):%Y-%m-%d}"
        one_events = current[current["userId"] == single]
        one_body = b'{"events":' + one_events.to_json(orient="records").encode() + b"}"
        bodies = _batch_bodies(_user_json(batch_events), counts, as_of, Limits())
        print(f"single user {single}: {len(one_events):,} events, {len(one_body) / 1e3:,.0f} kB of JSON; batch: "
              f"{len(batch_users):,} users, {len(batch_events):,} events as of {as_of}, in {len(bodies)} request(s) "
              f"of at most {max(len(b) for _, b in bodies) / 1e6:.1f} MB "
              f"(limits: {Limits().max_body_bytes / 1e6:.0f} MB, "
              f"{Limits().max_events:,} events, {Limits().max_users:,} users per request)")

        port = _free_port()
        store = tmp / "predictions.sqlite"
        out_path, err_path = tmp / "serve.out", tmp / "serve.err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "churnlib", "serve", "--model", str(tmp / "models"),
                                     "--host", "127.0.0.1", "--port", str(port), "--store", str(store)],
                                    stdout=out, stderr=err)
        served: list[dict] = []
        try:
            t0 = time.perf_counter()
            _wait_healthy(proc, port, err_path)
            startup = time.perf_counter() - t0
            _latencies(port, one_body, 20, 1)  # warm-up: first requests pay for lazy imports and caches
            one_client, _ = _latencies(port, one_body, n_requests, 1)
            eight_clients, eight_wall = _latencies(port, one_body, n_requests, 8)

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t0 = time.perf_counter()
            for _, body in bodies:
                status, data = _post(conn, "/predict/batch", body)
                if status != 200:
                    raise RuntimeError(f"/predict/batch answered {status}: {data[:300]!r}")
                served += json.loads(data)["predictions"]
            batch_s = time.perf_counter() - t0
            conn.close()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
        with PredictionStore(store, readonly=True) as st:
            stored = len(st)

        # baseline, same users and date: the command line, in process
        batch_events.to_parquet(tmp / "batch.parquet", index=False)
        t0 = time.perf_counter()
        cli = scoring.score_command(tmp / "models", events=tmp / "batch.parquet", out=tmp / "risk.csv", as_of=as_of)
        cli_s = time.perf_counter() - t0
        one_events.to_parquet(tmp / "one.parquet", index=False)
        cli_one_s = _best_of(lambda: scoring.score_command(tmp / "models", events=tmp / "one.parquet",
                                                           out=tmp / "one.csv"), 3)

        # where one request's time goes, in process (no HTTP, no JSON): the loader, then features and scoring
        records = json.loads(one_events.to_json(orient="records"))
        load_s = _best_of(lambda: load.load_event_records(records, strict=True), 5)
        one_log = load.load_event_records(records, strict=True)
        score_s = _best_of(lambda: scoring.score_events(model, one_log, n_jobs=1), 5)
        # inside score_events: features (DuckDB), the input checks, probability, reasons
        one_as_of = scoring.parse_as_of(None, one_log.events)
        feats_s = _best_of(lambda: features.user_features(one_log.events, one_as_of), 5)
        feats = features.user_features(one_log.events, one_as_of)
        check_s = _best_of(lambda: check_input(model, feats, id_col="userId"), 5)
        rows = check_input(model, feats, id_col="userId").frame
        model.set_threads(1)
        proba_s = _best_of(lambda: model.churn_probability(rows), 5)
        why_s = _best_of(lambda: model.explain(rows, k=3, n_jobs=1), 5)

        server_p = pd.Series({p["userId"]: p["churn_probability"] for p in served})
        cli_p = cli.set_index("userId")["churn_probability"]
        common = server_p.index.intersection(cli_p.index)
        max_diff = float((server_p[common] - cli_p[common]).abs().max()) if len(common) else float("nan")
        batch_per_user = batch_s / max(len(served), 1)
        cli_per_user = cli_s / max(len(cli), 1)
        ratio = batch_per_user / cli_per_user
        p99 = float(np.percentile(one_client, 99) * 1000)

        print(f"server start-up (process start to /health answering): {startup:.1f} s")
        print(f"/predict, 1 client : {_ms(one_client)} ({len(one_client)} requests, "
              f"{len(one_client) / one_client.sum():,.0f} requests/s)")
        print(f"/predict, 8 clients: {_ms(eight_clients)} ({len(eight_clients)} requests, "
              f"{len(eight_clients) / eight_wall:,.0f} requests/s)")
        print(f"  in process, no HTTP: load_event_records {load_s * 1000:,.1f} ms + score_events (features, "
              f"checks, probability, reasons) {score_s * 1000:,.1f} ms = {(load_s + score_s) * 1000:,.1f} ms")
        print(f"    of which user_features {feats_s * 1000:,.1f} ms, check_input {check_s * 1000:,.1f} ms, "
              f"churn_probability {proba_s * 1000:,.1f} ms, reasons (explain) {why_s * 1000:,.1f} ms")
        print(f"  baseline: score --events on the same user's log (in process, artifact verified): "
              f"{cli_one_s * 1000:,.0f} ms; /predict p50 is {cli_one_s / np.median(one_client):,.1f}x faster")
        print(f"/predict/batch     : {len(served):,} users in {batch_s:.2f} s -> {len(served) / batch_s:,.0f} users/s "
              f"({batch_per_user * 1000:.2f} ms per user, {len(bodies)} request(s), reasons included)")
        print(f"  baseline: score --events --as-of {as_of} on the same users: {len(cli):,} users in {cli_s:.2f} s -> "
              f"{len(cli) / cli_s:,.0f} users/s ({cli_per_user * 1000:.2f} ms per user)")
        print(f"  per-user cost, service / CLI: {ratio:.2f}x; same users: {len(common):,} of {len(served):,}; "
              f"largest probability difference: {max_diff:.2g}")
        answered = 20 + len(one_client) + len(eight_clients) + len(served)
        print(f"prediction store: {stored:,} rows written by the server for {answered:,} predictions answered")
        status = "PASS" if p99 < AIM_P99_MS else "FAIL"
        print(f"{status}: /predict p99 with 1 client {p99:.1f} ms vs aim under {AIM_P99_MS:.0f} ms")
        status = "PASS" if ratio <= AIM_BATCH_RATIO else "FAIL"
        print(f"{status}: /predict/batch per-user cost {ratio:.2f}x the CLI's vs aim within {AIM_BATCH_RATIO:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
