"""Emerging needs: the latest run's alerts, filtered and paged."""

from __future__ import annotations

from typing import Any

from analyzer.common.clock import as_utc
from analyzer.queries.common import (
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

    ``since``/``until`` keep alerts whose window overlaps the period; ``source`` and ``category``
    keep alerts on themes with records of that source / category; ``area`` matches the alert's.
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
    if f.source or f.category or f.theme_id:
        sub = Filters(source=f.source, category=f.category)
        where, sub_params = records_where(sub)
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
