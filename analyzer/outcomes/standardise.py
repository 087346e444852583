"""Fair comparison of groups by indirect standardisation: what each group's own mix of requests
would have got at the citywide rates, against what it got.

A neighbourhood with many slow request types looks slow. Indirect standardisation asks instead:
given *its* requests (their category, theme and year: the strata), what would the city as a whole
have delivered? Expected = the sum over its requests of the pooled rate of each request's stratum;
observed = what happened. Over all groups the two totals are equal by construction (every stratum's
rate is its own observed total spread over its requests), so a ratio above 1 in one place is
balanced by ratios below 1 elsewhere.

Two kinds of measure:

- a yes/no outcome per request (on time; closed without action): the expected count is the sum of
  the stratum shares. The interval for the ratio comes from a one-parameter logistic model with
  the stratum shares as offsets (``logit p = logit p_stratum + theta``), inverting its score test,
  so it stays inside what is possible (a share cannot exceed 1) even where rates are near 0 or 1;
  the p-value is the score test of ``theta = 0``;
- time to close, with open requests censored: observed = closures, expected = the sum of each
  request's stratum Nelson-Aalen cumulative hazard at its own time (the standardised event ratio of
  survival analysis); a ratio above 1 means closing faster than the mix predicts. Interval: exact
  Poisson (Garwood); p-value: exact two-sided Poisson.

Areas differ among themselves more than chance allows (staff, streets, weather), and with 100,000
requests plain intervals would call a 2% difference significant everywhere. As in funnel plots for
comparing institutions (Spiegelhalter 2005), a multiplicative overdispersion factor is estimated
from the groups' own winsorised z-scores and widens the intervals and tests where it exceeds 1.
p-values are then adjusted across the groups by Benjamini-Hochberg (false-discovery rate), per
measure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, gammainc, gammaincc, logit
from statsmodels.stats.multitest import multipletests

from analyzer.outcomes.survival import expected_closures

__all__ = ["MEASURE_COLUMNS", "dispersion", "standardise_binary", "standardise_closures"]

MEASURE_COLUMNS = ("observed", "expected", "ratio", "ratio_low", "ratio_high", "p_value", "q_value")
_THETA = 30.0  # bound of the offset-logit parameter: exp(30) is "certain" at any share
# overdispersion is estimated only from this many groups with enough expected (Spiegelhalter 2005)
MIN_GROUPS = 10
MIN_EXPECTED = 5.0
WINSOR = 0.10


def dispersion(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> float:
    """Multiplicative overdispersion of the groups' z-scores, as in Spiegelhalter's funnel plots
    for comparing institutions: the mean square of the z-scores winsorised at 10% each side, at
    least 1. Areas differ among themselves for reasons no model of a request captures (staff,
    streets, a snowy year), so with 100,000 requests the plain intervals would flag every area
    for a 2% difference; the factor widens them by what the groups' own spread shows. 1 when
    fewer than 10 groups have 5 or more expected."""
    o, e, v = (np.asarray(a, dtype=float) for a in (observed, expected, variance))
    keep = (e >= MIN_EXPECTED) & (v > 0)
    if keep.sum() < MIN_GROUPS:
        return 1.0
    z = (o[keep] - e[keep]) / np.sqrt(v[keep])
    lo, hi = np.quantile(z, [WINSOR, 1 - WINSOR])
    return max(1.0, float(np.mean(np.clip(z, lo, hi) ** 2)))


def standardise_binary(
    y: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    alpha: float = 0.05,
    overdispersion: bool = True,
) -> pd.DataFrame:
    """Per group: observed and expected counts of ``y == 1``, their ratio with its interval, p and
    q values. Requests where ``y`` is NaN (not applicable) count in neither. Indexed by group;
    ``attrs["dispersion"]`` is the factor the intervals were widened by (1: none)."""
    y = np.asarray(y, dtype=float)
    keep = ~np.isnan(y)
    frame = pd.DataFrame(
        {"g": np.asarray(groups, dtype=object)[keep], "s": np.asarray(strata)[keep], "y": y[keep]}
    )
    if frame.empty:
        return _empty()
    frame["p"] = frame.groupby("s")["y"].transform("mean").to_numpy()
    # the model works per (group, stratum) cell: n requests at one stratum share
    cells = (
        frame.groupby(["g", "s"], sort=False)
        .agg(n=("y", "size"), o=("y", "sum"), p=("p", "first"))
        .reset_index()
    )
    parts = [
        (g, part["n"].to_numpy(float), part["p"].to_numpy(float), float(part["o"].sum()))
        for g, part in cells.groupby("g", sort=False)
    ]
    o = np.array([x[3] for x in parts])
    e = np.array([float((n * p).sum()) for _, n, p, _ in parts])
    v = np.array([float((n * p * (1 - p)).sum()) for _, n, p, _ in parts])
    phi = dispersion(o, e, v) if overdispersion else 1.0
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for (g, n, p, observed), expected, variance in zip(parts, e, v, strict=True):
        if variance > 0:
            p_value = float(2 * stats.norm.sf(abs(observed - expected) / np.sqrt(phi * variance)))
        else:
            p_value = 1.0
        lo, hi = _score_bounds(observed, n, p, z * np.sqrt(phi))
        rows.append(
            {
                "group": g,
                "observed": observed,
                "expected": expected,
                "ratio": observed / expected if expected > 0 else None,
                "ratio_low": lo / expected if expected > 0 else None,
                "ratio_high": hi / expected if expected > 0 else None,
                "p_value": p_value,
            }
        )
    return _with_q(pd.DataFrame(rows), phi)


def standardise_closures(
    days: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    alpha: float = 0.05,
    overdispersion: bool = True,
) -> pd.DataFrame:
    """Per group: observed closures against the closures its strata's pooled hazards expect by
    each request's time (censored requests count for the time they were open). With
    overdispersion, counts are scaled by it (quasi-Poisson) for the interval and the test."""
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=bool)
    keep = ~np.isnan(days)
    if not keep.any():
        return _empty()
    expected = expected_closures(days[keep], event[keep], np.asarray(strata)[keep])
    frame = pd.DataFrame(
        {"g": np.asarray(groups, dtype=object)[keep], "o": event[keep].astype(float), "e": expected}
    )
    sums = frame.groupby("g", sort=False)[["o", "e"]].sum()
    o = sums["o"].to_numpy()
    e = sums["e"].to_numpy()
    phi = dispersion(o, e, e) if overdispersion else 1.0
    # quasi-Poisson: o / phi behaves as a Poisson count with mean e / phi
    qo, qe = o / phi, e / phi
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(qo > 0, stats.chi2.ppf(alpha / 2, 2 * qo) / 2, 0.0) * phi
        hi = stats.chi2.ppf(1 - alpha / 2, 2 * qo + 2) / 2 * phi
        # the exact Poisson test, on the scaled counts through the incomplete gamma function
        # (P(X <= k) = Q(k + 1, mu) and P(X >= k) = P(k, mu) hold for a real k as well)
        below = gammaincc(qo + 1, qe)
        above = np.where(qo > 0, gammainc(np.maximum(qo, 1e-12), qe), 1.0)
        p_value = 2 * np.minimum(below, above)
        out = pd.DataFrame(
            {
                "group": sums.index.to_numpy(dtype=object),
                "observed": o,
                "expected": e,
                "ratio": np.where(e > 0, o / e, np.nan),
                "ratio_low": np.where(e > 0, lo / e, np.nan),
                "ratio_high": np.where(e > 0, hi / e, np.nan),
                "p_value": np.where(e > 0, np.minimum(1.0, p_value), 1.0),
            }
        )
    return _with_q(out, phi)


def _score_bounds(observed: float, n: np.ndarray, p: np.ndarray, z: float) -> tuple[float, float]:
    """Expected counts at the bounds of the score interval for ``theta`` in the offset-logit
    model: where ``(observed - f(theta)) / sqrt(v(theta)) = +-z`` (``f``, ``v`` the model's mean
    and variance of the count). Cells whose share is 0 or 1 cannot move and stay as they are."""
    fixed = float((n * p)[(p <= 0) | (p >= 1)].sum())
    free = (p > 0) & (p < 1)
    n, offset = n[free], logit(p[free])

    def f(theta: float) -> tuple[float, float]:
        pi = expit(offset + theta)
        return fixed + float((n * pi).sum()), float((n * pi * (1 - pi)).sum())

    def solve(sign: float) -> float:
        # score(theta) = (observed - mean) / sd falls as theta rises; find where it equals sign*z
        lo, hi = -_THETA, _THETA
        for _ in range(60):
            mid = (lo + hi) / 2
            mean, var = f(mid)
            score = (observed - mean) / np.sqrt(var) if var > 0 else 0.0
            if score > sign * z:
                lo = mid
            else:
                hi = mid
        return f((lo + hi) / 2)[0]

    if len(n) == 0:
        return fixed, fixed
    return solve(1.0), solve(-1.0)


def _with_q(frame: pd.DataFrame, phi: float = 1.0) -> pd.DataFrame:
    p = frame["p_value"].to_numpy(dtype=float)
    frame["q_value"] = multipletests(p, method="fdr_bh")[1] if len(p) else p
    out = frame.set_index("group")
    out.attrs["dispersion"] = phi
    return out


def _empty() -> pd.DataFrame:
    out = pd.DataFrame(columns=["group", *MEASURE_COLUMNS]).set_index("group")
    out.attrs["dispersion"] = 1.0
    return out
