"""What the dashboard's tool pages compute (``churnlib.dashboard.tools``): score a file, what-if, model."""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib import cli
from churnlib.dashboard import tools
from churnlib.intervals import Interval
from churnlib.thresholds import cost_threshold, reliability_table


# ---------------------------------------------------------------------------------------------
# Model page: the cost threshold, its holdout cost, the contacted count
# ---------------------------------------------------------------------------------------------

def _predictions(n_oof: int = 600, n_hold: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for part, n in (("oof", n_oof), ("holdout", n_hold)):
        y = (rng.random(n) < 0.2).astype(int)
        p = np.clip(0.15 + 0.35 * y + rng.normal(0, 0.15, n), 0.001, 0.999)
        users = [f"{part}-{i // 2}" for i in range(n)]  # two observation dates per user
        parts.append(pd.DataFrame({"userId": users, "as_of": 0, "part": part, "y": y, "p": p}))
    return pd.concat(parts, ignore_index=True)


def test_cost_threshold_is_chosen_on_out_of_fold_rows_only():
    pred = _predictions()
    choice = tools.cost_choice(pred, cost_fn=50, cost_fp=5, n_bootstrap=50)
    oof = pred[pred["part"] == "oof"]
    assert choice.threshold == cost_threshold(oof["y"].to_numpy(), oof["p"].to_numpy(), 50, 5)

    # holdout rows changed beyond recognition: the threshold does not move, its judged cost does
    rng = np.random.default_rng(1)
    moved = pred.copy()
    hold = moved["part"] == "holdout"
    moved.loc[hold, "p"] = rng.random(int(hold.sum()))
    moved.loc[hold, "y"] = 1 - moved.loc[hold, "y"]
    again = tools.cost_choice(moved, cost_fn=50, cost_fp=5, n_bootstrap=50)
    assert again.threshold == choice.threshold
    assert again.cost_per_user.value != choice.cost_per_user.value

    # out-of-fold rows changed: the threshold follows them (the check above can fail)
    shifted = pred.copy()
    oof_rows = shifted["part"] == "oof"
    shifted.loc[oof_rows, "p"] = np.clip(shifted.loc[oof_rows, "p"] * 0.5, 0, 1)
    assert tools.cost_choice(shifted, cost_fn=50, cost_fp=5, n_bootstrap=50).threshold != choice.threshold


def test_cost_on_the_holdout_and_the_contacted_count():
    pred = _predictions()
    risk = pd.DataFrame({"userId": [f"u{i}" for i in range(500)],
                         "churn_probability": np.random.default_rng(3).random(500)})
    choice = tools.cost_choice(pred, cost_fn=40, cost_fp=4, scored_p=risk["churn_probability"],
                               model_threshold=0.3, n_bootstrap=100)
    hold = pred[pred["part"] == "holdout"]
    y, p = hold["y"].to_numpy(), hold["p"].to_numpy()
    flag = p >= choice.threshold
    expected = (40 * ((y == 1) & ~flag) + 4 * ((y == 0) & flag)).mean()
    assert choice.cost_per_user.value == pytest.approx(expected)
    assert choice.cost_per_user.covers(expected) and choice.cost_per_user.high > choice.cost_per_user.low
    assert choice.cost_nobody.value == pytest.approx(40 * y.mean())
    assert choice.cost_everyone.value == pytest.approx(4 * (1 - y.mean()))
    assert choice.cost_model_threshold.value == pytest.approx(
        (40 * ((y == 1) & (p < 0.3)) + 4 * ((y == 0) & (p >= 0.3))).mean())
    # the cost-minimising threshold is at least as cheap out of fold as both baselines
    assert choice.contacted == int((risk["churn_probability"] >= choice.threshold).sum())
    assert choice.scored == 500
    assert choice.holdout_flagged == pytest.approx(flag.mean())
    assert choice.holdout_recall == pytest.approx(flag[y == 1].mean())
    text = choice.text()
    assert f"{choice.contacted:,} of the 500 users" in text and choice.cost_per_user.text(2) in text
    # a dearer miss never contacts fewer users
    dearer = tools.cost_choice(pred, cost_fn=400, cost_fp=4, scored_p=risk["churn_probability"], n_bootstrap=20)
    assert dearer.threshold <= choice.threshold and dearer.contacted >= choice.contacted


def test_cost_choice_refuses_what_it_cannot_judge():
    pred = _predictions()
    with pytest.raises(ValueError, match="positive"):
        tools.cost_choice(pred, cost_fn=0, cost_fp=1)
    one_class = pred.assign(y=np.where(pred["part"] == "holdout", 0, pred["y"]))
    with pytest.raises(ValueError, match="holdout"):
        tools.cost_choice(one_class, cost_fn=10, cost_fp=1)


def test_reliability_uses_the_holdout_part():
    pred = _predictions()
    hold = pred[pred["part"] == "holdout"]
    got = tools.reliability(pred, n_bins=5)
    pd.testing.assert_frame_equal(got, reliability_table(hold["y"].to_numpy(), hold["p"].to_numpy(), n_bins=5))
    assert tools.reliability(pred[pred["part"] == "oof"]).empty


def test_predictions_file_is_read_when_present(tmp_path: Path):
    assert tools.load_predictions(tmp_path) is None
    pred = _predictions(20, 10)
    pred.to_parquet(tmp_path / tools.PREDICTIONS_FILE, index=False)
    pd.testing.assert_frame_equal(tools.load_predictions(tmp_path), pred)


METRICS = {
    "chosen": {
        "cv": {"roc_auc": {"value": 0.75, "low": 0.67, "high": 0.84},
               "brier": {"value": 0.1, "low": 0.07, "high": 0.13},
               "lift_top_decile": {"value": 3.74, "low": 2.35, "high": 4.72}},
        "holdout": {"roc_auc": {"value": 0.72, "low": 0.55, "high": 0.9}, "pr_auc": {"value": 0.18, "low": 0.08,
                                                                                      "high": 0.44}},
    },
    "whatif": {"holdout": {"roc_auc": {"value": 0.66, "low": 0.5, "high": 0.8}}},
}


def test_metrics_table_shows_every_metric_with_its_interval():
    table = tools.metrics_table(METRICS)
    assert table["metric"].tolist() == ["ROC-AUC", "PR-AUC", "Brier score", "lift in the top decile"]
    row = table.set_index("metric")
    assert row.loc["ROC-AUC", "cross-validated (training part)"] == Interval(0.75, 0.67, 0.84).text()
    assert row.loc["ROC-AUC", "holdout"] == Interval(0.72, 0.55, 0.9).text()
    assert row.loc["PR-AUC", "cross-validated (training part)"] == "n/a"
    assert row.loc["lift in the top decile", "cross-validated (training part)"] == "3.74 (2.35–4.72)"


def test_whatif_figures_sit_beside_the_main_models(tmp_path: Path):
    table = tools.whatif_figures(METRICS).set_index("metric")
    assert table.loc["ROC-AUC", "main model"] == Interval(0.72, 0.55, 0.9).text()
    assert table.loc["ROC-AUC", "what-if model"] == Interval(0.66, 0.5, 0.8).text()
    assert table.loc["PR-AUC", "what-if model"] == "n/a"
    assert "not the model that scores users" in tools.whatif_statement(METRICS)
    # figures kept beside the model instead of in metrics.json
    (tmp_path / "whatif.json").write_text('{"holdout": {"pr_auc": {"value": 0.2, "low": 0.1, "high": 0.3}}}')
    side = tools.whatif_figures({"chosen": METRICS["chosen"]}, tmp_path).set_index("metric")
    assert side.loc["PR-AUC", "what-if model"] == Interval(0.2, 0.1, 0.3).text()


def test_whatif_status_says_why_there_is_no_model(tmp_path: Path):
    reason = "the table lacks the six event signals (a snapshot table)"
    assert reason in tools.whatif_status(tmp_path, {"whatif": {"skipped": reason}})
    assert tools.whatif_statement({"whatif": {"skipped": reason}}) is None
    assert "make report" in tools.whatif_status(tmp_path, {})
    (tmp_path / tools.WHATIF_FILE).write_bytes(b"x")
    assert tools.whatif_status(tmp_path, {}) is None


def test_user_signals_and_slider_ranges():
    feats = pd.DataFrame({"userId": ["a", "a", "b"], "as_of": [2, 1, 1], "crashes": [3.0, 9.0, 0.0],
                          "trend": [-0.5, 0.1, 0.25]})
    start = tools.user_signals(feats, "userId", "a", ["crashes", "trend"])
    assert start == {"crashes": 3.0, "trend": -0.5}  # the latest observation date, not the last row
    with pytest.raises(KeyError):
        tools.user_signals(feats, "userId", "zz", ["crashes"])
    ranges = tools.slider_ranges(feats, ["crashes", "trend"], {"crashes": 30.0, "trend": -0.5}, coverage=1.0)
    low, high, step = ranges["crashes"]
    assert step == 1.0 and low <= 0 and high >= 30  # whole steps for counts, the user's value inside
    low, high, step = ranges["trend"]
    assert 0 < step < 0.1 and low <= -0.5 and high >= 0.25
    # outliers beyond the central share do not stretch a slider
    wide = pd.DataFrame({"v": np.r_[np.linspace(0, 1, 999), 1e6]})
    assert tools.slider_ranges(wide, ["v"])["v"][1] < 10


class _Monotone:
    """A stand-in with the what-if model's attributes."""
    signals_ = ("x", "z")
    directions_ = {"x": 1, "z": -1}


def test_whatif_directions_in_words():
    assert tools.whatif_directions(_Monotone()) == {"x": "raises risk", "z": "lowers risk"}


# ---------------------------------------------------------------------------------------------
# Score a file: the command's functions, words and errors
# ---------------------------------------------------------------------------------------------

def _cli_score(capsys, model: Path, flag: str, path: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["score", "--model", str(model), flag, str(path), "--out", str(out), *extra])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_score_events_upload_matches_the_command(sim_trained, sim_log, tmp_path: Path, capsys):
    model, _ = sim_trained
    path = tmp_path / "my log.parquet"
    path.write_bytes(sim_log.read_bytes())
    code, out, _ = _cli_score(capsys, model, "--events", path, tmp_path / "risk.csv", "--no-reasons")
    assert code == 0
    got = tools.score_upload(model, path.name, path.read_bytes(), reasons=False)
    assert got.ok and got.kind == "events"
    assert got.account == out.split("\nwrote ")[0].replace(str(path), path.name)
    assert got.account.startswith("read ") and path.name in got.account and str(tmp_path) not in got.account
    assert tools.scores_csv(got.scores) == (tmp_path / "risk.csv").read_bytes()
    assert got.summary in out


def test_score_table_upload_matches_the_command(sim_trained, tmp_path: Path, capsys):
    model, table = sim_trained
    rows = table.drop(columns=["churned"]).head(40).copy()
    rows.loc[rows.index[2], "songs_30d"] = np.nan  # something to account for
    path = tmp_path / "features.csv.gz"
    with gzip.open(path, "wt") as f:
        rows.to_csv(f, index=False)
    code, out, _ = _cli_score(capsys, model, "--table", path, tmp_path / "risk.csv")
    assert code == 0
    got = tools.score_upload(model, path.name, path.read_bytes())
    assert got.ok and got.kind == "table"
    assert got.account == out.split("\nwrote ")[0].replace(str(path), path.name)
    assert tools.scores_csv(got.scores) == (tmp_path / "risk.csv").read_bytes()
    assert {"reason_1", "reason_2", "reason_3"} <= set(got.scores.columns)


@pytest.mark.parametrize("name, flag, content", [
    ("features.csv", "--table", b"userId,songs_30d\n1,3\n"),                      # missing feature columns
    ("features.csv", "--table", b"userId,songs_30d\n1,3\n1,4\n2,\"x\n"),        # a broken line
    ("features.csv.gz", "--table", b"not gzip at all"),                          # not a gzip file
    ("events.ndjson", "--events", b'{"ts": 1541030400000}\n'),                   # required columns absent
    ("events.ndjson", "--events", b'{"ts": 1541030400000, "userId": "1"\n'),     # broken JSON
    ("events.json.gz", "--events", gzip.compress(b'{"ts": 1}\n' * 50)[:30]),     # truncated gzip
])
def test_bad_upload_shows_the_commands_one_line_error(sim_trained, tmp_path: Path, capsys, name, flag, content):
    model, _ = sim_trained
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = _cli_score(capsys, model, flag, path, tmp_path / "risk.csv")
    assert code == 2 and err.startswith("error: ")
    cli_line = err.strip().splitlines()[-1].removeprefix("error: ")
    got = tools.score_upload(model, name, content, kind="events" if flag == "--events" else "table")
    assert not got.ok and got.scores is None
    assert "\n" not in got.error and "Traceback" not in got.error
    assert str(tmp_path) not in got.error and name in got.error
    assert got.error == cli_line.replace(str(path), name).split(" (files: ")[0]


def test_upload_name_is_only_a_name(sim_trained):
    model, _ = sim_trained
    got = tools.score_upload(model, "../../etc/x.csv", b"userId\n1\n")
    assert not got.ok and got.name == "x.csv" and "file x.csv" in got.error


def test_error_line_for_failures_that_are_not_bad_input():
    assert tools.error_line(RuntimeError("boom")).startswith("internal error in `churnlib score` (RuntimeError: boom)")
    assert tools.error_line(KeyError("page"), ["a.json"]) == "no column or key 'page' (files: a.json)"


def test_scores_csv_is_the_risk_file_format():
    scores = pd.DataFrame({"userId": ["1"], "churn_probability": [0.1234567], "risk_band": ["low"]})
    assert pd.read_csv(io.BytesIO(tools.scores_csv(scores))).iloc[0]["churn_probability"] == 0.123457
