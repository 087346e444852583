"""A profile maps one export's columns onto the canonical record. Profiles are data: candidate
column names per canonical field, plus a few small hooks (ids, derived fields) where a source
needs code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.clean import parse_datetimes
from analyzer.ingest.options import IngestOptions

TEXT_JOINER = " — "


def column_key(name: str) -> str:
    """Header names compared loosely: "Unique Key", "unique_key" and "unique-key" are one column."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


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
    """Per-file facts the hooks may need."""

    path: Path
    dataset: str
    tz: str
    explicit_dataset: bool = False  # --dataset was given: it goes into every id


@dataclass(frozen=True)
class Profile:
    """Candidate column names per canonical field (the first present wins) and redaction policy.

    ``signature`` columns must all be present for auto-detection; ``only`` (when set) lists every
    column the export may have, which tells Boston's files from other GeoReport v2 exports.
    Attribute columns are redacted as free text unless listed in ``safe`` (codes, counts, URLs) or
    ``address`` (house numbers dropped); unknown columns are therefore redacted by default.
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
        return replace(
            prof, overrides=dict(changes), join_text=prof.join_text or len(options.text_cols) > 1
        )

    def resolve(self, columns: Sequence[str], file: str) -> ColumnMap:
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
        if not text:
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

    def created_times(self, raw: pd.Series, ctx: Context) -> tuple[pd.Series, pd.Series]:
        return parse_datetimes(raw, ctx.tz)

    def derive(self, frame: pd.DataFrame, out: pd.DataFrame, cmap: ColumnMap) -> None:
        """Fill canonical fields that need more than a column copy (``out`` is edited in place)."""
        return None


P = TypeVar("P", bound=Profile)


def inherit(base: Profile, cls: type[P], **changes: Any) -> P:
    """A profile of class ``cls`` that starts from ``base``'s settings (config reuse, not code)."""
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    values.update(changes)
    return cls(**values)
