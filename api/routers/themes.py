"""Themes: the list with size, growth and sentiment; one theme in depth; renames and merges."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, StreamingResponse

from analyzer import queries
from analyzer.errors import InputError
from analyzer.reports import report
from api.deps import FiltersDep, KeyDep, PageDep, StoreDep
from api.schemas import (
    MAX_SHORT,
    ErrorOut,
    MapOut,
    ThemeDetail,
    ThemeEdit,
    ThemeList,
    ThemeMerge,
    ThemeRename,
)

router = APIRouter(prefix="/v1", tags=["themes"])

ThemeId = Annotated[str, Path(min_length=1, max_length=MAX_SHORT)]
NOT_FOUND = {404: {"model": ErrorOut, "description": "no such theme"}}


@router.get("/themes", response_model=ThemeList)
def list_themes(
    store: StoreDep,
    filters: FiltersDep,
    page: PageDep,
    sort: Literal["size", "growth", "sentiment", "label"] = "size",
    order: Literal["asc", "desc"] = "desc",
) -> ThemeList:
    """Top-level themes with records under the filters; merged themes are folded into their
    target and renamed ones show their new label."""
    out = queries.list_themes(store, filters, page, sort=sort, descending=order == "desc")
    return ThemeList(**out, limit=page.limit, offset=page.offset)


@router.get("/themes/{theme_id}", response_model=ThemeDetail, responses=NOT_FOUND)
def theme_detail(theme_id: ThemeId, store: StoreDep, filters: FiltersDep) -> ThemeDetail:
    """Label, keywords, sub-themes, weekly series, areas, representative examples and lineage.
    A theme merged into another answers with the theme it was merged into; a theme a re-fit
    retired answers 404 (its id stays reserved)."""
    try:
        return ThemeDetail(**queries.theme_detail(store, theme_id, filters))
    except queries.ThemeNotFoundError:
        raise HTTPException(404, f"no theme {theme_id!r}") from None


CSV_OK = {
    200: {"content": {"text/csv": {}}, "description": "the theme's records, redacted text only"}
}
HTML_OK = {200: {"content": {"text/html": {}}, "description": "a self-contained HTML report"}}


def _attachment(theme_id: str, suffix: str, disposition: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'{disposition}; filename="{report.safe_filename(theme_id, suffix)}"'
    }


@router.get(
    "/themes/{theme_id}/records.csv",
    responses={**CSV_OK, **NOT_FOUND},
)
def theme_records_csv(
    theme_id: ThemeId, store: StoreDep, filters: FiltersDep, _key: KeyDep
) -> StreamingResponse:
    """Every record of the theme under the filters as CSV (key required: record-level data, as
    /v1/records): id, time, source, category, area, theme and sub-theme, sentiment and the
    redacted text; cells a spreadsheet would run as formulas are neutralised. Streamed."""
    try:
        pieces = report.theme_records_csv(store, theme_id, filters)
    except queries.ThemeNotFoundError:
        raise HTTPException(404, f"no theme {theme_id!r}") from None
    headers = _attachment(theme_id, "records.csv", "attachment")
    headers["Cache-Control"] = "private, no-store"
    return StreamingResponse(pieces, media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/themes/{theme_id}/report.html",
    # no response_class: with HTMLResponse there FastAPI documents the JSON 404 as text/html
    responses={**HTML_OK, **NOT_FOUND},
)
def theme_report(theme_id: ThemeId, store: StoreDep, filters: FiltersDep) -> HTMLResponse:
    """A one-page report on the theme that opens offline (plotly.js inline): figures, weekly,
    area and sentiment charts, sub-themes, redacted quotes, alerts, the filters and run used."""
    try:
        page = report.theme_report_html(store, theme_id, filters)
    except queries.ThemeNotFoundError:
        raise HTTPException(404, f"no theme {theme_id!r}") from None
    return HTMLResponse(page, headers=_attachment(theme_id, "report.html", "inline"))


@router.patch("/themes/{theme_id}", response_model=ThemeEdit, responses=NOT_FOUND)
def rename_theme(theme_id: ThemeId, body: ThemeRename, store: StoreDep, _key: KeyDep) -> ThemeEdit:
    """Rename a theme; the name is kept across analysis runs."""
    try:
        return ThemeEdit(**queries.rename_theme(store, theme_id, body.label))
    except queries.ThemeNotFoundError:
        raise HTTPException(404, f"no theme {theme_id!r}") from None


MERGE_REFUSED = {
    409: {"model": ErrorOut, "description": "the themes do not allow it: itself, another level"}
}


@router.post(
    "/themes/{theme_id}/merge", response_model=ThemeEdit, responses={**NOT_FOUND, **MERGE_REFUSED}
)
def merge_theme(theme_id: ThemeId, body: ThemeMerge, store: StoreDep, _key: KeyDep) -> ThemeEdit:
    """Merge this theme into ``into`` (same level); kept across analysis runs."""
    try:
        return ThemeEdit(**queries.merge_themes(store, theme_id, body.into))
    except queries.ThemeNotFoundError as exc:
        raise HTTPException(404, f"no theme {exc.theme_id!r}") from None
    except InputError as exc:
        # A well-formed request the themes' state refuses (#22: the schema cannot say "not
        # itself"): 409, not 422.
        raise HTTPException(409, exc.message) from None


@router.get("/projection", response_model=MapOut)
def projection(
    store: StoreDep,
    filters: FiltersDep,
    theme_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5000,
) -> MapOut:
    """Points of the 2-D theme map stored by the last analysis (a deterministic sample)."""
    return MapOut(**queries.projection(store, replace(filters, theme_id=theme_id), limit=limit))
