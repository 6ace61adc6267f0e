"""The embedded default dataset: an event log from the built-in simulator, cached on disk.

Nothing is downloaded: ``make report`` and the notebooks' CI-sized defaults simulate a log with
:func:`churnlib.simulate.write_event_log` and reuse it while the simulator's code and the size/seed
stay the same.
"""
from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path

from churnlib import paths, simulate

__all__ = ["default_event_log"]


def _simulator_version() -> str:
    # The cache key includes the simulator's source, so a changed model never serves a stale log.
    return hashlib.sha256(inspect.getsource(simulate).encode()).hexdigest()[:10]


def default_event_log(
    n_users: int = 2000,
    days: int = 60,
    seed: int = 7,
    *,
    output_dir: str | os.PathLike | None = None,
) -> Path:
    """Path to the simulated default event log, generating it when not cached.

    Parameters
    ----------
    n_users, days, seed
        Size and seed of the simulated log.
    output_dir
        Output root (see :func:`churnlib.paths.output_root`); the log lands in its ``data/raw/``.

    Returns
    -------
    pathlib.Path
        A parquet file in the Sparkify schema.
    """
    out = paths.raw_data_dir(output_dir) / (
        f"simulated_u{n_users}_d{days}_s{seed}_{_simulator_version()}.parquet"
    )
    if not out.exists():
        simulate.write_event_log(out, n_users=n_users, days=days, seed=seed)
    return out
