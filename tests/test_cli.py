"""The command line: commands are listed, and bad input ends in a one-line error, not a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from churnlib.cli import build_parser, main


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
