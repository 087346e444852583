"""Emerging needs: the latest run's alerts, filtered and paged."""

from __future__ import annotations

from typing import Any

from analyzer.common.clock import as_utc
from analyzer.queries.common import (
    MAX_PAGE,
    Filters,
    Page,
    as_timestamp,
    json_value,
    load_overrides,
    number_or_none,
    records_where,
    rounded,
    text_or_none,
    theme_labels,
)
from analyzer.store.database import Store


def latest_emerging_run(store: Store) -> str | None:
    """The newest run that wrote alerts (alerts of older runs are history, not news)."""
    df = store.query_df(
        "SELECT e.run_id, max(r.started_at) AS started FROM emerging e LEFT JOIN runs r "
        "USING (run_id) GROUP BY e.run_id ORDER BY started DESC NULLS LAST, e.run_id DESC LIMIT 1"
    )
    return None if df.empty else text_or_none(df["run_id"].iloc[0])


def list_emerging(
    store: Store,
    filters: Filters | None = None,
    page: Page | None = None,
    *,
    run_id: str | None = None,
    kind: str | None = None,
    max_q: float | None = None,
) -> dict[str, Any]:
    """Alerts of the latest run (or ``run_id``), strongest evidence first.

    ``since``/``until`` keep alerts whose window overlaps the period; ``source``, ``kind`` and
    ``category`` keep alerts on themes with records of that source / kind / category; ``area``
    matches the alert's.
    """
    f, page = filters or Filters(), page or Page()
    run = run_id or latest_emerging_run(store)
    if run is None:
        return {"items": [], "total": 0, "run_id": None}
    conds, params = ["e.run_id = ?"], [run]
    if f.area:
        conds.append("e.area = ?")
        params.append(f.area)
    if f.since:
        conds.append("e.window_end > ?")
        params.append(as_utc(f.since))
    if f.until:
        conds.append("e.window_start < ?")
        params.append(as_utc(f.until))
    if kind:
        conds.append("e.kind = ?")
        params.append(kind)
    if max_q is not None:
        conds.append("coalesce(e.q_value, e.p_value) <= ?")
        params.append(max_q)
    if f.source or f.kind or f.category or f.theme_id:
        sub = Filters(source=f.source, kind=f.kind, category=f.category)
        where, sub_params = records_where(sub, store=store)
        conds.append(
            "e.theme_id IN (SELECT DISTINCT a.theme_id FROM assignments a "
            f"JOIN records r ON r.id = a.record_id WHERE {where})"
        )
        params.extend(sub_params)
    df = store.query_df(
        "SELECT e.theme_id, e.theme_label, e.kind, e.period, e.window_start, e.window_end, e.area, "
        "e.count, e.baseline, e.ratio, e.p_value, e.q_value, e.examples FROM emerging e "
        f"WHERE {' AND '.join(conds)} "
        "ORDER BY coalesce(e.q_value, e.p_value) NULLS LAST, e.ratio DESC NULLS LAST, e.theme_id",
        params,
    )
    ov = load_overrides(store)
    labels = theme_labels(store)
    items = []
    for r in df.itertuples(index=False):
        tid = text_or_none(r.theme_id)
        eff = ov.resolve(tid) if tid else None
        if f.theme_id and eff != f.theme_id:
            continue
        items.append(
            {
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff) or text_or_none(r.theme_label))
                if eff
                else text_or_none(r.theme_label),
                "kind": text_or_none(r.kind),
                "period": text_or_none(r.period),
                "window_start": as_timestamp(r.window_start),
                "window_end": as_timestamp(r.window_end),
                "area": text_or_none(r.area),
                "count": int(r.count) if number_or_none(r.count) is not None else 0,
                "baseline": rounded(r.baseline),
                "ratio": rounded(r.ratio),
                "p_value": number_or_none(r.p_value),
                "q_value": number_or_none(r.q_value),
                "examples": _example_texts(store, json_value(r.examples, [])),
            }
        )
    return {
        "items": items[page.offset : page.offset + page.limit],
        "total": len(items),
        "run_id": run,
    }


def _example_texts(store: Store, examples: list[Any]) -> list[str]:
    """Alert examples as redacted texts, whether the detector stored texts or record ids."""
    texts = [x.get("text") if isinstance(x, dict) else x for x in examples]
    texts = [str(t) for t in texts if t]
    if not texts:
        return []
    df = store.query_df(
        "SELECT id, text FROM records WHERE id IN (SELECT unnest(?::VARCHAR[]))", [texts]
    )
    by_id = dict(zip(df["id"], df["text"], strict=True))
    return [by_id.get(t, t) for t in texts]


# -- why there is no alert ---------------------------------------------------------------------

# The detector's parameters when a run's manifest does not carry them (the analysis default).
_DEFAULT_DETECTOR = {"period": "W", "windows": 4, "min_count": 10, "fdr": 0.2, "min_ratio": 1.3}
_PERIOD_WORDS = {"W": ("week", 7), "D": ("day", 1), "M": ("month", 30)}


def _latest_analysis(store: Store) -> dict[str, Any] | None:
    """The newest finished analysis run: its id, start and the emerging detector it used."""
    df = store.query_df(
        "SELECT run_id, started_at, manifest FROM runs WHERE kind = 'analyze' AND status = 'done' "
        "ORDER BY finished_at DESC NULLS LAST, started_at DESC NULLS LAST, run_id DESC LIMIT 1"
    )
    if df.empty:
        return None
    manifest = json_value(df["manifest"].iloc[0], {})
    params = manifest.get("parameters", {}).get("emerging") if isinstance(manifest, dict) else None
    return {
        "run_id": str(df["run_id"].iloc[0]),
        "started_at": as_timestamp(df["started_at"].iloc[0]),
        "detector": params if isinstance(params, dict) else {},
    }


def _detector_terms(params: dict[str, Any]) -> dict[str, Any]:
    """The few detector settings an explanation quotes, defaults resolved as the detector does."""
    from analyzer.trends.detector import EmergingDetector

    known = EmergingDetector().get_params()
    merged = {**_DEFAULT_DETECTOR, **{k: v for k, v in params.items() if k in known}}
    detector = EmergingDetector(**{k: v for k, v in merged.items() if k in known})
    period = str(detector.period).upper()[:1]
    word, days = _PERIOD_WORDS.get(period, ("week", 7))
    return {
        "period": word,
        "period_days": days,
        "windows": int(detector.windows),
        "history": int(detector.recent_window()),
        "min_count": int(detector.min_count),
        "fdr": float(detector.fdr),
        "min_ratio": float(detector.min_ratio),
    }


def explain_emerging(store: Store, filters: Filters | None = None) -> dict[str, Any]:
    """Why the latest analysis has (or has no) emerging needs, per source under the filters.

    For each source: its records, how many have a date and a theme, the span of its dates, the
    busiest theme-period of the windows the detector tested (ending at the source's own latest
    record), records that arrived after the analysis, its alerts, and ``reason``: the first of
    no analysis yet, no dates, no themes, too short a history, too few records in any theme's
    period, or "tested, nothing rose enough". ``reason`` at the top sums it up in one line.
    ``since``/``until`` are ignored: the detector always tests the latest periods.
    """
    f = filters or Filters()
    scope = Filters(source=f.source, kind=f.kind, area=f.area, category=f.category)
    where, params = records_where(scope, store=store)
    run = _latest_analysis(store)
    terms = _detector_terms(run["detector"] if run else {})
    word, days, windows = terms["period"], terms["period_days"], terms["windows"]
    trunc = {"week": "week", "day": "day", "month": "month"}[word]
    base = (
        "SELECT r.source, r.created_at, r.ingested_at, a.theme_id FROM records r "
        f"LEFT JOIN assignments a ON a.record_id = r.id WHERE {where}"
    )
    per_source = store.query_df(
        f"WITH b AS ({base}) SELECT source, count(*) AS n, count(created_at) AS dated, "
        "count(theme_id) AS assigned, "
        "count(*) FILTER (WHERE created_at IS NOT NULL AND theme_id IS NOT NULL) AS usable, "
        "min(created_at) AS first, max(created_at) AS last, "
        "count(*) FILTER (WHERE ingested_at > ?) AS after_run "
        "FROM b GROUP BY 1 ORDER BY 2 DESC, 1",
        [*params, run["started_at"] if run else None],
    )
    busiest = store.query_df(
        f"WITH b AS ({base}), ends AS (SELECT source, date_trunc('{trunc}', max(created_at)) "
        "AS last_period FROM b WHERE created_at IS NOT NULL AND theme_id IS NOT NULL GROUP BY 1), "
        f"c AS (SELECT b.source, b.theme_id, date_trunc('{trunc}', b.created_at) AS p, "
        "count(*) AS n FROM b JOIN ends e USING (source) WHERE b.theme_id IS NOT NULL "
        f"AND b.created_at >= e.last_period - INTERVAL {days * (windows - 1)} DAY GROUP BY ALL) "
        "SELECT source, arg_max(theme_id, n) AS theme_id, max(n) AS n, count(DISTINCT theme_id) "
        "AS themes FROM c GROUP BY 1",
        params,
    )
    alerts = _alerts_per_source(store, f)
    ov, labels = load_overrides(store), theme_labels(store)
    peaks = {str(r.source): r for r in busiest.itertuples(index=False)}
    sources = []
    for r in per_source.itertuples(index=False):
        src = str(r.source)
        peak = peaks.get(src)
        first, last = as_timestamp(r.first), as_timestamp(r.last)
        span = 0 if first is None or last is None else int((last - first).days // days) + 1
        top = ov.resolve(str(peak.theme_id)) if peak is not None else None
        item = {
            "source": src,
            "records": int(r.n),
            "dated": int(r.dated),
            "assigned": int(r.assigned),
            "first": first,
            "last": last,
            "periods": span,
            "busiest_theme_id": top,
            "busiest_theme_label": ov.label(top, labels.get(top)) if top else None,
            "busiest_count": int(peak.n) if peak is not None else 0,
            "themes_tested": int(peak.themes) if peak is not None else 0,
            "not_analysed": int(r.after_run) if run else int(r.n),
            "alerts": alerts.get(src, 0),
        }
        item["reason"] = _source_reason(item, run is not None, terms)
        sources.append(item)
    return {
        "run_id": run["run_id"] if run else None,
        "alerts": sum(alerts.values()),
        "detector": terms,
        "sources": sources,
        "reason": _overall_reason(store, f, sources, run is not None),
    }


def _alerts_per_source(store: Store, f: Filters) -> dict[str, int]:
    """Alerts of the latest run per source of their theme's records, under the filters."""
    out: dict[str, int] = {}
    run = latest_emerging_run(store)
    if run is None:
        return out
    items = list_emerging(
        store, Filters(source=f.source, kind=f.kind, area=f.area), Page(limit=MAX_PAGE), run_id=run
    )
    ids = [a["theme_id"] for a in items["items"] if a["theme_id"]]
    if not ids:
        return out
    df = store.query_df(
        "SELECT a.theme_id, min(r.source) AS source FROM assignments a "
        "JOIN records r ON r.id = a.record_id "
        "WHERE a.theme_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
        [ids],
    )
    source_of = dict(zip(df["theme_id"], df["source"], strict=True))
    for tid in ids:
        src = str(source_of.get(tid, ""))
        out[src] = out.get(src, 0) + 1
    return out


def _source_reason(item: dict[str, Any], analysed: bool, t: dict[str, Any]) -> str:
    word, windows = t["period"], t["windows"]
    last = item["last"].date().isoformat() if item["last"] else None
    later = item["not_analysed"]
    tail = (
        f" ({later:,} records arrived after the latest analysis: run `civicpulse analyze`)"
        if analysed and later
        else ""
    )
    if not analysed:
        return "no analysis has run yet: run `civicpulse analyze`"
    if item["alerts"]:
        n = item["alerts"]
        return f"{n} alert{'s' if n != 1 else ''} in the last {windows} {word}s to {last}" + tail
    if not item["dated"]:
        return (
            f"none of its {item['records']:,} records has a date, and emerging needs compare "
            f"{word}s (ingest with --time-col naming the date column)"
        )
    if not item["assigned"]:
        return "none of its records is in a theme yet: run `civicpulse analyze`"
    needed = windows + t["history"]
    if item["periods"] < needed:
        first = item["first"].date().isoformat()
        return (
            f"too little history: {item['periods']} {word}s of dated records ({first} to {last}); "
            f"the detector tests the last {windows} {word}s against at least the "
            f"{t['history']} before them ({needed} {word}s in all)" + tail
        )
    if item["busiest_count"] < t["min_count"]:
        label = item["busiest_theme_label"] or "none"
        return (
            f"too few records: the busiest theme ({label}) had {item['busiest_count']} in one "
            f"{word} of the last {windows} (to {last}); an alert needs at least {t['min_count']}"
            + tail
        )
    return (
        f"{item['themes_tested']} themes tested over the last {windows} {word}s to {last}: none "
        f"rose far enough above its expected share (an alert needs q <= {t['fdr']:g} and at "
        f"least {t['min_ratio']:g} times the expected count)" + tail
    )


def _overall_reason(store: Store, f: Filters, sources: list[dict[str, Any]], analysed: bool) -> str:
    if not sources:
        known = store.query_df(
            "SELECT source, count(*) AS n FROM records GROUP BY 1 ORDER BY 2 DESC"
        )
        if known.empty:
            return "the store has no records: run `civicpulse ingest FILE` first"
        names = ", ".join(str(s) for s in known["source"].head(10))
        asked = ", ".join(
            f"{k} {v!r}"
            for k, v in (
                ("source", f.source),
                ("kind", f.kind),
                ("area", f.area),
                ("category", f.category),
            )
            if v
        )
        return f"no records with {asked}; sources in the store: {names}"
    if not analysed:
        return "no analysis has run yet: run `civicpulse analyze`"
    total = sum(s["alerts"] for s in sources)
    if total:
        return f"{total} alert{'s' if total != 1 else ''}"
    if len(sources) == 1:
        return f"no emerging needs in {sources[0]['source']}: {sources[0]['reason']}"
    return "no emerging needs: " + "; ".join(f"{s['source']}: {s['reason']}" for s in sources)
