"""Overview numbers, the 2-D map of texts, and analysis runs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analyzer.errors import InputError
from analyzer.queries.common import (
    Filters,
    as_timestamp,
    json_value,
    load_overrides,
    records_where,
    rounded,
    text_or_none,
    theme_labels,
    theme_where,
    themes_table,
)
from analyzer.queries.emerging import latest_emerging_run
from analyzer.store.database import Store


def stats(store: Store, filters: Filters | None = None) -> dict[str, Any]:
    """Counts that add up across pages: records per source, categories, rejects, themes, runs."""
    f = filters or Filters()
    where, params = records_where(f, store=store)
    by_source = store.query_df(
        "SELECT r.source, count(*) AS n, min(r.created_at) AS first, max(r.created_at) AS last "
        f"FROM records r WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1",
        params,
    )
    by_category = store.query_df(
        f"SELECT r.category AS key, count(*) AS n FROM records r WHERE {where} "
        "AND r.category IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 25",
        params,
    )
    by_area = store.query_df(
        f"SELECT r.area AS key, count(*) AS n FROM records r WHERE {where} "
        "AND r.area IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 25",
        params,
    )
    sentiment = store.query_df(
        "SELECT s.label AS key, count(*) AS n FROM records r "
        f"JOIN sentiment s ON s.record_id = r.id WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1",
        params,
    )
    series = store.query_df(
        "SELECT date_trunc('week', r.created_at) AS week, count(*) AS n, avg(s.score) AS sentiment "
        f"FROM records r LEFT JOIN sentiment s ON s.record_id = r.id WHERE {where} "
        "AND r.created_at IS NOT NULL GROUP BY 1 ORDER BY 1",
        params,
    )
    assigned = store.query_df(
        f"SELECT count(*) AS n FROM records r JOIN assignments a ON a.record_id = r.id "
        f"WHERE {where} AND a.theme_id IS NOT NULL",
        params,
    )["n"].iloc[0]
    rejects = store.query_df(
        "SELECT reason AS key, count(*) AS n FROM rejects GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
    )
    ov = load_overrides(store)
    themes = themes_table(store)
    top_ids = [str(t) for t in themes.loc[themes["parent_id"].isna(), "theme_id"]]
    sub_ids = [str(t) for t in themes.loc[themes["parent_id"].notna(), "theme_id"]]
    runs = list_runs(store, limit=1)
    latest = latest_emerging_run(store)
    alerts = (
        int(
            store.query_df("SELECT count(*) AS n FROM emerging WHERE run_id = ?", [latest])[
                "n"
            ].iloc[0]
        )
        if latest
        else 0
    )
    total = int(by_source["n"].sum()) if not by_source.empty else 0

    def kv(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"key": str(r.key), "count": int(r.n)} for r in df.itertuples(index=False)]

    return {
        "records": total,
        "assigned": int(assigned),
        "sources": [
            {
                "source": str(r.source),
                "count": int(r.n),
                "first": as_timestamp(r.first),
                "last": as_timestamp(r.last),
            }
            for r in by_source.itertuples(index=False)
        ],
        "categories": kv(by_category),
        "areas": kv(by_area),
        "sentiment": kv(sentiment),
        "series": [
            {"week": as_timestamp(r.week), "count": int(r.n), "sentiment": rounded(r.sentiment)}
            for r in series.itertuples(index=False)
        ],
        "rejects": int(store.query_df("SELECT count(*) AS n FROM rejects")["n"].iloc[0]),
        "reject_reasons": kv(rejects),
        "themes": sum(1 for t in top_ids if ov.resolve(t) == t),
        "subthemes": sum(1 for t in sub_ids if ov.resolve(t) == t),
        "alerts": alerts,
        "corrections": int(store.query_df("SELECT count(*) AS n FROM corrections")["n"].iloc[0]),
        "last_run": runs[0] if runs else None,
    }


def projection(
    store: Store, filters: Filters | None = None, *, limit: int = 5000
) -> dict[str, Any]:
    """Points of the 2-D theme map stored by the last analysis (never recomputed here).

    A deterministic sample (by hashed record id) of at most ``limit`` points keeps the page light.
    """
    f = filters or Filters()
    if not 1 <= limit <= 50_000:
        raise InputError("limit must be between 1 and 50000")
    where, params = records_where(f, store=store)
    ov = load_overrides(store)
    labels = theme_labels(store)
    if f.theme_id:
        cond, extra = theme_where(store, f.theme_id, ov, subthemes=False)
        where, params = f"{where} AND {cond}", [*params, *extra]
    base = (
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        "WHERE a.x IS NOT NULL AND a.y IS NOT NULL AND NOT isnan(a.x) AND NOT isnan(a.y) "
        f"AND {where}"
    )
    total = int(store.query_df(f"SELECT count(*) AS n {base}", params)["n"].iloc[0])
    df = store.query_df(
        f"SELECT r.id, r.text, a.theme_id, a.subtheme_id, a.x, a.y {base} "
        "ORDER BY hash(r.id) LIMIT ?",
        [*params, limit],
    )
    points = []
    for r in df.itertuples(index=False):
        tid = text_or_none(r.theme_id)
        eff = ov.resolve(tid) if tid else None
        points.append(
            {
                "record_id": str(r.id),
                "x": float(r.x),
                "y": float(r.y),
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff)) if eff else None,
                "subtheme_id": text_or_none(r.subtheme_id),
                "text": str(r.text),
            }
        )
    return {"points": points, "total": total, "sampled": total > len(points)}


# -- runs ------------------------------------------------------------------------------------


def _run_item(r: Any) -> dict[str, Any]:
    return {
        "run_id": str(r.run_id),
        "kind": text_or_none(r.kind),
        "status": text_or_none(r.status),
        "started_at": as_timestamp(r.started_at),
        "finished_at": as_timestamp(r.finished_at),
        "progress": rounded(r.progress) or 0.0,
        "message": text_or_none(r.message),
        "manifest": json_value(r.manifest, {}),
    }


def run_status(store: Store, run_id: str) -> dict[str, Any] | None:
    df = store.query_df(
        "SELECT run_id, kind, status, started_at, finished_at, progress, message, manifest "
        "FROM runs WHERE run_id = ?",
        [run_id],
    )
    return None if df.empty else _run_item(next(df.itertuples(index=False)))


def list_runs(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    df = store.query_df(
        "SELECT run_id, kind, status, started_at, finished_at, progress, message, manifest "
        "FROM runs ORDER BY started_at DESC NULLS LAST, run_id DESC LIMIT ?",
        [limit],
    )
    return [_run_item(r) for r in df.itertuples(index=False)]
