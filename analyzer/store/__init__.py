"""The store: one DuckDB file (``analyzer.store.database``) and every write of an analysis run
(``analyzer.store.writers``)."""

from __future__ import annotations

from analyzer.store.database import SCHEMA, SCHEMA_VERSION, Store, drain, migrate
from analyzer.store.writers import (
    LINEAGE_COLUMNS,
    THEME_COLUMNS,
    write_alerts,
    write_sentiment,
    write_themes,
)

__all__ = [
    "LINEAGE_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "THEME_COLUMNS",
    "Store",
    "drain",
    "migrate",
    "write_alerts",
    "write_sentiment",
    "write_themes",
]
