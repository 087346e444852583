"""Issue #22, finding 1: the one rule for the times a caller gives as query bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from analyzer.common.clock import (
    EARLIEST,
    LATEST,
    TimeBoundError,
    clamp_utc,
    parse_time,
    parse_time_range,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), EARLIEST),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), LATEST),
        (datetime(9999, 12, 31, 23, 59, 59), LATEST),
        (datetime(2020, 4, 1, 12), datetime(2020, 4, 1, 12, tzinfo=UTC)),
        (
            datetime(2020, 4, 1, 12, tzinfo=timezone(timedelta(hours=-4))),
            datetime(2020, 4, 1, 16, tzinfo=UTC),
        ),
    ],
)
def test_clamp_utc(value: datetime, expected: datetime) -> None:
    assert clamp_utc(value) == expected


@pytest.mark.parametrize(
    "text, end, expected",
    [
        ("2020-04-01", False, datetime(2020, 4, 1, tzinfo=UTC)),
        ("2020-04-01", True, datetime(2020, 4, 2, tzinfo=UTC)),  # a date includes its day
        ("2020-04-01T10:00:00+02:00", True, datetime(2020, 4, 1, 8, tzinfo=UTC)),
        ("2020-04-01t10:00:00z", False, datetime(2020, 4, 1, 10, tzinfo=UTC)),
        ("9999-12-31", True, LATEST),
        ("0001-01-01", True, EARLIEST),
        ("0001-01-01T00:00:00+05:00", False, EARLIEST),
        (" 2020-04-01 ", False, datetime(2020, 4, 1, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, end: bool, expected: datetime) -> None:
    assert parse_time(text, end=end) == expected


def test_parse_time_range_orders_before_clamping() -> None:
    assert parse_time_range("9999-01-01", "9999-12-31") == (LATEST, LATEST)
    assert parse_time_range(None, "  ") == (None, None)
    with pytest.raises(TimeBoundError) as exc:
        parse_time_range("9999-12-31", "9999-01-01")
    assert exc.value.name == "until" and exc.value.value is None
    with pytest.raises(TimeBoundError) as exc:
        parse_time_range("2020-01-01", "2020-01-01T00:00:00Z")  # empty: until is exclusive
    with pytest.raises(TimeBoundError) as exc:
        parse_time_range("last tuesday", None, names=("--since", "--until"))
    assert exc.value.name == "--since" and exc.value.value == "last tuesday"


def test_the_limits_hold_every_stored_time() -> None:
    # ingest keeps times from 1900-01-01 to a year ahead; pandas holds 1677 to 2262.
    assert EARLIEST.date() == date(1900, 1, 1)
    assert datetime.now(UTC) + timedelta(days=366) < LATEST < datetime(2262, 1, 1, tzinfo=UTC)
