"""Records: search (key required: record-level data) and posting new ones (one or a batch)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from analyzer import queries
from api.deps import CallerDep, FiltersDep, KeyDep, PageDep, StateDep, StoreDep
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


# -- the map ---------------------------------------------------------------------------------


class GeoCell(BaseModel):
    lat: float = Field(description="the cell's centre")
    lon: float
    count: int
    theme_id: str | None = Field(description="the theme most of the cell's records belong to")
    theme_label: str | None
    theme_count: int


class GeoRegion(BaseModel):
    """One source's grid over its own extent (two cities in a store are two regions)."""

    source: str
    located: int
    outside: int = Field(description="located records beyond the grid's extent (outliers)")
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    cell_lat: float = Field(description="cell height in degrees of latitude")
    cell_lon: float = Field(description="cell width in degrees of longitude")
    cells: list[GeoCell]


class GeoPoint(BaseModel):
    id: str
    source: str
    lat: float
    lon: float
    area: str | None
    theme_id: str | None
    theme_label: str | None
    text: str | None = Field(None, description="redacted text; only for a caller with an API key")


class ThemeShare(BaseModel):
    theme_id: str | None
    label: str | None
    count: int


class AreaMix(BaseModel):
    source: str
    area: str
    count: int
    themes: list[ThemeShare]


class GeoMapOut(BaseModel):
    total: int = Field(description="records under the filters")
    located: int = Field(description="of them, with usable coordinates")
    regions: list[GeoRegion]
    points: list[GeoPoint]
    sampled: bool
    areas: list[AreaMix]
    themes: list[ThemeShare]


@router.get("/map", response_model=GeoMapOut)
def record_map(
    store: StoreDep,
    filters: FiltersDep,
    caller: CallerDep,
    theme_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
    bins: Annotated[
        int, Query(ge=4, le=queries.MAX_MAP_BINS, description="cells along a grid's longer side")
    ] = queries.DEFAULT_MAP_BINS,
    points: Annotated[
        int, Query(ge=0, le=queries.MAX_MAP_POINTS, description="sample points per source")
    ] = queries.DEFAULT_MAP_POINTS,
) -> GeoMapOut:
    """Every located record under the filters counted on a grid (one per source, with each
    cell's leading theme), a deterministic sample of points to draw, and the busiest areas with
    their theme mix: bounded whatever the store's size. Points carry text only with a key."""
    f = replace(filters, theme_id=theme_id)
    out = queries.map_view(store, f, bins=bins, points=points, with_text=caller.key_id is not None)
    return GeoMapOut(**out)
