"""Emerging needs: alerts with significance, effect size, a sparkline, examples and a map."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, filters_sidebar, frame, theme_color

st.title("Emerging needs")
st.caption(
    "A theme is flagged when its share of all requests rises well above what its own history, "
    "its season and the themes that usually move with it predict (negative-binomial test, "
    "Benjamini–Hochberg false-discovery control). A week as unusual as the same weeks of two "
    "earlier years is the season, not news."
)
f = filters_sidebar()
alerts = fetch("/v1/emerging", limit=50, **f)
if not alerts or not alerts["items"]:
    st.info("No emerging needs in the latest analysis.")
    st.stop()
for a in alerts["items"]:
    tid = a["theme_id"]
    with st.container(border=True):
        left, right = st.columns([3, 2])
        left.markdown(f"### {a['theme_label']}")
        left.markdown(
            f"**{a['kind'].replace('_', ' ')}** · window {str(a['window_start'])[:10]} – "
            f"{str(a['window_end'])[:10]}" + (f" · area **{a['area']}**" if a.get("area") else "")
        )
        m1, m2, m3 = left.columns(3)
        m1.metric("Count", a["count"], help=f"expected {a['baseline']:.1f}")
        m2.metric("Ratio to expected", f"×{a['ratio']:.1f}")
        m3.metric("q-value", f"{a['q_value']:.2g}", help=f"p = {a['p_value']:.2g}")
        for ex in a["examples"][:5]:
            left.caption(f"“{ex}”")
        detail = fetch(f"/v1/themes/{tid}") if tid else None
        if detail and detail["series"]:
            s = frame(detail["series"]).tail(52)
            spark = px.line(
                s, x="week", y="count", height=160, color_discrete_sequence=[theme_color(tid)]
            )
            spark.update_layout(
                margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title="", yaxis_title=""
            )
            right.plotly_chart(spark, width="stretch", key=f"spark-{tid}-{a['window_start']}")
        recs = fetch("/v1/records", theme_id=tid, limit=500) if tid else None
        if recs and recs["items"]:
            pts = frame(recs["items"]).dropna(subset=["lat", "lon"])
            if not pts.empty:
                fig = px.scatter(
                    pts,
                    x="lon",
                    y="lat",
                    hover_data={"text": True},
                    height=220,
                    color_discrete_sequence=[theme_color(tid)],
                )
                fig.update_yaxes(scaleanchor="x", scaleratio=1.35)
                fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0})
                right.plotly_chart(fig, width="stretch", key=f"map-{tid}-{a['window_start']}")
