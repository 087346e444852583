"""JSON: an array of objects (Open311 GeoReport v2 responses) or JSON lines, streamed.

``json.load`` would build the whole document as Python objects; instead the text is read in blocks
and objects are decoded one at a time with ``JSONDecoder.raw_decode``, so memory stays at one block
plus one chunk of rows whatever the file size.

API responses saved as they came are unwrapped: a top-level object that only wraps the records
(``{"issues": [...], "metadata": {...}}`` from SeeClickFix, ``{"service_requests": [{"request":
[...]}]}`` from FixMyStreet's Open311 server, ``{"results": [...]}``) yields the records inside,
so a folder of saved API pages concatenated into one file reads as one table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.formats.base import Chunk, open_binary
from analyzer.ingest.formats.sniff import FileInfo

_BLOCK_CHARS = 1 << 20
_WS = " \t\r\n\ufeff"

# Keys under which API responses put their list of records; an object with one of them (holding
# objects) and at most a few other keys (metadata, errors, paging) is a wrapper, not a record.
WRAPPER_KEYS = (
    "issues",
    "requests",
    "service_requests",
    "request",
    "results",
    "result",
    "records",
    "items",
    "data",
)
_WRAPPER_MAX_KEYS = 4


def records_in(value: Any) -> list[Any] | None:
    """The records a wrapper object holds (recursively: FixMyStreet wraps twice), or None when
    ``value`` is a record itself."""
    if not isinstance(value, dict) or len(value) > _WRAPPER_MAX_KEYS:
        return None
    if any(isinstance(v, str) and v for v in value.values()):
        return None  # a record with a text field, not an envelope
    for key in WRAPPER_KEYS:
        inner = value.get(key)
        if isinstance(inner, dict) and records_in(inner) is None and len(value) == 1:
            return [inner]  # {"request": {...}}: a single record wrapped
        if isinstance(inner, list) and inner and all(isinstance(v, dict) for v in inner):
            out: list[Any] = []
            for item in inner:
                nested = records_in(item)
                out.extend(nested if nested is not None else [item])
            return out
        if isinstance(inner, list) and not inner:
            return []
    return None


def cell(value: Any) -> str:
    """One JSON value as the string a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def iter_objects(text: io.TextIOBase, name: str) -> Iterator[dict[str, Any]]:
    """Objects from a JSON array or from JSON lines, in order."""
    decoder = json.JSONDecoder()
    buf = ""
    pos = 0
    eof = False
    in_array: bool | None = None
    index = 0  # objects decoded so far

    def fill() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        more = text.read(_BLOCK_CHARS)
        if not more:
            eof = True
            return False
        buf = buf[pos:] + more
        pos = 0
        return True

    def skip_ws() -> bool:
        """Advance past whitespace; False at end of input."""
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf):
                return True
            if not fill():
                return False

    while True:
        if not skip_ws():
            if in_array:
                raise InputError("invalid JSON: the array is never closed", file=name)
            return
        ch = buf[pos]
        if in_array is None:
            in_array = ch == "["
            if in_array:
                pos += 1
                continue
        elif in_array and ch == "]":
            pos += 1
            if skip_ws():
                raise InputError("invalid JSON: extra data after the array", file=name)
            return
        elif ch == ",":
            if in_array and index == 0:
                raise InputError("invalid JSON: a comma before the first value", file=name)
            pos += 1
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                # the value may just be cut by the block boundary: read more and retry
                if fill():
                    continue
                raise InputError(f"invalid JSON: {exc.msg}", file=name, row=index + 1) from None
        pos = end
        index += 1
        if not isinstance(value, dict):
            raise InputError(
                f"JSON value is a {type(value).__name__}, expected an object with named fields",
                file=name,
                row=index,
            )
        yield value


def iter_chunks(info: FileInfo, chunk_rows: int) -> Iterator[Chunk]:
    stream, counter = open_binary(info)
    text = io.TextIOWrapper(stream, encoding=info.encoding or "utf-8", newline="")
    name = str(info.path)
    rows: list[dict[str, str]] = []
    next_row = 1
    try:
        for outer in iter_objects(text, name):
            inner = records_in(outer)
            for obj in inner if inner is not None else [outer]:
                rows.append({str(k): cell(v) for k, v in obj.items()})
            if len(rows) >= chunk_rows:
                yield Chunk(_frame(rows), next_row, min(1.0, counter.count / max(info.size, 1)))
                next_row += len(rows)
                rows = []
        if rows:
            yield Chunk(_frame(rows), next_row, 1.0)
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid {info.encoding} text: {exc.reason}", file=name) from None
    finally:
        text.close()


def _frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    # objects may have different keys: the union, with "" where a key is absent
    return pd.DataFrame.from_records(rows).fillna("").astype(str)
