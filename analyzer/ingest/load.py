"""Writing one file's rows into the store, inside the caller's transaction.

Rows are staged in a temporary table chunk by chunk; at the end duplicates within the file are
resolved (latest update wins) and the survivors are upserted into ``records`` in one statement.
Nothing reaches ``records`` before the whole file has been read, and the caller's transaction
makes the file all-or-nothing.
"""

from __future__ import annotations

import itertools

import duckdb
import pandas as pd

from analyzer.ingest.validate import REJECT_COLUMNS, STAGE_COLUMNS, Prepared

STAGE = "_ingest_stage"
RANKED = "_ingest_ranked"

_STAGE_DDL = f"""
CREATE TEMP TABLE {STAGE} (
    row_number BIGINT,
    id VARCHAR,
    source VARCHAR,
    text VARCHAR,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    category VARCHAR,
    status VARCHAR,
    lat DOUBLE,
    lon DOUBLE,
    area VARCHAR,
    attributes JSON,
    text_hash VARCHAR,
    raw_text VARCHAR
)
"""

# the staged columns less the row number, plus the file they came from
RECORD_FIELDS = (*STAGE_COLUMNS[1:], "file_hash")

# When an incoming row replaces the stored one: a later update time wins; a record without any
# update time (surveys, Polis) is replaced when its content changed, since there is no clock to ask.
_TS_NEW = "coalesce(excluded.updated_at, excluded.created_at)"
_TS_OLD = "coalesce(records.updated_at, records.created_at)"
_CHANGED = (
    " OR ".join(
        f"excluded.{c} IS DISTINCT FROM records.{c}"
        for c in ("text_hash", "created_at", "category", "status", "lat", "lon", "area")
    )
    + " OR excluded.attributes::VARCHAR IS DISTINCT FROM records.attributes::VARCHAR"
)
UPDATE_WHEN = (
    f"({_TS_NEW} > {_TS_OLD}) OR ({_TS_OLD} IS NULL AND {_TS_NEW} IS NOT NULL) "
    f"OR (excluded.updated_at IS NULL AND records.updated_at IS NULL "
    f"AND {_TS_NEW} IS NOT DISTINCT FROM {_TS_OLD} AND ({_CHANGED}))"
)

_counter = itertools.count()


class FileLoader:
    """Stages one file's prepared chunks and merges them into ``records`` at :meth:`finish`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, file: str, file_hash: str) -> None:
        self.con = con
        self.file = file
        self.file_hash = file_hash
        self.con.execute(f"DROP TABLE IF EXISTS {STAGE}")
        self.con.execute(f"DROP TABLE IF EXISTS {RANKED}")
        self.con.execute(_STAGE_DDL)
        # a file read again (--force, or with another profile) replaces its earlier rejects
        self.con.execute("DELETE FROM rejects WHERE file_hash = ?", [file_hash])

    def _insert(
        self,
        columns: tuple[str, ...],
        frame: pd.DataFrame,
        sql: str,
        params: list[str] | None = None,
    ) -> None:
        name = f"_ingest_df_{next(_counter)}"
        self.con.register(name, frame.loc[:, list(columns)])
        try:
            self.con.execute(sql.format(df=name), params or [])
        finally:
            self.con.unregister(name)

    def add(self, prepared: Prepared) -> None:
        if len(prepared.records):
            cols = ", ".join(STAGE_COLUMNS)
            self._insert(
                STAGE_COLUMNS,
                prepared.records,
                f"INSERT INTO {STAGE} ({cols}) SELECT {cols} FROM {{df}}",
            )
        if len(prepared.rejects):
            self._insert(
                REJECT_COLUMNS,
                prepared.rejects,
                "INSERT INTO rejects (file, file_hash, row_number, column_name, reason, content) "
                "SELECT ?, ?, row_number, column_name, reason, content FROM {df}",
                [self.file, self.file_hash],
            )

    def finish(self, id_column: str | None) -> dict[str, int]:
        """Resolve duplicate ids, upsert, and return inserted / updated / unchanged / duplicates."""
        con = self.con
        con.execute(
            f"""CREATE TEMP TABLE {RANKED} AS
            SELECT *, row_number() OVER (
                PARTITION BY id
                ORDER BY coalesce(updated_at, created_at) DESC NULLS LAST, row_number DESC
            ) AS _rank
            FROM {STAGE}"""
        )
        con.execute(f"DROP TABLE {STAGE}")
        duplicates = con.execute(f"SELECT count(*) FROM {RANKED} WHERE _rank > 1").fetchone()[0]
        if duplicates:
            con.execute(
                f"""INSERT INTO rejects (file, file_hash, row_number, column_name, reason, content)
                SELECT ?, ?, row_number, ?, 'duplicate id',
                    json_object('id', id, 'text', text, 'created_at', created_at::VARCHAR,
                                'updated_at', updated_at::VARCHAR, 'category', category,
                                'status', status, 'area', area, 'attributes', attributes)::VARCHAR
                FROM {RANKED} WHERE _rank > 1""",
                [self.file, self.file_hash, id_column or "id"],
            )
        update_when = UPDATE_WHEN.replace("excluded.", "s.").replace("records.", "r.")
        inserted, updated, unchanged = con.execute(
            f"""SELECT
                count(*) FILTER (WHERE r.id IS NULL),
                count(*) FILTER (WHERE r.id IS NOT NULL AND ({update_when})),
                count(*) FILTER (WHERE r.id IS NOT NULL AND NOT ({update_when}))
            FROM {RANKED} s LEFT JOIN records r USING (id)
            WHERE s._rank = 1"""
        ).fetchone()
        fields = ", ".join(RECORD_FIELDS)
        select = ", ".join(f"'{self.file_hash}'" if f == "file_hash" else f for f in RECORD_FIELDS)
        sets = ", ".join(f"{f} = excluded.{f}" for f in RECORD_FIELDS if f != "id")
        con.execute(
            f"""INSERT INTO records ({fields})
            SELECT {select} FROM {RANKED} WHERE _rank = 1
            ON CONFLICT (id) DO UPDATE SET {sets}, ingested_at = now()
            WHERE {UPDATE_WHEN}"""
        )
        con.execute(f"DROP TABLE {RANKED}")
        return {
            "inserted": int(inserted),
            "updated": int(updated),
            "unchanged": int(unchanged),
            "duplicates": int(duplicates),
        }
