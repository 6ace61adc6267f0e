"""Benchmark: scoring users from a feature table with a saved model (target: 100,000 users/s).

A model is trained the way ``05_models`` trains it (``run_training``, CI-sized budget) on features of
a simulated log and saved as an artifact. A scoring table of ``--users`` rows is then drawn from the
feature rows (with fresh ids) and scored:

* batch, in memory: :func:`churnlib.scoring.score_frame` on the whole table, probabilities only
  (``reasons=False``: the target figure is for probabilities);
* the same with each user's top three reasons (``reasons=True``: SHAP values for every user), on
  ``--reasons-sample`` rows since it is far slower;
* before/after, in the same run: the model's pipeline with ``n_jobs`` on every step that takes it
  (how scoring set threads before: the ``ColumnTransformer`` then runs in worker processes), and
  with threads for the model step only (now);
* end to end: ``score_command`` reading the parquet table and writing ``risk.csv`` (artifact
  verification included);
* baseline, in the same run: the same model called once per user (``score_frame`` on one row at a
  time, as a naive per-request loop would), on a sample, and the speed-up of batch over it.

The candidate models of the registry are timed too (batch, in memory), since the chosen model
depends on the data.

Usage::

    python benchmarks/bench_scoring.py            # 300,000 users
    python benchmarks/bench_scoring.py --quick    # 50,000 users

Prints figures and PASS/FAIL against the target; exits 0 (the figures are the result).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_USERS_PER_S = 100_000


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300_000, help="rows in the scoring table")
    parser.add_argument("--quick", action="store_true", help="50,000 users")
    parser.add_argument("--per-row-sample", type=int, default=300, help="users scored one at a time (baseline)")
    parser.add_argument("--reasons-sample", type=int, default=5000, help="users scored with their reasons")
    args = parser.parse_args(argv)
    n = 50_000 if args.quick else args.users

    from churnlib import features, scoring
    from churnlib.model import ChurnModel
    from churnlib.models import make_pipeline
    from churnlib.simulate import write_event_log
    from churnlib.training import run_training

    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        tmp = Path(tmp)
        log = tmp / "sim.parquet"
        write_event_log(log, n_users=1000, days=60, seed=7)
        table = features.build_features(log, features.observation_dates(log, 14), horizon_days=14)
        t0 = time.perf_counter()
        result = run_training(table, "userId", "churned", models=("dummy", "logreg", "lightgbm"),
                              strategies=("none",), search_budget=3, n_permutations=1, n_bootstrap=20, seed=7)
        result.save(tmp / "models")
        print(f"training table {len(table):,} rows x {len(result.feature_schema)} features; chosen "
              f"{result.chosen.name} in {time.perf_counter() - t0:.1f} s")

        rng = np.random.default_rng(0)
        big = table.drop(columns=["churned"]).iloc[rng.integers(0, len(table), n)].reset_index(drop=True)
        big["userId"] = [f"u{i}" for i in range(n)]
        big.to_parquet(tmp / "score.parquet", index=False)
        model = ChurnModel.load(tmp / "models")

        batch = _best_of(lambda: scoring.score_frame(model, big, reasons=False), 5)
        rate = n / batch
        t0 = time.perf_counter()
        scoring.score_command(tmp / "models", table=tmp / "score.parquet", out=tmp / "risk.csv", reasons=False)
        e2e = time.perf_counter() - t0

        # before/after the speed work, same model and rows: pipeline steps' n_jobs as scoring set them
        X = model.prepare(big)
        legacy = ChurnModel.load(tmp / "models")
        for _, step in legacy.pipeline.steps:
            if "n_jobs" in step.get_params(deep=False):
                step.set_params(n_jobs=2)
        before = _best_of(lambda: legacy.estimator.predict_proba(X), 5)
        after = _best_of(lambda: model.estimator.predict_proba(X), 5)
        same = bool((legacy.estimator.predict_proba(X) == model.estimator.predict_proba(X)).all())

        n_reasons = min(n, args.reasons_sample)
        with_reasons = _best_of(lambda: scoring.score_frame(model, big.head(n_reasons), reasons=True), 1)
        method = model.shap(big.head(5)).method

        sample = big.head(args.per_row_sample)
        per_row = _best_of(lambda: [scoring.score_frame(model, sample.iloc[[i]], reasons=False)
                                    for i in range(len(sample))], 1)
        row_rate = len(sample) / per_row

        print(f"batch, in memory : {n:,} users in {batch:.2f} s -> {rate:,.0f} users/s "
              f"({result.chosen.model}, probabilities)")
        print(f"  model pipeline before (n_jobs=2 on every step): {n / before:,.0f} users/s; after (model step "
              f"only): {n / after:,.0f} users/s; identical probabilities: {same}")
        print(f"with reasons     : {n_reasons:,} users in {with_reasons:.2f} s -> "
              f"{n_reasons / with_reasons:,.0f} users/s "
              f"(top three reasons per user; {method})")
        print(f"end to end       : {n:,} users in {e2e:.2f} s -> {n / e2e:,.0f} users/s "
              "(verify artifact, read parquet, score, write CSV; no reasons)")
        print(f"baseline per row : {len(sample)} users in {per_row:.2f} s -> {row_rate:,.0f} users/s")
        print(f"ratio batch / per-row: {rate / row_rate:,.0f}x")

        X = model.prepare(big)
        y = table["churned"].to_numpy()
        Xt = model.prepare(table)
        print("batch, in memory, per registry model (defaults, fitted on the training table):")
        for name in ("logreg", "random_forest", "extra_trees", "hist_gb", "lightgbm", "xgboost", "knn"):
            pipe = make_pipeline(name, "none", seed=7, n_jobs=2).fit(Xt, y)
            m = min(n, 50_000) if name == "knn" else n  # KNN scoring cost grows with the training set
            secs = _best_of(lambda: pipe.predict_proba(X.head(m)), 1)
            print(f"  {name:14s} {m / secs:>12,.0f} users/s")

        status = "PASS" if rate >= TARGET_USERS_PER_S else "FAIL"
        print(f"{status}: batch scoring (probabilities) {rate:,.0f} users/s vs target {TARGET_USERS_PER_S:,} users/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
