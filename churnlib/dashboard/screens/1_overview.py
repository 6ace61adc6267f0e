"""Overview: churn rate and trend, risk bands, model quality, drift and data quality, in the summary's words."""
from __future__ import annotations

import altair as alt
import streamlit as st

from churnlib.dashboard.cache import cached_overview, page_products
from churnlib.dashboard.views import trend_intervals

products = page_products("risk")
o = cached_overview()

st.title(o.title)
cols = [c for _ in range(2) for c in st.columns(2)]  # two by two: the values carry their intervals
cols[0].metric("Churn rate (whole log)", o.churn_rate or "not recorded")
cols[1].metric("Churn trend", o.numbers.get("Churn trend") or o.sections["trend"].numbers.get("Churn trend", "n/a"))
cols[2].metric("High-risk users", o.sections["risk"].numbers.get("High-risk users", "n/a"))
cols[3].metric("Holdout ROC-AUC", o.numbers.get("Holdout ROC-AUC")
               or o.sections["quality"].numbers.get("Holdout ROC-AUC", "n/a"))

signal = o.sections["signal"]
(st.success if signal.numbers.get("Signal detected") == "yes" else st.warning)(f"**{signal.title}.** {signal.text}")

trend = o.sections["trend"]
st.subheader(trend.title)
st.markdown(trend.text)
if o.trend is not None and len(o.trend.per_date):
    d = o.trend.per_date.assign(text=[iv.text(1, percent=True) for iv in trend_intervals(o.trend)])
    base = alt.Chart(d).encode(x=alt.X("date:T", title="observation date"))
    band = base.mark_errorbar(ticks=True).encode(y=alt.Y("low:Q", title="churned within the label window",
                                                         axis=alt.Axis(format="%")), y2="high:Q")
    line = base.mark_line(point=True).encode(y="rate:Q", tooltip=["date:T", "users:Q", "churned:Q", "text:N"])
    st.altair_chart(band + line, width="stretch")

risk = o.sections["risk"]
st.subheader(risk.title)
left, right = st.columns([1, 2])
left.dataframe(o.bands.assign(share=o.bands["share"].map(lambda s: f"{s:.1%}")), hide_index=True)
right.altair_chart(alt.Chart(o.bands).mark_bar().encode(
    x=alt.X("band:N", sort=["high", "medium", "low"], title="risk band"), y=alt.Y("users:Q"),
    color=alt.Color("band:N", scale=alt.Scale(domain=["high", "medium", "low"],
                                              range=["#C44E52", "#DD8452", "#4C72B0"]), legend=None)),
    width="stretch")
st.markdown(risk.text)
if risk.table is not None:
    st.dataframe(risk.table)
st.page_link("screens/2_at_risk.py", label="Open the at-risk list", icon=":material/list:")

quality = o.sections["quality"]
st.subheader(quality.title)
st.markdown(quality.text)

changes = o.sections["changes"]
st.subheader(changes.title)
st.markdown(changes.text)

st.subheader("Data quality")
st.markdown(o.data_quality or "The data-quality line is not recorded: run `make report` to write the summary.")
if products.missing:
    st.caption("Not available in this report: " + "; ".join(products.missing) + ".")
