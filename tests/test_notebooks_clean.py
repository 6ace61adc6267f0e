"""Committed notebooks carry no outputs, and every pipeline notebook is parameterised for papermill."""
from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _committed_notebooks() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True)
        files = [ROOT / line for line in out.stdout.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: check what is on disk
        files = []
    return files or sorted((ROOT / "notebooks").glob("*.ipynb"))


NOTEBOOKS = _committed_notebooks()


def test_there_are_pipeline_notebooks():
    assert any(p.name[:2].isdigit() for p in NOTEBOOKS), "no numbered notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `make strip-notebooks`"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2].isdigit()], ids=lambda p: p.name)
def test_pipeline_notebook_is_parameterised(path: Path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters'"
    assert "output_dir" in tagged[0].source, f"{path.name}: the parameters cell must declare output_dir"
    assert nb.metadata.get("kernelspec", {}).get("name") == "churnlib"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2].isdigit()], ids=lambda p: p.name)
def test_papermill_sees_every_parameter(path: Path):
    # papermill silently skips lines it cannot parse (e.g. a comment containing "="), and then never
    # injects that parameter: every assignment in the cell must be visible to it.
    import ast

    import papermill

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assigned = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert assigned == set(papermill.inspect_notebook(str(path)))
