"""Theme ids: letters + number (``REQ0007``; sub-theme ``REQ0007.03``), stable across runs.

The letters say what the records are (their kind: ``REQ`` for 311 requests, ``SRV`` for survey
answers, ``ENG`` for engagement comments), not what their source is called: ``--source nyc311``
requests get ``REQ`` ids like Boston's. Themes are still fitted per source, so two sources of
one kind share the letters and draw their numbers from one sequence (never the same id twice).
"""

from __future__ import annotations

KIND_PREFIXES = {"311": "REQ", "survey": "SRV", "engagement": "ENG"}

# Before records had a kind (schema 2), the source's name chose the letters: the three kinds'
# names as above, any other name its first letters + "X" ("nyc311" -> "NYCX"). Kept to read the
# ids those versions issued.
SOURCE_PREFIXES = KIND_PREFIXES


def source_prefix(source: str) -> str:
    """The letters schema 2 gave a source's themes (see ``SOURCE_PREFIXES``)."""
    if source in SOURCE_PREFIXES:
        return SOURCE_PREFIXES[source]
    letters = "".join(ch for ch in source.upper() if "A" <= ch <= "Z")
    return (letters[:3] or "SRC") + "X"


def kind_prefix(kind: str | None, source: str = "") -> str:
    """The letters of a theme fitted on records of ``kind`` (a store without kinds: the
    source's letters, as before)."""
    if kind in KIND_PREFIXES:
        return KIND_PREFIXES[kind]
    return source_prefix(source)


def theme_id(number: int, prefix: str = "T") -> str:
    return f"{prefix}{number:04d}"


def subtheme_id(parent: str, number: int) -> str:
    return f"{parent}.{number:02d}"
