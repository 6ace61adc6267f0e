"""Where churnlib reads and writes: one place that knows the project layout.

Generated outputs (figures, reports, models, processed data) go under an *output root*: the project
folder by default, a staging folder while ``churnlib report`` renders (so a failed run never replaces a
good report), or ``$CHURNLIB_OUTPUT_DIR`` (the test-suite points it at a temporary folder so that
nbval runs do not overwrite what ``make report`` produced).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OUTPUT_ENV", "TRACKING_ENV", "figures_dir", "models_dir", "output_root", "processed_data_dir",
           "project_root", "raw_data_dir", "reports_dir", "tracking_enabled"]

OUTPUT_ENV = "CHURNLIB_OUTPUT_DIR"


def project_root() -> Path:
    """The repository folder (holding ``pyproject.toml``), else the current folder."""
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def output_root(output_dir: str | os.PathLike | None = None) -> Path:
    """Root for generated outputs: ``output_dir`` if given, else ``$CHURNLIB_OUTPUT_DIR``, else the project."""
    if output_dir is not None:
        return Path(output_dir)
    env = os.environ.get(OUTPUT_ENV)
    return Path(env) if env else project_root()


def _sub(name: str, output_dir: str | os.PathLike | None) -> Path:
    path = output_root(output_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Folder for saved figures (``figures/``)."""
    return _sub("figures", output_dir)


def reports_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Folder for rendered reports (``reports/``)."""
    return _sub("reports", output_dir)


def models_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Folder for model artifacts (``models/``)."""
    return _sub("models", output_dir)


def raw_data_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Folder for raw inputs, including the simulated default log (``data/raw/``)."""
    return _sub("data/raw", output_dir)


def processed_data_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Folder for derived tables (``data/processed/``)."""
    return _sub("data/processed", output_dir)


#: Environment switch for MLflow tracking (:mod:`churnlib.tracking`): "0", "off", "false" or "no" turn it off.
TRACKING_ENV = "CHURNLIB_TRACKING"
_OFF = {"0", "off", "false", "no"}


def tracking_enabled(flag: bool | None = None) -> bool:
    """Whether to track runs in MLflow: False when ``flag`` is False or ``$CHURNLIB_TRACKING`` is
    "0"/"off"/"false"/"no"; ``flag=True`` turns it on whatever the environment says; None (the
    default) follows the environment, on unless switched off. Here, not in :mod:`churnlib.tracking`,
    so that deciding costs no MLflow import."""
    if flag is not None:
        return bool(flag)
    return os.environ.get(TRACKING_ENV, "").strip().lower() not in _OFF
