"""The store: one DuckDB file (``analyzer.store.database``), every write of an analysis run
(``analyzer.store.writers``), who owns a run (``analyzer.store.runs``: runs whose process died
are marked failed when the store is next opened for writing) and read replicas
(``analyzer.store.replica``: the snapshot and key file a serving primary publishes, which
``serve --replica-of`` reads)."""

from __future__ import annotations

from analyzer.store.database import SCHEMA, SCHEMA_VERSION, Store, drain, migrate
from analyzer.store.runs import STALE_AFTER, fail_orphaned_runs
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
    "STALE_AFTER",
    "THEME_COLUMNS",
    "Store",
    "drain",
    "fail_orphaned_runs",
    "migrate",
    "write_alerts",
    "write_sentiment",
    "write_themes",
]
