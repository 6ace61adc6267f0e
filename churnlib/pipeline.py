"""The stages of a churnlib run, what each reads and writes, and the keys that say when a product is stale.

Each stage (one notebook, one concern) declares its inputs, the parameters that change its product and
the products it writes. A product is stamped with a *key*: the fingerprints of its inputs, a hash of its
parameters and the churnlib version, written beside it as ``<product>.key.json``. A later stage reuses a
product only when the key it would compute matches the stamped one; otherwise it rebuilds the product
(:func:`feature_table`) or stops with the mismatch named (:func:`require`). So running ``05_models``
with ``horizon_days=7`` after a 14-day ``02_features`` rebuilds 7-day features instead of training on
14-day labels.

=================  ======================  =========================================  ================================
stage              notebook                inputs (keyed)                             products
=================  ======================  =========================================  ================================
events             01_eda                  the data file, or the simulator's size     ``data/raw/simulated_*.parquet``
                                           and seed (and its code)
features           02_features             events; as_of, horizon_days,               ``data/processed/features.parquet``
                                           inactivity_days
feature_set        03_feature_validation   features (or the snapshot table)           ``data/processed/feature_set.json``
models             05_models               features, feature_set; training budget     ``models/churn_model.joblib``,
                                                                                      ``models/metrics.json``,
                                                                                      ``models/predictions.parquet``,
                                                                                      ``models/whatif.json`` (events)
explanations       06_explanations         models, features                           ``data/processed/risk_scores.parquet``,
                                                                                      ``data/processed/drivers.csv``
monitoring         07_monitoring           models, features                           ``data/processed/monitoring.json``
summary            09_summary              every product above                        the stakeholder report
=================  ======================  =========================================  ================================
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from churnlib import __version__, paths
from churnlib.features import build_features, observation_dates
from churnlib.files import atomic_write, write_json
from churnlib.load import data_fingerprint, load_events

__all__ = ["FEATURES_FILE", "STAGES", "FeatureProduct", "Stage", "StaleProductError", "feature_table",
           "key_path", "product_key", "read_key", "require", "stale_reason", "upstream_mismatch", "write_key",
           "write_product"]

#: The feature table's file name in ``data/processed/``.
FEATURES_FILE = "features.parquet"


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: the notebook that runs it, what it reads, what it writes."""

    name: str
    notebook: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    products: tuple[str, ...]


#: The stages in run order (see the module docstring).
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("events", "01_eda", ("data",), ("n_users", "days", "seed"), ("data/raw/simulated_*.parquet",)),
    Stage("features", "02_features", ("events",), ("as_of", "horizon_days", "inactivity_days"),
          (f"data/processed/{FEATURES_FILE}",)),
    Stage("feature_set", "03_feature_validation", ("features",), ("label_col",), ("data/processed/feature_set.json",)),
    Stage("models", "05_models", ("features", "feature_set"),
          ("models", "strategies", "n_splits", "n_repeats", "search_budget", "n_permutations", "seed"),
          ("models/churn_model.joblib", "models/metrics.json", "models/predictions.parquet", "models/whatif.json")),
    Stage("explanations", "06_explanations", ("models", "features"), (),
          ("data/processed/risk_scores.parquet", "data/processed/drivers.csv")),
    Stage("monitoring", "07_monitoring", ("models", "features"), ("scenarios",), ("data/processed/monitoring.json",)),
    Stage("summary", "09_summary", ("models", "explanations", "monitoring"), (), ()),
)}


class StaleProductError(ValueError):
    """A product exists but was made from other inputs or parameters than the ones asked for."""


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)  # 14 and 14.0 are the same horizon
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return _canonical(obj.item())
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def product_key(stage: str, inputs: Mapping[str, str | os.PathLike | None], params: Mapping[str, Any]) -> dict[str, Any]:
    """The key of a product: input fingerprints, parameters, churnlib version and their digest.

    Parameters
    ----------
    stage : str
        A name in :data:`STAGES`.
    inputs : mapping
        Input name -> a file or folder as a :class:`pathlib.Path` (fingerprinted by content,
        :func:`churnlib.load.data_fingerprint`), or an already computed fingerprint or digest (a ``str``,
        taken as it is: pass paths as ``Path`` objects).
    params : mapping
        The parameters that change the product (JSON-able; ``14`` and ``14.0`` are equal).

    Returns
    -------
    dict
        ``{"stage", "inputs", "params", "churnlib", "digest"}``.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {list(STAGES)}")
    prints = {}
    for name, value in inputs.items():
        if value is None:
            prints[name] = None
        elif isinstance(value, os.PathLike):  # a file or folder: fingerprinted by content
            prints[name] = data_fingerprint(value)
        else:
            prints[name] = str(value)
    body = {"stage": stage, "inputs": prints, "params": _canonical(dict(params)), "churnlib": __version__}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "digest": digest}


def key_path(product: str | os.PathLike) -> Path:
    """Where a product's key is stamped: ``<product>.key.json`` beside it."""
    product = Path(product)
    return product.with_name(product.name + ".key.json")


def write_key(product: str | os.PathLike, key: Mapping[str, Any]) -> Path:
    """Stamp ``product`` with ``key`` (written after the product itself)."""
    return write_json(key_path(product), dict(key))


def read_key(product: str | os.PathLike) -> dict[str, Any] | None:
    """The key stamped on ``product``; None when the product or its key is absent or unreadable."""
    path = key_path(product)
    if not Path(product).exists() or not path.exists():
        return None
    try:
        key = json.loads(path.read_text())
    except ValueError:
        return None
    return key if isinstance(key, dict) and "digest" in key else None


def stale_reason(product: str | os.PathLike, key: Mapping[str, Any]) -> str | None:
    """None when ``product`` carries ``key``; otherwise what differs, in words."""
    product = Path(product)
    if not product.exists():
        return f"`{product.name}` does not exist"
    have = read_key(product)
    if have is None:
        return f"`{product.name}` carries no key (written by another version or by hand)"
    if have.get("digest") == key.get("digest"):
        return None
    diffs = []
    for part in ("params", "inputs"):
        a, b = have.get(part) or {}, key.get(part) or {}
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                old, new = a.get(name), b.get(name)
                if part == "inputs":
                    old, new = (str(old)[:12] if old else old), (str(new)[:12] if new else new)
                    diffs.append(f"input {name} {old} -> {new}")
                else:
                    diffs.append(f"{name} {old} -> {new}")
    if have.get("stage") != key.get("stage"):
        diffs.append(f"stage {have.get('stage')} -> {key.get('stage')}")
    if have.get("churnlib") != key.get("churnlib"):
        diffs.append(f"churnlib {have.get('churnlib')} -> {key.get('churnlib')}")
    return f"`{product.name}` was made with other settings: " + ("; ".join(diffs) or "different key")


def write_product(product: str | os.PathLike, write: Any, key: Mapping[str, Any]) -> Path:
    """Write a product atomically and stamp it: its old key goes first, the new one last.

    Parameters
    ----------
    product : path-like
    write : callable or pandas.DataFrame
        ``write(tmp_path)``, or a table written as parquet (``.parquet``) or CSV (anything else).
    key : mapping
        Its :func:`product_key`.
    """
    product = Path(product)
    if isinstance(write, pd.DataFrame):
        frame = write
        write = ((lambda tmp: frame.to_parquet(tmp, index=False)) if product.suffix == ".parquet"
                 else (lambda tmp: frame.to_csv(tmp, index=False)))
    key_path(product).unlink(missing_ok=True)  # never an old key beside a new product
    atomic_write(product, write)
    write_key(product, key)
    return product


def upstream_mismatch(product: str | os.PathLike, input_name: str, expected: str | None) -> str | None:
    """Why ``product`` was not made from ``expected`` (e.g. the model in ``models/``); None when it was,
    or when either side is unknown (an unstamped product, nothing expected)."""
    key = read_key(product)
    if key is None or expected is None:
        return None
    have = (key.get("inputs") or {}).get(input_name)
    if have is None or have == expected:
        return None
    return (f"`{Path(product).name}` was made from another {input_name} ({str(have)[:12]}, now "
            f"{str(expected)[:12]}); re-run {STAGES[key['stage']].notebook}")


def require(product: str | os.PathLike, key: Mapping[str, Any]) -> Path:
    """``product`` when it carries ``key``; else :class:`StaleProductError` naming the mismatch."""
    why = stale_reason(product, key)
    if why is not None:
        raise StaleProductError(f"{why}; re-run stage {key.get('stage')!r} "
                                f"({STAGES[key['stage']].notebook}) with these settings")
    return Path(product)


# --------------------------------------------------------------------------------------------
# The features stage
# --------------------------------------------------------------------------------------------

@dataclass
class FeatureProduct:
    """A feature table with where it lives and the key it was made under.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per user and observation date (``userId``, ``as_of``, features, ``churned``).
    path : pathlib.Path
        ``data/processed/features.parquet`` under the output root.
    key : dict
        Its :func:`product_key`.
    reused : bool
        True when the stamped product was read instead of rebuilt.
    note : str
        Why it was rebuilt ("" when reused or built for the first time).
    dates : list of str
        The observation dates.
    """

    table: pd.DataFrame
    path: Path
    key: dict[str, Any]
    reused: bool
    note: str
    dates: list[str]

    @property
    def description(self) -> str:
        """One phrase for a notebook: what the table is and whether it was reused or rebuilt."""
        how = "reused (its key matches)" if self.reused else "built"
        text = (f"the feature table `{self.path.name}` ({len(self.dates)} observation dates, "
                f"{self.key['params']['horizon_days']}-day label window), {how}")
        return text + (f"; rebuilt because {self.note}" if self.note else "")


def feature_table(events_path: str | os.PathLike, *, as_of: list[str] | None = None, horizon_days: float = 14,
                  inactivity_days: float | None = None, strict: bool = False,
                  output_dir: str | os.PathLike | None = None, events: pd.DataFrame | None = None,
                  write: bool = True) -> FeatureProduct:
    """The features of an event log, reused from ``data/processed/`` when its key matches, else built.

    Parameters
    ----------
    events_path : path-like
        The event log (its content fingerprint enters the key).
    as_of : list of str, optional
        Observation dates (None: :func:`churnlib.features.observation_dates` of the log).
    horizon_days, inactivity_days : float
        Label window and optional inactivity churn (:func:`churnlib.features.build_features`).
    strict : bool
        Load the log in strict mode when building (a clean log gives the same table either way,
        so it is not part of the key).
    output_dir : path-like, optional
        Output root (:func:`churnlib.paths.output_root`).
    events : pandas.DataFrame, optional
        The log already loaded from ``events_path`` (saves reading it again).
    write : bool, default True
        Write a rebuilt table and its key (atomically: the table first, then its key).

    Returns
    -------
    FeatureProduct
    """
    path = paths.processed_data_dir(output_dir) / FEATURES_FILE
    params = {"as_of": list(as_of) if as_of else "auto", "horizon_days": horizon_days,
              "inactivity_days": inactivity_days}
    key = product_key("features", {"events": Path(events_path)}, params)
    why = stale_reason(path, key)
    if why is None:
        table = pd.read_parquet(path)
        dates = sorted(table["as_of"].dt.strftime("%Y-%m-%d").unique()) if len(table) else []
        return FeatureProduct(table, path, key, True, "", dates)
    if events is None:
        events = load_events(events_path, strict=strict).events
    dates = list(as_of) if as_of else observation_dates(events, horizon_days)
    table = build_features(events, dates, horizon_days=horizon_days, inactivity_days=inactivity_days)
    note = why if path.exists() else ""
    if write:
        write_product(path, table, key)
    return FeatureProduct(table, path, key, False, note, [str(d) for d in dates])
