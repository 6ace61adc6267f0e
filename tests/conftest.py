"""Fixtures shared by the test-suite.

MLflow: no test writes the project's tracking store; the root ``conftest.py`` points
``MLFLOW_TRACKING_URI`` at a session store in a temporary folder before any test or kernel starts.
Tracking is off inside each test here (:func:`_no_tracking_by_default`: it adds seconds to every training
run); the tracking tests turn it on themselves, and the notebooks that nbval runs track into the session
store. Tests that need another store (a server) set it with ``monkeypatch``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_tracking_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training in a test records no MLflow run unless the test turns tracking on (``tracking=True``, or
    ``monkeypatch.delenv("CHURNLIB_TRACKING")``)."""
    monkeypatch.setenv("CHURNLIB_TRACKING", "0")
SHARED_DATA = ROOT.parent / "shared" / "data"

EVENT_SAMPLE = SHARED_DATA / "sparkify_events_2018-11_sample.ndjson.gz"
MINI_USER_FEATURES = SHARED_DATA / "sparkify_mini_user_features.csv.gz"
SPOTIFY_SNAPSHOT = SHARED_DATA / "spotify_churn_snapshot.csv.gz"


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data is not beside the clone)")
    return path


@pytest.fixture(scope="session")
def event_sample() -> Path:
    """The real Sparkify event sample (8,056 events)."""
    return _shared(EVENT_SAMPLE)


@pytest.fixture(scope="session")
def mini_user_features() -> Path:
    """Per-user aggregates of the real Sparkify mini log (225 users)."""
    return _shared(MINI_USER_FEATURES)


@pytest.fixture(scope="session")
def spotify_snapshot() -> Path:
    """The public Spotify churn snapshot table (8,000 users)."""
    return _shared(SPOTIFY_SNAPSHOT)


@pytest.fixture(scope="session")
def sim_log(tmp_path_factory) -> Path:
    """A small simulated event log (150 users x 45 days, seed 3), written once per session."""
    from churnlib.simulate import write_event_log

    path = tmp_path_factory.mktemp("log") / "sim.parquet"
    write_event_log(path, n_users=150, days=45, seed=3)
    return path


@pytest.fixture(scope="session")
def sim_trained(sim_log, tmp_path_factory):
    """A model trained on the event features of :func:`sim_log` as the pipeline trains it
    (``run_training`` on ``build_features``, CI-sized), saved once per session; returns
    ``(model folder, feature table)``. Tests copy the folder before changing anything in it."""
    from churnlib import features
    from churnlib.training import run_training

    table = features.build_features(sim_log, features.observation_dates(sim_log, 14), horizon_days=14)
    r = run_training(table, "userId", "churned", models=("logreg",), strategies=("none",), search_budget=0,
                     n_permutations=1, n_bootstrap=10)
    out = tmp_path_factory.mktemp("model")
    r.save(out)
    return out, table


@pytest.fixture(scope="session")
def dashboard_tree(sim_log, sim_trained, tmp_path_factory) -> Path:
    """What ``make report`` writes, made small by the project's own functions (tests/dashboard_tree.py),
    once per session, for the dashboard's tests; tests that change it copy it first."""
    from tests.dashboard_tree import build_products_tree

    model_dir, table = sim_trained
    return build_products_tree(tmp_path_factory.mktemp("dashboard-tree"), sim_log, model_dir, table)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (``local[2]``, bound to 127.0.0.1) for the whole test session, stopped at
    its end. Without Java 17 or PySpark the Spark tests skip with the install command; under ``CI=true``
    they fail instead, so a CI machine without Java cannot pass silently."""
    import os

    from churnlib.spark_session import get_spark, java_missing_reason, stop_spark

    reason = java_missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Spark tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    session = get_spark("local[2]")
    yield session
    stop_spark()
