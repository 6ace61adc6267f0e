"""MLflow tracking wired into the commands, the report runner, the notebooks and the Makefile.

The tracking API itself (:mod:`churnlib.tracking`) is tested in ``tests/test_tracking.py``; here: that
``train`` and ``make report`` record one run each (and nothing with tracking off), that the test-suite
never writes the project's store, and that the notebooks nbval ran in this session left their runs.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _client(uri: str | None = None):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or os.environ["MLFLOW_TRACKING_URI"])


def _runs(uri: str) -> list:
    from churnlib.tracking import EXPERIMENT

    client = _client(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    return [] if exp is None else client.search_runs([exp.experiment_id])


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tracking store of this test's own (the session's one holds other tests' runs)."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("CHURNLIB_TRACKING", raising=False)
    return uri


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small snapshot table with a real signal."""
    rng = np.random.default_rng(3)
    n = 240
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0.6).astype(int)
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "is_churned": y})
    path = tmp_path_factory.mktemp("table") / "users.csv"
    frame.to_csv(path, index=False)
    return path


FAST = ["--models", "dummy,logreg", "--strategies", "none", "--n-splits", "2", "--n-repeats", "1",
        "--search-budget", "1"]


def test_the_test_session_never_writes_the_project_store():
    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert uri.startswith("sqlite:///")
    db = Path(uri.removeprefix("sqlite:///"))
    assert ROOT not in db.parents, f"tests would write the project's store: {uri}"


def test_train_records_one_run_with_the_champion_and_says_so(table: Path, tmp_path: Path, store: str, capsys):
    from churnlib.tracking import CHAMPION, REGISTERED_MODEL

    assert main(["train", "--table", str(table), "--id-col", "user_id", "--label-col", "is_churned",
                 "--out", str(tmp_path / "models"), *FAST]) == 0
    out = capsys.readouterr().out
    (run,) = _runs(store)
    assert f"recorded in MLflow run {run.info.run_id}" in out
    assert run.data.params["id_col"] == "user_id" and run.data.params["label_col"] == "is_churned"
    assert "holdout_roc_auc" in run.data.metrics
    champion = _client(store).get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    assert champion.run_id == run.info.run_id
    assert f"models:/{REGISTERED_MODEL}/{champion.version}" in out


@pytest.mark.parametrize("off", ["flag", "env"])
def test_train_with_tracking_off_records_nothing(table: Path, tmp_path: Path, store: str, capsys,
                                                 monkeypatch: pytest.MonkeyPatch, off: str):
    argv = ["train", "--table", str(table), "--id-col", "user_id", "--label-col", "is_churned",
            "--out", str(tmp_path / "models"), *FAST]
    if off == "flag":
        argv.append("--no-tracking")
    else:
        monkeypatch.setenv("CHURNLIB_TRACKING", "0")
    assert main(argv) == 0
    assert "not recorded in MLflow" in capsys.readouterr().out
    assert (tmp_path / "models" / "churn_model.joblib").is_file()
    assert _runs(store) == []


def _make(*args: str) -> str:
    return subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def test_make_report_tracks_unless_tracking_is_0():
    assert "--no-tracking" not in _make("report")
    assert "--no-tracking" in _make("report", "TRACKING=0")


def test_make_mlflow_serves_the_local_store_on_localhost_only():
    cmd = _make("mlflow")
    assert "mlflow ui" in cmd and "--host 127.0.0.1" in cmd and "--port 5000" in cmd
    assert f"sqlite:///{ROOT}/mlruns.db" in cmd and "http://127.0.0.1:5000" in cmd


def test_tracking_store_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "mlruns.db", "mlartifacts/x", "mlruns.db-journal"], cwd=ROOT,
                             capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.stdout.split() == ["mlruns.db", "mlartifacts/x", "mlruns.db-journal"]


def _text(run) -> str:
    """Every text output of an executed notebook."""
    import nbformat

    nb = nbformat.read(run.executed, as_version=4)
    return "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/markdown", ""))
        + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def test_notebooks_run_by_nbval_recorded_their_runs(nbval_executed: dict):
    """05 standalone logs a run of its own with a registered model; 07 logs its decision run."""
    from churnlib.tracking import REGISTERED_MODEL

    ran = {name: run for name, run in nbval_executed.items() if name in ("05_models.ipynb", "07_monitoring.ipynb")}
    if not ran:
        pytest.skip("neither 05_models nor 07_monitoring ran under nbval in this session")
    client = _client()
    if "05_models.ipynb" in ran:
        text = _text(ran["05_models.ipynb"])
        run_id = text.split("MLflow run `", 1)[1].split("`", 1)[0]
        run = client.get_run(run_id)
        assert "holdout_roc_auc" in run.data.metrics
        versions = client.search_model_versions(f"name='{REGISTERED_MODEL}' and run_id='{run_id}'")
        assert versions, "05 registered no model version"
    if "07_monitoring.ipynb" in ran:
        text = _text(ran["07_monitoring.ipynb"])
        run_id = text.split("decision run `", 1)[1].split("`", 1)[0]
        assert client.get_run(run_id).data.tags.get("kind") == "decision"
