"""Tag a request: label, confidence, alternatives, review flag; corrections are stored for retraining."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.client import ApiError
from ui.common import client, number, show_table

st.title("Tag a request")
text = st.text_area(
    "Request text", height=120, placeholder="e.g. Car parked on the sidewalk blocking the ramp"
)
if st.button("Tag", type="primary") and text.strip():
    try:
        st.session_state["tag_result"] = (text, client().post("/v1/tag", {"text": text}))
    except ApiError as exc:
        st.error(str(exc))
if "tag_result" in st.session_state:
    tagged_text, resp = st.session_state["tag_result"]
    r = resp["results"][0]
    c1, c2, c3 = st.columns(3)
    c1.metric("Category", r["label"] or "–")
    c2.metric("Confidence", number(r["confidence"], "{:.0%}"))
    c3.metric("Review", "needs a person" if r["needs_review"] else "auto-accept")
    if r.get("possible_new_category"):
        st.warning("This request is far from every known category: possibly a new kind of request.")
    alternatives = pd.DataFrame(r["alternatives"])
    show_table(
        alternatives, {c: "{:.1%}" for c in ("probability", "confidence") if c in alternatives}
    )
    labels = [a["label"] for a in r["alternatives"]]
    with st.form("correct"):
        right = st.selectbox("Correct label", labels + ["(other)"])
        other = st.text_input("Other label")
        if st.form_submit_button("Save correction"):
            label = other.strip() if right == "(other)" else right
            try:
                out = client().post("/v1/corrections", {"text": tagged_text, "label": label})
                st.success(f"Stored correction {out['id']}; the next retrain uses it.")
            except ApiError as exc:
                st.error(str(exc))
