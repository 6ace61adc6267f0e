"""churnlib: churn analysis and reporting for music-streaming event logs and snapshot tables."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ChurnModel", "__version__"]


def __getattr__(name: str):
    # `from churnlib import ChurnModel` without importing scikit-learn for every `import churnlib.x`
    if name == "ChurnModel":
        from churnlib.model import ChurnModel

        return ChurnModel
    raise AttributeError(f"module 'churnlib' has no attribute {name!r}")
