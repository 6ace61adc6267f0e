"""pytest plugin: keep every notebook as nbval executed it, so that later tests read it, not re-run it.

nbval (``--nbval-lax``) runs a notebook cell by cell in one kernel, one test item per code cell, and keeps
each cell's outputs on its item but writes nothing. This plugin gathers those outputs and, once a
notebook's last cell has run, writes the executed notebook (outputs and execution counts) to
``<output root>/reports/executed/NN_name.ipynb``: where ``churnlib report`` puts it, beside the figures and
key numbers the notebook itself wrote under the same output root (the root ``conftest.py`` points it at
a temporary folder). The session-scoped fixture ``nbval_executed`` returns what this session executed.

Test modules that request ``nbval_executed`` run after every notebook (their items move to the end of
the session), so ``pytest tests notebooks --nbval-lax`` executes each notebook once: under nbval.
Loaded by the root ``conftest.py`` (``pytest_plugins``).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from churnlib import paths

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval not installed: no notebook is collected, nothing to keep
    IPyNbCell = ()

__all__ = ["NotebookRun", "nbval_executed"]

FIXTURE = "nbval_executed"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookRun:
    """One notebook as nbval executed it in this session."""

    source: Path
    executed: Path | None = None
    seconds: float = 0.0
    #: ``"Cell n: <last line of the error>"`` per code cell that failed or was skipped; empty when all passed.
    problems: list[str] = field(default_factory=list)
    outputs: dict[int, list] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return self.executed is not None and not self.problems


_RUNS = pytest.StashKey[dict]()  # notebook nodeid -> NotebookRun
_LAST = pytest.StashKey[set]()  # nodeids of each notebook's last cell


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUNS] = {}
    config.stash[_LAST] = set()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    last: dict[str, str] = {}
    for item in items:
        if isinstance(item, IPyNbCell):
            last[item.parent.nodeid] = item.nodeid
    config.stash[_LAST] = set(last.values())
    if not last:
        return
    # Whole modules move (their module-scoped fixtures, e.g. a browser, then start once), in their order.
    readers = {item.module for item in items if FIXTURE in getattr(item, "fixturenames", ())
               and getattr(item, "module", None) is not None}
    moved = [item for item in items if getattr(item, "module", None) in readers]
    if moved:
        items[:] = [item for item in items if getattr(item, "module", None) not in readers] + moved


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if isinstance(item, IPyNbCell):
        _record(item, report)
    return report


def _record(item: IPyNbCell, report: pytest.TestReport) -> None:
    runs = item.config.stash[_RUNS]
    run = runs.setdefault(item.parent.nodeid, NotebookRun(source=Path(str(item.parent.path))))
    run.seconds += report.duration
    if report.when == "call" and item.test_outputs is not None:
        run.outputs[item.cell_num] = item.test_outputs
    if report.failed or (report.skipped and report.when == "call"):
        lines = [line.strip() for line in _ANSI.sub("", report.longreprtext).splitlines() if line.strip()]
        run.problems.append(f"Cell {item.cell_num}: {lines[-1] if lines else report.outcome}")
    if report.when == "teardown" and item.nodeid in item.config.stash[_LAST]:
        run.executed = _write_executed(item.parent.nb, run)


def _write_executed(nb: nbformat.NotebookNode, run: NotebookRun) -> Path:
    """The notebook with the outputs nbval saw, in ``<output root>/reports/executed/``."""
    nb = copy.deepcopy(nb)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for n, cell in enumerate(code_cells):
        outputs = run.outputs.get(n)
        cell.execution_count = n + 1 if outputs is not None else None
        cell.outputs = copy.deepcopy(outputs or [])
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = cell.execution_count
            elif out.output_type == "display_data":
                out.pop("execution_count", None)
    nbformat.validate(nb)
    folder = paths.reports_dir() / "executed"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / run.source.name
    nbformat.write(nb, out)
    run.outputs.clear()
    return out


@pytest.fixture(scope="session")
def nbval_executed(request: pytest.FixtureRequest) -> dict[str, NotebookRun]:
    """Notebooks nbval ran to their last cell in this session, by file name (``"01_eda.ipynb"``).

    Empty when the session runs no notebook (e.g. ``pytest tests``). A notebook whose run stopped early
    (``-x``) is absent; one with a failing cell is present with ``passed`` false.
    """
    return {run.source.name: run for run in request.config.stash[_RUNS].values() if run.executed is not None}
