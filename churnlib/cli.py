"""Command line: ``python -m churnlib <command>``.

Commands
--------
report           run the numbered notebooks (papermill) and publish reports/ and figures/
simulate         write a simulated Sparkify event log (parquet or NDJSON .gz)
fidelity         compare simulated logs with the real Sparkify mini log (KS per metric, page mix)
features         build the (user, observation date) feature table from an event log
train            compare models on a feature or snapshot table; write the artifact and metrics.json
score            score users with a saved model (from a feature table or an event log)
bench            run every benchmark in benchmarks/ and print figures and ratios
strip-notebooks  clear outputs from notebooks before committing
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from churnlib import paths

__all__ = ["build_parser", "main"]

# Each sub-command imports its module when it runs, so `--help` or one command does not load what the
# others need (scikit-learn, DuckDB, numba, Jupyter): imports inside functions on purpose, no cycles.


def _cmd_report(args: argparse.Namespace) -> int:
    from churnlib.report import run_report

    run_report(args.config, args.data, id_col=args.id_col, label_col=args.label_col, split_col=args.split_col,
               kernel=args.kernel)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from churnlib.simulate import write_event_log

    stats = write_event_log(args.out, n_users=args.users, days=args.days, seed=args.seed, start=args.start)
    print(f"wrote {args.out}: {stats['events']:,} events, {stats['users']:,} users, {stats['churned']:,} cancelled, "
          f"{stats['seconds']:.1f} s ({stats['events_per_s']:,.0f} events/s)")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from churnlib.fidelity import fidelity_report

    report = fidelity_report(args.real, n_users=args.users, days=args.days, seeds=tuple(range(1, args.seeds + 1)))
    print(report)
    return 0 if report.passed else 1


def _cmd_features(args: argparse.Namespace) -> int:
    from churnlib.features import features_command

    table = features_command(args.events, args.as_of, args.horizon, args.out)
    print(f"wrote {args.out}: {len(table):,} rows (user x date), {table['churned'].mean():.1%} positive")
    return 0


def _csv_list(text: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


def _cmd_train(args: argparse.Namespace) -> int:
    from churnlib.training import train_command

    budget = {k: v for k, v in {
        "models": _csv_list(args.models), "strategies": _csv_list(args.strategies),
        "n_splits": args.n_splits, "n_repeats": args.n_repeats, "search_budget": args.search_budget,
        "cost_fn": args.cost_fn, "cost_fp": args.cost_fp, "seed": args.seed,
    }.items() if v is not None}
    result = train_command(args.table, args.id_col, args.label_col, args.split_col, args.out, **budget)
    print(f"chosen: {result.chosen.model} + {result.chosen.strategy}: {result.reason}")
    print(f"threshold {result.threshold:.3f}; {result.signal_statement()}")
    for kind, path in result.info.get("written", {}).items():
        print(f"wrote {kind}: {path}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from churnlib.scoring import score_command

    scored = score_command(args.model, events=args.events, table=args.table, out=args.out, id_col=args.id_col,
                           reasons=args.reasons)
    print(f"wrote {args.out}: {len(scored):,} users scored" + (" with their top three reasons" if args.reasons else ""))
    return 0


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
    p.add_argument("--kernel", default="churnlib", help="Jupyter kernel to run the notebooks")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("simulate", help="write a simulated Sparkify event log")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2018-10-01", help="first day of the log (UTC)")
    p.add_argument("--out", required=True, help=".parquet, .json.gz or .jsonl")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("fidelity", help="simulated vs real Sparkify distributions")
    p.add_argument("--real", default=str(root.parent / "shared" / "data" / "sparkify_mini_user_features.csv.gz"))
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seeds", type=int, default=5)
    p.set_defaults(func=_cmd_fidelity)

    p = sub.add_parser("features", help="feature table from an event log")
    p.add_argument("--events", required=True, help="event log (NDJSON, parquet or a folder)")
    p.add_argument("--as-of", action="append", required=True, metavar="DATE",
                   help="observation date (repeat for several)")
    p.add_argument("--horizon", type=float, default=30, metavar="DAYS", help="label window after each date")
    p.add_argument("--out", required=True, help="parquet file to write")
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
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("score", help="score users with a saved model")
    p.add_argument("--model", required=True, help="artifact (.joblib, manifest, or its folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--events", default=None, help="event log: features as of its last day")
    src.add_argument("--table", default=None, help="feature table with the model's columns")
    p.add_argument("--id-col", default=None)
    p.add_argument("--out", default="risk.csv")
    p.add_argument("--reasons", action=argparse.BooleanOptionalAction, default=True,
                   help="reason_1..reason_3: each user's top three risk-raising features (SHAP; on by "
                        "default, --no-reasons for probabilities only, which is much faster)")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("bench", help="run the benchmarks")
    p.add_argument("--only", default=None, help="run benchmarks whose name contains this")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("strip-notebooks", help="clear notebook outputs in place")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=_cmd_strip)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Data and notebook errors print a one-line cause, no traceback."""
    from churnlib.load import DataValidationError
    from churnlib.report import NotebookFailed

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DataValidationError, FileNotFoundError, ValueError) as exc:  # bad input: the message says what to fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
