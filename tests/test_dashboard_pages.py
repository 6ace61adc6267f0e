"""Dashboard pages 1-3 run by Streamlit's AppTest (no browser) on a small products tree.

The tree is :func:`test_dashboard_products.build_products_tree` (the project's own functions on the
session's simulated log and model), built once for this module. The app selects pages as a reader
does: ``AppTest.from_file(app.py)`` runs the default page (overview), ``at.switch_page("screens/2_at_risk.py")``
the others.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from churnlib.dashboard import products as prod
from churnlib.dashboard import views
from churnlib.dashboard.products import DASHBOARD_ENV

APP = str(Path(__file__).resolve().parents[1] / "churnlib" / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def products_tree(dashboard_tree) -> Path:
    return dashboard_tree


@pytest.fixture(scope="module")
def loaded(products_tree) -> prod.Products:
    return prod.load_products(products_tree)


def _app(monkeypatch, root: Path, page: str | None = None, user: str | None = None) -> AppTest:
    monkeypatch.setenv(DASHBOARD_ENV, str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    if user is not None:
        at.query_params["user"] = user
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _match_count(at: AppTest) -> tuple[int, int]:
    text = next(m.value for m in at.markdown if "users** match" in m.value)
    shown, total = re.match(r"\*\*([\d,]+) of ([\d,]+) users\*\* match", text).groups()
    return int(shown.replace(",", "")), int(total.replace(",", ""))


def test_overview_states_the_summary_findings(monkeypatch, products_tree, loaded):
    at = _app(monkeypatch, products_tree)
    o = views.overview(loaded)
    kn = loaded.key_numbers["09_summary"]
    assert at.title[0].value == o.title
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Churn rate (whole log)"] == kn["Churn rate"]
    assert metrics["Churn trend"] == kn["Churn trend"]
    assert metrics["High-risk users"] == kn["High-risk users"]
    subheaders = [s.value for s in at.subheader]
    assert o.sections["quality"].title in subheaders and "Data quality" in subheaders
    assert any(m.value == f"Rows kept: {kn['Rows kept']}" for m in at.markdown)
    assert any("Not available in this run" in m.value for m in at.markdown)  # monitoring.json is missing


def test_at_risk_filters_search_and_download(monkeypatch, products_tree, loaded):
    at = _app(monkeypatch, products_tree, "screens/2_at_risk.py")
    n = len(loaded.risk)
    assert _match_count(at) == (n, n)
    assert len(at.dataframe[0].value) == n
    n_high = int((loaded.risk["risk_band"] == "high").sum())
    assert at.title[0].value.startswith(f"{n_high:,} of {n:,}")

    at.multiselect(key="bands").set_value(["high", "medium"]).run()
    want = loaded.risk[loaded.risk["risk_band"].isin(["high", "medium"])]
    assert _match_count(at) == (len(want), n) and len(at.dataframe[0].value) == len(want)
    assert set(at.dataframe[0].value["risk_band"]) <= {"high", "medium"}

    at.multiselect(key="levels").set_value(["paid"]).run()
    want = want[want["level"] == "paid"]
    assert _match_count(at)[0] == len(want)

    at.multiselect(key="bands").set_value([]).run()
    at.multiselect(key="levels").set_value([]).run()
    user = str(loaded.risk["userId"].iloc[-1])
    at.text_input(key="search").input(user).run()
    listed = at.dataframe[0].value["userId"].astype(str).tolist()
    assert user in listed and all(user in u for u in listed)
    assert at.get("download_button")  # the CSV of the listed users is offered
    assert at.selectbox(key="open_user").value == listed[0]


def test_user_page_shows_that_users_risk_and_log(monkeypatch, products_tree, loaded):
    user = str(loaded.risk["userId"].iloc[3])
    at = _app(monkeypatch, products_tree, "screens/3_user.py", user=user)
    r = loaded.risk.iloc[3]
    assert at.title[0].value == f"User {user}: {r['risk_band']} risk, churn probability {r['churn_probability']:.0%}"
    assert at.selectbox(key="user").value == user
    history = at.dataframe[0].value
    assert len(history) == int((loaded.features["userId"] == user).sum())
    log = views.activity_log(loaded.events_path, user)
    assert any(m.value == f"Newest first; {log.note}." for m in at.markdown)
    counts = ", ".join(f"{k} {v:,}" for k, v in log.counts.items())
    assert any(c.value == f"Events per kind: {counts}" for c in at.caption)
    shown = at.dataframe[-1].value
    assert pd.to_datetime(shown["time"]).is_monotonic_decreasing

    at.multiselect(key="kinds").set_value(["songs"]).run()
    songs = views.activity_log(loaded.events_path, user, kinds=["songs"])
    assert any(m.value == f"Newest first; {songs.note}." for m in at.markdown)
    assert set(at.dataframe[-1].value["kind"]) == {"songs"}

    other = str(loaded.risk["userId"].iloc[0])
    at.selectbox(key="user").set_value(other).run()
    assert at.title[0].value.startswith(f"User {other}:") and at.query_params["user"] == other
    third = str(loaded.risk["userId"].iloc[1])
    at.selectbox(key="user").set_value(third).run()  # a second choice is not undone by the URL of the first
    assert at.title[0].value.startswith(f"User {third}:") and at.query_params["user"] == third


@pytest.mark.parametrize("page", [None, "screens/2_at_risk.py", "screens/3_user.py"])
def test_pages_without_products_say_run_make_report(monkeypatch, tmp_path, page):
    at = _app(monkeypatch, tmp_path, page)
    assert at.info and "make report" in at.info[0].value
