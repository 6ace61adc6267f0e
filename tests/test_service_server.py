"""A real server process: ``python -m churnlib serve`` on 127.0.0.1, called over HTTP, stopped and restarted.

Each server is a child process on a free port, polled on ``/health`` with a deadline, and always
stopped (Ctrl+C, then a kill if it does not end in time). The prediction store it writes survives a
restart: every earlier prediction is still there, and new ones are appended after them.
"""
from __future__ import annotations

import contextlib
import math
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pandas as pd
import pytest

from churnlib import scoring
from churnlib.model import ARTIFACT_NAME, ChurnModel
from churnlib.store import PredictionStore

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def model_dir(sim_trained) -> Path:
    """The session's model trained on event features of the simulated log (run_training, CI-sized)."""
    return sim_trained[0]


@pytest.fixture(scope="module")
def events(sim_log) -> pd.DataFrame:
    return pd.read_parquet(sim_log)


def _records(events: pd.DataFrame, users: list[str]) -> list[dict[str, Any]]:
    """The users' raw events as JSON objects (Sparkify schema, epoch-ms ``ts``; missing values as null)."""
    rows = events[events["userId"].isin(users)].to_dict("records")
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def _current_users(events: pd.DataFrame, n: int) -> list[str]:
    """Users with enough events who never cancelled (they get a prediction), busiest first."""
    gone = set(events.loc[events["page"] == "Cancellation Confirmation", "userId"])
    counts = events[events["userId"].ne("") & ~events["userId"].isin(gone)].groupby("userId").size()
    return list(counts[counts >= 30].sort_values(ascending=False).index[:n])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _serve_cmd(model: Path, port: int, store: Path | None) -> list[str]:
    return [sys.executable, "-m", "churnlib", "serve", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), *(["--store", str(store)] if store else ["--no-store"])]


@contextlib.contextmanager
def _server(model: Path, store: Path, logs: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """Start ``python -m churnlib serve``, wait for ``/health``, yield a client; always stop the process."""
    port = _free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"serve-{port}.out", logs / f"serve-{port}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(_serve_cmd(model, port, store), stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + START_DEADLINE_S
            while True:
                assert proc.poll() is None, f"server exited {proc.returncode}: {err_path.read_text()}"
                try:
                    if client.get("/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"no answer on {base}/health within {START_DEADLINE_S:.0f} s"
                time.sleep(0.2)
            yield client, out_path
        proc.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn shuts down gracefully
        assert proc.wait(timeout=STOP_DEADLINE_S) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_DEADLINE_S)
    assert not _listening(port)


def test_a_real_server_answers_and_its_store_survives_a_restart(model_dir, events, sim_log, tmp_path):
    model = ChurnModel.load(model_dir)
    store = tmp_path / "predictions.sqlite"
    users = _current_users(events, 6)
    assert len(users) == 6

    with _server(model_dir, store, tmp_path / "logs") as (client, out_path):
        announced = out_path.read_text()
        assert f"serving model {model.version} on http://127.0.0.1:" in announced
        assert "/docs" in announced and str(store) in announced
        health = client.get("/health").json()
        assert health["model_version"] == model.version

        one = client.post("/predict", json={"events": _records(events, users[:1])})
        assert one.status_code == 200, one.text
        answer = one.json()
        assert answer["userId"] == users[0] and answer["model_version"] == model.version
        assert 0 <= answer["churn_probability"] <= 1
        assert answer["churn_pred"] == int(answer["churn_probability"] >= model.threshold)

        batch = client.post("/predict/batch", json={"events": _records(events, users[1:4]), "as_of": "2018-11-10"})
        assert batch.status_code == 200, batch.text
        served = batch.json()["predictions"]
        assert sorted(p["userId"] for p in served) == sorted(users[1:4])

        bad = client.post("/predict", json={"events": [{"userId": "x", "ts": "not a time", "page": "Home"}]})
        assert bad.status_code == 422 and "Traceback" not in bad.text

    # parity: the server and `score --events` give the same probabilities for the same users and date
    events[events["userId"].isin(users[1:4])].to_parquet(tmp_path / "three.parquet", index=False)
    cli = scoring.score_command(model_dir, events=tmp_path / "three.parquet", out=tmp_path / "risk.csv",
                                as_of="2018-11-10", reasons=False).set_index("userId")["churn_probability"]
    for p in served:
        assert p["churn_probability"] == pytest.approx(cli[p["userId"]], abs=1e-12)

    with PredictionStore(store, readonly=True) as st:
        first = st.read()
    assert len(first) == 4  # one /predict, three in the batch; the refused request stored nothing
    assert first["user_id"].iloc[0] == users[0] and sorted(first["user_id"].iloc[1:]) == sorted(users[1:4])
    assert set(first["model_version"]) == {model.version}
    stored = first.set_index("user_id")["churn_probability"]
    assert stored[users[0]] == pytest.approx(answer["churn_probability"], abs=1e-12)
    for p in served:
        assert stored[p["userId"]] == pytest.approx(p["churn_probability"], abs=1e-12)

    with _server(model_dir, store, tmp_path / "logs") as (client, _):
        again = client.post("/predict/batch", json={"events": _records(events, users[3:6])})
        assert again.status_code == 200, again.text
        assert len(again.json()["predictions"]) == 3

    with PredictionStore(store, readonly=True) as st:
        after = st.read()
    assert len(after) == len(first) + 3
    pd.testing.assert_frame_equal(after.head(len(first)).reset_index(drop=True), first.reset_index(drop=True))
    assert sorted(after["user_id"].iloc[len(first):]) == sorted(users[3:6])


def test_a_tampered_artifact_stops_the_server_before_it_listens(model_dir, tmp_path):
    bad = tmp_path / "tampered"
    shutil.copytree(model_dir, bad)
    art = bad / ARTIFACT_NAME
    art.write_bytes(art.read_bytes() + b"\0")
    port = _free_port()
    t0 = time.monotonic()
    done = subprocess.run(_serve_cmd(bad, port, tmp_path / "p.sqlite"), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "SHA-256" in done.stderr and "Traceback" not in done.stderr
    assert "serving" not in done.stdout and not _listening(port)
    assert not (tmp_path / "p.sqlite").exists()  # refused before the store was opened
    assert time.monotonic() - t0 < 30
