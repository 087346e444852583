"""Which column of a table says when each request was made, when no one named it: the one rule
``tag train`` (its validation order) and a plain table's ingest (its created time) follow."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.dates import DateFormat, check_strftime, detect_format, parse_dates
from analyzer.ingest.profiles.base import column_key

# a later step of a request (closed, resolved, updated...; in Spanish cierre, resuelto,
# actualizado, modificado), and words that make a column name a time
LATER_STEP = re.compile(
    r"(closed|close_date|resolved|acknowledged|completed|updated|modified"
    r"|cierre|cerrad|resuel|actualiz|modific)"
)
# a time that is planned, not something that happened: a deadline, a target, a schedule
_PLANNED = re.compile(r"(due|expect|target|schedul|plann|deadline|vencim)")
# nor a time that is not the request's own making: a later step, a birthday
_NOT_MADE = re.compile(r"(updat|clos|birth)")
TIME_WORD = re.compile(
    r"(date|time|_at$|^closed$|^resolved$|^acknowledged$|^completed$|fecha|datum|timestamp)"
)
# names that say the row's own start: created, requested, opened, submitted, reported, received
_MADE = re.compile(r"(creat|request|open|submit|report|receiv|filed|logged|alta|creaci)")
# ... or says it with the verb alone: "Created", "Submitted On", "opened_at"
_MADE_ALONE = re.compile(
    r"(date_)?(created|requested|opened|submitted|reported|received|filed|logged)(_on|_at)?"
)


def created_time_candidates(columns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Columns whose names say they may hold when each request was made, most telling first:
    a time word with a creation word ("CREATED_DATE", "requested_datetime", "Date Opened"), then
    a time word alone ("date", "timestamp"); never a later step ("closed_date", "updated_at",
    "due_date")."""
    skip = {str(c) for c in exclude}
    made, plain = [], []
    for col in columns:
        key = column_key(col)
        if str(col) in skip or LATER_STEP.search(key) or _NOT_MADE.search(key):
            continue
        if _PLANNED.search(key):  # a deadline or a schedule is not when it was made
            continue
        if _MADE.search(key) and (TIME_WORD.search(key) or _MADE_ALONE.fullmatch(key)):
            made.append(str(col))
        elif TIME_WORD.search(key):
            plain.append(str(col))
    return made + plain


@dataclass(frozen=True)
class FoundTimes:
    """The column found to hold each row's time (``None`` when none did), its parsed times and
    format, how many rows had no time there (given the earliest time: they train, they are not
    validated on), and why each other candidate was passed over."""

    column: str | None
    times: pd.Series | None = None
    format: DateFormat | None = None
    missing: int = 0
    passed_over: tuple[str, ...] = ()


# a column found by its name may miss a time in 1 row in 100 (an export's blanks); more, and it
# is not the column that says when each request was made
FOUND_TIME_MISSING = 0.01


def find_time_column(
    frame: pd.DataFrame,
    *,
    exclude: Sequence[str] = (),
    date_format: str | None = None,
    tz: str = "UTC",
    file: str | None = None,
    rows: pd.Series | np.ndarray | None = None,
) -> FoundTimes:
    """The first of ``created_time_candidates`` whose values parse as times (the one parser, the
    format decided over the column; at most ``FOUND_TIME_MISSING`` of them blank or unreadable;
    ``rows``: each value's row in the file, for the notes): what ``tag train`` validates on when
    no ``--time-col`` is given, so that its review threshold is chosen on later requests, as it
    will be used. Validated on shuffled rows instead, the threshold promised 0.95 and kept
    0.90-0.93 on the later requests of three of the five cities of ``benchmarks.cities``."""
    passed: list[str] = []
    explicit = date_format or None
    if explicit:
        check_strftime(explicit)
    for col in created_time_candidates([str(c) for c in frame.columns], exclude):
        raw = frame[col]
        try:
            fmt = detect_format(raw, column=col, explicit=explicit, file=file)
        except InputError as exc:
            passed.append(f"{col!r} ({exc.message})")
            continue
        ts, problem = parse_dates(raw, fmt, tz)
        bad = ((problem != "") | ts.isna()).to_numpy()
        if bad.mean() > FOUND_TIME_MISSING or bad.all():
            at = int(np.flatnonzero(bad)[0])
            row = int(np.asarray(rows)[at]) if rows is not None else at + 1
            why = problem.iloc[at] or "missing date"
            passed.append(f"{col!r} ({bad.sum():,} rows without a time, e.g. row {row}: {why})")
            continue
        if ts[~bad].nunique() < 2:
            passed.append(f"{col!r} (one time for every row)")
            continue
        ts = ts.where(~bad, ts[~bad].min())
        return FoundTimes(col, ts, fmt, int(bad.sum()), tuple(passed))
    return FoundTimes(None, passed_over=tuple(passed))


# names that say a request's close: closed, resolved, completed; cierre, cerrado, resuelto,
# finalizado, solucionado (es); fechamento, encerrado, concluído (pt); clôture, fermé (fr)
_CLOSE = re.compile(
    r"(clos|resol|complet|finish|cierre|cerrad|resuel|finaliz|solucion|fechament"
    r"|encerr|conclu|clotur|ferme)"
)


def close_time_candidates(columns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Columns whose names say when a request was closed ("CLOSED_DATE", "Closed", "Date
    Resolved", "Fecha de cierre"); never a deadline ("target_close_date") or a last update: an
    export's "updated" time moves with every note and is not when the request closed."""
    skip = {str(c) for c in exclude}
    out = []
    for col in columns:
        key = column_key(col)
        if str(col) in skip or _PLANNED.search(key):
            continue
        if _CLOSE.search(key) and TIME_WORD.search(key):
            out.append(str(col))
    return out


def find_close_column(
    frame: pd.DataFrame,
    *,
    exclude: Sequence[str] = (),
    date_format: str | None = None,
    tz: str = "UTC",
    file: str | None = None,
) -> str | None:
    """The first of ``close_time_candidates`` whose filled values read as times (blanks are
    requests still open; a value that does not parse, beyond ``FOUND_TIME_MISSING`` of those
    filled, and it is not the close time): a plain table's close time, which outcomes measure
    time to close from, when ``--updated-col`` names none."""
    explicit = date_format or None
    for col in close_time_candidates([str(c) for c in frame.columns], exclude):
        raw = frame[col]
        filled = raw.astype(str).str.strip().ne("") & raw.notna()
        if not filled.any():
            continue
        try:
            fmt = detect_format(raw[filled], column=col, explicit=explicit, file=file)
        except InputError:
            continue
        ts, problem = parse_dates(raw[filled], fmt, tz)
        bad = ((problem != "") | ts.isna()).to_numpy()
        if bad.mean() <= FOUND_TIME_MISSING:
            return col
    return None


__all__ = [
    "FOUND_TIME_MISSING",
    "LATER_STEP",
    "TIME_WORD",
    "FoundTimes",
    "close_time_candidates",
    "created_time_candidates",
    "find_close_column",
    "find_time_column",
]
