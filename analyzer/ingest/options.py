"""What an ingest is asked to do, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.ingest.formats import DEFAULT_CHUNK_ROWS

# What a record is, whatever its source is called: a service request, a survey answer, a comment
# from an engagement (consultation) platform.
KINDS = ("311", "survey", "engagement")


@dataclass(frozen=True)
class IngestOptions:
    """Column overrides and switches for one ingest; ``None`` means "the profile decides".

    ``text_cols`` with more than one column joins their values with " — ". ``dataset`` names the
    collection inside record ids (``polis:<dataset>:<comment-id>``); by default it comes from the
    file (the Polis conversation folder, or the file name). ``tz`` is the zone of times written
    without an offset. ``force`` re-reads a file whose hash is already in the store.
    ``kind`` says what the records are (see :data:`KINDS`; default: the profile's), ``source``
    where they come from (any name). ``date_format`` (strftime) settles day-first versus
    month-first dates; ``keep_boilerplate`` keeps placeholder and repeated texts in the analysis.
    """

    profile: str | None = None
    id_col: str | None = None
    text_cols: tuple[str, ...] = ()
    time_col: str | None = None
    updated_col: str | None = None
    label_col: str | None = None
    status_col: str | None = None
    lat_col: str | None = None
    lon_col: str | None = None
    area_col: str | None = None
    source: str | None = None
    kind: str | None = None
    dataset: str | None = None
    tz: str = "UTC"
    date_format: str | None = None
    keep_boilerplate: bool = False
    keep_raw: bool = False
    force: bool = False
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@dataclass
class IngestReport:
    """Counts for one file. ``rows_loaded + rows_rejected == rows_read`` always holds;
    ``rows_loaded`` splits into ``rows_inserted + rows_updated + rows_unchanged``."""

    path: str
    file_hash: str
    profile: str
    format: str = ""
    encoding: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    rows_truncated: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False  # the same file was already ingested with the same profile
    source: str = ""
    kind: str = ""
    rows_removed: int = 0  # records of an earlier read of this file that it no longer holds
    date_formats: dict[str, str] = field(default_factory=dict)  # time column -> format used
    text_found: str | None = None  # the text column found by its name and values (no --text-col)
    time_found: str | None = None  # the created time column found by its name (no --time-col)
    close_found: str | None = None  # the close time column found by its name (no --updated-col)
    id_found: str | None = None  # the id column a plain table's names gave
    location_found: str | None = None  # a column holding both coordinates, read for lat / lon
    category_found: str | None = None  # the category column a plain table's names gave
    area_found: str | None = None  # the area column a plain table's names gave
    first_date: str | None = None  # created time range of the rows loaded (ISO, UTC)
    last_date: str | None = None
    rows_undated: int = 0  # rows loaded with an empty time (kept; not in emerging needs)
    boilerplate: list[tuple[str, int]] = field(default_factory=list)  # flagged texts, counts
    rows_boilerplate: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)
