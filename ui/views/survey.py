"""Survey and engagement comments: themes with sentiment share and quotes, by district."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, frame, theme_color

st.title("Survey and engagement comments")
stats = fetch("/v1/stats")
sources = [s["source"] for s in (stats or {}).get("sources", []) if s["source"] != "311"]
if not sources:
    st.info("No survey or engagement comments loaded yet.")
    st.stop()
source = st.radio("Source", sources, horizontal=True)
themes = fetch("/v1/themes", source=source, limit=40)
if not themes or not themes["items"]:
    st.info("No themes for this source yet.")
    st.stop()
df = frame(themes["items"])
fig = px.bar(
    df,
    x="size",
    y="label",
    orientation="h",
    color="sentiment",
    range_color=[-1, 1],
    color_continuous_scale="RdYlGn",
    title="Themes (colour: mean sentiment, -1 to 1)",
    height=520,
)
fig.update_layout(yaxis={"autorange": "reversed", "title": ""})
st.plotly_chart(fig, width="stretch")
tid = st.selectbox(
    "Theme", df["theme_id"], format_func=lambda t: df.set_index("theme_id").loc[t, "label"]
)
detail = fetch(f"/v1/themes/{tid}", source=source)
if detail:
    st.subheader(detail["label"])
    areas = frame(detail["areas"])
    if not areas.empty:
        st.plotly_chart(
            px.bar(
                areas,
                x="key",
                y="count",
                title="By district",
                color_discrete_sequence=[theme_color(tid)],
            ),
            width="stretch",
        )
    st.markdown("**What residents wrote**")
    for ex in detail["examples"]:
        mood = ex.get("sentiment") or ""
        st.markdown(f"> {ex['text']}")
        st.caption(" · ".join(x for x in (ex.get("area") or "", mood) if x))
