"""``ingest_file``: read, map, clean/redact/validate, stage, upsert; one transaction per file."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.dates import DateFormat, DateSniffer, check_strftime
from analyzer.ingest.formats import Chunk, FileInfo, iter_chunks, sniff
from analyzer.ingest.load import FileLoader
from analyzer.ingest.options import KINDS, IngestOptions, IngestReport
from analyzer.ingest.profiles import (
    PROFILES,
    ColumnMap,
    Context,
    Profile,
    detect_profile,
    get_profile,
    other_matching_profile,
)
from analyzer.ingest.profiles.plain import PLAIN_CSV, POINT_LAT, point_column
from analyzer.ingest.text_columns import find_text_column, text_column_candidates
from analyzer.ingest.time_columns import find_close_column, find_time_column
from analyzer.ingest.validate import prepare_chunk

if TYPE_CHECKING:
    from analyzer.store.database import Store

log = logging.getLogger("analyzer.ingest")

# progress(rows_read_so_far, share_of_file_read)
ProgressCallback = Callable[[int, float], None]


def choose_profile(columns: list[str], options: IngestOptions) -> Profile:
    """The named profile, else the detected one, else plain ``csv`` when --text-col was given."""
    if options.profile:
        base = get_profile(options.profile)
    else:
        try:
            base = PROFILES[detect_profile(columns)]
        except InputError as exc:
            if not options.text_cols:
                hint = guess_text_column(columns)
                hinted = exc.message + (f" (e.g. --text-col {hint})" if hint else "")
                raise InputError(hinted) from None
            base = PROFILES["csv"]
    if base.name == "csv" and not options.text_cols:
        found = ", ".join(columns) or "(none)"
        raise InputError(f"profile 'csv' needs --text-col; columns found: {found}")
    return base.with_options(options)


def guess_text_column(columns: list[str]) -> str | None:
    """A column whose name says it holds the residents' words, for the "which column?" hint."""
    found = text_column_candidates(columns)
    return found[0] if found else None


def profile_label(profile: Profile, cmap: ColumnMap) -> str:
    """The profile and any columns the user chose (what the summary shows)."""
    if not profile.overrides:
        return profile.name
    parts = [f"{k}={'+'.join(v)}" for k, v in sorted(profile.overrides.items())]  # type: ignore[arg-type]
    return f"{profile.name} [{' '.join(parts)}]"


def reading_label(label: str, options: IngestOptions) -> str:
    """What the files table remembers of how a file was read: the profile label and every other
    choice that changes its records (a file read again with other choices is read again)."""
    extra = []
    if options.source:
        extra.append(f"source={options.source}")
    if options.kind:
        extra.append(f"kind={options.kind}")
    if options.dataset:
        extra.append(f"dataset={options.dataset}")
    if options.date_format:
        extra.append(f"date-format={options.date_format}")
    if options.tz.upper() != "UTC":
        extra.append(f"tz={options.tz}")
    if options.keep_boilerplate:
        extra.append("keep-boilerplate")
    return " ".join([label, *extra])


def check_options(options: IngestOptions) -> None:
    """Usage errors that need no file: an unknown profile, kind or date format."""
    if options.profile:
        get_profile(options.profile)
    if options.kind and options.kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}; got {options.kind!r}")
    if options.date_format:
        check_strftime(options.date_format)


def _first_chunk(chunks: Iterator[Chunk], file: str) -> tuple[Chunk, Iterator[Chunk]]:
    first = next(chunks, None)
    while first is not None and len(first.frame) == 0:
        nxt = next(chunks, None)
        if nxt is None:
            break
        first = nxt
    if first is None or len(first.frame) == 0:
        cols = list(first.frame.columns) if first is not None else []
        if cols:
            raise InputError(f"header only, no data rows (columns: {', '.join(cols)})", file=file)
        raise InputError("no data rows", file=file)
    return first, chunks


def ingest_file(
    store: Store,
    path: str | Path,
    *,
    profile: str | None = None,
    options: IngestOptions | None = None,
    progress: bool | ProgressCallback = True,
) -> IngestReport:
    """Load one file into ``store`` as one transaction and report what happened to every row.

    Bad files raise :class:`InputError` (and change nothing); bad rows go to the ``rejects`` table
    with a reason. Re-ingesting a file already loaded with the same choices is a no-op; with other
    choices it replaces the records of the earlier reading.
    """
    opts = options or IngestOptions()
    if profile:
        opts = replace(opts, profile=profile)
    check_options(opts)  # an unknown name fails before the file is read
    started = time.perf_counter()
    file = str(path)
    info = sniff(path)
    first, rest = _first_chunk(iter_chunks(info, opts.chunk_rows), file)
    raw_columns = [str(c) for c in first.frame.columns]
    text_found = None
    try:
        prof = choose_profile(raw_columns, opts)
    except InputError as exc:
        # no profile knows the header and no --text-col: the column whose name and values say
        # it holds the residents' words, as if it had been named (the summary says which)
        if opts.text_cols or opts.profile not in (None, PLAIN_CSV.name):
            raise InputError(exc.message, file=file) from None
        text_found = find_text_column(first.frame)
        if text_found is None:
            raise InputError(exc.message, file=file) from None
        opts = replace(opts, text_cols=(text_found,))
        prof = choose_profile(raw_columns, opts)
    shaped = prof.reshape(first.frame)
    columns = [str(c) for c in shaped.columns]
    cmap = prof.resolve(columns, file)
    cmap, found, found_warnings = _found_columns(prof, cmap, first.frame, shaped, opts, file)
    label = profile_label(prof, cmap)
    reading = reading_label(label, opts)
    report = IngestReport(
        path=file,
        file_hash=info.sha256,
        profile=label,
        format=info.kind,
        encoding=info.encoding,
        source=prof.source,
        kind=prof.record_kind,
        text_found=text_found,
        time_found=found.get("created"),
        close_found=found.get("updated"),
        id_found=found.get("id"),
        location_found=found.get("location"),
        category_found=cmap.category
        if prof.name == PLAIN_CSV.name and not opts.label_col
        else None,
        area_found=cmap.area if prof.name == PLAIN_CSV.name and not opts.area_col else None,
        warnings=found_warnings,
    )
    if opts.profile and (other := other_matching_profile(raw_columns, prof.name)):
        report.warnings.append(
            f"the header looks like a {other!r} export, not {prof.name!r}: leave out --profile "
            f"(or use --profile {other}) if the summary below misses dates or categories"
        )

    seen = store.query_df(
        "SELECT profile, rows_read, rows_loaded, rows_rejected FROM files WHERE file_hash = ?",
        [info.sha256],
    )
    if not opts.force and len(seen) and seen.loc[0, "profile"] == reading:
        # the same bytes read the same way: nothing can change, so don't read them again
        report.skipped = True
        report.rows_read = int(seen.loc[0, "rows_read"])
        report.rows_loaded = report.rows_unchanged = int(seen.loc[0, "rows_loaded"])
        report.rows_rejected = int(seen.loc[0, "rows_rejected"])
        report.rejects_by_reason = _reasons(store, info.sha256)
        report.seconds = time.perf_counter() - started
        log.info("%s: already ingested (%s), skipped", file, label)
        return report

    dates, rest = _date_formats(info, first, rest, prof, cmap, columns, opts, file)
    report.date_formats = {
        c: f.description for c, f in dates.items() if f.description != "no dates"
    }
    dataset = opts.dataset or prof.default_dataset(Path(path))
    ctx = Context(
        path=Path(path),
        dataset=dataset,
        tz=opts.tz,
        explicit_dataset=bool(opts.dataset),
        dates=dates,
        keep_boilerplate=opts.keep_boilerplate,
    )
    callback, close_bar = _progress(progress, file)
    span = _Span()
    try:
        with store.transaction() as con:
            loader = FileLoader(con, file=file, file_hash=info.sha256)
            for chunk in itertools.chain([first], rest):
                prepared = prepare_chunk(chunk, prof, cmap, ctx, keep_raw=opts.keep_raw)
                loader.add(prepared)
                span.add(prepared.records["created_at"])
                report.rows_read += len(chunk.frame)
                report.rows_truncated += prepared.truncated
                log.info(
                    "%s: %d rows read, %d rejected in this chunk",
                    file,
                    report.rows_read,
                    len(prepared.rejects),
                )
                if callback:
                    callback(report.rows_read, chunk.progress)
            counts = loader.finish(
                cmap.id, flag_repeated=prof.flag_repeated and not opts.keep_boilerplate
            )
            report.rows_inserted = counts["inserted"]
            report.rows_updated = counts["updated"]
            report.rows_unchanged = counts["unchanged"]
            report.rows_removed = counts["removed"]
            report.rows_loaded = counts["inserted"] + counts["updated"] + counts["unchanged"]
            report.rows_rejected = report.rows_read - report.rows_loaded
            report.rows_boilerplate = counts["boilerplate"]
            report.boilerplate = loader.boilerplate
            con.execute(
                "INSERT OR REPLACE INTO files (file_hash, path, profile, rows_read, rows_loaded, "
                "rows_rejected) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    info.sha256,
                    file,
                    reading,
                    report.rows_read,
                    report.rows_loaded,
                    report.rows_rejected,
                ],
            )
    finally:
        close_bar()
    report.rejects_by_reason = _reasons(store, info.sha256)
    report.first_date, report.last_date = span.range()
    report.rows_undated = span.missing if cmap.created else 0
    if report.rows_read and not report.rows_loaded and not report.skipped:
        top = next(iter(report.rejects_by_reason), "")
        report.warnings.append(
            f"no row was loaded: all {report.rows_read:,} rejected"
            + (f", most for {top!r}" if top else "")
            + " (see them with: civicpulse rejects)"
        )
    else:
        report.warnings.extend(missing_columns(prof, cmap, span.count, dates, opts))
    report.seconds = time.perf_counter() - started
    log.info(
        "%s: %s, %d read, %d loaded (%d new, %d updated), %d rejected, %.1fs",
        file,
        label,
        report.rows_read,
        report.rows_loaded,
        report.rows_inserted,
        report.rows_updated,
        report.rows_rejected,
        report.seconds,
    )
    return report


class _Span:
    """The earliest and latest created time among the rows loaded, chunk by chunk."""

    def __init__(self) -> None:
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None
        self.count = 0
        self.missing = 0

    def add(self, times: pd.Series) -> None:
        t = times.dropna()
        self.missing += len(times) - len(t)
        if t.empty:
            return
        self.count += len(t)
        lo, hi = t.min(), t.max()
        self.first = lo if self.first is None else min(self.first, lo)
        self.last = hi if self.last is None else max(self.last, hi)

    def range(self) -> tuple[str | None, str | None]:
        def iso(ts: pd.Timestamp | None) -> str | None:
            return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:%SZ")

        return iso(self.first), iso(self.last)


def _found_columns(
    prof: Profile,
    cmap: ColumnMap,
    raw: pd.DataFrame,
    frame: pd.DataFrame,
    opts: IngestOptions,
    file: str,
) -> tuple[ColumnMap, dict[str, str], list[str]]:
    """A plain table's columns that no option named, found by their names and values (judged on
    the first chunk: ``raw`` as read, ``frame`` as the profile reshaped it), so that a city's own
    export gets emerging needs, growth and time to close without knowing the flags: the created
    time ``tag train`` would validate on (``analyzer.ingest.time_columns.find_time_column``) and
    the close time (``find_close_column``). An id column found by its name is kept only when it
    is filled; otherwise the rows are numbered and a warning says why. Returns the map, what was
    found (``{"created": col, "updated": col, "id": col, "location": col}``) and the warnings.
    The platforms' profiles name their columns."""
    if prof.name != PLAIN_CSV.name:
        return cmap, {}, []
    found: dict[str, str] = {}
    warnings: list[str] = []
    finders: tuple[tuple[str, str | None, Callable[..., str | None]], ...] = (
        ("created", opts.time_col, lambda frame, **kw: find_time_column(frame, **kw).column),
        ("updated", opts.updated_col, find_close_column),
    )
    for fld, named, finder in finders:
        if getattr(cmap, fld) or named:
            continue
        kw = {"date_format": opts.date_format, "tz": opts.tz, "file": file}
        col = finder(frame, exclude=sorted(cmap.mapped()), **kw)
        if col:
            cmap = replace(cmap, **{fld: col})
            found[fld] = col
    point = point_column([str(c) for c in raw.columns], prof.lat, prof.lon)
    if point and cmap.lat == POINT_LAT:
        found["location"] = point
    if cmap.id and not opts.id_col:
        # a column with blanks is not the request's number; a repeated number is a later version
        # of the same request (the latest wins, the others are rejected as duplicate ids)
        blank = int((frame[cmap.id].astype(str).str.strip() == "").sum())
        if blank:
            warnings.append(
                f"{cmap.id!r} is not an id ({blank:,} blank in the first {len(frame):,} rows): "
                "rows are numbered instead (--id-col names the id)"
            )
            cmap = replace(cmap, id=None)
        else:
            found["id"] = cmap.id
    return cmap, found, warnings


def _date_formats(
    info: FileInfo,
    first: Chunk,
    rest: Iterator[Chunk],
    prof: Profile,
    cmap: ColumnMap,
    columns: list[str],
    opts: IngestOptions,
    file: str,
) -> tuple[dict[str, DateFormat], Iterator[Chunk]]:
    """Each time column's format from all its values. The first chunk settles almost every file;
    when it cannot (every day and month so far is 12 or less), the rest of the file is read for
    its dates alone, then the file is read again from the start for the load."""
    time_cols = prof.time_columns(columns, cmap)
    if not time_cols:
        return {}, rest
    sniffers = {
        c: DateSniffer(c, explicit=opts.date_format, default_order=prof.date_order)
        for c in time_cols
    }

    def observe(chunk: Chunk) -> None:
        frame = prof.reshape(chunk.frame)
        for c, sn in sniffers.items():
            if c in frame.columns:
                sn.observe(prof.time_strings(frame[c].astype(str)))

    observe(first)
    if not all(sn.decided for sn in sniffers.values()):
        for chunk in rest:
            observe(chunk)
            if all(sn.decided for sn in sniffers.values()):
                break
        # start again after the first chunk (already in memory) for the load itself
        close = getattr(rest, "close", None)
        if close is not None:
            close()
        rest = (c for c in iter_chunks(info, opts.chunk_rows) if c.first_row > first.first_row)
    formats = {}
    for c, sn in sniffers.items():
        try:
            formats[c] = sn.result(file)
        except InputError:
            if c in (cmap.created, cmap.updated):
                raise
            # an acknowledged or closed time no one can read either way stays as written
            continue
    return formats, rest


def missing_columns(
    prof: Profile,
    cmap: ColumnMap,
    n_dates: int,
    dates: dict[str, DateFormat],
    opts: IngestOptions,
) -> list[str]:
    """What the file lacks for the analyses that need it, and what that turns off (category and
    location only for service requests: survey answers have neither by nature)."""
    out = []
    if not cmap.created:
        out.append(
            "no time column: emerging needs, growth and the time split of `tag train` are off "
            "(name it with --time-col)"
        )
    elif n_dates == 0:
        out.append(
            f"no row has a time in {cmap.created!r}: emerging needs and growth are off "
            "(check --time-col)"
        )
    elif (fmt := dates.get(cmap.created)) and fmt.has_local_times and opts.tz.upper() == "UTC":
        out.append(
            f"times in {cmap.created!r} carry no offset and were read as UTC "
            "(say the city's zone with --tz, e.g. --tz America/Chicago)"
        )
    if prof.record_kind != "311":
        return out
    if not cmap.category:
        out.append(
            "no category column: tagging (`tag train`) and per-category views are off "
            "(name it with --label-col)"
        )
    if not (cmap.status or cmap.updated):
        out.append(
            "no status or close time column: time to close and outcomes are off "
            "(name them with --status-col and --updated-col)"
        )
    if not (cmap.lat and cmap.lon):
        out.append(
            "no location columns: the map is off (name them with --lat-col and --lon-col)"
            + ("" if cmap.area else "; no area column either (--area-col)")
        )
    return out


def _reasons(store: Store, file_hash: str) -> dict[str, int]:
    df = store.query_df(
        "SELECT reason, count(*) AS n FROM rejects WHERE file_hash = ? "
        "GROUP BY reason ORDER BY n DESC, reason",
        [file_hash],
    )
    return {str(r): int(n) for r, n in zip(df["reason"], df["n"], strict=True)}


def _progress(
    progress: bool | ProgressCallback, file: str
) -> tuple[ProgressCallback | None, Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%  {task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),  # stdout is for results
    )
    task = bar.add_task(Path(file).name, total=1.0, rows=0)
    bar.start()

    def update(rows: int, share: float) -> None:
        bar.update(task, completed=share, rows=rows)

    return update, bar.stop


def suggest_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The column each field would be read from if ``frame`` (a table's first rows) were
    ingested without flags, by the plain profile's rules ("" where none; the same resolution
    and finders as ``ingest_file``): what the explorer's upload form offers first, so that it
    and ``civicpulse ingest`` agree."""
    text = find_text_column(frame)
    opts = IngestOptions(text_cols=(text,) if text else ())
    prof = PLAIN_CSV.with_options(opts)
    shaped = prof.reshape(frame)
    cmap = prof.resolve([str(c) for c in shaped.columns], "", require_text=False)
    cmap, _, _ = _found_columns(prof, cmap, frame, shaped, opts, "")
    own = {str(c) for c in frame.columns}

    def named(col: str | None) -> str:
        # coordinates read from a point column are not columns the form can offer
        return col if col in own else ""

    return {
        "text": text or "",
        "id": named(cmap.id),
        "time": named(cmap.created),
        "category": named(cmap.category),
        "lat": named(cmap.lat),
        "lon": named(cmap.lon),
        "area": named(cmap.area),
    }


def read_table(path: str | Path) -> pd.DataFrame:
    """Any supported file (CSV/JSON/JSON lines/Parquet, optionally gzipped) as one DataFrame of
    strings, for the stateless commands. Errors are :class:`InputError`."""
    info = sniff(path)
    frames = [c.frame for c in iter_chunks(info)]
    if not frames:
        return pd.DataFrame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True).fillna("")
