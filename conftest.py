"""Root pytest configuration, shared by tests/ and the nbval run over notebooks/.

Notebooks executed by nbval must not overwrite what `make report` produced, so their outputs
(figures, simulated data caches, summaries) go to a temporary folder. The kernel that nbval
starts inherits this environment variable.
"""
import os
import tempfile

os.environ.setdefault("CHURNLIB_OUTPUT_DIR", tempfile.mkdtemp(prefix="churnlib-test-out-"))
os.environ.setdefault("MPLBACKEND", "Agg")
