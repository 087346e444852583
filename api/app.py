"""The FastAPI application: ``create_app(settings)`` builds one; ``app`` is the default instance
(settings from ``civicpulse.toml`` / environment; the store opens at startup or on first use).

Error bodies are JSON everywhere and never carry a stack trace: ``{"detail": ..., "code": ...}``
on /v1 (422s list each field's path), ``[{"code": ..., "description": ...}]`` on /open311 as
GeoReport v2 has it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from analyzer import __version__
from analyzer.config import Settings, load_settings
from analyzer.errors import InputError
from api.open311_xml import XML_MEDIA_TYPE, xml_errors
from api.replica import ReplicaState
from api.routers import (
    admin,
    conversations,
    corrections,
    emerging,
    health,
    keys,
    open311,
    outcomes,
    records,
    runs,
    stats,
    tag,
    themes,
)
from api.schemas import ErrorOut, Open311Error, ValidationErrorOut
from api.security import Gateway, SecurityHeaders
from api.state import AppState

log = logging.getLogger("civicpulse.api")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

# Answers the gateway can give on any route; listed so the OpenAPI document is complete.
COMMON = {
    400: {"model": ErrorOut, "description": "malformed request"},
    401: {"model": ErrorOut, "description": "missing, invalid or revoked API key"},
    403: {
        "model": ErrorOut,
        "description": "the key's scope does not allow this request, or (code "
        "read_only_replica) a read replica was sent a write",
    },
    413: {"model": ErrorOut, "description": "body larger than the configured limit"},
    429: {"model": ErrorOut, "description": "rate limit exceeded; see Retry-After"},
    500: {"model": ErrorOut, "description": "internal error (no details are given)"},
}
OPEN311_COMMON = {
    status: {"model": list[Open311Error], "description": spec["description"]}
    for status, spec in {**COMMON, 415: {"description": "not form-encoded or JSON"}}.items()
}
OPEN311_COMMON[422] = {"model": list[Open311Error], "description": "invalid field"}


DOCS_STATIC = "/docs/static"


def _is_open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _is_open311(request) and request.url.path.endswith(".xml"):
        return Response(
            xml_errors([(status, message)]),
            status_code=status,
            headers=headers,
            media_type=XML_MEDIA_TYPE,
        )
    if _is_open311(request):
        body: Any = [{"code": status, "description": message}]
    else:
        body = {"detail": message, "code": CODES.get(status, "error")}
    return JSONResponse(body, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "path": _field_path(e.get("loc", ())),
            # The message only: the input is not echoed back (it may be a resident's text).
            "msg": str(e.get("msg", "invalid value")),
            "type": str(e.get("type", "value_error")),
        }
        for e in exc.errors()
    ]
    if _is_open311(request):
        if request.url.path.endswith(".xml"):
            described = [(422, f"{e['path']}: {e['msg']}") for e in errors]
            return Response(xml_errors(described), status_code=422, media_type=XML_MEDIA_TYPE)
        body: Any = [{"code": 422, "description": f"{e['path']}: {e['msg']}"} for e in errors]
        return JSONResponse(body, status_code=422)
    return JSONResponse({"detail": errors, "code": "validation_error"}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    return _error(request, exc.status_code, detail, headers)


def _allowed(request: Request) -> str:
    """Every method the OpenAPI document gives this path (Starlette names only the methods of
    the first route that matches it)."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in item if m.upper() in HTTP_METHODS}
    return ", ".join(sorted(methods))


HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}


async def _input_error(request: Request, exc: InputError) -> Response:
    loc: list[str] = ["body", exc.column] if exc.column else ["body"]
    if _is_open311(request):
        return _error(request, 422, exc.message)
    body = {
        "detail": [
            {"loc": loc, "path": _field_path(loc), "msg": exc.message, "type": "value_error"}
        ],
        "code": "validation_error",
    }
    return JSONResponse(body, status_code=422)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", extra={"event": "error", "error": type(exc).__name__})
    return _error(request, 500, "internal error; the request was not completed")


def create_app(
    settings: Settings | None = None,
    *,
    warm: bool = False,
    replica_of: Path | None = None,
    primary_url: str | None = None,
) -> FastAPI:
    """A new application with its own state (store, tagger, limits) for ``settings``.

    ``warm`` loads the tagger in the background at startup, so the first tagging request does not
    pay for loading the model. ``replica_of`` makes it a read replica of that store: it serves the
    snapshot its primary publishes, read-only, and refuses writes naming ``primary_url``
    (``api.replica``).
    """
    settings = settings or load_settings()
    state = (
        AppState(settings)
        if replica_of is None
        else ReplicaState(settings, replica_of, primary_url=primary_url)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.store  # noqa: B018 - open the store now: a locked store fails at startup, not later
        if warm:
            state.tagger.start_warming()
        yield
        state.close()

    # Swagger UI and ReDoc served from the pinned fastapi-offline package's own copies of their
    # JS/CSS under /docs/static (public, like /docs), so /docs works with no network at all.
    app = FastAPIOffline(
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_STATIC,
        # The online validator badge would be fetched from swagger.io: off.
        swagger_ui_parameters={"validatorUrl": None},
        title="CivicPulse API",
        version=__version__,
        description=(
            "Themes, sentiment, emerging needs and tagging of what residents tell their city. "
            "Writes and /v1/records need an API key (`Authorization: Bearer KEY`, made with "
            "`civicpulse apikey create`). Text in every response is redacted."
        ),
        lifespan=lifespan,
    )
    app.state.civicpulse = state
    for module in (
        tag,
        themes,
        emerging,
        records,
        corrections,
        stats,
        runs,
        conversations,
        outcomes,
        keys,
        admin,
    ):
        app.include_router(module.router, responses=COMMON)
    app.include_router(open311.router, responses=OPEN311_COMMON)
    app.include_router(health.router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(InputError, _input_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)
    app.add_middleware(Gateway, state=state)
    if state.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(state.settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            max_age=600,
        )
    # Outermost: every answer (the gateway's refusals, CORS preflights) carries the headers.
    app.add_middleware(SecurityHeaders)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        # FastAPI documents its own 422 body; ours lists field paths without echoing input.
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        mine = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in mine.pop("$defs", {}).items():
            comps[name] = sub
        comps["HTTPValidationError"] = mine
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
