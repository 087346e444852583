"""An Open311 GeoReport v2 front door (JSON format): services, posting a request, reading them back.

Service codes are the tagger's categories as URL-safe slugs ("Illegal Parking" ->
"illegal-parking"). A request posted without a service_code is tagged, and the response says so in
``service_notice`` (plus the ``service_code_source``, ``confidence`` and ``needs_review``
extensions). Personal fields of the spec (email, names, phone) are accepted and never stored; the
description is redacted by ingest before it is stored.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from analyzer import queries
from analyzer.common.clock import as_utc
from analyzer.store.database import Store
from api.deps import StateDep
from api.ingesting import ingest_open311
from api.keys import verify_key
from api.schemas import (
    MAX_SHORT,
    Open311Created,
    Open311Error,
    Open311Request,
    Open311RequestIn,
    Open311Service,
)
from api.state import AppState, TaggerUnavailableError, service_code

router = APIRouter(prefix="/open311/v2", tags=["open311"])

# GeoReport v2: a date range may not span more than 90 days; the default is the last 90 days.
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000


def _id_prefixes() -> tuple[str, ...]:
    """Id prefixes of the 311 ingest profiles ("open311:", "boston:"): the part of a record id
    that is CivicPulse's, not the city's service_request_id."""
    from analyzer.ingest.profiles import PROFILES

    found = {
        f"{p.id_prefix}:" for p in PROFILES.values() if p.source == "311" and not p.dataset_in_id
    }
    return ("open311:", *sorted(found - {"open311:"}))


ID_PREFIXES = _id_prefixes()
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": list[Open311Error]},
    404: {"model": list[Open311Error]},
    503: {"model": list[Open311Error]},
}


def _catalogue(state: AppState) -> dict[str, str]:
    """service_code -> category label: the tagger's categories, then the store's own."""
    out: dict[str, str] = {}
    try:
        for c in state.tagger.categories():
            out.setdefault(service_code(c["name"]), c["name"])
    except TaggerUnavailableError:
        pass
    df = state.store.query_df("SELECT DISTINCT category FROM records WHERE category IS NOT NULL")
    for label in df["category"]:
        out.setdefault(service_code(str(label)), str(label))
    return out


@router.get("/services.json", response_model=list[Open311Service], responses=ERRORS)
def services(state: StateDep) -> list[Open311Service]:
    """The active tagger's categories as GeoReport services."""
    try:
        cats = state.tagger.categories()
    except TaggerUnavailableError as exc:
        raise HTTPException(503, f"no tagger model: {exc}") from None
    return [
        Open311Service(
            service_code=service_code(c["name"]),
            service_name=c["name"],
            description=c["description"],
            keywords=", ".join(c["name"].lower().split()),
            group="",
        )
        for c in cats
    ]


OPEN311_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": Open311RequestIn.model_json_schema()},
            "application/json": {"schema": Open311RequestIn.model_json_schema()},
        },
    }
}


async def _read_fields(request: Request) -> dict[str, Any]:
    """Form-encoded (the spec's way) or a JSON object; only the first value of each field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "invalid JSON", "type": "json_invalid"}]
            ) from None
        if not isinstance(data, dict):
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "expected an object", "type": "dict_type"}]
            )
        return data
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=100)
        return {k: v for k, v in form.multi_items() if isinstance(v, str)}
    raise HTTPException(415, "send the request form-encoded or as a JSON object")


@router.post(
    "/requests.json",
    response_model=list[Open311Created],
    responses={**ERRORS, 401: {"model": list[Open311Error]}},
    openapi_extra=OPEN311_BODY,
)
async def post_request(request: Request, state: StateDep) -> list[Open311Created]:
    """Create a service request. Without ``service_code`` the tagger chooses one. A key is needed:
    ``api_key`` (form field or query parameter, as the spec has it) or an Authorization header."""
    fields = await _read_fields(request)
    try:
        body = Open311RequestIn.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
    principal = request.state.principal
    if principal.deferred:
        found = (
            await run_in_threadpool(verify_key, state.store, body.api_key) if body.api_key else None
        )
        if found is None:
            raise HTTPException(401, "a valid api_key is required to post a request")
    description = (body.description or "").strip()
    if not description:
        raise HTTPException(400, "description is required: CivicPulse analyses the request's text")
    catalogue = await run_in_threadpool(_catalogue, state)
    notice, confidence, needs_review = None, None, None
    if body.service_code:
        code = body.service_code.strip()
        if code not in catalogue:
            raise HTTPException(400, f"service_code {code!r} not found; see services.json")
        source = "client"
    else:
        try:
            [row] = await state.tagger.predict([description])
        except TaggerUnavailableError as exc:
            raise HTTPException(503, f"service_code is required: no tagger model ({exc})") from None
        code = service_code(row["label"] or "other")
        catalogue.setdefault(code, row["label"] or "Other")
        confidence, needs_review = row["confidence"], row["needs_review"]
        source = "tagger"
        notice = (
            f"service_code was not given; CivicPulse tagged this request as '{catalogue[code]}' "
            f"({code}) with confidence {confidence:.2f}"
            + ("; a person will review the category" if needs_review else "")
        )
    request_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    row_in = {
        "service_request_id": request_id,
        "status": "open",
        "service_name": catalogue[code],
        "service_code": code,
        "description": description,
        "requested_datetime": now,
        "updated_datetime": now,
        "lat": "" if body.lat is None else repr(body.lat),
        "long": "" if body.long is None else repr(body.long),
        "address": body.address_string or "",
        "address_id": body.address_id or "",
        "media_url": body.media_url or "",
        "service_notice": notice or "",
    }
    result = await run_in_threadpool(
        lambda: ingest_open311(state.store, row_in, keep_raw=state.settings.keep_raw)
    )
    if result["rejects"]:
        reject = result["rejects"][0]
        where = f" ({reject['column']})" if reject.get("column") else ""
        raise HTTPException(400, f"request not accepted{where}: {reject['reason']}")
    return [
        Open311Created(
            service_request_id=request_id,
            service_notice=notice,
            service_code=code,
            service_code_source=source,
            confidence=confidence,
            needs_review=needs_review,
        )
    ]


def _to_open311(item: dict[str, Any]) -> Open311Request:
    attrs = item.get("attributes") or {}
    rid = item["id"]
    status = (item.get("status") or "").strip().lower()
    category = item.get("category")

    def attr(name: str) -> str | None:
        value = attrs.get(name)
        return None if value in (None, "") else str(value)

    return Open311Request(
        service_request_id=next((rid[len(p) :] for p in ID_PREFIXES if rid.startswith(p)), rid),
        status="closed" if status in queries.CLOSED_STATUSES else "open",
        status_notes=attr("status_notes"),
        service_name=category,
        service_code=service_code(category) if category else None,
        description=item.get("text"),
        agency_responsible=attr("agency_responsible"),
        service_notice=attr("service_notice"),
        requested_datetime=item.get("created_at"),
        updated_datetime=item.get("updated_at"),
        expected_datetime=None,
        address=attr("address"),
        address_id=attr("address_id"),
        zipcode=attr("zipcode"),
        lat=item.get("lat"),
        long=item.get("lon"),
        media_url=attr("media_url"),
    )


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@router.get("/requests.json", response_model=list[Open311Request], responses=ERRORS)
def get_requests(
    state: StateDep,
    service_request_id: Annotated[
        str | None, Query(max_length=5000, description="comma-separated; overrides the rest")
    ] = None,
    service_code_: Annotated[
        str | None, Query(alias="service_code", max_length=2000, description="comma-separated")
    ] = None,
    start_date: Annotated[datetime | None, Query(description="w3c date-time")] = None,
    end_date: Annotated[datetime | None, Query(description="w3c date-time")] = None,
    status: Annotated[str | None, Query(max_length=50, description="open, closed or both")] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
) -> list[Open311Request]:
    """Requests by id, or by service code, requested_datetime range (at most 90 days; the last
    90 days by default) and status; newest first, at most 1,000."""
    store: Store = state.store
    ids = _split(service_request_id)
    if ids:
        wanted = tuple({i for rid in ids for i in (rid, *(p + rid for p in ID_PREFIXES))})
        f = queries.Filters(ids=wanted)
    else:
        statuses = tuple(s.lower() for s in _split(status))
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise HTTPException(400, "status must be open, closed or both (comma-separated)")
        start, end = as_utc(start_date), as_utc(end_date)
        if start is None and end is None:
            end = datetime.now(UTC)
        if start is None:
            start = end - MAX_SPAN  # type: ignore[operator]
        if end is None:
            end = start + MAX_SPAN
        if end < start:
            raise HTTPException(400, "end_date is before start_date")
        if end - start > MAX_SPAN:
            raise HTTPException(400, "the date range may not span more than 90 days")
        codes = _split(service_code_)
        categories: tuple[str, ...] = ()
        if codes:
            catalogue = _catalogue(state)
            categories = tuple(catalogue[c] for c in codes if c in catalogue)
            if not categories:
                return []
        # end_date is inclusive in GeoReport v2; Filters.until is exclusive.
        f = queries.Filters(
            since=start,
            until=end + timedelta(microseconds=1),
            categories=categories,
            closed=None if len(set(statuses)) != 1 else statuses[0] == "closed",
        )
    out = queries.search_records(store, f, queries.Page(limit=MAX_RESULTS), with_attributes=True)
    return [_to_open311(item) for item in out["items"]]


@router.get(
    "/requests/{service_request_id}.json", response_model=list[Open311Request], responses=ERRORS
)
def get_request(
    service_request_id: Annotated[str, Path(min_length=1, max_length=MAX_SHORT)], state: StateDep
) -> list[Open311Request]:
    """One request, as a one-element list (as the spec returns it)."""
    for rid in (service_request_id, *(p + service_request_id for p in ID_PREFIXES)):
        item = queries.get_record(state.store, rid)
        if item is not None:
            return [_to_open311(item)]
    raise HTTPException(404, f"no service request {service_request_id!r}")
