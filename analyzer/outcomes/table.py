"""The per-group table: how the city responded, per theme, category or area, compared fairly.

One row per group: requests, closed, open; Kaplan-Meier median and 90th-percentile days to close
with intervals; on-time share (when there are targets); the share of each closing outcome among
closed requests; and, for each of three measures (time to close, on time, closed without action),
observed against expected from the citywide rates of the same strata (indirect standardisation),
with the ratio's interval and a Benjamini-Hochberg q-value across the groups.

The strata are the request's category, theme and year, less the dimension the table is grouped
by: areas are compared on category x theme x year, themes on category x year, categories on
theme x year. A group is said to differ when its q-value is under ``alpha``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyzer.common.params import Params
from analyzer.errors import InputError
from analyzer.outcomes.lifecycle import close_states, on_time
from analyzer.outcomes.notes import OUTCOMES, WITHOUT_ACTION, ClosingNoteClassifier
from analyzer.outcomes.standardise import (
    MEASURE_COLUMNS,
    Spread,
    standardise_binary,
    standardise_closures,
)
from analyzer.outcomes.survival import close_time_quantiles
from analyzer.outcomes.targets import Targets

__all__ = [
    "BY",
    "MEASURES",
    "PLURAL",
    "REQUEST_COLUMNS",
    "OutcomeReport",
    "OutcomeTable",
    "classify_requests",
    "verdict",
]

BY = ("theme", "category", "area")
MEASURES = ("time_to_close", "on_time", "without_action")
PERIODS = ("year", "quarter", "all")
# what the table needs per request (see ``analyzer.outcomes.query.request_frame``)
REQUEST_COLUMNS = (
    "id",
    "source",
    "category",
    "theme",
    "area",
    "status",
    "created_at",
    "updated_at",
    "as_of",
    "note",
    "expected_at",
    "lat",
    "lon",
)
# the descriptive columns of a row, before the comparisons (``OutcomeTable._describe``)
DESCRIBE_COLUMNS = (
    "group",
    "requests",
    "closed",
    "open",
    "median_days",
    "median_low",
    "median_high",
    "p90_days",
    "p90_low",
    "p90_high",
    "on_time_share",
    "on_time_requests",
    *(f"share_{o}" for o in OUTCOMES),
    "without_action_share",
    "lat",
    "lon",
)
PLURAL = {"theme": "themes", "category": "categories", "area": "areas"}
ARTICLE = {"theme": "a", "category": "a", "area": "an"}
HOW = {
    "theme": "run `civicpulse analyze` to find the themes",
    "category": "ingest with --label-col naming the city's category column",
    "area": "ingest with --area-col naming a neighbourhood or district column",
}
MISSING = {"theme": "(no theme)", "category": "(no category)", "area": "(no area)"}
# the direction a ratio above 1 means, per measure
ABOVE = {
    "time_to_close": ("faster than its mix predicts", "slower than its mix predicts"),
    "on_time": (
        "more often on time than its mix predicts",
        "less often on time than its mix predicts",
    ),
    "without_action": (
        "more often closed without action than its mix predicts",
        "less often closed without action than its mix predicts",
    ),
}


@dataclass
class OutcomeReport:
    """The table and what a reader must know to read it."""

    rows: pd.DataFrame
    by: str
    measure: str
    alpha: float
    messages: list[str] = field(default_factory=list)
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN as None."""
        rows = json.loads(self.rows.to_json(orient="records", double_precision=6))
        return {
            "by": self.by,
            "measure": self.measure,
            "alpha": self.alpha,
            "rows": rows,
            "messages": list(self.messages),
            "totals": self.totals,
            "counts": self.counts,
        }


def classify_requests(
    requests: pd.DataFrame,
    *,
    targets: Targets | None = None,
    classifier: ClosingNoteClassifier | None = None,
) -> pd.DataFrame:
    """Per request: ``closed``, ``timed``, ``days``, ``event``, ``outcome`` (closed requests only),
    ``target_days``, ``on_time`` (1/0/NaN) and ``without_action`` (1/0/NaN). Rows kept in order."""
    clf = classifier or ClosingNoteClassifier()
    states = close_states(requests)
    note = requests["note"].fillna("").astype(str)
    has_note = (note.str.strip() != "").to_numpy()
    outcome = np.full(len(requests), None, dtype=object)
    closed = states["closed"].to_numpy()
    with_note = closed & has_note
    if with_note.any():
        outcome[with_note] = clf.predict(note[with_note].tolist())
    without = closed & ~has_note
    if without.any():
        outcome[without] = clf.predict_statuses(requests["status"][without].tolist())
    if targets is not None and targets.days:
        target = targets.for_requests(requests["source"], requests["category"])
    else:
        target = np.full(len(requests), np.nan)
    if "expected_at" in requests.columns:
        expected = pd.to_datetime(requests["expected_at"], utc=True, errors="coerce")
        created = pd.to_datetime(requests["created_at"], utc=True, errors="coerce")
        own = ((expected - created).dt.total_seconds() / 86_400.0).to_numpy(dtype=float, copy=True)
        own[own <= 0] = np.nan
        target = np.where(np.isnan(target), own, target)
    known = pd.Series(outcome).isin([o for o in OUTCOMES if o not in ("duplicate", "unknown")])
    without_action = np.where(
        known.to_numpy(), pd.Series(outcome).isin(WITHOUT_ACTION).to_numpy().astype(float), np.nan
    )
    out = states.copy()
    out["outcome"] = outcome
    out["target_days"] = target
    out["on_time"] = on_time(states["days"].to_numpy(), closed, target)
    out["without_action"] = without_action
    out["has_note"] = has_note
    return out


class OutcomeTable(Params):
    """``fit`` classifies the requests; ``transform`` groups and standardises them.

    ``by``: theme, category or area. ``measure``: which comparison fills the table's main
    ``observed`` ... ``q_value`` columns (every measure also has its own prefixed columns).
    ``period``: the time stratum (year, quarter, or all). ``alpha``: interval level and the q-value
    under which a group is said to differ. ``overdispersion``: widen each group's interval and test
    by how much more its count varies than independent requests would, measured within the group
    across the months its requests were made (see ``standardise``).
    """

    def __init__(
        self,
        by: Literal["theme", "category", "area"] = "area",
        *,
        measure: Literal["time_to_close", "on_time", "without_action"] = "time_to_close",
        period: Literal["year", "quarter", "all"] = "year",
        alpha: float = 0.05,
        targets: Targets | None = None,
        overdispersion: bool = True,
    ) -> None:
        self.by = by
        self.measure = measure
        self.period = period
        self.alpha = alpha
        self.targets = targets
        self.overdispersion = overdispersion

    def fit(self, requests: pd.DataFrame) -> OutcomeTable:
        _check(self.by, BY, "by")
        _check(self.measure, MEASURES, "measure")
        _check(self.period, PERIODS, "period")
        if not 0 < self.alpha < 1:
            raise InputError("alpha must be between 0 and 1")
        self.requests_ = requests.reset_index(drop=True)
        self.classified_ = classify_requests(self.requests_, targets=self.targets)
        return self

    def transform(self, requests: pd.DataFrame | None = None) -> OutcomeReport:
        if requests is not None:
            self.fit(requests)
        req, cls = self.requests_, self.classified_
        groups = _labels(req, self.by)
        strata = self._strata(req)
        rows = self._describe(groups, cls)
        options = {
            "alpha": self.alpha,
            "overdispersion": self.overdispersion,
            "clusters": _months(req),
        }
        measures = {
            "time_to_close": standardise_closures(
                cls["days"].to_numpy(), cls["event"].to_numpy(), groups, strata, **options
            ),
            "on_time": standardise_binary(cls["on_time"].to_numpy(), groups, strata, **options),
            "without_action": standardise_binary(
                cls["without_action"].to_numpy(), groups, strata, **options
            ),
        }
        for name, table in measures.items():
            for col in MEASURE_COLUMNS:
                rows[f"{name}_{col}"] = table[col].reindex(rows.index).astype(float)
        main = measures[self.measure]
        rows.insert(len(rows.columns), "measure", self.measure)
        for col in MEASURE_COLUMNS:
            rows[col] = main[col].reindex(rows.index).astype(float)
        rows["differs"] = rows["q_value"] < self.alpha
        rows["verdict"] = [
            verdict(r, q, self.alpha, self.measure)
            for r, q in zip(rows["ratio"], rows["q_value"], strict=True)
        ]
        rows = rows.rename_axis(None).sort_values(
            ["requests", "group"], ascending=[False, True], kind="stable"
        )
        report = OutcomeReport(
            rows=rows.reset_index(drop=True), by=self.by, measure=self.measure, alpha=self.alpha
        )
        report.totals = {name: _totals(t) for name, t in measures.items()}
        known = {dim: int((_labels(req, dim) != MISSING[dim]).sum()) for dim in BY}
        report.counts = {
            "requests": len(req),
            "closed": int(cls["closed"].sum()),
            "open": int((~cls["closed"]).sum()),
            "untimed": int((~cls["timed"]).sum()),
            "closed_timed": int((cls["closed"] & cls["timed"]).sum()),
            "with_created_time": int(
                pd.to_datetime(req["created_at"], utc=True, errors="coerce").notna().sum()
            ),
            "closed_with_note": int((cls["closed"] & cls["has_note"]).sum()),
            "with_target": int(np.isfinite(cls["target_days"]).sum()),
            **{f"with_{dim}": n for dim, n in known.items()},
        }
        report.messages = self._messages(report.counts, measures)
        return report

    # -- pieces ----------------------------------------------------------------------------

    def _strata(self, req: pd.DataFrame) -> np.ndarray:
        created = pd.to_datetime(req["created_at"], utc=True, errors="coerce")
        if self.period == "year":
            period = created.dt.year.astype("Int64").astype(str)
        elif self.period == "quarter":
            period = created.dt.tz_convert(None).dt.to_period("Q").astype(str)
        else:
            period = pd.Series("all", index=req.index)
        parts = [req["source"].fillna("").astype(str), period.fillna("?")]
        for dim in BY:
            if dim != self.by:
                parts.append(_labels(req, dim))
        key = parts[0]
        for p in parts[1:]:
            key = key + "\x1f" + pd.Series(p, index=req.index).astype(str)
        return key.to_numpy(dtype=object)

    def _describe(self, groups: np.ndarray, cls: pd.DataFrame) -> pd.DataFrame:
        frame = cls.assign(group=groups)
        for col in ("lat", "lon"):
            frame[col] = (
                pd.to_numeric(self.requests_[col], errors="coerce").to_numpy()
                if col in self.requests_
                else np.nan
            )
        records = []
        for g, part in frame.groupby("group", sort=False):
            closed = part["closed"].to_numpy()
            timed = part["timed"].to_numpy()
            times = close_time_quantiles(
                part["days"].to_numpy()[timed], part["event"].to_numpy()[timed], alpha=self.alpha
            )
            outcome = part.loc[part["closed"], "outcome"]
            shares = (
                outcome.value_counts(normalize=True) if len(outcome) else pd.Series(dtype=float)
            )
            punctual = part["on_time"].dropna()
            without = part["without_action"].dropna()
            records.append(
                {
                    "group": g,
                    "requests": len(part),
                    "closed": int(closed.sum()),
                    "open": int((~closed).sum()),
                    "median_days": times.median,
                    "median_low": times.median_low,
                    "median_high": times.median_high,
                    "p90_days": times.p90,
                    "p90_low": times.p90_low,
                    "p90_high": times.p90_high,
                    "on_time_share": float(punctual.mean()) if len(punctual) else None,
                    "on_time_requests": len(punctual),
                    **{
                        f"share_{o}": float(shares.get(o, 0.0)) if len(outcome) else None
                        for o in OUTCOMES
                    },
                    "without_action_share": float(without.mean()) if len(without) else None,
                    # where the group's requests are (the median point): places areas on a map
                    "lat": _median(part["lat"]),
                    "lon": _median(part["lon"]),
                }
            )
        if not records:  # no request matches: the table's columns, no rows
            return pd.DataFrame(columns=DESCRIBE_COLUMNS).set_index("group", drop=False)
        return pd.DataFrame(records).set_index("group", drop=False)

    def _messages(self, counts: dict[str, int], measures: dict[str, pd.DataFrame]) -> list[str]:
        """What a reader must know to read the table: what is missing, and how it was compared."""
        n = counts["requests"]
        if n == 0:
            return []  # the caller says why (no requests in the store, or none match the filters)
        out = []
        by, plural = self.by, PLURAL[self.by]
        if counts[f"with_{by}"] == 0:
            out.append(
                f"no request has {ARTICLE[by]} {by}: every request is in '{MISSING[by]}', so there is "
                f"nothing to compare ({HOW[by]})"
            )
        elif counts[f"with_{by}"] < n:
            out.append(
                f"{n - counts[f'with_{by}']:,} of {n:,} requests have no {by}: they form the "
                f"group '{MISSING[by]}'"
            )
        if counts["with_created_time"] == 0:
            out.append(
                "no creation times: days to close and the time-to-close comparison need them "
                "(ingest with --time-col, and --updated-col for the close time)"
            )
        elif counts["untimed"]:
            out.append(
                f"{counts['untimed']:,} requests have no usable close or creation time (closed "
                "without a close time, or closed before they were made): counted, but not in "
                "the times"
            )
        if counts["closed"] == 0:
            out.append(
                "no request is closed: nothing tells a closed request from an open one (ingest "
                "with --status-col, or --updated-col for the close time); open requests count "
                "as waiting"
            )
        if counts["with_target"] == 0:
            out.append(
                "no targets: on-time share not computed (give a targets file, or ingest Open311 "
                "expected_datetime)"
            )
        if counts["closed"] and counts["closed_with_note"] == 0:
            out.append(
                "no closing notes: outcomes come from the status alone (referred, duplicate) "
                "and are otherwise unknown; closed-without-action is not computed"
            )
        for name, table in measures.items():
            spread: Spread = table.attrs.get("spread", Spread())
            what = name.replace("_", " ")
            if spread.phi_high > 1.0:
                out.append(
                    f"{what}: requests of the same {by} and month do not close independently "
                    f"(batches, storms, staffing): each {by}'s interval and test allow for its own "
                    f"overdispersion, {spread.phi_low:.1f} to {spread.phi_high:.1f} times the "
                    "variance of independent requests"
                )
            if spread.groups and spread.p_value is not None and spread.p_value < self.alpha:
                out.append(
                    f"{what}: the {plural} differ among themselves beyond chance (typical "
                    f"difference from the citywide rate about {100 * spread.tau:.0f}%, "
                    f"heterogeneity p {spread.p_value:.2g}, {spread.groups} {plural})"
                )
            elif spread.groups:
                out.append(
                    f"{what}: the {plural} differ among themselves no more than chance allows "
                    f"(heterogeneity p {spread.p_value:.2g}, {spread.groups} {plural})"
                )
            if len(table) and abs(table["observed"].sum() - table["expected"].sum()) > 1e-6 * max(
                1.0, table["observed"].sum()
            ):
                out.append(f"{name}: observed and expected totals differ (a bug: please report)")
        return out


def _months(req: pd.DataFrame) -> np.ndarray:
    """Each request's calendar month of creation (-1: unknown): the clusters whose requests close
    together (batches, storms, a short-staffed month), within which overdispersion is measured."""
    created = pd.to_datetime(req["created_at"], utc=True, errors="coerce")
    return (created.dt.year * 12 + created.dt.month).fillna(-1).to_numpy(dtype=np.int64)


def _totals(table: pd.DataFrame) -> dict[str, float]:
    spread: Spread = table.attrs.get("spread", Spread())
    return {
        "observed": float(table["observed"].sum()),
        "expected": float(table["expected"].sum()),
        # the within-group overdispersion (pooled; the groups' own range) and the between-group
        # spread beyond chance (tau^2, from how many groups, heterogeneity p-value; -1: not tested)
        "phi": round(spread.phi, 4),
        "phi_low": round(spread.phi_low, 4),
        "phi_high": round(spread.phi_high, 4),
        "tau2": round(spread.tau2, 6),
        "spread_groups": float(spread.groups),
        "heterogeneity_p": -1.0 if spread.p_value is None else float(spread.p_value),
    }


def _labels(req: pd.DataFrame, dim: str) -> np.ndarray:
    values = req[dim].astype(object)
    return values.where(values.notna() & (values.astype(str) != ""), MISSING[dim]).to_numpy(
        dtype=object
    )


def _median(values: pd.Series) -> float | None:
    known = values.dropna()
    return round(float(known.median()), 6) if len(known) else None


def verdict(ratio: float, q: float, alpha: float, measure: str) -> str:
    """What a group's ratio and q-value say, in words ("slower than its mix predicts")."""
    if ratio is None or not np.isfinite(ratio) or q is None or not np.isfinite(q):
        return "not measured"
    if q >= alpha:
        return "as its mix predicts"
    above, below = ABOVE[measure]
    return above if ratio > 1 else below


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
