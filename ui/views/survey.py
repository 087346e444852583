"""Survey and engagement comments: themes with sentiment share and quotes, by district.

The sources listed are those whose records are survey or engagement comments (``kind``), whatever
they are called: a city's 311 export named "nyc311" is not a survey.
"""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, frame, theme_color

# Pixels per bar: every theme's label stays readable (plotly drops every other tick when crowded).
BAR_PX = 24

st.title("Survey and engagement comments")
sources: list[str] = []
for kind in ("survey", "engagement"):
    stats = fetch("/v1/stats", kind=kind)
    sources += [s["source"] for s in (stats or {}).get("sources", []) if s["source"] not in sources]
if not sources:
    st.info("No survey or engagement comments loaded yet.")
    st.stop()
source = st.radio("Source", sources, horizontal=True)
themes = fetch("/v1/themes", source=source, limit=40)
if not themes or not themes["items"]:
    st.info("No themes for this source yet: run an analysis (Data page).")
    st.stop()
df = frame(themes["items"])
fig = px.bar(
    df,
    x="size",
    y="theme_id",
    orientation="h",
    color="sentiment",
    range_color=[-1, 1],
    color_continuous_scale="RdYlGn",
    custom_data=["label"],
    labels={"size": "comments", "sentiment": "sentiment"},
    title="Themes (colour: mean sentiment, -1 to 1)",
    height=max(320, BAR_PX * len(df) + 120),
)
fig.update_traces(hovertemplate="%{customdata[0]}: %{x:,} comments<extra></extra>")
fig.update_layout(
    yaxis={
        "title": "",
        "categoryorder": "array",
        "categoryarray": df["theme_id"].tolist()[::-1],
        "tickmode": "array",
        "tickvals": df["theme_id"].tolist(),
        "ticktext": df["label"].tolist(),
    }
)
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
                labels={"key": "", "count": "comments"},
                color_discrete_sequence=[theme_color(tid)],
            ).update_xaxes(type="category"),
            width="stretch",
        )
    st.markdown("**What residents wrote**")
    for ex in detail["examples"]:
        mood = ex.get("sentiment") or ""
        st.markdown(f"> {ex['text']}")
        st.caption(" · ".join(x for x in (ex.get("area") or "", mood) if x))
