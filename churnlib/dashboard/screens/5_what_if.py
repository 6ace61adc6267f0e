"""What-if: the six-signal monotone model (:mod:`churnlib.whatif`), its sliders starting at one user's values.

Rendering only: the figures and ranges come from :mod:`churnlib.dashboard.tools`, the probabilities from
:func:`churnlib.whatif.whatif_probability` and :func:`churnlib.whatif.whatif_curve`.
"""
from __future__ import annotations

import math

import streamlit as st

from churnlib.artifact import ArtifactError
from churnlib.dashboard import tools
from churnlib.dashboard.cache import cached_whatif, page_products
from churnlib.whatif import whatif_curve, whatif_probability

st.title("What-if")
products = page_products("risk", "features")
why_not = tools.whatif_status(products.model_dir, products.metrics)
if why_not:
    st.info(why_not)
    st.stop()
try:
    model = cached_whatif(products.model_dir)
except ArtifactError as exc:
    st.error(f"error: {' '.join(str(exc).splitlines())}")
    st.stop()

statement = tools.whatif_statement(products.metrics, products.model_dir)
st.warning(statement or "A simplified six-signal model for what-if questions, not the model that scores users.")
st.caption("Holdout figures of both models (same held-out users; 95% intervals):")
st.table(tools.whatif_figures(products.metrics, products.model_dir).set_index("metric"))

id_col = products.id_col
users = products.risk[id_col].astype(str).tolist()  # highest main-model risk first
user = st.selectbox("User (highest risk first)", users, index=0, key="whatif_user")
try:
    start = tools.user_signals(products.features, id_col, user, model.signals_)
except KeyError as exc:
    st.info(f"{exc.args[0]}: no starting values for the sliders.")
    st.stop()
ranges = tools.slider_ranges(products.features, model.signals_, start)
directions = tools.whatif_directions(model)
main_p = float(products.risk.loc[products.risk[id_col].astype(str) == user, "churn_probability"].iloc[0])

st.subheader("Move the signals")
st.caption("Each slider starts at the user's value on their latest observation date. The model is constrained: "
           "each signal can move the probability in one direction only.")
values: dict[str, float] = {}
cols = st.columns(2)
for i, signal in enumerate(model.signals_):
    low, high, step = ranges[signal]
    label = f"{signal.replace('_', ' ')} ({directions[signal]} as it rises)"
    box = cols[i % 2]
    x0 = start[signal]
    if not math.isfinite(x0):
        if not box.checkbox(f"{signal.replace('_', ' ')}: unknown for this user; set a value",
                            key=f"whatif_set_{signal}_{user}"):
            values[signal] = float("nan")
            continue
        x0 = min(max(0.0, low), high)
    values[signal] = box.slider(label, min_value=low, max_value=high, value=float(min(max(x0, low), high)),
                                step=step, key=f"whatif_{signal}_{user}")

p0 = whatif_probability(model, start)
p1 = whatif_probability(model, values)
a, b, c = st.columns(3)
a.metric("What-if probability", f"{p1:.1%}", delta=f"{(p1 - p0) * 100:+.1f} points", delta_color="inverse",
         help="Against the what-if model's probability at the user's own values.")
b.metric("What-if model at the user's values", f"{p0:.1%}")
c.metric("Main model's score (the risk list)", f"{main_p:.1%}")

signal = st.selectbox("How the probability moves along one signal (the others as set above)", model.signals_,
                      key="whatif_curve_signal")
low, high, _ = ranges[signal]
curve = whatif_curve(model, values, signal, grid=[low + (high - low) * k / 24 for k in range(25)])
st.line_chart(curve, x=signal, y="probability")
