"""Rows posted to the API go through the same ingest code as files.

The posted JSON becomes an all-string frame (the shape the file readers produce), then the ingest
module's own steps run on it: its profile maps the columns, ``prepare_chunk`` cleans, validates and
redacts, and ``FileLoader`` upserts inside one transaction and records rejects with their reasons.
Nothing here validates or redacts by itself.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from analyzer.store.database import Store

# Canonical fields of a posted record and the frame column each one becomes.
RECORD_COLUMNS = (
    "id",
    "text",
    "created_at",
    "updated_at",
    "category",
    "status",
    "lat",
    "lon",
    "area",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _load(
    store: Store,
    frame: pd.DataFrame,
    profile: Any,
    *,
    label: str,
    keep_raw: bool,
) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """Prepare (outside the store lock: redaction is the slow part) then load in one transaction.
    Returns (rejects with 0-based ``index``, loaded ids in order, counts)."""
    from analyzer.ingest.formats import Chunk
    from analyzer.ingest.load import FileLoader
    from analyzer.ingest.profiles import Context
    from analyzer.ingest.validate import prepare_chunk

    columns = [str(c) for c in frame.columns]
    cmap = profile.resolve(columns, label)
    ctx = Context(path=Path(label), dataset="api", tz="UTC")
    prepared = prepare_chunk(
        Chunk(frame=frame, first_row=1, progress=1.0), profile, cmap, ctx, keep_raw=keep_raw
    )
    file_hash = f"api-{uuid.uuid4().hex}"
    with store.transaction() as con:
        loader = FileLoader(con, file=label, file_hash=file_hash)
        loader.add(prepared)
        counts = loader.finish(cmap.id)
        loaded = counts["inserted"] + counts["updated"] + counts["unchanged"]
        con.execute(
            "INSERT OR REPLACE INTO files (file_hash, path, profile, rows_read, rows_loaded, "
            "rows_rejected) VALUES (?, ?, ?, ?, ?, ?)",
            [file_hash, label, profile.name, len(frame), loaded, len(frame) - loaded],
        )
    rejects = store.query_df(
        "SELECT row_number, column_name, reason FROM rejects WHERE file_hash = ? "
        "ORDER BY row_number",
        [file_hash],
    )
    rejects["index"] = rejects["row_number"].astype(int) - 1
    rejected_rows = set(rejects["row_number"].astype(int))
    ids = [
        str(i)
        for i, n in zip(prepared.records["id"], prepared.records["row_number"], strict=True)
        if int(n) not in rejected_rows
    ]
    return rejects, ids, counts


def ingest_records(
    store: Store, rows: list[dict[str, Any]], *, keep_raw: bool = False
) -> dict[str, Any]:
    """Load posted records (dicts of :class:`api.schemas.RecordIn` fields); one transaction per
    source. Ids are ``api:<id>``; a row without an id gets a random one."""
    from analyzer.ingest.profiles import PROFILES

    base = PROFILES["csv"]
    by_source: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_source.setdefault(str(row.get("source") or "api"), []).append(i)
    all_rejects: list[dict[str, Any]] = []
    ids_at: dict[int, str] = {}
    loaded = 0
    for source, positions in by_source.items():
        records = []
        for i in positions:
            row = rows[i]
            cells = {c: _cell(row.get(c)) for c in RECORD_COLUMNS}
            cells["id"] = cells["id"] or uuid.uuid4().hex
            for key, value in (row.get("attributes") or {}).items():
                # An attribute may not shadow a canonical field.
                name = key if key not in RECORD_COLUMNS and key != "source" else f"attr_{key}"
                cells[name] = _cell(value)
            records.append(cells)
        frame = pd.DataFrame(records).fillna("").astype(str)
        frame.index = pd.RangeIndex(len(frame))
        profile = replace(
            base,
            source=source,
            id_prefix="api",
            dataset_in_id=False,
            text=("text",),
            id=("id",),
            created=("created_at",),
            updated=("updated_at",),
            category=("category",),
            status=("status",),
            lat=("lat",),
            lon=("lon",),
            area=("area",),
        )
        rejects, ids, counts = _load(
            store, frame, profile, label=f"api:POST /v1/records ({source})", keep_raw=keep_raw
        )
        loaded += counts["inserted"] + counts["updated"] + counts["unchanged"]
        rejected = set(rejects["index"])
        ok_positions = [p for j, p in enumerate(positions) if j not in rejected]
        ids_at.update(zip(ok_positions, ids, strict=False))
        for r in rejects.itertuples(index=False):
            pos = positions[int(r.index)]
            all_rejects.append(
                {
                    "index": pos,
                    "id": rows[pos].get("id"),
                    "column": r.column_name or None,
                    "reason": str(r.reason),
                }
            )
    all_rejects.sort(key=lambda r: r["index"])
    return {
        "loaded": loaded,
        "rejected": len(all_rejects),
        "ids": [ids_at[i] for i in sorted(ids_at)],
        "rejects": all_rejects,
    }


def ingest_open311(
    store: Store, fields: dict[str, str], *, keep_raw: bool = False
) -> dict[str, Any]:
    """Load one GeoReport v2 request (its standard fields, as strings) with the open311 profile."""
    from analyzer.ingest.profiles import PROFILES

    frame = pd.DataFrame([fields]).fillna("").astype(str)
    rejects, ids, _ = _load(
        store,
        frame,
        PROFILES["open311"],
        label="api:POST /open311/v2/requests.json",
        keep_raw=keep_raw,
    )
    return {
        "ids": ids,
        "rejects": [
            {"column": r.column_name or None, "reason": str(r.reason)}
            for r in rejects.itertuples(index=False)
        ],
    }
