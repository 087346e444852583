"""Emerging needs: alerts of the latest analysis run, and why there are (or are none)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

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
    alert_kind: Annotated[
        str | None, Query(max_length=50, description="surge, new_theme or area_surge")
    ] = None,
    max_q: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> AlertList:
    """Alerts strongest first (FDR-adjusted q-value, then effect size), with examples. ``kind``
    filters the records' kind (311, survey, engagement); ``alert_kind`` the alert's."""
    out = queries.list_emerging(store, filters, page, run_id=run_id, kind=alert_kind, max_q=max_q)
    return AlertList(**out, limit=page.limit, offset=page.offset)


class DetectorTerms(BaseModel):
    period: str = Field(description="week, day or month")
    period_days: int
    windows: int = Field(description="latest periods tested")
    history: int = Field(description="periods before them that make the recent baseline")
    min_count: int
    fdr: float
    min_ratio: float


class SourceExplanation(BaseModel):
    source: str
    records: int
    dated: int
    assigned: int = Field(description="records in a theme")
    first: datetime | None
    last: datetime | None
    periods: int = Field(description="periods from the first dated record to the last")
    busiest_theme_id: str | None
    busiest_theme_label: str | None
    busiest_count: int = Field(description="most records of one theme in one tested period")
    themes_tested: int
    not_analysed: int = Field(description="records that arrived after the latest analysis")
    alerts: int
    reason: str


class EmergingExplanation(BaseModel):
    run_id: str | None
    alerts: int
    detector: DetectorTerms
    sources: list[SourceExplanation]
    reason: str


@router.get("/emerging/explain", response_model=EmergingExplanation)
def explain_emerging(store: StoreDep, filters: FiltersDep) -> EmergingExplanation:
    """Why the latest analysis has no alert (or how many it has), per source: no dates, no
    themes, too little history, too few records in a period, or tested and nothing rose."""
    return EmergingExplanation(**queries.explain_emerging(store, filters))
