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

FILTER_KEYS = ("source", "since", "until", "area", "category")


@st.cache_resource
def client() -> Client:
    return get_client()


def filters_sidebar() -> dict[str, Any]:
    """Date range, source, area and category; kept in the URL query so a view can be shared."""
    qp = st.query_params
    stats = cached_get("/v1/stats")
    sources = [""] + [s["source"] for s in stats.get("sources", [])] if stats else [""]
    areas = [""] + [a["key"] for a in stats.get("areas", [])][:200] if stats else [""]
    cats = [""] + [c["key"] for c in stats.get("categories", [])][:200] if stats else [""]
    st.sidebar.header("Filters")

    def pick(label: str, key: str, options: list[str]) -> str:
        current = qp.get(key, "")
        if current and current not in options:
            options = [*options, current]
        value = st.sidebar.selectbox(
            label,
            options,
            index=options.index(current),
            key=f"f_{key}",
            format_func=lambda v: v or "all",
        )
        return value

    source = pick("Source", "source", sources)
    area = pick("Area", "area", areas)
    category = pick("Category", "category", cats)
    since = _date(qp.get("since"))
    until = _date(qp.get("until"))
    use_dates = st.sidebar.checkbox("Limit dates", value=bool(since or until), key="f_dates")
    if use_dates:
        since = st.sidebar.date_input("From", value=since or dt.date(2015, 1, 1), key="f_since")
        until = st.sidebar.date_input("Until", value=until or dt.date.today(), key="f_until")
    else:
        since = until = None
    values = {
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
