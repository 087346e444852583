"""Opinion groups: who votes alike in a consultation (Polis-style votes), what each group stands
for, what unites everyone and what divides them, theme by theme."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from ui.common import PALETTE, fetch, frame, show_table

NO_GROUP = "no group"
GROUPS_FROM = {
    "civicpulse": "votes (CivicPulse: stable groups, count from the data)",
    "polis": "votes (the Polis method)",
    "source": "the export's own groups",
}

st.title("Opinion groups")
st.caption(
    "Participants who vote alike form a group. A statement is common ground when every group "
    "is likely to agree with it (≥ 60 %), divisive when one group's agreement differs from the "
    "rest's by 30 points or more, uncertain when many pass on it. Group-informed consensus (GIC) "
    "multiplies the groups' agree probabilities: high only when all groups agree."
)
listing = fetch("/v1/conversations")
if listing is None:
    st.stop()
if not listing["items"]:
    st.info(
        "No conversation with votes yet: ingest a Polis export folder or a votes file "
        "(`civicpulse ingest FOLDER`)."
    )
    st.stop()
convs = {c["conversation_id"]: c for c in listing["items"]}
ids = list(convs)
current = st.query_params.get("conversation", ids[0])
conv_id = st.selectbox(
    "Conversation",
    ids,
    index=ids.index(current) if current in ids else 0,
    format_func=lambda c: c if convs[c]["title"] == c else f"{convs[c]['title']} ({c})",
)
st.query_params["conversation"] = conv_id
choices = [k for k in GROUPS_FROM if k != "source" or convs[conv_id]["has_source_groups"]]
source = st.radio("Groups from", choices, format_func=GROUPS_FROM.get, horizontal=True)
params = {"use_source_groups": "true"} if source == "source" else {"method": source}
with st.spinner("Finding opinion groups…"):
    result = fetch(f"/v1/conversations/{conv_id}/opinions", **params)
if result is None:
    st.stop()

info = result["conversation"]
groups = result["groups"]
m1, m2, m3, m4 = st.columns(4)
m1.metric("Participants", f"{info['participants']:,}")
m2.metric("Statements", f"{info['statements']:,}")
m3.metric("Votes", f"{info['votes']:,}")
m4.metric("Opinion groups", len(groups), help=f"{info['clustered_participants']:,} in a group")


def group_name(gid: int | None) -> str:
    return NO_GROUP if gid is None else f"Group {chr(ord('A') + gid) if gid < 26 else gid}"


colors = {group_name(g["group_id"]): PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
colors[NO_GROUP] = "#bbbbbb"

st.subheader("Participant map")
people = frame(result["participants"])
if people.empty:
    st.info("No participant voted.")
else:
    people["group"] = [group_name(None if pd.isna(g) else int(g)) for g in people["group_id"]]
    fig = px.scatter(
        people,
        x="x",
        y="y",
        color="group",
        color_discrete_map=colors,
        category_orders={"group": list(colors)},
        hover_data={"participant_id": True, "n_votes": True, "x": False, "y": False},
        height=460,
        # SVG, not WebGL: a few thousand points draw fine, and on machines without a GPU too
        render_mode="svg",
    )
    fig.update_traces(marker={"size": 6, "opacity": 0.75})
    fig.update_layout(
        margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis_title="", yaxis_title="", legend_title=""
    )
    st.plotly_chart(fig, width="stretch", key="participant-map")
    st.caption(
        "Each dot is a participant placed by their votes (principal components, as Polis); "
        "grey dots voted too little, or agreed or disagreed with nearly everything, and are in "
        "no group."
    )

by_id = {s["statement_id"]: s for s in result["statements"]}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


st.subheader("What each group stands for")
cols = st.columns(max(1, min(len(groups), 3)))
for i, g in enumerate(groups):
    with cols[i % len(cols)].container(border=True):
        name = group_name(g["group_id"])
        st.markdown(f"**{name}** · {g['size']:,} participants")
        for r in g["representative"]:
            verb = "agree" if r["repful_for"] == "agree" else "disagree"
            share = r["n_agree"] if verb == "agree" else r["n_disagree"]
            st.markdown(f"> {r['text']}")
            st.caption(f"{share} of {r['n_seen']} in {name} {verb}")


def statement_rows(ids: list) -> pd.DataFrame:
    rows = []
    for sid in ids:
        s = by_id[sid]
        row = {"statement": s["text"], "GIC": s["gic"], "votes": s["n_votes"]}
        for g in groups:
            row[group_name(g["group_id"])] = s["agree_by_group"].get(str(g["group_id"]))
        row["theme"] = s["theme_label"]
        rows.append(row)
    return frame(rows)


formats = {group_name(g["group_id"]): "{:.0%}" for g in groups} | {"GIC": "{:.3f}"}
left, right = st.columns(2)
with left:
    st.subheader("Common ground")
    common = statement_rows(result["common_ground"])
    if common.empty:
        st.info("No statement is agreed by every group (≥ 60 %) with enough votes.")
    else:
        show_table(common, formats, width="stretch")
with right:
    st.subheader("Divisive")
    divisive = statement_rows(result["divisive"])
    if divisive.empty:
        st.info("No statement splits the groups by 30 points or more.")
    else:
        show_table(divisive, formats, width="stretch")

st.subheader("Themes × groups")
themes = result["themes"]
if not themes:
    st.info("No themes for these statements yet: run an analysis (Data page).")
else:
    rows = []
    for t in themes:
        row = {
            "theme": t["theme_label"],
            "statements": t["statements"],
            "common ground": t["common_ground_share"],
            "divisive": t["divisive_share"],
            "verdict": t["verdict"],
        }
        for g in t["groups"]:
            row[f"{group_name(g['group_id'])} agrees"] = g["mean_agree_probability"]
        rows.append(row)
    table = frame(rows)
    pct_cols = [
        c for c in table.columns if c in ("common ground", "divisive") or c.endswith("agrees")
    ]
    show_table(table, {c: "{:.0%}" for c in pct_cols}, width="stretch")
    for t in themes[:12]:
        with st.expander(f"{t['theme_label']} — {t['verdict']}"):
            for ex in t["common_ground_examples"]:
                st.markdown(f"> {ex['text']}")
                st.caption("common ground")
            for g in t["groups"]:
                for q in g["says"]:
                    st.markdown(f"> {q['text']}")
                    st.caption(
                        f"{group_name(g['group_id'])} {q['stance']} "
                        f"({pct(q['agree_probability'])} agree)"
                    )
