"""What every format reader shares: the :class:`Chunk` they yield, the chunk size, and the binary
stream (gzip undone) with a byte counter for progress.

Every reader yields :class:`Chunk` objects of at most ``chunk_rows`` rows, so a 50 MB export is
never held in memory as Python objects at once. Cells are ``str``; a missing value is ``""``.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from typing import BinaryIO

import pandas as pd

from analyzer.ingest.formats.sniff import FileInfo

__all__ = ["DEFAULT_CHUNK_ROWS", "Chunk", "CountingReader", "open_binary"]

DEFAULT_CHUNK_ROWS = 50_000


@dataclass
class Chunk:
    """Rows ``first_row .. first_row + len(frame) - 1`` of a file (1-based, header not counted)."""

    frame: pd.DataFrame
    first_row: int
    progress: float  # share of the file consumed so far, 0..1


class CountingReader(io.RawIOBase):
    """A raw binary reader that counts the bytes taken from the file on disk (for progress)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._fh.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_binary(info: FileInfo) -> tuple[BinaryIO, CountingReader]:
    """The decompressed content as a buffered binary stream, plus the byte counter of the file."""
    counter = CountingReader(open(info.path, "rb"))  # noqa: SIM115 - closed by the caller
    raw: BinaryIO = io.BufferedReader(counter, buffer_size=1 << 20)
    if info.gzip:
        raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    return raw, counter
