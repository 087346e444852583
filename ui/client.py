"""A small client for the CivicPulse API. The explorer never opens the store itself."""

from __future__ import annotations

import os
from typing import Any

import httpx


class ApiError(RuntimeError):
    """The API answered with an error; ``str()`` is a one-line message fit to show a user."""


def api_url() -> str:
    return os.environ.get("CIVICPULSE_API_URL", "http://127.0.0.1:8000").rstrip("/")


def api_key() -> str | None:
    key = os.environ.get("CIVICPULSE_API_KEY")
    if key:
        return key.strip()
    path = os.environ.get("CIVICPULSE_API_KEY_FILE", "var/explorer_api_key")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    return None


class Client:
    def __init__(self, base_url: str | None = None, key: str | None = None, timeout: float = 30.0):
        headers = {"X-API-Key": key} if key else {}
        self._http = httpx.Client(base_url=base_url or api_url(), headers=headers, timeout=timeout)

    @property
    def has_key(self) -> bool:
        """Whether calls carry an API key (record-level data such as a theme's CSV needs one)."""
        return "X-API-Key" in self._http.headers

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the API at {self._http.base_url} is not reachable ({type(exc).__name__})"
            ) from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text[:200]
            if isinstance(detail, list):
                detail = "; ".join(f"{d.get('path', '')}: {d.get('msg', '')}" for d in detail)
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
    return Client(key=api_key())
