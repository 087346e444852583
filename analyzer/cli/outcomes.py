"""``civicpulse outcomes``: how the city responded, per theme, category or area, compared fairly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from analyzer.cli import app
from analyzer.cli.common import console, open_store
from analyzer.errors import InputError


class By(StrEnum):
    theme = "theme"
    category = "category"
    area = "area"


class Measure(StrEnum):
    time_to_close = "time_to_close"
    on_time = "on_time"
    without_action = "without_action"


class Period(StrEnum):
    year = "year"
    quarter = "quarter"
    all = "all"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


# what the table format shows, with short headers (every column is in --format csv / json)
TABLE_COLUMNS = (
    ("group", "group"),
    ("requests", "requests"),
    ("open", "open"),
    ("median_days", "median days"),
    ("p90_days", "p90 days"),
    ("on_time_share", "on time"),
    ("share_resolved", "resolved"),
    ("share_no_violation", "nothing found"),
    ("share_duplicate", "duplicate"),
    ("ratio", "observed / expected"),
    ("q_value", "q"),
    ("verdict", "verdict"),
)
PLURAL = {"theme": "themes", "category": "categories", "area": "areas"}
SHORT = {"as its mix predicts": "as predicted", "not measured": "–"}


@app.command()
def outcomes(
    by: Annotated[By, typer.Option("--by", help="one row per theme, category or area")] = By.area,
    source: Annotated[str | None, typer.Option(help="only this source (311, …)")] = None,
    kind: Annotated[
        str | None, typer.Option(help="only records of this kind (311, survey, engagement)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="created on or after (YYYY-MM-DD or ISO time)")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="created up to (a date includes that whole day; a time is exclusive)"),
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option(
            "--targets", help="CSV of category,target_days (or target_hours): on-time targets"
        ),
    ] = None,
    measure: Annotated[
        Measure,
        typer.Option(help="which comparison fills observed … q_value (all are in csv / json)"),
    ] = Measure.time_to_close,
    period: Annotated[
        Period, typer.Option(help="requests are compared with the same period's rates")
    ] = Period.year,
    alpha: Annotated[
        float, typer.Option(help="interval level and the q-value under which a group differs")
    ] = 0.05,
    overdispersion: Annotated[
        bool,
        typer.Option(
            help="widen intervals by how much more the groups vary than chance allows "
            "(Spiegelhalter's funnel-plot correction)"
        ),
    ] = True,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write CSV (or JSON: .json)")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="store path (default from settings)")] = None,
) -> None:
    """Per group: requests, closed, open, days to close (Kaplan-Meier median and 90th percentile
    with intervals, open requests censored), on-time share, closing outcomes, and observed against
    what the group's mix of requests predicts at citywide rates (ratio with interval, q-value)."""
    from analyzer.outcomes import outcomes as compute
    from analyzer.outcomes import read_targets
    from analyzer.queries import Filters

    if not 0 < alpha < 1:
        raise InputError("must be between 0 and 1", column="--alpha")
    start, stop = _when(since, "--since"), _when(until, "--until", end=True)
    if start and stop and start >= stop:
        raise InputError("--until must be after --since", column="--until")
    goals = read_targets(targets) if targets is not None else None
    filters = Filters(source=source, kind=kind, since=start, until=stop)
    with open_store(store, read_only=True) as st:
        report = compute(
            st,
            by.value,
            filters,
            targets=goals,
            measure=measure.value,
            period=period.value,
            alpha=alpha,
            overdispersion=overdispersion,
        )
    for message in report.messages:
        console.print(message)
    rows = report.rows
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() == ".json" or format is Format.json:
            output.write_text(_json(report.to_dict()), encoding="utf-8")
        else:
            rows.to_csv(output, index=False)
        console.print(f"wrote {output} ({len(rows)} rows)")
        return
    if format is Format.json:
        print(_json(report.to_dict()))
        return
    if format is Format.csv:
        print(rows.to_csv(index=False), end="")
        return
    _print_table(report)


def _print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = report.rows
    what = report.measure.replace("_", " ")
    table = Table(title=f"outcomes by {report.by} ({what}: observed / expected from the mix)")
    for _, header in TABLE_COLUMNS:
        table.add_column(header, overflow="fold")
    for r in rows.to_dict("records"):
        cells = []
        for col, _ in TABLE_COLUMNS:
            value = r.get(col)
            if col == "median_days":
                value = _with_interval(value, r.get("median_low"), r.get("median_high"))
            elif col == "ratio":
                value = _with_interval(value, r.get("ratio_low"), r.get("ratio_high"))
            elif col == "verdict":
                value = SHORT.get(str(value), str(value).replace(" than its mix predicts", ""))
            cells.append(_cell(value))
        table.add_row(*cells)
    out = Console(soft_wrap=False)
    out.print(table)
    differ = rows[rows["differs"]]
    same = int((~rows["differs"] & rows["ratio"].notna()).sum())
    plural = PLURAL[report.by]
    if len(differ):
        out.print(
            f"{len(differ)} {plural} differ from what their mix of requests predicts ({what}):"
        )
        for r in differ.to_dict("records"):
            out.print(
                f"  {r['group']}: observed / expected {r['ratio']:.2f} "
                f"({r['ratio_low']:.2f}-{r['ratio_high']:.2f}), q {r['q_value']:.2g}: {r['verdict']}"
            )
    out.print(f"{same} {plural} as their mix predicts (q >= {report.alpha:g}).")


def _with_interval(value: Any, low: Any, high: Any) -> str | None:
    if not _number(value):
        return None
    lo = f"{low:.3g}" if _number(low) else "?"
    hi = f"{high:.3g}" if _number(high) else "?"
    return f"{value:.3g} ({lo}-{hi})"


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)[:80]


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, default=str, allow_nan=False)


def _when(value: str | None, option: str, *, end: bool = False) -> datetime | None:
    """A date (a whole day: ``--until`` includes it) or an ISO date-time, as an aware UTC time."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"not a date: {value!r} (use YYYY-MM-DD or an ISO date-time)", column=option
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
