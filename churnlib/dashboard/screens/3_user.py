"""One user: risk over the observation dates, the top reasons, and the activity log from the event log."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from churnlib.dashboard.cache import cached_activity_log, cached_model, cached_user_ids, page_products
from churnlib.dashboard.views import KIND_ORDER, risk_history, user_reasons

products = page_products("features", "model")
model = cached_model(products.model_dir)
ids = cached_user_ids()
if not ids:
    st.info("No user in the feature table. Run `make report` first.")
    st.stop()

wanted = st.query_params.get("user")
if wanted is not None and wanted not in ids:
    st.warning(f"User {wanted!r} is not in this report's feature table; showing the highest-risk user instead.")
    wanted = None
# the URL names the user when it changed outside this page (a link from the at-risk list); the page
# writes the chosen user back to the URL and remembers it, so its own change is not taken for a new link
if "user" not in st.session_state or (wanted is not None and wanted != st.session_state.get("_url_user")):
    st.session_state["user"] = wanted or ids[0]
user = st.selectbox("User (highest risk first)", ids, key="user")
st.query_params["user"] = user
st.session_state["_url_user"] = user

scored = products.risk[products.risk[products.id_col].astype(str) == user] if not products.risk.empty else None
history = risk_history(products, model, user)
if scored is not None and len(scored):
    r = scored.iloc[0]
    st.title(f"User {user}: {r['risk_band']} risk, churn probability {r['churn_probability']:.0%}")
    facts = [f"level {r[c]}" for c in ("level",) if pd.notna(r.get(c))] + \
            [f"device {r[c]}" for c in ("device",) if pd.notna(r.get(c))]
    if facts:
        st.caption(", ".join(facts))
elif len(history):
    st.title(f"User {user} is not in the risk list: no longer a customer at the latest observation date")
else:
    st.title(f"User {user}")

st.subheader("Risk over the observation dates")
if history.empty:
    st.markdown("This user has no stored feature rows.")
elif "as_of" in history and len(history) > 1:
    h = history.assign(date=pd.to_datetime(history["as_of"]))
    chart = alt.Chart(h).mark_line(point=True).encode(
        x=alt.X("date:T", title="observation date"),
        y=alt.Y("churn_probability:Q", title="churn probability", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        tooltip=["date:T", alt.Tooltip("churn_probability:Q", format=".1%"), "risk_band:N"])
    rules = alt.Chart(pd.DataFrame({"from": [model.bands.medium_from, model.bands.high_from],
                                    "band": ["medium from", "high from"]})).mark_rule(strokeDash=[4, 4]).encode(
        y="from:Q", tooltip=["band:N", alt.Tooltip("from:Q", format=".1%")])
    st.altair_chart(chart + rules, width="stretch")
    st.caption("Scored by the report's model on the user's features as of each date (dashed: the band limits). "
               "'churned' says whether the user cancelled within the label window after the date.")
table = history.assign(churn_probability=history["churn_probability"].map(lambda p: f"{p:.1%}"))
st.dataframe(table, hide_index=True)

st.subheader("What moves this user's risk most")
reasons = user_reasons(products, model, user)
if reasons.empty:
    st.markdown("No feature row to explain.")
else:
    st.dataframe(reasons.drop(columns=["reason"]).assign(push=reasons["push"].round(3)), hide_index=True,
                 width="stretch")
    st.caption("At the latest observation date; the typical value is the training median; the push is the "
               "feature's SHAP value (positive raises the risk).")

st.subheader("Activity log")
if products.events_path is None:
    st.markdown("This report was built from a snapshot table (one row per user): it holds no events, so there "
                "is no activity log to show." if products.kind == "snapshot" else
                "The event log the report read was not found under `data/raw/`: no activity log to show.")
else:
    kinds = st.multiselect("Kinds of activity", list(KIND_ORDER), key="kinds",
                           help="Empty: every kind. 'other': home, settings, playlists, friends, adverts, about.")
    log = cached_activity_log(products.events_path, user, tuple(kinds), 500)
    if log.counts:
        st.caption("Events per kind: " + ", ".join(f"{k} {n:,}" for k, n in log.counts.items()))
    st.markdown(f"Newest first; {log.note}.")
    if len(log.frame):
        st.dataframe(log.frame, hide_index=True, width="stretch")
