"""What ``make report`` wrote, loaded for the dashboard (no Streamlit here).

:func:`load_products` reads the products of a report's output root (the folder holding ``data/``,
``models/`` and ``reports/``) into one :class:`Products`, tolerating missing pieces: each one missing is
named in plain words in :attr:`Products.missing` so that a page can say what to run instead of failing.
:func:`products_signature` is the cheap fingerprint (path, modification time, size of each product file)
the dashboard's cache is keyed on, so a new ``make report`` is picked up without a restart.
:func:`synthetic_products` writes a larger tree (20,000 scored users by default) from a real small one,
for the page-speed bench and tests.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnlib import paths
from churnlib.files import atomic_write, write_json
from churnlib.load import detect_kind
from churnlib.pipeline import FEATURES_FILE, key_path, read_key, upstream_mismatch, write_key

__all__ = ["DASHBOARD_ENV", "DEVICE_COLUMN", "LEVEL_COLUMN", "PRODUCT_FILES", "Products", "dashboard_root",
           "find_event_log", "load_products", "products_signature", "report_parameters", "synthetic_products"]

#: Environment variable naming the output root the dashboard reads (set by ``python -m churnlib dashboard``).
DASHBOARD_ENV = "CHURNLIB_DASHBOARD_DIR"

#: The product files the dashboard reads, relative to the output root, with their plain-words names.
PRODUCT_FILES: dict[str, str] = {
    "data/processed/risk_scores.parquet": "risk scores",
    f"data/processed/{FEATURES_FILE}": "feature table",
    "data/processed/drivers.csv": "drivers of churn risk",
    "data/processed/monitoring.json": "monitoring results",
    "models/churn_model.joblib": "model",
    "models/metrics.json": "model metrics",
    "reports/key_numbers/09_summary.json": "stakeholder summary's key numbers",
}
#: Files whose changes also change the signature (read when present, never required).
_OPTIONAL_FILES = ("data/processed/feature_set.json", "models/churn_model.manifest.json",
                   "models/predictions.parquet", "models/whatif.joblib", "models/whatif.json",
                   "reports/executed/02_features.ipynb")
#: Columns joined to the risk list from each user's latest feature row.
LEVEL_COLUMN = "level"
DEVICE_COLUMN = "device"
_SCORE_COLUMNS = ("churn_probability", "churn_label", "risk_band", "reason_1", "reason_2", "reason_3")


@dataclass(frozen=True)
class Products:
    """The products of one ``make report`` run, as the dashboard reads them.

    Attributes
    ----------
    root : pathlib.Path
        The output root (holding ``data/``, ``models/``, ``reports/``).
    risk : pandas.DataFrame
        ``risk_scores.parquet`` (id, ``churn_probability``, ``churn_label``, ``risk_band``,
        ``reason_1..3``), highest probability first, joined with :data:`LEVEL_COLUMN` (``"paid"`` /
        ``"free"``) and :data:`DEVICE_COLUMN` (the device type) from each user's latest feature row
        (missing values where the feature table has no such column). Empty when missing.
    features : pandas.DataFrame
        ``features.parquet``: every user at every observation date (empty when missing).
    drivers : pandas.DataFrame
        ``drivers.csv``: ``feature, mean_abs_shap, direction, meaning`` (empty when missing).
    monitoring : dict
        ``monitoring.json`` (empty when missing).
    metrics : dict
        ``models/metrics.json`` (empty when missing).
    key_numbers : dict of str to dict
        ``reports/key_numbers/<notebook>.json`` by notebook name (e.g. ``"09_summary"``).
    model_dir : pathlib.Path
        ``models/`` (load the model from it with :meth:`churnlib.model.ChurnModel.load`).
    events_path : pathlib.Path or None
        The event log the report read (:func:`find_event_log`); None for a snapshot table or when
        it cannot be found.
    id_col : str
        The user-id column.
    missing : tuple of str
        The products not found (or made by another model than the one in ``models/``), in plain words.
    kind : str
        ``"events"`` (an event log's report) or ``"snapshot"``.
    """

    root: Path
    risk: pd.DataFrame
    features: pd.DataFrame
    drivers: pd.DataFrame
    monitoring: dict
    metrics: dict
    key_numbers: dict[str, dict]
    model_dir: Path
    events_path: Path | None
    id_col: str
    missing: tuple[str, ...]
    kind: str = "events"

    @property
    def ok(self) -> bool:
        """True when the risk scores could be read (the pages' main product)."""
        return not self.risk.empty


def dashboard_root() -> Path:
    """The output root the dashboard reads: ``$CHURNLIB_DASHBOARD_DIR``, else
    :func:`churnlib.paths.output_root` (the project folder unless ``$CHURNLIB_OUTPUT_DIR`` is set)."""
    env = os.environ.get(DASHBOARD_ENV)
    return Path(env) if env else paths.output_root()


def products_signature(root: str | os.PathLike) -> tuple:
    """``(path, mtime_ns, size)`` of every product file under ``root`` (``None``s for an absent one).

    Cheap (``stat`` calls only): the dashboard's cache key, so that a new report is read again.
    """
    root = Path(root)
    files = [root / p for p in (*PRODUCT_FILES, *_OPTIONAL_FILES)]
    for folder in ("reports/key_numbers", "data/raw"):
        d = root / folder
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.is_file())
    out = []
    for p in files:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


def report_parameters(root: str | os.PathLike) -> dict[str, Any]:
    """The parameters the report ran ``02_features`` with: the notebook's defaults overridden by the
    values papermill injected (read from ``reports/executed/02_features.ipynb``; literals only,
    nothing is executed). Empty when the executed notebook is absent or unreadable."""
    nb_path = Path(root) / "reports" / "executed" / "02_features.ipynb"
    try:
        cells = json.loads(nb_path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return {}
    params: dict[str, Any] = {}
    for tag in ("parameters", "injected-parameters"):
        for cell in cells:
            if cell.get("cell_type") != "code" or tag not in cell.get("metadata", {}).get("tags", []):
                continue
            src = "".join(cell.get("source", []))
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        params[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue
    return params


def find_event_log(root: str | os.PathLike, params: dict[str, Any] | None = None) -> tuple[Path | None, str]:
    """The event log a report read, and its kind.

    The report's ``data`` parameter when it names a file (:func:`report_parameters`; relative paths
    are taken from the output root, the project folder, then the current folder), else the simulated default log
    ``data/raw/simulated_u<n_users>_d<days>_s<seed>_*.parquet`` (newest when several match; any
    ``data/raw/simulated_*.parquet`` when the parameters are unknown).

    Returns
    -------
    (path or None, kind)
        ``kind`` is ``"events"`` or ``"snapshot"`` (then ``path`` is None: a snapshot table has no
        activity log).
    """
    root = Path(root)
    params = report_parameters(root) if params is None else params
    data = params.get("data")
    if isinstance(data, str) and data:
        for cand in (root / data, paths.project_root() / data, Path(data)):
            if cand.exists():
                try:
                    kind = params.get("data_kind") or detect_kind(cand)
                except Exception:  # noqa: BLE001 - an unreadable file: no activity log, not a crash
                    return None, "events"
                return (cand, "events") if kind == "events" else (None, "snapshot")
        return None, "events"
    raw = root / "data" / "raw"
    if {"n_users", "days", "seed"} <= params.keys():
        pattern = f"simulated_u{params['n_users']}_d{params['days']}_s{params['seed']}_*.parquet"
    else:
        pattern = "simulated_*.parquet"
    found = sorted(raw.glob(pattern), key=lambda p: p.stat().st_mtime_ns) if raw.is_dir() else []
    return (found[-1] if found else None), "events"


def _read(path: Path, reader: Any, what: str, missing: list[str], empty: Any) -> Any:
    if not path.exists():
        missing.append(f"{what} (`{path.name}` was not written)")
        return empty
    try:
        return reader(path)
    except (OSError, ValueError) as exc:  # a half-written or foreign file: say so, do not fail
        missing.append(f"{what} (`{path.name}` could not be read: {type(exc).__name__})")
        return empty


def _model_sha(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "churn_model.manifest.json").read_text()).get("sha256")
    except (OSError, ValueError):
        return None


def _latest_rows(features: pd.DataFrame, id_col: str) -> pd.DataFrame:
    if features.empty or id_col not in features:
        return pd.DataFrame(columns=[id_col])
    if "as_of" in features:
        features = features.sort_values("as_of", kind="stable")
    return features.drop_duplicates(id_col, keep="last")


def _join_level_device(risk: pd.DataFrame, features: pd.DataFrame, id_col: str) -> pd.DataFrame:
    latest = _latest_rows(features, id_col)
    ids = latest[id_col].astype(str).to_numpy() if len(latest) else np.array([], dtype=object)
    if "level_paid" in latest:
        level = pd.Series(latest["level_paid"].map({1: "paid", 0: "free"}).to_numpy(), index=ids)
    elif "level" in latest:
        level = pd.Series(latest["level"].astype("string").to_numpy(), index=ids)
    else:
        level = pd.Series(dtype="object")
    device = (pd.Series(latest["device_type"].astype("string").to_numpy(), index=ids)
              if "device_type" in latest else pd.Series(dtype="object"))
    key = risk[id_col].astype(str)
    return risk.assign(**{LEVEL_COLUMN: key.map(level).astype("string").to_numpy(),
                          DEVICE_COLUMN: key.map(device).astype("string").to_numpy()})


def load_products(root: str | os.PathLike) -> Products:
    """Read the products ``make report`` wrote under ``root``; never fails on a missing piece.

    Risk scores and drivers made by another model than the one in ``models/`` (their key names the
    model they explain) are treated as missing, as the stakeholder summary treats them.

    Parameters
    ----------
    root : path-like
        The output root (holding ``data/``, ``models/``, ``reports/``).

    Returns
    -------
    Products
    """
    root = Path(root)
    processed, model_dir = root / "data" / "processed", root / "models"
    missing: list[str] = []
    if not (model_dir / "churn_model.joblib").exists():
        missing.append("model (`models/churn_model.joblib` was not written)")
    metrics = _read(model_dir / "metrics.json", lambda p: json.loads(p.read_text()), "model metrics", missing, {})
    sha = _model_sha(model_dir)
    fresh: dict[str, bool] = {}
    for name in ("risk_scores.parquet", "drivers.csv"):
        stale = upstream_mismatch(processed / name, "model", sha) if (processed / name).exists() else None
        fresh[name] = stale is None
        if stale:
            missing.append(f"{'risk scores' if name.startswith('risk') else 'drivers'} ({stale})")
    risk = (_read(processed / "risk_scores.parquet", pd.read_parquet, "risk scores", missing, pd.DataFrame())
            if fresh["risk_scores.parquet"] else pd.DataFrame())
    drivers = (_read(processed / "drivers.csv", pd.read_csv, "drivers of churn risk", missing, pd.DataFrame())
               if fresh["drivers.csv"] else pd.DataFrame())
    features = _read(processed / FEATURES_FILE, pd.read_parquet, "feature table", missing, pd.DataFrame())
    monitoring = _read(processed / "monitoring.json", lambda p: json.loads(p.read_text()), "monitoring results",
                       missing, {})
    key_numbers: dict[str, dict] = {}
    kn_dir = root / "reports" / "key_numbers"
    for p in sorted(kn_dir.glob("*.json")) if kn_dir.is_dir() else []:
        try:
            key_numbers[p.stem] = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    if "09_summary" not in key_numbers:
        missing.append("stakeholder summary's key numbers (`reports/key_numbers/09_summary.json` was not written)")

    id_col = (metrics.get("data") or {}).get("id_col") or "userId"
    if not risk.empty and id_col not in risk:
        id_col = next(c for c in risk.columns if c not in _SCORE_COLUMNS)
    if not risk.empty:
        risk = risk.sort_values(["churn_probability", id_col], ascending=[False, True], kind="stable")
        risk = _join_level_device(risk.reset_index(drop=True), features, id_col)
    events_path, kind = find_event_log(root)
    if kind == "events" and events_path is None:
        missing.append("event log (not found under `data/raw/`: the activity log cannot be shown)")
    return Products(root=root, risk=risk, features=features, drivers=drivers, monitoring=monitoring,
                    metrics=metrics, key_numbers=key_numbers, model_dir=model_dir, events_path=events_path,
                    id_col=id_col, missing=tuple(missing), kind=kind)


def synthetic_products(root: str | os.PathLike, n_users: int = 20_000, seed: int = 0, *,
                       source: str | os.PathLike | None = None) -> Path:
    """Write a products tree of ``n_users`` scored users, resampled from a real (small) report tree.

    For the page-speed bench and tests. The model, metrics, drivers, monitoring, key numbers and the
    event log are copied from ``source``; the risk scores and feature table are its users drawn with
    replacement (probabilities jittered, bands re-assigned by the model's thresholds), and the users
    who are not scored (they left before the latest date) in the same proportion, with all their
    feature rows. Copy ``k`` of a scored user gets the id ``<id>`` for the first draw and ``<id>~k``
    after it (``<id>~xk`` for the others), so the users with the original ids keep their activity log. The risk scores are stamped with the model's key (as the
    report stamps them) so that :func:`load_products` accepts them.

    Parameters
    ----------
    root : path-like
        Where to write (created; existing product files are replaced).
    n_users : int
        Scored users to write.
    seed : int
        Seed of the resampling.
    source : path-like, optional
        A report tree (default: the project's output root, :func:`churnlib.paths.output_root`).

    Returns
    -------
    pathlib.Path
        ``root``.

    Raises
    ------
    FileNotFoundError
        ``source`` lacks the risk scores or the feature table.
    """
    src = Path(source) if source is not None else paths.output_root()
    root = Path(root)
    prod = load_products(src)
    if prod.risk.empty or prod.features.empty:
        raise FileNotFoundError(f"{src} holds no risk scores or feature table: run `make report` first")
    for rel in ("models", "reports/key_numbers", "reports/executed"):
        if (src / rel).is_dir():
            shutil.copytree(src / rel, root / rel, dirs_exist_ok=True)
    (root / "data" / "processed").mkdir(parents=True, exist_ok=True)
    for rel in ("data/processed/drivers.csv", "data/processed/monitoring.json", "data/processed/feature_set.json"):
        for p in (src / rel, key_path(src / rel)):
            if p.exists():
                shutil.copy2(p, root / p.relative_to(src))
    if prod.events_path is not None:
        raw = root / "data" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        target = raw / prod.events_path.name
        if not target.exists():
            shutil.copy2(prod.events_path, target)
    rng = np.random.default_rng(seed)
    id_col = prod.id_col
    base = prod.risk.drop(columns=[LEVEL_COLUMN, DEVICE_COLUMN])
    pick = np.concatenate([np.arange(min(n_users, len(base))),
                           rng.integers(0, len(base), max(0, n_users - len(base)))])
    risk = base.iloc[pick].reset_index(drop=True)
    copy_no = pd.Series(pick).groupby(pick).cumcount().to_numpy()
    orig_ids = risk[id_col].astype(str).to_numpy()
    new_ids = np.where(copy_no == 0, orig_ids, [f"{i}~{k}" for i, k in zip(orig_ids, copy_no)])
    risk[id_col] = new_ids
    p = np.clip(risk["churn_probability"].to_numpy() + rng.normal(0, 0.01, len(risk)) * (copy_no > 0), 0, 1)
    risk["churn_probability"] = p
    manifest = json.loads((src / "models" / "churn_model.manifest.json").read_text())
    bands, threshold = manifest["risk_bands"], float(manifest["threshold"])
    risk["churn_label"] = (p >= threshold).astype("int64")
    risk["risk_band"] = np.where(p >= bands["high_from"], "high", np.where(p >= bands["medium_from"], "medium", "low"))
    risk = risk.sort_values(["churn_probability", id_col], ascending=[False, True], kind="stable")
    out = root / "data" / "processed" / "risk_scores.parquet"
    atomic_write(out, lambda tmp: risk.to_parquet(tmp, index=False))
    key = read_key(src / "data" / "processed" / "risk_scores.parquet")
    if key is not None:
        write_key(out, key)
    # every feature row of each drawn user, once per copy; users who are not scored (they cancelled
    # before the latest date) are drawn in the same proportion, so the churn rate per date stays real
    feats = prod.features.assign(_id=prod.features[id_col].astype(str))
    unscored = np.setdiff1d(feats["_id"].unique(), base[id_col].astype(str).to_numpy())
    n_extra = int(round(len(unscored) * n_users / len(base)))
    extra = unscored[rng.integers(0, len(unscored), n_extra)] if len(unscored) and n_extra else unscored[:0]
    extra_copy = pd.Series(extra).groupby(extra).cumcount().to_numpy()
    extra_ids = np.array([f"{i}~x{k}" for i, k in zip(extra, extra_copy)], dtype=object)
    users = pd.DataFrame({"_id": np.concatenate([orig_ids, extra]), "_new": np.concatenate([new_ids, extra_ids])})
    table = feats.merge(users, on="_id", how="inner").drop(columns=[id_col, "_id"]).rename(columns={"_new": id_col})
    table = table[[c for c in prod.features.columns]]
    atomic_write(root / "data" / "processed" / FEATURES_FILE, lambda tmp: table.to_parquet(tmp, index=False))
    write_json(root / "data" / "processed" / "synthetic.json",
               {"source": str(src), "n_users": int(n_users), "seed": int(seed)})
    return root
