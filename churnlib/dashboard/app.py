"""The retention dashboard's entry point: ``streamlit run churnlib/dashboard/app.py``.

Started by ``python -m churnlib dashboard [--reports-dir DIR]``, which sets ``$CHURNLIB_DASHBOARD_DIR``
to the output root of ``make report``. Each page is a script under ``screens/``: file pages, so that
Streamlit's ``AppTest`` can switch to them (``at.switch_page("screens/2_at_risk.py")``), in a folder not
named ``pages/``, which Streamlit would list in the sidebar a second time by itself.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

__all__: list[str] = []

_HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Churn retention dashboard", page_icon=":bar_chart:", layout="wide")

_PAGES = [
    st.Page(str(_HERE / "screens" / "1_overview.py"), title="Overview", url_path="overview", default=True),
    st.Page(str(_HERE / "screens" / "2_at_risk.py"), title="At-risk users", url_path="at_risk"),
    st.Page(str(_HERE / "screens" / "3_user.py"), title="One user", url_path="user"),
    st.Page(str(_HERE / "screens" / "4_score_file.py"), title="Score a file", url_path="score_file"),
    st.Page(str(_HERE / "screens" / "5_what_if.py"), title="What-if", url_path="what_if"),
    st.Page(str(_HERE / "screens" / "6_model.py"), title="Model", url_path="model"),
]

st.navigation(_PAGES).run()
