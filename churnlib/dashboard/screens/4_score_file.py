"""Score a file: an uploaded event log or feature/snapshot table, scored as ``python -m churnlib score``.

Rendering only: :func:`churnlib.dashboard.tools.score_upload` scores (the command's checks, account and
one-line errors), :func:`churnlib.dashboard.views.band_counts` counts the bands.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from churnlib.dashboard import tools
from churnlib.dashboard.cache import page_products
from churnlib.dashboard.views import band_counts

KINDS = {"detect from the file": None, "an event log": "events", "a feature or snapshot table": "table"}

st.title("Score a file")
products = page_products("model")
st.caption("Upload an event log (NDJSON or parquet) or a table with the model's feature columns (CSV or parquet; "
           "any of them gzip-compressed). It is scored by the model of this report with the same checks and "
           "words as `python -m churnlib score`; the file is kept only while it is scored.")

upload = st.file_uploader("Event log or feature table", type=list(tools.UPLOAD_TYPES), key="score_upload")
left, right = st.columns(2)
kind_label = left.radio("The file is", list(KINDS), horizontal=True, key="score_kind")
as_of = right.text_input("Observation date (event logs; blank: midnight after the last event)",
                         placeholder="2018-11-20", key="score_as_of")
strict = left.checkbox("Strict: refuse the file at its first defect (file, line, column)", key="score_strict")
reasons = right.checkbox("Each user's top three reasons (slower)", value=True, key="score_reasons")

if upload is None:
    st.info("No file uploaded yet.")
    st.stop()

data = upload.getvalue()
key = (upload.name, hashlib.sha256(data).hexdigest(), KINDS[kind_label], as_of.strip(), strict, reasons,
       str(products.model_dir))
if st.session_state.get("score_key") != key:
    with st.spinner(f"Scoring {upload.name} ..."):
        st.session_state["score_result"] = tools.score_upload(
            products.model_dir, upload.name, data, kind=KINDS[kind_label], as_of=as_of, strict=strict,
            reasons=reasons)
    st.session_state["score_key"] = key
result: tools.ScoredFile = st.session_state["score_result"]

if not result.ok:
    st.error(f"error: {result.error}")
    st.stop()

st.success(result.summary + (" (read as an event log)" if result.kind == "events" else " (read as a feature table)"))
st.subheader("The input account")
st.caption("What was read, kept, repaired or dropped, as `python -m churnlib score` prints it.")
st.code(result.account, language=None)

st.subheader("Risk bands")
counts = band_counts(result.scores)
st.bar_chart(counts, x="band", y="users", x_label="risk band", y_label="users", sort=False)

st.subheader("Scores")
st.dataframe(result.scores, hide_index=True, width="stretch")
st.download_button("Download the scores (CSV)", tools.scores_csv(result.scores),
                   file_name=f"risk_{result.name.split('.')[0] or 'upload'}.csv", mime="text/csv")
