"""Benchmark: each dashboard page renders in under 1 s with 20,000 scored users.

A small report tree is built first (a simulated log of 300 users x 60 days, its feature table, a
CI-sized model with its predictions and what-if model, the latest rows scored), or taken from
``--source`` (the output root of a ``make report``). :func:`churnlib.dashboard.products.synthetic_products`
then writes a tree of ``--users`` scored users from it, and a 1,000-user tree as the baseline of the
same run. Each page runs in Streamlit's ``AppTest`` inside the app's navigation (no browser, no network):

* cold: the Streamlit caches emptied first (products read from disk, model loaded);
* warm: the same page run again (what a reader's next click costs);

median of ``--repeats`` runs each. Figures are printed against the 1 s aim, with the ratio to the
1,000-user baseline, and the process's peak RSS. Timings on a shared machine are noisy: read them with
the load in mind.

Usage::

    python benchmarks/bench_dashboard.py                 # 20,000 users, 3 repeats
    python benchmarks/bench_dashboard.py --users 5000 --repeats 2

Prints the figures and PASS/FAIL per page (warm, the aim); exits 0 (the figures are the result).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

AIM_SECONDS = 1.0
PAGES = ("1_overview.py", "2_at_risk.py", "3_user.py", "4_score_file.py", "5_what_if.py", "6_model.py")


def _small_tree(root: Path) -> Path:
    """A CI-sized report tree: log, features, model (+ predictions, what-if), risk scores."""
    from churnlib import features
    from churnlib.model import ChurnModel
    from churnlib.scoring import REASON_COLUMNS, score_frame
    from churnlib.simulate import write_event_log
    from churnlib.training import run_training
    from churnlib.whatif import WHATIF_NAME, fit_whatif

    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    log = raw / "simulated_u300_d60_s7_bench.parquet"
    write_event_log(log, n_users=300, days=60, seed=7)
    table = features.build_features(log, features.observation_dates(log, 14), horizon_days=14)
    result = run_training(table, "userId", "churned", models=("dummy", "logreg"), strategies=("none",),
                          search_budget=0, n_permutations=1, n_bootstrap=20, seed=7)
    models = root / "models"
    result.save(models)
    if not (models / WHATIF_NAME).exists():  # training skipped it (a signal dropped as a leakage suspect)
        metrics = json.loads((models / "metrics.json").read_text())
        fitted = fit_whatif(table, "userId", "churned", seed=7, n_bootstrap=20)
        metrics["whatif"] = fitted.to_dict()
        fitted.model.save(models, info=metrics["whatif"])
        (models / "metrics.json").write_text(json.dumps(metrics))
    processed = root / "data" / "processed"
    processed.mkdir(parents=True)
    table.to_parquet(processed / "features.parquet", index=False)
    latest = table.sort_values("as_of", kind="stable").drop_duplicates("userId", keep="last")
    scored = score_frame(ChurnModel.load(models / "churn_model.joblib"), latest.drop(columns=["churned"]),
                         id_col="userId")
    scored[["userId", "churn_probability", "churn_label", "risk_band", *REASON_COLUMNS]].to_parquet(
        processed / "risk_scores.parquet", index=False)
    return root


def _time_page(page: Path, root: Path, repeats: int) -> tuple[float, float, list[str]]:
    """Median cold and warm seconds of one page's AppTest run, and any exception it showed."""
    import streamlit as st
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    set_log_level("error")  # AppTest outside a server logs "No runtime found" on every run
    os.environ["CHURNLIB_DASHBOARD_DIR"] = str(root)
    cold, warm, problems = [], [], []
    app = page.parent.parent / "app.py"  # pages link to each other: they run inside the app's navigation
    for _ in range(repeats):
        at = AppTest.from_file(str(app), default_timeout=300)
        at.run()
        at.switch_page(f"screens/{page.name}")
        st.cache_data.clear()
        st.cache_resource.clear()
        t0 = time.perf_counter()
        at.run()
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t0)
        problems += [str(e.value)[:200] for e in at.exception]
    return statistics.median(cold), statistics.median(warm), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="scored users in the measured tree")
    parser.add_argument("--baseline-users", type=int, default=1_000, help="scored users in the baseline tree")
    parser.add_argument("--repeats", type=int, default=3, help="runs per page and state (median)")
    parser.add_argument("--source", default=None, help="a make-report output root to resample (default: built)")
    args = parser.parse_args(argv)

    from churnlib.dashboard.products import synthetic_products

    pages_dir = Path(__file__).resolve().parents[1] / "churnlib" / "dashboard" / "screens"
    tmp = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    try:
        t0 = time.perf_counter()
        source = Path(args.source) if args.source else _small_tree(tmp / "source")
        big = synthetic_products(tmp / "big", n_users=args.users, seed=0, source=source)
        base = synthetic_products(tmp / "base", n_users=args.baseline_users, seed=0, source=source)
        print(f"trees: {args.users:,} and {args.baseline_users:,} scored users from {source} "
              f"({time.perf_counter() - t0:.1f} s to build)", flush=True)
        print(f"{'page':18s} {'cold':>8s} {'warm':>8s}   {'baseline cold':>13s} {'warm':>8s}   "
              f"{'ratio warm':>10s}  aim {AIM_SECONDS:.0f} s (warm)")
        failed = []
        for name in PAGES:
            page = pages_dir / name
            b_cold, b_warm, _ = _time_page(page, base, args.repeats)
            cold, warm, problems = _time_page(page, big, args.repeats)
            status = "PASS" if warm < AIM_SECONDS and not problems else "FAIL"
            if status == "FAIL":
                failed.append(name)
            print(f"{name:18s} {cold:7.2f}s {warm:7.2f}s   {b_cold:12.2f}s {b_warm:7.2f}s   {warm / b_warm:9.1f}x  "
                  f"{status}" + (f" (exception: {problems[0]})" if problems else ""), flush=True)
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
        print(f"peak RSS {rss_gb:.2f} GB (this process: both trees, every page)")
        print(("PASS" if not failed else "FAIL") + f": pages under {AIM_SECONDS:.0f} s warm with {args.users:,} users"
              + (f"; over it: {', '.join(failed)}" if failed else ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
