"""Save and load the final model: a joblib file plus a JSON manifest that the loader checks first.

``<name>.joblib`` holds the fitted estimator; ``<name>.manifest.json`` holds everything else in
plain text -- the SHA-256 of the joblib file, library versions, threshold, risk bands, feature
schema, metrics and the input-data fingerprint. :func:`read_artifact` reads the manifest, checks the
file's hash and the library versions *before* unpickling, and refuses with :class:`ArtifactError`
when anything does not match.

The hash guards against corrupted, truncated or modified files and mismatched pairs; it is not a
signature (whoever can rewrite both files can forge it), so load artifacts only from folders you
trust: unpickling runs code.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib

from churnlib.files import atomic_write, jsonable, sha256_file

__all__ = ["Artifact", "ArtifactError", "FORMAT_VERSION", "library_versions", "manifest_path", "read_artifact",
           "save_artifact", "verified_manifest"]

#: Bumped when the manifest layout or the pickled classes change incompatibly
#: (2: the estimator is a pipeline or a churnlib.calibration.CalibratedClassifier).
FORMAT_VERSION = 2
#: Libraries whose pickles must be read by the same (major, minor) version.
PINNED_LIBRARIES = ("scikit-learn", "imbalanced-learn", "lightgbm", "xgboost", "numpy", "pandas", "joblib")
_DIST = {"xgboost": ("xgboost", "xgboost-cpu")}


class ArtifactError(ValueError):
    """A model artifact that cannot be trusted or used (tampered, incomplete, incompatible).

    A ``ValueError``, so that ``python -m churnlib`` reports it as bad input in one line.
    """


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries an artifact depends on (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for lib in PINNED_LIBRARIES:
        out[lib] = None
        for dist in _DIST.get(lib, (lib,)):
            try:
                out[lib] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest beside an artifact: ``<stem>.manifest.json`` for ``<stem>.joblib``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".joblib") + ".manifest.json")


def save_artifact(estimator, path: str | os.PathLike, *, threshold: float, risk_bands: dict[str, float],
                  feature_schema: list[dict[str, str]], id_col: str, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``estimator`` to ``path`` (``.joblib``) and its manifest beside it.

    Parameters
    ----------
    estimator
        Fitted classifier with ``predict_proba``.
    path : path-like
        Target ``.joblib`` file; the manifest is ``<stem>.manifest.json`` in the same folder.
    threshold : float
        Churn is predicted when the probability is at least this.
    risk_bands : dict
        ``{"medium_from": ..., "high_from": ...}``.
    feature_schema : list of dict
        ``[{"name": ..., "kind": "numeric" | "categorical"}, ...]`` in model input order.
    id_col : str
        The user-id column of the training table (scoring defaults to it).
    metadata : dict, optional
        Anything else for the manifest (metrics, data fingerprint, chosen model and why).

    Returns
    -------
    pathlib.Path
        The manifest's path.
    """
    path = Path(path)
    if path.suffix != ".joblib":
        raise ValueError(f"artifact file must end in .joblib: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: joblib.dump(estimator, tmp, compress=3))
    manifest = {
        "format_version": FORMAT_VERSION,
        "artifact": path.name,
        "sha256": sha256_file(path),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "threshold": float(threshold),
        "risk_bands": {k: float(v) for k, v in risk_bands.items()},
        "feature_schema": jsonable(feature_schema),
        "id_col": id_col,
        **jsonable(metadata or {}),
    }
    mpath = manifest_path(path)
    atomic_write(mpath, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2, allow_nan=False)))
    return mpath


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: the unpickled estimator and its manifest (see :class:`churnlib.model.ChurnModel`).

    Attributes
    ----------
    estimator
        The fitted classifier.
    manifest : dict
        Threshold, risk bands, feature schema, id column, metrics, data fingerprint, versions.
    path : pathlib.Path
        The ``.joblib`` file read.
    """

    estimator: Any
    manifest: dict[str, Any]
    path: Path


def _major_minor(v: str | None) -> tuple[str, ...] | None:
    return None if v is None else tuple(v.split(".")[:2])


def verified_manifest(path: Path, mpath: Path, *, format_version: int, check_versions: bool = True,
                      what: str = "model") -> dict:
    """The manifest of a pickled file, once the file has been checked against it, before any unpickling.

    Parameters
    ----------
    path, mpath : pathlib.Path
        The pickled file and its JSON manifest (``sha256``, ``format_version``, ``versions``).
    format_version : int
        The manifest format this churnlib reads.
    check_versions : bool, default True
        Refuse a file saved with other major.minor versions of :data:`PINNED_LIBRARIES`.
    what : str, default "model"
        What the file holds, in the messages.

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ArtifactError
        A missing file or manifest, an unreadable manifest, another format, a SHA-256 mismatch (the file
        was modified or corrupted), incompatible library versions.
    """
    if not path.is_file():
        raise ArtifactError(f"{what} file not found: {path}")
    if not mpath.is_file():
        raise ArtifactError(f"manifest not found: {mpath} (refusing to unpickle an unverified {what})")
    try:
        manifest = json.loads(mpath.read_text())
        expected = manifest["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"unreadable manifest {mpath}: {exc}") from None
    if manifest.get("format_version") != format_version:
        raise ArtifactError(f"{mpath}: manifest format {manifest.get('format_version')!r}, this churnlib "
                            f"reads format {format_version}; retrain the {what}")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"{path}: SHA-256 does not match the manifest (expected {expected[:16]}..., "
                            f"got {actual[:16]}...): the file was modified or corrupted; refusing to load it")
    if check_versions:
        here = library_versions()
        saved = manifest.get("versions", {})
        bad = [f"{lib} {saved.get(lib)} (installed {here.get(lib)})" for lib in PINNED_LIBRARIES
               if _major_minor(saved.get(lib)) != _major_minor(here.get(lib))]
        if bad:
            raise ArtifactError(f"{path}: saved with incompatible library versions: {', '.join(bad)}; "
                                f"retrain the {what} or install the versions it was saved with")
    return manifest


def read_artifact(path: str | os.PathLike, *, check_versions: bool = True) -> Artifact:
    """Load an artifact written by :func:`save_artifact`, refusing anything that does not verify.

    Parameters
    ----------
    path : path-like
        The ``.joblib`` file, its ``.manifest.json``, or a folder holding exactly one artifact.
    check_versions : bool, default True
        Refuse when a pinned library differs in (major, minor) version from the one that saved it.

    Returns
    -------
    Artifact

    Raises
    ------
    ArtifactError
        Missing file or manifest, unreadable manifest, hash mismatch (tampered or corrupted),
        incompatible library versions or manifest format.
    """
    path = Path(path)
    if path.is_dir():
        # The artifact is the .joblib with a manifest beside it: the models stage also writes the what-if
        # model (whatif.joblib, described by whatif.json), which is not a ChurnModel.
        found = sorted(p for p in path.glob("*.joblib") if manifest_path(p).is_file())
        if len(found) != 1:
            raise ArtifactError(f"{path}: expected exactly one .joblib artifact with its manifest, found {len(found)}")
        path = found[0]
    if path.name.endswith(".manifest.json"):
        path = path.with_name(path.name.removesuffix(".manifest.json") + ".joblib")
    mpath = manifest_path(path)
    manifest = verified_manifest(path, mpath, format_version=FORMAT_VERSION, check_versions=check_versions)
    for key in ("threshold", "risk_bands", "feature_schema"):  # an incomplete manifest is never unpickled
        if key not in manifest:
            raise ArtifactError(f"{mpath}: manifest lacks {key!r}; retrain the model")
    try:
        estimator = joblib.load(path)
    except Exception as exc:  # a verified file that still fails to unpickle: say so plainly
        raise ArtifactError(f"{path}: cannot unpickle the model: {type(exc).__name__}: {exc}") from None
    return Artifact(estimator=estimator, manifest=manifest, path=path)
