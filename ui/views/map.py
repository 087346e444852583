"""Map: every located request counted on a grid, a sample of them coloured by theme, and areas.

Drawn without any tile server. The API aggregates (``/v1/map``): the page gets counts per grid
cell and a bounded sample of points whatever the store's size, one grid per source.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui.common import fetch, filters_sidebar, theme_color, theme_names

st.title("Where")
f = filters_sidebar()
themes = fetch("/v1/themes", limit=200, **f)
names = theme_names((themes or {}).get("items", []))
theme = st.selectbox(
    "Theme", ["", *names], format_func=lambda t: names.get(t, "all themes"), key="map_theme"
)
data = fetch("/v1/map", theme_id=theme or None, **f)
if not data:
    st.stop()
if not data["total"]:
    st.info("No records for this selection.")
    st.stop()

regions = data["regions"]
points = pd.DataFrame(data["points"])
c1, c2, c3 = st.columns(3)
c1.metric("Records", f"{data['total']:,}")
c2.metric(
    "With coordinates",
    f"{data['located']:,}",
    help=f"{data['located'] / data['total']:.0%} of the records under these filters",
)
c3.metric(
    "Drawn as points",
    f"{len(points):,}",
    help="a fixed sample (by record id) when there are more; the grey cells count every one",
)


def region_figure(region: dict, pts: pd.DataFrame) -> go.Figure:
    """Grey cells: how many located records each holds (all of them, log scale); dots: the
    sample, one colour per theme."""
    nx = max(1, round((region["lon_max"] - region["lon_min"]) / region["cell_lon"]))
    ny = max(1, round((region["lat_max"] - region["lat_min"]) / region["cell_lat"]))
    xs = region["lon_min"] + (np.arange(nx) + 0.5) * region["cell_lon"]
    ys = region["lat_min"] + (np.arange(ny) + 0.5) * region["cell_lat"]
    z = np.full((ny, nx), np.nan)
    hover = np.full((ny, nx), "", dtype=object)
    for c in region["cells"]:
        ix = min(nx - 1, int((c["lon"] - region["lon_min"]) / region["cell_lon"]))
        iy = min(ny - 1, int((c["lat"] - region["lat_min"]) / region["cell_lat"]))
        z[iy, ix] = math.log10(c["count"])
        lead = c["theme_label"] or "unassigned"
        hover[iy, ix] = f"{c['count']:,} records<br>most: {lead} ({c['theme_count']:,})"
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            colorscale=[[0, "#f0f0f0"], [1, "#606060"]],
            showscale=False,
            name="records per cell",
        )
    )
    if not pts.empty:
        pts = pts.assign(theme=pts["theme_id"].map(lambda t: names.get(t, "unassigned")))
        hover_cols = ["area", "text"] if "text" in pts else ["area"]
        groups = sorted(pts.groupby(pts["theme_id"].fillna("")), key=lambda g: -len(g[1]))
        for tid, part in groups:  # the legend lists the commonest themes first
            fig.add_trace(
                go.Scattergl(
                    x=part["lon"],
                    y=part["lat"],
                    mode="markers",
                    name=names.get(tid, "unassigned") if tid else "unassigned",
                    marker={"size": 5, "opacity": 0.75, "color": theme_color(tid or None)},
                    customdata=part[hover_cols].fillna("").to_numpy(),
                    hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>"
                    if len(hover_cols) > 1
                    else "%{customdata[0]}<extra></extra>",
                )
            )
    mid = (region["lat_min"] + region["lat_max"]) / 2
    fig.update_yaxes(scaleanchor="x", scaleratio=1 / max(math.cos(math.radians(mid)), 0.05))
    fig.update_layout(
        height=620,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        legend={"font": {"size": 10}, "itemsizing": "constant"},
        title=f"{region['located']:,} located records of {region['source']} "
        "(grey: records per cell, all of them; dots: a sample, coloured by theme)",
        xaxis_title="longitude",
        yaxis_title="latitude",
    )
    return fig


if not regions:
    st.info(
        "None of these records carries coordinates (survey comments are counted by area below)."
    )
else:
    region = regions[0]
    if len(regions) > 1:
        # each source over its own extent: two cities are two maps, not two specks on one
        chosen = st.radio(
            "Source",
            [r["source"] for r in regions],
            horizontal=True,
            format_func=lambda s: (
                f"{s} ({next(r['located'] for r in regions if r['source'] == s):,})"
            ),
        )
        region = next(r for r in regions if r["source"] == chosen)
    pts = points[points["source"] == region["source"]] if not points.empty else points
    st.plotly_chart(region_figure(region, pts), width="stretch", key="map-figure")
    if region["outside"]:
        st.caption(
            f"{region['outside']:,} records lie far outside the rest (coordinates off the map) "
            "and are left out of it."
        )

areas = data["areas"]
if areas:
    st.subheader("By area")
    several = len({a["source"] for a in areas}) > 1
    rows = []
    for a in areas[:15]:
        name = f"{a['area']} · {a['source']}" if several else a["area"]
        for t in a["themes"]:
            tid = t["theme_id"]
            rows.append(
                {
                    "area": name,
                    "theme_id": tid or "(other)",
                    "theme": names.get(tid, t["label"]) if tid else t["label"],
                    "records": t["count"],
                }
            )
    mix = pd.DataFrame(rows)
    colors = {tid: theme_color(None if tid == "(other)" else tid) for tid in mix["theme_id"]}
    # the themes by their records over these areas, "other themes" always last in a bar
    order = mix[mix["theme_id"] != "(other)"].groupby("theme_id")["records"].sum()
    order = [*order.sort_values(ascending=False).index, "(other)"]
    fig = px.bar(
        mix,
        x="records",
        y="area",
        color="theme_id",
        orientation="h",
        color_discrete_map=colors,
        category_orders={"theme_id": order},
        custom_data=["theme"],
        height=max(320, 34 * mix["area"].nunique() + 80),
    )
    fig.update_traces(hovertemplate="%{y}: %{x:,} records of %{customdata[0]}<extra></extra>")
    for trace in fig.data:
        trace.name = names.get(trace.name, "other themes")
    fig.update_layout(
        yaxis={"autorange": "reversed", "title": "", "dtick": 1},
        legend_title_text="theme",
        legend={"font": {"size": 10}},
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
    )
    st.plotly_chart(fig, width="stretch", key="map-areas")
