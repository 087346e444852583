"""One chunk of raw rows -> canonical, redacted records plus rejected rows with their reasons.

Redaction happens here, before anything is written: the text, every attribute column that may
hold prose, and the content kept for rejected rows all pass through :mod:`analyzer.ingest.privacy.redact`, each
distinct string once per chunk. Known platform placeholders are flagged here (``boilerplate``);
texts repeated across the whole file are flagged when it has been read (``ingest.load``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.common.fields import READ_FIELDS
from analyzer.common.hashing import text_hash
from analyzer.ingest.boilerplate import is_placeholder
from analyzer.ingest.clean import (
    ATTRIBUTE_CAP,
    TEXT_CAP,
    cap_values,
    clean_text,
    parse_coordinates,
    strip_markup_values,
)
from analyzer.ingest.dates import parse_dates
from analyzer.ingest.formats import Chunk
from analyzer.ingest.profiles.base import ColumnMap, Context, Profile, column_key

STAGE_COLUMNS = (
    "row_number",
    "id",
    "source",
    "text",
    "created_at",
    "updated_at",
    "category",
    "status",
    "lat",
    "lon",
    "area",
    "attributes",
    "text_hash",
    "raw_text",
    "kind",
    "boilerplate",
)
REJECT_COLUMNS = ("row_number", "column_name", "reason", "content")

# Values that cannot hold personal data and need no trip through the redactor: short numbers,
# decimals such as coordinates, booleans, ISO dates. (Long digit runs are NOT here: phone numbers.)
_PLAIN_VALUE = re.compile(
    r"-?\d{1,6}(?:\.\d+)?|true|false|yes|no|"
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)


@dataclass
class Prepared:
    records: pd.DataFrame  # STAGE_COLUMNS
    rejects: pd.DataFrame  # REJECT_COLUMNS
    truncated: int


def _col(frame: pd.DataFrame, name: str | None) -> pd.Series:
    # JSON chunks may lack a key that the first chunk had: treat it as empty
    if name and name in frame.columns:
        return frame[name].astype(str)
    return pd.Series("", index=frame.index, dtype=object)


def _redact_unique(values: list[str]) -> dict[str, str]:
    from analyzer.ingest.privacy.redact import redact_many

    todo = [v for v in values if v and not _PLAIN_VALUE.fullmatch(v)]
    out = {v: v for v in values}
    if todo:
        for src, red in zip(todo, redact_many(todo), strict=True):
            out[src] = red.text
    return out


def _redact_addresses(values: pd.Series) -> pd.Series:
    from analyzer.ingest.privacy.redact import redact_address

    uniq = pd.unique(values)
    mapping = {u: (redact_address(u) or "") if u else "" for u in uniq}
    return values.map(mapping)


def _json_lines(frame: pd.DataFrame) -> list[str]:
    if len(frame) == 0:
        return []
    if len(frame.columns) == 0:
        return ["{}"] * len(frame)
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    # pandas escapes "/" as "\/"; valid JSON, but unreadable in URLs. Replacing the two-character
    # sequence is exact: an escaped backslash before a slash is "\\\/" and still decodes right.
    return text.replace("\\/", "/").rstrip("\n").split("\n")


def prepare_chunk(
    chunk: Chunk, profile: Profile, cmap: ColumnMap, ctx: Context, *, keep_raw: bool = False
) -> Prepared:
    """Map, clean, redact and validate one chunk (vectorised; rows keep their file numbers)."""
    frame = profile.reshape(chunk.frame)
    index = frame.index
    rows = pd.Series(np.arange(chunk.first_row, chunk.first_row + len(frame)), index=index)

    # -- text: plain, capped, then redacted ----------------------------------------------------
    raw_text = profile.joined_text(frame, cmap.text)
    text, truncated_from = clean_text(raw_text, TEXT_CAP)

    # -- attribute columns: what the canonical fields do not hold -------------------------------
    mapped = cmap.mapped()
    attr_cols = [c for c in frame.columns if c not in mapped]
    # codes, counts, URLs and times hold no prose: they skip the redactor
    safe = {column_key(c) for c in (*profile.safe, *profile.times)}
    address = {column_key(c) for c in profile.address}
    free_cols = [c for c in attr_cols if column_key(c) not in safe | address]
    if len(cmap.text) > 1:
        free_cols += list(cmap.text)  # joined parts are shown one by one in reject content

    capped = {c: cap_values(_col(frame, c), ATTRIBUTE_CAP) for c in {*attr_cols, *free_cols}}
    for c in free_cols:
        # prose columns may carry HTML too; the store holds plain text everywhere
        capped[c] = strip_markup_values(capped[c])
    strings: set[str] = set(pd.unique(text))
    for c in free_cols:
        strings.update(pd.unique(capped[c]))
    redacted = _redact_unique(sorted(strings))

    text_red = text.map(redacted)
    content_cols: dict[str, pd.Series] = {}
    for c in frame.columns:
        key = column_key(c)
        if c in free_cols:
            content_cols[c] = capped[c].map(redacted)
        elif c in cmap.text:
            content_cols[c] = text_red  # a single text column: its cleaned, redacted form
        elif key in address:
            content_cols[c] = _redact_addresses(capped[c])
        elif c in capped:
            content_cols[c] = capped[c]
        else:
            content_cols[c] = cap_values(_col(frame, c), ATTRIBUTE_CAP)
    content = pd.DataFrame(content_cols, index=index)

    # -- fields --------------------------------------------------------------------------------
    id_raw = _col(frame, cmap.id) if cmap.id else rows.astype(str)
    ids = profile.make_ids(id_raw.astype(str), ctx)
    created, created_problem = _times(frame, cmap.created, profile, ctx)
    updated, updated_problem = _times(frame, cmap.updated, profile, ctx)
    lat, lon, coord_problem, coord_which = parse_coordinates(
        _col(frame, cmap.lat), _col(frame, cmap.lon)
    )
    out = pd.DataFrame(
        {
            "category": _col(frame, cmap.category).str.strip(),
            "status": _col(frame, cmap.status).str.strip(),
            "area": _col(frame, cmap.area).str.strip(),
        },
        index=index,
    )
    profile.derive(frame, out, cmap)

    # -- reasons: the first problem of a row is the one recorded --------------------------------
    reason = pd.Series("", index=index, dtype=object)
    column = pd.Series("", index=index, dtype=object)

    def flag(mask: pd.Series, why: pd.Series | str, col: pd.Series | str | None) -> None:
        m = mask & (reason == "")
        if not m.any():
            return
        reason[m] = why[m] if isinstance(why, pd.Series) else why
        column[m] = col[m] if isinstance(col, pd.Series) else (col or "")

    if cmap.id:
        flag(ids == "", "missing id", cmap.id)
    flag(created_problem != "", created_problem, cmap.created)
    flag(updated_problem != "", updated_problem, cmap.updated)
    coord_col = coord_which.map({"lat": cmap.lat or "", "lon": cmap.lon or ""}).fillna("")
    flag(coord_problem != "", coord_problem, coord_col)
    flag(text == "", "empty text", "+".join(cmap.text))

    bad = reason != ""
    rejects = pd.DataFrame(
        {
            "row_number": rows[bad].astype("int64"),
            "column_name": column[bad],
            "reason": reason[bad],
            "content": _json_lines(content[bad]),
        }
    )

    # -- accepted records ---------------------------------------------------------------------
    ok = ~bad
    attr_frame = content.loc[ok, attr_cols]
    for c in profile.time_columns(list(frame.columns), cmap):
        if c in attr_frame.columns:
            # other times (acknowledged, closed...) as ISO 8601 UTC, read like the created time
            ts, _ = _times(attr_frame, c, profile, ctx)
            iso = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            attr_frame[c] = iso.where(ts.notna(), attr_frame[c])
    # the names later steps read (a closing note, an expected time) as they read them
    attr_frame = attr_frame.rename(
        columns={
            c: column_key(c)
            for c in attr_frame.columns
            if column_key(c) in READ_FIELDS and column_key(c) not in attr_frame.columns
        }
    )
    attributes = _json_lines(attr_frame)
    cut = truncated_from[ok]
    if (cut > 0).any():
        # record the cut where it happened; the original length tells how much was dropped
        attributes = [
            _with_key(a, "text_truncated_from", int(n)) if n else a
            for a, n in zip(attributes, cut.tolist(), strict=True)
        ]
    text_ok = text_red[ok]
    hashes = {t: text_hash(t) for t in pd.unique(text_ok)}
    records = pd.DataFrame(
        {
            "row_number": rows[ok].astype("int64"),
            "id": ids[ok],
            "source": profile.source,
            "text": text_ok,
            "created_at": created[ok],
            "updated_at": updated[ok],
            "category": _none_if_empty(out.loc[ok, "category"]),
            "status": _none_if_empty(out.loc[ok, "status"]),
            "lat": lat[ok],
            "lon": lon[ok],
            "area": _none_if_empty(out.loc[ok, "area"]),
            "attributes": attributes,
            "text_hash": text_ok.map(hashes),
            "raw_text": raw_text[ok].str.slice(0, TEXT_CAP * 4) if keep_raw else None,
            "kind": profile.record_kind,
            "boilerplate": False if ctx.keep_boilerplate else is_placeholder(text_ok),
        },
        index=index[ok],
    )
    return Prepared(records, rejects, int((truncated_from > 0).sum()))


def _times(
    frame: pd.DataFrame, column: str | None, profile: Profile, ctx: Context
) -> tuple[pd.Series, pd.Series]:
    """One time column parsed in the format decided for the whole file (``ctx.dates``)."""
    if not column:
        return (
            pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]"),
            pd.Series("", index=frame.index, dtype=object),
        )
    raw = profile.time_strings(_col(frame, column))
    return parse_dates(raw, ctx.dates.get(column), ctx.tz)


def _none_if_empty(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s != "", None)


def _with_key(obj_json: str, key: str, value: object) -> str:
    obj = json.loads(obj_json)
    obj[key] = value
    return json.dumps(obj, ensure_ascii=False)
