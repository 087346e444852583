"""Liveness and readiness probes (public)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(state: StateDep) -> JSONResponse:
    """The store answers (503 if not); the tagger's state is reported but does not fail readiness,
    since themes and records are served without it."""

    def check() -> Ready:
        try:
            # query_df reads the result to the end (a half-read result blocks the connection).
            records = int(state.store.query_df("SELECT count(*) AS n FROM records")["n"].iloc[0])
        except Exception as exc:  # reported as not ready, never raised
            return Ready(status="not_ready", store=type(exc).__name__, tagger="unknown")
        calls, texts = state.tagger.batch_stats()
        return Ready(
            status="ready",
            store="ok",
            tagger=state.tagger.status(),
            records=records,
            tagger_calls=calls,
            tagger_texts=texts,
        )

    ready = await run_in_threadpool(check)
    return JSONResponse(ready.model_dump(), status_code=200 if ready.status == "ready" else 503)
