"""A profile maps one export's columns onto the canonical record. Profiles are data: candidate
column names per canonical field, plus a few small hooks (ids, derived fields) where a source
needs code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.dates import DateFormat
from analyzer.ingest.options import KINDS, IngestOptions

TEXT_JOINER = " — "


def column_key(name: str) -> str:
    """Header names compared loosely: "Unique Key", "unique_key" and "unique-key" are one column,
    and accents do not count ("Número" is ``numero``, "Categoría" ``categoria``)."""
    folded = unicodedata.normalize("NFKD", str(name).strip().lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]+", "_", folded).strip("_")


def find_column(columns: Sequence[str], candidates: Iterable[str]) -> str | None:
    """The first candidate present in ``columns`` (loosely compared), as spelled in the file."""
    by_key: dict[str, str] = {}
    for c in columns:
        by_key.setdefault(column_key(c), c)
    for cand in candidates:
        if cand in columns:
            return cand
        hit = by_key.get(column_key(cand))
        if hit is not None:
            return hit
    return None


def slug(text: str) -> str:
    return re.sub(r"[^0-9a-z._-]+", "-", text.strip().lower()).strip("-") or "data"


@dataclass(frozen=True)
class ColumnMap:
    """A profile resolved against one file's header: the actual column for each canonical field."""

    id: str | None
    text: tuple[str, ...]
    created: str | None
    updated: str | None
    category: str | None
    status: str | None
    lat: str | None
    lon: str | None
    area: str | None

    def mapped(self) -> set[str]:
        cols = {self.id, self.created, self.updated, self.category, self.status}
        cols |= {self.lat, self.lon, self.area, *self.text}
        return {c for c in cols if c}


@dataclass(frozen=True)
class Context:
    """Per-file facts the hooks may need. ``dates`` holds each time column's format, decided over
    the whole file (``analyzer.ingest.dates``); a column without one is judged chunk by chunk."""

    path: Path
    dataset: str
    tz: str
    explicit_dataset: bool = False  # --dataset was given: it goes into every id
    dates: dict[str, DateFormat] = field(default_factory=dict)
    keep_boilerplate: bool = False


@dataclass(frozen=True)
class Profile:
    """Candidate column names per canonical field (the first present wins) and redaction policy.

    ``signature`` columns must all be present for auto-detection; ``only`` (when set) lists every
    column the export may have, which tells Boston's files from other GeoReport v2 exports.
    Attribute columns are redacted as free text unless listed in ``safe`` (codes, counts, URLs) or
    ``address`` (house numbers dropped); unknown columns are therefore redacted by default.
    ``drop`` columns (people's names, reporter objects) are never stored, not even redacted.
    ``times`` are other time columns (acknowledged, closed...): kept in the attributes as ISO 8601
    UTC, parsed with the same per-column format detection as the created time.

    What a record is (``kind``: 311, survey, engagement) is separate from where it comes from
    (``source``, any name): ``record_kind`` is the explicit kind, else the source when it is a
    kind's name (what earlier versions went by), else the profile's ``default_kind``.
    """

    name: str
    source: str
    id_prefix: str
    text: tuple[str, ...]
    id: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    lat: tuple[str, ...] = ()
    lon: tuple[str, ...] = ()
    area: tuple[str, ...] = ()
    address: tuple[str, ...] = ()
    safe: tuple[str, ...] = ()
    signature: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    join_text: bool = False  # all text candidates present are joined (else: the first present)
    dataset_in_id: bool = False
    description: str = ""
    priority: int = 0  # higher is tried first when several profiles match a header
    overrides: dict[str, object] = field(default_factory=dict, compare=False)
    default_kind: str = "311"
    kind: str | None = None  # --kind; None: see ``record_kind``
    drop: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    date_order: str | None = None  # the platform's documented day/month order ("MDY", "DMY")
    flag_repeated: bool = True  # a text shared by many rows is boilerplate (see ingest.boilerplate)

    @property
    def record_kind(self) -> str:
        if self.kind:
            return self.kind
        return self.source if self.source in KINDS else self.default_kind

    # -- detection and resolution ----------------------------------------------------------
    def matches(self, columns: Sequence[str]) -> bool:
        if not self.signature:
            return False
        if any(find_column(columns, [c]) is None for c in self.signature):
            return False
        if self.only:
            allowed = {column_key(c) for c in self.only}
            return all(column_key(c) in allowed for c in columns)
        return True

    def with_options(self, options: IngestOptions) -> Profile:
        """The profile with the user's ``--*-col`` choices in front of its own candidates."""
        changes: dict[str, tuple[str, ...]] = {}
        for fld, value in (
            ("id", options.id_col),
            ("created", options.time_col),
            ("updated", options.updated_col),
            ("category", options.label_col),
            ("status", options.status_col),
            ("lat", options.lat_col),
            ("lon", options.lon_col),
            ("area", options.area_col),
        ):
            if value:
                changes[fld] = (value,)
        if options.text_cols:
            changes["text"] = tuple(options.text_cols)
        prof = replace(self, **changes) if changes else self
        if options.source:
            prof = replace(prof, source=options.source)
        if options.kind:
            prof = replace(prof, kind=options.kind)
        if options.text_cols and not self.flag_repeated:
            # the profile's own text is made of category fields (Socrata); a chosen column is prose
            prof = replace(prof, flag_repeated=True)
        return replace(
            prof, overrides=dict(changes), join_text=prof.join_text or len(options.text_cols) > 1
        )

    def time_columns(self, columns: Sequence[str], cmap: ColumnMap) -> list[str]:
        """Every time column of a file: created, updated and the profile's other ``times``."""
        found = [c for c in (cmap.created, cmap.updated) if c]
        for cand in self.times:
            col = find_column(columns, [cand])
            if col and col not in found and col not in cmap.mapped():
                found.append(col)
        return found

    def resolve(self, columns: Sequence[str], file: str, *, require_text: bool = True) -> ColumnMap:
        found = ", ".join(map(str, columns)) or "(none)"
        # a column the user named must exist; a profile's own candidates may be absent
        for fld, names in self.overrides.items():
            for col in names:  # type: ignore[union-attr]
                if find_column(columns, [col]) is None:
                    raise InputError(
                        f"no column {col!r} (given for {fld}); columns found: {found}", file=file
                    )
        if self.join_text:
            text = tuple(c for c in (find_column(columns, [t]) for t in self.text) if c)
        else:
            first = find_column(columns, self.text)
            text = (first,) if first else ()
        if not text and require_text:
            wanted = " or ".join(repr(t) for t in self.text) or "--text-col"
            raise InputError(
                f"no text column for profile {self.name!r} (expected {wanted}); "
                f"columns found: {found}",
                file=file,
            )

        def pick(cands: tuple[str, ...]) -> str | None:
            return find_column(columns, cands) if cands else None

        return ColumnMap(
            id=pick(self.id),
            text=text,
            created=pick(self.created),
            updated=pick(self.updated),
            category=pick(self.category),
            status=pick(self.status),
            lat=pick(self.lat),
            lon=pick(self.lon),
            area=pick(self.area),
        )

    def default_dataset(self, path: Path) -> str:
        name = path.name
        for suffix in (".gz", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        return slug(name)

    # -- hooks, vectorised over one chunk ---------------------------------------------------
    def make_ids(self, raw: pd.Series, ctx: Context) -> pd.Series:
        with_dataset = self.dataset_in_id or ctx.explicit_dataset
        prefix = f"{self.id_prefix}:{ctx.dataset}:" if with_dataset else f"{self.id_prefix}:"
        ids = raw.str.strip()
        return (prefix + ids).where(ids != "", "")

    def joined_text(self, frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
        """The text of each row: the one text column, or the non-empty parts joined."""

        def col(name: str) -> pd.Series:
            # JSON chunks may lack a key that the first chunk had: treat it as empty
            if name in frame.columns:
                return frame[name].astype(str)
            return pd.Series("", index=frame.index, dtype=object)

        if len(cols) == 1:
            return col(cols[0])
        parts = [col(c).str.strip() for c in cols]
        joined = parts[0]
        for p in parts[1:]:
            joined = joined.where(p == "", joined.where(joined == "", joined + TEXT_JOINER) + p)
        return joined

    def time_strings(self, raw: pd.Series) -> pd.Series:
        """A time column's values as the date parser should read them (a hook: surveys write a
        bare year)."""
        return raw

    def reshape(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows as the column map expects them: nested values flattened, people's names
        dropped (a hook for API exports; a no-op for flat tables)."""
        drop = {column_key(c) for c in self.drop}
        if not drop:
            return frame
        return frame.drop(columns=[c for c in frame.columns if column_key(c) in drop])

    def derive(self, frame: pd.DataFrame, out: pd.DataFrame, cmap: ColumnMap) -> None:
        """Fill canonical fields that need more than a column copy (``out`` is edited in place)."""
        return None


P = TypeVar("P", bound=Profile)


def inherit(base: Profile, cls: type[P], **changes: Any) -> P:
    """A profile of class ``cls`` that starts from ``base``'s settings (config reuse, not code)."""
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    values.update(changes)
    return cls(**values)
