"""Writing one file's rows into the store, inside the caller's transaction.

Rows are staged in a temporary table chunk by chunk; at the end duplicates within the file are
resolved (the latest update wins; without update times the first row wins and the repeated rows
are rejected), texts repeated across the file are flagged as boilerplate, and the survivors are
upserted into ``records`` in one statement. A file read again (``--force``, other flags) is the
authority on its own rows: they take the new reading, and records of the earlier reading that it
no longer holds (other ids) are removed with what was derived from them. Nothing reaches
``records`` before the whole file has been read, and the caller's transaction makes the file
all-or-nothing.
"""

from __future__ import annotations

import itertools

import duckdb
import pandas as pd

from analyzer.ingest.boilerplate import REPEATED_MIN_ROWS, normalise, repeated_threshold
from analyzer.ingest.forget import delete_records
from analyzer.ingest.validate import REJECT_COLUMNS, STAGE_COLUMNS, Prepared

STAGE = "_ingest_stage"
RANKED = "_ingest_ranked"
CHANGED = "_ingest_changed"

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
    raw_text VARCHAR,
    kind VARCHAR,
    boilerplate BOOLEAN
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
        for c in (
            "text_hash",
            "created_at",
            "updated_at",
            "category",
            "status",
            "lat",
            "lon",
            "area",
            "source",
            "kind",
            "boilerplate",
        )
    )
    + " OR excluded.attributes::VARCHAR IS DISTINCT FROM records.attributes::VARCHAR"
)
UPDATE_WHEN = (
    f"({_TS_NEW} > {_TS_OLD}) OR ({_TS_OLD} IS NULL AND {_TS_NEW} IS NOT NULL) "
    f"OR (excluded.updated_at IS NULL AND records.updated_at IS NULL "
    f"AND {_TS_NEW} IS NOT DISTINCT FROM {_TS_OLD} AND ({_CHANGED})) "
    # the same file read again (other flags): its rows take the new reading
    f"OR (records.file_hash = excluded.file_hash AND ({_CHANGED}))"
)

_counter = itertools.count()


class FileLoader:
    """Stages one file's prepared chunks and merges them into ``records`` at :meth:`finish`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, file: str, file_hash: str) -> None:
        self.con = con
        self.file = file
        self.file_hash = file_hash
        self.boilerplate: list[tuple[str, int]] = []  # flagged texts with their counts
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

    def finish(self, id_column: str | None, *, flag_repeated: bool = False) -> dict[str, int]:
        """Resolve duplicate ids, flag repeated texts (``flag_repeated``), upsert, remove what an
        earlier reading of this file left; returns inserted / updated / unchanged / duplicates /
        removed / boilerplate counts."""
        con = self.con
        # the latest update wins; rows without update times keep the first, so a repeated id is
        # rejected at the row that repeats it
        con.execute(
            f"""CREATE TEMP TABLE {RANKED} AS
            SELECT *, row_number() OVER (
                PARTITION BY id ORDER BY updated_at DESC NULLS LAST, row_number
            ) AS _rank
            FROM {STAGE}"""
        )
        con.execute(f"DROP TABLE {STAGE}")
        duplicates = con.execute(f"SELECT count(*) FROM {RANKED} WHERE _rank > 1").fetchone()[0]
        if duplicates:
            con.execute(
                f"""INSERT INTO rejects (file, file_hash, row_number, column_name, reason, content)
                SELECT s.file, s.file_hash, s.row_number, s.column_name, 'duplicate id',
                    json_object('id', s.id, 'first_row', k.row_number, 'text', s.text,
                                'created_at', s.created_at::VARCHAR,
                                'updated_at', s.updated_at::VARCHAR, 'category', s.category,
                                'status', s.status, 'area', s.area,
                                'attributes', s.attributes)::VARCHAR
                FROM (SELECT *, ? AS file, ? AS file_hash, ? AS column_name FROM {RANKED}
                      WHERE _rank > 1) s
                JOIN {RANKED} k ON k.id = s.id AND k._rank = 1""",
                [self.file, self.file_hash, id_column or "id"],
            )
        if flag_repeated:
            self._flag_repeated()
        update_when = UPDATE_WHEN.replace("excluded.", "s.").replace("records.", "r.")
        update_when = update_when.replace("s.file_hash", f"'{self.file_hash}'")
        inserted, updated, unchanged = con.execute(
            f"""SELECT
                count(*) FILTER (WHERE r.id IS NULL),
                count(*) FILTER (WHERE r.id IS NOT NULL AND ({update_when})),
                count(*) FILTER (WHERE r.id IS NOT NULL AND NOT ({update_when}))
            FROM {RANKED} s LEFT JOIN records r USING (id)
            WHERE s._rank = 1"""
        ).fetchone()
        # records whose text or flag this reading changes: their theme and sentiment go, so the
        # next analysis treats them as new
        con.execute(
            f"""CREATE TEMP TABLE {CHANGED} AS SELECT s.id FROM {RANKED} s
            JOIN records r USING (id)
            WHERE s._rank = 1 AND ({update_when})
            AND (s.text_hash <> r.text_hash OR s.boilerplate IS DISTINCT FROM r.boilerplate)"""
        )
        fields = ", ".join(RECORD_FIELDS)
        select = ", ".join(f"'{self.file_hash}'" if f == "file_hash" else f for f in RECORD_FIELDS)
        sets = ", ".join(f"{f} = excluded.{f}" for f in RECORD_FIELDS if f != "id")
        con.execute(
            f"""INSERT INTO records ({fields})
            SELECT {select} FROM {RANKED} WHERE _rank = 1
            ON CONFLICT (id) DO UPDATE SET {sets}, ingested_at = now()
            WHERE {UPDATE_WHEN}"""
        )
        for table in ("assignments", "sentiment"):
            con.execute(f"DELETE FROM {table} WHERE record_id IN (SELECT id FROM {CHANGED})")
        con.execute(f"DROP TABLE {CHANGED}")
        removed = delete_records(
            con,
            f"r.file_hash = ? AND r.id NOT IN (SELECT id FROM {RANKED} WHERE _rank = 1)",
            [self.file_hash],
        )
        flagged = con.execute(
            f"SELECT text, count(*) AS n FROM {RANKED} WHERE _rank = 1 AND boilerplate "
            "GROUP BY text ORDER BY n DESC, text LIMIT 200"
        ).df()
        self.boilerplate = _grouped(flagged)
        con.execute(f"DROP TABLE {RANKED}")
        return {
            "inserted": int(inserted),
            "updated": int(updated),
            "unchanged": int(unchanged),
            "duplicates": int(duplicates),
            "removed": removed.records,
            "boilerplate": sum(n for _, n in self.boilerplate),
        }

    def _flag_repeated(self) -> None:
        """Texts shared by a large share of the file's rows (``ingest.boilerplate``)."""
        con = self.con
        total = con.execute(f"SELECT count(*) FROM {RANKED} WHERE _rank = 1").fetchone()[0]
        need = repeated_threshold(int(total))
        common = con.execute(
            f"SELECT lower(text) AS t, count(*) AS n FROM {RANKED} WHERE _rank = 1 "
            "GROUP BY 1 HAVING count(*) >= ?",
            [min(need, REPEATED_MIN_ROWS)],
        ).df()
        if common.empty:
            return
        common["key"] = normalise(common["t"]).to_numpy()
        per_key = common.groupby("key")["n"].sum()
        keys = set(per_key[per_key >= need].index)
        texts = common.loc[common["key"].isin(keys), "t"].tolist()
        if texts:
            con.execute(
                f"UPDATE {RANKED} SET boilerplate = true "
                "WHERE lower(text) IN (SELECT unnest(?::VARCHAR[]))",
                [texts],
            )


def _grouped(flagged: pd.DataFrame) -> list[tuple[str, int]]:
    """Flagged texts with their counts, variants of one text (case, punctuation) together."""
    if flagged.empty:
        return []
    flagged = flagged.assign(key=normalise(flagged["text"]).to_numpy())
    out = flagged.groupby("key", sort=False).agg(text=("text", "first"), n=("n", "sum"))
    out = out.sort_values("n", ascending=False, kind="stable")
    return [(str(t), int(n)) for t, n in zip(out["text"], out["n"], strict=True)]
