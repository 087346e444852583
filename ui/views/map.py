"""Map: requests by theme, drawn without any tile server, and a breakdown by area."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, filters_sidebar, frame, theme_color

st.title("Where")
f = filters_sidebar()
themes = fetch("/v1/themes", limit=200, **f)
labels = {t["theme_id"]: t["label"] for t in (themes or {}).get("items", [])}
theme = st.selectbox(
    "Theme", [""] + list(labels), format_func=lambda t: labels.get(t, "all themes")
)
recs = fetch("/v1/records", theme_id=theme or None, limit=2000, **f)
if not recs or not recs["items"]:
    st.info("No located records for this selection.")
    st.stop()
pts = frame(recs["items"]).dropna(subset=["lat", "lon"])
if pts.empty:
    st.info("These records carry no coordinates (survey comments are mapped by district below).")
else:
    pts["theme"] = pts["theme_id"].map(lambda t: labels.get(t, "unassigned"))
    fig = px.scatter(
        pts,
        x="lon",
        y="lat",
        color="theme",
        hover_data={"text": True, "area": True},
        color_discrete_map={
            labels.get(t, "unassigned"): theme_color(t) for t in pts["theme_id"].dropna().unique()
        },
        height=600,
        title=f"{len(pts):,} requests (longitude / latitude; no map tiles are fetched)",
    )
    fig.update_traces(marker={"size": 5, "opacity": 0.7})
    fig.update_yaxes(scaleanchor="x", scaleratio=1.35)
    st.plotly_chart(fig, width="stretch")
areas = (
    frame(recs["items"]).groupby("area", dropna=True).size().sort_values(ascending=False).head(20)
)
if not areas.empty:
    st.subheader("By area")
    st.plotly_chart(
        px.bar(
            areas.reset_index(name="records"),
            x="records",
            y="area",
            orientation="h",
            color_discrete_sequence=[theme_color(theme or None)],
        ).update_layout(yaxis={"autorange": "reversed"}),
        width="stretch",
    )
