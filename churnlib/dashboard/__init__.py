"""The retention dashboard: a Streamlit app over the products of ``make report``.

``python -m churnlib dashboard`` runs ``churnlib/dashboard/app.py`` with Streamlit. The app reads what
``make report`` wrote (model, risk scores, drivers, monitoring, feature table, the event log) and never
recomputes the pipeline when a page loads. The modules:

* :mod:`churnlib.dashboard.products` loads those products (no Streamlit);
* :mod:`churnlib.dashboard.cache` holds the ``st.cache_data`` / ``st.cache_resource`` wrappers pages use;
* :mod:`churnlib.dashboard.views` computes what pages 1-3 show (no Streamlit);
* :mod:`churnlib.dashboard.tools` computes what pages 4-6 show (no Streamlit);
* ``screens/*.py`` render, and ``app.py`` is the Streamlit entry point.

This package file imports no Streamlit, so the computations stay importable without it.
"""
from __future__ import annotations

__all__: list[str] = []
