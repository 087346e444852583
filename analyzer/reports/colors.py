"""One colour per theme, everywhere: the explorer's pages and the exported theme reports.

The colour is derived from the theme's stable id (a sub-theme takes its parent's colour), so a
theme keeps its colour across runs, pages and files. Colour is never the only carrier of meaning:
every chart that uses it also labels the theme in text.
"""

from __future__ import annotations

import hashlib

from plotly.colors import qualitative

__all__ = ["PALETTE", "UNASSIGNED_COLOR", "theme_color"]

PALETTE: list[str] = list(qualitative.Dark24) + list(qualitative.Light24)
UNASSIGNED_COLOR = "#bbbbbb"


def theme_color(theme_id: str | None) -> str:
    """The same colour for a theme on every page and in every report (from its stable id)."""
    if not theme_id:
        return UNASSIGNED_COLOR
    digest = int(hashlib.blake2b(theme_id.split(".")[0].encode(), digest_size=4).hexdigest(), 16)
    return PALETTE[digest % len(PALETTE)]
