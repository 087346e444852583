"""Emerging needs: alerts with significance, effect size, a sparkline, examples and a map."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ui.common import fetch, filters_sidebar, frame, number, show_table, theme_color

st.title("Emerging needs")
st.caption(
    "A theme is flagged when its share of all requests rises well above what its own history, "
    "its season and the themes that usually move with it predict (negative-binomial test, "
    "Benjamini–Hochberg false-discovery control). A week as unusual as the same weeks of two "
    "earlier years is the season, not news."
)
f = filters_sidebar()
alerts = fetch("/v1/emerging", limit=50, **f)
if alerts is None:
    st.stop()
if not alerts["items"]:
    # say why: no dates, too little history, too few records in a week, or nothing rose
    why = fetch("/v1/emerging/explain", **f)
    if why:
        st.info(why["reason"])
        if why["sources"]:
            rows = [
                {
                    "source": s["source"],
                    "records": s["records"],
                    "with a date": s["dated"],
                    "in a theme": s["assigned"],
                    "first": str(s["first"] or "")[:10] or None,
                    "last": str(s["last"] or "")[:10] or None,
                    f"{why['detector']['period']}s": s["periods"],
                    "busiest theme-period": s["busiest_count"],
                    "why": s["reason"],
                }
                for s in why["sources"]
            ]
            show_table(frame(rows), width="stretch")
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
        m1.metric("Count", a["count"], help=f"expected {number(a['baseline'], '{:.1f}')}")
        ratio = number(a["ratio"], "{:.1f}")
        m2.metric("Ratio to expected", ratio if ratio == "–" else f"×{ratio}")
        m3.metric(
            "q-value",
            number(a["q_value"], "{:.2g}"),
            help=f"p = {number(a['p_value'], '{:.2g}')}",
        )
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
        where = fetch("/v1/map", theme_id=tid, bins=4, points=500, **f) if tid else None
        if where and where["points"]:
            pts = frame(where["points"])
            if "text" not in pts:
                pts["text"] = ""
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
