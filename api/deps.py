"""FastAPI dependencies: the process state, the store, the caller, filters and paging.

They never block, so they are ``async def``: FastAPI runs a plain ``def`` dependency in its
thread pool, two thread hand-overs per request for nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import TypeAdapter, ValidationError

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


async def optional_key(
    request: Request,
    _b: Annotated[object, Security(_bearer)] = None,
    _h: Annotated[object, Security(_header)] = None,
) -> Principal:
    return principal(request)


def _start(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _end(value: date | datetime | None) -> datetime | None:
    """``until`` as a date includes that whole day; as a date-time it is an exclusive bound."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


ShortQuery = Annotated[str | None, Query(max_length=MAX_SHORT)]


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = TypeAdapter(datetime)


def _when(value: str | None, name: str) -> date | datetime | None:
    """A date (YYYY-MM-DD: a whole day) or an ISO date-time (an instant); UTC when no offset."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        if _DATE_ONLY.match(value):
            return date.fromisoformat(value)
        return _DATETIME.validate_python(value)
    except (ValueError, ValidationError):
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "expected a date (YYYY-MM-DD) or an ISO 8601 date-time",
                    "type": "datetime_parsing",
                }
            ]
        ) from None


async def filters(
    source: ShortQuery = None,
    since: Annotated[
        str | None,
        Query(max_length=40, description="inclusive: a date (YYYY-MM-DD) or an ISO date-time"),
    ] = None,
    until: Annotated[
        str | None,
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
    start, end = _start(_when(since, "since")), _end(_when(until, "until"))
    if start and end and start >= end:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "until"),
                    "msg": "'until' must be after 'since'",
                    "type": "value_error",
                }
            ]
        )
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
CallerDep = Annotated[Principal, Depends(optional_key)]
