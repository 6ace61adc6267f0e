"""The report pipeline: papermill execution, hidden code, the index, and a failure that keeps old reports."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from churnlib.report import NotebookFailed, run_report, strip_outputs

ROOT = Path(__file__).resolve().parents[1]


def _write_nb(path: Path, cells: list[str], params: str = "data = None\noutput_dir = None") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Report {path.stem}"),
                nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
                *[nbformat.v4.new_code_cell(src) for src in cells]]
    nb.metadata["kernelspec"] = {"name": "churnlib", "display_name": "Python (churnlib)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def tiny_log(tmp_path: Path) -> Path:
    rows = [{"ts": 1538388000000 + i * 60_000, "userId": str(i % 2 + 1), "sessionId": 1, "page": "NextSong",
             "itemInSession": i, "auth": "Logged In", "level": "free"} for i in range(6)]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    _write_nb(root / "notebooks" / "01_first.ipynb", [
        "hidden_marker = 41 + 1\nprint('the answer is', hidden_marker)",
        "import matplotlib.pyplot as plt\nfrom churnlib import plotting, report\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2, 3]); plotting.savefig(fig, 'first_plot', output_dir)\n"
        "report.record_key_numbers({'Answer': hidden_marker}, '01_first', output_dir)",
    ])
    _write_nb(root / "notebooks" / "02_second.ipynb", ["print('data is', data)"])
    (root / "reports").mkdir()
    (root / "reports" / "README.md").write_text("kept")
    return root


def test_run_publishes_reports_with_code_hidden(project: Path, tiny_log: Path):
    messages: list[str] = []
    result = run_report(None, tiny_log, root=project, log=messages.append)

    index = (project / "reports" / "index.html").read_text()
    assert result.fingerprint[:16] in index
    assert "Answer" in index and ">42<" in index
    for href in re.findall(r'href="([^"]+)"', index):  # every link resolves
        assert (project / "reports" / href).exists(), href

    first = (project / "reports" / "01_first.html").read_text()
    assert "the answer is 42" in first
    assert "hidden_marker = 41" not in first  # code cells are hidden from stakeholders
    assert "data:image/png;base64" in first  # images embedded: the file can be mailed
    second = (project / "reports" / "02_second.html").read_text()
    assert f"data is {tiny_log.resolve()}" in second  # papermill injected the data path
    assert (project / "figures" / "first_plot.png").exists()
    assert (project / "reports" / "executed" / "02_second.ipynb").exists()
    assert (project / "reports" / "README.md").read_text() == "kept"
    assert any("[1/2] 01_first" in m for m in messages) and any("[2/2] 02_second" in m for m in messages)
    assert not list(project.glob(".staging-report-*"))


def test_failing_notebook_stops_and_keeps_previous_reports(project: Path, tiny_log: Path):
    run_report(None, tiny_log, root=project, log=lambda m: None)
    before = {p: p.read_bytes() for p in (project / "reports").rglob("*") if p.is_file()}
    before_fig = (project / "figures" / "first_plot.png").read_bytes()

    _write_nb(project / "notebooks" / "02_second.ipynb", ["raise ValueError('boom-marker')"])
    with pytest.raises(NotebookFailed) as err:
        run_report(None, tiny_log, root=project, log=lambda m: None)
    assert "02_second" in str(err.value) and "ValueError" in str(err.value) and "boom-marker" in str(err.value)
    after = {p: p.read_bytes() for p in (project / "reports").rglob("*") if p.is_file()}
    assert after == before
    assert (project / "figures" / "first_plot.png").read_bytes() == before_fig


def test_only_declared_parameters_are_injected(project: Path, tiny_log: Path, tmp_path: Path):
    config = tmp_path / "cfg.yaml"
    config.write_text("parameters:\n  not_declared: 1\nnotebooks:\n  02_second:\n    data: overridden\n")
    run_report(config, tiny_log, root=project, log=lambda m: None)
    nb = nbformat.read(project / "reports" / "executed" / "01_first.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "not_declared" not in injected.source and "data = " in injected.source
    assert "data is overridden" in (project / "reports" / "02_second.html").read_text()


def test_eda_notebook_runs_on_a_snapshot_table(tmp_path: Path, spotify_snapshot: Path):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "01_eda.ipynb", root / "notebooks")
    run_report(None, spotify_snapshot, root=root, log=lambda m: None)
    html = (root / "reports" / "01_eda.html").read_text()
    assert "Traceback" not in html
    assert "2,071 of 8,000" in html  # the churn rate with its counts
    numbers = json.loads((root / "reports" / "key_numbers" / "01_eda.json").read_text())
    assert numbers["Users"] == "8,000"
    assert (root / "figures" / "eda_churned_vs_retained.png").exists()


def test_strip_outputs(tmp_path: Path):
    path = _write_nb(tmp_path / "x.ipynb", ["print(1)"])
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[2].execution_count = 1
    nbformat.write(nb, path)
    assert strip_outputs([path]) == [path]
    cell = nbformat.read(path, as_version=4).cells[2]
    assert cell.outputs == [] and cell.execution_count is None
    assert strip_outputs([path]) == []
