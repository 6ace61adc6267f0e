"""Root pytest configuration, shared by tests/ and the nbval run over notebooks/.

Notebooks executed by nbval must not overwrite what `make report` produced, so their outputs
(figures, simulated data caches, summaries) go to a temporary folder, and their MLflow runs to a
temporary store. The kernel that nbval starts inherits these environment variables.

Figures: the test process draws with matplotlib's Agg backend (no window, no display needed). That is
set here in-process, not through ``MPLBACKEND``: kernels inherit the environment, and a kernel with
``MPLBACKEND=Agg`` shows no inline figures. Left alone, nbval's and papermill's kernels render figures
inline as ``make report``'s do, so the notebooks nbval executed (kept by ``tests/nbval_executed.py``)
carry their figures and the browser test checks them. Importing streamlit (the dashboard's tests)
sets ``MPLBACKEND=Agg`` in the environment, so it is put back as it was before each notebook's kernel
starts (:func:`pytest_runtest_setup`).
"""
import os
import tempfile

import matplotlib

pytest_plugins = ["tests.nbval_executed", "pytester"]

os.environ.setdefault("CHURNLIB_OUTPUT_DIR", tempfile.mkdtemp(prefix="churnlib-test-out-"))
# No test or notebook run by pytest writes the project's MLflow store (mlruns.db) or a server a developer's
# MLFLOW_TRACKING_URI names: a session store in a temporary folder instead (kernels inherit it).
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp(prefix='churnlib-test-mlflow-')}/mlruns.db"
matplotlib.use("Agg")
_MPLBACKEND = os.environ.get("MPLBACKEND")


def pytest_runtest_setup(item) -> None:
    """Before a notebook cell (its kernel starts with the first), the environment's MPLBACKEND as it was."""
    if item.nodeid.split("::")[0].endswith(".ipynb"):
        if _MPLBACKEND is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = _MPLBACKEND
