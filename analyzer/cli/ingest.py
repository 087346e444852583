"""``civicpulse ingest``, ``status``, ``rejects``, ``export`` and ``forget``: getting data in,
seeing it, and taking it out again."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from analyzer.cli import app
from analyzer.cli.common import console, open_store, settings
from analyzer.errors import InputError
from analyzer.reports.export import neutralise_formula

if TYPE_CHECKING:
    from analyzer.ingest import IngestReport

EXPORT_COLUMNS = (
    "id",
    "source",
    "kind",
    "created_at",
    "updated_at",
    "category",
    "status",
    "area",
    "lat",
    "lon",
    "text",
    "attributes",
)


@app.command()
def ingest(
    files: list[Path] = typer.Argument(..., help="CSV / JSON / JSON lines / Parquet, .gz allowed"),
    profile: str | None = typer.Option(
        None,
        "--profile",
        "-p",
        help="open311, boston, socrata-311, seeclickfix, fixmystreet, polis, survey or csv "
        "(default: detected from the header)",
    ),
    text_col: list[str] = typer.Option(
        [], "--text-col", help="text column (repeat to join several)"
    ),
    id_col: str | None = typer.Option(None, "--id-col"),
    time_col: str | None = typer.Option(None, "--time-col", help="created time column"),
    updated_col: str | None = typer.Option(None, "--updated-col", help="last-updated column"),
    label_col: str | None = typer.Option(None, "--label-col", help="category column"),
    status_col: str | None = typer.Option(None, "--status-col"),
    lat_col: str | None = typer.Option(None, "--lat-col"),
    lon_col: str | None = typer.Option(None, "--lon-col"),
    area_col: str | None = typer.Option(None, "--area-col"),
    source: str | None = typer.Option(
        None, "--source", help="where the records come from: any name, e.g. the city (nyc311)"
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="what the records are: 311, survey or engagement (default: profile's)"
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="name used inside record ids (default: from the file)"
    ),
    tz: str = typer.Option("UTC", "--tz", help="time zone of times written without an offset"),
    date_format: str | None = typer.Option(
        None,
        "--date-format",
        help="strftime of day/month dates when the file cannot tell, e.g. '%d/%m/%Y %H:%M'",
    ),
    keep_boilerplate: bool = typer.Option(
        False,
        "--keep-boilerplate",
        help="analyse placeholder and repeated texts too (flagged and left out by default)",
    ),
    keep_raw: bool | None = typer.Option(
        None, "--keep-raw/--no-keep-raw", help="also store the unredacted text (never served)"
    ),
    force: bool = typer.Option(False, "--force", help="re-read files already ingested"),
    store: Path | None = typer.Option(None, "--store", help="store path (default from settings)"),
    chunk_rows: int = typer.Option(50_000, "--chunk-rows", hidden=True, min=1),
) -> None:
    """Load files into the store; every row is either loaded or rejected with a reason.

    The summary says the date format read, the date range loaded, the texts flagged as
    boilerplate, and what the file lacks (time, category, location) with what that turns off.
    """
    from analyzer.ingest import IngestOptions, ingest_file
    from analyzer.ingest.pipeline import check_options
    from analyzer.ingest.votes import ingest_votes_input, is_votes_input

    _check_tz(tz)
    cfg = settings(store)
    options = IngestOptions(
        profile=profile,
        id_col=id_col,
        text_cols=tuple(text_col),
        time_col=time_col,
        updated_col=updated_col,
        label_col=label_col,
        status_col=status_col,
        lat_col=lat_col,
        lon_col=lon_col,
        area_col=area_col,
        source=source,
        kind=kind,
        dataset=dataset,
        tz=tz,
        date_format=date_format,
        keep_boilerplate=keep_boilerplate,
        keep_raw=cfg.keep_raw if keep_raw is None else keep_raw,
        force=force,
        chunk_rows=chunk_rows,
    )
    check_options(options)  # an unknown profile, kind or format fails before any file is opened
    for f in files:  # fail on a missing file before loading any of them
        if not f.exists():
            raise InputError("no such file", file=str(f))
    interactive = console.is_terminal
    with open_store(store) as st:
        for f in files:
            progress = True if interactive else _plain_progress(f)
            if is_votes_input(f):  # a Polis export folder or a votes file: analyzer.ingest.votes
                for done in ingest_votes_input(st, f, options=options, progress=progress):
                    print("\n".join(done.lines())) if hasattr(done, "lines") else _print_report(
                        done
                    )
                continue
            report = ingest_file(st, f, options=options, progress=progress)
            _print_report(report)


def _check_tz(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if tz.upper() == "UTC":
        return  # needs no time zone database
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {tz!r} (use an IANA name such as America/New_York)"
        ) from None


def _plain_progress(path: Path) -> Callable[[int, float], None]:
    """Progress as plain lines when stderr is not a terminal (logs, CI, a parent process)."""

    def report(rows: int, share: float) -> None:
        print(f"{path.name}: {rows:,} rows read ({share:.0%})", file=sys.stderr, flush=True)

    return report


def _print_report(report: IngestReport) -> None:
    name = Path(report.path).name
    if report.skipped:
        print(
            f"{name}: already ingested ({report.profile}); unchanged: {report.rows_loaded:,} "
            f"loaded, {report.rows_rejected:,} rejected (use --force to read it again)"
        )
        return
    print(
        f"{name} ({report.profile}, {report.format}, {report.encoding or 'binary'}): "
        f"{report.rows_read:,} rows read, {report.rows_loaded:,} loaded "
        f"({report.rows_inserted:,} new, {report.rows_updated:,} updated, "
        f"{report.rows_unchanged:,} unchanged), {report.rows_rejected:,} rejected "
        f"in {report.seconds:.1f}s"
    )
    print(f"  source {report.source!r}, kind {report.kind} (--source NAME, --kind to change)")
    by_values, by_name = "its name and values", "its name"
    for what, column, option, how in (
        ("text", report.text_found, "--text-col", by_values),
        ("created time", report.time_found, "--time-col", by_values),
        ("close time", report.close_found, "--updated-col", by_values),
        ("id", report.id_found, "--id-col", by_name),
        ("category", report.category_found, "--label-col", by_name),
        ("area", report.area_found, "--area-col", by_name),
    ):
        if column:
            print(f"  {what}: {column!r}, found by {how} ({option} names another)")
    if report.location_found:
        print(
            f"  location: {report.location_found!r} read as latitude and longitude "
            "(--lat-col and --lon-col name others)"
        )
    for column, fmt in report.date_formats.items():
        print(f"  dates in {column!r}: {fmt}")
    if report.first_date:
        print(f"  created from {report.first_date[:10]} to {report.last_date[:10]} (UTC)")
    if report.rows_undated:
        print(
            f"  {report.rows_undated:,} rows have no time (kept; left out of emerging needs "
            "and growth)"
        )
    if report.rows_removed:
        print(
            f"  removed {report.rows_removed:,} records of an earlier reading of this file "
            "that it no longer holds"
        )
    if report.rows_truncated:
        print(f"  {report.rows_truncated:,} texts were cut to the length cap")
    for reason, n in list(report.rejects_by_reason.items())[:5]:
        print(f"  rejected {n:,}: {reason}")
    if report.rows_rejected:
        print("  see them with: civicpulse rejects")
    if report.rows_boilerplate:
        print(
            f"  boilerplate {report.rows_boilerplate:,} records (kept, left out of themes, "
            "sentiment, emerging needs and tagging; --keep-boilerplate to analyse them):"
        )
        for text, n in report.boilerplate[:5]:
            print(f"    {n:,} × {_short(text)}")
    for warning in report.warnings:
        print(f"  warning: {warning}")


def _short(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


@app.command()
def status(
    store: Path | None = typer.Option(None, "--store", help="store path (default from settings)"),
) -> None:
    """Records per source and kind with their date range, files ingested, boilerplate texts
    (kept, not analysed) and rejects by reason."""

    with open_store(store, read_only=True) as st:
        # a store written by an earlier version (migrated when next opened for writing)
        have = st.columns("records")
        kind = "kind" if "kind" in have else "NULL"
        flag = "boilerplate" if "boilerplate" in have else "false"
        per_source = st.query_df(
            f"SELECT source, coalesce({kind}, '-') AS kind, count(*) AS records, "
            f"count(*) FILTER (WHERE {flag}) AS boilerplate, "
            "min(created_at)::DATE::VARCHAR AS first, "
            "max(created_at)::DATE::VARCHAR AS last, count(DISTINCT category) AS categories "
            "FROM records GROUP BY ALL ORDER BY records DESC"
        )
        files = st.query_df("SELECT count(*) AS n, coalesce(sum(rows_read), 0) AS rows FROM files")
        reasons = st.query_df(
            "SELECT reason, count(*) AS n FROM rejects GROUP BY reason ORDER BY n DESC, reason"
        )
        flagged = st.query_df(
            f"SELECT source, text, count(*) AS n FROM records WHERE {flag} "
            "GROUP BY source, text ORDER BY n DESC, text LIMIT 10"
        )
        path = st.path
    out = Console()  # results on stdout; progress and errors on stderr
    out.print(f"store: {path}")
    out.print(
        f"files ingested: {int(files.loc[0, 'n']):,} ({int(files.loc[0, 'rows']):,} rows read)"
    )
    table = Table(
        "source", "kind", "records", "boilerplate", "from", "to", "categories", title="records"
    )
    for r in per_source.itertuples(index=False):
        table.add_row(
            str(r.source),
            str(r.kind),
            f"{r.records:,}",
            f"{r.boilerplate:,}",
            str(r.first or "-"),
            str(r.last or "-"),
            f"{r.categories:,}",
        )
    if per_source.empty:
        table.add_row("(none)", "-", "0", "0", "-", "-", "0")
    out.print(table)
    if not flagged.empty:
        bt = Table(
            "source",
            "records",
            "text",
            title="boilerplate (kept; left out of themes, sentiment, emerging needs, tagging)",
        )
        for r in flagged.itertuples(index=False):
            bt.add_row(str(r.source), f"{r.n:,}", _short(str(r.text), 70))
        out.print(bt)
    rt = Table("reason", "rows", title="rejects")
    for r in reasons.itertuples(index=False):
        rt.add_row(str(r.reason), f"{r.n:,}")
    if reasons.empty:
        rt.add_row("(none)", "0")
    out.print(rt)


@app.command()
def forget(
    file: str | None = typer.Option(
        None, "--file", help="a file ingested earlier (its path, or the name it was ingested as)"
    ),
    source: str | None = typer.Option(None, "--source", help="every record of this source"),
    store: Path | None = typer.Option(None, "--store", help="store path (default from settings)"),
) -> None:
    """Remove a file's or a source's records and what was derived from them (assignments,
    sentiment, examples, rejects), in one transaction; themes re-fit at the next analyze."""
    from analyzer.ingest.forget import forget as forget_records

    with open_store(store) as st:
        removal = forget_records(st, file=file, source=source)
    what = f"file {file}" if file else f"source {source!r}"
    print(f"forgot {what}: {removal.records:,} records removed")
    if removal.votes:
        print(f"  {removal.votes:,} votes removed (opinion groups recompute on the next request)")
    for path in removal.files:
        print(f"  file {Path(path).name}: removed with its rejects (it can be ingested again)")
    for src in removal.emptied:
        print(f"  source {src!r} has no records left: its themes are retired")
    stale = [s for s in removal.sources if s not in removal.emptied]
    if stale:
        print(f"  themes of {', '.join(map(repr, stale))} re-fit at the next `civicpulse analyze`")


@app.command()
def rejects(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="rows to show"),
    reason: str | None = typer.Option(None, "--reason", help="only this reason"),
    file: str | None = typer.Option(None, "--file", help="only files whose path contains this"),
    store: Path | None = typer.Option(None, "--store", help="store path (default from settings)"),
) -> None:
    """Rejected rows with file, row, column and reason (their content is stored redacted)."""
    where, params = [], []
    if reason:
        where.append("reason = ?")
        params.append(reason)
    if file:
        where.append("contains(file, ?)")
        params.append(file)
    sql = (
        "SELECT file, row_number, column_name, reason, content FROM rejects"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY rejected_at, file, row_number LIMIT ?"
    )
    with open_store(store, read_only=True) as st:
        df = st.query_df(sql, [*params, limit])
        total = st.scalar(
            "SELECT count(*) FROM rejects" + (" WHERE " + " AND ".join(where) if where else ""),
            params,
        )
    out = Console()
    table = Table("file", "row", "column", "reason", "content", title=f"rejects ({total:,})")
    for r in df.itertuples(index=False):
        content = str(r.content or "")
        table.add_row(
            Path(str(r.file)).name,
            str(r.row_number),
            str(r.column_name or ""),
            str(r.reason),
            content[:120] + ("…" if len(content) > 120 else ""),
        )
    out.print(table)


def _parse_day(value: str | None, option: str) -> datetime | None:
    """An instant (a date is its first moment: ``--until`` stays "created before"), by the one
    rule for query bounds, clamped to what the store holds."""
    from analyzer.common.clock import TimeBoundError, parse_time

    if value is None:
        return None
    try:
        return parse_time(value, option)
    except TimeBoundError:
        raise InputError(f"{option}: not a date: {value!r} (use YYYY-MM-DD)") from None


@app.command()
def export(
    output: Path = typer.Option(..., "--output", "-o", help="CSV file to write"),
    source: str | None = typer.Option(None, "--source", help="only this source"),
    since: str | None = typer.Option(None, "--since", help="created on or after (YYYY-MM-DD)"),
    until: str | None = typer.Option(None, "--until", help="created before (YYYY-MM-DD)"),
    store: Path | None = typer.Option(None, "--store", help="store path (default from settings)"),
) -> None:
    """Write records (redacted text, never raw text) as CSV, safe to open in a spreadsheet."""
    n = export_records(
        output,
        source=source,
        since=_parse_day(since, "--since"),
        until=_parse_day(until, "--until"),
        store=store,
    )
    print(f"wrote {n:,} records to {output}")


def export_records(
    output: Path,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    store: Path | None = None,
    batch_rows: int = 50_000,
) -> int:
    """Stream records to ``output`` in batches; returns the number written."""
    where, params = [], []
    if source:
        where.append("source = ?")
        params.append(source)
    # ISO strings cast in SQL: binding aware datetimes would make DuckDB import pytz
    if since:
        where.append("created_at >= ?::TIMESTAMPTZ")
        params.append(since.isoformat())
    if until:
        where.append("created_at < ?::TIMESTAMPTZ")
        params.append(until.isoformat())

    def column(c: str, have: set[str]) -> str:
        if c in {"created_at", "updated_at"}:
            return f"strftime({c}, '%Y-%m-%dT%H:%M:%SZ') AS {c}"  # the store's clock is UTC
        if c not in have:
            return f"NULL AS {c}"  # a store from before the column (migrated on the next write)
        return f"{c}::VARCHAR AS {c}" if c == "attributes" else c

    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with (
        open_store(store, read_only=True) as st,
        open(output, "w", newline="", encoding="utf-8") as fh,
    ):
        have = st.columns("records")
        cols = ", ".join(column(c, have) for c in EXPORT_COLUMNS)
        sql = f"SELECT {cols} FROM records" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at NULLS LAST, id"
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        reader = st.con.sql(sql, params=params).to_arrow_reader(batch_rows)
        for batch in reader:
            frame = batch.to_pandas()
            for row in frame.itertuples(index=False, name=None):
                writer.writerow(
                    [
                        ""
                        if v is None or (isinstance(v, float) and v != v)
                        else neutralise_formula(v)
                        for v in row
                    ]
                )
            written += len(frame)
    return written
