"""The report pipeline: run the numbered notebooks with papermill and publish stakeholder HTML.

``python -m churnlib report`` (``make report``) executes ``notebooks/NN_*.ipynb`` in order, injecting the
full-size parameters of ``config/report.yaml`` (each notebook's own ``parameters`` cell keeps CI-sized
defaults for nbval). Everything renders into a staging folder first; only a run in which every notebook
succeeded replaces ``reports/`` and ``figures/``, so a failing notebook never leaves half a report.
The kernels talk over local sockets (:func:`kernel_config`), so no TCP port is opened and the log shows
only the per-notebook progress and times. :func:`export_html` and :func:`write_index` are the rendering
on their own: the test-suite renders the notebooks nbval executed with them.

With tracking on (the default; ``--no-tracking`` or ``CHURNLIB_TRACKING=0`` turns it off) a run is one
MLflow run (:mod:`churnlib.tracking`): started before the first notebook, its id injected into every
notebook that declares ``mlflow_run_id`` (``05_models`` logs the training and the model into it), the
figures and the index logged after publishing, and the index names the run.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnlib import paths

__all__ = [
    "KEY_NUMBERS_DIR", "PUBLISHED", "NotebookFailed", "RunResult", "discover_notebooks", "export_html",
    "external_resources", "index_order", "kernel_config", "load_config", "record_key_numbers", "report_title",
    "run_report", "strip_outputs", "write_index",
]

#: Folders under the output root that a successful run publishes.
PUBLISHED = ("reports", "figures", "models", "data/processed")
KEY_NUMBERS_DIR = "key_numbers"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(RuntimeError):
    """A notebook of the pipeline raised; the message names the notebook, the cell and the error."""


@dataclass
class RunResult:
    """What a report run produced."""

    index: Path
    data: str
    data_kind: str
    fingerprint: str
    seconds: dict[str, float] = field(default_factory=dict)
    #: The MLflow run this report is recorded in (None: tracking off).
    run_id: str | None = None
    #: Where to see that run in the MLflow UI (a full URL, or the local UI's after ``make mlflow``).
    run_url: str | None = None
    #: The tracking store the run is in.
    tracking_uri: str | None = None


def record_key_numbers(numbers: dict[str, Any], notebook: str, output_dir: str | os.PathLike | None = None) -> Path:
    """Save a notebook's headline numbers for ``reports/index.html``.

    Parameters
    ----------
    numbers
        Label -> value (numbers or short strings), in display order.
    notebook
        The notebook's name, e.g. ``"01_eda"``.
    output_dir
        Output root; see :func:`churnlib.paths.output_root`.
    """
    folder = paths.reports_dir(output_dir) / KEY_NUMBERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{notebook}.json"
    out.write_text(json.dumps(numbers, indent=2, default=str))
    return out


def discover_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The pipeline's notebooks: ``NN_name.ipynb`` files, in numeric order."""
    folder = Path(folder) if folder else paths.project_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def load_config(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read the pipeline's YAML configuration (an empty config when ``path`` is None)."""
    import yaml

    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"report config not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(cfg).__name__}")
    return cfg


def _declared_parameters(notebook: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def _failure_message(notebook: Path, exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    tb = getattr(exc, "traceback", None) or []
    tail = _ANSI.sub("", "\n".join(tb[-3:])) if tb else ""
    where = f" (cell [{cell}])" if cell is not None else ""
    return f"notebook {notebook.name} failed{where}: {ename}: {evalue}\n{tail}".rstrip()


#: nbconvert's lab template without the scripts it pulls from CDNs (require.js, MathJax, mermaid,
#: widgets): a report must render offline, e.g. when it is sent by mail. Markdown LaTeX then shows as
#: source text, which the stakeholder reports do not use.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_EXTERNAL = re.compile(
    r"""(?:\bsrc\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]+)"""
    r"""|(?:<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]+)"""
    r"""|(?:@import\s+(?:url\()?["']?(?:https?:)?//[^"')\s;]+)"""
    r"""|(?:\bimport\s*\(\s*["'](?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)


def external_resources(page: str) -> list[str]:
    """Resources an HTML page would fetch from the network (scripts, images, stylesheets, imports).

    Links a reader may click (``<a href="https://...">``) are not resources and are not listed.
    """
    return [m.group(0) for m in _EXTERNAL.finditer(page)]


def report_title(nb: Any, default: str) -> str:
    """The first Markdown heading of a notebook (its report title), else ``default``."""
    return next(
        (c.source.lstrip("# ").splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("#")),
        default,
    )


def export_html(executed: Path, out: Path) -> Path:
    """Render an executed notebook as stakeholder HTML: code hidden, self-contained.

    Code inputs are hidden everywhere; cells tagged ``remove-cell`` (and the papermill parameters)
    are dropped with their output, cells tagged ``remove-input`` keep only their output. Images are
    embedded as ``data:`` URIs and no script is loaded from a CDN, so the file renders offline.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"churnlib_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="churnlib_offline.html.j2",
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True,
    )
    remover = TagRemovePreprocessor(
        remove_cell_tags={"remove-cell", "injected-parameters", "parameters"},
        remove_input_tags={"remove-input"}, enabled=True,
    )
    exporter.register_preprocessor(remover, enabled=True)
    title = report_title(nb, executed.stem)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    out.write_text(body, encoding="utf-8")
    return out


def index_order(notebooks: list[Path], first: list[str] | str | None = None) -> list[Path]:
    """The order of the reports in ``index.html``.

    Parameters
    ----------
    notebooks
        The notebooks in run order.
    first
        Notebook names to list first, in this order (``index_first`` in ``config/report.yaml``);
        by default every ``*_summary`` notebook: the stakeholder summary runs last (it reads the
        others' outputs) but is where a reader starts.

    Returns
    -------
    list of Path
    """
    rank = {name: i for i, name in enumerate(_leading(notebooks, first))}
    return sorted(notebooks, key=lambda nb: rank.get(nb.stem, len(rank)))


def _leading(notebooks: list[Path], first: list[str] | str | None) -> list[str]:
    if first is None:
        return [nb.stem for nb in notebooks if nb.stem.endswith("_summary")]
    return [first] if isinstance(first, str) else [str(f) for f in first]


def write_index(result: RunResult, notebooks: list[Path], reports: str | os.PathLike,
                first: list[str] | str | None = None, run_date: str | None = None) -> Path:
    """Write ``reports/index.html``: one section per report, with its key numbers and executed notebook.

    Parameters
    ----------
    result
        The run: data, its kind and fingerprint, seconds per notebook.
    notebooks
        The notebooks whose reports ``reports/NN_name.html`` (and ``reports/executed/``) were written.
    reports
        The reports folder.
    first
        Notebooks listed first (see :func:`index_order`).
    run_date
        Shown as the run's date (default: now, UTC).

    Returns
    -------
    pathlib.Path
        The index file.
    """
    reports = Path(reports)
    run_date = run_date or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = reports / "index.html"
    out.write_text(_index_html(result, notebooks, reports, run_date, first), encoding="utf-8")
    return out


def _index_html(result: RunResult, notebooks: list[Path], reports: Path, run_date: str,
                first: list[str] | str | None = None) -> str:
    import nbformat

    ordered = index_order(notebooks, first)
    leading = set(_leading(notebooks, first))
    rows = []
    for nb in ordered:
        numbers_file = reports / KEY_NUMBERS_DIR / f"{nb.stem}.json"
        numbers = json.loads(numbers_file.read_text()) if numbers_file.exists() else {}
        items = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in numbers.items()
        )
        executed = reports / "executed" / nb.name
        title = nb.stem
        if executed.exists():
            title = report_title(nbformat.read(executed, as_version=4), nb.stem)
        badge = "Start here" + (" · Summary for stakeholders" if nb.stem.endswith("_summary") else "")
        rows.append(
            (f'<section class="start-here"><p class="badge">{badge}</p>' if nb.stem in leading else "<section>")
            + f'<h2><a href="{nb.stem}.html">{html.escape(title)}</a></h2>'
            f'<p class="meta">{html.escape(nb.stem)} · rendered in {result.seconds.get(nb.stem, 0):.1f} s · '
            f'<a href="executed/{nb.name}">executed notebook</a></p>'
            + (f"<table>{items}</table>" if items else "")
            + "</section>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>churnlib reports</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; }} td {{ padding: .2rem .8rem .2rem 0; border-bottom: 1px solid #ddd; }}
.meta {{ color: #666; font-size: .9rem; }} code {{ background: #f3f3f3; padding: 0 .2rem; }}
.start-here {{ border: 2px solid #DD8452; border-radius: .5rem; padding: 0 1rem 1rem; margin-bottom: 2rem; }}
.badge {{ font-weight: bold; color: #DD8452; margin-bottom: 0; }}
</style></head><body>
<h1>churnlib reports</h1>
<p class="meta">Run {html.escape(run_date)} · data <code>{html.escape(result.data)}</code> ({html.escape(result.data_kind)})
· fingerprint <code>sha256:{html.escape(result.fingerprint[:16])}</code></p>
{_run_line(result)}
{''.join(rows)}
</body></html>
"""


def _run_line(result: RunResult) -> str:
    """The index's line naming the MLflow run (as text, not a link: the UI may not be running)."""
    if result.run_id is None:
        return '<p class="meta mlflow">Not recorded in MLflow (tracking off).</p>'
    where = (f" · in the MLflow UI: <code>{html.escape(result.run_url)}</code>" if result.run_url else "")
    local = "" if (result.tracking_uri or "").startswith(("http://", "https://")) else " (start it with <code>make mlflow</code>)"
    return (f'<p class="meta mlflow">MLflow run <code class="run-id">{html.escape(result.run_id)}</code>'
            f"{where}{local if where else ''}</p>")


def _publish(staging: Path, root: Path) -> None:
    """Move the staged outputs into place, replacing only what this run regenerated."""
    for sub in PUBLISHED:
        src = staging / sub
        if not src.is_dir():
            continue
        dst = root / sub
        dst.mkdir(parents=True, exist_ok=True)
        # Generated entries from an earlier run go; committed READMEs and dotfiles stay.
        for old in dst.iterdir():
            if old.name != "README.md" and not old.name.startswith("."):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        for item in src.iterdir():
            os.replace(item, dst / item.name)


def kernel_config(socket_dir: str | os.PathLike, name: str = "kernel") -> Any:
    """Kernel-manager settings for the report's kernels: local sockets, no TCP.

    A kernel started over TCP without CurveZMQ keys logs "Kernel is running over TCP without
    encryption" once per notebook. The report's kernels run on this machine, so they talk over
    Unix-domain sockets (``ipc`` transport) in ``socket_dir``, a private folder: no port is opened and
    nothing is sent in plain text over the network. Windows has no ``ipc`` transport and keeps TCP.

    Parameters
    ----------
    socket_dir
        A folder only this user can read (e.g. from :func:`tempfile.mkdtemp`); the kernel's sockets
        ``<name>-<n>`` are made there and removed when the kernel stops.
    name
        Prefix of the socket files (one per kernel keeps concurrent kernels apart).

    Returns
    -------
    traitlets.config.Config
        For ``papermill.execute_notebook(..., config=...)`` (passed on to the kernel manager).
    """
    from traitlets.config import Config

    if os.name == "nt":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(socket_dir) / name)}})


def run_report(
    config: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    *,
    id_col: str = "user_id",
    label_col: str = "is_churned",
    split_col: str | None = None,
    duration_col: str | None = None,
    current: str | os.PathLike | None = None,
    kernel: str = "churnlib",
    notebooks: list[Path] | None = None,
    root: str | os.PathLike | None = None,
    tracking: bool | None = None,
    log=lambda msg: print(msg, flush=True),
) -> RunResult:
    """Execute the numbered notebooks and publish the reports.

    Parameters
    ----------
    config
        YAML file with the full-size parameters (``config/report.yaml``).
    data
        An event log or snapshot table; ``None`` uses the simulated default log.
    id_col, label_col
        Id and label columns when ``data`` is a snapshot table.
    split_col
        Column marking rows train/test (the modelling notebooks then hold out the test rows).
    duration_col
        Tenure column (days) of a snapshot table: ``10_retention`` and the summary draw retention
        curves from it (an event log gives durations itself).
    current
        A later table with the same columns as ``data`` (a snapshot table): ``07_monitoring``
        compares it with ``data``. Without it, monitoring a snapshot table is not run (the report
        says why); an event log is monitored on simulated windows either way.
    kernel
        Jupyter kernel that runs the notebooks (``make setup`` registers ``churnlib``).
    notebooks
        Notebooks to run (default: :func:`discover_notebooks`).
    root
        Project folder whose ``reports/`` and ``figures/`` receive the outputs.
    tracking
        Record the run in MLflow (:func:`churnlib.paths.tracking_enabled`: None follows
        ``CHURNLIB_TRACKING``, on by default). One run is started before the notebooks, in the store of
        :func:`churnlib.tracking.tracking_uri` (``MLFLOW_TRACKING_URI``, else ``root/mlruns.db``), which
        the kernels are pointed at too; notebooks that declare ``mlflow_run_id`` get its id, those that
        declare ``tracking`` get whether it is on. After publishing, the figures and the index are logged
        into it. A tracking store that cannot be reached stops the run before any notebook.

    Returns
    -------
    RunResult

    Raises
    ------
    NotebookFailed
        When a notebook raises; nothing already published is touched.
    """
    import papermill

    # Here, not at the top: every notebook imports this module for record_key_numbers, and should not pay
    # for the runner's imports (papermill; churnlib.datasets loads the numba simulator, churnlib.load pandas).
    from churnlib.datasets import default_event_log
    from churnlib.load import data_fingerprint, detect_kind

    root = Path(root) if root else paths.project_root()
    cfg = load_config(config)
    notebooks = notebooks if notebooks is not None else discover_notebooks(root / "notebooks")
    if not notebooks:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {root / 'notebooks'}")
    start_all = time.perf_counter()

    if data is None:
        sim = cfg.get("default_data", {})
        log(f"==> embedded default data: simulating {sim.get('n_users', 2000)} users x {sim.get('days', 60)} days (cached)")
        data = default_event_log(**sim, output_dir=root)
    data = Path(data).resolve()
    kind = detect_kind(data)
    if current is not None and not Path(current).is_file():
        raise FileNotFoundError(f"current table not found: {current}")
    result = RunResult(index=root / "reports" / "index.html", data=str(data), data_kind=kind,
                       fingerprint=data_fingerprint(data))

    tracked = None
    if paths.tracking_enabled(tracking):  # MLflow is imported only when tracking is on
        from churnlib import tracking as mlflow_tracking

        tracked = mlflow_tracking.start_run(run_name=f"report {data.name}", root=root, tags={
            "kind": "report", "data": str(data), "data_kind": kind, "data_fingerprint": result.fingerprint})
        result.run_id, result.tracking_uri = tracked.run_id, tracked.tracking_uri
        result.run_url = tracked.link()
        log(f"==> MLflow run {tracked.run_id} in {tracked.tracking_uri}")

    for stale in root.glob(".staging-report-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = root / f".staging-report-{os.getpid()}"
    executed_dir = staging / "reports" / "executed"
    executed_dir.mkdir(parents=True)
    injected = {
        **cfg.get("parameters", {}),
        "data": str(data), "data_kind": kind, "id_col": id_col, "label_col": label_col,
        "output_dir": str(staging), **({"split_col": split_col} if split_col else {}),
        **({"duration_col": duration_col} if duration_col else {}),
        **({"current": str(Path(current).resolve())} if current is not None else {}),
        "tracking": tracked is not None, **({"mlflow_run_id": tracked.run_id} if tracked is not None else {}),
    }
    kernel_env = {"MLFLOW_TRACKING_URI": tracked.tracking_uri, "CHURNLIB_TRACKING": "1"} if tracked is not None else {}
    with tempfile.TemporaryDirectory(prefix="churnlib-kernels-") as sockets, _kernel_env(kernel_env):
        for i, nb in enumerate(notebooks, 1):
            params = {**injected, **cfg.get("notebooks", {}).get(nb.stem, {})}
            declared = _declared_parameters(nb)
            params = {k: v for k, v in params.items() if k in declared}
            log(f"[{i}/{len(notebooks)}] {nb.stem} ... (elapsed {time.perf_counter() - start_all:.0f} s)")
            t0 = time.perf_counter()
            executed = executed_dir / nb.name
            try:
                papermill.execute_notebook(
                    str(nb), str(executed), parameters=params, kernel_name=kernel, cwd=str(nb.parent),
                    progress_bar=False, log_output=False, config=kernel_config(sockets, nb.stem),
                )
            except Exception as exc:  # papermill wraps the cell's error; show it, keep the old reports
                log(f"[{i}/{len(notebooks)}] {nb.stem} FAILED after {time.perf_counter() - t0:.1f} s")
                raise NotebookFailed(
                    _failure_message(nb, exc) + f"\n(partial output kept in {staging}; published reports untouched)"
                ) from None
            export_html(executed, staging / "reports" / f"{nb.stem}.html")
            result.seconds[nb.stem] = time.perf_counter() - t0
            log(f"[{i}/{len(notebooks)}] {nb.stem} done in {result.seconds[nb.stem]:.1f} s")

    write_index(result, notebooks, staging / "reports", cfg.get("index_first"))
    _publish(staging, root)
    shutil.rmtree(staging, ignore_errors=True)
    log(f"==> reports in {root / 'reports'} (open {result.index}); figures in {root / 'figures'}")
    if tracked is not None:
        try:  # the reports are published: a store that fails now costs the run's figures, not the report
            mlflow_tracking.log_report(tracked.run_id, figures_dir=root / "figures", reports_dir=root / "reports",
                                       key_numbers=_key_numbers(root / "reports"), root=root)
        except Exception as exc:  # noqa: BLE001 -- any store error; said, not raised
            log(f"warning: the figures and index were not logged to MLflow run {tracked.run_id}: "
                f"{type(exc).__name__}: {exc}")
        else:
            log(f"==> recorded in MLflow run {tracked.run_id} (see it at {result.run_url}"
                + ("" if tracked.tracking_uri.startswith(("http://", "https://")) else " after `make mlflow`") + ")")
    return result


def _key_numbers(reports: Path) -> dict[str, Any]:
    """Every report's key numbers (``reports/key_numbers/NN_name.json``) as ``{"NN_name/label": value}``."""
    folder = reports / KEY_NUMBERS_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return {f"{f.stem}/{label}": value for f in files for label, value in json.loads(f.read_text()).items()}


@contextlib.contextmanager
def _kernel_env(values: dict[str, str]):
    """Set environment variables for the kernels started inside the block (they inherit them), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def strip_outputs(notebooks: list[str | os.PathLike]) -> list[Path]:
    """Clear outputs and execution counts in place; returns the notebooks that changed."""
    import nbformat

    changed = []
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        dirty = False
        for cell in nb.cells:
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count):
                cell.outputs, cell.execution_count, dirty = [], None, True
        if dirty:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m churnlib report")
