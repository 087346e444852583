"""CSV that is safe to open in a spreadsheet: the formula-injection guard and a streaming writer.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or a
carriage return) as a formula: a resident's comment such as ``=HYPERLINK("http://…")`` would become
a live link or a command in a city worker's spreadsheet (CSV injection). Following OWASP's advice,
such a cell gets a leading single quote, and every cell is quoted so that separators and quotes
inside a text cannot start a new cell. A plain number (a longitude such as ``-71.06``) is not a
formula and is written unchanged.

This module redacts nothing itself: callers pass text that is already redacted (``records.text``,
written by ingest through ``analyzer.ingest.privacy.redact``); it only guards and formats cells.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, TextIO

__all__ = [
    "FORMULA_PREFIXES",
    "GuardedCsvWriter",
    "csv_cell",
    "iter_csv",
    "neutralise_formula",
    "safe_filename",
]

# A spreadsheet treats a cell starting with one of these as a formula (CSV injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def neutralise_formula(value: object) -> object:
    """Prefix a quote to a text cell a spreadsheet would run as a formula; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        if _NUMBER.fullmatch(value):  # "-71.06" is a longitude, not a formula
            return value
        return "'" + value
    return value


def csv_cell(value: Any) -> Any:
    """One value as a CSV cell: empty for missing, ISO 8601 UTC for times, JSON for lists and
    mappings, and text guarded against formula injection."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, bool | int):
        return value
    if isinstance(value, datetime):
        ts = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return neutralise_formula(str(value))


class GuardedCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_cell` (all cells quoted)."""

    def __init__(self, fh: TextIO) -> None:
        self._writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def iter_csv(header: Sequence[str], chunks: Iterable[Iterable[Sequence[Any]]]) -> Iterator[str]:
    """CSV text in pieces: the header, then one piece per chunk of rows (memory stays bounded by
    the chunk size, so a theme of a million records streams as well as one of ten)."""
    buf = io.StringIO()
    writer = GuardedCsvWriter(buf)
    writer.writerow(header)
    yield buf.getvalue()
    for rows in chunks:
        buf.seek(0)
        buf.truncate()
        writer.writerows(rows)
        if buf.tell():
            yield buf.getvalue()


def safe_filename(theme_id: str, suffix: str) -> str:
    """A file name for a theme's export, safe in a Content-Disposition header and on any disk."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in theme_id)
    return f"theme-{stem[:80] or 'theme'}-{suffix}"
