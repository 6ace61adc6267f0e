"""churnlib: churn analysis and reporting for music-streaming event logs and snapshot tables."""
from __future__ import annotations

__version__ = "0.1.0"
