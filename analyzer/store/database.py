"""The store: one DuckDB file, one writer process.

Every step of the data flow owns its tables (see DESIGN.md). Writes that must be atomic go through
``Store.transaction()``: a crash inside it leaves the store as it was before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analyzer.common.vectors import decode_vectors, encode_vector
from analyzer.errors import InputError
from analyzer.store.runs import RUN_OWNERS_SCHEMA, fail_orphaned_runs, record_owner, touch_run

log = logging.getLogger("civicpulse.store")

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- canonical records; text is already redacted; raw_text only with --keep-raw and never served
CREATE TABLE IF NOT EXISTS records (
    id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    category VARCHAR,
    status VARCHAR,
    lat DOUBLE,
    lon DOUBLE,
    area VARCHAR,
    attributes JSON,
    text_hash VARCHAR NOT NULL,
    raw_text VARCHAR,
    file_hash VARCHAR,
    ingested_at TIMESTAMPTZ DEFAULT current_timestamp,
    kind VARCHAR,  -- what the record is: 311, survey, engagement (source says where it is from)
    boilerplate BOOLEAN DEFAULT false  -- a placeholder or repeated text: kept, never analysed
);

CREATE TABLE IF NOT EXISTS rejects (
    file VARCHAR,
    file_hash VARCHAR,
    row_number BIGINT,
    column_name VARCHAR,
    reason VARCHAR,
    content VARCHAR,
    rejected_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS files (
    file_hash VARCHAR PRIMARY KEY,
    path VARCHAR,
    profile VARCHAR,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    ingested_at TIMESTAMPTZ DEFAULT current_timestamp
);

-- embedding cache keyed by model id and text hash; float16 to keep it compact
CREATE TABLE IF NOT EXISTS embeddings (
    model_id VARCHAR,
    text_hash VARCHAR,
    vector BLOB,
    PRIMARY KEY (model_id, text_hash)
);

CREATE TABLE IF NOT EXISTS sentiment (
    record_id VARCHAR PRIMARY KEY,
    model_id VARCHAR,
    label VARCHAR,
    score DOUBLE
);

CREATE TABLE IF NOT EXISTS themes (
    theme_id VARCHAR PRIMARY KEY,
    parent_id VARCHAR,
    level INTEGER,
    label VARCHAR,
    keywords JSON,
    size BIGINT,
    examples JSON,
    breakdown JSON,
    sentiment DOUBLE,
    centroid BLOB,
    status VARCHAR,
    run_id VARCHAR,
    first_seen_run VARCHAR,
    source VARCHAR  -- the records' source the theme was fitted on (themes are per source)
);

CREATE TABLE IF NOT EXISTS assignments (
    record_id VARCHAR PRIMARY KEY,
    theme_id VARCHAR,
    subtheme_id VARCHAR,
    x REAL,
    y REAL,
    run_id VARCHAR
);

CREATE TABLE IF NOT EXISTS theme_lineage (
    run_id VARCHAR,
    theme_id VARCHAR,
    event VARCHAR,
    related JSON,
    source VARCHAR
);

CREATE TABLE IF NOT EXISTS theme_overrides (
    theme_id VARCHAR PRIMARY KEY,
    label VARCHAR,
    merged_into VARCHAR,
    updated_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS emerging (
    run_id VARCHAR,
    theme_id VARCHAR,
    theme_label VARCHAR,
    kind VARCHAR,
    period VARCHAR,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    area VARCHAR,
    count BIGINT,
    baseline DOUBLE,
    ratio DOUBLE,
    p_value DOUBLE,
    q_value DOUBLE,
    examples JSON
);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    kind VARCHAR,
    status VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    progress DOUBLE,
    message VARCHAR,
    manifest JSON
);

CREATE TABLE IF NOT EXISTS corrections (
    id VARCHAR,
    text VARCHAR,
    label VARCHAR,
    record_id VARCHAR,
    created_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    key_hash VARCHAR,
    created_at TIMESTAMPTZ DEFAULT current_timestamp,
    revoked BOOLEAN DEFAULT false,
    scope VARCHAR DEFAULT 'write',
    last_used_at TIMESTAMPTZ
);

-- opinions (analyzer.ingest.votes, analyzer.opinions): a conversation's statements are the records
-- whose id is statement_prefix || statement_id; votes hold ids only (1 agree, -1 disagree, 0 pass)
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id VARCHAR PRIMARY KEY,
    title VARCHAR,
    description VARCHAR,
    url VARCHAR,
    statement_prefix VARCHAR,
    file_hash VARCHAR,
    updated_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS votes (
    conversation_id VARCHAR,
    participant_id VARCHAR,
    statement_id VARCHAR,
    vote TINYINT,
    voted_at TIMESTAMPTZ,
    file_hash VARCHAR,
    PRIMARY KEY (conversation_id, participant_id, statement_id)
);

-- the export's own opinion group per participant (Polis group-id), for --use-source-groups
CREATE TABLE IF NOT EXISTS conversation_participants (
    conversation_id VARCHAR,
    participant_id VARCHAR,
    source_group INTEGER,
    PRIMARY KEY (conversation_id, participant_id)
);

-- the latest opinion analysis per conversation and settings (its manifest is in runs)
CREATE TABLE IF NOT EXISTS opinions (
    conversation_id VARCHAR,
    settings_key VARCHAR,
    input_hash VARCHAR,
    run_id VARCHAR,
    result JSON,
    created_at TIMESTAMPTZ DEFAULT current_timestamp,
    PRIMARY KEY (conversation_id, settings_key)
);
"""


def drain(result: Any) -> None:
    """Consume a statement's result: DuckDB 2 refuses new work on a connection with one pending."""
    with contextlib.suppress(duckdb.InvalidInputException, duckdb.ResourceInUseException):
        result.fetchall()


# -- migrations ----------------------------------------------------------------------------
# Version 2: ``themes.source`` and ``theme_lineage.source`` (themes are fitted per source; earlier
# versions told a theme's source from its id, a rule that had drifted from the ids issued).


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Column names of one table of this store."""
    rows = con.execute("SELECT name FROM pragma_table_info(?)", [table]).fetchall()
    return {str(r[0]) for r in rows}


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a store written by an earlier version up to ``SCHEMA_VERSION``, all or nothing.

    Runs when a store is opened for writing; a no-op on a store that is already current.
    """
    _migrate_record_kinds(con)
    _migrate_api_keys(con)
    missing = [t for t in ("themes", "theme_lineage") if "source" not in table_columns(con, t)]
    if not missing:
        return
    drain(con.execute("BEGIN TRANSACTION"))
    try:
        for table in missing:
            drain(con.execute(f"ALTER TABLE {table} ADD COLUMN source VARCHAR"))
        _backfill_theme_sources(con)
        # lineage rows take their theme's source
        drain(
            con.execute(
                "UPDATE theme_lineage SET source = t.source FROM themes t "
                "WHERE t.theme_id = theme_lineage.theme_id AND theme_lineage.source IS NULL"
            )
        )
        _retire_dropped_themes(con)
    except BaseException:
        drain(con.execute("ROLLBACK"))
        raise
    drain(con.execute("COMMIT"))


# Version 3: ``records.kind`` (what a record is, apart from its source's name) and
# ``records.boilerplate``. Earlier versions went by the source: "311", "survey" and "engagement"
# were those kinds; any other name came from a 311 profile (a renamed source such as "nyc311",
# hence a 311 request) or was read as a comment, which the explorer showed with the surveys.
_V2_REQUEST_PROFILES = ("open311", "boston", "socrata-311")


def _migrate_record_kinds(con: duckdb.DuckDBPyConnection) -> None:
    columns = table_columns(con, "records")
    if {"kind", "boilerplate"} <= columns:
        return
    drain(con.execute("BEGIN TRANSACTION"))
    try:
        if "kind" not in columns:
            drain(con.execute("ALTER TABLE records ADD COLUMN kind VARCHAR"))
            profile = "split_part(f.profile, ' ', 1)"
            drain(
                con.execute(
                    "UPDATE records SET kind = CASE "
                    "WHEN records.source IN ('311', 'survey', 'engagement') THEN records.source "
                    f"WHEN {profile} IN (SELECT unnest(?::VARCHAR[])) THEN '311' "
                    "ELSE 'survey' END "
                    "FROM (SELECT r.id, fl.profile FROM records r "
                    "LEFT JOIN files fl ON fl.file_hash = r.file_hash) f WHERE f.id = records.id",
                    [list(_V2_REQUEST_PROFILES)],
                )
            )
        if "boilerplate" not in columns:
            drain(con.execute("ALTER TABLE records ADD COLUMN boilerplate BOOLEAN DEFAULT false"))
    except BaseException:
        drain(con.execute("ROLLBACK"))
        raise
    drain(con.execute("COMMIT"))


# Version 4 (#22): a key's scope (read, write or admin; keys made before could write, so they
# keep "write") and when it was last used.
def _migrate_api_keys(con: duckdb.DuckDBPyConnection) -> None:
    columns = table_columns(con, "api_keys")
    if {"scope", "last_used_at"} <= columns:
        return
    drain(con.execute("BEGIN TRANSACTION"))
    try:
        if "scope" not in columns:
            drain(con.execute("ALTER TABLE api_keys ADD COLUMN scope VARCHAR DEFAULT 'write'"))
            drain(con.execute("UPDATE api_keys SET scope = 'write' WHERE scope IS NULL"))
        if "last_used_at" not in columns:
            drain(con.execute("ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ"))
    except BaseException:
        drain(con.execute("ROLLBACK"))
        raise
    drain(con.execute("COMMIT"))


def _backfill_theme_sources(con: duckdb.DuckDBPyConnection) -> None:
    """A theme's source is the source of the records assigned to it; a theme without members
    (retired, or emptied) falls back, here only, to the source its id prefix was issued for."""
    drain(
        con.execute(
            "UPDATE themes SET source = m.source FROM ("
            "SELECT tid, min(source) AS source FROM ("
            "SELECT a.theme_id AS tid, r.source FROM assignments a "
            "JOIN records r ON r.id = a.record_id WHERE a.theme_id IS NOT NULL UNION ALL "
            "SELECT a.subtheme_id AS tid, r.source FROM assignments a "
            "JOIN records r ON r.id = a.record_id WHERE a.subtheme_id IS NOT NULL"
            ") GROUP BY tid) m WHERE themes.theme_id = m.tid AND themes.source IS NULL"
        )
    )
    orphans = [
        str(r[0])
        for r in con.execute("SELECT theme_id FROM themes WHERE source IS NULL").fetchall()
    ]
    if not orphans:
        return
    from analyzer.themes.ids import SOURCE_PREFIXES, source_prefix

    stored = {str(r[0]) for r in con.execute("SELECT DISTINCT source FROM records").fetchall()}
    by_prefix: dict[str, set[str]] = {}
    for source in stored | set(SOURCE_PREFIXES):
        by_prefix.setdefault(source_prefix(source), set()).add(source)
    found = []
    for tid in orphans:
        m = re.match(r"([A-Za-z]+)\d", tid)
        candidates = by_prefix.get(m.group(1), set()) if m else set()
        if len(candidates) > 1:
            candidates &= stored
        if len(candidates) == 1:
            found.append((tid, next(iter(candidates))))
    if found:
        frame = pd.DataFrame(found, columns=["theme_id", "source"])
        con.register("_theme_sources", frame)
        try:
            drain(
                con.execute(
                    "UPDATE themes SET source = f.source FROM _theme_sources f "
                    "WHERE themes.theme_id = f.theme_id"
                )
            )
        finally:
            con.unregister("_theme_sources")


def _retire_dropped_themes(con: duckdb.DuckDBPyConnection) -> None:
    """Themes whose latest lineage event is "retired" were dropped by their last re-fit, though
    earlier versions left them active: mark them retired, as a re-fit now does."""
    drain(
        con.execute(
            "UPDATE themes SET status = 'retired' WHERE coalesce(status, 'active') <> 'retired' "
            "AND theme_id IN (SELECT theme_id FROM ("
            "SELECT l.theme_id, l.event, row_number() OVER (PARTITION BY l.theme_id "
            "ORDER BY r.started_at DESC NULLS LAST, l.run_id DESC) AS latest "
            "FROM theme_lineage l LEFT JOIN runs r USING (run_id)"
            ") WHERE latest = 1 AND event = 'retired')"
        )
    )


class StoreLockedError(InputError):
    """Another process holds the store (DuckDB allows one writer, and no reader beside it)."""

    def __init__(self, path: Path, detail: str) -> None:
        m = re.search(r"PID (\d+)", detail)
        pid = int(m.group(1)) if m else None
        holder = f"process {pid}" if pid else "another process"
        command = _command_line(pid) if pid else ""
        if command:
            holder += f" ({command})"
        super().__init__(
            f"the store is in use by {holder}; stop it (or, while `civicpulse serve` runs, send "
            "data through its API: POST /v1/records), or use another store with --store",
            file=str(path),
        )
        self.pid = pid


def _command_line(pid: int) -> str:
    """What process ``pid`` runs, from /proc (Linux); "" where that cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    parts = [
        Path(a).name if i == 0 else a
        for i, a in enumerate(raw.decode(errors="replace").split("\0"))
        if a
    ]
    return " ".join(parts)[:120]


class Store:
    """A DuckDB-backed store. Open one per process; use ``with Store(path) as s``."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StoreLockedError(self.path, str(exc)) from None
        drain(self.con.execute("SET TimeZone = 'UTC'"))
        self._lock = threading.RLock()
        # runs whose process died since the store was last opened for writing (marked failed)
        self.interrupted_runs: list[str] = []
        if not read_only:
            drain(self.con.execute(SCHEMA))
            drain(self.con.execute(RUN_OWNERS_SCHEMA))
            migrate(self.con)
            drain(
                self.con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )
            )
            self.interrupted_runs = fail_orphaned_runs(self.con)
            if self.interrupted_runs:
                log.warning(
                    "runs interrupted",
                    extra={"event": "runs", "interrupted": self.interrupted_runs},
                )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: commit on success, roll back on any exception (or a killed process)."""
        with self._lock:
            drain(self.con.execute("BEGIN TRANSACTION"))
            try:
                yield self.con
            except BaseException:
                drain(self.con.execute("ROLLBACK"))
                raise
            else:
                drain(self.con.execute("COMMIT"))

    # -- generic helpers -------------------------------------------------------------------
    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            return self.con.execute(sql, params or []).df()

    def query_with(
        self, sql: str, frames: dict[str, pd.DataFrame], params: list[Any] | None = None
    ) -> pd.DataFrame:
        """``query_df`` with in-memory frames visible to the query under the given names."""
        with self._lock:
            for name, frame in frames.items():
                self.con.register(name, frame)
            try:
                return self.con.execute(sql, params or []).df()
            finally:
                for name in frames:
                    self.con.unregister(name)

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with self._lock:
            drain(self.con.execute(sql, params or []))

    def columns(self, table: str) -> set[str]:
        """Column names of one table (empty when there is no such table), under the lock: the
        API's threads share this connection."""
        with self._lock:
            return table_columns(self.con, table)

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        with self._lock:
            rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    # -- embeddings cache ------------------------------------------------------------------
    def cached_embeddings(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Vectors already in the cache for these text hashes (float32)."""
        found, mat = self.cached_embedding_matrix(model_id, hashes)
        return dict(zip(found, mat, strict=True))

    def cached_embedding_matrix(
        self, model_id: str, hashes: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(hashes found, their float32 vectors as one matrix): no per-vector Python objects."""
        if len(hashes) == 0:
            return np.array([], dtype=object), np.zeros((0, 0), dtype=np.float32)
        wanted = pd.DataFrame({"text_hash": pd.unique(np.asarray(hashes, dtype=object))})
        df = self.query_with(
            "SELECT e.text_hash, e.vector FROM embeddings e JOIN _wanted w "
            "USING (text_hash) WHERE e.model_id = ?",
            {"_wanted": wanted},
            [model_id],
        )
        if df.empty:
            return np.array([], dtype=object), np.zeros((0, 0), dtype=np.float32)
        return np.asarray(df["text_hash"], dtype=object), decode_vectors(df["vector"])

    def put_embeddings(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> None:
        if not hashes:
            return
        df = pd.DataFrame(
            {
                "model_id": model_id,
                "text_hash": hashes,
                "vector": [encode_vector(v) for v in vectors],
            }
        )
        with self._lock:
            self.con.register("_new_emb", df)
            try:
                drain(
                    self.con.execute(
                        "INSERT OR IGNORE INTO embeddings SELECT model_id, text_hash, vector FROM _new_emb"
                    )
                )
            finally:
                self.con.unregister("_new_emb")

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, run_id: str, kind: str, manifest: dict[str, Any]) -> None:
        """A new run, ``running``, owned by this process (``analyzer.store.runs``)."""
        with self.transaction() as con:
            drain(
                con.execute(
                    "INSERT INTO runs VALUES (?, ?, 'running', current_timestamp, NULL, 0, '', ?)",
                    [run_id, kind, json.dumps(manifest, default=str)],
                )
            )
            record_owner(con, run_id)

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        sets, params = [], []
        if status is not None:
            sets.append("status = ?")
            params.append(status)
            if status in {"done", "failed"}:
                sets.append("finished_at = current_timestamp")
        if progress is not None:
            sets.append("progress = ?")
            params.append(progress)
        if message is not None:
            sets.append("message = ?")
            params.append(message)
        if manifest is not None:
            sets.append("manifest = ?")
            params.append(json.dumps(manifest, default=str))
        if sets:
            with self._lock:
                drain(
                    self.con.execute(
                        f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*params, run_id]
                    )
                )
                touch_run(self.con, run_id)
