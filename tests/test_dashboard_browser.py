"""The dashboard as a person sees it: the real Streamlit server, driven by headless Chromium.

The test starts ``streamlit run churnlib/dashboard/app.py`` on 127.0.0.1 and a free port (the command
``python -m churnlib dashboard`` runs) over a small products tree, opens each of the six pages in
Chromium through the DevTools protocol (:class:`tests.test_report_browser.Browser`) and checks that the
page rendered with no exception element or error text, and that the at-risk table holds one row per
scored user. Server and browser are always stopped. Waits are bounded; Chromium absent: skipped with the
install command (a failure under ``CI=true``).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.test_report_browser import Browser, require_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "churnlib" / "dashboard" / "app.py"
#: url path -> text the page shows once rendered (its title).
# url path -> a title it must show; the default page (overview) lives at the root, not at /overview
PAGES = {"": None, "at_risk": "scored users", "user": None, "score_file": "Score a file",
         "what_if": "What-if", "model": "Model"}
ERROR_WORDS = ("Traceback", "Exception", "Error:", "KeyError", "ValueError", "NameError", "Page not found")
PAGE_STATE = """(() => {
  const grid = document.querySelector('[data-testid="stDataFrame"] [aria-rowcount]');
  return {text: document.body.innerText,
          ready: !!document.querySelector('[data-testid="stMain"] h1'),
          running: !!document.querySelector('[data-testid="stStatusWidget"]')
                   && document.querySelector('[data-testid="stStatusWidget"]').innerText.includes('Running'),
          exceptions: document.querySelectorAll('[data-testid="stException"]').length,
          rows: grid ? Number(grid.getAttribute('aria-rowcount')) : null};
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(dashboard_tree, tmp_path_factory):
    """The app as users start it (``python -m churnlib dashboard``), on 127.0.0.1 over the session's
    products tree; yields ``(url, tree)``; always stopped."""
    require_chromium()
    tree = dashboard_tree
    port = _free_port()
    log = open(tmp_path_factory.mktemp("streamlit") / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "churnlib", "dashboard", "--reports-dir", str(tree), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"streamlit did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, tree
    finally:
        proc.terminate()  # the command stops its streamlit server on SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server goes too
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    b = Browser(require_chromium(), tmp_path_factory.mktemp("dashboard-browser"))
    yield b
    b.close()


def _rendered(browser: Browser, url: str, timeout: float = 60, table: bool = False) -> dict:
    """Open ``url`` and wait (bounded) until the page's script has run: a title shown, nothing running
    (and, with ``table``, the data grid drawn)."""
    browser.open(url, timeout=timeout)
    deadline = time.monotonic() + timeout
    state: dict = {}
    settled = 0
    while time.monotonic() < deadline:
        state = browser.evaluate(PAGE_STATE)
        done = state["ready"] and not state["running"] and (state["rows"] is not None or not table)
        settled = settled + 1 if done else 0
        if settled >= 3 or state["exceptions"]:
            return state
        time.sleep(0.25)
    raise AssertionError(f"{url} did not finish rendering within {timeout} s; it shows: {state.get('text', '')[:500]}")


def test_every_page_renders_without_an_exception(server, browser):
    url, tree = server
    n_scored = len(pd.read_parquet(tree / "data" / "processed" / "risk_scores.parquet"))
    problems = []  # every page is visited, then every problem reported
    for path, title in PAGES.items():
        try:
            state = _rendered(browser, f"{url}/{path}", table=path == "at_risk")
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        if os.environ.get("CHURNLIB_SCREENSHOTS"):  # as the report browser test keeps its screenshots
            shots = Path(os.environ["CHURNLIB_SCREENSHOTS"])
            shots.mkdir(parents=True, exist_ok=True)
            browser.screenshot(shots / f"dashboard_{path or 'overview'}.png")
        shown = [w for w in ERROR_WORDS if w in state["text"]]
        if state["exceptions"] or shown:
            problems.append(f"/{path} shows an exception ({shown}): {state['text'][-1200:]}")
        elif title and title not in state["text"]:
            problems.append(f"/{path}: {title!r} not shown; it shows {state['text'][:300]}")
        elif path == "at_risk" and state["rows"] != n_scored + 1:  # a header row plus one row per scored user
            problems.append(f"/at_risk: the table has {state['rows']} rows, {n_scored} users scored (+1 header)")
    assert not problems, "\n\n".join(problems)
