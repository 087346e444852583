"""What every read shares: filters, pages, theme overrides, record rows and small converters
(public to the modules of ``analyzer.queries``; the package's own API is its ``__init__``)."""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from analyzer.common.clock import as_utc
from analyzer.common.status import closed_sql
from analyzer.errors import InputError
from analyzer.store.database import Store

MAX_PAGE = 1000
# Columns added by later versions, known present per open store (see has_column).
_COLUMNS_SEEN: weakref.WeakKeyDictionary[Store, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


class ThemeNotFoundError(LookupError):
    """No theme with this id in the store."""

    def __init__(self, theme_id: str) -> None:
        self.theme_id = theme_id
        super().__init__(f"no theme {theme_id!r}")


@dataclass(frozen=True)
class Filters:
    """Record filters shared by every query. Empty tuples and ``None`` mean "no filter"."""

    source: str | None = None
    # what a record is (311, survey, engagement), whatever its source is called
    kind: str | None = None
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
                self.kind,
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
class Overrides:
    """The explorer's edits: new labels and merges (theme id -> the theme it was merged into)."""

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


def as_timestamp(value: Any) -> datetime | None:
    """A pandas/duckdb timestamp as an aware datetime (None for NaT / NULL)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return as_utc(value)
    return None


def number_or_none(value: Any) -> float | None:
    """A finite float, or None (NULL, NaN, infinite, not a number)."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def text_or_none(value: Any) -> str | None:
    """``str(value)``, or None for NULL / NaN / NA."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def json_value(value: Any, default: Any) -> Any:
    """A JSON column's value decoded (lists and dicts as they are), ``default`` when absent or
    not JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def has_column(store: Store, table: str, column: str) -> bool:
    """Whether the store's ``table`` has ``column``: a store written by an earlier version and
    opened read-only (so not migrated) may lack a newer one."""
    known = _COLUMNS_SEEN.setdefault(store, set())
    if (table, column) in known:
        return True
    found = bool(
        store.scalar("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", [table, column])
    )
    if found:  # a column, once added, stays: remember only that
        known.add((table, column))
    return found


def kind_expr(store: Store | None, alias: str = "r") -> str:
    """SQL for a record's kind (311, survey, engagement): its ``kind`` column, or in a store
    written before that column existed, its source's name (what a source then had to be called)."""
    if store is None or has_column(store, "records", "kind"):
        return f"{alias}.kind"
    return f"{alias}.source"


def records_where(
    f: Filters, alias: str = "r", *, store: Store | None = None
) -> tuple[str, list[Any]]:
    """SQL conditions and parameters for the record filters (always a valid WHERE body).

    ``store`` tells whether ``records`` has its ``kind`` column (see :func:`kind_expr`); without
    it the column is assumed."""
    conds: list[str] = ["TRUE"]
    params: list[Any] = []
    if f.source:
        conds.append(f"{alias}.source = ?")
        params.append(f.source)
    if f.kind:
        conds.append(f"{kind_expr(store, alias)} = ?")
        params.append(f.kind)
    if f.since:
        conds.append(f"{alias}.created_at >= ?")
        params.append(as_utc(f.since))
    if f.until:
        conds.append(f"{alias}.created_at < ?")
        params.append(as_utc(f.until))
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
        cond, extra = closed_sql(f"{alias}.status", f"{alias}.updated_at")
        conds.append(f"{neg}{cond}")
        params.extend(extra)
    return " AND ".join(conds), params


def load_overrides(store: Store) -> Overrides:
    """The stored theme overrides (renames and merges)."""
    df = store.query_df("SELECT theme_id, label, merged_into FROM theme_overrides")
    out = Overrides()
    for tid, label, into in df.itertuples(index=False):
        if text_or_none(label):
            out.labels[tid] = str(label)
        if text_or_none(into):
            out.merged_into[tid] = str(into)
    return out


def themes_table(store: Store, *, include_retired: bool = False) -> pd.DataFrame:
    """The themes rows a read needs (never the centroids); retired themes only when asked."""
    where = "" if include_retired else "WHERE coalesce(status, 'active') <> 'retired'"
    columns = (
        "theme_id, parent_id, level, label, keywords, size, examples, breakdown, sentiment, "
        "status, run_id, first_seen_run"
    )
    if has_column(store, "themes", "source"):
        return store.query_df(f"SELECT {columns}, source FROM themes {where}")
    # a store written before themes had a source, read without migrating: the source of the
    # records assigned to the theme (what the migration writes)
    return store.query_df(
        f"SELECT {columns}, m.source FROM themes LEFT JOIN (SELECT tid, min(source) AS source "
        "FROM (SELECT a.theme_id AS tid, r.source FROM assignments a JOIN records r "
        "ON r.id = a.record_id UNION ALL SELECT a.subtheme_id AS tid, r.source "
        "FROM assignments a JOIN records r ON r.id = a.record_id) GROUP BY tid) m "
        f"ON m.tid = themes.theme_id {where}"
    )


def theme_where(
    store: Store, theme_id: str, ov: Overrides, *, alias: str = "a", subthemes: bool = True
) -> tuple[str, list[Any]]:
    """SQL condition (to AND onto a WHERE over ``assignments {alias}``) and its parameters for
    "records of this theme": the theme, the themes merged into it, and (``subthemes``) records
    whose sub-theme is one of those ids."""
    members = merged_members(theme_id, ov, all_theme_ids(store))
    sql = f"{alias}.theme_id IN (SELECT unnest(?::VARCHAR[]))"
    if not subthemes:
        return sql, [members]
    return f"({sql} OR {alias}.subtheme_id IN (SELECT unnest(?::VARCHAR[])))", [members, members]


def merged_members(theme_id: str, ov: Overrides, known: Iterable[str]) -> list[str]:
    """The stored theme ids whose records now belong to ``theme_id`` (itself and what merged in)."""
    return sorted({t for t in known if ov.resolve(t) == theme_id} | {theme_id})


def growth_rate(recent: int, previous: int) -> float | None:
    """Relative change from the previous window to the recent one (None without a baseline)."""
    # No growth figure without a baseline: "new" is reported through the emerging-needs alerts.
    return None if previous <= 0 else round((recent - previous) / previous, 4)


def reference_end(store: Store, f: Filters) -> datetime | None:
    """End of the filtered period: ``until`` when given, else just after the latest record."""
    if f.until:
        return as_utc(f.until)
    where, params = records_where(f, store=store)
    df = store.query_df(f"SELECT max(r.created_at) AS last FROM records r WHERE {where}", params)
    last = as_timestamp(df["last"].iloc[0]) if not df.empty else None
    return None if last is None else last + timedelta(seconds=1)


def rounded(value: Any, digits: int = 4) -> float | None:
    """:func:`number_or_none`, rounded."""
    v = number_or_none(value)
    return None if v is None else round(v, digits)


def record_items(df: pd.DataFrame, ov: Overrides, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Rows selected with ``RECORD_COLUMNS`` as served: themes through merges, current labels."""
    out = []
    for r in df.to_dict("records"):
        tid = text_or_none(r.get("theme_id"))
        eff = ov.resolve(tid) if tid else None
        sid = text_or_none(r.get("subtheme_id"))
        eff_sub = ov.resolve(sid) if sid else None
        out.append(
            {
                "id": str(r["id"]),
                "source": text_or_none(r.get("source")),
                "text": str(r.get("text") or ""),
                "created_at": as_timestamp(r.get("created_at")),
                "updated_at": as_timestamp(r.get("updated_at")),
                "category": text_or_none(r.get("category")),
                "status": text_or_none(r.get("status")),
                "lat": number_or_none(r.get("lat")),
                "lon": number_or_none(r.get("lon")),
                "area": text_or_none(r.get("area")),
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff)) if eff else None,
                "subtheme_id": eff_sub,
                "subtheme_label": ov.label(eff_sub, labels.get(eff_sub)) if eff_sub else None,
                "sentiment": text_or_none(r.get("sentiment")),
                "sentiment_score": rounded(r.get("sentiment_score")),
            }
        )
        if "attributes" in r:
            # Attributes were redacted by ingest (free-text columns, house numbers dropped).
            out[-1]["attributes"] = json_value(r["attributes"], {})
    return out


# Only these columns of records are ever read for display: never raw_text.
RECORD_COLUMNS = (
    "r.id, r.source, r.text, r.created_at, r.updated_at, r.category, r.status, r.lat, r.lon, "
    "r.area, a.theme_id, a.subtheme_id, s.label AS sentiment, s.score AS sentiment_score"
)
ID_IN = "r.id IN (SELECT unnest(?::VARCHAR[]))"
RECORD_JOINS = (
    "FROM records r LEFT JOIN assignments a ON a.record_id = r.id "
    "LEFT JOIN sentiment s ON s.record_id = r.id"
)


def all_theme_ids(store: Store) -> list[str]:
    """Every stored theme id, retired ones included."""
    return [str(t) for t in store.query_df("SELECT theme_id FROM themes")["theme_id"]]


def theme_labels(store: Store) -> dict[str, str]:
    """Stored label per theme id (before overrides)."""
    df = store.query_df("SELECT theme_id, label FROM themes")
    return {str(t): str(lbl) for t, lbl in df.itertuples(index=False) if text_or_none(lbl)}
