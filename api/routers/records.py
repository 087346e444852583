"""Records: search (key required: record-level data) and posting new ones (one or a batch)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from analyzer import queries
from api.deps import FiltersDep, KeyDep, PageDep, StateDep
from api.ingesting import ingest_records
from api.schemas import MAX_SHORT, RecordList, RecordsIn, RecordsResult

router = APIRouter(prefix="/v1", tags=["records"])
log = logging.getLogger("civicpulse.api")


def _embedder(state: StateDep) -> queries.TextEmbedder | None:
    """The configured sentence embedder, or None when it cannot load (search falls back to
    matching words)."""
    from analyzer.embedding.embedder import get_embedder
    from analyzer.errors import InputError

    s = state.settings
    try:
        return get_embedder(s.embed_model or None, s.embed_backend, s.embed_batch_size)
    except (InputError, OSError, ImportError) as exc:
        log.warning("embedder unavailable", extra={"event": "search", "error": type(exc).__name__})
        return None


@router.get("/records", response_model=RecordList)
def search_records(
    state: StateDep,
    filters: FiltersDep,
    page: PageDep,
    _key: KeyDep,
    q: Annotated[
        str | None, Query(max_length=500, description="find records similar to this text")
    ] = None,
    theme_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
    order: Literal["newest", "oldest"] = "newest",
) -> RecordList:
    """Records under the filters, redacted text only. With ``q``, ranked by meaning (embedding
    similarity) when the analysis has embedded the store, else by matching every word."""
    f = replace(filters, theme_id=theme_id)
    embedder = _embedder(state) if q and q.strip() else None
    out = queries.search_records(state.store, f, page, q=q, embedder=embedder, order=order)
    return RecordList(**out, limit=page.limit, offset=page.offset)


@router.post("/records", response_model=RecordsResult)
async def post_records(body: RecordsIn, state: StateDep, _key: KeyDep) -> RecordsResult:
    """Load one record or a batch (up to 1,000). Each row is validated and redacted by the same
    ingest code as files; a bad row comes back in ``rejects`` with its reason, the others load."""
    rows = [r.model_dump(exclude_none=True) for r in body.records]
    result = await run_in_threadpool(
        lambda: ingest_records(state.store, rows, keep_raw=state.settings.keep_raw)
    )
    return RecordsResult(**result)
