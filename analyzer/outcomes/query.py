"""Outcomes from the store: the one read that ``civicpulse outcomes``, ``GET /v1/outcomes`` and the
explorer's Service delivery page all call, so the three show the same numbers.

What is read, per record that is a service request (it has a status or a close time; survey and
consultation comments have neither): its source, category, area, status, created and close times
(``created_at``, ``updated_at``), its top-level theme (merges and renames made in the explorer
applied), the staff's closing note and the city's own expected close time where the export had
them. Ingest keeps those two in the record's attributes, redacted like all free text, under the
names of ``analyzer.common.fields``: ``status_notes`` (Open311, Boston; an export's "Status Notes"),
``resolution_description`` (NYC and other Socrata exports) and the like; ``expected_datetime``
(Open311).

Results are computed on read (a few seconds for Boston's 300,000 requests) and memoised per store
state: a new ingest, analysis run or theme edit changes the state, so outcomes follow every
``analyze`` without a stored copy to keep in step.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.fields import EXPECTED_FIELDS, NOTE_FIELDS
from analyzer.errors import InputError
from analyzer.outcomes.table import BY, MISSING, REQUEST_COLUMNS, OutcomeReport, OutcomeTable
from analyzer.outcomes.targets import Targets
from analyzer.queries.common import (
    Filters,
    as_timestamp,
    load_overrides,
    number_or_none,
    records_where,
    text_or_none,
    theme_labels,
    theme_where,
)
from analyzer.store.database import Store

__all__ = [
    "EXPECTED_FIELDS",
    "NOTE_FIELDS",
    "forget_memo",
    "outcome_examples",
    "outcomes",
    "request_frame",
]

MAX_EXAMPLES = 50

_CACHE: OrderedDict[Hashable, Any] = OrderedDict()
_CACHE_SIZE = 12
_LOCK = threading.Lock()


def request_frame(store: Store, filters: Filters | None = None) -> pd.DataFrame:
    """One row per service request matching ``filters``, with the columns of
    :data:`analyzer.outcomes.table.REQUEST_COLUMNS` (times as UTC timestamps)."""
    f = filters or Filters()
    where, params = records_where(f, store=store)
    if f.theme_id:
        cond, extra = theme_where(store, f.theme_id, load_overrides(store))
        where, params = f"{where} AND {cond}", [*params, *extra]
    note = _first_attribute(NOTE_FIELDS)
    expected = _first_attribute(EXPECTED_FIELDS)
    df = store.query_df(
        "WITH src AS (SELECT source, max(greatest(coalesce(updated_at, created_at), "
        "coalesce(created_at, updated_at))) AS as_of FROM records GROUP BY source) "
        "SELECT r.id, r.source, r.category, r.area, r.status, r.created_at, r.updated_at, "
        f"src.as_of, {note} AS note, {expected} AS expected_at, r.lat, r.lon, a.theme_id "
        "FROM records r JOIN src ON src.source = r.source "
        "LEFT JOIN assignments a ON a.record_id = r.id "
        f"WHERE {where} AND (r.status IS NOT NULL OR r.updated_at IS NOT NULL)",
        params,
    )
    df["theme"] = _theme_names(store, df.pop("theme_id"))
    return df[list(REQUEST_COLUMNS)]


def outcomes(
    store: Store,
    by: str = "area",
    filters: Filters | None = None,
    *,
    targets: Targets | None = None,
    measure: str = "time_to_close",
    period: str = "year",
    alpha: float = 0.05,
    overdispersion: bool = True,
) -> OutcomeReport:
    """The per-group outcome table (see :class:`analyzer.outcomes.table.OutcomeTable`)."""
    _check_by(by)
    f = filters or Filters()
    key = ("report", _state(store), f, by, _targets_key(targets), measure, period, alpha)
    key = (*key, overdispersion)
    found = _cached(key)
    if found is not None:
        return found
    table = _fitted(store, f, targets, by=by, measure=measure, period=period, alpha=alpha)
    table.overdispersion = overdispersion
    report = table.transform()
    if report.counts["requests"] == 0:
        report.messages.insert(0, _nothing_to_show(store, f))
    return _remember(key, report)


def outcome_examples(
    store: Store,
    by: str,
    group: str,
    filters: Filters | None = None,
    *,
    outcome: str | None = None,
    targets: Targets | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """The latest closed requests of one group (optionally of one outcome), with their redacted
    text and closing note, outcome and days to close: what a manager reads to trust a figure."""
    _check_by(by)
    if not 1 <= limit <= MAX_EXAMPLES:
        raise InputError(f"limit must be between 1 and {MAX_EXAMPLES}")
    f = filters or Filters()
    table = _fitted(store, f, targets, by=by)
    req, cls = table.requests_, table.classified_
    labels = req[by].astype(object).where(req[by].notna() & (req[by].astype(str) != ""))
    mask = (labels.fillna(MISSING[by]) == group).to_numpy() & cls["closed"].to_numpy()
    if outcome:
        mask &= (cls["outcome"] == outcome).to_numpy()
    picked = req.loc[mask].sort_values("created_at", ascending=False, kind="stable").head(limit)
    if picked.empty:
        return []
    texts = store.query_df(
        "SELECT id, text FROM records WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [picked["id"].astype(str).tolist()],
    ).set_index("id")["text"]
    out = []
    for i, row in picked.iterrows():
        c = cls.loc[i]
        out.append(
            {
                "id": str(row["id"]),
                "created_at": as_timestamp(row["created_at"]),
                "closed_at": as_timestamp(row["updated_at"]),
                "category": text_or_none(row["category"]),
                "theme": text_or_none(row["theme"]),
                "area": text_or_none(row["area"]),
                "status": text_or_none(row["status"]),
                "outcome": text_or_none(c["outcome"]),
                "days": None if not c["timed"] else number_or_none(round(float(c["days"]), 2)),
                "on_time": None if np.isnan(c["on_time"]) else bool(c["on_time"]),
                "text": text_or_none(texts.get(str(row["id"]))),
                "note": text_or_none(row["note"]),
            }
        )
    return out


# -- pieces ----------------------------------------------------------------------------------


def _fitted(
    store: Store,
    f: Filters,
    targets: Targets | None,
    *,
    by: str,
    measure: str = "time_to_close",
    period: str = "year",
    alpha: float = 0.05,
) -> OutcomeTable:
    """An OutcomeTable fitted on the filtered requests (the classification is memoised per store
    state, filters and targets: the grouping and the statistics are the cheap part)."""
    key = ("fitted", _state(store), f, _targets_key(targets))
    fitted = _cached(key)
    if fitted is None:
        fitted = OutcomeTable(targets=targets).fit(request_frame(store, f))
        _remember(key, fitted)
    table = OutcomeTable(by, measure=measure, period=period, alpha=alpha, targets=targets)  # type: ignore[arg-type]
    table.requests_, table.classified_ = fitted.requests_, fitted.classified_
    return table


def _nothing_to_show(store: Store, f: Filters) -> str:
    """Why the table is empty, and what to do: no records, no service requests, or filters."""
    counts = store.query_df(
        "SELECT count(*) AS records, "
        "count(*) FILTER (WHERE status IS NOT NULL OR updated_at IS NOT NULL) AS requests "
        "FROM records"
    ).iloc[0]
    if int(counts["records"]) == 0:
        return "the store is empty: ingest a 311 export first (civicpulse ingest FILE)"
    if int(counts["requests"]) == 0:
        return (
            "no service requests in this store: outcomes need records with a status or a close "
            "time (survey and consultation comments have neither); ingest a 311 export with "
            "--status-col and --updated-col naming those columns"
        )
    return "no service requests match these filters"


def _check_by(by: str) -> None:
    if by not in BY:
        raise InputError(f"--by must be one of {', '.join(BY)}; got {by!r}")


def _first_attribute(keys: tuple[str, ...]) -> str:
    parts = ", ".join(f"nullif(trim(r.attributes->>'{k}'), '')" for k in keys)
    return f"coalesce({parts})"


def _theme_names(store: Store, theme_ids: pd.Series) -> pd.Series:
    """Each record's top-level theme as shown (merges followed, renames applied); a label two
    themes share gets its id, so groups stay apart."""
    ov = load_overrides(store)
    stored = theme_labels(store)
    ids = theme_ids.astype(object)
    unique = [t for t in pd.unique(ids.dropna()) if str(t)]
    effective = {t: ov.resolve(str(t)) for t in unique}
    label = {t: ov.label(e, stored.get(e)) for t, e in effective.items()}
    by_label: dict[str, set[str]] = {}
    for t, e in effective.items():
        by_label.setdefault(label[t], set()).add(e)
    names = {
        t: (label[t] if len(by_label[label[t]]) == 1 else f"{label[t]} ({effective[t]})")
        for t in unique
    }
    return ids.map(names)


def _state(store: Store) -> tuple[Any, ...]:
    """What the outcomes depend on, cheaply: records, files, runs and theme edits."""
    row = store.query_df(
        "SELECT (SELECT count(*) FROM records) AS n, "
        "(SELECT max(ingested_at) FROM records) AS last_record, "
        "(SELECT count(*) FROM files) AS files, "
        "(SELECT max(coalesce(finished_at, started_at)) FROM runs) AS last_run, "
        "(SELECT count(*) FROM runs) AS runs, "
        "(SELECT count(*) FROM theme_overrides) AS edits, "
        "(SELECT max(updated_at) FROM theme_overrides) AS last_edit"
    ).iloc[0]
    return (str(store.path.resolve()), *(str(v) for v in row.tolist()))


def _targets_key(targets: Targets | None) -> str:
    return "" if targets is None else targets.digest or repr(sorted(targets.days.items()))


def forget_memo() -> None:
    """Drop every memoised table (the next read computes from the store: a cold timing)."""
    with _LOCK:
        _CACHE.clear()


def _cached(key: Hashable) -> Any:
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    return None


def _remember(key: Hashable, value: Any) -> Any:
    with _LOCK:
        _CACHE[key] = value
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value
