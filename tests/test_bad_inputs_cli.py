"""Bad input through the command line: every case ends in a clear outcome, never a traceback.

Table-driven: each case runs ``churnlib.cli.main([...])`` in-process on a tiny input and states its
outcome, either an exit code with an ``error:`` line naming the file (and line/column when there is
one), or success with the exact counts of the printed data-quality account. In every case a good
output already at ``--out`` (and the inputs) must be left byte-for-byte as they were when the
command fails.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from churnlib.cli import main
from churnlib.simulate import write_event_log

FAST_TRAIN = ["--models", "logreg", "--strategies", "none", "--search-budget", "1", "--n-splits", "2",
              "--n-repeats", "1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """Tiny good inputs: an event log (parquet and NDJSON), a feature table, a snapshot and a model."""
    d = tmp_path_factory.mktemp("cli_inputs")
    events = d / "events.parquet"
    write_event_log(events, n_users=20, days=30, seed=3)
    ndjson = d / "events.jsonl"
    pd.read_parquet(events).to_json(ndjson, orient="records", lines=True)
    feats = d / "features.parquet"
    assert main(["features", "--events", str(events), "--as-of", "2018-10-15", "--horizon", "7",
                 "--out", str(feats)]) == 0
    rng = np.random.default_rng(0)
    n = 80
    x1, x2 = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    snap = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x1": x1, "x2": x2,
                         "churn": (x1 + rng.normal(scale=0.5, size=n) > 0.3).astype(int)})
    snapshot = d / "snapshot.csv"
    snap.to_csv(snapshot, index=False)
    model = d / "model"
    assert main(["train", "--table", str(snapshot), "--id-col", "user_id", "--label-col", "churn",
                 "--out", str(model), *FAST_TRAIN]) == 0
    table = d / "to_score.csv"
    snap.drop(columns="churn").to_csv(table, index=False)
    return {"events": events, "ndjson": ndjson, "features": feats, "snapshot": snapshot, "model": model,
            "table": table}


# --- inputs made bad -------------------------------------------------------------------------------

def _ndjson_with_bad_lines(w, d: Path) -> Path:
    good = w["ndjson"].read_text().splitlines()
    out = d / "bad_lines.jsonl"
    out.write_text("\n".join(good[:10] + ['{"ts": 12, broken'] + good[10:20] + ["not json"] + good[20:]) + "\n")
    return out


def _truncated_gz(src: str, name: str) -> Callable[[dict, Path], Path]:
    def build(w, d: Path) -> Path:
        data = gzip.compress(w[src].read_bytes(), mtime=0)
        out = d / name
        out.write_bytes(data[: len(data) // 2])
        return out
    return build


def _features_with(column: str, row: int, value, *, as_type: str | None = None):
    def build(w, d: Path) -> Path:
        t = pd.read_parquet(w["features"])
        if as_type:
            t[column] = t[column].astype(as_type)
        t.loc[row, column] = value
        out = d / f"features_{column}.parquet"
        t.to_parquet(out, index=False)
        return out
    return build


def _features_text_feature(w, d: Path) -> Path:
    t = pd.read_parquet(w["features"])
    t["songs_7d"] = np.where(t["songs_7d"] > t["songs_7d"].median(), "many", "few")
    out = d / "features_text.parquet"
    t.to_parquet(out, index=False)
    return out


def _header_only(w, d: Path) -> Path:
    out = d / "header_only.csv"
    out.write_text(w["table"].read_text().splitlines()[0] + "\n")
    return out


def _missing_feature(w, d: Path) -> Path:
    out = d / "no_x2.csv"
    pd.read_csv(w["table"]).drop(columns="x2").to_csv(out, index=False)
    return out


def _snapshot_without_label(w, d: Path) -> Path:
    out = d / "no_label.csv"
    pd.read_csv(w["snapshot"]).drop(columns="churn").to_csv(out, index=False)
    return out


def _regular_file(w, d: Path) -> Path:
    out = d / "a_file"
    out.write_text("not a folder\n")
    return out


def _folder(w, d: Path) -> Path:
    out = d / "a_folder"
    out.mkdir()
    return out


# --- the cases -------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    command: str
    args: Callable[[dict], list[str]]  # arguments after the command, given world + built paths
    code: int
    says: tuple[str, ...] = ()  # substrings of the error line (or of stdout when code == 0)
    build: dict[str, Callable[[dict, Path], Path]] = field(default_factory=dict)
    out: str | None = "out"  # key of the output path; a previous good output is placed there first
    printed: tuple[str, ...] = ()  # exact lines expected on stdout (success cases)


def ev(w):
    return ["--events", str(w["events"]), "--as-of", "2018-10-15"]


def train(table_key: str, label: str = "churned", id_col: str = "userId"):
    return lambda w: ["--table", str(w[table_key]), "--id-col", id_col, "--label-col", label, "--out", str(w["out"]),
                      *FAST_TRAIN]


def score(table_key: str = "table"):
    return lambda w: ["--model", str(w["model"]), "--table", str(w[table_key]), "--out", str(w["out"]),
                      "--no-reasons"]


CASES = [
    # features: the horizon
    Case("horizon nan", "features", lambda w: [*ev(w), "--horizon", "nan", "--out", str(w["out"])], 2,
         ("horizon nan is not a finite number of days",)),
    Case("horizon inf", "features", lambda w: [*ev(w), "--horizon", "inf", "--out", str(w["out"])], 2,
         ("horizon inf is not a finite number of days",)),
    Case("horizon negative", "features", lambda w: [*ev(w), "--horizon", "-3", "--out", str(w["out"])], 2,
         ("horizon -3 days is not positive",)),
    Case("horizon under a day", "features", lambda w: [*ev(w), "--horizon", "0.00000001", "--out", str(w["out"])],
         2, ("horizon 1e-08 days is under 1 day(s)",)),
    # features: the dates
    Case("as-of before the log", "features",
         lambda w: ["--events", str(w["events"]), "--as-of", "2017-01-01", "--out", str(w["out"])], 2,
         ("as-of 2017-01-01 is not after the start of the log", "the table would have no rows")),
    Case("as-of leaves no label window", "features",
         lambda w: ["--events", str(w["events"]), "--as-of", "2018-10-28", "--horizon", "7", "--out", str(w["out"])],
         2, ("as-of 2018-10-28 with a 7-day horizon needs the log to reach 2018-11-04", "censored")),
    Case("as-of not a date", "features",
         lambda w: ["--events", str(w["events"]), "--as-of", "2018-13-01", "--out", str(w["out"])], 2,
         ("as-of '2018-13-01' is not a date",)),
    # features: outputs
    Case("features out is the events", "features", lambda w: [*ev(w), "--out", str(w["events"])], 2,
         ("is also the input", "events.parquet"), out=None),
    Case("features out is a folder", "features", lambda w: [*ev(w), "--out", str(w["folder"])], 2,
         ("a_folder: is a folder",), build={"folder": _folder}, out=None),
    Case("features out under a file", "features", lambda w: [*ev(w), "--out", str(w["file"] / "f.parquet")], 2,
         ("a_file is a file, not a folder",), build={"file": _regular_file}, out=None),
    # features: the log
    Case("events missing", "features",
         lambda w: ["--events", str(w["events"].with_name("nope.parquet")), "--as-of", "2018-10-15",
                    "--out", str(w["out"])], 2, ("nope.parquet",)),
    Case("events truncated gzip", "features",
         lambda w: ["--events", str(w["trunc"]), "--as-of", "2018-10-15", "--out", str(w["out"])], 2,
         ("trunc.jsonl.gz",), build={"trunc": _truncated_gz("ndjson", "trunc.jsonl.gz")}),
    Case("events bad lines, strict", "features",
         lambda w: ["--events", str(w["bad"]), "--as-of", "2018-10-15", "--out", str(w["out"]), "--strict"], 2,
         ("bad_lines.jsonl", "line 11"), build={"bad": _ndjson_with_bad_lines}),
    Case("events bad lines, lenient: counted", "features",
         lambda w: ["--events", str(w["bad"]), "--as-of", "2018-10-15", "--horizon", "7", "--out", str(w["out"])], 0,
         build={"bad": _ndjson_with_bad_lines}, printed=("  dropped 2: unparseable line (first at line 11)",)),
    # train: outputs
    Case("train out is the table", "train",
         lambda w: ["--table", str(w["features"]), "--id-col", "userId", "--label-col", "churned",
                    "--out", str(w["features"])], 2, ("is also the input", "features.parquet"), out=None),
    Case("train out is a file", "train", train("features"), 2, ("is a file, but this command writes a folder",)),
    Case("train out under a file", "train",
         lambda w: ["--table", str(w["features"]), "--id-col", "userId", "--label-col", "churned",
                    "--out", str(w["file"] / "models")], 2, ("a_file is a file, not a folder",),
         build={"file": _regular_file}, out=None),
    # train: the table
    Case("feature table, NaN label, strict", "train", lambda w: [*train("bad")(w), "--strict"], 2,
         ("features_churned.parquet", "column 'churned'", "line 3"),
         build={"bad": _features_with("churned", 2, np.nan, as_type="float64")}, out="folder_out"),
    Case("feature table, label 2", "train", train("bad"), 2,
         ("features_churned.parquet", "column 'churned'", "not binary"),
         build={"bad": _features_with("churned", 2, 2)}, out="folder_out"),
    Case("feature table, label 'Yes', strict", "train", lambda w: [*train("bad")(w), "--strict"], 2,
         ("features_churned.parquet", "column 'churned'"),
         build={"bad": _features_with("churned", 2, "Yes", as_type="str")}, out="folder_out"),
    Case("feature table, text feature", "train", train("bad"), 2,
         ("features_text.parquet", "column 'songs_7d'", "feature column holds text"),
         build={"bad": _features_text_feature}, out="folder_out"),
    Case("snapshot without the label column", "train", train("bad", "churn", "user_id"), 2,
         ("no_label.csv", "churn"), build={"bad": _snapshot_without_label}, out="folder_out"),
    Case("snapshot truncated gzip", "train", train("bad", "churn", "user_id"), 2,
         ("snapshot.csv.gz",), build={"bad": _truncated_gz("snapshot", "snapshot.csv.gz")}, out="folder_out"),
    # score
    Case("score out is the table", "score",
         lambda w: ["--model", str(w["model"]), "--table", str(w["table"]), "--out", str(w["table"])], 2,
         ("is also the input", "to_score.csv"), out=None),
    Case("score out is a folder", "score",
         lambda w: ["--model", str(w["model"]), "--table", str(w["table"]), "--out", str(w["folder"])], 2,
         ("a_folder: is a folder",), build={"folder": _folder}, out=None),
    Case("score out under a file", "score",
         lambda w: ["--model", str(w["model"]), "--table", str(w["table"]), "--out", str(w["file"] / "r.csv")], 2,
         ("a_file is a file, not a folder",), build={"file": _regular_file}, out=None),
    Case("score truncated gzip table", "score", score("bad"), 2, ("to_score.csv.gz",),
         build={"bad": _truncated_gz("table", "to_score.csv.gz")}),
    Case("score header-only table", "score", score("bad"), 2, ("header_only.csv",), build={"bad": _header_only}),
    Case("score table without a feature", "score", score("bad"), 2, ("x2",), build={"bad": _missing_feature}),
    Case("score model missing", "score",
         lambda w: ["--model", str(w["model"].with_name("no_model")), "--table", str(w["table"]),
                    "--out", str(w["out"])], 2, ("no_model",)),
]


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    """Bytes of every file at or under ``paths`` (None: absent)."""
    seen: dict[Path, bytes | None] = {}
    for p in paths:
        if p.is_dir():
            seen.update({f: f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()})
        else:
            seen[p] = p.read_bytes() if p.is_file() else None
    return seen


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_through_the_cli(case: Case, world, tmp_path: Path, capsys):
    w = dict(world)
    for key, build in case.build.items():
        w[key] = build(world, tmp_path)
    if case.out == "folder_out":  # a previous good training output
        w["out"] = tmp_path / "models"
        w["out"].mkdir()
        (w["out"] / "metrics.json").write_text(json.dumps({"previous": "good"}))
    elif case.out:
        w["out"] = tmp_path / ("risk.csv" if case.command == "score" else "table.parquet")
        w["out"].write_bytes(b"previous good output\n")
        (tmp_path / (w["out"].name + ".quality.json")).write_text("{}")
    else:
        w["out"] = tmp_path / "unused"
    args = case.args(w)
    watched = [tmp_path, *world.values()]
    before = _snapshot(watched)
    capsys.readouterr()

    code = main([case.command, *args])

    out, err = capsys.readouterr()
    assert code == case.code, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    if case.code:
        lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for text in case.says:
            assert text in lines[0], lines[0]
        assert _snapshot(watched) == before  # nothing written, nothing damaged
    else:
        for text in (*case.says, *case.printed):
            assert text in out.splitlines() if text in case.printed else text in out, out
        written = json.loads(Path(str(w["out"]) + ".quality.json").read_text())
        first = re.search(r"read ([\d,]+) \w+ from .*; kept ([\d,]+)", out)
        assert first and int(first[1].replace(",", "")) == written["rows_read"]
        assert int(first[2].replace(",", "")) == written["rows_kept"]
        for line in case.printed:
            n, reason = re.match(r"\s+dropped ([\d,]+): (.+?) \(first", line).groups()
            assert written["dropped"][reason] == int(n.replace(",", ""))


def test_train_prints_the_account_and_keeps_it_in_metrics(world, tmp_path: Path, capsys):
    """A snapshot with one missing label and one 'yes' label: both counted, printed and kept."""
    t = pd.read_csv(world["snapshot"]).astype({"churn": object})
    t.loc[4, "churn"] = None
    t.loc[7, "churn"] = "yes"
    t.to_csv(tmp_path / "s.csv", index=False)
    capsys.readouterr()
    assert main(["train", "--table", str(tmp_path / "s.csv"), "--id-col", "user_id", "--label-col", "churn",
                 "--out", str(tmp_path / "m"), *FAST_TRAIN]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"read 80 rows from {tmp_path / 's.csv'}; kept 79"
    assert "  dropped 1: null label (first at line 6, column 'churn')" in out
    assert any(line.startswith("  repaired 1: label 'churn'") and "line 9" in line for line in out)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["data"]["quality"]["dropped"] == {"null label": 1}
    assert metrics["data"]["rows"] == 79
    assert json.loads((tmp_path / "m" / "quality.json").read_text()) == metrics["data"]["quality"]


def test_every_output_has_the_same_file_mode(world, tmp_path: Path):
    """features, train and score outputs are created like any file: 0666 less the umask."""
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [world["features"], *world["model"].iterdir()]}
    assert main(["score", "--model", str(world["model"]), "--table", str(world["table"]),
                 "--out", str(tmp_path / "r.csv"), "--no-reasons"]) == 0
    modes["r.csv"] = stat.S_IMODE((tmp_path / "r.csv").stat().st_mode)
    assert set(modes.values()) == {0o666 & ~mask}, modes
