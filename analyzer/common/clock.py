"""One clock: every timestamp the project writes (run ids, manifests) is UTC, and one rule for
the times a caller gives as query bounds (``--since``/``--until``, ``since``/``until``, Open311's
``start_date``/``end_date``): parsed by :func:`parse_time` and kept within what the store can hold
by :func:`clamp_utc`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta

# The store holds times from ingest's earliest (1900-01-01) to a year ahead of the ingest. A bound
# beyond these limits selects exactly what the limit selects, and clamping it keeps every later
# step in range: a day added, a zone converted, pandas' nanosecond times (1677 to 2262).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MICRO = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clamp_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time within [:data:`EARLIEST`, :data:`LATEST`] (naive is UTC).

    Never raises: ``0001-01-01T00:00:00+05:00`` (before year 1 in UTC) is ``EARLIEST`` and
    ``9999-12-31T23:00:00-05:00`` is ``LATEST``.
    """
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        return EARLIEST if value.year < 5000 else LATEST
    return min(max(value, EARLIEST), LATEST)


class TimeBoundError(ValueError):
    """A query bound that is not a time (``value`` is what was given), or a range that ends
    before it starts (``value`` is None). ``name`` is the parameter at fault (``since``,
    ``until``, or whatever the caller passed)."""

    def __init__(self, name: str, message: str, value: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.value = value


def _parse(text: str, name: str, *, end: bool) -> tuple[datetime, int]:
    """(the clamped time, its exact position in microseconds since 0001-01-01 UTC): the position
    orders two bounds that clamp to the same limit."""
    value = text.strip()
    try:
        if _DATE_ONLY.match(value):
            day = datetime.combine(date.fromisoformat(value), time.min)
            exact = (day - datetime.min) // _MICRO + (86_400_000_000 if end else 0)
            if end:
                day = day + timedelta(days=1) if day.date() < date.max else LATEST
            return clamp_utc(day), exact
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        raise TimeBoundError(
            name, "expected a date (YYYY-MM-DD) or an ISO 8601 date-time", text
        ) from None
    offset = moment.utcoffset() or timedelta(0)
    exact = (moment.replace(tzinfo=None) - datetime.min) // _MICRO - offset // _MICRO
    return clamp_utc(moment), exact


def parse_time(text: str, name: str = "time", *, end: bool = False) -> datetime:
    """A time a caller gave, as an aware UTC time within the store's limits.

    A date (``YYYY-MM-DD``) is a whole day: its first instant, or with ``end`` the first instant
    after it (an exclusive bound that includes the day). An ISO 8601 date-time is that instant,
    UTC when it has no offset. Raises :class:`TimeBoundError` naming ``name``.
    """
    return _parse(text, name, end=end)[0]


def parse_time_range(
    since: str | None,
    until: str | None,
    names: tuple[str, str] = ("since", "until"),
) -> tuple[datetime | None, datetime | None]:
    """``since`` (inclusive) and ``until`` (exclusive; a date includes its whole day) as clamped
    UTC times, None where not given; :class:`TimeBoundError` when either is not a time or
    ``until`` is not after ``since`` (compared before clamping, so ``9999-01-01`` to
    ``9999-12-31`` is a valid, empty range)."""
    start = _parse(since, names[0], end=False) if since and since.strip() else None
    stop = _parse(until, names[1], end=True) if until and until.strip() else None
    if start and stop and start[1] >= stop[1]:
        raise TimeBoundError(names[1], f"'{names[1]}' must be after '{names[0]}'")
    return (start[0] if start else None), (stop[0] if stop else None)


def utc_stamp(value: datetime | None = None) -> str:
    """ISO 8601 UTC to the second, e.g. ``2026-12-07T06:30:00Z``."""
    return (value or utc_now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: datetime | None = None) -> str:
    """A run id: UTC date and time, then 6 random hex digits (``20261207-063000-1a2b3c``)."""
    return (now or utc_now()).astimezone(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
