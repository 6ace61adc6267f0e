"""The dashboard's tool pages (4 score a file, 5 what-if, 6 model) run by Streamlit's ``AppTest``.

Each test starts the app (``churnlib/dashboard/app.py``) on a small products tree built here from the
session's simulated log and model (``sim_log``, ``sim_trained``), switches to a page and drives it: the
upload of ``st.file_uploader`` (AppTest in Streamlit 1.67 can set it), the what-if sliders, the cost
sliders. Every figure checked is recomputed with the tested functions the page calls.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib.dashboard import tools
from churnlib.dashboard.products import DASHBOARD_ENV
from churnlib.whatif import WhatIfModel, whatif_probability

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

APP = Path(__file__).resolve().parents[1] / "churnlib" / "dashboard" / "app.py"
TIMEOUT = 120  # seconds per run: the machine is shared, scoring with reasons takes a few seconds


@pytest.fixture(scope="module")
def tree(dashboard_tree) -> Path:
    """The session's products tree (tests/dashboard_tree.py), with the predictions training writes and a
    what-if model."""
    assert (dashboard_tree / "models" / tools.PREDICTIONS_FILE).is_file(), "training wrote no predictions.parquet"
    assert (dashboard_tree / "models" / tools.WHATIF_FILE).is_file()
    return dashboard_tree


def _app(root: Path, monkeypatch: pytest.MonkeyPatch, page: str) -> AppTest:
    monkeypatch.setenv(DASHBOARD_ENV, str(root))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"screens/{page}")
    at.run()
    _clean(at)
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ---------------------------------------------------------------------------------------------
# 4. Score a file
# ---------------------------------------------------------------------------------------------

def test_score_a_file_page_scores_an_upload_as_the_command_does(tree: Path, sim_log: Path, monkeypatch):
    at = _app(tree, monkeypatch, "4_score_file.py")
    assert at.info and "No file uploaded" in at.info[0].value
    data = sim_log.read_bytes()
    at.file_uploader[0].set_value(("week.parquet", data, "application/octet-stream"))
    at.checkbox(key="score_reasons").uncheck()
    at.run()
    _clean(at)
    assert not at.error, [e.value for e in at.error]
    expected = tools.score_upload(tree / "models", "week.parquet", data, reasons=False)
    assert at.success[0].value.startswith(expected.summary)
    assert at.code[0].value == expected.account
    shown = at.dataframe[0].value
    assert len(shown) == len(expected.scores) and shown["userId"].tolist() == expected.scores["userId"].tolist()
    np.testing.assert_allclose(shown["churn_probability"], expected.scores["churn_probability"])
    assert at.get("download_button")


def test_score_a_file_page_shows_the_commands_error_for_a_bad_file(tree: Path, monkeypatch):
    at = _app(tree, monkeypatch, "4_score_file.py")
    bad = b"userId,songs_30d\n1,3\n"
    at.file_uploader[0].set_value(("features.csv", bad, "text/csv"))
    at.run()
    _clean(at)
    expected = tools.score_upload(tree / "models", "features.csv", bad)
    assert [e.value for e in at.error] == [f"error: {expected.error}"]
    assert "file features.csv, column" in at.error[0].value and not at.dataframe


# ---------------------------------------------------------------------------------------------
# 5. What-if
# ---------------------------------------------------------------------------------------------

def test_what_if_page_starts_at_the_users_values_and_moves_the_constrained_way(tree: Path, monkeypatch):
    at = _app(tree, monkeypatch, "5_what_if.py")
    model = WhatIfModel.load(tree / "models")
    features = pd.read_parquet(tree / "data" / "processed" / "features.parquet")
    user = at.selectbox(key="whatif_user").value
    start = tools.user_signals(features, "userId", user, model.signals_)
    assert "not the model that scores users" in at.warning[0].value
    assert "what-if model" in at.table[0].value.columns
    for s in model.signals_:
        if np.isfinite(start[s]):
            assert at.slider(key=f"whatif_{s}_{user}").value == pytest.approx(start[s])
    p0 = whatif_probability(model, start)
    assert _metric(at, "What-if model at the user's values") == f"{p0:.1%}"

    # push three signals towards more risk (each as far as its slider goes), then towards less
    riskiest = {"days_since_last_login": 1, "app_crash_count_30d": 1, "login_frequency_30d": -1}
    for s, d in riskiest.items():
        slider = at.slider(key=f"whatif_{s}_{user}")
        slider.set_value(slider.max if d > 0 else slider.min)
    at.run()
    _clean(at)
    values = {w.key.removeprefix("whatif_").removesuffix(f"_{user}"): w.value for w in at.slider}
    worse = whatif_probability(model, {**start, **values})
    assert worse >= p0
    assert _metric(at, "What-if probability") == f"{worse:.1%}"
    for s, d in riskiest.items():
        slider = at.slider(key=f"whatif_{s}_{user}")
        slider.set_value(slider.min if d > 0 else slider.max)
    at.run()
    _clean(at)
    values = {w.key.removeprefix("whatif_").removesuffix(f"_{user}"): w.value for w in at.slider}
    better = whatif_probability(model, {**start, **values})
    assert better <= p0 <= worse and better < worse  # the sliders moved it
    assert _metric(at, "What-if probability") == f"{better:.1%}"


def test_what_if_page_says_why_there_is_no_what_if_model(tree: Path, tmp_path: Path, monkeypatch):
    root = tmp_path / "snapshot"
    shutil.copytree(tree, root)
    for name in ("whatif.joblib", "whatif.json"):
        (root / "models" / name).unlink()
    metrics = json.loads((root / "models" / "metrics.json").read_text())
    metrics["whatif"] = {"skipped": "the table lacks 6 of the six what-if signals"}
    (root / "models" / "metrics.json").write_text(json.dumps(metrics))
    at = _app(root, monkeypatch, "5_what_if.py")
    assert "the table lacks 6 of the six what-if signals" in at.info[0].value
    assert not at.slider


# ---------------------------------------------------------------------------------------------
# 6. Model
# ---------------------------------------------------------------------------------------------

def test_model_page_metrics_calibration_and_cost_threshold(tree: Path, monkeypatch):
    at = _app(tree, monkeypatch, "6_model.py")
    metrics = json.loads((tree / "models" / "metrics.json").read_text())
    table = at.table[0].value
    assert table.index.tolist() == tools.metrics_table(metrics)["metric"].tolist()
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the reliability curve
    predictions = tools.load_predictions(tree / "models")
    risk = pd.read_parquet(tree / "data" / "processed" / "risk_scores.parquet")
    for cost_fn, cost_fp in ((100, 10), (900, 5)):
        at.slider(key="cost_fn").set_value(cost_fn)
        at.slider(key="cost_fp").set_value(cost_fp)
        at.run()
        _clean(at)
        choice = tools.cost_choice(predictions, cost_fn, cost_fp, risk["churn_probability"],
                                   model_threshold=metrics["chosen"]["threshold"]["value"])
        assert _metric(at, "Threshold") == f"{choice.threshold:.3f}"
        assert _metric(at, "Users contacted now") == f"{choice.contacted:,} of {len(risk):,}"
        assert _metric(at, "Expected cost per user (holdout)") == choice.cost_per_user.text(2)


def test_model_page_without_predictions_says_what_to_run(tree: Path, tmp_path: Path, monkeypatch):
    root = tmp_path / "old"
    shutil.copytree(tree, root)
    (root / "models" / tools.PREDICTIONS_FILE).unlink()
    at = _app(root, monkeypatch, "6_model.py")
    assert at.table and "make report" in at.info[0].value
    assert not at.slider
