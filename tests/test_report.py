"""The report pipeline: papermill execution, hidden code, the index, and a failure that keeps old reports."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from churnlib.report import NotebookFailed, kernel_config, run_report, strip_outputs

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


def test_run_publishes_reports_with_code_hidden(project: Path, tiny_log: Path, capfd: pytest.CaptureFixture):
    messages: list[str] = []
    result = run_report(None, tiny_log, root=project, log=messages.append)
    # the kernels' own log lines reach the terminal; a TCP kernel logs a transport warning per notebook
    assert "without encryption" not in capfd.readouterr().err

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


@pytest.mark.skipif(os.name == "nt", reason="no ipc transport on Windows")
def test_report_kernels_use_local_sockets(tmp_path: Path):
    settings = kernel_config(tmp_path, "01_eda").KernelManager
    assert settings.transport == "ipc" and settings.ip == str(tmp_path / "01_eda")


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


# ---------------------------------------------------------------------------------------------
# Stakeholder summary first in the index; self-contained HTML
# ---------------------------------------------------------------------------------------------

def _index_sections(index: str) -> list[str]:
    return re.findall(r'<section[^>]*>.*?<h2><a href="([^"]+)\.html"', index, flags=re.S)


def test_summary_is_listed_first_though_it_runs_last(project: Path, tiny_log: Path):
    _write_nb(project / "notebooks" / "09_summary.ipynb", ["print('summary body')"])
    _write_nb(project / "notebooks" / "01_first.ipynb", ["print('first body')"])
    messages: list[str] = []
    run_report(None, tiny_log, root=project, log=messages.append)
    assert any("[3/3] 09_summary" in m for m in messages)  # still runs last: it reads the others' outputs
    index = (project / "reports" / "index.html").read_text()
    assert _index_sections(index) == ["09_summary", "01_first", "02_second"]
    first_section = index[index.index("<section"):index.index("</section>")]
    assert "Start here" in first_section and "Summary for stakeholders" in first_section
    assert "Report 09_summary" in first_section  # the report's own title, not only its file name
    assert index.count("Start here") == 1


def test_index_first_config_key_sets_the_order(project: Path, tiny_log: Path, tmp_path: Path):
    config = tmp_path / "cfg.yaml"
    config.write_text("index_first: [02_second]\n")
    run_report(config, tiny_log, root=project, log=lambda m: None)
    index = (project / "reports" / "index.html").read_text()
    assert _index_sections(index) == ["02_second", "01_first"]


def test_index_order_without_a_summary_keeps_run_order():
    from churnlib.report import index_order
    nbs = [Path("01_a.ipynb"), Path("02_b.ipynb")]
    assert index_order(nbs) == nbs
    assert index_order(nbs + [Path("09_summary.ipynb")])[0] == Path("09_summary.ipynb")


def test_reports_fetch_nothing_from_the_network(project: Path, tiny_log: Path):
    from churnlib.report import external_resources
    _write_nb(project / "notebooks" / "03_third.ipynb", [
        "from IPython.display import Markdown, display\ndisplay(Markdown('$x^2$ shown'))",
    ])
    run_report(None, tiny_log, root=project, log=lambda m: None)
    for page in (project / "reports").glob("*.html"):
        text = page.read_text()
        assert external_resources(text) == [], page.name
        assert "cdnjs" not in text and "require.min.js" not in text
    # the detector itself finds what nbconvert's stock template pulls in
    assert external_resources('<script src="https://cdnjs.cloudflare.com/x.js"></script>')
    assert not external_resources('<a href="https://example.org">a link to click</a>')


def test_remove_input_keeps_the_output_and_remove_cell_drops_it(tmp_path: Path, tiny_log: Path):
    root = tmp_path / "proj"
    path = _write_nb(root / "notebooks" / "01_tags.ipynb", [])
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("print('kept-' + 'output')", metadata={"tags": ["remove-input"]}),
                 nbformat.v4.new_code_cell("print('dropped-' + 'output')", metadata={"tags": ["remove-cell"]})]
    nbformat.write(nb, path)
    run_report(None, tiny_log, root=root, log=lambda m: None)
    page = (root / "reports" / "01_tags.html").read_text()
    assert "kept-output" in page and "dropped-output" not in page
    assert "print(" not in page


def test_summary_notebook_reads_earlier_outputs_and_says_no_signal_first(tmp_path: Path, spotify_snapshot: Path):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    metrics = {"data": {"rows_test": 1600, "churn_rate_test": 0.26},
               "chosen": {"model": "logreg", "strategy": "none",
                          "holdout": {m: {"value": v, "low": v - 0.05, "high": v + 0.05} for m, v in
                                      {"precision": 0.27, "recall": 0.5, "lift_top_decile": 1.02, "roc_auc": 0.51}.items()}},
               "signal_detected": False,
               "signal_statement": "No detectable signal: holdout ROC-AUC 0.510 covers 0.5 (fixture)."}
    # an earlier notebook of the same run writes metrics.json and risk scores, as 05/06 do
    _write_nb(root / "notebooks" / "05_fake_models.ipynb", [
        "import json\nimport pandas as pd\nfrom churnlib import paths\n"
        f"(paths.models_dir(output_dir) / 'metrics.json').write_text(json.dumps({metrics!r}))\n"
        "pd.DataFrame({'user_id': ['secret-user-1', 'u2'], 'churn_probability': [0.9, 0.1], 'churn_label': [1, 0],"
        " 'risk_band': ['high', 'low'], 'reason_1': ['error_per_song', 'songs_7d'], 'reason_2': [None, None],"
        " 'reason_3': [None, None]}).to_parquet(paths.processed_data_dir(output_dir) / 'risk_scores.parquet')",
    ])
    shutil.copy(ROOT / "notebooks" / "09_summary.ipynb", root / "notebooks")
    run_report(None, spotify_snapshot, root=root, log=lambda m: None, id_col="user_id", label_col="is_churned")
    page = (root / "reports" / "09_summary.html").read_text()
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", page[page.index("<body"):], flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    assert "Traceback" not in text and "Error" not in text and "application/vnd.jupyter.stderr" not in body
    first_heading = re.search(r"<h2[^>]*>(.*?)</h2>", page, flags=re.S).group(1)
    assert "No detectable churn signal" in first_heading
    assert "covers 0.5 (fixture)" in text
    assert "secret-user-1" not in text  # no risk list presented as actionable
    assert "Not available in this run" in text  # drivers / monitoring were not written
    assert "2,071 of 8,000" in text  # churn rate with its counts, from the real table
    numbers = json.loads((root / "reports" / "key_numbers" / "09_summary.json").read_text())
    assert numbers["Signal detected"] == "no"
    index = (root / "reports" / "index.html").read_text()
    assert _index_sections(index)[0] == "09_summary"


def test_current_table_reaches_the_notebooks_that_declare_it(tmp_path: Path, tiny_log: Path):
    root = tmp_path / "proj"
    _write_nb(root / "notebooks" / "07_monitoring.ipynb", ["print('current is', current)"],
              params="data = None\ncurrent = None\noutput_dir = None")
    _write_nb(root / "notebooks" / "08_other.ipynb", ["print('no current here')"])
    later = tmp_path / "later.csv"
    later.write_text("user_id,x\n1,2\n")
    run_report(None, tiny_log, current=later, root=root, log=lambda m: None)
    assert f"current is {later.resolve()}" in (root / "reports" / "07_monitoring.html").read_text()
    with pytest.raises(FileNotFoundError, match="current table"):
        run_report(None, tiny_log, current=tmp_path / "absent.csv", root=root, log=lambda m: None)


def test_duration_column_reaches_the_notebooks_that_declare_it(tmp_path: Path, tiny_log: Path):
    root = tmp_path / "proj"
    _write_nb(root / "notebooks" / "10_retention.ipynb", ["print('tenure in', duration_col)"],
              params="data = None\nduration_col = None\noutput_dir = None")
    run_report(None, tiny_log, duration_col="tenure_days", root=root, log=lambda m: None)
    assert "tenure in tenure_days" in (root / "reports" / "10_retention.html").read_text()
    run_report(None, tiny_log, root=root, log=lambda m: None)
    assert "tenure in None" in (root / "reports" / "10_retention.html").read_text()


TRACKED_PARAMS = "data = None\nmlflow_run_id = None\ntracking = True\noutput_dir = None"
_SHOW_RUN = ("import os\nprint('run is', mlflow_run_id, '; tracking is', tracking)\n"
             "print('store is', os.environ.get('MLFLOW_TRACKING_URI'))")


def _tracked_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    _write_nb(root / "notebooks" / "05_models.ipynb", [
        _SHOW_RUN,
        "import matplotlib.pyplot as plt\nfrom churnlib import plotting, report\n"
        "fig, ax = plt.subplots(); ax.plot([1, 2]); plotting.savefig(fig, 'tracked_plot', output_dir)\n"
        "report.record_key_numbers({'Answer': 42}, '05_models', output_dir)"], params=TRACKED_PARAMS)
    _write_nb(root / "notebooks" / "06_untracked.ipynb", ["print('no tracking parameters here')"])
    return root


def test_a_tracked_run_is_one_mlflow_run_that_the_notebooks_and_the_index_name(
        tmp_path: Path, tiny_log: Path, monkeypatch: pytest.MonkeyPatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    root = _tracked_project(tmp_path)
    messages: list[str] = []
    result = run_report(None, tiny_log, root=root, tracking=True, log=messages.append)

    assert result.run_id and result.tracking_uri == uri
    page = (root / "reports" / "05_models.html").read_text()
    # injected into the notebook that declares it; the kernel logs into the runner's store
    assert f"run is {result.run_id} ; tracking is True" in page and f"store is {uri}" in page
    index = (root / "reports" / "index.html").read_text()
    assert f'<code class="run-id">{result.run_id}</code>' in index and result.run_url in index
    assert result.run_url.startswith("http://127.0.0.1:5000/#/experiments/")
    assert any(result.run_id in m for m in messages)

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert run.data.tags["kind"] == "report" and run.data.tags["data_fingerprint"] == result.fingerprint
    assert run.data.tags["key.05_models/Answer"] == "42"
    logged = {a.path for folder in ("figures", "reports") for a in client.list_artifacts(result.run_id, folder)}
    assert {"figures/tracked_plot.png", "reports/index.html"} <= logged
    assert os.environ["MLFLOW_TRACKING_URI"] == uri  # the kernels' setting did not leak into this process


def test_an_untracked_run_injects_tracking_off_and_records_nothing(
        tmp_path: Path, tiny_log: Path, monkeypatch: pytest.MonkeyPatch):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    root = _tracked_project(tmp_path)
    result = run_report(None, tiny_log, root=root, tracking=False, log=lambda m: None)
    assert result.run_id is None
    assert "run is None ; tracking is False" in (root / "reports" / "05_models.html").read_text()
    assert "Not recorded in MLflow" in (root / "reports" / "index.html").read_text()
    assert not (tmp_path / "mlruns.db").exists()


def test_an_unreachable_tracking_server_stops_the_report_before_any_notebook(
        tmp_path: Path, tiny_log: Path, monkeypatch: pytest.MonkeyPatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    root = _tracked_project(tmp_path)
    messages: list[str] = []
    with pytest.raises(ValueError, match=f"127.0.0.1:{port}.*does not answer"):
        run_report(None, tiny_log, root=root, tracking=True, log=messages.append)
    assert not any("05_models" in m for m in messages)
    assert not (root / "reports" / "index.html").exists()
