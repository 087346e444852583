"""POST /v1/tag: category, calibrated confidence, alternatives, review flag, likely duplicates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from analyzer.store import Store
from api.deps import CallerDep, StateDep
from api.schemas import ErrorOut, TagItem, TagRequest, TagResponse, TagResult
from api.state import TaggerUnavailableError

router = APIRouter(prefix="/v1", tags=["tagging"])


def find_duplicates(store: Store, item: TagItem, text_vector_source: Any = None) -> list[dict]:
    """Open requests that this one likely repeats (similar text, near in space and time)."""
    from analyzer.duplicates import find_duplicates as find

    return find(store, item.text, lat=item.lat, lon=item.lon, created_at=item.created_at)


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
            dups = await run_in_threadpool(find_duplicates, state.store, item)
        results.append(TagResult(**row, duplicates=dups))
    return TagResponse(model=state.tagger.model_name, results=results)
