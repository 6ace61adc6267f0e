"""Command line: ``python -m churnlib <command>``.

Commands
--------
report           run the numbered notebooks (papermill) and publish reports/ and figures/
simulate         write a simulated Sparkify event log (parquet or NDJSON .gz)
fidelity         compare simulated logs with the real Sparkify mini log (KS per metric, page mix)
features         build the (user, observation date) feature table from an event log
train            compare models on a feature or snapshot table; write the artifact and metrics.json
monitor          drift between two snapshot tables (reference, current), or of served features (--store)
score            score users with a saved model (from a feature table or an event log)
serve            the prediction service: HTTP over a saved model (FastAPI + uvicorn), predictions stored
bench            run every benchmark in benchmarks/ and print figures and ratios
strip-notebooks  clear outputs from notebooks before committing
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

from churnlib import paths
from churnlib.errors import error_message
from churnlib.outputs import check_output, quality_path

__all__ = ["DEBUG_ENV", "build_parser", "main"]

# Each sub-command imports its module when it runs, so `--help` or one command does not load what the
# others need (scikit-learn, DuckDB, numba, Jupyter): imports inside functions on purpose, no cycles.

#: Set to ``1`` to let an error end in its full traceback (for a bug report).
DEBUG_ENV = "CHURNLIB_DEBUG"

# Argument names that hold a file the command reads or writes, named in an error that lacks one.
_FILE_ARGS = ("events", "table", "model", "data", "real", "reference", "current", "store", "config", "out")


def _print_account(quality) -> None:
    """Print a command's data-quality account (:meth:`churnlib.load.DataQuality.text`)."""
    if quality is not None:
        print(quality.text())


def _cmd_report(args: argparse.Namespace) -> int:
    from churnlib.report import run_report

    run_report(args.config, args.data, id_col=args.id_col, label_col=args.label_col, split_col=args.split_col,
               duration_col=args.duration_col,
               current=args.current, kernel=args.kernel, tracking=args.tracking)
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from churnlib.drift import KS_THRESHOLD, PSI_THRESHOLD

    thresholds = {"psi_threshold": PSI_THRESHOLD if args.psi_threshold is None else args.psi_threshold,
                  "ks_threshold": KS_THRESHOLD if args.ks_threshold is None else args.ks_threshold}
    if args.store is not None:
        return _monitor_store(args, thresholds)
    from churnlib.monitoring import monitor_command
    from churnlib.monitoring_report import command_text, recommendation_text

    out = args.out or "monitoring.json"
    check_output(out, inputs=[args.reference, args.current], sidecar=False)
    result = monitor_command(args.reference, args.current, out, model=args.model, id_col=args.id_col or "user_id",
                             label_col="is_churned" if args.label_col is None else args.label_col or None,
                             strict=args.strict, wording=recommendation_text, **thresholds)
    print(command_text(result))
    print(f"wrote {out}")
    return 0


def _monitor_store(args: argparse.Namespace, thresholds: dict[str, float]) -> int:
    """``monitor --store``: drift of the features the service served against the model's training reference."""
    from churnlib.monitoring import monitor_store
    from churnlib.monitoring_report import store_text, write_store_figure

    result = monitor_store(args.store, args.model, reference=args.reference, out_dir=args.out,
                           window_days=7 if args.window_days is None else args.window_days, end=args.end,
                           plot=write_store_figure, wording=store_text, **thresholds)
    print(result.text())  # ends with what it wrote
    return 0


def _monitor_usage(args: argparse.Namespace) -> str | None:
    """The two modes of ``monitor`` take different options: what is wrong with a mix, else None."""
    if args.store is not None:
        table_only = [flag for flag, value in (("--current", args.current), ("--id-col", args.id_col),
                                               ("--label-col", args.label_col), ("--strict", args.strict or None))
                      if value is not None]
        if table_only:
            return (f"{', '.join(table_only)}: not with --store (--store compares the features the service "
                    "served with the model's training reference; --reference/--current compare two tables)")
        missing = [flag for flag, value in (("--model", args.model), ("--out", args.out)) if value is None]
        if missing:
            return (f"--store needs {' and '.join(missing)} "
                    "(the model whose training reference to compare with; a folder to write into)")
        return None
    store_only = [flag for flag, value in (("--window-days", args.window_days), ("--end", args.end))
                  if value is not None]
    if store_only:
        return f"{', '.join(store_only)}: only with --store (the served features' window)"
    missing = [flag for flag, value in (("--reference", args.reference), ("--current", args.current)) if value is None]
    if missing:
        return (f"give --reference and --current (two tables), or --store (served features); missing: "
                f"{', '.join(missing)}")
    return None


def _cmd_simulate(args: argparse.Namespace) -> int:
    from churnlib.simulate import write_event_log, write_partitioned_log

    if args.partitioned:
        users = None if args.events is not None else (args.users or 2000)
        stats = write_partitioned_log(args.out, users, days=args.days, seed=args.seed, start=args.start,
                                      n_events=args.events, chunk_users=args.chunk_users)
        print(f"wrote {args.out}: {stats['files']:,} parquet files, {stats['events']:,} events, {stats['users']:,} users, "
              f"{stats['churned']:,} cancelled, {stats['seconds']:.1f} s ({stats['events_per_s']:,.0f} events/s)")
        return 0
    if args.events is not None:
        raise ValueError("--events is for --partitioned (a large log written as a folder); give --users for one file")
    check_output(args.out, sidecar=False)
    stats = write_event_log(args.out, n_users=args.users or 2000, days=args.days, seed=args.seed, start=args.start,
                            chunk_users=args.chunk_users)
    print(f"wrote {args.out}: {stats['events']:,} events, {stats['users']:,} users, {stats['churned']:,} cancelled, "
          f"{stats['seconds']:.1f} s ({stats['events_per_s']:,.0f} events/s)")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from churnlib.fidelity import fidelity_report

    report = fidelity_report(args.real, n_users=args.users, days=args.days, seeds=tuple(range(1, args.seeds + 1)))
    print(report)
    return 0 if report.passed else 1


def _cmd_features(args: argparse.Namespace) -> int:
    if args.engine == "spark":
        return _features_spark(args)
    if args.as_of is None:
        raise ValueError("at least one observation date (--as-of) is needed (only --engine spark picks them itself)")
    from churnlib.features import features_command

    table = features_command(args.events, args.as_of, args.horizon, args.out, strict=args.strict)
    _print_account(table.attrs.get("quality"))
    print(f"wrote {args.out}: {len(table):,} rows (user x date), {table['churned'].mean():.1%} positive")
    print(f"wrote {quality_path(args.out)}: the data-quality account")
    return 0


def _features_spark(args: argparse.Namespace) -> int:
    from churnlib.spark_features import build_features_spark
    from churnlib.spark_session import java_missing_reason

    if (reason := java_missing_reason()) is not None:
        print(f"error: --engine spark cannot start: {reason}", file=sys.stderr)
        return 2
    quality = build_features_spark(args.events, args.as_of, args.horizon, out=args.out, master=args.master,
                                   strict=args.strict)
    _print_account(quality)
    if "://" in str(args.out):
        print(f"wrote {args.out} (parquet, one row per user and observation date)")
        return 0
    import pyarrow.parquet as pq

    churned = pq.read_table(args.out, columns=["churned"]).column("churned").to_numpy()
    print(f"wrote {args.out}: {len(churned):,} rows (user x date), {churned.mean():.1%} positive (Spark, {args.master})")
    print(f"wrote {quality_path(args.out)}: the data-quality account")
    return 0


def _csv_list(text: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


def _cmd_train(args: argparse.Namespace) -> int:
    from churnlib.model_report import leakage_sentence, summary_sentences
    from churnlib.training import train_command

    budget = {k: v for k, v in {
        "models": _csv_list(args.models), "strategies": _csv_list(args.strategies),
        "n_splits": args.n_splits, "n_repeats": args.n_repeats, "search_budget": args.search_budget,
        "cost_fn": args.cost_fn, "cost_fp": args.cost_fp, "seed": args.seed,
    }.items() if v is not None}
    result = train_command(args.table, args.id_col, args.label_col, args.split_col, args.out, strict=args.strict,
                           tracking=args.tracking, **budget)
    _print_account(result.info.get("quality"))
    print(f"chosen: {result.chosen.model} + {result.chosen.strategy}: {result.reason}")
    print(f"threshold {result.threshold:.3f}; {result.signal_statement()}")
    metrics = result.metrics()
    for sentence in [*summary_sentences(metrics), leakage_sentence(metrics)]:
        if sentence:
            print(sentence)
    for kind, path in result.info.get("written", {}).items():
        print(f"wrote {kind}: {path}")
    if result.info.get("tracking_text"):
        print(result.info["tracking_text"])
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from churnlib.scoring import score_command

    scored = score_command(args.model, events=args.events, table=args.table, out=args.out, id_col=args.id_col,
                           reasons=args.reasons, strict=args.strict, allow_duplicates=args.allow_duplicates,
                           as_of=args.as_of)
    _print_account(scored.attrs.get("quality"))
    print(f"wrote {args.out}: {len(scored):,} users scored" + (" with their top three reasons" if args.reasons else "")
          + f" by model {scored.attrs.get('model_version', '?')}")
    if quality_path(args.out).is_file():
        print(f"wrote {quality_path(args.out)}: the data-quality account")
    return 0


def _score_usage(args: argparse.Namespace) -> str | None:
    if args.as_of is not None and args.table is not None:
        return "--as-of is for --events (the date features are built at); a feature table carries its own dates"
    return None


def _check_port(host: str, port: int) -> None:
    """Refuse early, in one line, an address the server could not listen on (in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(infos[0][4])
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen there: {exc.strerror or exc}", f"{host}:{port}") from exc


def _cmd_serve(args: argparse.Namespace) -> int:
    from churnlib.model import ChurnModel

    # Everything that can be wrong is checked before anything listens: the artifact (a tampered or
    # incompatible one ends here, exit 2), the address, the store.
    model = ChurnModel.load(args.model)
    _check_port(args.host, args.port)
    from churnlib.service import serve
    from churnlib.store import PredictionStore, default_store_path

    store_path = None if args.no_store else Path(args.store) if args.store else default_store_path()
    store = None if store_path is None else PredictionStore(store_path)
    url = f"http://{args.host}:{args.port}"
    print(f"serving model {model.version} on {url} (API docs: {url}/docs); "
          + (f"predictions stored in {store_path}" if store is not None else "predictions not stored (--no-store)")
          + "; Ctrl+C stops it", flush=True)
    try:
        serve(model, host=args.host, port=args.port, store=store, log_level=args.log_level)
    except KeyboardInterrupt:  # Ctrl+C: uvicorn shut down gracefully first
        pass
    finally:
        if store is not None:
            store.close()
    print("server stopped", flush=True)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from churnlib.dashboard.products import DASHBOARD_ENV, load_products

    root = Path(args.reports_dir) if args.reports_dir else paths.output_root()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (--reports-dir is the folder `make report` wrote into: "
                                "the one holding data/, models/ and reports/)")
    missing = load_products(root).missing
    _check_port(args.host, args.port)
    app = Path(__file__).resolve().parent / "dashboard" / "app.py"
    url = f"http://{args.host}:{args.port}"
    print(f"dashboard on {url} over {root}"
          + (f" (missing: {'; '.join(missing)}: run `make report` first; the pages say what they lack)" if missing else "")
          + "; Ctrl+C stops it", flush=True)
    # Streamlit's own server, on the address given (loopback by default), without a browser, telemetry or a
    # file watcher; the app reads the folder from the environment (streamlit run passes no arguments to it).
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
               "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--global.developmentMode", "false"]
    env = {**os.environ, DASHBOARD_ENV: str(root.resolve())}
    proc = subprocess.Popen(command, env=env)
    # A SIGTERM to this process (a service manager, a test) stops the server too, never leaving it orphaned.
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        status = proc.wait()
    except KeyboardInterrupt:  # Ctrl+C reaches streamlit too; it shuts down by itself
        status = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("dashboard stopped", flush=True)
    return 0 if status in (0, -signal.SIGTERM, -signal.SIGINT) else status


def _cmd_bench(args: argparse.Namespace) -> int:
    scripts = sorted((paths.project_root() / "benchmarks").glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if args.only in s.stem]
    status = 0
    for script in scripts:
        print(f"==> {script.name}", flush=True)
        # One process per benchmark, so each peak-RSS figure is its own.
        status |= subprocess.call([sys.executable, str(script)])
    return status


def _cmd_strip(args: argparse.Namespace) -> int:
    from churnlib.report import strip_outputs

    for path in strip_outputs(args.notebooks):
        print(f"stripped {path}")
    return 0


def _add_strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="refuse the input at its first defect (file, line, column) instead of repairing or "
                        "dropping rows and counting them in the printed account")


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-tracking", dest="tracking", action="store_false", default=None,
                   help="record no MLflow run (by default one run goes to the project's mlruns.db, or to "
                        "MLFLOW_TRACKING_URI when set; CHURNLIB_TRACKING=0 also turns it off)")


def build_parser() -> argparse.ArgumentParser:
    """The ``churnlib`` argument parser."""
    root = paths.project_root()
    parser = argparse.ArgumentParser(prog="churnlib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("report", help="run the notebooks and publish the reports")
    p.add_argument("--config", default=str(root / "config" / "report.yaml"), help="YAML with full-size parameters")
    p.add_argument("--data", default=None, help="event log or snapshot table (default: the simulated log)")
    p.add_argument("--id-col", default="user_id", help="id column of a snapshot table")
    p.add_argument("--label-col", default="is_churned", help="label column of a snapshot table")
    p.add_argument("--split-col", default=None, help="column marking rows train/test")
    p.add_argument("--duration-col", default=None,
                   help="snapshot tables: tenure column (days), for the retention curves of 10 and the summary")
    p.add_argument("--current", default=None,
                   help="snapshot data: a second table of the same users' columns, later, for monitoring")
    p.add_argument("--kernel", default="churnlib", help="Jupyter kernel to run the notebooks")
    _add_tracking(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("monitor", help="drift between two snapshot tables, or of the features the service served",
                       description="Two modes. Tables: --reference T --current T [--model M] [--out FILE.json]. "
                                   "Served features: --store PATH --model M [--reference T] [--window-days 7] "
                                   "--out DIR.")
    p.add_argument("--reference", default=None,
                   help="tables: the table the model was trained on (CSV/parquet); --store: a training reference "
                        "instead of the one saved beside the model")
    p.add_argument("--current", default=None, help="tables: newer table of the same columns")
    p.add_argument("--store", default=None, help="prediction store the service wrote (python -m churnlib serve)")
    p.add_argument("--model", default=None,
                   help="artifact or its folder: adds score drift and performance (tables); required with --store")
    p.add_argument("--window-days", type=float, default=None, metavar="DAYS",
                   help="--store: the last DAYS of served predictions (default 7), latest row per user")
    p.add_argument("--end", default=None, metavar="DATE", help="--store: end of the window (default: the last served)")
    p.add_argument("--psi-threshold", type=float, default=None, help="PSI above which a feature drifted")
    p.add_argument("--ks-threshold", type=float, default=None, help="KS statistic above which a feature drifted")
    p.add_argument("--id-col", default=None, help="tables: id column (default user_id)")
    p.add_argument("--label-col", default=None,
                   help="tables: label column (default is_churned; '' when the tables have none)")
    p.add_argument("--out", default=None,
                   help="tables: the JSON to write (default monitoring.json); --store: the folder for the drift "
                        "table, figure and summary")
    _add_strict(p)
    p.set_defaults(func=_cmd_monitor, usage=_monitor_usage)

    p = sub.add_parser("simulate", help="write a simulated Sparkify event log")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--users", type=int, default=None, help="number of users (default 2000)")
    size.add_argument("--events", type=float, default=None, metavar="N",
                      help="about N events instead of --users, e.g. 1e8 (users estimated from a pilot of the "
                           "first 2,000); needs --partitioned")
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2018-10-01", help="first day of the log (UTC)")
    p.add_argument("--partitioned", action="store_true",
                   help="write --out as a folder of parquet files, one per --chunk-users users, simulated and "
                        "written chunk by chunk (about 1.2 GB of memory at any size); DuckDB and Spark read it as one log")
    p.add_argument("--chunk-users", type=int, default=2000, help="users per chunk (per file with --partitioned)")
    p.add_argument("--out", required=True, help=".parquet, .json.gz or .jsonl; a folder with --partitioned")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("fidelity", help="simulated vs real Sparkify distributions")
    p.add_argument("--real", default=str(root.parent / "shared" / "data" / "sparkify_mini_user_features.csv.gz"))
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seeds", type=int, default=5)
    p.set_defaults(func=_cmd_fidelity)

    p = sub.add_parser("features", help="feature table from an event log")
    p.add_argument("--events", required=True, help="event log (NDJSON, parquet or a folder; with --engine spark "
                                                   "also any URI Spark reads: hdfs://, s3a://, ...)")
    p.add_argument("--as-of", action="append", default=None, metavar="DATE",
                   help="observation date (repeat for several); required with DuckDB, picked weekly from the "
                        "log's second half when --engine spark is not given any")
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="duckdb (default: one machine) or spark (the same SQL on Spark, for logs beyond one "
                        "machine; writes a parquet folder)")
    p.add_argument("--master", default="local[2]",
                   help="Spark master with --engine spark: local[N], spark://host:7077, yarn (under spark-submit "
                        "its --master wins)")
    p.add_argument("--horizon", type=float, default=30, metavar="DAYS", help="label window after each date")
    p.add_argument("--out", required=True, help="parquet file to write (its data-quality account goes beside it, "
                                                "<out>.quality.json)")
    _add_strict(p)
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("train", help="model comparison, final artifact and metrics.json")
    p.add_argument("--table", required=True, help="feature table (churnlib features) or snapshot CSV/parquet")
    p.add_argument("--id-col", required=True)
    p.add_argument("--label-col", required=True)
    p.add_argument("--split-col", default=None, help="column marking rows train/test (else a holdout fraction)")
    p.add_argument("--out", default=None, help="folder for the artifact and metrics.json (default: models/)")
    p.add_argument("--models", default=None, help="comma-separated registry names")
    p.add_argument("--strategies", default=None, help="comma-separated imbalance strategies")
    p.add_argument("--n-splits", type=int, default=None)
    p.add_argument("--n-repeats", type=int, default=None)
    p.add_argument("--search-budget", type=int, default=None)
    p.add_argument("--cost-fn", type=float, default=None, help="cost of a missed churner")
    p.add_argument("--cost-fp", type=float, default=None, help="cost of a wasted retention offer")
    p.add_argument("--seed", type=int, default=None)
    _add_strict(p)
    _add_tracking(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("score", help="score users with a saved model")
    p.add_argument("--model", required=True, help="artifact (.joblib, manifest, or its folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", default=None, help="event log: features as of its last day (or --as-of)")
    src.add_argument("--table", default=None, help="feature table with the model's columns")
    p.add_argument("--as-of", default=None, metavar="DATE",
                   help="--events: score the users current at DATE (2018-11-20, an ISO time or epoch ms), from "
                        "their events before it (default: midnight after the log's last event)")
    p.add_argument("--id-col", default=None)
    p.add_argument("--out", default="risk.csv")
    p.add_argument("--reasons", action=argparse.BooleanOptionalAction, default=True,
                   help="reason_1..reason_3: each user's top three risk-raising features (SHAP; on by "
                        "default, --no-reasons for probabilities only, which is much faster)")
    p.add_argument("--allow-duplicates", action="store_true",
                   help="score a table whose ids repeat (counted in the account) instead of refusing it")
    _add_strict(p)
    p.set_defaults(func=_cmd_score, usage=_score_usage)

    p = sub.add_parser("serve", help="the prediction service over a saved model (FastAPI + uvicorn)")
    p.add_argument("--model", default=str(root / "models"), help="artifact (.joblib, manifest, or its folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000)
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--store", default=None,
                      help="SQLite prediction store to append every prediction to (default: data/predictions.sqlite "
                           "in the project)")
    keep.add_argument("--no-store", action="store_true", help="keep no record of predictions")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (info: one line per request)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("dashboard", help="the retention dashboard (Streamlit) over what `make report` wrote")
    p.add_argument("--reports-dir", default=None,
                   help="the folder `make report` wrote into (holding data/, models/, reports/; default: the project)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=_cmd_dashboard)

    p = sub.add_parser("bench", help="run the benchmarks")
    p.add_argument("--only", default=None, help="run benchmarks whose name contains this")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("strip-notebooks", help="clear notebook outputs in place")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=_cmd_strip)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a library warning as one ``warning:`` line (some quote a whole traceback)."""
    text = next((t.strip() for t in str(message).splitlines() if t.strip()), "")
    print(f"warning: {text} ({category.__name__})", file=sys.stderr)


def _files(args: argparse.Namespace) -> list[str]:
    return [str(v) for k in _FILE_ARGS if (v := getattr(args, k, None)) not in (None, "")]


def _explain(exc: BaseException, args: argparse.Namespace) -> tuple[int, str]:
    """Exit code and one-line message for an exception from a command (2: bad input, 1: internal)."""
    from churnlib.report import NotebookFailed

    if isinstance(exc, NotebookFailed):
        return 1, str(exc)  # names the notebook, the cell and the error, on purpose over several lines
    code, message = _classify(exc, _files(args), getattr(args, "command", ""))
    return code, " ".join(message.splitlines())


def _classify(exc: BaseException, files: list[str], command: str) -> tuple[int, str]:
    return error_message(exc, files, command, internal_hint=f"please report it with the command you ran "
                                                           f"({DEBUG_ENV}=1 shows the traceback)")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. No traceback reaches the user.

    Every error ends in one ``error:`` line on stderr naming the file concerned: exit code 2 for bad
    input or an unusable output path (:class:`~churnlib.load.DataValidationError`,
    :class:`~churnlib.outputs.OutputError`, a missing, unreadable or truncated file ...), 1 for a
    failed notebook or an internal error (which asks to be reported). ``CHURNLIB_DEBUG=1`` in the
    environment re-raises instead, with the traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    usage = getattr(args, "usage", None)
    if usage is not None and (problem := usage(args)):
        parser.exit(2, f"{parser.prog} {args.command}: error: {problem}\n")
    try:
        with warnings.catch_warnings():
            if os.environ.get(DEBUG_ENV) != "1":
                warnings.showwarning = _one_line_warning
            return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into one line
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        code, message = _explain(exc, args)
        print(f"error: {message}", file=sys.stderr)
        return code
