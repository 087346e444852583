"""Time to close with open requests censored: Kaplan-Meier quantiles with intervals, and the
Nelson-Aalen expected closures that indirect standardisation compares groups with.

An open request has waited at least its age; dropping it would make slow groups look fast, and
counting it as closed would stop its clock. Kaplan-Meier (statsmodels' ``SurvfuncRight``, with
intervals for its quantiles by inverting the complementary log-log test, as SAS's LIFETEST does)
uses each open request for as long as it is known to have stayed open.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight

__all__ = ["CloseTimes", "close_time_quantiles", "expected_closures"]


@dataclass(frozen=True)
class CloseTimes:
    """Kaplan-Meier quantiles of days to close (None where the curve never gets there: e.g. a
    median while more than half of the requests are still open)."""

    median: float | None
    median_low: float | None
    median_high: float | None
    p90: float | None
    p90_low: float | None
    p90_high: float | None


NO_TIMES = CloseTimes(None, None, None, None, None, None)


def close_time_quantiles(days: np.ndarray, event: np.ndarray, *, alpha: float = 0.05) -> CloseTimes:
    """Median and 90th percentile of days to close with (1 - alpha) intervals."""
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=bool)
    keep = ~np.isnan(days)
    days, event = days[keep], event[keep]
    if len(days) == 0 or not event.any():
        return NO_TIMES
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        sf = SurvfuncRight(days, event.astype(int))
        out: list[float | None] = []
        for p in (0.5, 0.9):
            out.append(_finite(sf.quantile(p)))
            lo, hi = sf.quantile_ci(p, alpha=alpha, method="cloglog")
            out.extend([_finite(lo), _finite(hi)])
    return CloseTimes(*out)


def expected_closures(days: np.ndarray, event: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Per request, the closures its stratum's pooled Nelson-Aalen hazard expects by its time.

    ``sum(expected) == sum(event)`` within every stratum (so over any partition into groups), the
    identity that makes indirect standardisation's observed and expected totals agree. Requests
    without a time (NaN) expect nothing and are not at risk.
    """
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=bool)
    out = np.zeros(len(days))
    keep = ~np.isnan(days)
    if not keep.any():
        return out
    frame = pd.DataFrame(
        {
            "s": pd.factorize(np.asarray(strata)[keep])[0],
            "t": days[keep],
            "d": event[keep].astype(float),
            "row": np.flatnonzero(keep),
        }
    ).sort_values(["s", "t"], kind="stable")
    # at each distinct (stratum, time): deaths d, and at risk = those with time >= t
    by_time = frame.groupby(["s", "t"], sort=False).agg(d=("d", "sum"), n=("d", "size"))
    size = by_time.groupby(level="s")["n"].transform("sum")
    passed = by_time.groupby(level="s")["n"].cumsum() - by_time["n"]
    at_risk = size - passed
    hazard = (by_time["d"] / at_risk).groupby(level="s").cumsum()
    cumulative = hazard.reindex(pd.MultiIndex.from_arrays([frame["s"], frame["t"]])).to_numpy()
    out[frame["row"].to_numpy()] = cumulative
    return out


def _finite(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if not np.isfinite(v) else round(v, 3)
