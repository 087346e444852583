"""``civicpulse outcomes``: how the city responded, per theme, category or area, compared fairly."""

from __future__ import annotations

import json
import math
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
            help="widen each group's interval by how much more its requests vary than "
            "independent ones would (measured month by month within the group)"
        ),
    ] = True,
    format: Annotated[
        Format, typer.Option("--format", help="table (readable), csv or json (every column)")
    ] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write CSV (or JSON: .json)")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="store path (default from settings)")] = None,
) -> None:
    """How the city responded, one row per theme, category or area, compared fairly.

    Per group: requests, closed, open; days to close (Kaplan-Meier median and 90th percentile
    with 95% intervals: open requests count for as long as they have waited); on-time share
    (only with --targets, or Open311 expected_datetime); the share of each closing outcome read
    from staff notes (resolved, nothing found, duplicate, referred, administrative, unknown).

    Then observed against expected: what the group's own mix of requests (category, theme and
    year) would have got at citywide rates. Time to close: above 1 closes faster than its mix
    predicts. On time and closed without action: above 1 is more often. Each ratio has an
    interval and a Benjamini-Hochberg q-value across the groups; the lines under the table name
    the groups that differ (q < --alpha) on each measure. Needs requests with a status or close
    time (ingest --status-col, --updated-col, --area-col).

    Example: civicpulse outcomes --by area --since 2019-01-01 --format csv -o areas.csv
    """
    from analyzer.common.clock import TimeBoundError, parse_time_range
    from analyzer.outcomes import outcomes as compute
    from analyzer.outcomes import read_targets
    from analyzer.queries import Filters

    if not 0 < alpha < 1:
        raise InputError("must be between 0 and 1", column="--alpha")
    try:
        start, stop = parse_time_range(since, until, names=("--since", "--until"))
    except TimeBoundError as exc:
        raise InputError(exc.message, column=exc.name) from None
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

    from analyzer.outcomes import MEASURES, PLURAL, verdict

    rows = report.rows
    if rows.empty:
        return  # the messages above say why
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
    plural = PLURAL[report.by]
    # every measure that could be compared, the --measure one first: which groups differ
    for measure in sorted(MEASURES, key=lambda m: m != report.measure):
        ratio, low, high, q = (
            rows[f"{measure}_{c}"] for c in ("ratio", "ratio_low", "ratio_high", "q_value")
        )
        tested = q.notna() & ratio.notna()
        if not tested.any():
            continue
        differ = rows[tested & (q < report.alpha)].sort_values(f"{measure}_q_value")
        name = measure.replace("_", " ")
        out.print(
            f"{name}: {len(differ)} of {int(tested.sum())} {plural} differ from what their mix "
            f"of requests predicts (q < {report.alpha:g}; observed / expected with "
            f"{1 - report.alpha:.0%} interval):"
        )
        for i in differ.index:
            out.print(
                f"  {rows.at[i, 'group']}: observed / expected {ratio[i]:.2f} "
                f"({_bound(low[i])}-{_bound(high[i])}), q {q[i]:.2g}: "
                f"{verdict(ratio[i], q[i], report.alpha, measure)}"
            )
        if differ.empty:
            out.print(f"  none: all {plural} as their mix predicts")


def _bound(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "inf"


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
