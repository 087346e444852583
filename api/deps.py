"""FastAPI dependencies: the process state, the store, the caller, filters and paging.

They never block, so they are ``async def``: FastAPI runs a plain ``def`` dependency in its
thread pool, two thread hand-overs per request for nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import StringConstraints, WithJsonSchema

from analyzer.common.clock import TimeBoundError, parse_time_range
from analyzer.config import Settings
from analyzer.queries import Filters, Page
from analyzer.store.database import Store
from api.schemas import MAX_SHORT
from api.security import Principal
from api.state import AppState

# Declared for the OpenAPI document (the "Authorize" button); the gateway does the real check.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


async def get_state(request: Request) -> AppState:
    return request.app.state.civicpulse


async def get_store(state: Annotated[AppState, Depends(get_state)]) -> Store:
    return state.store


async def get_settings(state: Annotated[AppState, Depends(get_state)]) -> Settings:
    return state.settings


def principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if found is None:  # only if the gateway is missing: refuse rather than guess
        raise HTTPException(401, "an API key is required")
    return found


async def require_key(
    request: Request,
    _b: Annotated[object, Security(_bearer)] = None,
    _h: Annotated[object, Security(_header)] = None,
) -> Principal:
    """A route that writes: the gateway has already refused callers without a valid key; this
    repeats the check so that a route can never be reached without one."""
    who = principal(request)
    if who.key_id is None:
        raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
    return who


async def require_admin(
    request: Request,
    _b: Annotated[object, Security(_bearer)] = None,
    _h: Annotated[object, Security(_header)] = None,
) -> Principal:
    """Managing keys: the gateway already refused other scopes; repeated here, as for writes."""
    who = principal(request)
    if who.key_id is None:
        raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
    if who.scope != "admin":
        raise HTTPException(403, "managing keys needs an admin key")
    return who


async def optional_key(
    request: Request,
    _b: Annotated[object, Security(_bearer)] = None,
    _h: Annotated[object, Security(_header)] = None,
) -> Principal:
    return principal(request)


ShortQuery = Annotated[str | None, Query(max_length=MAX_SHORT)]

# What the code accepts, declared: a date or an RFC 3339 date-time (one rule:
# analyzer.common.clock.parse_time_range; bounds beyond what the store holds are clamped).
# Empty or blank is refused (422), as the formats say; leave the parameter out for no bound.
WhenQuery = Annotated[
    Annotated[str, StringConstraints(pattern=r"\S")] | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "maxLength": 40},
                {"type": "string", "format": "date-time", "maxLength": 40},
            ]
        }
    ),
]


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``since``/``until`` query values as clamped UTC bounds; a bad one is a 422 naming it."""
    try:
        return parse_time_range(since, until)
    except TimeBoundError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", exc.name),
                    "msg": exc.message,
                    "type": "value_error" if exc.value is None else "datetime_parsing",
                }
            ]
        ) from None


async def filters(
    source: ShortQuery = None,
    since: Annotated[
        WhenQuery,
        Query(max_length=40, description="inclusive: a date (YYYY-MM-DD) or an ISO date-time"),
    ] = None,
    until: Annotated[
        WhenQuery,
        Query(
            max_length=40,
            description="a date (YYYY-MM-DD) includes that whole day; a date-time is exclusive",
        ),
    ] = None,
    area: ShortQuery = None,
    category: ShortQuery = None,
    kind: Annotated[
        str | None,
        Query(max_length=50, description="what a record is: 311, survey or engagement"),
    ] = None,
) -> Filters:
    start, end = time_range(since, until)
    return Filters(source=source, kind=kind, since=start, until=end, area=area, category=category)


async def page(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


StateDep = Annotated[AppState, Depends(get_state)]
StoreDep = Annotated[Store, Depends(get_store)]
FiltersDep = Annotated[Filters, Depends(filters)]
PageDep = Annotated[Page, Depends(page)]
KeyDep = Annotated[Principal, Depends(require_key)]
AdminDep = Annotated[Principal, Depends(require_admin)]
CallerDep = Annotated[Principal, Depends(optional_key)]
