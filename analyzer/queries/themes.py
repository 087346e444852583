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
from analyzer.queries._common import (
    _RECORD_COLUMNS,
    _RECORD_JOINS,
    Filters,
    Page,
    ThemeNotFoundError,
    _growth,
    _json,
    _label_map,
    _members_of,
    _num,
    _Overrides,
    _overrides,
    _record_items,
    _records_where,
    _reference_end,
    _round,
    _str,
    _themes_table,
    _ts,
)
from analyzer.store.database import Store

# Growth compares the last GROWTH_WINDOW of the filtered period with the window before it.
GROWTH_WINDOW = timedelta(days=28)
MAX_LABEL_CHARS = 200
EXAMPLES_PER_THEME = 5
# Centrality for examples is computed on at most this many members (a deterministic sample).
EXAMPLE_CANDIDATES = 2000


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
    return normalise_rows(mat), {h: i for i, h in enumerate(df["text_hash"])}


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
