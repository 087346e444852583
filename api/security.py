"""The gateway in front of every route: auth, rate limits, body limit, request log, last-resort 500.

It is a plain ASGI middleware on purpose. FastAPI reads and parses a request body *before* it runs
a route's dependencies, so a dependency cannot check a key before the body is read; here the key is
checked from the headers alone, and an unauthenticated or oversized body is refused unread.

Access rules (by method and path, so they hold for every route, including ones added later):

- ``public``: /healthz, /readyz, the OpenAPI document and its pages;
- ``read``: GET routes and POST /v1/tag (tagging changes nothing): open when
  ``Settings.read_public``, else a key is needed;
- ``key``: GET /v1/records and GET /v1/themes/{id}/records.csv (record-level data): a key of
  any scope;
- ``write``: every other write: a key of scope ``write`` or ``admin``;
- ``admin``: /v1/keys (list, make and revoke keys): a key of scope ``admin``;
- ``key_or_form``: POST /open311/v2/requests.json and .xml, where GeoReport v2 clients send
  ``api_key`` as a form field: a key in the headers or query is checked here (scope ``write``),
  otherwise the route checks the field.

A key whose scope is too narrow for the request gets 403 (``api.keys.SCOPES``).

A key that is presented must be valid even on a public read (a typo should not silently degrade to
anonymous). Rate limits apply per key, or per client address when anonymous.

``SecurityHeaders``, the outermost middleware, gives every response (the gateway's own refusals
included) ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy:
no-referrer`` and a Content-Security-Policy: on data (JSON, CSV, XML) one that allows nothing and no
framing; on an HTML page (``report.html``, the API docs) one that lets only that page's own inline
scripts run, by their SHA-256 hashes, with no network access (the docs may load their pinned
scripts from this server and fetch the OpenAPI document).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders

from api.keys import ApiKey
from api.open311_xml import XML_MEDIA_TYPE, xml_errors

log = logging.getLogger("civicpulse.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Access = Literal["public", "read", "key", "write", "admin", "key_or_form"]
# The scope a key needs for each rule that takes one.
NEEDED_SCOPE = {
    "read": "read",
    "key": "read",
    "write": "write",
    "key_or_form": "write",
    "admin": "admin",
}

# Rules of requests that change the store (or manage keys): a read replica refuses them, and on
# the primary each one tells the snapshot publisher that there may be something new to publish.
WRITE_RULES = frozenset({"write", "admin", "key_or_form"})
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
    scope: str | None = None

    @property
    def bucket(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"ip:{self.client}"


def access_rule(method: str, path: str) -> Access:
    if path in PUBLIC_PATHS or path.startswith("/docs/"):
        return "public"
    if method != "OPTIONS" and (path == "/v1/keys" or path.startswith("/v1/keys/")):
        return "admin"
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
    return "write"


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

        replica = bool(getattr(self.state, "read_only", False))

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                if replica:  # when the snapshot a replica answers from was published
                    published = self.state.snapshot.published()
                    if published is not None:
                        headers = MutableHeaders(raw=list(message.get("headers", [])))
                        headers["x-civicpulse-snapshot"] = published
                        message["headers"] = headers.raw
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
        method, path = scope["method"], scope["path"]
        rule = access_rule(method, path)
        client = (scope.get("client") or ("unknown", 0))[0]
        state = scope.setdefault("state", {})
        if rule == "public":
            state["principal"] = Principal(None, None, client)
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        writes = rule in WRITE_RULES
        if writes and self.state.read_only:
            # A read replica: the body is left unread, the connection closed, the primary named.
            state["principal"] = Principal(None, None, client)
            close = _CLOSE if method in BODY_METHODS and _has_body(headers) else {}
            await send_error(send, path, 403, "read_only_replica", self.state.refusal(), close)
            return
        await self._authorize(scope, receive, send, rule, headers, client)

    async def _authorize(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rule: Access,
        headers: Headers,
        client: str,
    ) -> None:
        settings = self.state.settings
        method, path = scope["method"], scope["path"]
        state = scope["state"]
        key = presented_key(headers, scope.get("query_string", b""), path)
        api_key: ApiKey | None = None
        if key is not None:
            api_key = await anyio.to_thread.run_sync(self.state.verify_key, key)
        principal = Principal(
            api_key.key_id if api_key else None,
            api_key.name if api_key else None,
            client,
            deferred=rule == "key_or_form" and key is None,
            scope=api_key.scope if api_key else None,
        )
        state["principal"] = principal
        # A refusal leaves the body unread: the connection closes, so that the server does not
        # go on reading (and discarding) what the client still sends.
        close = _CLOSE if method in BODY_METHODS and _has_body(headers) else {}
        allowed, retry_after = self.state.limiter.allow(principal.bucket)
        if not allowed:
            await send_error(
                send,
                path,
                429,
                "rate_limited",
                f"rate limit of {settings.rate_limit_per_minute} requests per minute exceeded",
                {"Retry-After": str(retry_after), **close},
            )
            return
        if key is not None and api_key is None:
            await _unauthorized(send, path, "invalid or revoked API key", close)
            return
        needs_key = rule in ("key", "write", "admin") or (
            rule == "read" and not settings.read_public
        )
        if needs_key and api_key is None:
            await _unauthorized(
                send, path, "an API key is required (Authorization: Bearer KEY)", close
            )
            return
        needed = NEEDED_SCOPE[rule]
        if api_key is not None and not api_key.allows(needed):
            await send_error(
                send,
                path,
                403,
                "forbidden",
                f"this key's scope ({api_key.scope}) does not allow this request; "
                f"it needs a {needed} key",
                close,
            )
            return
        if method in BODY_METHODS:
            receive = await self._limit_body(scope, receive, send, headers)
            if receive is None:
                return
            if rule in WRITE_RULES:
                try:
                    await self.app(scope, receive, send)
                finally:
                    # an authorised write reached its route: the snapshot publisher (if any)
                    # looks at the store again; refused requests never cost a snapshot
                    self.state.note_write()
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
                await send_error(send, path, 400, "bad_request", "invalid Content-Length", _CLOSE)
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


# Data is never a page: nothing may load, nothing may frame it.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# A report: its own inline scripts only (hashes), inline styles (plotly sets them), data: images.
PAGE_CSP = (
    "default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The API docs: as a page, plus their pinned scripts and styles from this server and the
# OpenAPI document (fetch), and ReDoc's search worker.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HAS_SRC = re.compile(rb"\ssrc\s*=", re.IGNORECASE)


def script_hashes(html: bytes) -> list[str]:
    """CSP sources (``'sha256-…'``) for every inline script of ``html``, hashed as a browser
    does: the text between the tags, line endings normalised to LF by the HTML parser."""
    out: list[str] = []
    for m in _SCRIPT.finditer(html):
        if _HAS_SRC.search(m.group(1)):
            continue
        text = m.group(2).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        digest = base64.b64encode(hashlib.sha256(text).digest()).decode()
        source = f"'sha256-{digest}'"
        if source not in out:
            out.append(source)
    return out


def page_policy(path: str, html: bytes) -> str:
    scripts = " ".join(script_hashes(html)) or "'none'"
    docs = path in ("/docs", "/redoc") or path.startswith("/docs/")
    if docs:
        return DOCS_CSP.format(scripts=scripts.replace("'none'", "").strip())
    return PAGE_CSP.format(scripts=scripts)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response (see the module's docstring).

    An HTML response is held until its body is complete (a report is a few MB), so that its
    policy can name the hashes of its inline scripts; everything else passes through as it is
    sent. A header a route set itself is kept.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                message["headers"] = headers.raw
                if headers.get("content-type", "").startswith("text/html"):
                    held["start"] = message
                    return
                headers.setdefault("content-security-policy", DATA_CSP)
                await send(message)
                return
            if "start" in held and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                start = held.pop("start")
                headers = MutableHeaders(raw=start["headers"])
                headers.setdefault("content-security-policy", page_policy(path, body))
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, secured_send)


_CLOSE = {"Connection": "close"}


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length", "").strip()
    return bool(headers.get("transfer-encoding")) or (length != "" and length != "0")


async def _unauthorized(
    send: Send, path: str, message: str, extra: dict[str, str] | None = None
) -> None:
    await send_error(
        send, path, 401, "unauthorized", message, {"WWW-Authenticate": "Bearer", **(extra or {})}
    )


async def _too_large(send: Send, path: str, limit: int) -> None:
    # Connection: close, so the server stops reading what the client still sends: without it a
    # keep-alive connection would read (and discard) the whole body after the answer.
    await send_error(
        send,
        path,
        413,
        "body_too_large",
        f"request body is larger than {limit} bytes",
        _CLOSE,
    )


def _route(scope: Scope) -> str:
    # The route template, never the raw path: a path can carry anything a client typed.
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template:
        return str(template)
    path = scope.get("path", "")
    return path if path in PUBLIC_PATHS else "(unmatched)"
