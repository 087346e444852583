"""One entry point for every format: dispatch on what :func:`~analyzer.ingest.formats.sniff.sniff`
found. Each reader is imported on first use."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.ingest.formats.base import DEFAULT_CHUNK_ROWS, Chunk
from analyzer.ingest.formats.sniff import FileInfo

__all__ = ["iter_chunks"]


def iter_chunks(info: FileInfo, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Stream ``info``'s rows as all-string chunks; parse errors become :class:`InputError`."""
    if info.kind == "parquet":
        from analyzer.ingest.formats.parquet import iter_chunks as parquet_chunks

        yield from parquet_chunks(info, chunk_rows)
    elif info.kind == "xlsx":
        from analyzer.ingest.formats.xlsx import iter_chunks as xlsx_chunks

        yield from xlsx_chunks(info, chunk_rows)
    elif info.kind == "json":
        from analyzer.ingest.formats.jsonl import iter_chunks as jsonl_chunks

        yield from jsonl_chunks(info, chunk_rows)
    else:
        from analyzer.ingest.formats.csv import iter_chunks as csv_chunks

        yield from csv_chunks(info, chunk_rows)
