"""Delimited text: delimiter sniffing on the head, streaming through pandas' C parser."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.formats.base import Chunk, open_binary
from analyzer.ingest.formats.sniff import FileInfo

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")

_EOF_IN_STRING = re.compile(r"EOF inside string starting at row (\d+)")
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first records into the most, and most consistent, fields.

    ``csv.Sniffer`` guesses wrong on free text full of commas and semicolons; counting fields per
    record with a real CSV reader (quotes respected) for each candidate is simpler and sturdier.
    """
    # drop the last, probably cut-off, line of the sample
    sample = text if "\n" not in text else text[: text.rfind("\n")]
    best, best_score = ",", (0, 0, 0)
    for i, delim in enumerate(CANDIDATE_DELIMITERS):
        try:
            reader = csv.reader(io.StringIO(sample), delimiter=delim)
            rows = list(itertools.islice(reader, 50))
        except csv.Error:
            continue
        rows = [r for r in rows if r]
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width)
        # prefer: more records agreeing with the header width, then more fields, then list order
        score = (consistent, width, -i)
        if score > best_score:
            best, best_score = delim, score
    return best


def read_options(info: FileInfo) -> dict[str, object]:
    head = info.head.decode(info.encoding or "utf-8", errors="replace").lstrip("\ufeff")
    return {
        "sep": sniff_delimiter(head),
        "encoding": info.encoding,
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "engine": "c",
        "skip_blank_lines": True,
    }


def iter_chunks(info: FileInfo, chunk_rows: int) -> Iterator[Chunk]:
    stream, counter = open_binary(info)
    name = str(info.path)
    next_row = 1
    try:
        reader = pd.read_csv(stream, chunksize=chunk_rows, **read_options(info))  # type: ignore[call-overload]
        with reader:
            while True:
                try:
                    frame = next(reader)
                except StopIteration:
                    break
                frame.columns = [str(c).strip() for c in frame.columns]
                yield Chunk(frame, next_row, min(1.0, counter.count / max(info.size, 1)))
                next_row += len(frame)
    except pd.errors.EmptyDataError:
        raise InputError("empty file (no header)", file=name) from None
    except pd.errors.ParserError as exc:
        raise _parser_error(name, str(exc)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid {info.encoding} text: {exc.reason}", file=name) from None
    finally:
        stream.close()


def _parser_error(name: str, message: str) -> InputError:
    # pandas counts "row" from the header (row 0) and "line" from 1 at the header; both are
    # turned into our 1-based data-row numbers.
    if m := _EOF_IN_STRING.search(message):
        return InputError(
            "broken quoting: a quoted field is never closed", file=name, row=int(m.group(1))
        )
    if m := _FIELD_COUNT.search(message):
        expected, line, saw = (int(g) for g in m.groups())
        return InputError(
            f"expected {expected} fields, saw {saw} (broken quoting or an unquoted delimiter)",
            file=name,
            row=line - 1,
        )
    return InputError(f"cannot parse as CSV: {message.splitlines()[0]}", file=name)
