"""Overview: volumes over time, top themes, emerging alerts, sentiment trend.

Several sources (two cities, or 311 requests beside survey comments) stay apart: one line per
source in the weekly charts, and theme bars keyed by theme id (two cities' "pothole" are two bars).
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from ui.common import fetch, filters_sidebar, frame, number, theme_color, theme_names

# Weekly lines drawn per source up to this many sources (the rest would be unreadable anyway).
MAX_SOURCE_LINES = 8
SPARSE_WEEKS = 30

st.title("What residents are telling us")
f = filters_sidebar()
stats = fetch("/v1/stats", **f)
if stats:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Requests and comments", f"{stats['records']:,}")
    c2.metric("Themes", stats["themes"], help=f"{stats['subthemes']} sub-themes")
    c3.metric("Emerging alerts", stats["alerts"])
    c4.metric("Rejected rows", stats["rejects"], help="rows kept aside with their reason at ingest")
    sources = [s["source"] for s in stats["sources"]]
    if len(sources) > 1:
        parts = []
        for src in sources[:MAX_SOURCE_LINES]:
            one = fetch("/v1/stats", **{**f, "source": src})
            if one and one["series"]:
                parts.append(frame(one["series"]).assign(source=src))
        series = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    else:
        series = frame(stats["series"])
        if not series.empty:
            series = series.assign(source=sources[0] if sources else "")
    if not series.empty:
        left, right = st.columns(2)
        volume = px.line(
            series,
            x="week",
            y="count",
            color="source",
            title="Volume per week",
            labels={"count": "records"},
        )
        mood = px.line(
            series,
            x="week",
            y="sentiment",
            color="source",
            title="Mean sentiment per week (-1 to 1)",
            range_y=[-1, 1],
        )
        for fig in (volume, mood):
            # a source with a few dated weeks (a yearly survey) shows as dots, not a stray line
            fig.for_each_trace(
                lambda tr: tr.update(mode="lines+markers") if len(tr.x) < SPARSE_WEEKS else None
            )
            fig.update_layout(legend={"orientation": "h", "y": -0.25, "title": ""})
        left.plotly_chart(volume, width="stretch")
        right.plotly_chart(mood, width="stretch")

themes = fetch("/v1/themes", limit=10, **f)
if themes and themes["items"]:
    st.subheader("Top themes")
    df = frame(themes["items"])
    names = theme_names(themes["items"])
    df["name"] = df["theme_id"].map(names)
    fig = px.bar(
        df,
        x="size",
        y="theme_id",
        orientation="h",
        color="theme_id",
        color_discrete_map={t: theme_color(t) for t in df["theme_id"]},
        text="size",
        custom_data=["name"],
        labels={"theme_id": "", "size": "records"},
    )
    fig.update_traces(hovertemplate="%{customdata[0]}: %{x:,} records<extra></extra>")
    # one bar per theme id; the axis shows its name (with its source when two share a label)
    fig.update_layout(
        showlegend=False,
        yaxis={
            "categoryorder": "array",
            "categoryarray": df["theme_id"].tolist()[::-1],  # the largest on top
            "tickmode": "array",
            "tickvals": df["theme_id"].tolist(),
            "ticktext": df["name"].tolist(),
        },
        height=380,
    )
    st.plotly_chart(fig, width="stretch")

alerts = fetch("/v1/emerging", limit=5, **f)
st.subheader("Emerging needs")
if alerts and alerts["items"]:
    for a in alerts["items"]:
        with st.container(border=True):
            st.markdown(
                f"**{a['theme_label']}** — {a['kind']} · {a['count']} in the window starting "
                f"{str(a['window_start'])[:10]} vs {number(a['baseline'], '{:.1f}')} expected "
                f"(×{number(a['ratio'], '{:.1f}')}, q = {number(a['q_value'], '{:.2g}')})"
            )
            for ex in a["examples"][:3]:
                st.caption(f"“{ex}”")
    st.markdown("[All emerging needs →](emerging)")
elif alerts is not None:
    why = fetch("/v1/emerging/explain", **f)
    st.info(why["reason"] if why else "No emerging needs in the latest analysis.")
