"""Excel 2007+ workbooks (.xlsx / .xlsm), the export many city halls send: the first sheet that
has rows, its first non-empty row as the header, read with openpyxl in read-only mode (rows are
streamed, never the whole sheet at once). Every cell becomes text as a CSV cell would be: a date
or time as ISO 8601 without an offset (read later in the city's zone, ``--tz``), a whole number
without ".0" (ids, counts), an empty cell as ""."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.formats.base import Chunk
from analyzer.ingest.formats.sniff import SAVE_AS, FileInfo


def cell_text(value: Any) -> str:
    """One cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def _header(row: tuple[Any, ...]) -> list[str]:
    names, seen = [], {}
    for i, value in enumerate(row):
        name = cell_text(value) or f"column_{i + 1}"
        if name in seen:  # two columns named alike: keep both, as pandas does for a CSV
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def iter_chunks(info: FileInfo, chunk_rows: int) -> Iterator[Chunk]:
    from openpyxl import load_workbook

    name = str(info.path)
    try:
        wb = load_workbook(info.path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise InputError(
            f"unreadable Excel workbook ({type(exc).__name__}); {SAVE_AS}", file=name
        ) from None
    try:
        for sheet in wb.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header: list[str] | None = None
            for row in rows:
                if any(v is not None and str(v).strip() != "" for v in row):
                    header = _header(row)
                    break
            if header is None:
                continue  # an empty sheet: the next one
            total = max((sheet.max_row or 1) - 1, 1)
            batch: list[list[str]] = []
            next_row = 1
            for row in rows:
                cells = [cell_text(v) for v in row[: len(header)]]
                if not any(cells):
                    continue  # a blank line in the sheet, as a CSV reader skips one
                batch.append(cells + [""] * (len(header) - len(cells)))
                if len(batch) >= chunk_rows:
                    yield _chunk(batch, header, next_row, total)
                    next_row += len(batch)
                    batch = []
            if batch or next_row == 1:
                yield _chunk(batch, header, next_row, total)
            return
        raise InputError("an Excel workbook with no rows in any sheet", file=name)
    finally:
        wb.close()


def _chunk(batch: list[list[str]], header: list[str], first_row: int, total: int) -> Chunk:
    frame = pd.DataFrame(batch, columns=header, dtype=object)
    return Chunk(frame, first_row, min(1.0, (first_row - 1 + len(frame)) / total))
