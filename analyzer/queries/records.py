"""Records: keyword and similarity search, one record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from analyzer.common.vectors import decode_vectors
from analyzer.queries.common import (
    ID_IN,
    RECORD_COLUMNS,
    RECORD_JOINS,
    Filters,
    Page,
    load_overrides,
    record_items,
    records_where,
    theme_labels,
    theme_where,
)
from analyzer.store.database import Store

# Similarity search reads cached vectors in chunks of this many rows to bound memory.
SEARCH_CHUNK = 20_000


class TextEmbedder(Protocol):
    """What similarity search needs from an embedder (``analyzer.embedding.embedder.Embedder`` fits)."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


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
    columns = RECORD_COLUMNS + (", r.attributes" if with_attributes else "")
    ov = load_overrides(store)
    labels = theme_labels(store)
    where, params = records_where(f, store=store)
    if f.theme_id:
        cond, extra = theme_where(store, f.theme_id, ov)
        where, params = f"{where} AND {cond}", [*params, *extra]
    q = (q or "").strip()
    if q and embedder is not None:
        ranked = _similar(store, where, params, q, embedder, page)
        if ranked is not None:
            ids, scores, total = ranked
            df = store.query_df(
                f"SELECT {columns} {RECORD_JOINS} WHERE {ID_IN}",
                [ids],
            )
            pos = {rid: i for i, rid in enumerate(ids)}
            df = df.assign(_o=df["id"].map(pos)).sort_values("_o").drop(columns="_o")
            items = record_items(df, ov, labels)
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
        store.query_df(f"SELECT count(*) AS n {RECORD_JOINS} WHERE {where}", params)["n"].iloc[0]
    )
    direction = "ASC" if order == "oldest" else "DESC"
    df = store.query_df(
        f"SELECT {columns} {RECORD_JOINS} WHERE {where} "
        f"ORDER BY r.created_at {direction} NULLS LAST, r.id LIMIT ? OFFSET ?",
        [*params, page.limit, page.offset],
    )
    items = record_items(df, ov, labels)
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
            f"SELECT r.id, e.vector {RECORD_JOINS} JOIN embeddings e "
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
        f"SELECT {RECORD_COLUMNS}, r.attributes {RECORD_JOINS} WHERE r.id = ?", [record_id]
    )
    if df.empty:
        return None
    return record_items(df, load_overrides(store), theme_labels(store))[0]
