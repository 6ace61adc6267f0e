"""MLflow tracking and registry (churnlib.tracking): a training run read back through MlflowClient, pyfunc
parity with ChurnModel, champion/challenger aliases and decisions, tracking off, and a real `mlflow server`.

Every test here uses a temporary store (MLFLOW_TRACKING_URI pointed at a SQLite file under tmp), never the
project's mlruns.db.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from churnlib import monitoring as mon
from churnlib import paths
from churnlib import tracking as tr
from churnlib import training as T
from churnlib.files import sha256_file
from churnlib.load import data_fingerprint
from churnlib.model import ChurnModel

FAST = dict(models=("logreg",), strategies=("none",), search_budget=0, n_permutations=1, n_bootstrap=20)


def _table(n: int, seed: int) -> pd.DataFrame:
    """Users with an int, a float and a text feature and a label that depends on them."""
    rng = np.random.default_rng(seed)
    sessions = rng.poisson(8, n).astype("int64")
    minutes = rng.gamma(2.0, 30.0, n)
    plan = rng.choice(["free", "paid"], n)
    logit = -1.0 - 0.15 * (sessions - 8) - 0.01 * (minutes - 60) + 0.8 * (plan == "free")
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"user_id": [f"u{seed}_{i}" for i in range(n)], "sessions": sessions,
                         "minutes": minutes, "plan": plan, "is_churned": churned})


@pytest.fixture(scope="module")
def store(tmp_path_factory, server):
    """A temporary SQLite store for this module (the environment restored afterwards); the server of the
    last test starts meanwhile."""
    root = tmp_path_factory.mktemp("mlstore")
    uri = f"sqlite:///{root / tr.STORE_DB}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv(tr.TRACKING_ENV, raising=False)
        yield {"root": root, "uri": uri}


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """A model trained and saved the way `train` does, and its training run logged."""
    tmp = tmp_path_factory.mktemp("trained")
    table = _table(400, 1)
    data = tmp / "table.parquet"
    table.to_parquet(data)
    result = T.run_training(table, "user_id", "is_churned", **FAST)
    written = result.save(tmp / "models", source=data)
    run = tr.log_training(result, written, data=data, params={"horizon_days": 14})
    return {"tmp": tmp, "table": table, "data": data, "result": result, "written": written, "run": run}


def test_tracking_uri_and_switch(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tr.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}"
    assert tr.tracking_uri() == f"sqlite:///{paths.project_root().resolve() / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tr.tracking_uri(tmp_path) == "http://127.0.0.1:9"  # the environment wins
    monkeypatch.delenv(tr.TRACKING_ENV, raising=False)
    assert tr.tracking_enabled() and tr.tracking_enabled(None)
    assert not tr.tracking_enabled(False)
    for off in ("0", "off", "FALSE", " no "):
        monkeypatch.setenv(tr.TRACKING_ENV, off)
        assert not tr.tracking_enabled()
        assert tr.tracking_enabled(True)  # an explicit flag overrides the environment
    monkeypatch.setenv(tr.TRACKING_ENV, "1")
    assert tr.tracking_enabled()


def test_unreachable_server_and_missing_folder_are_refused_quickly(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    with pytest.raises(tr.TrackingError, match=rf"127\.0\.0\.1:{port}.*does not answer.*--no-tracking"):
        tr.start_run(run_name="x")
    assert time.perf_counter() - start < 10
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'absent' / 'mlruns.db'}")
    with pytest.raises(tr.TrackingError, match="does not exist"):
        tr.check_store()
    assert not (tmp_path / "absent").exists()


def test_tracking_off_imports_no_mlflow():
    """With tracking off nothing can be written: training and the CLI do not even load mlflow."""
    code = ("import sys, churnlib, churnlib.training, churnlib.cli, churnlib.report; "
            "print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, tr.TRACKING_ENV: "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_training_run_reads_back_through_the_client(store, trained):
    run, written, result = trained["run"], trained["written"], trained["result"]
    client = MlflowClient(store["uri"])
    got = client.get_run(run.run_id)
    p, m, t = got.data.params, got.data.metrics, got.data.tags
    saved = json.loads(Path(written["metrics"]).read_text())
    # parameters: data and its fingerprint, columns, settings, versions, the caller's extras
    assert p["data"] == str(trained["data"])
    assert p["data_fingerprint"] == data_fingerprint(trained["data"]) == saved["data"]["fingerprint"]
    assert (p["id_col"], p["label_col"], p["models"], p["strategies"]) == ("user_id", "is_churned", "logreg", "none")
    assert p["search_budget"] == "0" and p["seed"] == "0" and p["horizon_days"] == "14"
    assert p["rows_train"] == str(saved["data"]["rows_train"])
    assert p["churnlib_version"] and p["lib.scikit-learn"] == saved["versions"]["scikit-learn"]
    # metrics: value and interval bounds of each headline metric, CV and holdout
    for where in ("cv", "holdout"):
        for metric in ("roc_auc", "pr_auc", "f1", "brier", "lift_top_decile"):
            block = saved["chosen"][where][metric]
            assert m[f"{where}_{metric}"] == pytest.approx(block["value"])
            assert m[f"{where}_{metric}_low"] == pytest.approx(block["low"])
            assert m[f"{where}_{metric}_high"] == pytest.approx(block["high"])
            assert m[f"{where}_{metric}_low"] <= m[f"{where}_{metric}"] <= m[f"{where}_{metric}_high"]
    assert m["permutation_p"] == pytest.approx(saved["permutation_test"]["p_value"])
    assert m["threshold"] == pytest.approx(result.threshold)
    # tags
    sha = sha256_file(written["artifact"])
    assert t["kind"] == "training" and t["model_sha256"] == sha and t["model_version"] == sha[:12]
    assert t["signal"] == ("detected" if result.signal_detected else "not detected")
    assert t["chosen_model"] == "logreg / none"
    assert t["leakage_suspects"] == (", ".join(result.info["data"]["leakage_suspects_dropped"]) or "none")
    # artifacts: the training files and the candidate table; in the store's folder, not the project's
    names = {a.path for a in client.list_artifacts(run.run_id, "training")}
    assert {"training/metrics.json", "training/churn_model.manifest.json", "training/reference.parquet",
            "training/candidates.csv"} <= names
    cands = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="training/candidates.csv", dst_path=str(trained["tmp"] / "dl"),
        tracking_uri=store["uri"]))
    assert set(cands["where"]) == {"cv", "holdout"} and set(cands["model"]) == {"logreg"}
    exp = client.get_experiment(run.experiment_id)
    assert exp.name == tr.EXPERIMENT
    assert exp.artifact_location == (store["root"] / tr.ARTIFACT_DIR).resolve().as_uri()
    assert any((store["root"] / tr.ARTIFACT_DIR).rglob("churn_model.joblib"))
    # the registry: version with the artifact's SHA-256, alias champion
    assert run.model_version is not None and run.model_uri == f"models:/{tr.REGISTERED_MODEL}/{run.model_version}"
    champion = client.get_model_version_by_alias(tr.REGISTERED_MODEL, tr.CHAMPION)
    assert str(champion.version) == run.model_version and champion.tags["model_sha256"] == sha
    assert champion.run_id == run.run_id and t["registered_version"] == run.model_version
    assert tr.find_version(sha) == run.model_version and tr.find_version("0" * 64) is None
    assert tr.alias_version(tr.CHAMPION) == run.model_version
    assert run.url == f"#/experiments/{run.experiment_id}/runs/{run.run_id}"
    assert run.link().startswith("http://127.0.0.1:5000/#/experiments/")


def test_pyfunc_gives_the_same_probabilities(store, trained):
    model = ChurnModel.load(trained["written"]["artifact"])
    frame = _table(150, 2)  # other users, with the id and label columns the model ignores
    pyfunc = mlflow.pyfunc.load_model(f"models:/{tr.REGISTERED_MODEL}@{tr.CHAMPION}")
    got = pyfunc.predict(frame)
    np.testing.assert_array_equal(np.asarray(got, dtype=float), model.churn_probability(frame))
    sig = pyfunc.metadata.get_input_schema()
    assert sig.input_names() == model.feature_names
    assert dict(zip(sig.input_names(), [c.type.name for c in sig.inputs])) == {
        "sessions": "long", "minutes": "double", "plan": "string"}
    with pytest.raises(Exception, match="minutes"):  # a missing feature is refused, not guessed
        pyfunc.predict(frame.drop(columns="minutes"))


def test_logging_into_a_given_run_registers_the_same_artifact_once(store, trained, monkeypatch):
    monkeypatch.setattr(tr, "MAX_REFERENCE_BYTES", 1000)  # a reference too large to copy into the store
    started = tr.start_run(run_name="report", tags={"kind": "report"})
    client = MlflowClient(store["uri"])
    assert client.get_run(started.run_id).info.status == "FINISHED"  # nothing stays active
    before = len(client.search_model_versions(f"name = '{tr.REGISTERED_MODEL}'"))
    again = tr.log_training(trained["result"], trained["written"], data=trained["data"], run_id=started.run_id)
    assert again.run_id == started.run_id and again.experiment_id == started.experiment_id
    assert again.model_version == trained["run"].model_version  # same SHA-256: no new version
    assert len(client.search_model_versions(f"name = '{tr.REGISTERED_MODEL}'")) == before
    got = client.get_run(started.run_id)
    assert got.data.tags["kind"] == "training" and got.data.params["models"] == "logreg"
    assert "holdout_roc_auc" in got.data.metrics
    names = {a.path for a in client.list_artifacts(started.run_id, "training")}
    assert "training/metrics.json" in names and "training/reference.parquet" not in names
    assert "limit" in got.data.tags["reference_not_logged"]


def test_challenger_alias_promotion_and_decision_history(store, trained, tmp_path):
    champion_v = tr.alias_version(tr.CHAMPION)
    champion = ChurnModel.load(trained["written"]["artifact"])
    fresh, holdout = _table(300, 3), _table(200, 4)
    result = mon.challenge(champion, fresh, fresh["is_churned"], holdout, holdout["is_churned"],
                           groups_train=fresh["user_id"], groups_holdout=holdout["user_id"], n_bootstrap=50)
    path = mon.save_challenger(result, tmp_path / "challenger", metadata={"when": "2019-02-01"})
    version = tr.register_challenger(path)
    assert version != champion_v
    assert tr.alias_version(tr.CHALLENGER) == version and tr.alias_version(tr.CHAMPION) == champion_v
    assert tr.find_version(sha256_file(path)) == version
    client = MlflowClient(store["uri"])
    assert client.get_model_version(tr.REGISTERED_MODEL, version).tags["kind"] == "challenger"
    # the challenger's model answers like the ChurnModel it was saved from
    probe = _table(50, 5)
    np.testing.assert_array_equal(
        np.asarray(mlflow.pyfunc.load_model(f"models:/{tr.REGISTERED_MODEL}@{tr.CHALLENGER}").predict(probe)),
        ChurnModel.load(path).churn_probability(probe))

    tr.promote(version)
    assert tr.alias_version(tr.CHAMPION) == version
    with pytest.raises(tr.TrackingError, match="promoting version 999"):
        tr.promote("999")
    record = result.record("2019-02-01")
    first = tr.log_decision(record, champion_version=champion_v, challenger_version=version, promoted=True)
    assert first.model_version == version
    kept = tr.log_decision({**record, "when": "2019-03-01", "decision": "kept"}, champion_version=version,
                           challenger_version=champion_v, promoted=False)
    assert kept.model_version == version
    history = tr.decision_history()
    assert list(history["run_id"]) == [first.run_id, kept.run_id]
    assert list(history["promoted"]) == [True, False]
    assert list(history["when"]) == ["2019-02-01", "2019-03-01"]
    assert list(history["challenger_version"]) == [version, champion_v]
    row = history.iloc[0]
    assert (row["champion"], row["champion_low"], row["champion_high"]) == pytest.approx(record["champion"])
    assert row["difference"] == pytest.approx(record["difference"][0]) and row["metric"] == record["metric"]
    assert client.get_run(first.run_id).data.tags["kind"] == "decision"


def test_report_artifacts_and_key_numbers(store, trained, tmp_path):
    run = tr.start_run(run_name="report")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "roc.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "index.html").write_text("<html>index</html>")
    tr.log_report(run.run_id, figures_dir=tmp_path / "figures", reports_dir=tmp_path / "reports",
                  key_numbers={"Holdout ROC-AUC": "0.712 (0.690–0.735)", "Signal detected": "yes"})
    client = MlflowClient(store["uri"])
    assert {a.path for a in client.list_artifacts(run.run_id, "figures")} == {"figures/roc.png"}
    assert {a.path for a in client.list_artifacts(run.run_id, "reports")} == {"reports/index.html"}
    tags = client.get_run(run.run_id).data.tags
    assert tags["key.Holdout ROC-AUC"] == "0.712 (0.690–0.735)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with its own store, started early (it takes 10-20 s to come up,
    meanwhile the other tests run) and stopped at the end of the module (its whole process group)."""
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp / 's.db'}",
           "--artifacts-destination", str(tmp / "art")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job-runner processes
    with open(tmp / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=env, start_new_session=True)
    try:
        yield {"proc": proc, "uri": f"http://127.0.0.1:{port}", "tmp": tmp}
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # the server and the uvicorn worker it started
            try:
                proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue


def _wait_until_up(server: dict, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{server['uri']}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if server["proc"].poll() is not None or time.monotonic() > deadline:
            pytest.fail("mlflow server did not answer within "
                        f"{seconds:.0f} s: {(server['tmp'] / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)


def test_a_server_uri_from_the_environment(server, trained, monkeypatch):
    """A real `mlflow server` on 127.0.0.1: a training run logged through it and read back."""
    _wait_until_up(server)
    uri = server["uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tr.check_store() == uri
    run = tr.log_training(trained["result"], trained["written"], data=trained["data"])
    assert run.tracking_uri == uri and run.link().startswith(f"{uri}/#/experiments/")
    client = MlflowClient(uri)
    got = client.get_run(run.run_id)
    assert got.data.params["data_fingerprint"] == data_fingerprint(trained["data"])
    assert got.data.metrics["holdout_roc_auc"] == pytest.approx(trained["result"].holdout.loc["roc_auc", "value"])
    assert str(client.get_model_version_by_alias(tr.REGISTERED_MODEL, tr.CHAMPION).version) == run.model_version
    frame = _table(40, 6)
    np.testing.assert_array_equal(
        np.asarray(mlflow.pyfunc.load_model(run.model_uri).predict(frame)),
        ChurnModel.load(trained["written"]["artifact"]).churn_probability(frame))
    assert any((server["tmp"] / "art").rglob("churn_model.joblib"))  # uploaded through the server
