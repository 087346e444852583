"""The gateway in front of every route: auth, rate limits, body limit, request log, last-resort 500.

It is a plain ASGI middleware on purpose. FastAPI reads and parses a request body *before* it runs
a route's dependencies, so a dependency cannot check a key before the body is read; here the key is
checked from the headers alone, and an unauthenticated or oversized body is refused unread.

Access rules (by method and path, so they hold for every route, including ones added later):

- ``public``: /healthz, /readyz, the OpenAPI document and its pages;
- ``read``: GET routes and POST /v1/tag (tagging changes nothing): open when
  ``Settings.read_public``, else a key is needed;
- ``key``: every other write, GET /v1/records and GET /v1/themes/{id}/records.csv (record-level
  data);
- ``key_or_form``: POST /open311/v2/requests.json and .xml, where GeoReport v2 clients send
  ``api_key`` as a form field: a key in the headers or query is checked here, otherwise the route
  checks the field.

A key that is presented must be valid even on a public read (a typo should not silently degrade to
anonymous). Rate limits apply per key, or per client address when anonymous.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.datastructures import Headers

from api.keys import ApiKey, verify_key
from api.open311_xml import XML_MEDIA_TYPE, xml_errors

log = logging.getLogger("civicpulse.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Access = Literal["public", "read", "key", "key_or_form"]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"})
OPEN311_POST = frozenset({"/open311/v2/requests.json", "/open311/v2/requests.xml"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    key_name: str | None
    client: str
    # True where the route itself must check a key sent in the form body (Open311 POST).
    deferred: bool = False

    @property
    def bucket(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"ip:{self.client}"


def access_rule(method: str, path: str) -> Access:
    if path in PUBLIC_PATHS or path.startswith("/docs/"):
        return "public"
    if method in ("GET", "HEAD"):
        if path == "/v1/records" or path.startswith("/v1/records/"):
            return "key"
        if path.startswith("/v1/themes/") and path.endswith("/records.csv"):
            return "key"
        return "read"
    if method == "OPTIONS":
        return "public"  # CORS preflight (answered by the CORS middleware when configured)
    if method == "POST" and path == "/v1/tag":
        return "read"
    if method == "POST" and path in OPEN311_POST:
        return "key_or_form"
    return "key"


def presented_key(headers: Headers, query_string: bytes, path: str) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    if path.startswith("/open311/") and query_string:
        # GeoReport v2 clients pass api_key as a parameter.
        values = parse_qs(query_string.decode("latin-1")).get("api_key")
        if values and values[0]:
            return values[0]
    return None


def error_body(path: str, status: int, code: str, message: str) -> bytes:
    if path.startswith("/open311/"):
        if path.endswith(".xml"):  # GeoReport v2: an .xml route answers errors in XML too
            return xml_errors([(status, message)])
        return json.dumps([{"code": status, "description": message}]).encode()
    return json.dumps({"detail": message, "code": code}).encode()


def error_media_type(path: str) -> str:
    return (
        XML_MEDIA_TYPE
        if path.startswith("/open311/") and path.endswith(".xml")
        else "application/json"
    )


async def send_error(
    send: Send,
    path: str,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    body = error_body(path, status, code, message)
    raw = [
        (b"content-type", error_media_type(path).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """ASGI middleware; ``state`` is the app's ``AppState`` (settings, store, limiter)."""

    def __init__(self, app: Callable[..., Awaitable[None]], state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent: dict[str, Any] = {"status": 0}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send)
        except Exception as exc:  # the last line of defence: no trace leaves
            log.error(
                "unhandled error",
                extra={"event": "error", "error": type(exc).__name__, "path": _route(scope)},
            )
            if not sent["status"]:
                await send_error(
                    tracking_send,
                    scope.get("path", ""),
                    500,
                    "internal_error",
                    "internal error; the request was not completed",
                )
        finally:
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                extra={
                    "event": "request",
                    "method": scope.get("method"),
                    "path": _route(scope),
                    "status": sent["status"],
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "key_id": getattr(principal, "key_id", None),
                },
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.state.settings
        method, path = scope["method"], scope["path"]
        rule = access_rule(method, path)
        client = (scope.get("client") or ("unknown", 0))[0]
        state = scope.setdefault("state", {})
        if rule == "public":
            state["principal"] = Principal(None, None, client)
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = presented_key(headers, scope.get("query_string", b""), path)
        api_key: ApiKey | None = None
        if key is not None:
            api_key = await anyio.to_thread.run_sync(verify_key, self.state.store, key)
        principal = Principal(
            api_key.key_id if api_key else None,
            api_key.name if api_key else None,
            client,
            deferred=rule == "key_or_form" and key is None,
        )
        state["principal"] = principal
        allowed, retry_after = self.state.limiter.allow(principal.bucket)
        if not allowed:
            await send_error(
                send,
                path,
                429,
                "rate_limited",
                f"rate limit of {settings.rate_limit_per_minute} requests per minute exceeded",
                {"Retry-After": str(retry_after)},
            )
            return
        if key is not None and api_key is None:
            await _unauthorized(send, path, "invalid or revoked API key")
            return
        needs_key = rule == "key" or (rule == "read" and not settings.read_public)
        if needs_key and api_key is None:
            await _unauthorized(send, path, "an API key is required (Authorization: Bearer KEY)")
            return
        if method in BODY_METHODS:
            receive = await self._limit_body(scope, receive, send, headers)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _limit_body(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> Receive | None:
        """Refuse a body over the limit: by Content-Length unread, or while streaming it."""
        limit = self.state.settings.max_body_bytes
        path = scope["path"]
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await send_error(send, path, 400, "bad_request", "invalid Content-Length")
                return None
            if int(length) > limit:
                await _too_large(send, path, limit)
                return None
            return receive
        # No length given (chunked): read up to the limit here, then hand the bytes on.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # client went away
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(send, path, limit)
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]

        async def replay_receive() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        return replay_receive


async def _unauthorized(send: Send, path: str, message: str) -> None:
    await send_error(send, path, 401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


async def _too_large(send: Send, path: str, limit: int) -> None:
    await send_error(
        send, path, 413, "body_too_large", f"request body is larger than {limit} bytes"
    )


def _route(scope: Scope) -> str:
    # The route template, never the raw path: a path can carry anything a client typed.
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template:
        return str(template)
    path = scope.get("path", "")
    return path if path in PUBLIC_PATHS else "(unmatched)"
