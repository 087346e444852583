"""Every write of an analysis run: themes (with retirement), assignments, lineage, sentiment and
emerging-needs alerts. Called inside one ``Store.transaction()`` so that a crash leaves the previous
analysis in place."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from analyzer.store.database import drain

THEME_COLUMNS = (
    "theme_id",
    "parent_id",
    "level",
    "label",
    "keywords",
    "size",
    "examples",
    "breakdown",
    "sentiment",
    "centroid",
    "status",
    "run_id",
    "source",
)
LINEAGE_COLUMNS = ("run_id", "theme_id", "event", "related", "source")


def write_themes(con: Any, result: dict[str, Any], run_id: str) -> None:
    """Themes, assignments and lineage of one run (``run_themes``' result).

    A re-fit source's themes that the re-fit did not keep are marked retired (kept, so that their
    ids are never reused); a retired theme is never written again, so nothing re-activates it.
    """
    themes = pd.DataFrame(result["themes"], columns=list(THEME_COLUMNS))
    assignments = (
        pd.concat(result["assignments"], ignore_index=True)
        if result["assignments"]
        else pd.DataFrame()
    )
    if themes.empty:
        return
    themes["first_seen_run"] = run_id
    refit = sorted(
        str(src)
        for src, info in result.get("per_source", {}).items()
        if info.get("mode") == "refit"
    )
    con.register("_themes", themes)
    con.register("_assign", assignments)
    try:
        drain(
            con.execute(
                "UPDATE themes SET status = 'retired' WHERE source IN (SELECT unnest(?::VARCHAR[])) "
                "AND theme_id NOT IN (SELECT theme_id FROM _themes)",
                [refit],
            )
        )
        drain(
            con.execute(
                "INSERT INTO themes (theme_id, parent_id, level, label, keywords, size, examples, "
                "breakdown, sentiment, centroid, status, run_id, first_seen_run, source) "
                "SELECT theme_id, parent_id, level, label, keywords, size, examples, breakdown, "
                "sentiment, centroid, status, run_id, first_seen_run, source FROM _themes "
                "ON CONFLICT (theme_id) DO UPDATE SET parent_id = excluded.parent_id, "
                "level = excluded.level, label = excluded.label, keywords = excluded.keywords, "
                "size = excluded.size, examples = excluded.examples, "
                "breakdown = excluded.breakdown, sentiment = excluded.sentiment, "
                "centroid = excluded.centroid, status = 'active', run_id = excluded.run_id, "
                "source = excluded.source WHERE coalesce(themes.status, 'active') <> 'retired'"
            )
        )
        if not assignments.empty:
            # Incremental rows carry no projection; keep the map position of the nearest neighbours' theme.
            drain(
                con.execute(
                    "INSERT INTO assignments SELECT record_id, theme_id, subtheme_id, x, y, run_id FROM _assign "
                    "ON CONFLICT (record_id) DO UPDATE SET theme_id = excluded.theme_id, "
                    "subtheme_id = excluded.subtheme_id, x = coalesce(excluded.x, assignments.x), "
                    "y = coalesce(excluded.y, assignments.y), run_id = excluded.run_id"
                )
            )
        if result["lineage"]:
            lin = pd.DataFrame(result["lineage"], columns=list(LINEAGE_COLUMNS))
            con.register("_lin", lin)
            try:
                drain(
                    con.execute(
                        f"INSERT INTO theme_lineage ({', '.join(LINEAGE_COLUMNS)}) "
                        f"SELECT {', '.join(LINEAGE_COLUMNS)} FROM _lin"
                    )
                )
            finally:
                con.unregister("_lin")
    finally:
        con.unregister("_themes")
        con.unregister("_assign")


def write_sentiment(con: Any, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    con.register("_sent", rows)
    try:
        drain(
            con.execute(
                "INSERT OR REPLACE INTO sentiment SELECT record_id, model_id, label, score FROM _sent"
            )
        )
    finally:
        con.unregister("_sent")


def emerging_columns() -> tuple[str, ...]:
    from analyzer.trends.detector import ALERT_COLUMNS

    return ("run_id", *ALERT_COLUMNS)


def write_alerts(con: Any, alerts: pd.DataFrame) -> None:
    if alerts.empty:
        return
    frame = alerts.reindex(columns=list(emerging_columns())).copy()
    frame["examples"] = frame["examples"].map(
        lambda xs: json.dumps(list(xs) if xs is not None else [])
    )
    con.register("_alerts", frame)
    try:
        drain(con.execute("INSERT INTO emerging SELECT * FROM _alerts"))
    finally:
        con.unregister("_alerts")
