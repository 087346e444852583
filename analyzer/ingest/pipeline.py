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
from analyzer.ingest.formats import Chunk, iter_chunks, sniff
from analyzer.ingest.load import FileLoader
from analyzer.ingest.options import IngestOptions, IngestReport
from analyzer.ingest.profiles import (
    PROFILES,
    ColumnMap,
    Context,
    Profile,
    detect_profile,
    get_profile,
)
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
        except InputError:
            if not options.text_cols:
                raise
            base = PROFILES["csv"]
    if base.name == "csv" and not options.text_cols:
        found = ", ".join(columns) or "(none)"
        raise InputError(f"profile 'csv' needs --text-col; columns found: {found}")
    return base.with_options(options)


def profile_label(profile: Profile, cmap: ColumnMap) -> str:
    """What the files table remembers: the profile and any columns the user chose."""
    if not profile.overrides:
        return profile.name
    parts = [f"{k}={'+'.join(v)}" for k, v in sorted(profile.overrides.items())]  # type: ignore[arg-type]
    return f"{profile.name} [{' '.join(parts)}]"


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
    with a reason. Re-ingesting a file already loaded with the same profile is a no-op.
    """
    opts = options or IngestOptions()
    if profile:
        opts = replace(opts, profile=profile)
    if opts.profile:
        get_profile(opts.profile)  # an unknown name fails before the file is read
    started = time.perf_counter()
    file = str(path)
    info = sniff(path)
    first, rest = _first_chunk(iter_chunks(info, opts.chunk_rows), file)
    columns = [str(c) for c in first.frame.columns]
    try:
        prof = choose_profile(columns, opts)
    except InputError as exc:
        raise InputError(exc.message, file=file) from None
    cmap = prof.resolve(columns, file)
    label = profile_label(prof, cmap)
    report = IngestReport(
        path=file, file_hash=info.sha256, profile=label, format=info.kind, encoding=info.encoding
    )

    seen = store.query_df(
        "SELECT profile, rows_read, rows_loaded, rows_rejected FROM files WHERE file_hash = ?",
        [info.sha256],
    )
    if not opts.force and len(seen) and seen.loc[0, "profile"] == label:
        # the same bytes read the same way: nothing can change, so don't read them again
        report.skipped = True
        report.rows_read = int(seen.loc[0, "rows_read"])
        report.rows_loaded = report.rows_unchanged = int(seen.loc[0, "rows_loaded"])
        report.rows_rejected = int(seen.loc[0, "rows_rejected"])
        report.rejects_by_reason = _reasons(store, info.sha256)
        report.seconds = time.perf_counter() - started
        log.info("%s: already ingested (%s), skipped", file, label)
        return report

    dataset = opts.dataset or prof.default_dataset(Path(path))
    ctx = Context(path=Path(path), dataset=dataset, tz=opts.tz, explicit_dataset=bool(opts.dataset))
    callback, close_bar = _progress(progress, file)
    try:
        with store.transaction() as con:
            loader = FileLoader(con, file=file, file_hash=info.sha256)
            for chunk in itertools.chain([first], rest):
                prepared = prepare_chunk(chunk, prof, cmap, ctx, keep_raw=opts.keep_raw)
                loader.add(prepared)
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
            counts = loader.finish(cmap.id)
            report.rows_inserted = counts["inserted"]
            report.rows_updated = counts["updated"]
            report.rows_unchanged = counts["unchanged"]
            report.rows_loaded = counts["inserted"] + counts["updated"] + counts["unchanged"]
            report.rows_rejected = report.rows_read - report.rows_loaded
            con.execute(
                "INSERT OR REPLACE INTO files (file_hash, path, profile, rows_read, rows_loaded, "
                "rows_rejected) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    info.sha256,
                    file,
                    label,
                    report.rows_read,
                    report.rows_loaded,
                    report.rows_rejected,
                ],
            )
    finally:
        close_bar()
    report.rejects_by_reason = _reasons(store, info.sha256)
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
