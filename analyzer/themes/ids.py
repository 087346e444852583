"""Theme ids: letters + number (``REQ0007``; sub-theme ``REQ0007.03``), stable across runs."""

from __future__ import annotations

# Theme ids are letters + number ("REQ0007", sub-theme "REQ0007.03"): one letter prefix per source.
SOURCE_PREFIXES = {"311": "REQ", "survey": "SRV", "engagement": "ENG"}


def source_prefix(source: str) -> str:
    if source in SOURCE_PREFIXES:
        return SOURCE_PREFIXES[source]
    letters = "".join(ch for ch in source.upper() if "A" <= ch <= "Z")
    return (letters[:3] or "SRC") + "X"


def theme_id(number: int, prefix: str = "T") -> str:
    return f"{prefix}{number:04d}"


def subtheme_id(parent: str, number: int) -> str:
    return f"{parent}.{number:02d}"
