"""A small client for the CivicPulse API. The explorer never opens the store itself."""

from __future__ import annotations

import os
from typing import Any

import httpx


class ApiError(RuntimeError):
    """The API answered with an error; ``str()`` is a one-line message fit to show a user."""


def api_url() -> str:
    return os.environ.get("CIVICPULSE_API_URL", "http://127.0.0.1:8000").rstrip("/")


def api_key_file() -> str:
    """Where the explorer's key is read from when ``CIVICPULSE_API_KEY`` is not set:
    ``CIVICPULSE_API_KEY_FILE`` (``civicpulse ui`` sets it to the file ``civicpulse serve`` writes
    beside the store), else ``var/explorer_api_key`` (``make run``'s)."""
    return os.environ.get("CIVICPULSE_API_KEY_FILE") or "var/explorer_api_key"


def api_key() -> str | None:
    key = os.environ.get("CIVICPULSE_API_KEY")
    if key:
        return key.strip()
    path = api_key_file()
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    return None


def key_hint() -> str:
    """What to do about a missing or refused key, in one line."""
    return (
        f"the explorer reads its API key from CIVICPULSE_API_KEY or {api_key_file()}, which "
        "`civicpulse serve` writes when it starts (see the README's Explorer set-up)"
    )


class Client:
    def __init__(
        self,
        base_url: str | None = None,
        key: str | None = None,
        timeout: float = 30.0,
        *,
        find_key: bool = False,
        http: httpx.Client | None = None,
    ):
        """``find_key``: without a key, look for one again before each call (the API may write
        the explorer's key file after the explorer started). ``http``: the HTTP client to send
        with (default: a new one for ``base_url``)."""
        self._find_key = find_key
        self._http = http or httpx.Client(base_url=base_url or api_url(), timeout=timeout)
        if key:
            self._http.headers["X-API-Key"] = key

    @property
    def has_key(self) -> bool:
        """Whether calls carry an API key (record-level data such as a theme's CSV needs one)."""
        if "X-API-Key" not in self._http.headers and self._find_key and (key := api_key()):
            self._http.headers["X-API-Key"] = key
        return "X-API-Key" in self._http.headers

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the API at {self._http.base_url} is not reachable ({type(exc).__name__})"
            ) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        has_key = self.has_key
        resp = self._request(method, path, **kwargs)
        if resp.status_code == 401 and self._find_key:
            # the key file may have been replaced since it was read (a new store's key)
            fresh = api_key()
            if fresh and fresh != self._http.headers.get("X-API-Key"):
                self._http.headers["X-API-Key"] = fresh
                has_key = True
                resp = self._request(method, path, **kwargs)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text[:200]
            if isinstance(detail, list):
                detail = "; ".join(f"{d.get('path', '')}: {d.get('msg', '')}" for d in detail)
            if resp.status_code == 401:
                found = "its key was refused" if has_key else "it has no key"
                detail = f"{detail} ({found}: {key_hint()})"
            raise ApiError(f"{resp.status_code}: {detail}")
        return resp

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v not in (None, "", [])}
        return self._call("GET", path, params=clean)

    def download(self, path: str, **params: Any) -> bytes:
        """A file the API serves (a theme's CSV or HTML report), as bytes."""
        clean = {k: v for k, v in params.items() if v not in (None, "", [])}
        return self._send("GET", path, params=clean).content

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, json=body or {})

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PATCH", path, json=body)


def get_client() -> Client:
    return Client(key=api_key(), find_key=True)
