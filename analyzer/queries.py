"""The read layer over the store, shared by the API and the explorer (no web framework here).

Everything a user reads goes through these functions, so the rules that protect residents and keep
numbers consistent live in one place:

- only the redacted ``records.text`` is ever returned; ``raw_text`` is never selected;
- theme overrides (renames and merges made in the explorer) are applied on every read, so a merged
  theme's records count toward the theme it was merged into and a renamed theme shows its new label;
- filters (source, time window, area, category) mean the same thing for every query: ``since`` is
  inclusive, ``until`` exclusive, both compared with ``records.created_at`` (UTC).

Write helpers ``rename_theme`` and ``merge_themes`` persist to ``theme_overrides``, which the
analysis never rewrites, so the explorer's edits survive the next run (theme ids are stable).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from analyzer.errors import InputError
from analyzer.store import Store, decode_vectors

__all__ = [
    "Filters",
    "Page",
    "ThemeNotFoundError",
    "get_record",
    "latest_emerging_run",
    "list_emerging",
    "list_runs",
    "list_themes",
    "merge_themes",
    "projection",
    "rename_theme",
    "run_status",
    "search_records",
    "stats",
    "theme_detail",
    "theme_record_chunks",
    "theme_sentiment_split",
    "unmerge_theme",
]

# Growth compares the last GROWTH_WINDOW of the filtered period with the window before it.
GROWTH_WINDOW = timedelta(days=28)
MAX_PAGE = 1000
CLOSED_STATUSES = ("closed", "close", "resolved", "completed", "done")
MAX_LABEL_CHARS = 200
EXAMPLES_PER_THEME = 5
# Centrality for examples is computed on at most this many members (a deterministic sample).
EXAMPLE_CANDIDATES = 2000
# Similarity search reads cached vectors in chunks of this many rows to bound memory.
SEARCH_CHUNK = 20_000


class ThemeNotFoundError(LookupError):
    """No theme with this id in the store."""

    def __init__(self, theme_id: str) -> None:
        self.theme_id = theme_id
        super().__init__(f"no theme {theme_id!r}")


class TextEmbedder(Protocol):
    """What similarity search needs from an embedder (``analyzer.embed.Embedder`` fits)."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Filters:
    """Record filters shared by every query. Empty tuples and ``None`` mean "no filter"."""

    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    area: str | None = None
    category: str | None = None
    # Used by the records search and the Open311 front door.
    theme_id: str | None = None
    ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    # Open311's two states over a city's own status words: True closed, False open, None both.
    closed: bool | None = None

    def active(self) -> bool:
        return any(
            [
                self.source,
                self.since,
                self.until,
                self.area,
                self.category,
                self.theme_id,
                self.ids,
                self.categories,
                self.statuses,
                self.closed is not None,
            ]
        )


@dataclass(frozen=True)
class Page:
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}")
        if self.offset < 0:
            raise InputError("offset must be 0 or more")


@dataclass
class _Overrides:
    labels: dict[str, str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)

    def resolve(self, theme_id: str) -> str:
        """Follow merges to the theme that now holds this one's records (cycle-safe)."""
        seen = {theme_id}
        current = theme_id
        while current in self.merged_into:
            nxt = self.merged_into[current]
            if nxt in seen:
                break
            seen.add(nxt)
            current = nxt
        return current

    def label(self, theme_id: str, stored: str | None) -> str:
        return self.labels.get(theme_id) or (stored or theme_id)


# -- small helpers ---------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(value: Any) -> datetime | None:
    """A pandas/duckdb timestamp as an aware datetime (None for NaT / NULL)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return _utc(value)
    return None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def _str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _json(value: Any, default: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def _records_where(f: Filters, alias: str = "r") -> tuple[str, list[Any]]:
    """SQL conditions and parameters for the record filters (always a valid WHERE body)."""
    conds: list[str] = ["TRUE"]
    params: list[Any] = []
    if f.source:
        conds.append(f"{alias}.source = ?")
        params.append(f.source)
    if f.since:
        conds.append(f"{alias}.created_at >= ?")
        params.append(_utc(f.since))
    if f.until:
        conds.append(f"{alias}.created_at < ?")
        params.append(_utc(f.until))
    if f.area:
        conds.append(f"{alias}.area = ?")
        params.append(f.area)
    if f.category:
        conds.append(f"{alias}.category = ?")
        params.append(f.category)
    if f.ids:
        conds.append(f"{alias}.id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(f.ids))
    if f.categories:
        conds.append(f"{alias}.category IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(f.categories))
    if f.statuses:
        conds.append(f"lower({alias}.status) IN (SELECT unnest(?::VARCHAR[]))")
        params.append([s.lower() for s in f.statuses])
    if f.closed is not None:
        neg = "" if f.closed else "NOT "
        conds.append(f"{neg}(lower(coalesce({alias}.status, '')) IN (SELECT unnest(?::VARCHAR[])))")
        params.append(list(CLOSED_STATUSES))
    return " AND ".join(conds), params


def _overrides(store: Store) -> _Overrides:
    df = store.query_df("SELECT theme_id, label, merged_into FROM theme_overrides")
    out = _Overrides()
    for tid, label, into in df.itertuples(index=False):
        if _str(label):
            out.labels[tid] = str(label)
        if _str(into):
            out.merged_into[tid] = str(into)
    return out


def _themes_table(store: Store, *, include_retired: bool = False) -> pd.DataFrame:
    where = "" if include_retired else "WHERE coalesce(status, 'active') <> 'retired'"
    return store.query_df(
        "SELECT theme_id, parent_id, level, label, keywords, size, examples, breakdown, sentiment, "
        f"status, run_id, first_seen_run FROM themes {where}"
    )


def _members_of(theme_id: str, ov: _Overrides, known: Iterable[str]) -> list[str]:
    """The stored theme ids whose records now belong to ``theme_id`` (itself and what merged in)."""
    return sorted({t for t in known if ov.resolve(t) == theme_id} | {theme_id})


def _growth(recent: int, previous: int) -> float | None:
    # No growth figure without a baseline: "new" is reported through the emerging-needs alerts.
    return None if previous <= 0 else round((recent - previous) / previous, 4)


def _reference_end(store: Store, f: Filters) -> datetime | None:
    """End of the filtered period: ``until`` when given, else just after the latest record."""
    if f.until:
        return _utc(f.until)
    where, params = _records_where(f)
    df = store.query_df(f"SELECT max(r.created_at) AS last FROM records r WHERE {where}", params)
    last = _ts(df["last"].iloc[0]) if not df.empty else None
    return None if last is None else last + timedelta(seconds=1)


# -- themes ----------------------------------------------------------------------------------


def _theme_counts(
    store: Store, f: Filters, column: str, ref_end: datetime | None
) -> dict[str, dict[str, float]]:
    """Per stored theme id in ``column`` (theme_id or subtheme_id): counts, sentiment, growth."""
    where, params = _records_where(f)
    end = ref_end or datetime(1970, 1, 1, tzinfo=UTC)
    mid, start = end - GROWTH_WINDOW, end - 2 * GROWTH_WINDOW
    df = store.query_df(
        f"SELECT a.{column} AS tid, count(*) AS n, sum(s.score) AS ssum, count(s.score) AS sn, "
        "count(*) FILTER (WHERE r.created_at >= ? AND r.created_at < ?) AS recent, "
        "count(*) FILTER (WHERE r.created_at >= ? AND r.created_at < ?) AS previous "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        "LEFT JOIN sentiment s ON s.record_id = a.record_id "
        f"WHERE a.{column} IS NOT NULL AND {where} GROUP BY a.{column}",
        [mid, end, start, mid, *params],
    )
    return {
        str(r.tid): {
            "n": int(r.n),
            "ssum": float(r.ssum) if _num(r.ssum) is not None else 0.0,
            "sn": int(r.sn),
            "recent": int(r.recent),
            "previous": int(r.previous),
        }
        for r in df.itertuples(index=False)
    }


def _fold(counts: dict[str, dict[str, float]], ov: _Overrides) -> dict[str, dict[str, float]]:
    """Add each stored theme's counts to the theme it was merged into."""
    out: dict[str, dict[str, float]] = {}
    for tid, c in counts.items():
        acc = out.setdefault(
            ov.resolve(tid), {"n": 0, "ssum": 0.0, "sn": 0, "recent": 0, "previous": 0}
        )
        for k, v in c.items():
            acc[k] += v
    return out


def _summary(
    row: Any, c: dict[str, float], ov: _Overrides, merged_from: list[str]
) -> dict[str, Any]:
    tid = str(row.theme_id)
    return {
        "theme_id": tid,
        "label": ov.label(tid, _str(row.label)),
        "original_label": _str(row.label),
        "keywords": [str(k) for k in _json(row.keywords, [])],
        "level": int(row.level) if _num(row.level) is not None else None,
        "parent_id": _str(row.parent_id),
        "size": int(c["n"]),
        "recent_count": int(c["recent"]),
        "previous_count": int(c["previous"]),
        "growth": _growth(int(c["recent"]), int(c["previous"])),
        "sentiment": round(c["ssum"] / c["sn"], 4) if c["sn"] else None,
        "merged_from": merged_from,
        "run_id": _str(row.run_id),
    }


_SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "size": lambda t: t["size"],
    "growth": lambda t: t["growth"],
    "sentiment": lambda t: t["sentiment"],
    "label": lambda t: t["label"].lower(),
}


def list_themes(
    store: Store,
    filters: Filters | None = None,
    page: Page | None = None,
    *,
    sort: str = "size",
    descending: bool = True,
) -> dict[str, Any]:
    """Top-level themes with at least one record under the filters: size, growth and sentiment.

    Returns ``{"items": [...], "total": n, "assigned": records in a theme, "period_end": ...}``.
    """
    f, page = filters or Filters(), page or Page()
    if sort not in _SORT_KEYS:
        raise InputError(f"sort must be one of {', '.join(_SORT_KEYS)}")
    ov = _overrides(store)
    themes = _themes_table(store)
    ref_end = _reference_end(store, f)
    folded = _fold(_theme_counts(store, f, "theme_id", ref_end), ov)
    top = themes[themes["parent_id"].isna()]
    sub_parent = themes.loc[themes["parent_id"].notna(), "parent_id"].map(str)
    items = []
    for row in top.itertuples(index=False):
        tid = str(row.theme_id)
        if ov.resolve(tid) != tid or tid not in folded or folded[tid]["n"] <= 0:
            continue
        merged_from = [t for t in _members_of(tid, ov, top["theme_id"]) if t != tid]
        item = _summary(row, folded[tid], ov, merged_from)
        members = set(_members_of(tid, ov, top["theme_id"]))
        item["subtheme_count"] = int(sub_parent.isin(members).sum())
        items.append(item)
    key = _SORT_KEYS[sort]
    # Themes without a value (no baseline, no sentiment) always sort last, whatever the order.
    present = [t for t in items if key(t) is not None]
    missing = [t for t in items if key(t) is None]
    present.sort(key=lambda t: (key(t), t["theme_id"]), reverse=descending)
    missing.sort(key=lambda t: t["theme_id"])
    ordered = present + missing
    assigned = int(sum(c["n"] for c in folded.values()))
    return {
        "items": ordered[page.offset : page.offset + page.limit],
        "total": len(ordered),
        "assigned": assigned,
        "period_end": ref_end,
    }


def theme_detail(store: Store, theme_id: str, filters: Filters | None = None) -> dict[str, Any]:
    """One theme (merges followed) with sub-themes, weekly series, areas, examples and lineage."""
    f = filters or Filters()
    ov = _overrides(store)
    all_themes = _themes_table(store, include_retired=True)
    if theme_id not in set(all_themes["theme_id"]):
        raise ThemeNotFoundError(theme_id)
    target = ov.resolve(theme_id)
    by_id = {str(r.theme_id): r for r in all_themes.itertuples(index=False)}
    row = by_id.get(target, by_id[theme_id])
    target = str(row.theme_id)
    is_top = _str(row.parent_id) is None
    column = "theme_id" if is_top else "subtheme_id"
    members = _members_of(target, ov, by_id)
    ref_end = _reference_end(store, f)
    counts = _fold(_theme_counts(store, f, column, ref_end), ov)
    empty = {"n": 0, "ssum": 0.0, "sn": 0, "recent": 0, "previous": 0}
    detail = _summary(row, counts.get(target, empty), ov, [m for m in members if m != target])
    detail["status"] = _str(row.status) or "active"
    detail["first_seen_run"] = _str(row.first_seen_run)
    detail["requested_id"] = theme_id
    detail["period_end"] = ref_end

    # Sub-themes of this theme and of every theme merged into it, merges among them followed.
    subs = []
    if is_top:
        sub_counts = _fold(_theme_counts(store, f, "subtheme_id", ref_end), ov)
        for sid, srow in by_id.items():
            if _str(srow.parent_id) not in members or (_str(srow.status) or "active") == "retired":
                continue
            if ov.resolve(sid) != sid:
                continue
            c = sub_counts.get(sid, empty)
            subs.append(
                {
                    "theme_id": sid,
                    "label": ov.label(sid, _str(srow.label)),
                    "keywords": [str(k) for k in _json(srow.keywords, [])],
                    "size": int(c["n"]),
                    "sentiment": round(c["ssum"] / c["sn"], 4) if c["sn"] else None,
                }
            )
        subs.sort(key=lambda s: (-s["size"], s["theme_id"]))
    detail["subthemes"] = subs
    detail["subtheme_count"] = len(subs)

    where, params = _records_where(f)
    member_cond = f"a.{column} IN (SELECT unnest(?::VARCHAR[]))"
    series = store.query_df(
        "SELECT date_trunc('week', r.created_at) AS week, count(*) AS n, avg(s.score) AS sentiment "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        "LEFT JOIN sentiment s ON s.record_id = a.record_id "
        f"WHERE {member_cond} AND r.created_at IS NOT NULL AND {where} GROUP BY 1 ORDER BY 1",
        [members, *params],
    )
    detail["series"] = [
        {"week": _ts(r.week), "count": int(r.n), "sentiment": _round(r.sentiment)}
        for r in series.itertuples(index=False)
    ]
    detail["areas"] = _breakdown(store, "area", member_cond, members, where, params)
    detail["categories"] = _breakdown(store, "category", member_cond, members, where, params)
    detail["sources"] = _breakdown(store, "source", member_cond, members, where, params)
    detail["examples"] = _examples(store, target, row, column, members, f)
    lineage = store.query_df(
        "SELECT l.run_id, l.theme_id, l.event, l.related, r.started_at FROM theme_lineage l "
        "LEFT JOIN runs r USING (run_id) WHERE l.theme_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY r.started_at NULLS LAST, l.run_id",
        [members],
    )
    detail["lineage"] = [
        {
            "run_id": _str(r.run_id),
            "theme_id": str(r.theme_id),
            "event": str(r.event),
            "related": [str(x) for x in _json(r.related, [])],
            "at": _ts(r.started_at),
        }
        for r in lineage.itertuples(index=False)
    ]
    return detail


@dataclass(frozen=True)
class _Target:
    """A requested theme id resolved through merges: the theme that now holds its records."""

    theme_id: str
    column: str  # assignments column to match: theme_id (top level) or subtheme_id
    members: list[str]


def _target(store: Store, theme_id: str) -> _Target:
    ov = _overrides(store)
    all_themes = _themes_table(store, include_retired=True)
    by_id = {str(r.theme_id): r for r in all_themes.itertuples(index=False)}
    if theme_id not in by_id:
        raise ThemeNotFoundError(theme_id)
    target = ov.resolve(theme_id)
    row = by_id.get(target, by_id[theme_id])
    target = str(row.theme_id)
    column = "theme_id" if _str(row.parent_id) is None else "subtheme_id"
    return _Target(target, column, _members_of(target, ov, by_id))


def theme_sentiment_split(
    store: Store, theme_id: str, filters: Filters | None = None
) -> list[dict[str, Any]]:
    """Records of a theme (merges followed) per sentiment label under the filters."""
    t = _target(store, theme_id)
    where, params = _records_where(filters or Filters())
    df = store.query_df(
        "SELECT s.label AS key, count(*) AS n FROM assignments a "
        "JOIN records r ON r.id = a.record_id JOIN sentiment s ON s.record_id = a.record_id "
        f"WHERE a.{t.column} IN (SELECT unnest(?::VARCHAR[])) AND {where} "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        [t.members, *params],
    )
    return [{"key": str(r.key), "count": int(r.n)} for r in df.itertuples(index=False)]


def theme_record_chunks(
    store: Store, theme_id: str, filters: Filters | None = None, *, chunk_rows: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    """Every record of a theme (merges followed) under the filters, oldest first, in chunks.

    Redacted text only, like every read here. An unknown theme raises ``ThemeNotFoundError`` at
    the call, before any chunk is read. Chunks are read by key (created_at, id), never by offset,
    and each takes the store lock on its own, so a big theme streams in bounded memory without
    holding other readers up.
    """
    if chunk_rows < 1:
        raise InputError("chunk_rows must be 1 or more")
    t = _target(store, theme_id)
    where, params = _records_where(filters or Filters())
    base = f"{_RECORD_JOINS} WHERE a.{t.column} IN (SELECT unnest(?::VARCHAR[])) AND {where}"
    base_params: list[Any] = [t.members, *params]

    def chunks() -> Iterator[list[dict[str, Any]]]:
        ov, labels = _overrides(store), _label_map(store)
        after: tuple[Any, str] | None = None  # (created_at, id) of the last row sent
        while True:
            cond, cparams = "TRUE", []
            if after is not None and after[0] is not None:
                cond = (
                    "(r.created_at > ? OR (r.created_at = ? AND r.id > ?) OR r.created_at IS NULL)"
                )
                cparams = [after[0], after[0], after[1]]
            elif after is not None:
                cond = "(r.created_at IS NULL AND r.id > ?)"
                cparams = [after[1]]
            df = store.query_df(
                f"SELECT {_RECORD_COLUMNS} {base} AND {cond} "
                "ORDER BY r.created_at NULLS LAST, r.id LIMIT ?",
                [*base_params, *cparams, chunk_rows],
            )
            if df.empty:
                return
            last = df.iloc[-1]
            created = last["created_at"]
            after = (_ts(created), str(last["id"]))
            yield _record_items(df, ov, labels)
            if len(df) < chunk_rows:
                return

    return chunks()


def _round(value: Any, digits: int = 4) -> float | None:
    v = _num(value)
    return None if v is None else round(v, digits)


def _breakdown(
    store: Store,
    column: str,
    member_cond: str,
    members: list[str],
    where: str,
    params: list[Any],
    top: int = 20,
) -> list[dict[str, Any]]:
    df = store.query_df(
        f"SELECT r.{column} AS key, count(*) AS n, avg(s.score) AS sentiment "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        "LEFT JOIN sentiment s ON s.record_id = a.record_id "
        f"WHERE {member_cond} AND r.{column} IS NOT NULL AND {where} "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        [members, *params, top],
    )
    return [
        {"key": str(r.key), "count": int(r.n), "sentiment": _round(r.sentiment)}
        for r in df.itertuples(index=False)
    ]


def _record_items(df: pd.DataFrame, ov: _Overrides, labels: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for r in df.to_dict("records"):
        tid = _str(r.get("theme_id"))
        eff = ov.resolve(tid) if tid else None
        sid = _str(r.get("subtheme_id"))
        eff_sub = ov.resolve(sid) if sid else None
        out.append(
            {
                "id": str(r["id"]),
                "source": _str(r.get("source")),
                "text": str(r.get("text") or ""),
                "created_at": _ts(r.get("created_at")),
                "updated_at": _ts(r.get("updated_at")),
                "category": _str(r.get("category")),
                "status": _str(r.get("status")),
                "lat": _num(r.get("lat")),
                "lon": _num(r.get("lon")),
                "area": _str(r.get("area")),
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff)) if eff else None,
                "subtheme_id": eff_sub,
                "subtheme_label": ov.label(eff_sub, labels.get(eff_sub)) if eff_sub else None,
                "sentiment": _str(r.get("sentiment")),
                "sentiment_score": _round(r.get("sentiment_score")),
            }
        )
        if "attributes" in r:
            # Attributes were redacted by ingest (free-text columns, house numbers dropped).
            out[-1]["attributes"] = _json(r["attributes"], {})
    return out


# Only these columns of records are ever read for display: never raw_text.
_RECORD_COLUMNS = (
    "r.id, r.source, r.text, r.created_at, r.updated_at, r.category, r.status, r.lat, r.lon, "
    "r.area, a.theme_id, a.subtheme_id, s.label AS sentiment, s.score AS sentiment_score"
)
_ID_IN = "r.id IN (SELECT unnest(?::VARCHAR[]))"
_RECORD_JOINS = (
    "FROM records r LEFT JOIN assignments a ON a.record_id = r.id "
    "LEFT JOIN sentiment s ON s.record_id = r.id"
)


def _examples(
    store: Store, target: str, row: Any, column: str, members: list[str], f: Filters
) -> list[dict[str, Any]]:
    """Representative redacted examples: the analysis' own picks when unfiltered, else central
    and diverse members under the filters (nearest the theme centroid, near-duplicates skipped)."""
    ov = _overrides(store)
    labels = _label_map(store)
    stored = [x for x in _json(row.examples, []) if isinstance(x, (str, dict))]
    if not f.active() and stored:
        ids = [
            x if isinstance(x, str) else str(x.get("record_id") or x.get("id") or "")
            for x in stored
        ]
        df = store.query_df(
            f"SELECT {_RECORD_COLUMNS} {_RECORD_JOINS} WHERE r.id IN (SELECT unnest(?::VARCHAR[]))",
            [[i for i in ids if i]],
        )
        if not df.empty:
            order = {rid: i for i, rid in enumerate(ids)}
            df = df.assign(_o=df["id"].map(order)).sort_values("_o").drop(columns="_o")
            return _record_items(df, ov, labels)[:EXAMPLES_PER_THEME]
        # The analysis stored example texts rather than ids: they are redacted already.
        texts = [x if isinstance(x, str) else str(x.get("text") or "") for x in stored]
        return [_bare_example(t) for t in texts if t][:EXAMPLES_PER_THEME]

    where, params = _records_where(f)
    cand = store.query_df(
        f"SELECT {_RECORD_COLUMNS}, r.text_hash {_RECORD_JOINS} "
        f"WHERE a.{column} IN (SELECT unnest(?::VARCHAR[])) AND {where} "
        "ORDER BY hash(r.id) LIMIT ?",
        [members, *params, EXAMPLE_CANDIDATES],
    )
    if cand.empty:
        return []
    centroid = store.query_df("SELECT centroid FROM themes WHERE theme_id = ?", [target])
    blob = centroid["centroid"].iloc[0] if not centroid.empty else None
    order = list(range(len(cand)))
    if isinstance(blob, bytes | bytearray | memoryview):  # NULL comes back as None, NaN or NA
        c = decode_vectors([blob])[0]
        vecs = _vectors_for(store, cand["text_hash"].tolist(), dim=len(c))
        if vecs is not None:
            mat, have = vecs
            sims = np.full(len(cand), -2.0, dtype=np.float32)
            idx = [i for i, h in enumerate(cand["text_hash"]) if h in have]
            if idx:
                m = np.vstack([mat[have[cand["text_hash"].iloc[i]]] for i in idx])
                sims[idx] = m @ (c / (np.linalg.norm(c) or 1.0))
            order = list(np.argsort(-sims, kind="stable"))
            chosen: list[int] = []
            chosen_vecs: list[np.ndarray] = []
            for i in order:
                h = cand["text_hash"].iloc[i]
                v = mat[have[h]] if h in have else None
                # Skip near-duplicates of a chosen example, so the five say different things.
                if v is not None and any(float(v @ w) > 0.95 for w in chosen_vecs):
                    continue
                chosen.append(int(i))
                if v is not None:
                    chosen_vecs.append(v)
                if len(chosen) == EXAMPLES_PER_THEME:
                    break
            order = chosen
    picked = cand.iloc[order[:EXAMPLES_PER_THEME]].drop(columns="text_hash")
    return _record_items(picked, ov, labels)


def _bare_example(text: str) -> dict[str, Any]:
    return {
        "id": None,
        "source": None,
        "text": text,
        "created_at": None,
        "updated_at": None,
        "category": None,
        "status": None,
        "lat": None,
        "lon": None,
        "area": None,
        "theme_id": None,
        "theme_label": None,
        "subtheme_id": None,
        "subtheme_label": None,
        "sentiment": None,
        "sentiment_score": None,
    }


def _main_model_id(store: Store) -> str | None:
    df = store.query_df(
        "SELECT model_id FROM embeddings GROUP BY model_id ORDER BY count(*) DESC, model_id LIMIT 1"
    )
    return None if df.empty else str(df["model_id"].iloc[0])


def _vectors_for(
    store: Store, hashes: list[str], *, dim: int, model_id: str | None = None
) -> tuple[np.ndarray, dict[str, int]] | None:
    model_id = model_id or _main_model_id(store)
    if model_id is None or not hashes:
        return None
    df = store.query_df(
        "SELECT text_hash, vector FROM embeddings WHERE model_id = ? "
        "AND text_hash IN (SELECT unnest(?::VARCHAR[]))",
        [model_id, list(set(hashes))],
    )
    if df.empty:
        return None
    mat = decode_vectors(df["vector"])
    if mat.shape[1] != dim:
        return None
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return mat / norms, {h: i for i, h in enumerate(df["text_hash"])}


def _theme_ids(store: Store) -> list[str]:
    return [str(t) for t in store.query_df("SELECT theme_id FROM themes")["theme_id"]]


def _label_map(store: Store) -> dict[str, str]:
    df = store.query_df("SELECT theme_id, label FROM themes")
    return {str(t): str(lbl) for t, lbl in df.itertuples(index=False) if _str(lbl)}


# -- theme overrides (explorer edits) --------------------------------------------------------


def _theme_row(store: Store, theme_id: str) -> dict[str, Any]:
    df = store.query_df(
        "SELECT theme_id, parent_id, label FROM themes WHERE theme_id = ?", [theme_id]
    )
    if df.empty:
        raise ThemeNotFoundError(theme_id)
    r = df.iloc[0]
    return {
        "theme_id": str(r["theme_id"]),
        "parent_id": _str(r["parent_id"]),
        "label": _str(r["label"]),
    }


def rename_theme(store: Store, theme_id: str, label: str) -> dict[str, Any]:
    """Give a theme a human label; kept across analysis runs (ids are stable)."""
    label = " ".join((label or "").split())
    if not label:
        raise InputError("label must not be empty", column="label")
    if len(label) > MAX_LABEL_CHARS:
        raise InputError(f"label is longer than {MAX_LABEL_CHARS} characters", column="label")
    _theme_row(store, theme_id)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO theme_overrides (theme_id, label, merged_into, updated_at) "
            "VALUES (?, ?, NULL, current_timestamp) ON CONFLICT (theme_id) DO UPDATE SET "
            "label = excluded.label, updated_at = excluded.updated_at",
            [theme_id, label],
        )
    return {"theme_id": theme_id, "label": label}


def merge_themes(store: Store, theme_id: str, into: str) -> dict[str, Any]:
    """Fold ``theme_id`` into ``into``: its records and sub-themes count toward ``into``."""
    if theme_id == into:
        raise InputError("a theme cannot be merged into itself", column="into")
    src, dst = _theme_row(store, theme_id), _theme_row(store, into)
    if (src["parent_id"] is None) != (dst["parent_id"] is None):
        raise InputError("themes can only be merged with themes of the same level", column="into")
    ov = _overrides(store)
    final = ov.resolve(into)
    if final == theme_id:
        raise InputError(f"{into!r} is already merged into {theme_id!r}", column="into")
    with store.transaction() as con:
        con.execute(
            "INSERT INTO theme_overrides (theme_id, label, merged_into, updated_at) "
            "VALUES (?, NULL, ?, current_timestamp) ON CONFLICT (theme_id) DO UPDATE SET "
            "merged_into = excluded.merged_into, updated_at = excluded.updated_at",
            [theme_id, final],
        )
    return {"theme_id": theme_id, "merged_into": final}


def unmerge_theme(store: Store, theme_id: str) -> dict[str, Any]:
    """Undo a merge: the theme stands on its own again."""
    _theme_row(store, theme_id)
    store.execute(
        "UPDATE theme_overrides SET merged_into = NULL, updated_at = current_timestamp "
        "WHERE theme_id = ?",
        [theme_id],
    )
    return {"theme_id": theme_id, "merged_into": None}


# -- emerging needs --------------------------------------------------------------------------


def latest_emerging_run(store: Store) -> str | None:
    """The newest run that wrote alerts (alerts of older runs are history, not news)."""
    df = store.query_df(
        "SELECT e.run_id, max(r.started_at) AS started FROM emerging e LEFT JOIN runs r "
        "USING (run_id) GROUP BY e.run_id ORDER BY started DESC NULLS LAST, e.run_id DESC LIMIT 1"
    )
    return None if df.empty else _str(df["run_id"].iloc[0])


def list_emerging(
    store: Store,
    filters: Filters | None = None,
    page: Page | None = None,
    *,
    run_id: str | None = None,
    kind: str | None = None,
    max_q: float | None = None,
) -> dict[str, Any]:
    """Alerts of the latest run (or ``run_id``), strongest evidence first.

    ``since``/``until`` keep alerts whose window overlaps the period; ``source`` and ``category``
    keep alerts on themes with records of that source / category; ``area`` matches the alert's.
    """
    f, page = filters or Filters(), page or Page()
    run = run_id or latest_emerging_run(store)
    if run is None:
        return {"items": [], "total": 0, "run_id": None}
    conds, params = ["e.run_id = ?"], [run]
    if f.area:
        conds.append("e.area = ?")
        params.append(f.area)
    if f.since:
        conds.append("e.window_end > ?")
        params.append(_utc(f.since))
    if f.until:
        conds.append("e.window_start < ?")
        params.append(_utc(f.until))
    if kind:
        conds.append("e.kind = ?")
        params.append(kind)
    if max_q is not None:
        conds.append("coalesce(e.q_value, e.p_value) <= ?")
        params.append(max_q)
    if f.source or f.category or f.theme_id:
        sub = Filters(source=f.source, category=f.category)
        where, sub_params = _records_where(sub)
        conds.append(
            "e.theme_id IN (SELECT DISTINCT a.theme_id FROM assignments a "
            f"JOIN records r ON r.id = a.record_id WHERE {where})"
        )
        params.extend(sub_params)
    df = store.query_df(
        "SELECT e.theme_id, e.theme_label, e.kind, e.period, e.window_start, e.window_end, e.area, "
        "e.count, e.baseline, e.ratio, e.p_value, e.q_value, e.examples FROM emerging e "
        f"WHERE {' AND '.join(conds)} "
        "ORDER BY coalesce(e.q_value, e.p_value) NULLS LAST, e.ratio DESC NULLS LAST, e.theme_id",
        params,
    )
    ov = _overrides(store)
    labels = _label_map(store)
    items = []
    for r in df.itertuples(index=False):
        tid = _str(r.theme_id)
        eff = ov.resolve(tid) if tid else None
        if f.theme_id and eff != f.theme_id:
            continue
        items.append(
            {
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff) or _str(r.theme_label))
                if eff
                else _str(r.theme_label),
                "kind": _str(r.kind),
                "period": _str(r.period),
                "window_start": _ts(r.window_start),
                "window_end": _ts(r.window_end),
                "area": _str(r.area),
                "count": int(r.count) if _num(r.count) is not None else 0,
                "baseline": _round(r.baseline),
                "ratio": _round(r.ratio),
                "p_value": _num(r.p_value),
                "q_value": _num(r.q_value),
                "examples": _example_texts(store, _json(r.examples, [])),
            }
        )
    return {
        "items": items[page.offset : page.offset + page.limit],
        "total": len(items),
        "run_id": run,
    }


def _example_texts(store: Store, examples: list[Any]) -> list[str]:
    """Alert examples as redacted texts, whether the detector stored texts or record ids."""
    texts = [x.get("text") if isinstance(x, dict) else x for x in examples]
    texts = [str(t) for t in texts if t]
    if not texts:
        return []
    df = store.query_df(
        "SELECT id, text FROM records WHERE id IN (SELECT unnest(?::VARCHAR[]))", [texts]
    )
    by_id = dict(zip(df["id"], df["text"], strict=True))
    return [by_id.get(t, t) for t in texts]


# -- records ---------------------------------------------------------------------------------


def search_records(
    store: Store,
    filters: Filters | None = None,
    page: Page | None = None,
    *,
    q: str | None = None,
    embedder: TextEmbedder | None = None,
    order: str = "newest",
    with_attributes: bool = False,
) -> dict[str, Any]:
    """Records under the filters, redacted text only.

    With ``q``: ranked by cosine similarity to ``q`` over the embedding cache when an embedder is
    given and the cache holds vectors for its model; otherwise a case-insensitive match of every
    word of ``q`` (``mode`` in the result says which). Without ``q``: newest first (or oldest).
    ``with_attributes`` adds each record's (redacted) attributes, for the Open311 front door.
    """
    f, page = filters or Filters(), page or Page()
    columns = _RECORD_COLUMNS + (", r.attributes" if with_attributes else "")
    ov = _overrides(store)
    labels = _label_map(store)
    where, params = _records_where(f)
    if f.theme_id:
        members = _members_of(f.theme_id, ov, _theme_ids(store))
        where += (
            " AND (a.theme_id IN (SELECT unnest(?::VARCHAR[])) "
            "OR a.subtheme_id IN (SELECT unnest(?::VARCHAR[])))"
        )
        params += [members, members]
    q = (q or "").strip()
    if q and embedder is not None:
        ranked = _similar(store, where, params, q, embedder, page)
        if ranked is not None:
            ids, scores, total = ranked
            df = store.query_df(
                f"SELECT {columns} {_RECORD_JOINS} WHERE {_ID_IN}",
                [ids],
            )
            pos = {rid: i for i, rid in enumerate(ids)}
            df = df.assign(_o=df["id"].map(pos)).sort_values("_o").drop(columns="_o")
            items = _record_items(df, ov, labels)
            for item in items:
                item["score"] = round(float(scores[pos[item["id"]]]), 4)
            return {"items": items, "total": total, "mode": "similarity"}
    mode = "filter"
    if q:
        mode = "text"
        for word in q.split()[:8]:
            where += " AND r.text ILIKE ? ESCAPE '\\'"
            params.append("%" + _like_escape(word) + "%")
    total = int(
        store.query_df(f"SELECT count(*) AS n {_RECORD_JOINS} WHERE {where}", params)["n"].iloc[0]
    )
    direction = "ASC" if order == "oldest" else "DESC"
    df = store.query_df(
        f"SELECT {columns} {_RECORD_JOINS} WHERE {where} "
        f"ORDER BY r.created_at {direction} NULLS LAST, r.id LIMIT ? OFFSET ?",
        [*params, page.limit, page.offset],
    )
    items = _record_items(df, ov, labels)
    for item in items:
        item["score"] = None
    return {"items": items, "total": total, "mode": mode}


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _similar(
    store: Store, where: str, params: list[Any], q: str, embedder: TextEmbedder, page: Page
) -> tuple[list[str], np.ndarray, int] | None:
    """Top records by cosine similarity to ``q``, scanning the cache in bounded chunks."""
    model_id = embedder.model_id
    have = store.query_df("SELECT count(*) AS n FROM embeddings WHERE model_id = ?", [model_id])[
        "n"
    ].iloc[0]
    if not have:
        return None
    query = np.asarray(embedder.embed([q]), dtype=np.float32)[0]
    query /= np.linalg.norm(query) or 1.0
    keep = page.offset + page.limit
    best_ids: list[str] = []
    best_scores = np.zeros(0, dtype=np.float32)
    total, offset = 0, 0
    while True:
        # Each chunk takes the store lock on its own, so other requests are served in between.
        chunk = store.query_df(
            f"SELECT r.id, e.vector {_RECORD_JOINS} JOIN embeddings e "
            f"ON e.text_hash = r.text_hash AND e.model_id = ? WHERE {where} "
            "ORDER BY r.id LIMIT ? OFFSET ?",
            [model_id, *params, SEARCH_CHUNK, offset],
        )
        if chunk.empty:
            break
        offset += len(chunk)
        total += len(chunk)
        mat = decode_vectors(chunk["vector"])
        norms = np.linalg.norm(mat, axis=1)
        norms[norms == 0] = 1.0
        scores = (mat @ query) / norms
        ids = best_ids + chunk["id"].tolist()
        allscores = np.concatenate([best_scores, scores.astype(np.float32)])
        top = np.argsort(-allscores, kind="stable")[:keep]
        best_ids = [ids[i] for i in top]
        best_scores = allscores[top]
        if len(chunk) < SEARCH_CHUNK:
            break
    if total == 0:
        return None
    sel = slice(page.offset, page.offset + page.limit)
    return best_ids[sel], best_scores[sel], total


def get_record(store: Store, record_id: str) -> dict[str, Any] | None:
    """One record (redacted), with its effective theme; None when absent."""
    df = store.query_df(
        f"SELECT {_RECORD_COLUMNS}, r.attributes {_RECORD_JOINS} WHERE r.id = ?", [record_id]
    )
    if df.empty:
        return None
    return _record_items(df, _overrides(store), _label_map(store))[0]


# -- overview --------------------------------------------------------------------------------


def stats(store: Store, filters: Filters | None = None) -> dict[str, Any]:
    """Counts that add up across pages: records per source, categories, rejects, themes, runs."""
    f = filters or Filters()
    where, params = _records_where(f)
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
    ov = _overrides(store)
    themes = _themes_table(store)
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
            {"source": str(r.source), "count": int(r.n), "first": _ts(r.first), "last": _ts(r.last)}
            for r in by_source.itertuples(index=False)
        ],
        "categories": kv(by_category),
        "areas": kv(by_area),
        "sentiment": kv(sentiment),
        "series": [
            {"week": _ts(r.week), "count": int(r.n), "sentiment": _round(r.sentiment)}
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
    where, params = _records_where(f)
    ov = _overrides(store)
    labels = _label_map(store)
    if f.theme_id:
        members = _members_of(f.theme_id, ov, _theme_ids(store))
        where += " AND a.theme_id IN (SELECT unnest(?::VARCHAR[]))"
        params = [*params, members]
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
        tid = _str(r.theme_id)
        eff = ov.resolve(tid) if tid else None
        points.append(
            {
                "record_id": str(r.id),
                "x": float(r.x),
                "y": float(r.y),
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff)) if eff else None,
                "subtheme_id": _str(r.subtheme_id),
                "text": str(r.text),
            }
        )
    return {"points": points, "total": total, "sampled": total > len(points)}


# -- runs ------------------------------------------------------------------------------------


def _run_item(r: Any) -> dict[str, Any]:
    return {
        "run_id": str(r.run_id),
        "kind": _str(r.kind),
        "status": _str(r.status),
        "started_at": _ts(r.started_at),
        "finished_at": _ts(r.finished_at),
        "progress": _round(r.progress) or 0.0,
        "message": _str(r.message),
        "manifest": _json(r.manifest, {}),
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
