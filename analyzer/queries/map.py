"""Where: located records counted on a grid per source, a bounded sample of points, and areas.

The map page must draw any store (hundreds of thousands of located requests) in a few seconds,
so nothing here returns a row per record: every located record under the filters is counted into
a grid cell (with the theme most of the cell's records belong to), a deterministic sample of at
most ``points`` records per source is returned to draw, and areas are counted with their theme
mix. Each source gets its own grid over its own extent: two cities in one store are two maps, not
two specks on one.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analyzer.errors import InputError
from analyzer.queries.common import (
    Filters,
    Overrides,
    load_overrides,
    number_or_none,
    records_where,
    text_or_none,
    theme_labels,
    theme_where,
)
from analyzer.store.database import Store

DEFAULT_BINS = 60
MAX_BINS = 200
DEFAULT_POINTS = 2000
MAX_POINTS = 5000
# The grid spans a source's coordinates, except those further than EXTENT_MARGIN times the
# 1%-99% range beyond that range: a few records geocoded to the wrong continent must not shrink
# the city to one cell (they are counted as ``outside``), and a small source loses no point.
EXTENT_QUANTILES = (0.01, 0.99)
EXTENT_MARGIN = 0.5
# Smallest extent of a grid, in degrees (a source whose records share one point).
MIN_SPAN = 0.005
AREAS = 25
_HASH_BUCKETS = 1_000_000
AREA_THEMES = 6

# Coordinates that can be on Earth and are not the (0, 0) placeholder some exports write.
_VALID = (
    "r.lat IS NOT NULL AND r.lon IS NOT NULL AND NOT isnan(r.lat) AND NOT isnan(r.lon) "
    "AND r.lat BETWEEN -90 AND 90 AND r.lon BETWEEN -180 AND 180 AND NOT (r.lat = 0 AND r.lon = 0)"
)
_JOINS = "FROM records r LEFT JOIN assignments a ON a.record_id = r.id"


def map_view(
    store: Store,
    filters: Filters | None = None,
    *,
    bins: int = DEFAULT_BINS,
    points: int = DEFAULT_POINTS,
    with_text: bool = False,
) -> dict[str, Any]:
    """Located records under the filters (``theme_id`` included, merges followed), aggregated.

    Returns ``total`` (records under the filters), ``located`` (with usable coordinates),
    ``regions`` (one per source: its extent, cell size and the non-empty cells with their count
    and leading theme), ``points`` (a sample by hashed id, at most ``points`` per source, with
    redacted text only when ``with_text``), ``sampled``, ``areas`` (records per source and area,
    located or not, with their theme mix) and ``themes`` (located records per theme).
    """
    f = filters or Filters()
    if not 4 <= bins <= MAX_BINS:
        raise InputError(f"bins must be between 4 and {MAX_BINS}", column="bins")
    if not 0 <= points <= MAX_POINTS:
        raise InputError(f"points must be between 0 and {MAX_POINTS}", column="points")
    ov = load_overrides(store)
    labels = theme_labels(store)
    where, params = records_where(f, store=store)
    if f.theme_id:
        cond, extra = theme_where(store, f.theme_id, ov)
        where, params = f"{where} AND {cond}", [*params, *extra]
    located_where = f"{where} AND {_VALID}"

    total = int(store.scalar(f"SELECT count(*) {_JOINS} WHERE {where}", params) or 0)
    lo, hi = EXTENT_QUANTILES
    m = EXTENT_MARGIN
    extent = store.query_df(
        f"SELECT source, n, greatest(lat_min, qlat0 - {m} * (qlat1 - qlat0)) AS lat0, "
        f"least(lat_max, qlat1 + {m} * (qlat1 - qlat0)) AS lat1, "
        f"greatest(lon_min, qlon0 - {m} * (qlon1 - qlon0)) AS lon0, "
        f"least(lon_max, qlon1 + {m} * (qlon1 - qlon0)) AS lon1 FROM ("
        f"SELECT r.source, count(*) AS n, quantile_cont(r.lat, {lo}) AS qlat0, "
        f"quantile_cont(r.lat, {hi}) AS qlat1, quantile_cont(r.lon, {lo}) AS qlon0, "
        f"quantile_cont(r.lon, {hi}) AS qlon1, min(r.lat) AS lat_min, max(r.lat) AS lat_max, "
        f"min(r.lon) AS lon_min, max(r.lon) AS lon_max {_JOINS} WHERE {located_where} "
        "GROUP BY 1) ORDER BY n DESC, source",
        params,
    )
    grids = _grids(extent, bins)
    regions: list[dict[str, Any]] = []
    sample: list[dict[str, Any]] = []
    legend: list[dict[str, Any]] = []
    if not grids.empty:
        cells = store.query_with(
            "SELECT r.source, least(floor((r.lat - g.lat0) / g.dlat), g.ny - 1)::INTEGER AS iy, "
            "least(floor((r.lon - g.lon0) / g.dlon), g.nx - 1)::INTEGER AS ix, "
            f"a.theme_id, count(*) AS n {_JOINS} JOIN _grids g ON g.source = r.source "
            f"WHERE {located_where} AND r.lat BETWEEN g.lat0 AND g.lat1 "
            "AND r.lon BETWEEN g.lon0 AND g.lon1 GROUP BY ALL",
            {"_grids": grids},
            params,
        )
        folded = _folded(cells, ["source", "iy", "ix"], ov)
        regions = _regions(grids, folded, ov, labels)
        legend = _legend(folded, ov, labels)
        if points:
            text = ", r.text" if with_text else ""
            # the first ``points`` records of each source by hashed id; a cheap pre-filter on
            # the hash keeps about three times as many, so only those are sorted
            keep = grids.assign(
                keep=[
                    min(_HASH_BUCKETS, math.ceil(_HASH_BUCKETS * 3 * points / n))
                    for n in grids["n"]
                ]
            )
            pts = store.query_with(
                f"SELECT r.id, r.source, r.lat, r.lon, r.area, a.theme_id{text} {_JOINS} "
                f"JOIN _grids g ON g.source = r.source WHERE {located_where} "
                "AND r.lat BETWEEN g.lat0 AND g.lat1 AND r.lon BETWEEN g.lon0 AND g.lon1 "
                f"AND hash(r.id) % {_HASH_BUCKETS} < g.keep "
                "QUALIFY row_number() OVER (PARTITION BY r.source ORDER BY hash(r.id), r.id) <= ? "
                "ORDER BY r.source, hash(r.id), r.id",
                {"_grids": keep},
                [*params, points],
            )
            sample = _points(pts, ov, labels, with_text)
    located = int(extent["n"].sum()) if not extent.empty else 0
    in_grids = sum(reg["located"] - reg["outside"] for reg in regions)
    return {
        "total": total,
        "located": located,
        "regions": regions,
        "points": sample,
        "sampled": len(sample) < in_grids,
        "areas": _areas(store, where, params, ov, labels),
        "themes": legend,
    }


def _grids(extent: pd.DataFrame, bins: int) -> pd.DataFrame:
    """Per source: the grid's corner, cell size and shape. Cells are square on the ground (a
    degree of longitude shrinks with the cosine of the latitude); the longer side has ``bins``."""
    rows = []
    for r in extent.itertuples(index=False):
        lat0, lat1, lon0, lon1 = (number_or_none(v) for v in (r.lat0, r.lat1, r.lon0, r.lon1))
        if None in (lat0, lat1, lon0, lon1):
            continue
        mid = (lat0 + lat1) / 2  # type: ignore[operator]
        shrink = max(math.cos(math.radians(mid)), 0.05)
        lat_span = max(lat1 - lat0, MIN_SPAN)  # type: ignore[operator]
        lon_span = max(lon1 - lon0, MIN_SPAN / shrink)  # type: ignore[operator]
        step = max(lat_span, lon_span * shrink) / bins
        dlat, dlon = step, step / shrink
        rows.append(
            {
                "source": str(r.source),
                "n": int(r.n),
                "lat0": lat0,
                "lat1": lat0 + lat_span,  # type: ignore[operator]
                "lon0": lon0,
                "lon1": lon0 + lon_span,  # type: ignore[operator]
                "dlat": dlat,
                "dlon": dlon,
                "ny": max(1, math.ceil(lat_span / dlat)),
                "nx": max(1, math.ceil(lon_span / dlon)),
            }
        )
    return pd.DataFrame(
        rows, columns=["source", "n", "lat0", "lat1", "lon0", "lon1", "dlat", "dlon", "ny", "nx"]
    )


def _folded(df: pd.DataFrame, keys: list[str], ov: Overrides) -> pd.DataFrame:
    """``n`` per keys and effective theme (merges followed; unassigned records as None)."""
    if df.empty:
        return df.assign(theme=pd.Series(dtype=object))
    resolved = {
        x: (ov.resolve(t) if (t := text_or_none(x)) else None) for x in df["theme_id"].unique()
    }
    out = df.assign(theme=df["theme_id"].map(resolved).astype(object))
    return out.groupby([*keys, "theme"], dropna=False, as_index=False)["n"].sum()


def _label(theme: Any, ov: Overrides, labels: dict[str, str]) -> str | None:
    tid = text_or_none(theme)
    return ov.label(tid, labels.get(tid)) if tid else None


def _regions(
    grids: pd.DataFrame, folded: pd.DataFrame, ov: Overrides, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Each source's grid with its non-empty cells: count and leading theme (most records;
    unassigned records never lead)."""
    keys = ["source", "iy", "ix"]
    totals = folded.groupby(keys, as_index=False)["n"].sum()
    themed = folded[folded["theme"].notna()].sort_values(
        [*keys, "n", "theme"], ascending=[True, True, True, False, True]
    )
    lead = themed.drop_duplicates(keys).rename(columns={"n": "theme_n"})
    cells = totals.merge(lead, on=keys, how="left")
    out = []
    for g in grids.itertuples(index=False):
        part = cells[cells["source"] == g.source]
        items = [
            {
                "lat": round(g.lat0 + (iy + 0.5) * g.dlat, 6),
                "lon": round(g.lon0 + (ix + 0.5) * g.dlon, 6),
                "count": int(n),
                "theme_id": text_or_none(theme),
                "theme_label": _label(theme, ov, labels),
                "theme_count": 0 if pd.isna(theme_n) else int(theme_n),
            }
            for iy, ix, n, theme, theme_n in zip(
                part["iy"], part["ix"], part["n"], part["theme"], part["theme_n"], strict=True
            )
        ]
        inside = int(part["n"].sum())
        out.append(
            {
                "source": g.source,
                "located": int(g.n),
                "outside": int(g.n) - inside,
                "lat_min": round(g.lat0, 6),
                "lat_max": round(g.lat1, 6),
                "lon_min": round(g.lon0, 6),
                "lon_max": round(g.lon1, 6),
                "cell_lat": g.dlat,
                "cell_lon": g.dlon,
                "cells": items,
            }
        )
    return out


def _points(
    df: pd.DataFrame, ov: Overrides, labels: dict[str, str], with_text: bool
) -> list[dict[str, Any]]:
    out = []
    for r in df.to_dict("records"):
        tid = text_or_none(r["theme_id"])
        eff = ov.resolve(tid) if tid else None
        item = {
            "id": str(r["id"]),
            "source": str(r["source"]),
            "lat": float(r["lat"]),
            "lon": float(r["lon"]),
            "area": text_or_none(r["area"]),
            "theme_id": eff,
            "theme_label": _label(eff, ov, labels),
        }
        if with_text:
            item["text"] = str(r.get("text") or "")
        out.append(item)
    return out


def _areas(
    store: Store, where: str, params: list[Any], ov: Overrides, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The busiest areas (per source: two cities' "District 1" are two areas), theme mix each."""
    # the theme mix of the busiest areas only (an area's total does not depend on merges)
    df = store.query_df(
        f"WITH mix AS (SELECT r.source, r.area, a.theme_id, count(*) AS n {_JOINS} "
        f"WHERE {where} AND r.area IS NOT NULL GROUP BY ALL), "
        "top AS (SELECT source, area FROM mix GROUP BY ALL "
        f"ORDER BY sum(n) DESC, source, area LIMIT {AREAS}) "
        "SELECT mix.* FROM mix JOIN top USING (source, area)",
        params,
    )
    folded = _folded(df, ["source", "area"], ov)
    if folded.empty:
        return []
    totals = folded.groupby(["source", "area"])["n"].sum().reset_index()
    totals = totals.sort_values(["n", "source", "area"], ascending=[False, True, True]).head(AREAS)
    out = []
    for t in totals.itertuples(index=False):
        part = folded[(folded["source"] == t.source) & (folded["area"] == t.area)]
        part = part.sort_values(["n", "theme"], ascending=[False, True], na_position="last")
        themes = [
            {
                "theme_id": text_or_none(p.theme),
                "label": _label(p.theme, ov, labels) or "unassigned",
                "count": int(p.n),
            }
            for p in part.head(AREA_THEMES).itertuples(index=False)
        ]
        rest = int(t.n) - sum(x["count"] for x in themes)
        if rest > 0:
            themes.append({"theme_id": None, "label": "other themes", "count": rest})
        out.append(
            {"source": str(t.source), "area": str(t.area), "count": int(t.n), "themes": themes}
        )
    return out


def _legend(folded: pd.DataFrame, ov: Overrides, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Located records per theme on the grids, most first (the map's legend and colours)."""
    themed = folded[folded["theme"].notna()]
    if themed.empty:
        return []
    per = themed.groupby("theme")["n"].sum().reset_index()
    per = per.sort_values(["n", "theme"], ascending=[False, True])
    return [
        {"theme_id": str(t.theme), "label": _label(t.theme, ov, labels), "count": int(t.n)}
        for t in per.itertuples(index=False)
    ]
