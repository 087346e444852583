"""Service delivery: how the city responded, per theme, category or area, compared fairly."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from analyzer import outcomes as service
from api.deps import FiltersDep, StoreDep
from api.schemas import MAX_SHORT, OutcomeExamples, OutcomeLabel, OutcomesOut

router = APIRouter(prefix="/v1", tags=["outcomes"])

By = Literal["theme", "category", "area"]
TargetQuery = Annotated[
    list[Annotated[str, Query(max_length=MAX_SHORT)]] | None,
    Query(
        max_length=500,
        description="a target as CATEGORY:DAYS (repeatable); on time = closed within it",
    ),
]


def _targets(values: list[str] | None) -> service.Targets | None:
    if not values:
        return None
    days: dict[tuple[str | None, str], float] = {}
    for value in values:
        category, sep, raw = value.rpartition(":")
        try:
            number = float(raw)
        except ValueError:
            number = float("nan")
        if not sep or not category.strip() or not number > 0 or number == float("inf"):
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "target"),
                        "msg": "expected CATEGORY:DAYS with DAYS a positive number",
                        "type": "value_error",
                    }
                ]
            )
        days[(None, category.strip())] = number
    return service.Targets(days=days, name="query", digest=repr(sorted(days.items())))


@router.get("/outcomes", response_model=OutcomesOut)
def outcomes(
    store: StoreDep,
    filters: FiltersDep,
    by: By = "area",
    measure: Literal["time_to_close", "on_time", "without_action"] = "time_to_close",
    period: Literal["year", "quarter", "all"] = "year",
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    overdispersion: Annotated[
        bool,
        Query(
            description="widen each group's interval by its own overdispersion (requests of "
            "the same month closing together)"
        ),
    ] = True,
    target: TargetQuery = None,
    theme_id: Annotated[
        str | None,
        Query(max_length=MAX_SHORT, description="only this theme's requests (merges followed)"),
    ] = None,
) -> OutcomesOut:
    """Per group: requests, closed, open; Kaplan-Meier median and 90th-percentile days to close
    with intervals (open requests censored); on-time share against targets; the share of each
    closing outcome; and observed against what the group's mix of requests predicts at citywide
    rates (indirect standardisation: ratio with interval, Benjamini-Hochberg q-value)."""
    report = service.outcomes(
        store,
        by,
        replace(filters, theme_id=theme_id),
        targets=_targets(target),
        measure=measure,
        period=period,
        alpha=alpha,
        overdispersion=overdispersion,
    )
    return OutcomesOut(**report.to_dict())


@router.get("/outcomes/examples", response_model=OutcomeExamples)
def outcome_examples(
    store: StoreDep,
    filters: FiltersDep,
    group: Annotated[str, Query(min_length=1, max_length=MAX_SHORT)],
    by: By = "area",
    outcome: OutcomeLabel | None = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_EXAMPLES)] = 10,
    target: TargetQuery = None,
    theme_id: Annotated[str | None, Query(max_length=MAX_SHORT)] = None,
) -> OutcomeExamples:
    """The latest closed requests of one group (optionally of one outcome) with their redacted
    text and closing note, the outcome read from the note, and the days they took."""
    items = service.outcome_examples(
        store,
        by,
        group,
        replace(filters, theme_id=theme_id),
        outcome=outcome,
        targets=_targets(target),
        limit=limit,
    )
    return OutcomeExamples(items=items)  # type: ignore[arg-type]
