"""The command line: commands are listed, and bad input ends in a one-line error, not a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import cli
from churnlib.cli import DEBUG_ENV, build_parser, main
from churnlib.model import ChurnModel
from churnlib.models import make_pipeline
from churnlib.scoring import OUTPUT_COLUMNS, REASON_COLUMNS
from churnlib.thresholds import RiskBands


def _result_columns(scored: pd.DataFrame) -> list[str]:
    return [c for c in scored.columns if c in (*OUTPUT_COLUMNS, *REASON_COLUMNS)]


def test_commands_are_listed():
    help_text = build_parser().format_help()
    for command in ("report", "simulate", "fidelity", "bench", "strip-notebooks"):
        assert command in help_text


def test_report_on_missing_data_is_a_clear_error(tmp_path: Path, capsys):
    missing = tmp_path / "nope.json.gz"
    assert main(["report", "--data", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope.json.gz" in err and "Traceback" not in err


def test_module_entry_point_reports_bad_arguments_without_traceback(tmp_path: Path):
    out = subprocess.run([sys.executable, "-m", "churnlib", "simulate", "--users", "5", "--out", str(tmp_path / "x.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and "x.txt" in out.stderr and "Traceback" not in out.stderr


def test_simulate_features_train_score_chain(tmp_path: Path):
    """The command-line chain a script would run: each step reads what the one before wrote."""
    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "churnlib", *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    events, feats, model, risk = (tmp_path / n for n in ("ev.parquet", "f.parquet", "model", "risk.csv"))
    assert "events" in run("simulate", "--users", "250", "--days", "60", "--seed", "3", "--out", str(events))
    run("features", "--events", str(events), "--as-of", "2018-11-01", "--as-of", "2018-11-08",
        "--horizon", "14", "--out", str(feats))
    table = pd.read_parquet(feats)
    assert set(table["as_of"].dt.strftime("%Y-%m-%d")) == {"2018-11-01", "2018-11-08"}
    printed = run("train", "--table", str(feats), "--id-col", "userId", "--label-col", "churned", "--out", str(model),
                  "--models", "logreg", "--strategies", "none", "--search-budget", "2", "--n-splits", "2")
    assert "chosen:" in printed and (model / "metrics.json").exists()
    trained = ChurnModel.load(model)  # the verified artifact, with the table's features
    assert set(trained.feature_names) <= set(table.columns) and trained.id_col == "userId"
    run("score", "--model", str(model), "--events", str(events), "--out", str(risk))
    scored = pd.read_csv(risk)
    assert _result_columns(scored) == [*OUTPUT_COLUMNS, *REASON_COLUMNS]
    assert scored["reason_1"].notna().any()
    assert scored["churn_probability"].between(0, 1).all() and set(scored["risk_band"]) <= {"low", "medium", "high"}
    assert ((scored["churn_probability"] >= trained.threshold) == scored["churn_label"].astype(bool)).all()


def test_score_with_reasons_adds_three_reason_columns(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"user_id": [f"u{i}" for i in range(80)], "days_since_last_login": rng.exponential(5, 80),
                          "songs_7d": rng.poisson(30, 80)})
    y = (table["days_since_last_login"] > 5).astype(int).to_numpy()
    X = table[["days_since_last_login", "songs_7d"]]
    ChurnModel(make_pipeline("logreg").fit(X, y), threshold=0.5, id_col="user_id",
               bands=RiskBands(medium_from=0.25, high_from=0.5),
               schema=[{"name": c, "kind": "numeric"} for c in X.columns]).save(tmp_path / "m")
    table.to_csv(tmp_path / "t.csv", index=False)
    assert main(["score", "--model", str(tmp_path / "m"), "--table", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "r.csv")]) == 0
    printed = capsys.readouterr().out
    assert "top three reasons" in printed
    assert f"read 80 rows from {tmp_path / 't.csv'}; kept 80" in printed  # the input's account
    scored = pd.read_csv(tmp_path / "r.csv")
    assert _result_columns(scored) == [*OUTPUT_COLUMNS, *REASON_COLUMNS]
    long_gone = table["days_since_last_login"] > 12  # far above the mean: the driver is the first reason
    assert long_gone.any() and scored.loc[long_gone, "reason_1"].str.startswith("days since last login: ").all()
    assert main(["score", "--model", str(tmp_path / "m"), "--table", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "plain.csv"), "--no-reasons"]) == 0
    assert "reason_1" not in pd.read_csv(tmp_path / "plain.csv").columns


def test_score_refuses_a_tampered_model_in_one_line(tmp_path: Path, capsys):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"days_since_last_login": rng.exponential(5, 60), "songs_7d": rng.poisson(30, 60)})
    y = (X["days_since_last_login"] > 5).astype(int).to_numpy()
    ChurnModel(make_pipeline("logreg").fit(X, y), threshold=0.5,
               schema=[{"name": c, "kind": "numeric"} for c in X.columns]).save(tmp_path / "m")
    art = tmp_path / "m" / "churn_model.joblib"
    art.write_bytes(art.read_bytes() + b"\0")
    X.assign(userId=range(60)).to_csv(tmp_path / "t.csv", index=False)
    assert main(["score", "--model", str(tmp_path / "m"), "--table", str(tmp_path / "t.csv"),
                 "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "SHA-256" in err and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists()


def test_commands_that_read_data_take_strict():
    parser = build_parser()
    for command, required in (("features", ["--events", "e", "--as-of", "2018-11-01", "--out", "o"]),
                              ("train", ["--table", "t", "--id-col", "i", "--label-col", "l"]),
                              ("score", ["--model", "m", "--table", "t"])):
        assert parser.parse_args([command, *required, "--strict"]).strict is True
        assert parser.parse_args([command, *required]).strict is False


def _failing(exc: BaseException):
    def run(args):
        raise exc
    return run


def test_an_internal_error_is_one_line_asking_for_a_report(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_cmd_bench", _failing(ZeroDivisionError("division by zero")))
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: internal error in `churnlib bench` (ZeroDivisionError: division by zero)")
    assert "please report" in err and DEBUG_ENV in err


def test_debug_setting_shows_the_traceback(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    monkeypatch.setattr(cli, "_cmd_bench", _failing(ZeroDivisionError("division by zero")))
    with pytest.raises(ZeroDivisionError):
        main(["bench"])


@pytest.mark.parametrize("exc, says", [
    (PermissionError(13, "Permission denied", "/data/x.csv"), "error: /data/x.csv: permission denied"),
    (IsADirectoryError(21, "Is a directory", "/data/out"), "error: /data/out: is a folder where a file was expected"),
    (FileExistsError(17, "File exists", "/data/m"), "error: /data/m: already exists and is in the way"),
    (EOFError("Compressed file ended before the end-of-stream marker was reached"),
     "error: a compressed input ends early (truncated, or still being written): /data/t.csv.gz"),
    (ValueError("Found array with 0 sample(s)"), "error: Found array with 0 sample(s) (files: /data/t.csv.gz"),
])
def test_file_system_and_library_errors_are_bad_input_naming_the_file(monkeypatch, capsys, exc, says):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_cmd_score", _failing(exc))
    assert main(["score", "--model", "/data/m", "--table", "/data/t.csv.gz", "--out", "/data/out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1 and "Traceback" not in err


def test_a_library_warning_is_one_line(monkeypatch, capsys):
    import warnings

    def warn(args):
        warnings.warn("\n1 fits failed out of a total of 2.\nTraceback (most recent call last):\n  ...", UserWarning)
        return 0

    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "_cmd_bench", warn)
    assert main(["bench"]) == 0
    assert capsys.readouterr().err == "warning: 1 fits failed out of a total of 2. (UserWarning)\n"


# ---- serve, score --as-of, monitor --store (issue 14) ----------------------------------------------------------

def _tiny_model(path: Path) -> Path:
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"days_since_last_login": rng.exponential(5, 60), "songs_7d": rng.poisson(30, 60)})
    y = (X["days_since_last_login"] > 5).astype(int).to_numpy()
    ChurnModel(make_pipeline("logreg").fit(X, y), threshold=0.5,
               schema=[{"name": c, "kind": "numeric"} for c in X.columns]).save(path)
    return path


def test_serve_parser_defaults_and_store_options():
    parser = build_parser()
    args = parser.parse_args(["serve", "--model", "m"])
    assert (args.host, args.port, args.store, args.no_store) == ("127.0.0.1", 8000, None, False)
    args = parser.parse_args(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "9001", "--store", "s.sqlite"])
    assert (args.host, args.port, args.store) == ("0.0.0.0", 9001, "s.sqlite")
    assert parser.parse_args(["serve", "--no-store"]).no_store is True
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["serve", "--store", "s.sqlite", "--no-store"])
    assert stop.value.code == 2


@pytest.mark.parametrize("damage", ["missing", "tampered"])
def test_serve_refuses_a_bad_model_in_one_line_before_listening(tmp_path: Path, capsys, monkeypatch, damage):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    model = tmp_path / "m"
    if damage == "tampered":
        _tiny_model(model)
        art = model / "churn_model.joblib"
        art.write_bytes(art.read_bytes() + b"\0")
    assert main(["serve", "--model", str(model), "--port", "0", "--no-store"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error:") and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert str(model) in captured.err
    assert "SHA-256" in captured.err if damage == "tampered" else True
    assert "serving" not in captured.out  # never got as far as announcing an address


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path: Path, capsys, monkeypatch):
    import socket

    monkeypatch.delenv(DEBUG_ENV, raising=False)
    model = _tiny_model(tmp_path / "m")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(model), "--port", str(port), "--no-store"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: 127.0.0.1:{port}: cannot listen there")
    assert captured.err.count("\n") == 1 and "serving" not in captured.out


def test_score_passes_as_of_to_score_command(monkeypatch, tmp_path: Path):
    from churnlib import scoring

    seen = {}

    def fake(model, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"userId": ["a"]})

    monkeypatch.setattr(scoring, "score_command", fake)
    assert main(["score", "--model", "m", "--events", "e.parquet", "--as-of", "2018-11-20",
                 "--out", str(tmp_path / "r.csv")]) == 0
    assert seen["as_of"] == "2018-11-20" and seen["events"] == "e.parquet"
    assert main(["score", "--model", "m", "--events", "e.parquet", "--out", str(tmp_path / "r.csv")]) == 0
    assert seen["as_of"] is None  # the default rule: midnight after the log's last event


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_as_of_with_a_feature_table_is_a_usage_error(capsys):
    err = _usage_error(capsys, ["score", "--model", "m", "--table", "t.csv", "--as-of", "2018-11-20"])
    assert err.startswith("churnlib score: error: --as-of is for --events")


@pytest.mark.parametrize("argv, says", [
    (["--store", "s.sqlite", "--model", "m", "--out", "d", "--current", "c.csv"], "--current: not with --store"),
    (["--store", "s.sqlite", "--model", "m", "--out", "d", "--strict"], "--strict: not with --store"),
    (["--store", "s.sqlite", "--out", "d"], "--store needs --model"),
    (["--store", "s.sqlite", "--model", "m"], "--store needs --out"),
    (["--reference", "r.csv", "--current", "c.csv", "--window-days", "3"], "--window-days: only with --store"),
    (["--reference", "r.csv"], "give --reference and --current (two tables), or --store"),
    ([], "missing: --reference, --current"),
])
def test_monitor_modes_do_not_mix(capsys, argv, says):
    err = _usage_error(capsys, ["monitor", *argv])
    assert err.startswith("churnlib monitor: error: ") and says in err and err.count("\n") == 1


def test_monitor_store_mode_calls_monitor_store_and_prints_its_text(monkeypatch, tmp_path: Path, capsys):
    from churnlib import monitoring

    seen = {}

    class Result:
        def text(self) -> str:
            return "12 users served in the window; no feature drifted"

    def fake(store, model, **kwargs):
        seen.update(store=store, model=model, **kwargs)
        return Result()

    monkeypatch.setattr(monitoring, "monitor_store", fake, raising=False)
    out = tmp_path / "drift"
    assert main(["monitor", "--store", "s.sqlite", "--model", "m", "--window-days", "3", "--psi-threshold", "0.3",
                 "--out", str(out)]) == 0
    assert seen["store"] == "s.sqlite" and seen["model"] == "m" and seen["out_dir"] == str(out)
    assert seen["window_days"] == 3 and seen["psi_threshold"] == 0.3 and seen["reference"] is None
    assert seen["ks_threshold"] == monitoring.KS_THRESHOLD  # the default of the table mode too
    assert seen["plot"] is not None and seen["wording"] is not None  # the figure and the plain words
    printed = capsys.readouterr().out
    assert "no feature drifted" in printed
    assert main(["monitor", "--store", "s.sqlite", "--model", "m", "--out", str(out)]) == 0
    assert seen["window_days"] == 7


def test_monitor_table_mode_takes_the_thresholds(monkeypatch, tmp_path: Path, capsys):
    from churnlib import monitoring, monitoring_report

    seen = {}

    def fake(reference, current, out, **kwargs):
        seen.update(reference=reference, current=current, out=out, **kwargs)
        return object()

    monkeypatch.setattr(monitoring, "monitor_command", fake)
    monkeypatch.setattr(monitoring_report, "command_text", lambda result: "compared")
    assert main(["monitor", "--reference", "r.csv", "--current", "c.csv", "--ks-threshold", "0.2"]) == 0
    assert seen["out"] == "monitoring.json" and seen["ks_threshold"] == 0.2
    assert seen["psi_threshold"] == monitoring.PSI_THRESHOLD
    assert (seen["id_col"], seen["label_col"], seen["strict"]) == ("user_id", "is_churned", False)
    assert main(["monitor", "--reference", "r.csv", "--current", "c.csv", "--label-col", "", "--id-col", "uid",
                 "--out", str(tmp_path / "m.json")]) == 0
    assert (seen["id_col"], seen["label_col"]) == ("uid", None)
