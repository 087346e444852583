"""Overview figures for the explorer's first page."""

from __future__ import annotations

from fastapi import APIRouter

from analyzer import queries
from api.deps import FiltersDep, StoreDep
from api.schemas import StatsOut

router = APIRouter(prefix="/v1", tags=["stats"])


@router.get("/stats", response_model=StatsOut)
def stats(store: StoreDep, filters: FiltersDep) -> StatsOut:
    """Records per source and week, categories, areas, sentiment, rejects, themes, alerts, and the
    latest run."""
    return StatsOut(**queries.stats(store, filters))
