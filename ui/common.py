"""Shared explorer pieces: the API client, filters kept in the URL, one colour per theme."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

# One colour per theme, shared with the exported reports (re-exported for the pages).
from analyzer.reports.colors import PALETTE as PALETTE
from analyzer.reports.colors import theme_color as theme_color
from ui.client import ApiError, Client, get_client

FILTER_KEYS = ("kind", "source", "since", "until", "area", "category")
# What a record is, whatever its source is called (records.kind).
KINDS = ("311", "survey", "engagement")
DASH = "–"  # a missing number, everywhere (as the CLI tables show it)


@st.cache_resource
def client() -> Client:
    return get_client()


# closing outcomes as the explorer names and colours them (analyzer.outcomes.OUTCOMES)
OUTCOME_NAMES = {
    "resolved": "resolved / action taken",
    "no_violation": "nothing found",
    "duplicate": "duplicate",
    "referred": "referred / not the city's",
    "administrative": "administratively closed",
    "unknown": "unknown",
}
OUTCOME_COLORS = {
    "resolved / action taken": "#2a9d8f",
    "nothing found": "#e9c46a",
    "duplicate": "#8ab17d",
    "referred / not the city's": "#f4a261",
    "administratively closed": "#e76f51",
    "unknown": "#b8b8b8",
}


def filters_sidebar() -> dict[str, Any]:
    """Kind, source, area, category and dates; kept in the URL query so a view can be shared.
    The source, area and category lists follow the chosen kind (and source)."""
    qp = st.query_params
    st.sidebar.header("Filters")
    kind = _pick("Kind", "kind", ["", *KINDS])
    stats = cached_get("/v1/stats", kind=kind or None)
    stats = None if isinstance(stats, dict) and "_error" in stats else stats
    sources = [""] + [s["source"] for s in stats.get("sources", [])] if stats else [""]
    source = _pick("Source", "source", sources)
    if source and stats:
        scoped = cached_get("/v1/stats", kind=kind or None, source=source)
        stats = None if isinstance(scoped, dict) and "_error" in scoped else scoped
    areas = [""] + [a["key"] for a in stats.get("areas", [])][:200] if stats else [""]
    cats = [""] + [c["key"] for c in stats.get("categories", [])][:200] if stats else [""]
    area = _pick("Area", "area", areas)
    category = _pick("Category", "category", cats)
    since = _date(qp.get("since"))
    until = _date(qp.get("until"))
    use_dates = st.sidebar.checkbox("Limit dates", value=bool(since or until), key="f_dates")
    if use_dates:
        since = st.sidebar.date_input("From", value=since or dt.date(2015, 1, 1), key="f_since")
        until = st.sidebar.date_input("Until", value=until or dt.date.today(), key="f_until")
    else:
        since = until = None
    values = {
        "kind": kind,
        "source": source,
        "area": area,
        "category": category,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
    }
    for k, v in values.items():
        if v:
            st.query_params[k] = v
        elif k in st.query_params:
            del st.query_params[k]
    return {k: v for k, v in values.items() if v}


def _pick(label: str, key: str, options: list[str]) -> str:
    """A sidebar choice kept in the URL (a value from a shared link is kept even if unknown)."""
    current = st.query_params.get(key, "")
    if current and current not in options:
        options = [*options, current]
    return st.sidebar.selectbox(
        label,
        options,
        index=options.index(current),
        key=f"f_{key}",
        format_func=lambda v: v or "all",
    )


def number(value: Any, fmt: str = "{:,}") -> str:
    """A number formatted, or "–" when there is none (None, NaN)."""
    return DASH if _missing(value) else fmt.format(value)


def show_table(df: pd.DataFrame, formats: dict[str, str] | None = None, **kwargs: Any) -> None:
    """``st.dataframe`` with every missing value shown as "–": the columns in ``formats`` (a
    Python format string each) are shown formatted and right-aligned, the others with "–" in
    place of None. (Streamlit draws a missing cell as "None" whatever a Styler says, so the
    values are formatted here.)"""
    out = df.copy()
    config: dict[str, Any] = {}
    for col in out.columns:
        fmt = (formats or {}).get(col)
        numeric = pd.api.types.is_numeric_dtype(out[col])
        if fmt is None and numeric and out[col].isna().any():
            fmt = "{:,}" if pd.api.types.is_integer_dtype(out[col].dropna()) else "{:g}"
        if fmt is not None:
            out[col] = pd.Series([number(v, fmt) for v in out[col]], index=out.index, dtype=object)
            config[col] = st.column_config.TextColumn(col, alignment="right")
        elif not numeric:
            values = [DASH if _missing(v) else v for v in out[col]]
            out[col] = pd.Series(values, index=out.index, dtype=object)
    config.update(kwargs.pop("column_config", {}) or {})
    st.dataframe(out, hide_index=kwargs.pop("hide_index", True), column_config=config, **kwargs)


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA (never raises on a list or other object)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


def theme_names(items: list[dict[str, Any]]) -> dict[str, str]:
    """Theme id -> the name to show: its label, with its source when another theme of another
    source has the same label (two cities' "pothole" are two themes)."""
    counts: dict[str, int] = {}
    for t in items:
        counts[t["label"]] = counts.get(t["label"], 0) + 1
    return {
        t["theme_id"]: (
            f"{t['label']} · {t.get('source') or t['theme_id']}"
            if counts[t["label"]] > 1
            else t["label"]
        )
        for t in items
    }


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@st.cache_data(ttl=30, show_spinner=False)
def cached_get(path: str, **params: Any) -> Any:
    try:
        return client().get(path, **params)
    except ApiError as exc:
        return {"_error": str(exc)}


def fetch(path: str, **params: Any) -> Any:
    """GET through the cache; shows the API's error once and returns None."""
    data = cached_get(path, **params)
    if isinstance(data, dict) and "_error" in data:
        st.warning(f"Could not load {path}: {data['_error']}")
        return None
    return data


def frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(items) if items else pd.DataFrame()
