"""Themes: two-level clustering of text embeddings (``model``), readable labels (``labels``), ids
that persist across runs (``ids``, ``lineage``) and the one example selector (``examples``).

The light modules are imported here; the fitting and labelling ones (scikit-learn, SciPy) load on
first use of one of their names, so ``analyzer.themes.ids`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analyzer.themes.examples import representative_rows, representative_texts
from analyzer.themes.ids import (
    KIND_PREFIXES,
    SOURCE_PREFIXES,
    kind_prefix,
    source_prefix,
    subtheme_id,
    theme_id,
)

if TYPE_CHECKING:
    from analyzer.themes.labels import ThemeLabel, describe_classes, extract_terms, make_unique
    from analyzer.themes.lineage import match_themes, members_by_theme, next_free_ids
    from analyzer.themes.model import (
        MIN_CENTROID_COSINE,
        LineageEvent,
        Theme,
        ThemeModel,
        cluster_texts,
        ward_groups,
    )

_LAZY = {
    "MIN_CENTROID_COSINE": "analyzer.themes.model",
    "LineageEvent": "analyzer.themes.model",
    "Theme": "analyzer.themes.model",
    "ThemeModel": "analyzer.themes.model",
    "cluster_texts": "analyzer.themes.model",
    "ward_groups": "analyzer.themes.model",
    "match_themes": "analyzer.themes.lineage",
    "members_by_theme": "analyzer.themes.lineage",
    "next_free_ids": "analyzer.themes.lineage",
    "ThemeLabel": "analyzer.themes.labels",
    "describe_classes": "analyzer.themes.labels",
    "extract_terms": "analyzer.themes.labels",
    "make_unique": "analyzer.themes.labels",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'analyzer.themes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "KIND_PREFIXES",
    "MIN_CENTROID_COSINE",
    "SOURCE_PREFIXES",
    "LineageEvent",
    "Theme",
    "ThemeLabel",
    "ThemeModel",
    "cluster_texts",
    "describe_classes",
    "extract_terms",
    "kind_prefix",
    "make_unique",
    "match_themes",
    "members_by_theme",
    "next_free_ids",
    "representative_rows",
    "representative_texts",
    "source_prefix",
    "subtheme_id",
    "theme_id",
    "ward_groups",
]
