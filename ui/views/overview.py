"""Overview: volumes over time, top themes, emerging alerts, sentiment trend."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, filters_sidebar, frame, theme_color

st.title("What residents are telling us")
f = filters_sidebar()
stats = fetch("/v1/stats", **f)
if stats:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Requests and comments", f"{stats['records']:,}")
    c2.metric("Themes", stats["themes"], help=f"{stats['subthemes']} sub-themes")
    c3.metric("Emerging alerts", stats["alerts"])
    c4.metric("Rejected rows", stats["rejects"], help="rows kept aside with their reason at ingest")
    series = frame(stats["series"])
    if not series.empty:
        left, right = st.columns(2)
        left.plotly_chart(
            px.line(
                series, x="week", y="count", title="Volume per week", labels={"count": "records"}
            ),
            width="stretch",
        )
        right.plotly_chart(
            px.line(
                series,
                x="week",
                y="sentiment",
                title="Mean sentiment per week (-1 to 1)",
                range_y=[-1, 1],
            ),
            width="stretch",
        )

themes = fetch("/v1/themes", limit=10, **f)
if themes and themes["items"]:
    st.subheader("Top themes")
    df = frame(themes["items"])
    fig = px.bar(
        df,
        x="size",
        y="label",
        orientation="h",
        color="theme_id",
        color_discrete_map={t: theme_color(t) for t in df["theme_id"]},
        text="size",
        labels={"label": "", "size": "records"},
    )
    fig.update_layout(showlegend=False, yaxis={"autorange": "reversed"}, height=380)
    st.plotly_chart(fig, width="stretch")

alerts = fetch("/v1/emerging", limit=5, **f)
st.subheader("Emerging needs")
if alerts and alerts["items"]:
    for a in alerts["items"]:
        with st.container(border=True):
            st.markdown(
                f"**{a['theme_label']}** — {a['kind']} · {a['count']} in the window starting "
                f"{str(a['window_start'])[:10]} vs {a['baseline']:.1f} expected "
                f"(×{a['ratio']:.1f}, q = {a['q_value']:.2g})"
            )
            for ex in a["examples"][:3]:
                st.caption(f"“{ex}”")
    st.markdown("[All emerging needs →](emerging)")
else:
    st.info("No emerging needs in the latest analysis.")
