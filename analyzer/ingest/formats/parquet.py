"""Parquet, read in record batches; every column is cast to string like a CSV cell."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.errors import InputError
from analyzer.ingest.formats.base import Chunk
from analyzer.ingest.formats.sniff import FileInfo


def _to_string(col: pa.Array) -> pa.Array:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col
    if pa.types.is_timestamp(col.type) and col.type.tz is None:
        # a naive timestamp prints without an offset, so it is later read in the ingest time zone
        return pc.strftime(col, format="%Y-%m-%dT%H:%M:%S")
    if pa.types.is_timestamp(col.type):
        return pc.strftime(pc.cast(col, pa.timestamp("us", "UTC")), format="%Y-%m-%dT%H:%M:%S%z")
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        # nested values (lists, structs, maps): JSON text, as the JSON reader writes them
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
            pa.string(),
        )


def _batch_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    data = {name: _to_string(batch.column(i)) for i, name in enumerate(batch.schema.names)}
    table = pa.table(data)
    return table.to_pandas().fillna("").astype(str)


def iter_chunks(info: FileInfo, chunk_rows: int) -> Iterator[Chunk]:
    name = str(info.path)
    tmp = None
    try:
        source = str(info.path)
        if info.gzip:
            # Parquet needs random access; inflate to a temporary file rather than into memory
            tmp = tempfile.NamedTemporaryFile(suffix=".parquet")  # noqa: SIM115
            with gzip.open(info.path, "rb") as src:
                shutil.copyfileobj(src, tmp, length=1 << 20)
            tmp.flush()
            source = tmp.name
        try:
            pf = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"unreadable Parquet file: {exc}", file=name) from None
        total = max(pf.metadata.num_rows, 1)
        next_row = 1
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                frame = _batch_frame(batch)
                yield Chunk(frame, next_row, min(1.0, (next_row - 1 + len(frame)) / total))
                next_row += len(frame)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"unreadable Parquet data: {exc}", file=name, row=next_row) from None
    finally:
        if tmp is not None:
            tmp.close()
