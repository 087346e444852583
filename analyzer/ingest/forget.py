"""Undo an ingest: ``civicpulse forget --file F | --source S``.

Records go with everything derived from them, in one transaction: theme assignments, sentiment
scores, their texts among theme and alert examples, the file's rejects and its row in ``files``
(so the same file can be ingested again). Embeddings are a cache keyed by text (another record
may share the text) and stay. A source left without records has its themes retired and its
alerts removed; a source that keeps some records is marked for a re-fit, which the next
``civicpulse analyze`` does (``stale_sources``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.store.database import Store

_DOOMED = "_forget_ids"
STALE_PREFIX = "stale_source:"


@dataclass
class Removal:
    """What a removal took away."""

    records: int = 0
    sources: list[str] = field(default_factory=list)  # sources that lost records
    emptied: list[str] = field(default_factory=list)  # ... and have none left (themes retired)
    files: list[str] = field(default_factory=list)  # files forgotten (paths)
    votes: int = 0  # votes of the forgotten vote files


def delete_votes(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> int:
    """Delete the votes read from the files ``hashes``, inside the caller's transaction; a
    conversation left without votes loses its participants' groups and cached opinion results."""
    if not hashes:
        return 0
    affected = [
        str(r[0])
        for r in con.execute(
            "SELECT DISTINCT conversation_id FROM votes "
            "WHERE file_hash IN (SELECT unnest(?::VARCHAR[]))",
            [hashes],
        ).fetchall()
    ]
    if not affected:
        return 0
    n = con.execute(
        "SELECT count(*) FROM votes WHERE file_hash IN (SELECT unnest(?::VARCHAR[]))", [hashes]
    ).fetchone()[0]
    con.execute("DELETE FROM votes WHERE file_hash IN (SELECT unnest(?::VARCHAR[]))", [hashes])
    for conv in affected:
        con.execute("DELETE FROM opinions WHERE conversation_id = ?", [conv])
        left = con.execute(
            "SELECT count(*) FROM votes WHERE conversation_id = ?", [conv]
        ).fetchone()
        if left[0] == 0:
            con.execute("DELETE FROM conversation_participants WHERE conversation_id = ?", [conv])
    return int(n)


def delete_records(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> Removal:
    """Delete the records matching ``where`` (SQL over ``records r``) and what was derived from
    them, inside the caller's transaction."""
    con.execute(f"DROP TABLE IF EXISTS {_DOOMED}")
    con.execute(
        f"CREATE TEMP TABLE {_DOOMED} AS SELECT r.id, r.source, r.text FROM records r "
        f"WHERE {where}",
        params,
    )
    n = con.execute(f"SELECT count(*) FROM {_DOOMED}").fetchone()[0]
    out = Removal(records=int(n))
    if not n:
        con.execute(f"DROP TABLE {_DOOMED}")
        return out
    for table in ("assignments", "sentiment"):
        con.execute(f"DELETE FROM {table} WHERE record_id IN (SELECT id FROM {_DOOMED})")
    con.execute(f"DELETE FROM records WHERE id IN (SELECT id FROM {_DOOMED})")
    gone = {
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT d.text FROM {_DOOMED} d "
            "WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.text = d.text)"
        ).fetchall()
    }
    out.sources = sorted(
        str(r[0]) for r in con.execute(f"SELECT DISTINCT source FROM {_DOOMED}").fetchall()
    )
    con.execute(f"DROP TABLE {_DOOMED}")
    for source in out.sources:
        left = con.execute("SELECT count(*) FROM records WHERE source = ?", [source]).fetchone()[0]
        if left == 0:
            out.emptied.append(source)
            con.execute(
                "DELETE FROM emerging WHERE theme_id IN (SELECT theme_id FROM themes "
                "WHERE source = ?)",
                [source],
            )
            con.execute("UPDATE themes SET status = 'retired' WHERE source = ?", [source])
        else:
            # the themes were fitted with these records: re-fit at the next analysis
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, strftime(now(), '%Y-%m-%dT%H:%M:%S.%f'))",
                [STALE_PREFIX + source],
            )
    if gone:
        _scrub_examples(con, out.sources, gone)
    return out


def _scrub_examples(con: duckdb.DuckDBPyConnection, sources: list[str], gone: set[str]) -> None:
    """Texts of removed records leave the theme and alert examples that quoted them."""
    for table, key in (("themes", "theme_id"), ("emerging", "rowid")):
        rows = con.execute(
            f"SELECT {key}, examples::VARCHAR FROM {table} WHERE examples IS NOT NULL AND "
            + (
                "source IN (SELECT unnest(?::VARCHAR[]))"
                if table == "themes"
                else "theme_id IN (SELECT theme_id FROM themes "
                "WHERE source IN (SELECT unnest(?::VARCHAR[])))"
            ),
            [sources],
        ).fetchall()
        for rid, raw in rows:
            try:
                examples = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if not isinstance(examples, list):
                continue
            kept = [e for e in examples if not (isinstance(e, str) and e in gone)]
            if len(kept) != len(examples):
                con.execute(
                    f"UPDATE {table} SET examples = ? WHERE {key} = ?", [json.dumps(kept), rid]
                )


def stale_sources(store: Store) -> set[str]:
    """Sources that lost records after the last finished analysis (their themes need a re-fit)."""
    rows = store.query_df(
        "SELECT substr(key, ?) AS source, value FROM meta WHERE starts_with(key, ?)",
        [len(STALE_PREFIX) + 1, STALE_PREFIX],
    )
    if rows.empty:
        return set()
    last = store.scalar(
        "SELECT strftime(max(started_at), '%Y-%m-%dT%H:%M:%S.%f') FROM runs "
        "WHERE kind = 'analyze' AND status = 'done'"
    )
    return {
        str(s) for s, v in zip(rows["source"], rows["value"], strict=True) if not last or v > last
    }


def _file_hashes(store: Store, file: str) -> list[tuple[str, str]]:
    """(hash, path) of the ingested files ``file`` names: the file itself when it exists (by
    content), else files ingested under that path or name."""
    p = Path(file)
    if p.is_file():
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        df = store.query_df(
            "SELECT file_hash, path FROM files WHERE file_hash = ?", [digest.hexdigest()]
        )
        if len(df):
            return list(zip(df["file_hash"], df["path"], strict=True))
    df = store.query_df("SELECT file_hash, path FROM files")
    rows = list(zip(df["file_hash"].astype(str), df["path"].astype(str), strict=True))
    exact = [(h, path) for h, path in rows if path == file or Path(path) == p]
    return exact or [(h, path) for h, path in rows if Path(path).name == p.name]


def forget(store: Store, *, file: str | None = None, source: str | None = None) -> Removal:
    """Remove one file's records (``file``: a path, or the name it was ingested under) or one
    source's, with what was derived from them, in one transaction."""
    if (file is None) == (source is None):
        raise InputError("forget needs exactly one of --file or --source")
    if file is not None:
        hashes = _file_hashes(store, file)
        if not hashes:
            known = store.query_df("SELECT path FROM files ORDER BY ingested_at")["path"].tolist()
            names = ", ".join(Path(str(k)).name for k in known[:10]) or "(none)"
            raise InputError(f"no ingested file matches; files ingested: {names}", file=file)
        with store.transaction() as con:
            removal = delete_records(
                con, "r.file_hash IN (SELECT unnest(?::VARCHAR[]))", [[h for h, _ in hashes]]
            )
            removal.votes = delete_votes(con, [h for h, _ in hashes])
            for h, path in hashes:
                con.execute("DELETE FROM rejects WHERE file_hash = ?", [h])
                con.execute("DELETE FROM files WHERE file_hash = ?", [h])
                removal.files.append(str(path))
        return removal
    known = store.query_df("SELECT DISTINCT source FROM records ORDER BY source")["source"]
    if source not in set(known.astype(str)):
        names = ", ".join(known.astype(str)) or "(none)"
        raise InputError(f"no records with source {source!r}; sources: {names}")
    with store.transaction() as con:
        hashes = [
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT file_hash FROM records WHERE source = ? AND file_hash IS NOT NULL",
                [source],
            ).fetchall()
        ]
        removal = delete_records(con, "r.source = ?", [source])
        for h in hashes:
            left = con.execute("SELECT count(*) FROM records WHERE file_hash = ?", [h]).fetchone()
            if left[0] == 0:
                path = con.execute("SELECT path FROM files WHERE file_hash = ?", [h]).fetchone()
                con.execute("DELETE FROM rejects WHERE file_hash = ?", [h])
                con.execute("DELETE FROM files WHERE file_hash = ?", [h])
                if path:
                    removal.files.append(str(path[0]))
    return removal
