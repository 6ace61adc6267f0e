"""At-risk users: the scored list with band, probability and reasons; filters, sort, search, CSV download."""
from __future__ import annotations

import streamlit as st

from churnlib.dashboard.cache import cached_risk_table, page_products
from churnlib.dashboard.products import DEVICE_COLUMN, LEVEL_COLUMN
from churnlib.dashboard.views import BAND_ORDER, SORT_KEYS, filter_risk, risk_csv

products = page_products("risk")
table = cached_risk_table()
id_col = products.id_col

n_high = int((table["risk_band"] == "high").sum())
st.title(f"{n_high:,} of {len(table):,} scored users are at high risk of churning")
st.caption("Users who had not cancelled by the latest observation date, scored by the report's model; "
           "each reason is a feature that raises that user's risk, beside its typical value.")


def _options(column: str) -> list[str]:
    if column not in table:
        return []
    return sorted(table[column].dropna().astype(str).unique().tolist())


reason_counts = table["_reasons"].explode().value_counts()
with st.sidebar:
    st.header("Filters")
    bands = st.multiselect("Risk band", [b for b in BAND_ORDER if b in set(table["risk_band"])], key="bands")
    reasons = st.multiselect("Reason (any of)", reason_counts.index.tolist(), key="reasons",
                             help="Users with at least one of these features among their top three reasons; "
                                  "most frequent first.")
    segments = st.multiselect("Retention segment", _options("segment"), key="segments",
                              help="The stakeholder summary's segment of the user's strongest reason.")
    levels = st.multiselect("Level", _options(LEVEL_COLUMN), key="levels")
    devices = st.multiselect("Device", _options(DEVICE_COLUMN), key="devices")

left, right = st.columns([2, 1])
search = left.text_input("Search by user id", key="search", placeholder="part of an id")
sort = right.selectbox("Sort by", list(SORT_KEYS), key="sort")

rows = filter_risk(table, bands=bands, reasons=reasons, segments=segments, levels=levels, devices=devices,
                   search=search, sort=sort)
st.markdown(f"**{len(rows):,} of {len(table):,} users** match.")

shown = rows[[id_col, "churn_probability", "risk_band", "segment", "reason_1", "reason_2", "reason_3",
              LEVEL_COLUMN, DEVICE_COLUMN]].copy()
shown.insert(1, "open", "user?user=" + rows["_id"])
st.dataframe(
    shown, hide_index=True, width="stretch",
    column_config={
        id_col: st.column_config.TextColumn("user"),
        "open": st.column_config.LinkColumn("user page", display_text="open"),
        "churn_probability": st.column_config.ProgressColumn("churn probability", format="percent",
                                                             min_value=0.0, max_value=1.0),
        "risk_band": "risk band", "reason_1": "reason 1", "reason_2": "reason 2", "reason_3": "reason 3",
    },
)
st.download_button("Download these users (CSV)", risk_csv(rows), file_name="at_risk_users.csv",
                   mime="text/csv", key="download", disabled=rows.empty)

if len(rows):
    pick = st.selectbox("Open one user's page", rows["_id"].head(1000).tolist(), key="open_user",
                        help="The first 1,000 listed users, in the order above.")
    st.page_link("screens/3_user.py", label=f"Open user {pick}", query_params={"user": pick},
                 icon=":material/person:")
