"""API keys: made by ``civicpulse apikey create``, stored only as a hash, checked on every request.

A key looks like ``cp_<key id>.<secret>``. The key id (12 hex characters) is public: it names
the key in logs, rate limits and ``apikey list``. The secret has 256 bits of entropy, so a plain
SHA-256 of the whole key is enough to make a stolen table useless (a slow password hash buys
nothing here and would cost every request); comparison is constant-time.

A key has a scope (#22): ``read`` (every GET, record-level data included, and tagging),
``write`` (read, and every write: records, renames, merges, corrections, analyses, Open311 posts)
or ``admin`` (write, and managing keys: ``/v1/keys``). Keys made before scopes existed write.
Revoking (``DELETE /v1/keys/{id}`` or ``apikey revoke``) empties the verified-key cache, so the key
is refused from its next request on, and rewrites the key file that read replicas check
(``analyzer.store.replica``) before it is answered, so they refuse it from its next request on
too. A key's last use is kept to the minute (one store write per key and minute at most, not one
per request).

No web framework here: the CLI and the API both use this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from analyzer.errors import InputError
from analyzer.store.database import Store
from analyzer.store.replica import KeyFile, refresh_key_file

PREFIX = "cp_"
_KEY_RE = re.compile(r"^cp_([0-9a-f]{12})\.([A-Za-z0-9_-]{32,128})$")
MAX_NAME_CHARS = 100
# A verified key is trusted for this long without a store lookup; revoking through this module
# clears the cache at once, and the CLI cannot revoke while the server holds the store.
CACHE_SECONDS = 30.0
SCOPES = ("read", "write", "admin")  # each allows what the ones before it allow
DEFAULT_SCOPE = "write"
# A key's last use is written at most this often.
LAST_USE_SECONDS = 60.0


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scope: str = DEFAULT_SCOPE

    def allows(self, needed: str) -> bool:
        """Whether this key may do what needs scope ``needed``."""
        return scope_allows(self.scope, needed)


def scope_allows(scope: str, needed: str) -> bool:
    have = SCOPES.index(scope) if scope in SCOPES else -1
    return have >= SCOPES.index(needed)


def check_scope(scope: str) -> str:
    scope = (scope or "").strip().lower()
    if scope not in SCOPES:
        raise InputError(
            f"--scope must be one of {', '.join(SCOPES)}; got {scope!r}", column="scope"
        )
    return scope


def hash_key(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key(key: str) -> str | None:
    """The key id of a well-formed key, else None (malformed keys never reach the store)."""
    m = _KEY_RE.match(key.strip()) if key else None
    return m.group(1) if m else None


def create_key(store: Store, name: str, scope: str = DEFAULT_SCOPE) -> tuple[str, ApiKey]:
    """A new key: returns the full key (shown once, never stored) and its public record."""
    scope = check_scope(scope)
    name = " ".join((name or "").split())
    if not name:
        raise InputError("--name must not be empty", column="name")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"--name is longer than {MAX_NAME_CHARS} characters", column="name")
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
    store.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, created_at, revoked, scope) "
        "VALUES (?, ?, ?, current_timestamp, false, ?)",
        [key_id, name, hash_key(key), scope],
    )
    _cache.clear()
    refresh_key_file(store)  # replicas know the key from its next request on
    return key, ApiKey(key_id, name, scope)


def list_keys(store: Store) -> list[dict[str, Any]]:
    """Every key's public record: id, name, scope, creation, revocation and last use (UTC)."""
    df = store.query_df(
        "SELECT key_id, name, coalesce(scope, 'write') AS scope, "
        "strftime(created_at, '%Y-%m-%dT%H:%M:%SZ') AS created_at, revoked, "
        "strftime(last_used_at, '%Y-%m-%dT%H:%M:%SZ') AS last_used_at "
        "FROM api_keys ORDER BY created_at, key_id"
    )
    return [
        {
            "key_id": r.key_id,
            "name": r.name,
            "scope": r.scope,
            "created_at": r.created_at,
            "revoked": bool(r.revoked),
            "last_used_at": r.last_used_at if isinstance(r.last_used_at, str) else None,
        }
        for r in df.itertuples(index=False)
    ]


def revoke_key(store: Store, key_id: str) -> bool:
    """Revoke by key id (or by the full key); True when a live key was revoked."""
    key_id = parse_key(key_id) or key_id.strip()
    live = store.query_df(
        "SELECT count(*) AS n FROM api_keys WHERE key_id = ? AND NOT revoked", [key_id]
    )["n"].iloc[0]
    if not live:
        return False
    store.execute("UPDATE api_keys SET revoked = true WHERE key_id = ?", [key_id])
    _cache.clear()  # refused from the next request on, cache or not
    refresh_key_file(store)  # and by every replica, before this revocation is answered
    return True


class _VerifiedCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, ApiKey]] = {}

    def get(self, digest: str) -> ApiKey | None:
        with self._lock:
            hit = self._items.get(digest)
            if hit is None or hit[0] < time.monotonic():
                self._items.pop(digest, None)
                return None
            return hit[1]

    def put(self, digest: str, key: ApiKey) -> None:
        with self._lock:
            if len(self._items) > 10_000:  # bounded: only real keys get here, but be safe
                self._items.clear()
            self._items[digest] = (time.monotonic() + CACHE_SECONDS, key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _VerifiedCache()


def verify_key(store: Store, key: str) -> ApiKey | None:
    """The key's record when it is well formed, known, not revoked and its hash matches."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    digest = hash_key(key.strip())
    cached = _cache.get(digest)
    if cached is not None:
        _note_use(store, key_id)
        return cached
    df = store.query_df(
        "SELECT name, key_hash, coalesce(scope, 'write') AS scope FROM api_keys "
        "WHERE key_id = ? AND NOT revoked",
        [key_id],
    )
    if df.empty or not hmac.compare_digest(str(df["key_hash"].iloc[0]), digest):
        return None
    found = ApiKey(key_id, str(df["name"].iloc[0]), str(df["scope"].iloc[0]))
    _cache.put(digest, found)
    _note_use(store, key_id)
    return found


def verify_key_file(keys: KeyFile, key: str) -> ApiKey | None:
    """A replica's check (``analyzer.store.replica``): the key's record when it is well formed
    and live in the primary's key file (re-read when it changes) and its hash matches. No cache:
    a revocation holds from the next request on."""
    key_id = parse_key(key)
    if key_id is None:
        return None
    found = keys.lookup(key_id)
    if found is None or not hmac.compare_digest(str(found.get("key_hash")), hash_key(key.strip())):
        return None
    return ApiKey(key_id, str(found.get("name") or ""), str(found.get("scope") or DEFAULT_SCOPE))


_last_use: dict[str, float] = {}
_last_use_lock = threading.Lock()


def _note_use(store: Store, key_id: str) -> None:
    """Record that ``key_id`` was used now, at most once per ``LAST_USE_SECONDS``."""
    if store.read_only:
        return
    now = time.monotonic()
    with _last_use_lock:
        if now - _last_use.get(key_id, -LAST_USE_SECONDS) < LAST_USE_SECONDS:
            return
        if len(_last_use) > 10_000:
            _last_use.clear()
        _last_use[key_id] = now
    store.execute("UPDATE api_keys SET last_used_at = current_timestamp WHERE key_id = ?", [key_id])
