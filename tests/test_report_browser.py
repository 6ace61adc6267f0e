"""The HTML reports as a person sees them: rendered in headless Chromium.

The reports are the project's own notebooks rendered by ``churnlib.report`` (code hidden, images
embedded, the index). In ``make test`` (``pytest tests notebooks --nbval-lax``) the notebooks are not run
again for this: ``tests/nbval_executed.py`` keeps each notebook as nbval executed it, these tests run
after the notebooks, and the reports are rendered from those executed notebooks. Run without the
notebooks (``pytest tests/test_report_browser.py``), the module builds a CI-sized report itself.

``index.html`` and every report are opened in Chromium (Debian's ``chromium`` package; ``make setup``
installs it) through the Chrome DevTools protocol over ``websocket-client``. The checks: every image
has loaded (``complete`` and a natural width), no error output or traceback is visible, every link of
the index resolves to a file that loads, and no request leaves ``file://`` (the reports are
self-contained, so they can be mailed). Nothing is downloaded at run time. Screenshots go to the
temporary folder, or to ``$CHURNLIB_SCREENSHOTS`` when set (``reports/screenshots/`` is git-ignored).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from base64 import b64decode
from pathlib import Path

import pytest

from churnlib.load import data_fingerprint, detect_kind
from churnlib.report import RunResult, discover_notebooks, export_html, run_report, write_index

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHURNLIB_CHROMIUM", "/usr/bin/chromium")
INSTALL = "sudo apt-get install -y --no-install-recommends chromium chromium-driver   (or: make setup as root)"
#: Visible text that means a cell failed or printed a traceback.
ERROR_WORDS = ("Traceback", "NameError", "Exception", "Error:", "SyntaxError", "KeyError", "ValueError")
#: Elements nbconvert uses for error and stderr outputs.
ERROR_SELECTOR = ('[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output.jp-mod-error, '
                  '.output_error, .output_stderr, .ansi-red-intense-fg')

#: Elements that hold code: a code cell's input area (Markdown cells also use .jp-InputArea).
CODE_SELECTOR = ".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor, .jp-InputPrompt, div.input_area"

pytestmark = pytest.mark.slow

#: The report this module builds when nbval did not run the notebooks in this session: CI-sized, lighter
#: than the notebooks' own defaults where they are costly (the test checks how the reports render, not
#: the numbers), so the module alone stays within a few minutes on 2 cores.
#: Parameters a notebook does not declare are not injected, so a renamed one only costs time.
CI_CONFIG = """\
default_data: {n_users: 300, days: 60, seed: 7}
parameters: {seed: 7, horizon_days: 14, n_bootstrap: 30, n_jobs: 1}
notebooks:
  03_feature_validation: {n_permutations: 2}
  04_imbalance: {strategies: [none, class_weight, smote]}
  05_models: {models: [dummy, logreg, lightgbm], strategies: [none], search_budget: 2}
  06_explanations: {max_rows: 300, n_dependence: 1}
  07_monitoring: {scenarios: [same_process, more_adverts], n_false_alarm_samples: 3}
  08_synthetic_features: {effect_sizes: [0.0, 0.7], rows: 1000, n_permutations: 9}
"""


def missing_tool(msg: str) -> None:
    """Skip with ``msg`` (the install command); fail under ``CI=true``, where nothing may be missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def require_chromium() -> str:
    """Chromium's path, once it and the DevTools client are there (else :func:`missing_tool`)."""
    try:
        import websocket  # noqa: F401  (the DevTools client; a dev dependency of churnlib)
    except ImportError:
        missing_tool("websocket-client is not installed; run `make setup` (dev dependencies)")
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    missing_tool(f"headless Chromium not found at {CHROMIUM}; install it with: {INSTALL}")


# ---------------------------------------------------------------------------------------------
# A minimal Chrome DevTools protocol client
# ---------------------------------------------------------------------------------------------

class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, executable: str, workdir: Path):
        import websocket

        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log = open(workdir / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--mute-audio",
             "--allow-file-access-from-files", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,900", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"chromium did not start; its output:\n{(workdir / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def open(self, url: str, timeout: float = 60) -> list[dict]:
        """Navigate and wait for the load event; returns the protocol events seen meanwhile."""
        self.events = []
        nav = self.call("Page.navigate", url=url)
        if nav.get("errorText"):
            raise AssertionError(f"{url} did not load: {nav['errorText']}")
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url}: no load event within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))
        self.call("Runtime.evaluate", expression="document.fonts.ready", awaitPromise=True)
        return self.events

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, out: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        out.write_bytes(b64decode(data))
        return out

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


PAGE_STATE = """(() => {
  const imgs = [...document.images].map(i => ({src: i.src.slice(0, 80), complete: i.complete,
                                               width: i.naturalWidth}));
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('style, script').forEach(e => e.remove());
  return {title: document.title, text: document.body.innerText, images: imgs,
          links: [...document.querySelectorAll('a[href]')].map(a => a.href),
          errors: document.querySelectorAll(%s).length,
          code: document.querySelectorAll(%s).length};
})()""" % (json.dumps(ERROR_SELECTOR), json.dumps(CODE_SELECTOR))


# ---------------------------------------------------------------------------------------------
# Fixtures: the reports (rendered from nbval's runs, else a CI-sized run) and one browser
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def built_report(chromium: str, nbval_executed: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports folder: rendered from the notebooks nbval ran in this session, else built here."""
    pipeline = discover_notebooks(ROOT / "notebooks")
    runs = [nbval_executed.get(nb.name) for nb in pipeline]
    if all(runs):
        failed = [f"{run.source.name}: {run.problems[0]}" for run in runs if not run.passed]
        if failed:  # nbval reports those failures; rendering broken notebooks would only repeat them
            pytest.skip("notebooks failed under nbval, so their reports are not checked: " + "; ".join(failed))
        print(f"rendering the {len(runs)} notebooks nbval executed in this session", flush=True)
        return _render_executed(runs, pipeline)
    return _run_ci_report(tmp_path_factory.mktemp("report-root"))


def _render_executed(runs: list, pipeline: list[Path]) -> Path:
    """Render nbval's executed notebooks as ``churnlib report`` renders its own, index included."""
    reports = runs[0].executed.parent.parent  # <output root>/reports, beside the notebooks' key numbers
    for run in runs:
        export_html(run.executed, reports / f"{run.executed.stem}.html")
    logs = sorted((reports.parent / "data" / "raw").glob("simulated_*.parquet"))  # the notebooks' default log
    data = logs[0] if len(logs) == 1 else None  # other tests may have simulated logs there too
    result = RunResult(index=reports / "index.html", data=str(data or "the notebooks' default simulated log"),
                       data_kind=detect_kind(data) if data else "events",
                       fingerprint=data_fingerprint(data) if data else "",
                       seconds={run.executed.stem: run.seconds for run in runs})
    write_index(result, pipeline, reports, run_date="nbval run of this test session")
    return reports


def _run_ci_report(root: Path) -> Path:
    """Run the project's notebooks on a small simulated log into ``root`` (the module runs alone)."""
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    config = root / "ci.yaml"
    config.write_text(CI_CONFIG)
    run_report(config, None, root=root, log=lambda m: print(m, flush=True))
    return root / "reports"


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory):
    b = Browser(chromium, tmp_path_factory.mktemp("browser"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("CHURNLIB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        return Path(target)
    return tmp_path_factory.mktemp("screenshots")


def _path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))


def _check_page(browser: Browser, url: str, shots: Path, self_contained: bool = True) -> dict:
    """Open ``url`` and assert what a reader would notice; ``self_contained``: no file but the page itself."""
    events = browser.open(url)
    state = browser.evaluate(PAGE_STATE)
    browser.screenshot(shots / f"{_path(url).stem}.png")
    name = _path(url).name
    broken = [i for i in state["images"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{name}: images that did not load: {broken}"
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    outside = [u for u in requests if not u.startswith(("file://", "data:", "about:", "blob:"))]
    assert not outside, f"{name} fetches from outside the file: {outside[:5]}"
    if self_contained:  # a mailed report has no folder beside it: everything must be embedded
        local = [u for u in requests if u.startswith("file://") and _path(u) != _path(url)]
        assert not local, f"{name} is not self-contained, it loads: {local[:5]}"
    failed = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"
              and not e["params"].get("canceled")]
    assert not failed, f"{name}: requests failed: {failed[:3]}"
    exceptions = [e["params"]["exceptionDetails"].get("text") for e in events
                  if e.get("method") == "Runtime.exceptionThrown"]
    assert not exceptions, f"{name}: script errors: {exceptions}"
    shown = [w for w in ERROR_WORDS if w in state["text"]]
    assert not shown and state["errors"] == 0, f"{name} shows error output: {shown}, {state['errors']} error cells"
    assert state["code"] == 0, f"{name} shows {state['code']} code cells"
    assert state["text"].strip(), f"{name} is blank"
    return state


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

def test_index_links_resolve_and_load(built_report: Path, browser: Browser, shots: Path):
    index = _check_page(browser, (built_report / "index.html").as_uri(), shots)
    links = [u for u in index["links"] if not u.startswith("#")]
    reports = sorted(p.name for p in built_report.glob("[0-9][0-9]_*.html"))
    assert reports and {_path(u).name for u in links} >= set(reports)  # every report is linked
    for url in links:
        assert url.startswith("file://"), f"index links outside the report folder: {url}"
        target = _path(url)
        assert target.is_file() and target.stat().st_size > 0, f"index link does not resolve: {url}"
        if target.suffix == ".html":
            _check_page(browser, url, shots)
        else:  # executed notebooks: valid JSON the reader can open in Jupyter
            json.loads(target.read_text())


def test_summary_comes_first_and_reads_as_prose(built_report: Path, browser: Browser, shots: Path):
    index = _check_page(browser, (built_report / "index.html").as_uri(), shots)
    report_links = [u for u in index["links"] if _path(u).suffix == ".html"]
    assert _path(report_links[0]).name == "09_summary.html"
    assert "Start here" in index["text"].split("\n\n")[0] + index["text"][:600]
    summary = _check_page(browser, report_links[0], shots)
    text = summary["text"]
    assert "Churn summary for stakeholders" in text
    assert "95% interval" in text  # numbers come with their uncertainty
    assert "import " not in text and "summary." not in text  # no code leaks into the page


def test_every_report_renders_cleanly(built_report: Path, browser: Browser, shots: Path):
    pages = sorted(built_report.glob("[0-9][0-9]_*.html"))
    assert pages
    images = 0
    for page in pages:
        state = _check_page(browser, page.as_uri(), shots)
        images += len(state["images"])
        for url in state["links"]:  # links inside a report must resolve too
            if url.startswith("file://") and "#" not in url:
                assert _path(url).exists(), f"{page.name} links to a missing file: {url}"
    assert images > 0, "no report shows a single figure"
    assert any(shots.glob("*.png"))


def test_a_broken_image_and_an_error_cell_are_caught(browser: Browser, tmp_path: Path):
    # the checks themselves must be able to fail
    page = tmp_path / "broken.html"
    page.write_text('<html><body><p>ok</p><img src="missing.png"></body></html>')
    with pytest.raises(AssertionError, match="images that did not load"):
        _check_page(browser, page.as_uri(), tmp_path)
    page.write_text('<html><body><div data-mime-type="application/vnd.jupyter.stderr">'
                    "Traceback (most recent call last)</div></body></html>")
    with pytest.raises(AssertionError, match="error output"):
        _check_page(browser, page.as_uri(), tmp_path)
    page.write_text('<html><body><div class="jp-Cell jp-CodeCell"><div class="jp-InputArea">'
                    "<pre>x = 1</pre></div></div></body></html>")
    with pytest.raises(AssertionError, match="code cells"):
        _check_page(browser, page.as_uri(), tmp_path)
    (tmp_path / "local.png").write_bytes(b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
    page.write_text('<html><body><p>text</p><img src="local.png"></body></html>')
    with pytest.raises(AssertionError, match="not self-contained"):
        _check_page(browser, page.as_uri(), tmp_path)
    assert _check_page(browser, page.as_uri(), tmp_path, self_contained=False)["images"][0]["width"] == 1
    page.write_text('<html><body><p>text</p><script src="https://cdn.example.org/x.js"></script></body></html>')
    with pytest.raises(AssertionError, match="outside the file|requests failed"):
        _check_page(browser, page.as_uri(), tmp_path)
