"""POST /v1/tag: category, calibrated confidence, alternatives, review flag, likely duplicates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.deps import CallerDep, StateDep
from api.schemas import ErrorOut, TagItem, TagRequest, TagResponse, TagResult
from api.state import AppState, TaggerUnavailableError

router = APIRouter(prefix="/v1", tags=["tagging"])


def find_duplicates(state: AppState, item: TagItem) -> list[dict[str, Any]]:
    """Open requests this one likely repeats: within 150 m and 7 days before it, similar text."""
    from analyzer.embedding.embedder import get_embedder
    from analyzer.tagging.duplicates import duplicates_in_store

    s = state.settings
    found = duplicates_in_store(
        state.store,
        item.text,
        lat=float(item.lat),  # type: ignore[arg-type]
        lon=float(item.lon),  # type: ignore[arg-type]
        created_at=item.created_at,
        embedder=get_embedder(s.embed_model or None, s.embed_backend, s.embed_batch_size),
    )
    return [
        {
            "record_id": d["id"],
            "similarity": d["similarity"],
            "distance_m": d["meters"],
            "days_before": d["days"],
        }
        for d in found
    ]


@router.post(
    "/tag",
    response_model=TagResponse,
    responses={503: {"model": ErrorOut, "description": "no tagger model is available"}},
)
async def tag(body: TagRequest, state: StateDep, _caller: CallerDep) -> TagResponse:
    """Tag one request (``text``) or up to 1,000 (``texts``). ``needs_review`` is true when the
    model is not sure enough to auto-accept. Duplicates are looked up only for items that give
    ``lat``, ``lon`` and ``created_at``."""
    items = body.items()
    try:
        rows = await state.tagger.predict([i.text for i in items])
    except TaggerUnavailableError as exc:
        raise HTTPException(503, f"tagging is unavailable: {exc}") from None
    results = []
    for item, row in zip(items, rows, strict=True):
        dups = None
        if item.lat is not None and item.lon is not None and item.created_at is not None:
            dups = await run_in_threadpool(find_duplicates, state, item)
        results.append(TagResult(**row, duplicates=dups))
    return TagResponse(model=state.tagger.model_name, results=results)
