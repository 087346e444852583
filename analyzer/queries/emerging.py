"""Emerging needs: the latest run's alerts, filtered and paged."""

from __future__ import annotations

from typing import Any

from analyzer.queries._common import (
    Filters,
    Page,
    _json,
    _label_map,
    _num,
    _overrides,
    _records_where,
    _round,
    _str,
    _ts,
    _utc,
)
from analyzer.store.database import Store


def latest_emerging_run(store: Store) -> str | None:
    """The newest run that wrote alerts (alerts of older runs are history, not news)."""
    df = store.query_df(
        "SELECT e.run_id, max(r.started_at) AS started FROM emerging e LEFT JOIN runs r "
        "USING (run_id) GROUP BY e.run_id ORDER BY started DESC NULLS LAST, e.run_id DESC LIMIT 1"
    )
    return None if df.empty else _str(df["run_id"].iloc[0])


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
        params.append(_utc(f.since))
    if f.until:
        conds.append("e.window_start < ?")
        params.append(_utc(f.until))
    if kind:
        conds.append("e.kind = ?")
        params.append(kind)
    if max_q is not None:
        conds.append("coalesce(e.q_value, e.p_value) <= ?")
        params.append(max_q)
    if f.source or f.category or f.theme_id:
        sub = Filters(source=f.source, category=f.category)
        where, sub_params = _records_where(sub)
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
    ov = _overrides(store)
    labels = _label_map(store)
    items = []
    for r in df.itertuples(index=False):
        tid = _str(r.theme_id)
        eff = ov.resolve(tid) if tid else None
        if f.theme_id and eff != f.theme_id:
            continue
        items.append(
            {
                "theme_id": eff,
                "theme_label": ov.label(eff, labels.get(eff) or _str(r.theme_label))
                if eff
                else _str(r.theme_label),
                "kind": _str(r.kind),
                "period": _str(r.period),
                "window_start": _ts(r.window_start),
                "window_end": _ts(r.window_end),
                "area": _str(r.area),
                "count": int(r.count) if _num(r.count) is not None else 0,
                "baseline": _round(r.baseline),
                "ratio": _round(r.ratio),
                "p_value": _num(r.p_value),
                "q_value": _num(r.q_value),
                "examples": _example_texts(store, _json(r.examples, [])),
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
