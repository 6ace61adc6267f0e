"""Model: metrics with intervals, calibration, and the threshold a cost of missed churners and wasted offers implies.

Rendering only: :func:`churnlib.dashboard.tools.metrics_table`, :func:`~churnlib.dashboard.tools.reliability`
and :func:`~churnlib.dashboard.tools.cost_choice` (threshold chosen on out-of-fold predictions only,
judged on the holdout).
"""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from churnlib.dashboard import tools
from churnlib.dashboard.cache import page_products

st.title("Model")
products = page_products("risk", "metrics")
metrics = products.metrics
chosen = metrics.get("chosen") or {}

st.subheader("Quality, with 95% intervals")
if chosen:
    st.caption(f"Model: {chosen.get('model', '?')} / {chosen.get('strategy', '?')}. "
               + str(metrics.get("signal_statement", "")))
st.table(tools.metrics_table(metrics).set_index("metric"))

predictions = tools.load_predictions(products.model_dir)
if predictions is None:
    st.info("The models stage's predictions (`models/predictions.parquet`) were not written: run `make report` "
            "again to see calibration and the cost threshold.")
    st.stop()

st.subheader("Calibration")
curves = pd.concat([tools.reliability(predictions, part).assign(part=name)
                    for part, name in (("oof", "out of fold (training part)"), ("holdout", "holdout"))])
diagonal = alt.Chart(pd.DataFrame({"predicted": [0.0, 1.0], "observed": [0.0, 1.0]})).mark_line(
    strokeDash=[4, 4], color="grey").encode(x="predicted", y="observed")
chart = alt.Chart(curves).mark_line(point=True).encode(
    x=alt.X("predicted", title="predicted churn probability (mean per bin)"),
    y=alt.Y("observed", title="observed churn rate"), color=alt.Color("part", title=None))
st.altair_chart(diagonal + chart, width="stretch")
method = (chosen.get("calibration") or {}).get("why")
if method:
    st.caption(method)

st.subheader("Threshold from costs")
st.caption("The threshold that minimises the cost of missed churners and wasted offers is chosen on the "
           "out-of-fold predictions of the training part; the holdout only judges it.")
settings = metrics.get("settings") or {}
left, right = st.columns(2)
cost_fn = left.slider("Cost of a missed churner", min_value=1, max_value=1000,
                      value=int(settings.get("cost_fn") or 100), step=1, key="cost_fn")
cost_fp = right.slider("Cost of a wasted offer (to a user who would have stayed)", min_value=1, max_value=1000,
                       value=int(settings.get("cost_fp") or 10), step=1, key="cost_fp")
try:
    choice = tools.cost_choice(predictions, cost_fn, cost_fp, products.risk["churn_probability"],
                               model_threshold=(chosen.get("threshold") or {}).get("value"), id_col=products.id_col)
except ValueError as exc:
    st.info(str(exc))
    st.stop()
a, b, c = st.columns(3)
a.metric("Threshold", f"{choice.threshold:.3f}")
b.metric("Expected cost per user (holdout)", choice.cost_per_user.text(2))
c.metric("Users contacted now", f"{choice.contacted:,} of {choice.scored:,}")
st.write(choice.text())
st.table(choice.table().set_index("contact"))
st.caption(f"On the holdout this threshold flags {choice.holdout_flagged:.0%} of rows and catches "
           f"{choice.holdout_recall:.0%} of churners ({choice.n_oof:,} out-of-fold rows chose it, "
           f"{choice.n_holdout:,} holdout rows judge it).")
