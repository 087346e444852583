"""Profiles: how one kind of export maps onto the canonical record. Auto-detected from the header,
or named with ``--profile``."""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.errors import InputError
from analyzer.ingest.profiles.base import ColumnMap, Context, Profile, column_key, find_column
from analyzer.ingest.profiles.boston import BOSTON
from analyzer.ingest.profiles.fixmystreet import FIXMYSTREET
from analyzer.ingest.profiles.open311 import OPEN311
from analyzer.ingest.profiles.plain import PLAIN_CSV
from analyzer.ingest.profiles.polis import POLIS
from analyzer.ingest.profiles.seeclickfix import SEECLICKFIX
from analyzer.ingest.profiles.socrata import SOCRATA_311
from analyzer.ingest.profiles.survey import SURVEY

__all__ = [
    "PROFILES",
    "ColumnMap",
    "Context",
    "Profile",
    "column_key",
    "detect_profile",
    "find_column",
    "get_profile",
    "other_matching_profile",
]

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (OPEN311, BOSTON, SOCRATA_311, SEECLICKFIX, FIXMYSTREET, POLIS, SURVEY, PLAIN_CSV)
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InputError(f"unknown profile {name!r}; known profiles: {known}") from None


def detect_profile(columns: Sequence[str]) -> str:
    """The name of the profile whose signature the header matches best.

    Raises :class:`InputError` listing the columns found when none matches; a plain table then
    needs ``--profile csv --text-col C`` (or just ``--text-col C``).
    """
    cols = [str(c) for c in columns]
    for prof in sorted(PROFILES.values(), key=lambda p: -p.priority):
        if prof.matches(cols):
            return prof.name
    found = ", ".join(cols) or "(none)"
    raise InputError(
        f"cannot tell the profile from the header; columns found: {found}; "
        "name the text column with --text-col (or the format with --profile)"
    )


def other_matching_profile(columns: Sequence[str], chosen: str) -> str | None:
    """The profile the header matches when it is not ``chosen`` (a ``--profile`` that does not
    fit the file: the summary says so)."""
    try:
        detected = detect_profile(columns)
    except InputError:
        return None
    if detected == chosen or PROFILES[chosen].matches([str(c) for c in columns]):
        return None
    return detected
