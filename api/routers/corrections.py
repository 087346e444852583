"""Corrections: the right label for a text, stored for the next retraining of the tagger."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.deps import KeyDep, StateDep
from api.schemas import CorrectionIn, CorrectionOut, ErrorOut
from api.state import TaggerUnavailableError

router = APIRouter(prefix="/v1", tags=["tagging"])


@router.post(
    "/corrections",
    response_model=CorrectionOut,
    status_code=201,
    responses={503: {"model": ErrorOut, "description": "tagging is not installed"}},
)
async def post_correction(body: CorrectionIn, state: StateDep, _key: KeyDep) -> CorrectionOut:
    """Store a correction (the text is redacted before it is stored)."""
    try:
        from analyzer.tagging.corrections import record_correction
    except ImportError:
        raise HTTPException(503, "the tagging module is not installed") from None

    correction_id = await run_in_threadpool(
        record_correction, state.store, body.text, body.label, record_id=body.record_id
    )
    try:
        known = body.label in {c["name"] for c in state.tagger.categories()}
    except TaggerUnavailableError:
        known = False
    return CorrectionOut(id=str(correction_id), label=body.label, known_label=known)
