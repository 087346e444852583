"""Fair comparison of groups by indirect standardisation: what each group's own mix of requests
would have got at the citywide rates, against what it got.

A neighbourhood with many slow request types looks slow. Indirect standardisation asks instead:
given *its* requests (their category, theme and period: the strata), what would the city as a
whole have delivered? Expected = the sum over its requests of the pooled rate of each request's
stratum; observed = what happened. Over all groups the two totals are equal by construction (every
stratum's rate is its own observed total spread over its requests), so a ratio above 1 in one place
is balanced by ratios below 1 elsewhere.

Two kinds of measure:

- a yes/no outcome per request (on time; closed without action): expected = the sum of the
  stratum shares, chance variance ``V`` = the sum of ``p (1 - p)``. The interval for the ratio
  inverts the score test of a one-parameter logistic model with the stratum shares as offsets
  (``logit p = logit p_stratum + theta``), so it stays inside what is possible (a share cannot
  exceed 1) even where rates are near 0 or 1; the p-value is that score test at ``theta = 0``. A
  group with fewer than 5 expected either way (yes or no) is described but not tested;
- time to close, with open requests censored: observed = closures, expected = the sum of each
  request's stratum Nelson-Aalen cumulative hazard at its own time (the standardised event ratio of
  survival analysis; ``V = E``); a ratio above 1 means closing faster than the mix predicts.
  Interval: exact Poisson (Garwood); p-value: exact two-sided Poisson.

Overdispersion: requests do not close one by one. Staff close an area's requests in batches, a
storm or a short-staffed month slows every request of it, so an area's count varies more than a
sum of independent requests would, and plain intervals would call a 2% difference significant.
When ``clusters`` are given (the table passes each request's calendar month of creation), each
group's variance is measured from its own requests: the cluster-robust (sandwich) variance of its
observed-minus-expected, ``m / (m - 1) * sum_c (O_c - r E_c)^2`` over its ``m`` clusters, with
``r`` its own ratio. Its ratio to ``V`` is the group's overdispersion ``phi`` (at least 1: never
narrower than chance); a group with fewer than 20 clusters takes the pooled ``phi`` of those with
more. Intervals and tests then treat the counts as quasi-binomial or quasi-Poisson with that
``phi`` (the score interval at ``z sqrt(phi)``; Garwood's interval and the exact test on the
counts divided by ``phi``).

The overdispersion is measured *within* groups on purpose. The other common correction, funnel
plots' (Spiegelhalter 2005), estimates it from how much the groups differ *among themselves* and
then calls that spread ordinary; but whether areas are served differently beyond what their mix
explains is the very question here, and treating real differences among areas as noise would
hide them. How much the groups do differ among themselves beyond chance (a DerSimonian-Laird
``tau``, and the heterogeneity test) is reported beside the table instead (:class:`Spread`).

p-values are adjusted across the groups by Benjamini-Hochberg (false-discovery rate), per
measure; a group without a test has no q-value and does not count among the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, gammainc, gammaincc, logit
from statsmodels.stats.multitest import multipletests

from analyzer.outcomes.survival import expected_closures

__all__ = [
    "MEASURE_COLUMNS",
    "Spread",
    "between_group_spread",
    "cluster_dispersion",
    "standardise_binary",
    "standardise_closures",
]

MEASURE_COLUMNS = ("observed", "expected", "ratio", "ratio_low", "ratio_high", "p_value", "q_value")
_THETA = 30.0  # bound of the offset-logit parameter: exp(30) is "certain" at any share
MIN_CLUSTERS = 20  # a group's own overdispersion needs this many clusters; others take the pooled
MIN_GROUPS = 10  # the between-group spread is estimated from at least this many groups ...
MIN_EXPECTED = 5.0  # ... each with this many expected; a yes/no group is tested from here on


@dataclass(frozen=True)
class Spread:
    """What a reader needs beside the ratios: how overdispersed the counts are, and how much the
    groups differ among themselves beyond chance.

    ``phi``: the pooled within-group overdispersion (1: none, or not measured), ``phi_low`` and
    ``phi_high`` the smallest and largest of the groups' own; ``tau2``: the between-group variance
    of ``theta`` (log-odds or log-rate) beyond chance and overdispersion (DerSimonian-Laird; ``tau``
    is roughly the typical relative difference of a group from the citywide rate); ``groups``: how
    many groups it was estimated from (0: fewer than 10 with 5 or more expected); ``p_value``:
    Cochran's heterogeneity test of "the groups differ only by chance"."""

    phi: float = 1.0
    phi_low: float = 1.0
    phi_high: float = 1.0
    tau2: float = 0.0
    groups: int = 0
    p_value: float | None = None

    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))


def cluster_dispersion(
    groups: np.ndarray,
    clusters: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    variance: pd.Series,
) -> tuple[pd.Series, float]:
    """Each group's overdispersion ``phi`` (indexed like ``variance``: per group) from the
    cluster-robust variance of its per-request ``observed - ratio * expected``, and the pooled
    ``phi`` of the groups with at least 20 clusters (which groups with fewer take). At least 1."""
    cells = (
        pd.DataFrame({"g": groups, "c": clusters, "o": observed, "e": expected})
        .groupby(["g", "c"], sort=False)[["o", "e"]]
        .sum()
        .reset_index()
    )
    totals = cells.groupby("g", sort=False)[["o", "e"]].sum()
    ratio = (totals["o"] / totals["e"]).where(totals["e"] > 0, 1.0)
    residual = cells["o"] - cells["g"].map(ratio).to_numpy() * cells["e"]
    m = cells.groupby("g", sort=False).size()
    robust = (residual**2).groupby(cells["g"], sort=False).sum() * m / (m - 1).clip(lower=1)
    v = variance.reindex(m.index)
    own = (m >= MIN_CLUSTERS) & (v > 0)
    pooled = float(robust[own].sum() / v[own].sum()) if own.any() else 1.0
    pooled = max(1.0, pooled) if np.isfinite(pooled) else 1.0
    phi = (robust / v).where(own, pooled).clip(lower=1.0).fillna(pooled)
    return phi.reindex(variance.index).fillna(pooled), pooled


def between_group_spread(
    observed: np.ndarray, expected: np.ndarray, variance: np.ndarray, phi: np.ndarray
) -> tuple[float, int, float | None]:
    """(``tau2``, groups used, heterogeneity p-value): DerSimonian-Laird on each group's one-step
    estimate ``theta_i = (O_i - E_i) / V_i``, whose variance is ``phi_i / V_i``, over the groups
    with at least 5 expected (none when fewer than 10 of them)."""
    o, e, v, f = (np.asarray(a, dtype=float) for a in (observed, expected, variance, phi))
    keep = (e >= MIN_EXPECTED) & (v > 0)
    k = int(keep.sum())
    if k < MIN_GROUPS:
        return 0.0, 0, None
    theta = (o[keep] - e[keep]) / v[keep]
    w = v[keep] / f[keep]
    centre = float((w * theta).sum() / w.sum())
    q = float((w * (theta - centre) ** 2).sum())
    tau2 = max(0.0, (q - (k - 1)) / float(w.sum() - (w**2).sum() / w.sum()))
    return tau2, k, float(stats.chi2.sf(q, k - 1))


def standardise_binary(
    y: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    alpha: float = 0.05,
    overdispersion: bool = True,
) -> pd.DataFrame:
    """Per group: observed and expected counts of ``y == 1``, their ratio with its interval, p and
    q values. Requests where ``y`` is NaN (not applicable) count in neither. Indexed by group;
    ``attrs["spread"]`` is the :class:`Spread`."""
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
    cells["v"] = cells["n"] * cells["p"] * (1 - cells["p"])
    cells["e"] = cells["n"] * cells["p"]
    sums = cells.groupby("g", sort=False).agg(o=("o", "sum"), e=("e", "sum"), v=("v", "sum"))
    sums["n"] = cells.groupby("g", sort=False)["n"].sum()
    phi, spread = _dispersion(
        frame["g"].to_numpy(), clusters, keep, frame["y"], frame["p"], sums, overdispersion
    )
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for (g, part), f in zip(cells.groupby("g", sort=False), phi, strict=True):
        o, e, v, n = sums.loc[g, ["o", "e", "v", "n"]].astype(float)
        # the normal score test needs 5 or more expected either way
        testable = v > 0 and min(e, n - e) >= MIN_EXPECTED
        p_value = float(2 * stats.norm.sf(abs(o - e) / np.sqrt(f * v))) if testable else np.nan
        lo, hi = _score_bounds(
            o, part["n"].to_numpy(float), part["p"].to_numpy(float), z * np.sqrt(f)
        )
        rows.append(
            {
                "group": g,
                "observed": o,
                "expected": e,
                "ratio": o / e if e > 0 else np.nan,
                "ratio_low": lo / e if e > 0 else np.nan,
                "ratio_high": hi / e if e > 0 else np.nan,
                "p_value": p_value,
            }
        )
    return _with_q(pd.DataFrame(rows), spread)


def standardise_closures(
    days: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    alpha: float = 0.05,
    overdispersion: bool = True,
) -> pd.DataFrame:
    """Per group: observed closures against the closures its strata's pooled hazards expect by
    each request's time (censored requests count for the time they were open), their ratio with
    its interval, p and q values; ``attrs["spread"]`` as in :func:`standardise_binary`."""
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
    sums["v"] = sums["e"]
    phi, spread = _dispersion(
        frame["g"].to_numpy(), clusters, keep, frame["o"], frame["e"], sums, overdispersion
    )
    o, e = sums["o"].to_numpy(), sums["e"].to_numpy()
    # quasi-Poisson: o / phi behaves as a Poisson count with mean e / phi
    qo, qe = o / phi, e / phi
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(qo > 0, stats.chi2.ppf(alpha / 2, 2 * qo) / 2, 0.0) * phi
        hi = stats.chi2.ppf(1 - alpha / 2, 2 * qo + 2) / 2 * phi
        # the exact two-sided Poisson test through the incomplete gamma function
        # (P(X <= k) = Q(k + 1, mu) and P(X >= k) = P(k, mu) hold for a real k as well)
        below = gammaincc(qo + 1, qe)
        above = np.where(qo > 0, gammainc(np.maximum(qo, 1e-12), qe), 1.0)
        p_value = np.minimum(1.0, 2 * np.minimum(below, above))
        out = pd.DataFrame(
            {
                "group": sums.index.to_numpy(dtype=object),
                "observed": o,
                "expected": e,
                "ratio": np.where(e > 0, o / e, np.nan),
                "ratio_low": np.where(e > 0, lo / e, np.nan),
                "ratio_high": np.where(e > 0, hi / e, np.nan),
                "p_value": np.where(e > 0, p_value, np.nan),
            }
        )
    return _with_q(out, spread)


def _dispersion(
    groups: np.ndarray,
    clusters: np.ndarray | None,
    keep: np.ndarray,
    observed: pd.Series,
    expected: pd.Series,
    sums: pd.DataFrame,
    overdispersion: bool,
) -> tuple[np.ndarray, Spread]:
    """Per group ``phi`` (in ``sums``' order) and the :class:`Spread` of the measure."""
    if overdispersion and clusters is not None:
        per_group, pooled = cluster_dispersion(
            groups,
            np.asarray(clusters)[keep],
            observed.to_numpy(float),
            expected.to_numpy(float),
            sums["v"],
        )
        phi = per_group.to_numpy(float)
    else:
        phi, pooled = np.ones(len(sums)), 1.0
    tau2, k, p_value = between_group_spread(sums["o"], sums["e"], sums["v"], phi)
    spread = Spread(
        phi=pooled,
        phi_low=float(phi.min()) if len(phi) else 1.0,
        phi_high=float(phi.max()) if len(phi) else 1.0,
        tau2=tau2,
        groups=k,
        p_value=p_value,
    )
    return phi, spread


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


def _with_q(frame: pd.DataFrame, spread: Spread) -> pd.DataFrame:
    p = frame["p_value"].to_numpy(dtype=float)
    q = np.full(len(p), np.nan)
    tested = np.isfinite(p)
    if tested.any():
        q[tested] = multipletests(p[tested], method="fdr_bh")[1]
    frame["q_value"] = q
    out = frame.set_index("group")
    out.attrs["spread"] = spread
    return out


def _empty() -> pd.DataFrame:
    out = pd.DataFrame(columns=["group", *MEASURE_COLUMNS]).set_index("group")
    out.attrs["spread"] = Spread()
    return out
