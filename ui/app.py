"""CivicPulse explorer (Streamlit multipage). Run with `civicpulse ui` or `make run`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="CivicPulse", page_icon=":material/campaign:", layout="wide")

PAGES = [
    st.Page(
        HERE / "views" / "overview.py",
        title="Overview",
        icon=":material/home:",
        default=True,
        url_path="overview",
    ),
    st.Page(
        HERE / "views" / "themes.py",
        title="Themes",
        icon=":material/bubble_chart:",
        url_path="themes",
    ),
    st.Page(
        HERE / "views" / "emerging.py",
        title="Emerging needs",
        icon=":material/trending_up:",
        url_path="emerging",
    ),
    st.Page(HERE / "views" / "map.py", title="Map", icon=":material/map:", url_path="map"),
    st.Page(
        HERE / "views" / "service_delivery.py",
        title="Service delivery",
        icon=":material/task_alt:",
        url_path="service-delivery",
    ),
    st.Page(
        HERE / "views" / "survey.py",
        title="Survey comments",
        icon=":material/forum:",
        url_path="survey",
    ),
    st.Page(
        HERE / "views" / "opinions.py",
        title="Opinion groups",
        icon=":material/groups:",
        url_path="opinions",
    ),
    st.Page(
        HERE / "views" / "tag.py", title="Tag a request", icon=":material/sell:", url_path="tag"
    ),
    st.Page(
        HERE / "views" / "data.py", title="Data", icon=":material/upload_file:", url_path="data"
    ),
]

st.navigation(PAGES).run()
