"""The read layer over the store, shared by the API and the explorer (no web framework here).

Everything a user reads goes through these functions, so the rules that protect residents and keep
numbers consistent live in one place:

- only the redacted ``records.text`` is ever returned; ``raw_text`` is never selected;
- theme overrides (renames and merges made in the explorer) are applied on every read, so a merged
  theme's records count toward the theme it was merged into and a renamed theme shows its new label;
- filters (source, time window, area, category) mean the same thing for every query: ``since`` is
  inclusive, ``until`` exclusive, both compared with ``records.created_at`` (UTC).

Write helpers ``rename_theme`` and ``merge_themes`` persist to ``theme_overrides``, which the
analysis never rewrites, so the explorer's edits survive the next run (theme ids are stable).
"""

from __future__ import annotations

from analyzer.queries.common import Filters, Page, ThemeNotFoundError
from analyzer.queries.emerging import explain_emerging, latest_emerging_run, list_emerging
from analyzer.queries.map import DEFAULT_BINS as DEFAULT_MAP_BINS
from analyzer.queries.map import DEFAULT_POINTS as DEFAULT_MAP_POINTS
from analyzer.queries.map import MAX_BINS as MAX_MAP_BINS
from analyzer.queries.map import MAX_POINTS as MAX_MAP_POINTS
from analyzer.queries.map import map_view
from analyzer.queries.overview import list_runs, projection, run_status, stats
from analyzer.queries.records import TextEmbedder, get_record, search_records
from analyzer.queries.themes import (
    list_themes,
    merge_themes,
    rename_theme,
    theme_detail,
    theme_record_chunks,
    theme_sentiment_split,
    unmerge_theme,
)

__all__ = [
    "DEFAULT_MAP_BINS",
    "DEFAULT_MAP_POINTS",
    "MAX_MAP_BINS",
    "MAX_MAP_POINTS",
    "Filters",
    "Page",
    "TextEmbedder",
    "ThemeNotFoundError",
    "explain_emerging",
    "get_record",
    "latest_emerging_run",
    "list_emerging",
    "list_runs",
    "list_themes",
    "map_view",
    "merge_themes",
    "projection",
    "rename_theme",
    "run_status",
    "search_records",
    "stats",
    "theme_detail",
    "theme_record_chunks",
    "theme_sentiment_split",
    "unmerge_theme",
]
