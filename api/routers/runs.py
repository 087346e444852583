"""Analysis runs: start one in the background, follow its progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from analyzer import queries
from api.deps import KeyDep, StateDep, StoreDep
from api.schemas import MAX_SHORT, AnalyzeAccepted, AnalyzeIn, ErrorOut, RunList, RunOut
from api.state import AnalysisBusyError

router = APIRouter(prefix="/v1", tags=["analysis"])


@router.post(
    "/analyze",
    response_model=AnalyzeAccepted,
    status_code=202,
    responses={409: {"model": ErrorOut, "description": "an analysis is already running"}},
)
async def analyze(state: StateDep, key: KeyDep, body: AnalyzeIn | None = None) -> JSONResponse:
    """Start ``civicpulse analyze`` in the background (one at a time); follow it at the URL
    returned (also in the Location header)."""
    refit = bool(body and body.refit)
    try:
        run_id = await run_in_threadpool(state.analysis.start, refit=refit, key_id=key.key_id)
    except AnalysisBusyError as exc:
        raise HTTPException(409, f"analysis run {exc.run_id} is still running") from None
    url = f"/v1/runs/{run_id}"
    out = AnalyzeAccepted(run_id=run_id, status="running", url=url)
    return JSONResponse(out.model_dump(), status_code=202, headers={"Location": url})


@router.get("/runs", response_model=RunList)
def list_runs(store: StoreDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> RunList:
    """The latest runs, newest first."""
    return RunList(items=[RunOut(**r) for r in queries.list_runs(store, limit=limit)])


@router.get(
    "/runs/{run_id}",
    response_model=RunOut,
    responses={404: {"model": ErrorOut, "description": "no such run"}},
)
def get_run(
    run_id: Annotated[str, Path(min_length=1, max_length=MAX_SHORT)], store: StoreDep
) -> RunOut:
    """Status, progress (0..1), current step and, when done, the run's manifest."""
    run = queries.run_status(store, run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return RunOut(**run)
