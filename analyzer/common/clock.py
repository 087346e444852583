"""One clock: every timestamp the project writes (run ids, manifests) is UTC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_stamp(value: datetime | None = None) -> str:
    """ISO 8601 UTC to the second, e.g. ``2026-12-07T06:30:00Z``."""
    return (value or utc_now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: datetime | None = None) -> str:
    """A run id: UTC date and time, then 6 random hex digits (``20261207-063000-1a2b3c``)."""
    return (now or utc_now()).astimezone(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
