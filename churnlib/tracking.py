"""Experiment tracking and the model registry (MLflow): every training run recorded, champion and
challenger by alias.

Only this module imports :mod:`mlflow` (about 2 s to import): the rest of churnlib imports it only
when tracking is on (:func:`tracking_enabled`).

Where runs go (:func:`tracking_uri`)
    ``$MLFLOW_TRACKING_URI`` when set (an MLflow server ``http://host:port``, or another store);
    otherwise an embedded store in the project: the SQLite database :data:`STORE_DB` and the
    artifact folder :data:`ARTIFACT_DIR` beside it. For any ``sqlite:///<folder>/<file>.db`` store the
    experiment keeps its artifacts in ``<folder>/mlartifacts`` (never in a ``./mlruns`` of the
    current folder); a server decides where its artifacts go.

What a training run holds (:func:`log_training`)
    Parameters (data path and fingerprint, id/label columns, data sizes, the training settings,
    churnlib and library versions, and any ``params`` the caller adds such as the horizon), metrics
    (CV and holdout ROC-AUC, PR-AUC, F1, precision, recall, Brier, top-decile lift, each with
    ``_low``/``_high`` bounds: ``holdout_roc_auc``, ``holdout_roc_auc_low`` ...; ``permutation_p``,
    ``threshold``), tags (``signal``, ``leakage_suspects``, ``chosen_model``, ``model_sha256``,
    ``model_version``, ``kind=training``), artifacts (``training/metrics.json``, the manifest, the
    training reference up to :data:`MAX_REFERENCE_BYTES`, ``training/candidates.csv``) and the model
    as an MLflow pyfunc model (:class:`ChurnPyfunc`) with a signature, registered as
    :data:`REGISTERED_MODEL` with the alias :data:`CHAMPION`.

The registry
    One registered model, :data:`REGISTERED_MODEL`; aliases :data:`CHAMPION` and :data:`CHALLENGER`.
    A version carries the tags ``model_sha256`` (the artifact's SHA-256), ``model_version`` (the
    short :attr:`churnlib.model.ChurnModel.version`), ``run_id`` and ``kind``. The same artifact
    (same SHA-256) is registered once: a later run that produces it points the alias at the version
    already there (:func:`find_version`) instead of storing the model again.
    :func:`register_challenger`, :func:`promote` and :func:`log_decision` record the monitoring
    notebook's challenge; :func:`decision_history` reads every decision back, across runs.

Failures
    Every public function raises :class:`TrackingError` (a ``ValueError``, so ``python -m churnlib``
    prints it in one line) naming the store and the step, with the cause chained. Nothing here
    writes or deletes churnlib's own outputs, so a failed tracking call never loses a saved model:
    callers log *after* saving and turn the error into a warning. :func:`check_store` answers in a
    second whether the store can be reached (an unreachable ``MLFLOW_TRACKING_URI`` server is refused
    before any training, not after it).

Runs are never left active across calls: :func:`start_run` creates a run and ends it; later calls
log into it by id (the ``make report`` run that notebooks log into).

Additions to the agreed interface: :class:`TrackingError`, :func:`check_store`,
:func:`alias_version`, :meth:`TrackedRun.link`; ``register_challenger``'s ``run_id`` may be None
(a run of its own is started).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

with warnings.catch_warnings():
    # mlflow imports tqdm.auto, which warns on a notebook's stderr when ipywidgets is absent (no bar is shown)
    warnings.filterwarnings("ignore", message="IProgress not found")
    importlib.import_module("tqdm.auto")
    import mlflow
    import mlflow.pyfunc
# Creating or migrating the store's tables is routine, not news for a report reader (it logs at INFO).
for _name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_name).setLevel(logging.WARNING)
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, Schema

from churnlib import __version__, paths
from churnlib.artifact import library_versions
from churnlib.files import jsonable, sha256_file
from churnlib.load import data_fingerprint
from churnlib.model import ChurnModel
from churnlib.models import comparison_table
from churnlib.paths import TRACKING_ENV, tracking_enabled  # re-exported: the switch lives where no MLflow import is needed

__all__ = ["ARTIFACT_DIR", "CHALLENGER", "CHAMPION", "EXPERIMENT", "MAX_REFERENCE_BYTES", "REGISTERED_MODEL",
           "STORE_DB", "TRACKING_ENV", "ChurnPyfunc", "TrackedRun", "TrackingError", "alias_version", "check_store",
           "decision_history", "find_version", "log_decision", "log_report", "log_training", "model_signature",
           "promote", "register_challenger", "start_run", "tracking_enabled", "tracking_uri"]

#: The MLflow experiment every churnlib run goes into.
EXPERIMENT = "churnlib"
#: The one registered model name.
REGISTERED_MODEL = "churnlib-churn"
#: Alias of the model in production, and of the refitted model that challenges it.
CHAMPION = "champion"
CHALLENGER = "challenger"
#: The embedded store at the project root (git-ignored): SQLite database and artifact folder.
STORE_DB = "mlruns.db"
ARTIFACT_DIR = "mlartifacts"
#: The training reference is logged with a run up to this size (a large one stays beside the model only).
MAX_REFERENCE_BYTES = 50_000_000
#: Environment switch: "0", "off", "false" or "no" turns tracking off.

_MODEL_NAME = "model"           # the logged model's name inside a run
_PARAM_MAX = 6000               # MLflow's limit on a parameter value
_TAG_MAX = 5000                 # well below MLflow's limit on a tag value
_ENV_DEFAULTS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",   # no progress bars in notebooks / CI logs
                 "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",          # a vanished server fails in seconds, not minutes
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
_DECISION_COLUMNS = ["run_id", "when", "champion_version", "challenger_version", "promoted", "decision", "metric",
                     "reason"]


class TrackingError(ValueError):
    """MLflow tracking failed: the store cannot be reached or refused a step.

    A ``ValueError``, so that ``python -m churnlib`` reports it in one line. The message names the
    tracking URI and the step.
    """


@dataclass
class TrackedRun:
    """Where a run (and its registered model) is.

    Attributes
    ----------
    run_id, experiment_id : str
    tracking_uri : str
        The store the run is in.
    model_version : str or None
        The registry version of the run's model (None when nothing was registered).
    model_uri : str or None
        ``"models:/churnlib-churn/<version>"`` (or the logged model's URI when not registered).
    url : str
        The run's path in the MLflow UI: ``"#/experiments/<id>/runs/<run_id>"`` (see :meth:`link`).
    """

    run_id: str
    experiment_id: str
    tracking_uri: str
    model_version: str | None = None
    model_uri: str | None = None
    url: str = ""

    def link(self, base: str | None = None) -> str:
        """The run's full UI address: ``base`` (default: the server when the store is one, else the
        local UI of ``make mlflow``, ``http://127.0.0.1:5000``) followed by :attr:`url`."""
        if base is None:
            server = self.tracking_uri.startswith(("http://", "https://"))
            base = self.tracking_uri if server else "http://127.0.0.1:5000"
        return f"{base.rstrip('/')}/{self.url}"


class _Trained(Protocol):
    """What :func:`log_training` reads of a :class:`churnlib.training.TrainingResult`."""

    model: ChurnModel
    signal_detected: bool
    candidates: list

    def metrics(self) -> dict[str, Any]: ...

    def signal_statement(self) -> str: ...


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------

def tracking_uri(root: str | os.PathLike | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` when set, else the embedded store ``sqlite:///<root>/mlruns.db``.

    Parameters
    ----------
    root : path-like, optional
        Folder of the embedded store (default: :func:`churnlib.paths.project_root`).
    """
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    folder = Path(root) if root is not None else paths.project_root()
    return f"sqlite:///{folder.resolve() / STORE_DB}"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory SQLite)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def _artifact_location(uri: str) -> str | None:
    """``<folder of the database>/mlartifacts`` as a file URI for a SQLite store; None otherwise."""
    db = _sqlite_file(uri)
    return (db.resolve().parent / ARTIFACT_DIR).as_uri() if db is not None else None


def check_store(root: str | os.PathLike | None = None, *, timeout: float = 5.0) -> str:
    """Check in a few seconds that the tracking store can be used; return its URI.

    A server URI must answer (any HTTP reply counts: ``/health`` is asked); a SQLite store's folder
    must exist. Call it before a long training so that a wrong ``MLFLOW_TRACKING_URI`` stops the work
    at once.

    Raises
    ------
    TrackingError
        The server does not answer, or the database's folder is missing.
    """
    uri = tracking_uri(root)
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                pass
        except urllib.error.HTTPError:
            pass  # it answered (a proxy or an authenticating server may refuse /health)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(
                f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer ({reason}): start it, "
                "unset MLFLOW_TRACKING_URI to use the local store, or turn tracking off "
                f"(--no-tracking, {TRACKING_ENV}=0)") from exc
    db = _sqlite_file(uri)
    if db is not None and not db.resolve().parent.is_dir():
        raise TrackingError(f"the MLflow store {uri}: its folder {db.resolve().parent} does not exist")
    return uri


@contextlib.contextmanager
def _store(root: str | os.PathLike | None, step: str) -> Iterator[tuple[MlflowClient, str]]:
    """A client on the store (fluent calls inside use it too), quiet, any failure a :class:`TrackingError`."""
    uri = check_store(root)
    # mlflow.set_tracking_uri/set_registry_uri also write these variables: all are put back afterwards
    saved_env = {k: os.environ.get(k) for k in (*_ENV_DEFAULTS, "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    try:
        for k, v in _ENV_DEFAULTS.items():
            os.environ.setdefault(k, v)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        quiet.setLevel(logging.ERROR)  # the cloudpickle notice on every log_model
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")
            yield MlflowClient(tracking_uri=uri, registry_uri=uri), uri
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every store failure becomes one clear message
        raise TrackingError(f"MLflow tracking failed while {step} (store {uri}): {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:1000]}") from exc
    finally:
        quiet.setLevel(level)
        mlflow.set_tracking_uri(None)  # back to "follow the environment", restored below
        mlflow.set_registry_uri(None)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _experiment_id(client: MlflowClient, uri: str) -> str:
    """The churnlib experiment's id, created on first use (artifacts beside a SQLite database)."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=_artifact_location(uri))
    except Exception:  # another process created it meanwhile
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            raise
        return exp.experiment_id


def _tracked(client: MlflowClient, uri: str, run_id: str, version: str | None = None,
             model_uri: str | None = None) -> TrackedRun:
    exp = client.get_run(run_id).info.experiment_id
    return TrackedRun(run_id=run_id, experiment_id=exp, tracking_uri=uri, model_version=version,
                      model_uri=model_uri, url=f"#/experiments/{exp}/runs/{run_id}")


def _new_run(client: MlflowClient, uri: str, run_name: str, tags: Mapping[str, Any] | None) -> str:
    run = client.create_run(_experiment_id(client, uri), run_name=run_name, tags=_tags(tags or {}))
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def start_run(*, run_name: str, root: str | os.PathLike | None = None,
              tags: Mapping[str, Any] | None = None) -> TrackedRun:
    """Create a run in the churnlib experiment and end it at once; later calls log into it by id.

    Parameters
    ----------
    run_name : str
    root : path-like, optional
        Folder of the embedded store (see :func:`tracking_uri`).
    tags : mapping, optional
        Run tags (values turned into text).
    """
    with _store(root, "starting a run") as (client, uri):
        return _tracked(client, uri, _new_run(client, uri, run_name, tags))


def alias_version(alias: str = CHAMPION, root: str | os.PathLike | None = None) -> str | None:
    """The registry version holding ``alias`` (None when the alias or the registered model is absent)."""
    with _store(root, f"reading the alias {alias!r}") as (client, _):
        try:
            return str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise


# --------------------------------------------------------------------------------------------
# The model as an MLflow model
# --------------------------------------------------------------------------------------------

class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """The pyfunc flavour of a :class:`~churnlib.model.ChurnModel`.

    ``mlflow.pyfunc.load_model(uri).predict(frame)`` gives the churn probability of each row, the same
    numbers as :meth:`ChurnModel.churn_probability` (extra columns are ignored). Loading needs
    churnlib installed; the model's artifact is verified (:meth:`ChurnModel.load`) before it is
    unpickled.
    """

    def load_context(self, context: Any) -> None:
        """Load and verify the ChurnModel artifact logged with the model."""
        self.model = ChurnModel.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.Series:
        """Churn probabilities of the rows of ``model_input`` (a Series named ``churn_probability``)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.Series(self.model.churn_probability(frame), index=frame.index, name="churn_probability")


def _column_type(feature: Mapping[str, Any]) -> str:
    """MLflow column type of a :func:`churnlib.model.feature_schema` entry (the training dtype)."""
    if feature.get("kind") != "numeric":
        return "string"
    dtype = str(feature.get("dtype", "float64")).lower()
    if "bool" in dtype:
        return "boolean"
    if dtype in ("int64", "uint32", "uint64"):
        return "long"
    if "int" in dtype:
        return "integer"
    return "float" if dtype == "float32" else "double"


def model_signature(model: ChurnModel) -> ModelSignature:
    """Inputs: the model's features with their training types; output: ``churn_probability`` (double)."""
    inputs = Schema([ColSpec(_column_type(f), f["name"]) for f in model.schema])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "churn_probability")]))


def _requirements() -> list[str]:
    versions = library_versions()
    reqs = [f"{lib}=={v}" for lib, v in versions.items() if lib != "python" and v]
    return reqs + [f"mlflow=={mlflow.__version__}"]


def _log_model(client: MlflowClient, uri: str, run_id: str, artifact: Path, model: ChurnModel, *,
               register: bool, alias: str, kind: str, tags: Mapping[str, Any]) -> tuple[str | None, str]:
    """Log ``artifact`` as a pyfunc model in ``run_id`` and register it under ``alias``.

    An artifact already registered (same SHA-256) is not stored again: the alias moves to its version.
    Returns (version or None, model URI).
    """
    sha = model.info.get("sha256") or sha256_file(artifact)
    if register:
        existing = _find_version(client, sha)
        if existing is not None:
            client.set_registered_model_alias(REGISTERED_MODEL, alias, existing)
            return existing, f"models:/{REGISTERED_MODEL}/{existing}"
    manifest = artifact.with_name(artifact.name.removesuffix(".joblib") + ".manifest.json")
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=_MODEL_NAME, python_model=ChurnPyfunc(),
            artifacts={"model": str(artifact), "manifest": str(manifest)},
            signature=model_signature(model), pip_requirements=_requirements(),
            metadata={"model_sha256": sha, "model_version": model.version, "churnlib": __version__})
    if not register:
        return None, info.model_uri
    version_tags = _tags({"model_sha256": sha, "model_version": model.version, "run_id": run_id, "kind": kind,
                          **tags})
    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # created meanwhile by another process
            client.create_registered_model(
                REGISTERED_MODEL, description="churnlib's churn model: alias 'champion' is the model in use, "
                                              "'challenger' the refitted model that challenged it last.")
    mv = client.create_model_version(REGISTERED_MODEL, source=info.model_uri, run_id=run_id, tags=version_tags,
                                     model_id=info.model_id)
    version = str(mv.version)
    client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
    return version, f"models:/{REGISTERED_MODEL}/{version}"


def _find_version(client: MlflowClient, sha: str) -> str | None:
    found = client.search_model_versions(f"name = '{REGISTERED_MODEL}' and tags.model_sha256 = '{sha}'")
    return str(min(int(v.version) for v in found)) if found else None


def find_version(model_sha256: str, root: str | os.PathLike | None = None) -> str | None:
    """The registry version whose artifact has this SHA-256 (tag ``model_sha256``), or None."""
    if not re.fullmatch(r"[0-9a-fA-F]{64}", model_sha256 or ""):
        raise TrackingError(f"not a SHA-256 digest: {model_sha256!r}")
    with _store(root, "searching the registry") as (client, _):
        return _find_version(client, model_sha256.lower())


# --------------------------------------------------------------------------------------------
# What a run records
# --------------------------------------------------------------------------------------------

def _text(value: Any, limit: int) -> str:
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(jsonable(value), sort_keys=True)
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _key(name: str) -> str:
    """A valid MLflow key: letters, digits, ``_-. /`` only."""
    return re.sub(r"[^\w\-. /]", "_", str(name)).strip() or "_"


def _tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {_key(k): _text(v, _TAG_MAX) for k, v in tags.items()}


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _interval_metrics(prefix: str, block: Mapping[str, Mapping[str, Any]] | None) -> dict[str, float]:
    """``{"<prefix>_<metric>": value, "<prefix>_<metric>_low": ..., "_high": ...}`` of a metrics block."""
    out = {}
    for metric, r in (block or {}).items():
        for part, suffix in (("value", ""), ("low", "_low"), ("high", "_high")):
            v = _number((r or {}).get(part))
            if v is not None:
                out[_key(f"{prefix}_{metric}{suffix}")] = v
    return out


def _log(client: MlflowClient, run_id: str, *, params: Mapping[str, Any] | None = None,
         metrics: Mapping[str, float] | None = None, tags: Mapping[str, Any] | None = None) -> None:
    now = int(time.time() * 1000)
    p = [Param(_key(k), _text(v, _PARAM_MAX)) for k, v in (params or {}).items()]
    m = [Metric(_key(k), float(v), now, 0) for k, v in (metrics or {}).items()]
    t = [RunTag(k, v) for k, v in _tags(tags or {}).items()]
    for i in range(0, max(len(p), len(m), len(t)), 100):  # MLflow's batch limit is 100 params / 1000 metrics
        client.log_batch(run_id, metrics=m[i:i + 100], params=p[i:i + 100], tags=t[i:i + 100])


def _training_params(metrics: Mapping[str, Any], data: str | os.PathLike | None,
                     extra: Mapping[str, Any] | None) -> dict[str, Any]:
    d, s, chosen = metrics.get("data", {}), metrics.get("settings", {}), metrics.get("chosen", {})
    fingerprint = d.get("fingerprint")
    if fingerprint is None and data is not None and Path(data).exists():
        fingerprint = data_fingerprint(data)
    params: dict[str, Any] = {
        "data": "" if data is None else str(data), "data_fingerprint": fingerprint,
        **{k: d.get(k) for k in ("id_col", "label_col", "rows", "rows_train", "rows_test", "users", "features",
                                 "split")},
        **{k: (",".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in s.items()},
        "chosen_params": chosen.get("params") or {}, "calibration": (chosen.get("calibration") or {}).get("method"),
        "threshold_rule": (chosen.get("threshold") or {}).get("rule"),
        "churnlib_version": __version__,
        **{f"lib.{k}": v for k, v in (metrics.get("versions") or library_versions()).items()},
    }
    params.update(extra or {})
    return {k: v for k, v in params.items() if v is not None}


def _training_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    chosen = metrics.get("chosen", {})
    out = {**_interval_metrics("cv", chosen.get("cv")), **_interval_metrics("holdout", chosen.get("holdout"))}
    perm = metrics.get("permutation_test") or {}
    for name, key in (("permutation_p", "p_value"), ("permutation_roc_auc_cv", "roc_auc_cv"),
                      ("permutation_mean_permuted_roc_auc", "mean_permuted_roc_auc")):
        if (v := _number(perm.get(key))) is not None:
            out[name] = v
    if (v := _number((chosen.get("threshold") or {}).get("value"))) is not None:
        out["threshold"] = v
    if (v := _number((chosen.get("calibration") or {}).get("brier_oof"))) is not None:
        out["brier_oof"] = v
    return out


def _candidate_table(result: _Trained) -> pd.DataFrame:
    """Every candidate's CV and holdout metrics (long: where, model, strategy, metric, value, low, high)."""
    parts = [comparison_table(result.candidates, where).assign(where=where) for where in ("cv", "holdout")]
    table = pd.concat(parts, ignore_index=True)
    return table[["where", "model", "strategy", "metric", "value", "low", "high"]]


def log_training(result: _Trained, written: Mapping[str, str | os.PathLike], *, data: str | os.PathLike | None,
                 run_id: str | None = None, root: str | os.PathLike | None = None,
                 params: Mapping[str, Any] | None = None, register: bool = True) -> TrackedRun:
    """Record a saved training: parameters, metrics, tags, artifacts and the model (registered as champion).

    Call it after :meth:`churnlib.training.TrainingResult.save`: the model logged is the artifact
    saved, so its SHA-256 is the one ``models/`` holds.

    Parameters
    ----------
    result : churnlib.training.TrainingResult
    written : dict of str to path
        What ``save`` returned (``artifact``, ``manifest``, ``metrics``, ``reference``, and
        ``quality`` from ``train_command``).
    data : path-like or None
        The table or log trained on (recorded with its fingerprint).
    run_id : str, optional
        Log into this run (the ``make report`` run); default: a new run named ``train``.
    root : path-like, optional
        Folder of the embedded store (see :func:`tracking_uri`).
    params : mapping, optional
        Further parameters (e.g. ``horizon_days``); they override those read from the result.
    register : bool, default True
        Register the model as :data:`REGISTERED_MODEL` and point :data:`CHAMPION` at it.

    Returns
    -------
    TrackedRun

    Raises
    ------
    TrackingError
        The store cannot be reached or refuses a step; the saved files are untouched.
    """
    written = {k: Path(v) for k, v in written.items()}
    if "artifact" not in written:
        raise TrackingError("log_training needs the saved artifact: `written` has no 'artifact' path")
    saved = json.loads(written["metrics"].read_text()) if "metrics" in written else {}
    metrics = {**result.metrics(), **{k: saved[k] for k in ("versions", "product_key") if k in saved}}
    if "fingerprint" in saved.get("data", {}):
        metrics["data"] = {**metrics.get("data", {}), "fingerprint": saved["data"]["fingerprint"]}
    model = ChurnModel.load(written["artifact"])  # the artifact as saved: verified, with its SHA-256
    chosen = metrics.get("chosen", {})
    suspects = metrics.get("data", {}).get("leakage_suspects_dropped") or []
    tags = {"kind": "training", "signal": "detected" if result.signal_detected else "not detected",
            "signal_statement": result.signal_statement(),
            "leakage_suspects": ", ".join(suspects) if suspects else "none",
            "chosen_model": f"{chosen.get('model')} / {chosen.get('strategy')}",
            "model_sha256": model.info.get("sha256"), "model_version": model.version,
            "mlflow.note.content": f"{result.signal_statement()}\n\nChosen: {chosen.get('reason', '')}"}
    with _store(root, "logging the training run") as (client, uri):
        rid = run_id or _new_run(client, uri, "train", {"kind": "training"})
        _log(client, rid, params=_training_params(metrics, data, params), metrics=_training_metrics(metrics),
             tags=tags)
        for key in ("metrics", "manifest", "reference", "quality"):
            if key not in written or not written[key].exists():
                continue
            size = written[key].stat().st_size
            if key == "reference" and size > MAX_REFERENCE_BYTES:  # its SHA-256 is in metrics.json
                client.set_tag(rid, "reference_not_logged", f"{size / 1e6:.0f} MB, over the "
                               f"{MAX_REFERENCE_BYTES / 1e6:.0f} MB limit; it stays in {written[key].parent}")
                continue
            client.log_artifact(rid, str(written[key]), "training")
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "candidates.csv"
            _candidate_table(result).to_csv(table, index=False)
            client.log_artifact(rid, str(table), "training")
        version, model_uri = _log_model(client, uri, rid, written["artifact"], model, register=register,
                                        alias=CHAMPION, kind="training",
                                        tags={"data_fingerprint": metrics.get("data", {}).get("fingerprint"),
                                              "chosen_model": tags["chosen_model"]})
        if version is not None:
            client.set_tag(rid, "registered_version", version)
        return _tracked(client, uri, rid, version, model_uri)


# --------------------------------------------------------------------------------------------
# Champion and challenger
# --------------------------------------------------------------------------------------------

def register_challenger(path_to_artifact: str | os.PathLike, *, run_id: str | None = None,
                        root: str | os.PathLike | None = None) -> str:
    """Log a saved challenger (:func:`churnlib.monitoring.save_challenger`) and give it the alias
    :data:`CHALLENGER`; return its registry version.

    Parameters
    ----------
    path_to_artifact : path-like
        The challenger's ``.joblib`` (or the folder holding ``churn_model.joblib``); verified first.
    run_id : str, optional
        The run to log it into (default: a new run named ``challenger``).
    root : path-like, optional
    """
    model = ChurnModel.load(path_to_artifact)
    artifact = Path(path_to_artifact)
    if artifact.suffix != ".joblib":
        artifact = artifact / "churn_model.joblib"
    with _store(root, "registering the challenger") as (client, uri):
        rid = run_id or _new_run(client, uri, "challenger", {"kind": "challenger"})
        client.set_tag(rid, "challenger_sha256", model.info.get("sha256"))
        version, _ = _log_model(client, uri, rid, artifact, model, register=True, alias=CHALLENGER,
                                kind="challenger", tags={"refit_of": model.info.get("refit_of")})
        client.set_tag(rid, "challenger_version", version)
        return str(version)


def promote(version: str, *, root: str | os.PathLike | None = None) -> None:
    """Point the alias :data:`CHAMPION` at registry ``version`` (the challenger that won)."""
    with _store(root, f"promoting version {version}") as (client, _):
        client.get_model_version(REGISTERED_MODEL, str(version))  # refuses a version that does not exist
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, str(version))
        client.set_model_version_tag(REGISTERED_MODEL, str(version), "promoted_at",
                                     pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"))


def _record_fields(record: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Numbers of a decision record as metrics (``[value, low, high]`` lists as three), text as tags."""
    metrics, tags = {}, {}
    for k, v in record.items():
        if isinstance(v, bool):
            tags[k] = str(v).lower()
        elif isinstance(v, (list, tuple)) and len(v) == 3 and all(_number(x) is not None or x is None for x in v):
            for x, suffix in zip(v, ("", "_low", "_high")):
                if (n := _number(x)) is not None:
                    metrics[f"{k}{suffix}"] = n
        elif (n := _number(v)) is not None and not isinstance(v, str):
            metrics[k] = n
        elif isinstance(v, str):
            tags[k] = v
    return metrics, tags


def log_decision(result_record: Mapping[str, Any], *, champion_version: str | None, challenger_version: str | None,
                 promoted: bool, root: str | os.PathLike | None = None) -> TrackedRun:
    """Log a champion/challenger decision as a run of its own, tagged ``kind=decision``.

    Parameters
    ----------
    result_record : mapping
        :meth:`churnlib.monitoring.ChallengeResult.record`: its numbers become metrics
        (``[value, low, high]`` as ``champion``, ``champion_low``, ``champion_high``), its text tags
        (``decision``, ``metric``, ``rule``, ``reason``, ``when``); the whole record is the artifact
        ``decision.json``.
    champion_version, challenger_version : str or None
        Registry versions compared.
    promoted : bool
        Whether the challenger replaced the champion (call :func:`promote` for the alias).

    Returns
    -------
    TrackedRun
        ``model_version``: the champion after the decision.
    """
    metrics, text = _record_fields(result_record)
    after = challenger_version if promoted else champion_version
    tags = {**text, "kind": "decision", "champion_version": champion_version or "",
            "challenger_version": challenger_version or "", "promoted": str(bool(promoted)).lower()}
    with _store(root, "logging the decision") as (client, uri):
        rid = _new_run(client, uri, "decision", {"kind": "decision"})
        _log(client, rid, metrics=metrics, tags=tags)
        client.log_dict(rid, jsonable(dict(result_record)), "decision.json")
        return _tracked(client, uri, rid, after, f"models:/{REGISTERED_MODEL}/{after}" if after else None)


def decision_history(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every logged decision, oldest first: run_id, when, champion_version, challenger_version, promoted,
    decision, metric, reason, and the record's numbers (e.g. ``champion``, ``champion_low``)."""
    with _store(root, "reading the decision history") as (client, uri):
        exp = client.get_experiment_by_name(EXPERIMENT)
        runs = [] if exp is None else client.search_runs(
            [exp.experiment_id], "tags.kind = 'decision'", order_by=["attributes.start_time ASC"], max_results=10000)
    rows = []
    for run in runs:
        t = run.data.tags
        row = {"run_id": run.info.run_id,
               "when": t.get("when") or pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat(),
               "champion_version": t.get("champion_version") or None,
               "challenger_version": t.get("challenger_version") or None,
               "promoted": t.get("promoted") == "true",
               **{k: t.get(k) for k in ("decision", "metric", "reason")}, **run.data.metrics}
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=_DECISION_COLUMNS + [c for c in frame.columns if c not in _DECISION_COLUMNS])


# --------------------------------------------------------------------------------------------
# The rendered report
# --------------------------------------------------------------------------------------------

def log_report(run_id: str, *, figures_dir: str | os.PathLike | None, reports_dir: str | os.PathLike | None,
               key_numbers: Mapping[str, Any] | None = None, root: str | os.PathLike | None = None) -> None:
    """Log the figures (``figures/``), the reports' index (``reports/index.html``) and the key numbers
    (``key_numbers.json``, and each as a tag ``key.<name>``) into ``run_id``."""
    with _store(root, "logging the report") as (client, _):
        if figures_dir is not None and Path(figures_dir).is_dir() and any(Path(figures_dir).iterdir()):
            client.log_artifacts(run_id, str(figures_dir), "figures")
        index = Path(reports_dir) / "index.html" if reports_dir is not None else None
        if index is not None and index.exists():
            client.log_artifact(run_id, str(index), "reports")
        if key_numbers:
            client.log_dict(run_id, jsonable(dict(key_numbers)), "key_numbers.json")
            _log(client, run_id, tags={f"key.{k}": v for k, v in key_numbers.items()})
