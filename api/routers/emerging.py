"""Emerging needs: alerts of the latest analysis run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from analyzer import queries
from api.deps import FiltersDep, PageDep, StoreDep
from api.schemas import MAX_SHORT, AlertList

router = APIRouter(prefix="/v1", tags=["emerging"])


@router.get("/emerging", response_model=AlertList)
def list_emerging(
    store: StoreDep,
    filters: FiltersDep,
    page: PageDep,
    run_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    max_q: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> AlertList:
    """Alerts strongest first (FDR-adjusted q-value, then effect size), with examples."""
    out = queries.list_emerging(store, filters, page, run_id=run_id, kind=kind, max_q=max_q)
    return AlertList(**out, limit=page.limit, offset=page.offset)
