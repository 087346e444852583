"""Themes: a 2-D map of the texts, a sortable theme table, and a theme page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.express as px
import streamlit as st

from analyzer.reports.export import safe_filename
from ui.client import ApiError, Client
from ui.common import (
    OUTCOME_COLORS,
    OUTCOME_NAMES,
    cached_get,
    client,
    fetch,
    filters_sidebar,
    frame,
    show_table,
    theme_color,
    theme_names,
)


def deferred(api: Client, path: str, params: dict[str, Any]) -> Callable[[], bytes]:
    """Fetch an export only when its button is clicked (a big theme's CSV is not built on every
    page run). An API error fails that download with Streamlit's own message."""

    def fetch_file() -> bytes:
        return api.download(path, **params)

    return fetch_file


st.title("Themes")
f = filters_sidebar()
themes = fetch("/v1/themes", limit=200, **f)
if not themes or not themes["items"]:
    st.info("No themes yet: ingest data and run an analysis (Data page).")
    st.stop()
df = frame(themes["items"])
# a theme's name: its label, with its source when another source has a theme of that label
labels = theme_names(themes["items"])

proj = fetch("/v1/projection", limit=5000, **f)
if proj and proj["points"]:
    pts = frame(proj["points"])
    # coloured by theme id, named by label: two sources' "water" are two themes
    pts["theme"] = pts["theme_id"].fillna("")
    fig = px.scatter(
        pts,
        x="x",
        y="y",
        color="theme",
        color_discrete_map={t: theme_color(t or None) for t in pts["theme"].unique()},
        hover_data={"text": True, "x": False, "y": False, "theme": False},
        title="Map of texts, coloured by theme",
        height=520,
    )
    fig.update_traces(marker={"size": 5, "opacity": 0.7})
    fig.for_each_trace(lambda tr: tr.update(name=labels.get(tr.name, "unassigned")))
    fig.update_layout(legend={"font": {"size": 10}}, xaxis_visible=False, yaxis_visible=False)
    st.plotly_chart(fig, width="stretch")
    if proj.get("sampled"):
        st.caption(f"A sample of {len(pts):,} of {proj['total']:,} texts.")

st.subheader("All themes")
columns = ["theme_id", "label", "source", "size", "growth", "sentiment", "subtheme_count"]
columns += ["top_category", "top_category_share"]  # where themes and the city's categories agree
table = df[[c for c in [*columns, "keywords"] if c in df]].copy()
table["keywords"] = table["keywords"].map(lambda k: ", ".join(k[:6]))
table = table.rename(
    columns={
        "size": "records",
        "growth": "growth (28 d)",
        "subtheme_count": "sub-themes",
        "top_category": "main category",
        "top_category_share": "its share",
    }
)
# growth is empty for a theme without records in the 28 days before the last 28: shown as "–"
show_table(
    table,
    {"growth (28 d)": "{:+.0%}", "sentiment": "{:+.2f}", "records": "{:,}", "its share": "{:.0%}"},
    width="stretch",
)

chosen = st.selectbox(
    "Open a theme",
    df["theme_id"].tolist(),
    index=df["theme_id"].tolist().index(st.query_params["theme"])
    if st.query_params.get("theme") in labels
    else 0,
    format_func=lambda t: f"{t} · {labels[t]}",
)
st.query_params["theme"] = chosen
detail = fetch(f"/v1/themes/{chosen}", **f)
if detail:
    st.header(detail["label"])
    st.caption("Keywords: " + ", ".join(detail["keywords"]))
    c1, c2, c3 = st.columns(3)
    c1.metric("Records", f"{detail['size']:,}")
    c2.metric("Growth (28 days)", "–" if detail["growth"] is None else f"{detail['growth']:+.0%}")
    c3.metric(
        "Mean sentiment", "–" if detail["sentiment"] is None else f"{detail['sentiment']:+.2f}"
    )
    series = frame(detail["series"])
    left, right = st.columns(2)
    if not series.empty:
        left.plotly_chart(
            px.bar(
                series,
                x="week",
                y="count",
                title="Per week",
                color_discrete_sequence=[theme_color(chosen)],
            ),
            width="stretch",
        )
    areas = frame(detail["areas"])
    if not areas.empty:
        right.plotly_chart(
            px.bar(
                areas.head(15),
                x="count",
                y="key",
                orientation="h",
                title="Areas",
                color_discrete_sequence=[theme_color(chosen)],
            ).update_layout(yaxis={"autorange": "reversed", "title": ""}),
            width="stretch",
        )
    handled = fetch("/v1/outcomes", by="theme", theme_id=chosen, **f)
    if handled and handled["rows"]:
        row = handled["rows"][0]
        st.subheader("How the city responded")
        o1, o2, o3, o4 = st.columns(4)
        o1.metric("Closed", f"{row['closed']:,}", help=f"{row['open']:,} still open")
        median = row.get("median_days")
        o2.metric(
            "Median days to close",
            "–" if median is None else f"{median:.1f}",
            help="Kaplan–Meier: requests still open count for as long as they have waited"
            + (
                ""
                if row.get("median_low") is None or row.get("median_high") is None
                else f" (95% interval {row['median_low']:.1f}–{row['median_high']:.1f})"
            ),
        )
        p90 = row.get("p90_days")
        o3.metric("90th percentile days", "–" if p90 is None else f"{p90:.1f}")
        wa = row.get("without_action_share")
        o4.metric("Closed without action", "–" if wa is None else f"{wa:.0%}")
        shares = {
            OUTCOME_NAMES[o]: row.get(f"share_{o}")
            for o in OUTCOME_NAMES
            if row.get(f"share_{o}") is not None
        }
        if shares:
            fig = px.bar(
                x=list(shares.values()),
                y=["closed requests"] * len(shares),
                color=list(shares),
                orientation="h",
                color_discrete_map=OUTCOME_COLORS,
                height=170,
                labels={"x": "share of closed requests", "y": "", "color": "outcome"},
            )
            fig.update_layout(xaxis_tickformat=".0%", legend={"orientation": "h", "y": -0.6})
            st.plotly_chart(fig, width="stretch", key="theme-outcome-shares")
    st.subheader("Representative requests")
    for ex in detail["examples"]:
        st.markdown(f"> {ex['text']}")
        st.caption(
            " · ".join(
                str(x)
                for x in (
                    ex.get("created_at") or "",
                    ex.get("area") or "",
                    ex.get("category") or "",
                )
                if x
            )
        )
    subs = frame(detail["subthemes"])
    if not subs.empty:
        st.subheader("Sub-themes")
        subs["keywords"] = subs["keywords"].map(lambda k: ", ".join(k[:6]))
        show_table(subs, {"sentiment": "{:+.2f}", "size": "{:,}"}, width="stretch")
    with st.expander("Rename or merge this theme"):
        new_label = st.text_input("New label", value=detail["label"], key="rename")
        if st.button("Save label") and new_label.strip():
            try:
                client().patch(f"/v1/themes/{chosen}", {"label": new_label.strip()})
                cached_get.clear()
                st.success("Saved; the new label survives the next analysis.")
            except ApiError as exc:
                st.error(str(exc))
        others = [t for t in df["theme_id"] if t != chosen]
        into = st.selectbox("Merge into", others, format_func=lambda t: f"{t} · {labels[t]}")
        if st.button("Merge") and into:
            try:
                client().post(f"/v1/themes/{chosen}/merge", {"into": into})
                cached_get.clear()
                st.success(f"Merged into {labels[into]}.")
            except ApiError as exc:
                st.error(str(exc))
    st.subheader("Export")
    api = client()
    left, right = st.columns(2)
    left.download_button(
        "Records (CSV)",
        data=deferred(api, f"/v1/themes/{chosen}/records.csv", f),
        file_name=safe_filename(chosen, "records.csv"),
        mime="text/csv",
        on_click="ignore",
        icon=":material/table_view:",
        disabled=not api.has_key,
        help="Every record of this theme under the filters: redacted text only, safe to open in "
        "a spreadsheet."
        if api.has_key
        else "Needs an API key (CIVICPULSE_API_KEY): the file holds record-level data.",
    )
    right.download_button(
        "One-page report (HTML)",
        data=deferred(api, f"/v1/themes/{chosen}/report.html", f),
        file_name=safe_filename(chosen, "report.html"),
        mime="text/html",
        on_click="ignore",
        icon=":material/description:",
        help="Figures, charts, sub-themes, quotes and alerts under these filters, in one file "
        "that opens offline.",
    )
