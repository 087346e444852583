"""API keys for administrators: list them, make one, revoke one (effective on its next request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import AdminDep, StoreDep
from api.keys import create_key, list_keys, revoke_key
from api.schemas import ErrorOut, KeyCreated, KeyIn, KeyList, KeyRevoked

router = APIRouter(prefix="/v1", tags=["keys"])

KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="the key id (apikey list)")]


@router.get("/keys", response_model=KeyList)
def keys(store: StoreDep, _admin: AdminDep) -> KeyList:
    """Every key's id, name, scope, creation, revocation and last use (never the keys)."""
    return KeyList.model_validate({"items": list_keys(store)})


@router.post("/keys", response_model=KeyCreated, status_code=201)
def make_key(body: KeyIn, store: StoreDep, _admin: AdminDep) -> KeyCreated:
    """Make a key of a scope; the answer carries the key, which is not shown again."""
    key, record = create_key(store, body.name, body.scope)
    return KeyCreated.model_validate(
        {"key": key, "key_id": record.key_id, "name": record.name, "scope": record.scope}
    )


@router.delete(
    "/keys/{key_id}",
    response_model=KeyRevoked,
    responses={404: {"model": ErrorOut, "description": "no live key with that id"}},
)
def revoke(key_id: KeyId, store: StoreDep, _admin: AdminDep) -> KeyRevoked:
    """Revoke a key: its next request is refused (401), in this process at once."""
    if not revoke_key(store, key_id):
        raise HTTPException(404, f"no live key with id {key_id!r}")
    return KeyRevoked(key_id=key_id, revoked=True)
