"""Themes: lists, detail, sentiment split, records by theme, representative examples, and the
explorer's renames and merges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from analyzer.common.vectors import decode_vectors, normalise_rows
from analyzer.errors import InputError
from analyzer.queries.common import (
    RECORD_COLUMNS,
    RECORD_JOINS,
    Filters,
    Overrides,
    Page,
    ThemeNotFoundError,
    as_timestamp,
    growth_rate,
    json_value,
    load_overrides,
    merged_members,
    number_or_none,
    record_items,
    records_where,
    reference_end,
    rounded,
    text_or_none,
    theme_labels,
    themes_table,
)
from analyzer.store.database import Store
from analyzer.themes.examples import representative_rows

# Growth compares the last GROWTH_WINDOW of the filtered period with the window before it.
GROWTH_WINDOW = timedelta(days=28)
MAX_LABEL_CHARS = 200
EXAMPLES_PER_THEME = 5
# Centrality for examples is computed on at most this many members (a deterministic sample).
EXAMPLE_CANDIDATES = 2000


def _theme_counts(
    store: Store, f: Filters, column: str, ref_end: datetime | None
) -> dict[str, dict[str, float]]:
    """Per stored theme id in ``column`` (theme_id or subtheme_id): counts, sentiment, growth.

    Growth compares the last ``GROWTH_WINDOW`` with the one before it, ending at ``until`` when
    the filters give one, else just after each source's own latest record: a city whose export
    ends in March is not measured against another's April (``ref_end`` is then only a fallback
    for records without a source end)."""
    where, params = records_where(f, store=store)
    days = GROWTH_WINDOW.days
    if f.until:
        ends_sql, ends_params = "SELECT NULL::VARCHAR AS source, ?::TIMESTAMPTZ AS e", [f.until]
        join = "CROSS JOIN ends x"
    else:
        ends_sql = (
            "SELECT r.source, max(r.created_at) + INTERVAL 1 SECOND AS e FROM records r "
            f"WHERE {where} GROUP BY 1"
        )
        ends_params = list(params)
        join = "LEFT JOIN ends x ON x.source = r.source"
    fallback = ref_end or datetime(1970, 1, 1, tzinfo=UTC)
    df = store.query_df(
        f"WITH ends AS ({ends_sql}) "
        f"SELECT a.{column} AS tid, count(*) AS n, sum(s.score) AS ssum, count(s.score) AS sn, "
        f"count(*) FILTER (WHERE r.created_at >= coalesce(x.e, ?) - INTERVAL {days} DAY "
        "AND r.created_at < coalesce(x.e, ?)) AS recent, "
        f"count(*) FILTER (WHERE r.created_at >= coalesce(x.e, ?) - INTERVAL {2 * days} DAY "
        f"AND r.created_at < coalesce(x.e, ?) - INTERVAL {days} DAY) AS previous "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        f"LEFT JOIN sentiment s ON s.record_id = a.record_id {join} "
        f"WHERE a.{column} IS NOT NULL AND {where} GROUP BY a.{column}",
        [*ends_params, fallback, fallback, fallback, fallback, *params],
    )
    return {
        str(r.tid): {
            "n": int(r.n),
            "ssum": float(r.ssum) if number_or_none(r.ssum) is not None else 0.0,
            "sn": int(r.sn),
            "recent": int(r.recent),
            "previous": int(r.previous),
        }
        for r in df.itertuples(index=False)
    }


def _top_categories(store: Store, f: Filters, ov: Overrides) -> dict[str, tuple[str, float]]:
    """Per top-level theme (merges followed): the city's category most of its records carry and
    that category's share of its records with a category, so a manager sees at a glance where
    themes and the city's categories agree."""
    where, params = records_where(f, store=store)
    df = store.query_df(
        "SELECT a.theme_id AS tid, r.category AS cat, count(*) AS n "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        f"WHERE a.theme_id IS NOT NULL AND r.category IS NOT NULL AND r.category <> '' "
        f"AND {where} GROUP BY 1, 2",
        params,
    )
    if df.empty:
        return {}
    df["tid"] = [ov.resolve(str(t)) for t in df["tid"]]
    df = df.groupby(["tid", "cat"], as_index=False)["n"].sum()
    totals = df.groupby("tid")["n"].sum()
    best = df.sort_values(["tid", "n", "cat"], ascending=[True, False, True]).drop_duplicates("tid")
    return {
        str(r.tid): (str(r.cat), round(float(r.n) / float(totals[r.tid]), 4))
        for r in best.itertuples(index=False)
    }


def _fold(counts: dict[str, dict[str, float]], ov: Overrides) -> dict[str, dict[str, float]]:
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
    row: Any, c: dict[str, float], ov: Overrides, merged_from: list[str]
) -> dict[str, Any]:
    tid = str(row.theme_id)
    return {
        "theme_id": tid,
        "label": ov.label(tid, text_or_none(row.label)),
        "original_label": text_or_none(row.label),
        "keywords": [str(k) for k in json_value(row.keywords, [])],
        "level": int(row.level) if number_or_none(row.level) is not None else None,
        "parent_id": text_or_none(row.parent_id),
        "source": text_or_none(getattr(row, "source", None)),
        "size": int(c["n"]),
        "recent_count": int(c["recent"]),
        "previous_count": int(c["previous"]),
        "growth": growth_rate(int(c["recent"]), int(c["previous"])),
        "sentiment": round(c["ssum"] / c["sn"], 4) if c["sn"] else None,
        "merged_from": merged_from,
        "run_id": text_or_none(row.run_id),
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
    ov = load_overrides(store)
    themes = themes_table(store)
    ref_end = reference_end(store, f)
    folded = _fold(_theme_counts(store, f, "theme_id", ref_end), ov)
    categories = _top_categories(store, f, ov)
    top = themes[themes["parent_id"].isna()]
    sub_parent = themes.loc[themes["parent_id"].notna(), "parent_id"].map(str)
    items = []
    for row in top.itertuples(index=False):
        tid = str(row.theme_id)
        if ov.resolve(tid) != tid or tid not in folded or folded[tid]["n"] <= 0:
            continue
        merged_from = [t for t in merged_members(tid, ov, top["theme_id"]) if t != tid]
        item = _summary(row, folded[tid], ov, merged_from)
        members = set(merged_members(tid, ov, top["theme_id"]))
        item["subtheme_count"] = int(sub_parent.isin(members).sum())
        item["top_category"], item["top_category_share"] = categories.get(tid, (None, None))
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
    t = _target(store, theme_id)
    ov, by_id, row, target, column, members = (
        t.overrides,
        t.themes,
        t.row,
        t.theme_id,
        t.column,
        t.members,
    )
    is_top = column == "theme_id"
    ref_end = reference_end(store, f)
    counts = _fold(_theme_counts(store, f, column, ref_end), ov)
    empty = {"n": 0, "ssum": 0.0, "sn": 0, "recent": 0, "previous": 0}
    detail = _summary(row, counts.get(target, empty), ov, [m for m in members if m != target])
    detail["status"] = text_or_none(row.status) or "active"
    detail["first_seen_run"] = text_or_none(row.first_seen_run)
    detail["requested_id"] = theme_id
    detail["period_end"] = ref_end

    # Sub-themes of this theme and of every theme merged into it, merges among them followed.
    subs = []
    if is_top:
        sub_counts = _fold(_theme_counts(store, f, "subtheme_id", ref_end), ov)
        for sid, srow in by_id.items():
            if text_or_none(srow.parent_id) not in members or _retired(srow):
                continue
            if ov.resolve(sid) != sid:
                continue
            c = sub_counts.get(sid, empty)
            subs.append(
                {
                    "theme_id": sid,
                    "label": ov.label(sid, text_or_none(srow.label)),
                    "keywords": [str(k) for k in json_value(srow.keywords, [])],
                    "size": int(c["n"]),
                    "sentiment": round(c["ssum"] / c["sn"], 4) if c["sn"] else None,
                }
            )
        subs.sort(key=lambda s: (-s["size"], s["theme_id"]))
    detail["subthemes"] = subs
    detail["subtheme_count"] = len(subs)

    where, params = records_where(f, store=store)
    member_cond = f"a.{column} IN (SELECT unnest(?::VARCHAR[]))"
    series = store.query_df(
        "SELECT date_trunc('week', r.created_at) AS week, count(*) AS n, avg(s.score) AS sentiment "
        "FROM assignments a JOIN records r ON r.id = a.record_id "
        "LEFT JOIN sentiment s ON s.record_id = a.record_id "
        f"WHERE {member_cond} AND r.created_at IS NOT NULL AND {where} GROUP BY 1 ORDER BY 1",
        [members, *params],
    )
    detail["series"] = [
        {"week": as_timestamp(r.week), "count": int(r.n), "sentiment": rounded(r.sentiment)}
        for r in series.itertuples(index=False)
    ]
    detail["areas"] = _breakdown(store, "area", member_cond, members, where, params)
    detail["categories"] = _breakdown(store, "category", member_cond, members, where, params)
    detail["sources"] = _breakdown(store, "source", member_cond, members, where, params)
    detail["examples"] = _examples(store, t, f)
    lineage = store.query_df(
        "SELECT l.run_id, l.theme_id, l.event, l.related, r.started_at FROM theme_lineage l "
        "LEFT JOIN runs r USING (run_id) WHERE l.theme_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY r.started_at NULLS LAST, l.run_id",
        [members],
    )
    detail["lineage"] = [
        {
            "run_id": text_or_none(r.run_id),
            "theme_id": str(r.theme_id),
            "event": str(r.event),
            "related": [str(x) for x in json_value(r.related, [])],
            "at": as_timestamp(r.started_at),
        }
        for r in lineage.itertuples(index=False)
    ]
    return detail


@dataclass(frozen=True)
class _Target:
    """A requested theme id resolved through merges: the theme that now holds its records."""

    theme_id: str
    column: str  # assignments column to match: theme_id (top level) or subtheme_id
    members: list[str]  # stored theme ids whose records count toward it (itself, merged ones)
    row: Any  # its themes row
    themes: dict[str, Any]  # every stored themes row (retired ones too) by id
    overrides: Overrides


def _retired(row: Any) -> bool:
    return (text_or_none(row.status) or "active") == "retired"


def _target(store: Store, theme_id: str) -> _Target:
    """Raises ``ThemeNotFoundError`` for an unknown or retired theme (a re-fit dropped it; its
    id stays reserved). A merge into a theme that has since retired is not followed."""
    ov = load_overrides(store)
    all_themes = themes_table(store, include_retired=True)
    by_id = {str(r.theme_id): r for r in all_themes.itertuples(index=False)}
    row = by_id.get(theme_id)
    if row is None or _retired(row):
        raise ThemeNotFoundError(theme_id)
    into = by_id.get(ov.resolve(theme_id))
    if into is not None and not _retired(into):
        row = into
    target = str(row.theme_id)
    column = "theme_id" if text_or_none(row.parent_id) is None else "subtheme_id"
    return _Target(target, column, merged_members(target, ov, by_id), row, by_id, ov)


def theme_sentiment_split(
    store: Store, theme_id: str, filters: Filters | None = None
) -> list[dict[str, Any]]:
    """Records of a theme (merges followed) per sentiment label under the filters."""
    t = _target(store, theme_id)
    where, params = records_where(filters or Filters(), store=store)
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
    where, params = records_where(filters or Filters(), store=store)
    base = f"{RECORD_JOINS} WHERE a.{t.column} IN (SELECT unnest(?::VARCHAR[])) AND {where}"
    base_params: list[Any] = [t.members, *params]

    def chunks() -> Iterator[list[dict[str, Any]]]:
        ov, labels = load_overrides(store), theme_labels(store)
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
                f"SELECT {RECORD_COLUMNS} {base} AND {cond} "
                "ORDER BY r.created_at NULLS LAST, r.id LIMIT ?",
                [*base_params, *cparams, chunk_rows],
            )
            if df.empty:
                return
            last = df.iloc[-1]
            created = last["created_at"]
            after = (as_timestamp(created), str(last["id"]))
            yield record_items(df, ov, labels)
            if len(df) < chunk_rows:
                return

    return chunks()


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
        {"key": str(r.key), "count": int(r.n), "sentiment": rounded(r.sentiment)}
        for r in df.itertuples(index=False)
    ]


def _examples(store: Store, t: _Target, f: Filters) -> list[dict[str, Any]]:
    """Representative redacted examples: the analysis' own picks when unfiltered, else members
    under the filters picked by the themes' one example selector
    (``analyzer.themes.examples.representative_rows``) around the theme's centroid."""
    ov = t.overrides
    labels = theme_labels(store)
    stored = [x for x in json_value(t.row.examples, []) if isinstance(x, (str, dict))]
    if not f.active() and stored:
        ids = [
            x if isinstance(x, str) else str(x.get("record_id") or x.get("id") or "")
            for x in stored
        ]
        df = store.query_df(
            f"SELECT {RECORD_COLUMNS} {RECORD_JOINS} WHERE r.id IN (SELECT unnest(?::VARCHAR[]))",
            [[i for i in ids if i]],
        )
        if not df.empty:
            order = {rid: i for i, rid in enumerate(ids)}
            df = df.assign(_o=df["id"].map(order)).sort_values("_o").drop(columns="_o")
            return record_items(df, ov, labels)[:EXAMPLES_PER_THEME]
        # The analysis stored example texts rather than ids: they are redacted already.
        texts = [x if isinstance(x, str) else str(x.get("text") or "") for x in stored]
        return [_bare_example(text) for text in texts if text][:EXAMPLES_PER_THEME]

    where, params = records_where(f, store=store)
    cand = store.query_df(
        f"SELECT {RECORD_COLUMNS}, r.text_hash {RECORD_JOINS} "
        f"WHERE a.{t.column} IN (SELECT unnest(?::VARCHAR[])) AND {where} "
        "ORDER BY hash(r.id) LIMIT ?",
        [t.members, *params, EXAMPLE_CANDIDATES],
    )
    if cand.empty:
        return []
    centroid = store.query_df("SELECT centroid FROM themes WHERE theme_id = ?", [t.theme_id])
    blob = centroid["centroid"].iloc[0] if not centroid.empty else None
    order = list(range(len(cand)))
    if isinstance(blob, bytes | bytearray | memoryview):  # NULL comes back as None, NaN or NA
        center = normalise_rows(decode_vectors([blob])[0])
        hashes = cand["text_hash"].tolist()
        vecs = _vectors_for(store, hashes, dim=len(center))
        if vecs is not None:
            mat, have = vecs
            ranked = [i for i, h in enumerate(hashes) if h in have]
            # members without a cached vector cannot be ranked: they come after the ranked ones
            unranked = [i for i, h in enumerate(hashes) if h not in have]
            picked = representative_rows(
                mat[[have[hashes[i]] for i in ranked]],
                center,
                [str(cand["text"].iloc[i]) for i in ranked],
                EXAMPLES_PER_THEME,
            )
            order = [ranked[j] for j in picked] + unranked
    chosen = cand.iloc[order[:EXAMPLES_PER_THEME]].drop(columns="text_hash")
    return record_items(chosen, ov, labels)


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


def _embedding_model_id(store: Store) -> str | None:
    """The embedding model of the latest finished analysis run (``models.embedding`` in its
    manifest): the space the stored centroids live in. Without such a run, the model with the
    most cached vectors."""
    run = store.query_df(
        "SELECT model_id FROM (SELECT run_id, started_at, finished_at, CASE WHEN "
        "json_valid(manifest) THEN json_extract_string(manifest, '$.models.embedding') END "
        "AS model_id FROM runs WHERE status = 'done' AND kind = 'analyze') "
        "WHERE model_id IS NOT NULL "
        "ORDER BY finished_at DESC NULLS LAST, started_at DESC NULLS LAST, run_id DESC LIMIT 1"
    )
    if not run.empty:
        return str(run["model_id"].iloc[0])
    df = store.query_df(
        "SELECT model_id FROM embeddings GROUP BY model_id ORDER BY count(*) DESC, model_id LIMIT 1"
    )
    return None if df.empty else str(df["model_id"].iloc[0])


def _vectors_for(
    store: Store, hashes: list[str], *, dim: int, model_id: str | None = None
) -> tuple[np.ndarray, dict[str, int]] | None:
    model_id = model_id or _embedding_model_id(store)
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
    return normalise_rows(mat), {h: i for i, h in enumerate(df["text_hash"])}


# -- theme overrides (explorer edits) --------------------------------------------------------


def _theme_row(store: Store, theme_id: str) -> dict[str, Any]:
    """An active theme's row; ``ThemeNotFoundError`` for an unknown or retired one."""
    df = store.query_df(
        "SELECT theme_id, parent_id, label FROM themes WHERE theme_id = ? "
        "AND coalesce(status, 'active') <> 'retired'",
        [theme_id],
    )
    if df.empty:
        raise ThemeNotFoundError(theme_id)
    r = df.iloc[0]
    return {
        "theme_id": str(r["theme_id"]),
        "parent_id": text_or_none(r["parent_id"]),
        "label": text_or_none(r["label"]),
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
    ov = load_overrides(store)
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
