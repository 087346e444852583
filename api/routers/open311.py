"""An Open311 GeoReport v2 front door, in both of the spec's formats (``.json`` and ``.xml``).

Routes (each at ``NAME.json`` and ``NAME.xml``): ``/open311/discovery`` (also under ``/v2``, the
Service Discovery document), ``/open311/v2/services``, ``/open311/v2/services/{service_code}`` (GET
Service Definition), ``/open311/v2/requests`` (GET and POST), ``/open311/v2/requests/{id}`` and
``/open311/v2/tokens/{token}``. XML is shaped as the spec's examples (``api.open311_xml``); an error
on an ``.xml`` route is the spec's ``<errors><error>`` document, on a ``.json`` route its list of
``{"code", "description"}``. ``jurisdiction_id`` is accepted everywhere (one jurisdiction per
endpoint).

Service codes are the tagger's categories as URL-safe slugs ("Illegal Parking" ->
"illegal-parking"). A service has ``metadata=true`` when the tagger bundle's category document
carries GeoReport ``attributes`` (a zero-shot bundle built from a city's services list and
definitions); its definition lists them, and every other service's definition has none. Requests
are created in real time, so POST answers ``service_request_id`` (never a ``token``); a token is
that id. A request posted without a service_code is tagged, and the response says so in
``service_notice`` (plus the ``service_code_source``, ``confidence`` and ``needs_review``
extensions). Personal fields of the spec (email, names, phone) and the answers to a service's
attributes are checked and never stored; the description is redacted by ingest before it is
stored.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from analyzer import queries
from analyzer.common.clock import TimeBoundError, parse_time
from analyzer.common.status import is_closed
from analyzer.errors import InputError
from analyzer.store.database import Store
from api.deps import StateDep, WhenQuery
from api.ingesting import ingest_open311
from api.keys import verify_key
from api.open311_xml import XML_MEDIA_TYPE, xml_document, xml_errors
from api.schema_rules import form_schema, open311_post_schema
from api.schemas import (
    MAX_SHORT,
    Open311Attribute,
    Open311Created,
    Open311Discovery,
    Open311Endpoint,
    Open311Error,
    Open311Request,
    Open311RequestIn,
    Open311Service,
    Open311ServiceDefinition,
    Open311Token,
)
from api.state import AppState, TaggerUnavailableError, service_code

# GeoReport v2: a date range may not span more than 90 days; the default is the last 90 days.
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
FORMATS = ("json", "xml")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
STARTED = datetime.now(UTC).replace(microsecond=0)
# A service attribute's answer in a POST: attribute[CODE] (or attribute[CODE][] for a list).
ATTRIBUTE_FIELD = re.compile(r"^attribute\[([^\]]+)\](?:\[\])?$")
LIST_TYPES = ("singlevaluelist", "multivaluelist")


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
# On an .xml route the route's own errors are XML; the gateway's (key, size, rate) stay JSON.
_ERROR_LIST_SCHEMA = {"type": "array", "items": Open311Error.model_json_schema()}
XML_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": what,
        "content": {
            "text/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": _ERROR_LIST_SCHEMA},
        },
    }
    for status, what in {
        400: "malformed request (<errors><error>)",
        401: "missing, invalid or revoked API key",
        404: "not found",
        413: "body larger than the configured limit",
        415: "not form-encoded or JSON",
        422: "invalid field",
        429: "rate limit exceeded; see Retry-After",
        500: "internal error (no details are given)",
        503: "no tagger model",
    }.items()
}


class XMLResponse(Response):
    media_type = XML_MEDIA_TYPE


def _field_path(loc: Any) -> str:
    out = ""
    for part in loc or ():
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _xml_error(status: int, messages: list[str], headers: Mapping[str, str] | None) -> Response:
    body = xml_errors([(status, m) for m in messages])
    return XMLResponse(body, status_code=status, headers=dict(headers or {}))


class Open311Route(APIRoute):
    """An .xml route answers its errors (HTTP and validation) as the spec's XML error document;
    a .json route leaves them to the app's handlers (the spec's JSON list)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.path.endswith(".xml"):
            return handler

        async def answer_errors_in_xml(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                # The message only: the input is not echoed back (it may be a resident's text).
                messages = [
                    f"{_field_path(e.get('loc'))}: {e.get('msg', 'invalid value')}"
                    for e in exc.errors()
                ]
                return _xml_error(422, messages, None)
            except InputError as exc:
                return _xml_error(422, [exc.message], None)
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else "error"
                return _xml_error(exc.status_code, [detail], exc.headers)

        return answer_errors_in_xml


router = APIRouter(prefix="/open311", tags=["open311"], route_class=Open311Route)


def _is_xml(request: Request) -> bool:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path)).endswith(".xml")


def _answer(request: Request, root: str, value: BaseModel | list[Any]) -> Response:
    """``value`` as JSON, or as the XML document ``<root>`` on an .xml route."""
    if isinstance(value, list):
        data: Any = [v.model_dump(mode="json") for v in value]
    else:
        data = value.model_dump(mode="json")
    if _is_xml(request):
        return XMLResponse(xml_document(root, data))
    return JSONResponse(data)


def _register(
    path: str,
    endpoint: Callable[..., Any],
    *,
    model: Any,
    methods: tuple[str, ...] = ("GET",),
    extra_errors: dict[int | str, dict[str, Any]] | None = None,
    openapi_extra: dict[str, Any] | None = None,
) -> None:
    """``endpoint`` at ``path.json`` and ``path.xml``."""
    for fmt in FORMATS:
        xml = fmt == "xml"
        router.add_api_route(
            f"{path}.{fmt}",
            endpoint,
            methods=list(methods),
            response_model=None if xml else model,
            response_class=XMLResponse if xml else JSONResponse,
            responses=XML_ERRORS if xml else {**ERRORS, **(extra_errors or {})},
            name=f"{endpoint.__name__}_{fmt}",
            openapi_extra=openapi_extra,
        )


Jurisdiction = Annotated[
    str | None,
    Query(max_length=MAX_SHORT, description="accepted; this endpoint serves one jurisdiction"),
]


# -- the tagger bundle's own service documents ---------------------------------------------------


@functools.lru_cache(maxsize=8)
def _bundle_services(folder: str, stamp: int) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """(created_at, service_code -> category document) of a tagger bundle. Only a zero-shot
    bundle keeps its categories' documents (name, description, keywords, group, attributes).
    ``stamp`` (the manifest's mtime) makes a rewritten bundle a new cache entry."""
    from analyzer.common.bundle import load_bundle
    from analyzer.tagging import ZERO_SHOT_KIND

    bundle = load_bundle(folder)
    created = bundle.manifest.get("created_at")
    docs: dict[str, dict[str, Any]] = {}
    if bundle.manifest.get("kind") == ZERO_SHOT_KIND:
        for cat in bundle.document("categories") or []:
            if isinstance(cat, dict):
                name = str(cat.get("name") or cat.get("service_name") or "").strip()
                if name:
                    docs.setdefault(service_code(name), cat)
    return (str(created) if created else None), docs


def _tagger_services(state: AppState) -> tuple[str | None, dict[str, dict[str, Any]]]:
    folder = state.tagger.folder
    try:
        stamp = (folder / "manifest.json").stat().st_mtime_ns
        return _bundle_services(str(folder), stamp)
    except (OSError, InputError, ValueError, KeyError):
        return None, {}  # no usable bundle: no service has metadata


def _attributes(code: str, doc: Mapping[str, Any]) -> list[Open311Attribute]:
    """A category document's GeoReport attributes, in their order; a malformed one is the
    bundle's fault (503, naming the service and the attribute), never the caller's."""
    raw = doc.get("attributes") or []
    if not isinstance(raw, list):
        raise HTTPException(503, f"the tagger's definition of service {code!r} is malformed")
    out = []
    for i, item in enumerate(raw, start=1):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            out.append(
                Open311Attribute.model_validate(
                    {"order": i, "description": item.get("code"), **item}
                )
            )
        except (ValidationError, ValueError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise HTTPException(
                503,
                f"the tagger's definition of service {code!r} is malformed: attribute {i}: {why}",
            ) from None
    return sorted(out, key=lambda a: a.order)


def _keywords(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get("keywords")
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return str(value) if value else ", ".join(name.lower().split())


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


# -- discovery ------------------------------------------------------------------------------


def discovery(request: Request, state: StateDep) -> Response:
    """Open311 Service Discovery: this GeoReport v2 endpoint, its formats, and how to get a key.
    ``changeset`` changes when the service definitions do (the tagger bundle's creation time)."""
    created, _ = _tagger_services(state)
    try:
        changeset = datetime.fromisoformat(created) if created else STARTED
    except ValueError:
        changeset = STARTED
    base = str(request.base_url).rstrip("/")
    doc = Open311Discovery(
        changeset=changeset,
        contact=f"The operator of this CivicPulse service; API documentation at {base}/docs",
        key_service="API keys are issued by the operator (civicpulse apikey create); "
        "send one as api_key to post a request",
        endpoints=[
            Open311Endpoint(
                specification=SPECIFICATION,
                url=f"{base}/open311/v2",
                changeset=changeset,
                type="production",
                formats=["text/xml", "application/json"],
            )
        ],
    )
    return _answer(request, "discovery", doc)


for _prefix in ("", "/v2"):
    _register(f"{_prefix}/discovery", discovery, model=Open311Discovery)


# -- services -------------------------------------------------------------------------------


def services(request: Request, state: StateDep, jurisdiction_id: Jurisdiction = None) -> Response:
    """The active tagger's categories as GeoReport services; ``metadata`` is true for a service
    whose definition has attributes."""
    try:
        cats = state.tagger.categories()
    except TaggerUnavailableError as exc:
        raise HTTPException(503, f"no tagger model: {exc}") from None
    _, docs = _tagger_services(state)
    out = []
    for c in cats:
        code = service_code(c["name"])
        doc = docs.get(code, {})
        out.append(
            Open311Service(
                service_code=code,
                service_name=c["name"],
                description=c["description"],
                metadata=bool(_attributes(code, doc)),
                keywords=_keywords(doc, c["name"]),
                group=str(doc.get("group") or ""),
            )
        )
    return _answer(request, "services", out)


_register("/v2/services", services, model=list[Open311Service])


def _definition(state: AppState, code: str) -> Open311ServiceDefinition:
    if code not in _catalogue(state):
        raise HTTPException(404, f"service_code {code!r} not found; see services.json")
    _, docs = _tagger_services(state)
    return Open311ServiceDefinition(
        service_code=code, attributes=_attributes(code, docs.get(code, {}))
    )


def service_definition(
    request: Request,
    state: StateDep,
    service_code: Annotated[str, Path(min_length=1, max_length=MAX_SHORT)],
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """GET Service Definition: the attributes (extra questions) of a service with
    ``metadata=true``; an empty list for every other service."""
    return _answer(request, "service_definition", _definition(state, service_code))


_register("/v2/services/{service_code}", service_definition, model=Open311ServiceDefinition)


# -- POST a request -------------------------------------------------------------------------

POST_SCHEMA = open311_post_schema(Open311RequestIn.model_json_schema())
OPEN311_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": form_schema(POST_SCHEMA)},
            "application/json": {"schema": POST_SCHEMA},
        },
    }
}


async def _read_fields(request: Request) -> dict[str, Any]:
    """Form-encoded (the spec's way) or a JSON object. The first value of each field; every
    value of an ``attribute[CODE][]`` field, as a list."""
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
        fields: dict[str, Any] = {}
        for k, v in form.multi_items():
            if not isinstance(v, str):
                continue
            if ATTRIBUTE_FIELD.match(k):
                fields.setdefault(k, []).append(v)
            else:
                fields.setdefault(k, v)
        return fields
    raise HTTPException(415, "send the request form-encoded or as a JSON object")


def _attribute_answers(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    """attribute[CODE]=value fields (or a JSON ``attribute`` object): CODE -> its values."""
    out: dict[str, list[str]] = {}
    nested = fields.get("attribute")
    pairs = list(nested.items()) if isinstance(nested, Mapping) else []
    for key, value in fields.items():
        m = ATTRIBUTE_FIELD.match(str(key))
        if m:
            pairs.append((m.group(1), value))
    for code, value in pairs:
        values = value if isinstance(value, list) else [value]
        out.setdefault(str(code), []).extend(str(v) for v in values if str(v).strip())
    return out


def _check_answers(definition: Open311ServiceDefinition, answers: Mapping[str, list[str]]) -> None:
    """Required attributes answered, list answers among their keys (values are not echoed)."""
    code = definition.service_code
    for attr in definition.attributes:
        given = answers.get(attr.code, [])
        where = f"attribute[{attr.code}]"
        if attr.variable and attr.required and not given:
            raise HTTPException(
                400, f"{where} is required for service {code!r}; see services/{code}.json"
            )
        if attr.datatype in LIST_TYPES and attr.values and given:
            keys = {v.key for v in attr.values}
            if any(v not in keys for v in given):
                raise HTTPException(
                    400, f"{where} must be one of its values' keys; see services/{code}.json"
                )
            if attr.datatype == "singlevaluelist" and len(given) > 1:
                raise HTTPException(400, f"{where} takes one value")


async def post_request(request: Request, state: StateDep) -> Response:
    """Create a service request (in real time: the answer carries its ``service_request_id``).
    Without ``service_code`` the tagger chooses one. A key is needed: ``api_key`` (form field or
    query parameter, as the spec has it) or an Authorization header. A service with attributes
    needs its required ones as ``attribute[CODE]`` fields (checked, not stored)."""
    # The key first (401), then the body (415, 422): without a key in the headers the body is
    # read only to find its api_key field, and a body that cannot carry one is a 401.
    deferred = request.state.principal.deferred
    try:
        fields = await _read_fields(request)
    except (RequestValidationError, HTTPException):
        if deferred:
            raise HTTPException(401, "a valid api_key is required to post a request") from None
        raise
    if deferred:
        key = fields.get("api_key")
        found = (
            await run_in_threadpool(verify_key, state.store, key.strip())
            if isinstance(key, str) and key.strip()
            else None
        )
        if found is None:
            raise HTTPException(401, "a valid api_key is required to post a request")
        if not found.allows("write"):
            raise HTTPException(403, f"this api_key's scope ({found.scope}) cannot post requests")
    try:
        body = Open311RequestIn.model_validate(
            {k: v for k, v in fields.items() if not isinstance(v, list)}
        )
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
    description = (body.description or "").strip()
    if not description:
        raise HTTPException(400, "description is required: CivicPulse analyses the request's text")
    catalogue = await run_in_threadpool(_catalogue, state)
    notice, confidence, needs_review = None, None, None
    if body.service_code:
        code = body.service_code.strip()
        if code not in catalogue:
            raise HTTPException(400, f"service_code {code!r} not found; see services.json")
        definition = await run_in_threadpool(_definition, state, code)
        _check_answers(definition, _attribute_answers(fields))
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
    created = Open311Created(
        service_request_id=request_id,
        service_notice=notice,
        service_code=code,
        service_code_source=source,
        confidence=confidence,
        needs_review=needs_review,
    )
    return _answer(request, "service_requests", [created])


_register(
    "/v2/requests",
    post_request,
    model=list[Open311Created],
    methods=("POST",),
    extra_errors={401: {"model": list[Open311Error]}},
    openapi_extra=OPEN311_BODY,
)


# -- GET requests ---------------------------------------------------------------------------


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
        status="closed" if is_closed(status, item.get("updated_at") is not None) else "open",
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


# What ``get_requests`` accepts as ``status``: open / closed in any case, comma-separated.
STATUS_PATTERN = r"^[\s,]*(([Oo][Pp][Ee][Nn]|[Cc][Ll][Oo][Ss][Ee][Dd])\s*,[\s,]*)*([Oo][Pp][Ee][Nn]|[Cc][Ll][Oo][Ss][Ee][Dd])?[\s,]*$"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def get_requests(
    request: Request,
    state: StateDep,
    service_request_id: Annotated[
        str | None, Query(max_length=5000, description="comma-separated; overrides the rest")
    ] = None,
    service_code_: Annotated[
        str | None, Query(alias="service_code", max_length=2000, description="comma-separated")
    ] = None,
    # the one reading of query times (analyzer.common.clock), as since / until on /v1
    start_date: Annotated[WhenQuery, Query(max_length=40, description="w3c date-time")] = None,
    end_date: Annotated[WhenQuery, Query(max_length=40, description="w3c date-time")] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=50,
            pattern=STATUS_PATTERN,
            description="open, closed or both (comma-separated)",
        ),
    ] = None,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
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
        # Clamped to what the store holds: 9999-12-31 or year 1 with an offset is no 500.
        try:
            start = parse_time(start_date, "start_date") if start_date else None
            end = parse_time(end_date, "end_date") if end_date else None
        except TimeBoundError as exc:
            raise RequestValidationError(
                [{"loc": ("query", exc.name), "msg": exc.message, "type": "datetime_parsing"}]
            ) from None
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
                return _answer(request, "service_requests", [])
        # end_date is inclusive in GeoReport v2; Filters.until is exclusive.
        f = queries.Filters(
            since=start,
            until=end + timedelta(microseconds=1),
            categories=categories,
            closed=None if len(set(statuses)) != 1 else statuses[0] == "closed",
        )
    out = queries.search_records(store, f, queries.Page(limit=MAX_RESULTS), with_attributes=True)
    return _answer(request, "service_requests", [_to_open311(item) for item in out["items"]])


_register("/v2/requests", get_requests, model=list[Open311Request])


def _find(state: AppState, service_request_id: str) -> Open311Request | None:
    for rid in (service_request_id, *(p + service_request_id for p in ID_PREFIXES)):
        item = queries.get_record(state.store, rid)
        if item is not None:
            return _to_open311(item)
    return None


def get_request(
    request: Request,
    service_request_id: Annotated[str, Path(min_length=1, max_length=MAX_SHORT)],
    state: StateDep,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """One request, as a one-element list (as the spec returns it)."""
    found = _find(state, service_request_id)
    if found is None:
        raise HTTPException(404, f"no service request {service_request_id!r}")
    return _answer(request, "service_requests", [found])


_register("/v2/requests/{service_request_id}", get_request, model=list[Open311Request])


def get_token(
    request: Request,
    token: Annotated[str, Path(min_length=1, max_length=MAX_SHORT)],
    state: StateDep,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    """GET service_request_id from a token. Requests are created in real time here, so a
    request's token is its service_request_id."""
    found = _find(state, token)
    if found is None:
        raise HTTPException(404, f"no service request for token {token!r}")
    answer = Open311Token(service_request_id=found.service_request_id, token=token)
    return _answer(request, "service_requests", [answer])


_register("/v2/tokens/{token}", get_token, model=list[Open311Token])
