"""Conversations with votes (Polis exports): the list, and one conversation's opinion groups,
consensus and divisive statements, joined with themes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from analyzer import opinions
from analyzer.config import Settings
from analyzer.errors import InputError
from api.deps import StoreDep, get_settings
from api.schemas import MAX_SHORT, ConversationList, ConversationOut, ErrorOut, OpinionsOut

router = APIRouter(prefix="/v1", tags=["opinions"])

SettingsDep = Annotated[Settings, Depends(get_settings)]
ConversationId = Annotated[str, Path(min_length=1, max_length=MAX_SHORT)]


@router.get("/conversations", response_model=ConversationList)
def list_conversations(store: StoreDep) -> ConversationList:
    """Conversations with votes in the store, with their counts."""
    items = [ConversationOut(**c) for c in opinions.list_conversations(store)]
    return ConversationList(items=items, total=len(items))


@router.get(
    "/conversations/{conversation_id}/opinions",
    response_model=OpinionsOut,
    responses={
        404: {"model": ErrorOut, "description": "no such conversation"},
        409: {"model": ErrorOut, "description": "the export had no groups of its own"},
    },
)
def conversation_opinions(
    conversation_id: ConversationId,
    store: StoreDep,
    settings: SettingsDep,
    method: Literal["civicpulse", "polis"] = "civicpulse",
    use_source_groups: bool = False,
    max_groups: Annotated[int | None, Query(ge=2, le=12)] = None,
) -> OpinionsOut:
    """Opinion groups with representative statements, per statement the group-informed
    consensus, agree probability per group, flags (common ground, divisive, uncertain) and
    theme, participants' map positions, and per theme what each group says. Computed once per
    votes, statements, themes and settings (the run is recorded), then kept."""
    model = opinions.OpinionModel(
        method=method,
        max_groups=max_groups,
        use_source_groups=use_source_groups,
        seed=settings.seed,
    )
    try:
        result = opinions.conversation_opinions(store, conversation_id, model)
    except opinions.ConversationNotFoundError:
        raise HTTPException(404, f"no conversation {conversation_id!r}") from None
    except InputError as exc:
        raise HTTPException(409, exc.message) from None
    return OpinionsOut(**result)
