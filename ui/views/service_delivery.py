"""Service delivery: how the city responded per theme, areas against what their mix of requests
predicts (with intervals), and example requests with their closing outcome."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analyzer.outcomes import MIN_EXPECTED
from ui.common import (
    OUTCOME_COLORS,
    OUTCOME_NAMES,
    fetch,
    filters_sidebar,
    frame,
    number,
    show_table,
)

MEASURES = {
    "time_to_close": "time to close (closures against those expected)",
    "on_time": "on-time share (needs targets)",
    "without_action": "closed without action",
}

st.title("Service delivery")
st.caption(
    "How the city answered: the outcome staff wrote when closing each request, days to close "
    "(Kaplan–Meier: requests still open count for as long as they have waited), and each area "
    "against what its own mix of requests (category, theme and year) would get at citywide "
    "rates. Ratios come with 95% intervals; an area differs when its Benjamini–Hochberg q-value "
    "is under 0.05."
)
f = filters_sidebar()
measure = st.radio(
    "Compare areas on", list(MEASURES), format_func=MEASURES.get, horizontal=True, key="measure"
)
with st.expander("On-time targets (days per category)"):
    st.caption("One per line, as CATEGORY: DAYS. Without targets no on-time share is shown.")
    raw_targets = st.text_area("Targets", value="", key="targets", label_visibility="collapsed")
targets = [line.strip() for line in raw_targets.splitlines() if ":" in line]


def outcomes(by: str, filters: dict[str, Any]) -> dict[str, Any] | None:
    return fetch("/v1/outcomes", by=by, measure=measure, target=targets or None, **filters)


themes = outcomes("theme", f)
if not themes or not themes["rows"]:
    st.info("No service requests with a status or close time yet: ingest 311 data (Data page).")
    st.stop()
for message in themes["messages"]:
    st.info(message)

# -- per theme ---------------------------------------------------------------------------------
st.subheader("How the city responded, per theme")
rows = frame(themes["rows"])
shares = rows.melt(
    id_vars=["group", "closed"],
    value_vars=[f"share_{o}" for o in OUTCOME_NAMES],
    var_name="outcome",
    value_name="share",
)
shares["outcome"] = shares["outcome"].str.removeprefix("share_").map(OUTCOME_NAMES)
order = rows.sort_values("closed", ascending=False)["group"].tolist()[:30]
fig = px.bar(
    shares[shares["group"].isin(order)],
    x="share",
    y="group",
    color="outcome",
    orientation="h",
    category_orders={"group": order, "outcome": list(OUTCOME_COLORS)},
    color_discrete_map=OUTCOME_COLORS,
    height=max(320, 28 * len(order) + 120),
    labels={"share": "share of closed requests", "group": ""},
)
fig.update_layout(legend={"orientation": "h", "y": -0.15}, xaxis_tickformat=".0%")
st.plotly_chart(fig, width="stretch", key="theme-outcomes")
table = rows[
    ["group", "requests", "closed", "open", "median_days", "median_low", "median_high", "p90_days"]
    + ["on_time_share", "without_action_share"]
].rename(
    columns={
        "group": "theme",
        "median_days": "median days",
        "median_low": "median low",
        "median_high": "median high",
        "p90_days": "90th pct days",
        "on_time_share": "on time",
        "without_action_share": "closed without action",
    }
)
show_table(
    table,
    {
        "requests": "{:,}",
        "closed": "{:,}",
        "open": "{:,}",
        "median days": "{:.1f}",
        "median low": "{:.1f}",
        "median high": "{:.1f}",
        "90th pct days": "{:.1f}",
        "on time": "{:.0%}",
        "closed without action": "{:.0%}",
    },
    width="stretch",
)

# -- areas against their mix -------------------------------------------------------------------
st.subheader("Areas: observed against what their mix of requests predicts")
area_filters = {k: v for k, v in f.items() if k != "area"}
areas = outcomes("area", area_filters)
arows = frame(areas["rows"]) if areas else pd.DataFrame()
measured = arows[arows["ratio"].notna()] if not arows.empty else arows
if measured.empty:
    st.info(
        "No area comparison for this measure"
        + (": no targets given." if measure == "on_time" else ": no area or nothing measured.")
    )
else:
    if f.get("area"):
        st.caption(f"All areas are compared (the area filter marks {f['area']}).")
    # a handful of requests says little: areas with fewer expected than the comparison needs
    # (analyzer.outcomes.MIN_EXPECTED) are listed, not drawn
    small = measured[measured["expected"] < MIN_EXPECTED]
    measured = measured[measured["expected"] >= MIN_EXPECTED].sort_values("ratio")
    colors = [
        "#c0392b" if d and r < 1 else "#1e8449" if d and r >= 1 else "#7f8c8d"
        for d, r in zip(measured["differs"], measured["ratio"], strict=True)
    ]
    if measure == "without_action":  # more closed without action is the worse direction
        colors = [{"#c0392b": "#1e8449", "#1e8449": "#c0392b"}.get(c, c) for c in colors]
    forest = go.Figure(
        go.Scatter(
            x=measured["ratio"],
            y=measured["group"],
            mode="markers",
            marker={"color": colors, "size": 9},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": measured["ratio_high"] - measured["ratio"],
                "arrayminus": measured["ratio"] - measured["ratio_low"],
            },
            customdata=measured[["observed", "expected", "q_value", "verdict"]].to_numpy(),
            hovertemplate="%{y}: %{x:.2f} (observed %{customdata[0]:,.0f}, expected "
            "%{customdata[1]:,.1f}), q %{customdata[2]:.2g}<br>%{customdata[3]}<extra></extra>",
        )
    )
    forest.add_vline(x=1.0, line_dash="dash", line_color="#555")
    forest.update_layout(
        yaxis={"type": "category"},  # ZIP-code areas are names, not numbers
        height=max(320, 24 * len(measured) + 120),
        xaxis_title="observed / expected (95% interval)",
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(forest, width="stretch", key="area-forest")
    located = measured.dropna(subset=["lat", "lon"])
    if not located.empty:
        located = located.assign(
            verdict_short=located["verdict"].str.replace(" than its mix predicts", "")
        )
        where = px.scatter(
            located,
            x="lon",
            y="lat",
            size="requests",
            color="ratio",
            color_continuous_scale="RdYlGn" if measure != "without_action" else "RdYlGn_r",
            color_continuous_midpoint=1.0,
            hover_name="group",
            hover_data={"ratio": ":.2f", "q_value": ":.2g", "verdict_short": True, "lat": False},
            height=420,
            title="Areas where their requests are (no map tiles are fetched)",
        )
        where.update_yaxes(scaleanchor="x", scaleratio=1.35)
        where.update_layout(margin={"l": 0, "r": 0, "t": 40, "b": 0})
        right.plotly_chart(where, width="stretch", key="area-map")
    differ = measured[measured["differs"]]
    if len(differ):
        st.markdown(
            "**Differ from their mix:** "
            + "; ".join(
                f"{r.group} {r.ratio:.2f} ({r.ratio_low:.2f}–{r.ratio_high:.2f}), {r.verdict}"
                for r in differ.itertuples()
            )
        )
    if len(small):
        st.caption(
            f"Not drawn (fewer than 5 expected): {', '.join(map(str, small['group'][:30]))}"
            + (" …" if len(small) > 30 else "")
        )
    st.caption(
        f"{len(measured) - len(differ)} of {len(measured)} areas as their mix predicts. "
        f"Observed and expected add up to the same total over all areas "
        f"({number(areas['totals'][measure]['observed'], '{:,.0f}')})."
    )

# -- drill down ------------------------------------------------------------------------------
st.subheader("Example requests and how they were closed")
left, mid, right = st.columns(3)
by = left.selectbox("Group by", ["theme", "area", "category"], key="drill_by")
pool = rows if by == "theme" else (arows if by == "area" else None)
if pool is None:
    cats = outcomes("category", f)
    pool = frame(cats["rows"]) if cats else pd.DataFrame()
groups = pool["group"].tolist() if not pool.empty else []
group = mid.selectbox(by.capitalize(), groups, key="drill_group") if groups else None
outcome = right.selectbox(
    "Outcome",
    ["", *OUTCOME_NAMES],
    format_func=lambda o: OUTCOME_NAMES.get(o, "any"),
    key="drill_o",
)
if group:
    scope = area_filters if by == "area" else f
    examples = fetch(
        "/v1/outcomes/examples", by=by, group=group, outcome=outcome or None, limit=15, **scope
    )
    items = (examples or {}).get("items", [])
    if not items:
        st.info("No closed requests of this kind here.")
    else:
        ex = frame(items)
        ex["outcome"] = ex["outcome"].map(lambda o: OUTCOME_NAMES.get(o, o))
        ex["created"] = ex["created_at"].astype(str).str[:10]
        show_table(
            ex[["created", "category", "area", "outcome", "days", "text", "note"]],
            {"days": "{:.1f}"},
            width="stretch",
        )
