"""Readers that turn a file into a stream of all-string DataFrame chunks.

Every reader yields :class:`Chunk` objects of at most ``chunk_rows`` rows, so a 50 MB export is
never held in memory as Python objects at once. Cells are ``str``; a missing value is ``""``.

- ``sniff``: hash, compression, container format and encoding, before any row is read;
- ``base``: :class:`Chunk`, the chunk size and the (decompressed) binary stream the readers share;
- ``csv``, ``jsonl``, ``parquet``, ``xlsx``: one reader per format; ``stream.iter_chunks`` picks one.

This package only re-exports; the submodules import each other, never this ``__init__``.
"""

from __future__ import annotations

from analyzer.ingest.formats.base import DEFAULT_CHUNK_ROWS, Chunk, CountingReader, open_binary
from analyzer.ingest.formats.sniff import FileInfo, sniff
from analyzer.ingest.formats.stream import iter_chunks

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Chunk",
    "CountingReader",
    "FileInfo",
    "iter_chunks",
    "open_binary",
    "sniff",
]
