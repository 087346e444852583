"""A theme's exports: its records as CSV and a self-contained one-page HTML report.

Both are built on the read layer (``analyzer.queries``), so they obey its rules: only redacted text
(``records.text``, never ``raw_text``), renames and merges applied, and the shared filters meaning
the same as everywhere else. The CSV streams in chunks (a theme may hold a city's whole year) and
is guarded against formula injection (``analyzer.reports.export``). The report carries plotly.js inline,
so it opens offline from a file or an e-mail attachment; every chart also has its numbers in a
table, and colour is never the only label (one colour per theme, as on every explorer page).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analyzer import __version__, queries
from analyzer.queries import Filters, Page
from analyzer.reports.colors import theme_color
from analyzer.reports.export import iter_csv, safe_filename
from analyzer.store.database import Store

__all__ = [
    "RECORD_CSV_COLUMNS",
    "safe_filename",
    "theme_records_csv",
    "theme_report_html",
    "write_theme_records_csv",
]

RECORD_CSV_COLUMNS = (
    "id",
    "created_at",
    "source",
    "category",
    "area",
    "theme_id",
    "theme_label",
    "subtheme_id",
    "subtheme_label",
    "sentiment",
    "sentiment_score",
    "text",
)
AREAS_SHOWN = 15
ALERTS_SHOWN = 20
CHART_HEIGHT = 300
QUOTE_CHARS = 400  # a quote longer than this is cut (with an ellipsis) to keep the report on a page
_FILTER_NAMES = ("source", "since", "until", "area", "category")


# -- records as CSV --------------------------------------------------------------------------


def theme_records_csv(
    store: Store,
    theme_id: str,
    filters: Filters | None = None,
    *,
    chunk_rows: int = 5000,
    counter: list[int] | None = None,
) -> Iterator[str]:
    """The theme's records (merges followed) as CSV text in pieces, header first.

    Columns: ``RECORD_CSV_COLUMNS``; ``text`` is the redacted text. Raises
    ``queries.ThemeNotFoundError`` at the call for an unknown theme, before anything is written.
    ``counter``, when given, is a one-item list that counts the records written so far.
    """
    chunks = queries.theme_record_chunks(store, theme_id, filters, chunk_rows=chunk_rows)

    def rows() -> Iterator[list[list[Any]]]:
        for chunk in chunks:
            if counter is not None:
                counter[0] += len(chunk)
            yield [[r.get(c) for c in RECORD_CSV_COLUMNS] for r in chunk]

    return iter_csv(RECORD_CSV_COLUMNS, rows())


def write_theme_records_csv(
    store: Store, theme_id: str, path: Path, filters: Filters | None = None
) -> int:
    """Write the theme's records CSV to ``path`` (whole or not at all); returns records written."""
    written = [0]
    pieces = theme_records_csv(store, theme_id, filters, counter=written)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.writelines(pieces)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return written[0]


# -- one-page HTML report --------------------------------------------------------------------


def theme_report_html(
    store: Store,
    theme_id: str,
    filters: Filters | None = None,
    *,
    generated_at: datetime | None = None,
) -> str:
    """A self-contained one-page report on a theme, as HTML (plotly.js inline, works offline).

    Label, keywords, size, growth, mean sentiment, sub-themes, representative redacted quotes,
    weekly, area and sentiment charts, the theme's emerging-needs alerts, the filters and run id
    used and the generation time. Raises ``queries.ThemeNotFoundError`` for an unknown theme.
    """
    f = filters or Filters()
    detail = queries.theme_detail(store, theme_id, f)
    target = detail["theme_id"]
    split = queries.theme_sentiment_split(store, target, f)
    alerts = queries.list_emerging(
        store,
        Filters(
            source=f.source,
            since=f.since,
            until=f.until,
            area=f.area,
            category=f.category,
            theme_id=target,
        ),
        Page(limit=ALERTS_SHOWN),
    )
    runs = queries.list_runs(store, limit=1)
    when = (generated_at or datetime.now(UTC)).astimezone(UTC)
    return _render(detail, split, alerts, runs[0] if runs else None, f, when)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt_time(value: Any, *, date_only: bool = False) -> str:
    if not isinstance(value, datetime):
        return "–"
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d") if date_only else value.strftime("%Y-%m-%d %H:%M UTC")


def _signed(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _filters_text(f: Filters) -> str:
    parts = []
    for name in _FILTER_NAMES:
        value = asdict(f)[name]
        if value:
            shown = _fmt_time(value) if isinstance(value, datetime) else str(value)
            if name == "until":
                shown += " (exclusive)"
            parts.append(f"{name} = {shown}")
    return "; ".join(parts) if parts else "none (all records)"


def _chart(fig: Any, div_id: str) -> str:
    fig.update_layout(
        height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"family": "system-ui, sans-serif", "size": 12},
        plot_bgcolor="white",
        showlegend=False,
    )
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height=f"{CHART_HEIGHT}px",
        config={"displaylogo": False, "responsive": True},
    )


def _table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _data(headers: list[str], rows: list[list[Any]]) -> str:
    return f"<details><summary>The numbers</summary>{_table(headers, rows, 'data')}</details>"


def _charts(detail: dict[str, Any], split: list[dict[str, Any]], color: str) -> str:
    import plotly.graph_objects as go

    label = detail["label"]
    out = []
    series = detail["series"]
    if series:
        weeks = [p["week"] for p in series]
        counts = [p["count"] for p in series]
        fig = go.Figure(
            go.Bar(
                x=weeks,
                y=counts,
                marker_color=color,
                name=label,
                hovertemplate="week of %{x|%Y-%m-%d}: %{y} records<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"Records per week: {label}", xaxis_title="week", yaxis_title="records"
        )
        rows = [
            [_fmt_time(p["week"], date_only=True), p["count"], _signed(p["sentiment"], "+.2f")]
            for p in series
        ]
        out.append(
            '<figure class="chart">'
            + _chart(fig, "chart-weekly")
            + _data(["week starting", "records", "mean sentiment"], rows)
            + "</figure>"
        )
    else:
        out.append(
            '<figure class="chart"><p class="empty">No dated records under these filters.</p></figure>'
        )
    areas = detail["areas"][:AREAS_SHOWN]
    if areas:
        fig = go.Figure(
            go.Bar(
                x=[a["count"] for a in areas],
                y=[a["key"] for a in areas],
                orientation="h",
                marker_color=color,
                text=[a["count"] for a in areas],
                textposition="auto",
                hovertemplate="%{y}: %{x} records<extra></extra>",
            )
        )
        fig.update_layout(
            title=f"Areas with the most records (top {len(areas)})",
            xaxis_title="records",
            yaxis={"autorange": "reversed", "automargin": True},
        )
        rows = [[a["key"], a["count"], _signed(a["sentiment"], "+.2f")] for a in areas]
        out.append(
            '<figure class="chart">'
            + _chart(fig, "chart-areas")
            + _data(["area", "records", "mean sentiment"], rows)
            + "</figure>"
        )
    else:
        out.append(
            '<figure class="chart"><p class="empty">No area recorded for these records.</p></figure>'
        )
    if split:
        order = {"negative": 0, "neutral": 1, "positive": 2}
        split = sorted(split, key=lambda s: (order.get(s["key"], 3), s["key"]))
        total = sum(s["count"] for s in split) or 1
        fig = go.Figure(
            go.Bar(
                x=[s["key"] for s in split],
                y=[s["count"] for s in split],
                marker_color=color,
                text=[f"{s['count']} ({s['count'] / total:.0%})" for s in split],
                textposition="auto",
                hovertemplate="%{x}: %{y} records<extra></extra>",
            )
        )
        fig.update_layout(
            title="Sentiment of the records", xaxis_title="sentiment", yaxis_title="records"
        )
        rows = [[s["key"], s["count"], f"{s['count'] / total:.1%}"] for s in split]
        out.append(
            '<figure class="chart">'
            + _chart(fig, "chart-sentiment")
            + _data(["sentiment", "records", "share"], rows)
            + "</figure>"
        )
    else:
        out.append('<figure class="chart"><p class="empty">No sentiment computed yet.</p></figure>')
    return '<section class="charts">' + "".join(out) + "</section>"


def _quotes(examples: list[dict[str, Any]]) -> str:
    if not examples:
        return '<p class="empty">No records under these filters.</p>'
    items = []
    for ex in examples:
        meta = " · ".join(
            x
            for x in (
                _fmt_time(ex.get("created_at"), date_only=True) if ex.get("created_at") else "",
                ex.get("area") or "",
                ex.get("category") or "",
                ex.get("sentiment") or "",
            )
            if x
        )
        text = str(ex.get("text") or "")
        if len(text) > QUOTE_CHARS:
            text = text[: QUOTE_CHARS - 1].rsplit(" ", 1)[0] + " …"
        items.append(f"<blockquote>{_e(text)}<footer>{_e(meta)}</footer></blockquote>")
    return "".join(items)


def _subthemes(subs: list[dict[str, Any]]) -> str:
    if not subs:
        return '<p class="empty">No sub-themes.</p>'
    rows = [
        [
            s["theme_id"],
            s["label"],
            s["size"],
            _signed(s["sentiment"], "+.2f"),
            ", ".join(s["keywords"][:6]),
        ]
        for s in subs
    ]
    return _table(["id", "sub-theme", "records", "mean sentiment", "keywords"], rows)


def _alerts(alerts: dict[str, Any]) -> str:
    items = alerts.get("items") or []
    if not items:
        return '<p class="empty">No emerging-needs alert on this theme in the latest analysis.</p>'
    rows = [
        [
            a["kind"] or "",
            f"{_fmt_time(a['window_start'], date_only=True)} – {_fmt_time(a['window_end'], date_only=True)}",
            a["area"] or "all areas",
            a["count"],
            _signed(a["baseline"], ".2f"),
            _signed(a["ratio"], ".2f"),
            _signed(a["q_value"] if a["q_value"] is not None else a["p_value"], ".3g"),
        ]
        for a in items
    ]
    note = f'<p class="note">Alerts of run {_e(alerts.get("run_id"))}.</p>'
    return note + _table(
        ["kind", "window", "area", "records", "expected", "ratio", "q-value"], rows
    )


_CSS = """
:root { --theme: %(color)s; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 0 auto; padding: 16px 20px; }
header { border-left: 10px solid var(--theme); padding-left: 12px; margin-bottom: 8px; }
h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 16px; margin: 18px 0 6px; }
.meta, .note, figure details summary { color: #555; font-size: 12px; }
.figures { display: flex; gap: 10px; flex-wrap: wrap; margin: 10px 0; }
.figures div { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 130px; }
.figures b { display: block; font-size: 20px; }
.charts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; }
figure.chart { margin: 0; border: 1px solid #eee; border-radius: 6px; padding: 4px; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
table { border-collapse: collapse; width: 100%%; font-size: 12px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 6px; text-align: left; vertical-align: top; }
blockquote { margin: 0 0 8px; padding: 4px 10px; border-left: 4px solid var(--theme);
             background: #fafafa; }
blockquote footer { color: #666; font-size: 11px; }
.swatch { display: inline-block; width: 12px; height: 12px; background: var(--theme);
          border: 1px solid #888; vertical-align: middle; }
.empty { color: #777; font-style: italic; }
footer.page { margin-top: 16px; color: #666; font-size: 11px; border-top: 1px solid #ddd;
              padding-top: 6px; }
@media (max-width: 900px) { .charts, .cols { grid-template-columns: 1fr; } }
@media print { body { max-width: none; padding: 0; font-size: 11px; } details { display: none; }
               @page { size: A4 landscape; margin: 10mm; } }
"""


def _render(
    detail: dict[str, Any],
    split: list[dict[str, Any]],
    alerts: dict[str, Any],
    last_run: dict[str, Any] | None,
    f: Filters,
    when: datetime,
) -> str:
    from plotly.offline import get_plotlyjs

    tid, label = detail["theme_id"], detail["label"]
    color = theme_color(tid)
    merged = ""
    if detail.get("requested_id") and detail["requested_id"] != tid:
        merged = f" (requested {_e(detail['requested_id'])}, merged into this theme)"
    if detail.get("merged_from"):
        merged += f" · holds merged themes {_e(', '.join(detail['merged_from']))}"
    renamed = ""
    if detail.get("original_label") and detail["original_label"] != label:
        renamed = f" · renamed from “{_e(detail['original_label'])}”"
    growth = detail["growth"]
    figures = [
        ("records", f"{detail['size']:,}"),
        ("growth, last 28 days", "–" if growth is None else f"{growth:+.0%}"),
        ("mean sentiment (−1 to +1)", _signed(detail["sentiment"], "+.2f")),
        ("sub-themes", str(detail["subtheme_count"])),
        (
            "last 28 days / 28 before",
            f"{detail['recent_count']:,} / {detail['previous_count']:,}",
        ),
    ]
    figs = "".join(f"<div><b>{_e(v)}</b>{_e(k)}</div>" for k, v in figures)
    run_line = f"theme written by run {_e(detail.get('run_id') or '–')}"
    if last_run:
        run_line += f"; latest analysis run {_e(last_run['run_id'])} ({_e(last_run.get('status'))})"
    head_meta = (
        f'Theme {_e(tid)} <span class="swatch" title="theme colour"></span>{merged}{renamed}'
        f"<br>Filters: {_e(_filters_text(f))}<br>{run_line}"
        f"<br>Generated {_e(_fmt_time(when))} by CivicPulse {_e(__version__)}"
    )
    keywords = ", ".join(detail["keywords"]) or "–"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Theme report: {_e(label)}</title>"
        '<meta name="generator" content="CivicPulse">'
        f"<style>{_CSS % {'color': color}}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>"
        f'<header><h1>{_e(label)}</h1><div class="meta">{head_meta}</div></header>'
        f"<p><b>Keywords:</b> {_e(keywords)}</p>"
        f'<div class="figures">{figs}</div>'
        + _charts(detail, split, color)
        + '<div class="cols"><section><h2>Representative requests and comments</h2>'
        + _quotes(detail["examples"])
        + "</section><section><h2>Sub-themes</h2>"
        + _subthemes(detail["subthemes"])
        + "<h2>Emerging-needs alerts</h2>"
        + _alerts(alerts)
        + "</section></div>"
        '<footer class="page">Texts are redacted before they are stored: names, phone numbers, '
        "e-mail addresses, licence plates, card numbers and house numbers are replaced by "
        "placeholders such as [PHONE]. Growth compares the last 28 days of the period with the "
        "28 days before; it is shown only when that earlier window has records.</footer>"
        "</body></html>\n"
    )
