"""One parser for every time a user gives us: ingest columns, ``tag train --time-col``, trend input
and the benchmarks.

A column's format is decided from all of its values, not value by value: ``03/04/2020`` means
4 March in a column that also holds ``25/04/2020`` and 3 April in one that holds ``04/25/2020``.
Value by value (what dateutil and ``pandas.to_datetime(format="mixed")`` do) a day-first column
is read day-first only where the day is above 12 and month-first elsewhere, silently.

Families, each recognised by its shape:

- ISO 8601 (``2017-08-30T17:38:00Z``, ``2017-08-30 17:38``, with or without an offset), and the
  same order with slashes or dots (``2017/08/30``);
- Unix seconds (9-10 digits) and milliseconds (12-13 digits);
- numeric day and month (``30/08/2017 17:38``, ``08/30/2017 05:38 PM``, ``30.08.17``): the one
  family whose order must be decided. A day above 12 in the first place makes the column
  day-first, in the second place month-first; when every day and month is 12 or less the column
  is ambiguous and is refused unless ``--date-format`` (strftime) says which it is;
- named months (``30 Aug 2017``, ``Wed, 30 August 2017 17:38``), read by dateutil.

Times without an offset are local times in the ingest's time zone (``--tz``). Every parse returns
the timestamps and, per value, a problem ("" when fine) for the reject reason.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analyzer.common.clock import EARLIEST as CLOCK_EARLIEST
from analyzer.errors import InputError

EARLIEST = pd.Timestamp(CLOCK_EARLIEST)  # the one lower bound (analyzer.common.clock)

# Problems, as reject reasons (short and constant, so that rejects group by reason).
UNPARSEABLE = "unparseable date"
OUT_OF_RANGE = "date out of range"
AMBIGUOUS = "ambiguous date (day or month first?)"

# Plain string patterns: pandas hands them to RE2 on Arrow-backed strings (see ingest.clean).
_EPOCH = r"-?[0-9]{9,13}(?:\.[0-9]+)?"
_HAS_OFFSET = r".*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"  # used with fullmatch
_ISO = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)? *"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_TIME = (
    r"(?:(?:[Tt ]+|, *)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r" *([AaPp]\.?[Mm]\.?)?)? *((?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?)"
)
# day and month in either order, then the year: 30/08/2017, 08-30-17, 30.08.2017 17:38
_NUMERIC = r"([0-9]{1,2})([/.-])([0-9]{1,2})[/.-]([0-9]{4}|[0-9]{2})" + _TIME
# year first with slashes or dots: 2017/08/30 (ISO's order, never ambiguous)
_YMD = r"([0-9]{4})([/.-])([0-9]{1,2})[/.-]([0-9]{1,2})" + _TIME
_LETTERS = r"[A-Za-z]{3,}"
_YEAR = r"(?:1[89]|2[01])[0-9]{2}"

ORDERS = ("DMY", "MDY")
_ORDER_WORDS = {"DMY": "day-first", "MDY": "month-first", "YMD": "year-first"}


@dataclass(frozen=True)
class DateFormat:
    """How one column's times are written, decided from all its values.

    ``order`` is "DMY" or "MDY" for numeric day/month values (None when the column has none),
    ``explicit`` the user's strftime (``--date-format``), ``description`` what the summary prints.
    """

    order: str | None = None
    explicit: str | None = None
    description: str = "ISO 8601"
    has_local_times: bool = False  # some values carry no offset: read in the ingest time zone
    formats: tuple[str, ...] = ()  # strftime of the numeric shapes seen, most common first

    @classmethod
    def given(cls, fmt: str) -> DateFormat:
        """The user's strftime; checked here so that a typo fails before any file is read."""
        check_strftime(fmt)
        return cls(order=None, explicit=fmt, description=f"{fmt} (--date-format)")


def check_strftime(fmt: str) -> None:
    """A ``--date-format`` must hold a strftime directive for the day, month and year."""
    if not fmt or "%" not in fmt:
        raise InputError(f"--date-format {fmt!r} is not a strftime format, e.g. '%d/%m/%Y %H:%M'")
    wanted = {"day": ("%d", "%j"), "month": ("%m", "%b", "%B", "%j"), "year": ("%Y", "%y")}
    missing = [k for k, codes in wanted.items() if not any(c in fmt for c in codes)]
    if missing:
        raise InputError(
            f"--date-format {fmt!r} has no {' or '.join(missing)}; e.g. '%d/%m/%Y %H:%M'"
        )
    try:
        pd.Timestamp("2001-02-03 04:05:06").strftime(fmt)
    except ValueError as exc:
        raise InputError(f"--date-format {fmt!r}: {exc}") from None


def _shape(key: tuple, order: str) -> str:
    """The strftime of a numeric value's shape (see ``_shape_counts``) written in ``order``."""
    sep, ylen, hour, second, fraction, ampm, offset = key
    day_month = "%d{0}%m" if order == "DMY" else "%m{0}%d"
    out = day_month.format(sep) + sep + ("%Y" if ylen == 4 else "%y")
    if hour:
        out += " %I:%M" if ampm else " %H:%M"
        if second:
            out += ":%S" + (".%f" if fraction else "")
        if ampm:
            out += " %p"
    if offset:
        out += "%z"
    return out


def _shape_counts(part: pd.DataFrame) -> dict[tuple, int]:
    """How many numeric values (groups of ``_NUMERIC``) have each shape: separator, year digits,
    and which time parts (hour, seconds, fraction, AM/PM, offset) they carry."""
    frame = pd.DataFrame(
        {
            "sep": part[1].fillna("").astype(object),
            "ylen": part[3].str.len().astype(int),
            "hour": part[4].notna(),
            "second": part[6].notna(),
            "fraction": part[7].notna(),
            "ampm": part[8].notna(),
            "offset": part[9].fillna("") != "",
        }
    )
    counts = frame.value_counts()
    return {tuple(k): int(n) for k, n in counts.items()}


@dataclass
class DateSniffer:
    """Evidence about one column's format, gathered chunk by chunk (:meth:`observe`) so that a
    file is judged on all its values; :meth:`result` decides.

    ``default_order`` is a profile's documented order for its platform (Socrata exports are
    month-first); it settles a column whose values alone cannot.
    """

    column: str
    explicit: str | None = None
    default_order: str | None = None
    families: Counter = field(default_factory=Counter)
    shapes: Counter = field(default_factory=Counter)
    first_over_12: int = 0
    second_over_12: int = 0
    differ: int = 0
    example: str | None = None
    local: bool = False

    def observe(self, raw: pd.Series) -> None:
        s = _strings(raw)
        s = s[s != ""]
        if s.empty:
            return
        if self.explicit:
            got = pd.to_datetime(s, format=self.explicit, errors="coerce").notna()
            self.families["explicit"] += int(got.sum())
            s = s[~got]
        epoch = s.str.fullmatch(_EPOCH)
        if epoch.any():
            v = pd.to_numeric(s[epoch], errors="coerce").abs()
            ms = int((v >= 1e11).sum())
            self.families["Unix milliseconds"] += ms
            self.families["Unix seconds"] += int(epoch.sum()) - ms
            s = s[~epoch]
        iso = s.str.fullmatch(_ISO)
        if iso.any():
            self.families["ISO 8601"] += int(iso.sum())
            self.local |= bool((~s[iso].str.fullmatch(_HAS_OFFSET)).any())
            s = s[~iso]
        is_ymd = s.str.fullmatch(_YMD)
        if is_ymd.any():
            self.families["year-first"] += int(is_ymd.sum())
            self.local |= bool((_extract(_sample(s[is_ymd]), _YMD)[9].isna()).any())
            s = s[~is_ymd]
        is_num = s.str.fullmatch(_NUMERIC)
        if is_num.any():
            values = s[is_num]
            a, b = _day_month(values)
            self.families["numeric"] += len(values)
            self.first_over_12 += int(((a > 12) & (b <= 12)).sum())
            self.second_over_12 += int(((b > 12) & (a <= 12)).sum())
            differ = a != b
            self.differ += int(differ.sum())
            if self.example is None and differ.any():
                self.example = str(values.iloc[int(np.argmax(differ))])
            # the shapes (for the summary and the fast path) from a sample of distinct values
            part = _extract(_sample(values), _NUMERIC)
            self.local |= bool(part[9].isna().any())
            self.shapes.update(_shape_counts(part))
            s = s[~is_num]
        named = s.str.contains(_LETTERS) & s.str.contains(_YEAR)
        if named.any():
            self.families["named months"] += int(named.sum())
            self.local = True
            s = s[~named]
        if len(s):
            self.families["other"] += len(s)

    @property
    def decided(self) -> bool:
        """False while numeric values have been seen and none tells day from month."""
        if self.explicit or not self.families["numeric"]:
            return True
        return bool(self.first_over_12 or self.second_over_12)

    def _order(self, file: str | None) -> str | None:
        if not self.families["numeric"]:
            return None
        if self.first_over_12 or self.second_over_12:
            # both kinds of evidence: a mixed-up column; the majority decides and the others are
            # rejected as not matching the column's format
            return "DMY" if self.first_over_12 >= self.second_over_12 else "MDY"
        if self.explicit:
            return None
        if self.default_order:
            return self.default_order
        if not self.differ:
            return "MDY"  # day equals month in every value: either order reads the same
        example = f" such as {self.example!r}" if self.example else ""
        first, second = (self._strftime(o) for o in ORDERS)
        raise InputError(
            f"every day and month is 12 or less in dates{example}, so the column could be "
            f"day-first or month-first; say which with --date-format, e.g. "
            f"--date-format '{first}' or --date-format '{second}'",
            file=file,
            column=self.column,
        )

    def _strftime(self, order: str) -> str:
        if not self.shapes:
            return "%d/%m/%Y" if order == "DMY" else "%m/%d/%Y"
        return _shape(self.shapes.most_common(1)[0][0], order)

    def result(self, file: str | None = None) -> DateFormat:
        """The column's format; raises :class:`InputError` when day and month cannot be told
        apart (and no ``--date-format`` or profile default says which)."""
        order = self._order(file)
        parts = []
        total = sum(self.families.values())
        for name, n in self.families.most_common():
            if name == "other" or not n:
                continue
            if name == "numeric":
                label = f"{self._strftime(order or 'MDY')} ({_ORDER_WORDS[order or 'MDY']})"
            elif name == "explicit":
                label = f"{self.explicit} (--date-format)"
            elif name == "year-first":
                label = "%Y/%m/%d"
            else:
                label = name
            parts.append(label if n == total else f"{label} ×{n:,}")
        formats = ()
        if order in ORDERS:
            formats = tuple(_shape(k, order) for k, _ in self.shapes.most_common(6))
        return DateFormat(
            order=order,
            explicit=self.explicit,
            description=", ".join(parts) or "no dates",
            has_local_times=self.local,
            formats=formats,
        )


def detect_format(
    raw: pd.Series,
    *,
    column: str = "",
    explicit: str | None = None,
    default_order: str | None = None,
    file: str | None = None,
) -> DateFormat:
    """The format of a whole column at once (see :class:`DateSniffer`)."""
    sniffer = DateSniffer(column, explicit=explicit, default_order=default_order)
    sniffer.observe(raw)
    return sniffer.result(file)


def _named_groups(pattern: str) -> str:
    """``pattern`` with its capturing groups named g0, g1, ... (what Arrow's RE2 wants)."""
    out, n, i = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "(" and not pattern.startswith("(?", i):
            out.append(f"(?P<g{n}>")
            n += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _extract(s: pd.Series, pattern: str) -> pd.DataFrame:
    """``s.str.extract("^pattern$")`` in RE2 over Arrow (pandas' own loops in Python: 10x
    slower). Columns 0..n-1; a group that did not take part, and every group of a row that did
    not match, is NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    regex = "^" + _named_groups(pattern) + "$"
    arr = pa.array(s.astype(object).to_numpy(), type=pa.string(), from_pandas=True)
    res = pc.extract_regex(arr, regex)
    matched = np.asarray(res.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    cols = {}
    for k in range(res.type.num_fields):
        values = np.asarray(res.field(k).to_numpy(zero_copy_only=False), dtype=object)
        col = pd.Series(values, index=s.index, dtype=object)
        cols[k] = col.where(matched & (col != ""), np.nan)
    return pd.DataFrame(cols, index=s.index)


def _sample(values: pd.Series, n: int = 2000) -> pd.Series:
    """Up to ``n`` distinct values, the first ones met (deterministic)."""
    uniq = pd.unique(values)
    return pd.Series(uniq[:n], dtype=object)


def _day_month(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The first two numbers of numeric dates (day and month in some order), in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.astype(object).to_numpy(), type=pa.string(), from_pandas=True)
    res = pc.extract_regex(arr, r"^(?P<a>[0-9]{1,2})[/.-](?P<b>[0-9]{1,2})")
    a = pc.cast(res.field("a"), pa.int16()).to_numpy(zero_copy_only=False)
    b = pc.cast(res.field("b"), pa.int16()).to_numpy(zero_copy_only=False)
    return np.asarray(a), np.asarray(b)


def _strings(raw: pd.Series) -> pd.Series:
    return raw.fillna("").astype(str).str.strip()


def parse_dates(
    raw: pd.Series, fmt: DateFormat | None = None, tz: str = "UTC"
) -> tuple[pd.Series, pd.Series]:
    """UTC timestamps and a problem per value ("" when fine or empty; :data:`UNPARSEABLE`,
    :data:`OUT_OF_RANGE` or :data:`AMBIGUOUS` otherwise).

    ``fmt`` comes from :class:`DateSniffer` over the whole column. Without one, the values at hand
    decide, and numeric dates that cannot be told apart are :data:`AMBIGUOUS` (rejected, never
    guessed).
    """
    s = _strings(raw)
    if fmt is None:
        sniffer = DateSniffer("")
        sniffer.observe(s)
        fmt = sniffer.result() if sniffer.decided else DateFormat()
    # nanoseconds while parsing (what pandas gives), microseconds out (what the store keeps)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    problem = pd.Series("", index=s.index, dtype=object)
    todo = s != ""

    if fmt.explicit:
        parsed = pd.to_datetime(s[todo], format=fmt.explicit, errors="coerce")
        got = parsed.notna()
        if got.any():
            out[got[got].index] = _localise(parsed[got], tz)
        todo &= out.isna()

    epoch = todo & s.str.fullmatch(_EPOCH)
    if epoch.any():
        v = pd.to_numeric(s[epoch], errors="coerce")
        ms = v.where(v.abs() >= 1e11, v * 1000)  # 12-13 digits are milliseconds, 9-10 seconds
        out[epoch] = pd.to_datetime(ms, unit="ms", utc=True, errors="coerce")
        todo &= ~epoch

    iso = todo & s.str.fullmatch(_ISO)
    if iso.any():
        out[iso] = _parse_with_offsets(s[iso], tz, "ISO8601")
        todo &= ~iso

    left = todo & out.isna() & s.str.fullmatch(_YMD)
    if left.any():
        idx = left[left].index
        out[idx] = _assemble(_extract(s[idx], _YMD), (0, 2, 3), tz)
        todo[idx] = False

    left = todo & out.isna() & s.str.fullmatch(_NUMERIC)
    if left.any():
        idx = left[left].index
        if fmt.order in ORDERS:
            rest = idx
            for strftime in fmt.formats:  # the column's own shapes first: C speed
                parsed = pd.to_datetime(s[rest], format=strftime, errors="coerce")
                got = parsed.notna().to_numpy()
                if got.any():
                    out[rest[got]] = _localise(parsed[got], tz)
                    rest = rest[~got]
                if not len(rest):
                    break
            if len(rest):  # other shapes of the same order
                pos = (3, 2, 0) if fmt.order == "DMY" else (3, 0, 2)
                out[rest] = _assemble(_extract(s[rest], _NUMERIC), pos, tz)
        elif fmt.explicit:
            problem[idx] = f"date does not match {fmt.explicit}"
        else:
            # no order was decided: only values that read the same both ways are safe
            a, b = _day_month(s[idx])
            same = a == b
            if same.any():
                out[idx[same]] = _assemble(_extract(s[idx[same]], _NUMERIC), (3, 2, 0), tz)
            problem[idx[~same]] = AMBIGUOUS
        todo[idx] = False

    left = todo & out.isna() & s.str.contains(_LETTERS) & s.str.contains(_YEAR)
    if left.any():
        # named months and weekdays, per unique string; a month name settles the order
        uniq = pd.unique(s[left])
        parsed_u = {u: _dateutil(u, tz) for u in uniq}
        values = [parsed_u[v] for v in s[left]]
        out[left] = pd.to_datetime(pd.Series(values, index=s[left].index, dtype=object), utc=True)

    latest = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=366)
    out_of_range = out.notna() & ((out < EARLIEST) | (out > latest))
    out[out_of_range] = pd.NaT
    missing = (s != "") & out.isna() & (problem == "")
    problem[missing] = UNPARSEABLE
    problem[out_of_range] = OUT_OF_RANGE
    return out.dt.floor("us").astype("datetime64[us, UTC]"), problem


def _assemble(parts: pd.DataFrame, pos: tuple[int, int, int], tz: str) -> pd.Series:
    """Timestamps from extracted (year, month, day) at ``pos`` plus the shared time groups."""
    y, m, d = (parts[p] for p in pos)
    year = y.astype(int)
    year = year.where(y.str.len() == 4, np.where(year < 70, 2000 + year, 1900 + year))
    hour = parts[4].fillna("0").astype(int)
    ampm = parts[8].fillna("").str.lower().str.replace(".", "", regex=False)
    hour = hour.where(ampm == "", hour % 12 + np.where(ampm == "pm", 12, 0))
    frac = parts[7].fillna("").str.ljust(6, "0").str.slice(0, 6).replace("", "0").astype(int)
    frame = pd.DataFrame(
        {
            "year": year,
            "month": m.astype(int),
            "day": d.astype(int),
            "hour": hour,
            "minute": parts[5].fillna("0").astype(int),
            "second": parts[6].fillna("0").astype(int),
            "microsecond": frac,
        }
    )
    bad_clock = (ampm != "") & (parts[4].fillna("0").astype(int) > 12)
    ts = pd.to_datetime(frame, errors="coerce")
    ts[bad_clock] = pd.NaT
    offset = parts[9].fillna("")
    out = pd.Series(pd.NaT, index=parts.index, dtype="datetime64[ns, UTC]")
    naive = offset == ""
    if naive.any():
        out[naive] = _localise(ts[naive], tz)
    if (~naive).any():
        iso = ts[~naive].dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset[~naive]
        out[~naive] = pd.to_datetime(iso, format="ISO8601", utc=True, errors="coerce")
    return out


def _parse_with_offsets(s: pd.Series, tz: str, fmt: str) -> pd.Series:
    aware = s.str.fullmatch(_HAS_OFFSET)
    res = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        res[aware] = pd.to_datetime(s[aware], format=fmt, utc=True, errors="coerce")
    naive = ~aware
    if naive.any():
        res[naive] = _localise(pd.to_datetime(s[naive], format=fmt, errors="coerce"), tz)
    return res


def _localise(ts: pd.Series, tz: str) -> pd.Series:
    ts = pd.to_datetime(ts, errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        return ts.dt.tz_convert("UTC")
    # a local time that falls in a DST gap or overlap is shifted, not dropped
    return ts.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").dt.tz_convert("UTC")


def _dateutil(value: str, tz: str) -> pd.Timestamp:
    from dateutil import parser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown zone names such as "WIB" are dropped
            dt = parser.parse(value, fuzzy=False, ignoretz=False)
    except (ValueError, OverflowError, TypeError):
        return pd.NaT
    ts = pd.Timestamp(dt)
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        except (ValueError, TypeError):
            return pd.NaT
    return ts.tz_convert("UTC")


def parse_time_column(
    raw: pd.Series,
    *,
    column: str,
    date_format: str | None = None,
    tz: str = "UTC",
    file: str | None = None,
    row_offset: int = 1,
    rows: pd.Series | np.ndarray | None = None,
) -> tuple[pd.Series, DateFormat]:
    """A whole column of user-given times, all of which must parse (``tag train --time-col``,
    trend input): the format is detected over the column, and the first bad value is an
    :class:`InputError` naming its row (``rows`` gives each value's row number in the file;
    by default its position plus ``row_offset``)."""
    explicit = date_format or None
    if explicit:
        check_strftime(explicit)
    fmt = detect_format(raw, column=column, explicit=explicit, file=file)
    ts, problem = parse_dates(raw, fmt, tz)
    bad = (problem != "") | ts.isna()
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        row = int(np.asarray(rows)[at]) if rows is not None else at + row_offset
        value = str(raw.iloc[at]) if pd.notna(raw.iloc[at]) else ""
        why = problem.iloc[at] or "missing date"
        raise InputError(f"{why}: {value!r} ({fmt.description})", file=file, row=row, column=column)
    return ts, fmt


__all__ = [
    "AMBIGUOUS",
    "EARLIEST",
    "OUT_OF_RANGE",
    "UNPARSEABLE",
    "DateFormat",
    "DateSniffer",
    "check_strftime",
    "detect_format",
    "parse_dates",
    "parse_time_column",
]
