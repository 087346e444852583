"""Vectorised cleaning and parsing of string columns: text and coordinates (dates: ``dates``).

Everything here works on whole pandas Series (one chunk at a time) because a Python loop per row
is what makes a 300k-row ingest take minutes instead of seconds.
"""

from __future__ import annotations

import html
import re

import pandas as pd

# A resident's text is capped: a 10 MB field is an export accident, not a complaint, and it would
# stall redaction and embedding. The cut is recorded in the record's attributes.
TEXT_CAP = 20_000
# Other columns are context, not content; keep each one short.
ATTRIBUTE_CAP = 2_000

# Patterns used on whole columns are plain strings, not compiled: pandas hands a string pattern on
# an Arrow-backed column to RE2 in C++, a compiled one to a Python loop (10x slower). pandas also
# falls back to Python for \s always, and for \d, \w, \b on non-ASCII data, so these patterns
# spell their classes out ([0-9], [ \t]); the non-ASCII characters in them are literal.
_ZERO_WIDTH = "[\u200b-\u200d\u2060\ufeff]"
_SPACE_LIKE = (
    "[\\x00-\\x08\\x0b-\\x1f\\x7f"
    "\u0085\u00a0\u2000-\u200a\u200e\u200f\u2028\u2029\u202f\u205f\u3000]"
)
# a run of whitespace, or a single non-space whitespace character: replacing every single space
# with a space would cost as much as the rest of the cleaning together
_WS_RUN = "[ \\t\\n\\r\\f\\v]{2,}|[\\t\\n\\r\\f\\v]"
# whole blocks whose content is code, not text
_CODE_BLOCK = re.compile(
    r"<\s*(script|style|iframe|object|noscript|template)\b[^>]*>.*?(?:<\s*/\s*\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# a tag starts with a letter, "/" or "!" right after "<", so "a < b" and "<3" are left alone
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_MARKUP_HINT = r"</?[A-Za-z!]|&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);"


def strip_markup(text: str) -> str:
    """Plain text from a string that may hold HTML: tags dropped, entities decoded, code removed."""
    # twice: the second pass catches markup that was entity-encoded (&lt;script&gt;...)
    for _ in range(2):
        text = _CODE_BLOCK.sub(" ", text)
        text = _COMMENT.sub(" ", text)
        text = _TAG.sub(" ", text)
        text = html.unescape(text)
    # anything still looking like a tag after two rounds is dropped outright
    return _TAG.sub(" ", text).replace("<", "‹").replace(">", "›") if _TAG.search(text) else text


def strip_markup_values(s: pd.Series) -> pd.Series:
    """:func:`strip_markup` on the values that look like markup (each distinct value once)."""
    has_markup = s.str.contains(_MARKUP_HINT, regex=True)
    if not has_markup.any():
        return s
    mapping = {u: strip_markup(u).strip() for u in pd.unique(s[has_markup])}
    return s.where(~has_markup, s[has_markup].map(mapping))


def clean_text(raw: pd.Series, cap: int = TEXT_CAP) -> tuple[pd.Series, pd.Series]:
    """Plain, single-spaced text capped at ``cap`` characters, and each text's original length
    where it was cut (0 elsewhere)."""
    s = raw.fillna("").astype(str)
    lengths = s.str.len()
    too_long = lengths > cap
    if too_long.any():
        # bound the work of the regexes below on pathological fields before cleaning them
        s = s.where(~too_long, s.str.slice(0, cap * 2))
    s = strip_markup_values(s)
    s = s.str.replace(_ZERO_WIDTH, "", regex=True).str.replace(_SPACE_LIKE, " ", regex=True)
    s = s.str.replace(_WS_RUN, " ", regex=True).str.strip()
    cut = s.str.len() > cap
    if cut.any():
        s = s.where(~cut, s[cut].map(_cut_at_space))
    truncated_from = lengths.where(too_long | cut, 0).astype("int64")
    return s, truncated_from


def _cut_at_space(text: str, cap: int = TEXT_CAP) -> str:
    # cut on a space so a phone number or name is not split into a fragment redaction can't see
    head = text[:cap]
    space = head.rfind(" ", cap - 200)
    return head[:space] if space > 0 else head


def cap_values(s: pd.Series, cap: int = ATTRIBUTE_CAP) -> pd.Series:
    long = s.str.len() > cap
    if not long.any():
        return s
    return s.where(~long, s[long].str.slice(0, cap) + "…")


# -- coordinates ------------------------------------------------------------------------------


_DECIMAL_COMMA = r"^([+-]?[0-9]{1,3}),([0-9]+)$"


def parse_coordinates(
    lat_raw: pd.Series, lon_raw: pd.Series
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Floats for latitude/longitude, a per-row problem ("" when fine, "non-numeric coordinates",
    "coordinates out of range") and which value has it ("lat" / "lon"). (0, 0) and half-missing
    pairs become missing, not errors: both are how exports spell "not geocoded"."""
    lat_s = lat_raw.fillna("").astype(str).str.strip()
    lon_s = lon_raw.fillna("").astype(str).str.strip()
    # a decimal comma ("40,4392"), as spreadsheets write numbers in much of Europe and Latin
    # America; a coordinate never has a thousands separator, so the comma can only be decimal
    lat_s = lat_s.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True)
    lon_s = lon_s.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True)
    lat = pd.to_numeric(lat_s.where(lat_s != "", None), errors="coerce").astype("float64")
    lon = pd.to_numeric(lon_s.where(lon_s != "", None), errors="coerce").astype("float64")
    problem = pd.Series("", index=lat_s.index, dtype=object)
    which = pd.Series("", index=lat_s.index, dtype=object)

    lat_bad_num = (lat_s != "") & lat.isna()
    lon_bad_num = (lon_s != "") & lon.isna()
    lat_range = ~lat_bad_num & lat.notna() & ~(lat.abs() <= 90)  # also catches inf
    lon_range = ~lon_bad_num & lon.notna() & ~(lon.abs() <= 180)
    # report lon first so that, when both are wrong, the latitude (read first by people) wins
    problem[lon_range], which[lon_range] = "coordinates out of range", "lon"
    problem[lat_range], which[lat_range] = "coordinates out of range", "lat"
    problem[lon_bad_num], which[lon_bad_num] = "non-numeric coordinates", "lon"
    problem[lat_bad_num], which[lat_bad_num] = "non-numeric coordinates", "lat"

    missing = lat.isna() | lon.isna() | ((lat == 0) & (lon == 0)) | (problem != "")
    return lat.mask(missing), lon.mask(missing), problem, which


_NUM = r"(-?\d{1,3}(?:\.\d+)?)"
# one column that holds both coordinates, as exports write it: GeoJSON ({"type": "Point",
# "coordinates": [lon, lat]}), Socrata's location object ({"latitude": "..", "longitude": ".."}),
# WKT ("POINT (lon lat)") and a bare pair ("(lat, lon)", Chicago's and Honolulu's LOCATION)
_POINT_LON_LAT = (
    re.compile(r'"coordinates"\s*:\s*\[\s*' + _NUM + r"\s*,\s*" + _NUM),
    re.compile(r"(?i)^\s*POINT\s*\(\s*" + _NUM + r"\s+" + _NUM + r"\s*\)\s*$"),
    re.compile(r'"longitude"\s*:\s*"?' + _NUM + r'"?\s*,\s*"latitude"\s*:\s*"?' + _NUM),
)
_POINT_LAT_LON = (
    re.compile(r"^\s*\(?\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*\)?\s*$"),
    re.compile(r'"latitude"\s*:\s*"?' + _NUM + r'"?\s*,\s*"longitude"\s*:\s*"?' + _NUM),
)


def point_coordinates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Latitude and longitude (as text, "" where none) from a column that holds both: GeoJSON,
    a Socrata location object, WKT or a "(lat, lon)" pair. A value none of these read, or out of
    range, gives "": missing, not an error, since such a column is found by its name."""
    s = values.fillna("").astype(str)
    lat = pd.Series("", index=s.index, dtype=object)
    lon = pd.Series("", index=s.index, dtype=object)
    shapes = [(p, 1, 0) for p in _POINT_LON_LAT] + [(p, 0, 1) for p in _POINT_LAT_LON]
    for pattern, i_lat, i_lon in shapes:
        todo = lat == ""
        if not todo.any():
            break
        got = s[todo].str.extract(pattern)
        ok = got.notna().all(axis=1)
        if not ok.any():
            continue
        la = pd.to_numeric(got[i_lat], errors="coerce")
        lo = pd.to_numeric(got[i_lon], errors="coerce")
        ok &= (la.abs() <= 90) & (lo.abs() <= 180) & ~((la == 0) & (lo == 0))
        lat[ok[ok].index] = got.loc[ok, i_lat]
        lon[ok[ok].index] = got.loc[ok, i_lon]
    return lat, lon
