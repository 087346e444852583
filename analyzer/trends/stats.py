"""The statistics behind emerging needs (``analyzer.trends.detector``): the negative binomial test, the
Benjamini-Hochberg adjustment, each theme's calibrated overdispersion, season peaks and the shocks
that themes share. Plain numpy/scipy on arrays of periods x themes; no pandas frames of records.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

__all__ = [
    "ALPHA_GRID",
    "apply_shocks",
    "benjamini_hochberg",
    "calibrated_alpha",
    "fit_shocks",
    "nb_logpmf",
    "nb_sf",
    "season_peaks",
]


def _nb_params(
    count: np.ndarray, mean: np.ndarray, alpha: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` broadcast with scipy's (size, p) of the negative binomial with this mean and
    variance ``mean + alpha mean^2``."""
    count, mean, alpha = np.broadcast_arrays(
        np.asarray(count, dtype=float),
        np.asarray(mean, dtype=float),
        np.asarray(alpha, dtype=float),
    )
    size = 1.0 / np.maximum(alpha, 1e-9)
    return count, size, size / (size + np.maximum(mean, 1e-12))


def nb_sf(count: np.ndarray, mean: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """P(Y >= count) for Y negative binomial with this mean and variance ``mean + alpha mean^2``."""
    count, size, p = _nb_params(count, mean, alpha)
    # P(Y > k) = I_{1-p}(k + 1, size), the regularised incomplete beta (scipy.stats.nbinom.sf
    # to 1e-14, without importing scipy.stats: a second of every analysis run)
    out = special.betainc(np.maximum(count, 1.0), size, 1.0 - p)
    return np.where(count <= 0, 1.0, np.clip(out, 0.0, 1.0))


def nb_logpmf(count: np.ndarray, mean: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Log-probability of ``count`` under the negative binomial of ``nb_sf``."""
    count, size, p = _nb_params(count, mean, alpha)
    # scipy.stats.nbinom.logpmf's own formula
    coeff = special.gammaln(size + count) - special.gammaln(count + 1) - special.gammaln(size)
    return coeff + size * np.log(p) + special.xlog1py(count, -p)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), same order as ``p``; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


_SHOCK_MIN_OVERLAP = 52  # periods two themes need in common to estimate their co-movement
_SHOCK_MIN_CORR = 0.2  # co-movement below this is not a shared shock
_SHOCK_CLIP = float(np.log(4.0))  # one peer's surprise counts at most 4x


def _log_residuals(counts: np.ndarray, mu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log((counts + 1.0) / (mu + 1.0))
    return np.where(np.isfinite(mu), r, np.nan)


def fit_shocks(themes: np.ndarray, counts: np.ndarray, mu: np.ndarray) -> dict[str, Any]:
    """Which themes move together beyond their baselines (a snowstorm lifts snow, space savers
    and plowing at once), learnt from the history: per theme, weights on its co-moving peers
    (their positive correlation above ``_SHOCK_MIN_CORR`` of log surprises) and the slope with which
    the peers' weighted surprise carries over to it (0..1)."""
    r = _log_residuals(counts, mu)
    K = r.shape[1]
    ok = np.isfinite(r)
    weights = np.zeros((K, K))
    for k in range(K):
        for j in range(K):
            if j == k:
                continue
            both = ok[:, k] & ok[:, j]
            if int(both.sum()) < _SHOCK_MIN_OVERLAP:
                continue
            a, b = r[both, k], r[both, j]
            if a.std() == 0 or b.std() == 0:
                continue
            weights[k, j] = max(float(np.corrcoef(a, b)[0, 1]) - _SHOCK_MIN_CORR, 0.0)
    shock = _shock(weights, r)
    beta = np.zeros(K)
    for k in range(K):
        use = ok[:, k] & np.isfinite(shock[:, k]) & (shock[:, k] != 0)
        if int(use.sum()) < _SHOCK_MIN_OVERLAP:
            continue
        x, y = shock[use, k], r[use, k]
        beta[k] = float(np.clip((x @ y) / max(float(x @ x), 1e-12), 0.0, 1.0))
    return {"themes": list(map(str, themes)), "weights": weights, "beta": beta}


def _shock(weights: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Each theme's peers' weighted (clipped) log surprise, per period (0 where none is known)."""
    rc = np.clip(np.nan_to_num(r, nan=0.0), -_SHOCK_CLIP, _SHOCK_CLIP)
    have = np.isfinite(r).astype(float)
    num = rc @ weights.T
    den = have @ weights.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def apply_shocks(
    shocks: dict[str, Any], themes: np.ndarray, counts: np.ndarray, mu: np.ndarray
) -> np.ndarray:
    """Expected counts raised (or lowered) by the co-moving peers' surprise in the same period."""
    index = {t: i for i, t in enumerate(shocks["themes"])}
    cols = np.array([index.get(str(t), -1) for t in themes])
    known = cols >= 0
    if not known.any():
        return mu
    K = len(shocks["themes"])
    r = np.full((counts.shape[0], K), np.nan)
    r[:, cols[known]] = _log_residuals(counts[:, known], mu[:, known])
    shock = _shock(shocks["weights"], r) * shocks["beta"][None, :]
    out = mu.copy()
    out[:, known] = mu[:, known] * np.exp(shock[:, cols[known]])
    return out


# the overdispersions ``calibrated_alpha`` tries, smallest first
ALPHA_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 50.0, 80)])


def calibrated_alpha(
    y: np.ndarray,
    mu: np.ndarray,
    base: np.ndarray,
    *,
    level: float = 0.01,
    min_mean: float = 1.0,
    tolerated: float = 0.0,
    when: np.ndarray | None = None,
    recurrence_window: float | None = None,
    recurrence_years: int = 2,
) -> tuple[float, int]:
    """The smallest overdispersion under which a theme's own history looks ordinary.

    Each past period is tested exactly as ``detect`` would test it (negative binomial, variance
    ``mu + (alpha + 1/(base+1)) mu^2``); ``alpha`` is the smallest value on a log grid for which at
    most ``level`` of the informative periods (expected count >= ``min_mean``) reach p < ``level``,
    i.e. the test is calibrated on the theme's history. ``tolerated`` extra exceedances (at least
    one) are allowed, so a few real past emergencies (or a planted burst) do not teach the detector
    that bursts are normal, whereas a theme that bursts every winter (snow) gets the large alpha it
    deserves.

    ``when`` (each period's time in years, e.g. 2016.5 for early July 2016) with
    ``recurrence_window`` (years) makes that distinction explicit: an exceedance that RECURS (in at
    least ``recurrence_years`` other years, or all but one of the other years a shorter history
    spans, an exceedance falls within ``recurrence_window`` of the
    same time of year) is the theme's season, not an emergency, and is never one of the tolerated
    ones: at most ``level`` of the periods (at least one) may be recurring exceedances. So
    tolerating more one-off emergencies does not let a theme's ordinary winter storms through.

    Returns ``(alpha, n)`` with ``n`` the number of informative periods (NaN alpha when there are
    none).
    """
    ok = np.isfinite(mu) & (mu >= min_mean)
    y, mu, base = y[ok], mu[ok], base[ok]
    n = int(y.size)
    if n == 0:
        return float("nan"), 0
    allowed = max(1, int(np.floor(level * n + tolerated)))
    allowed_recurring = max(1, int(np.floor(level * n)))
    seasonal = when is not None and recurrence_window is not None and recurrence_window > 0
    # Only periods above their expectation can be alerts. (Below it, a huge alpha piles the mass
    # at zero and makes even a modest count look improbable: p is not monotone in alpha there.)
    up = y > mu
    if int(up.sum()) <= (allowed_recurring if seasonal else allowed):
        return float(ALPHA_GRID[0]), n
    y, mu, extra = y[up], mu[up], 1.0 / (base[up] + 1.0)
    near: list[np.ndarray] = []
    required: np.ndarray | int = int(recurrence_years)
    if seasonal:
        t_all = np.asarray(when, dtype=float)[ok]
        t = t_all[up]

        def same_time_of_year(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d = np.abs(np.mod(a, 1.0)[:, None] - np.mod(b, 1.0)[None, :])
            apart = np.rint(b[None, :] - a[:, None]).astype(int)
            return np.minimum(d, 1.0 - d) <= float(recurrence_window), apart

        # a short history cannot show recurrence in more years than it has data for at that time
        # of year: all but one of those other years then suffice (2 of 3, 1 of 2)
        same_all, apart_all = same_time_of_year(t, t_all)
        others = np.array(
            [np.unique(apart_all[i][same_all[i] & (apart_all[i] != 0)]).size for i in range(t.size)]
        )
        required = np.maximum(1, np.minimum(required, others - 1))
        same_time, years_apart = same_time_of_year(t, t)
        # one matrix per other year: is exceedance j at the same time of year, k years later?
        near = [
            (same_time & (years_apart == k)).astype(float)
            for k in np.unique(years_apart[same_time])
            if k != 0
        ]
    # scan the grid upwards, a chunk at a time: the first alpha under which the history looks
    # ordinary (most themes stop in the first chunk)
    for lo in range(0, len(ALPHA_GRID), 16):
        grid = ALPHA_GRID[lo : lo + 16]
        p = nb_sf(y[None, :], mu[None, :], extra[None, :] + grid[:, None])
        exceed = p < level
        ok_alpha = exceed.sum(axis=1) <= allowed
        if near:
            e = exceed.astype(float)
            other_years = sum(((e @ m.T) > 0).astype(int) for m in near)
            recurring = exceed & (other_years >= required)
            ok_alpha &= recurring.sum(axis=1) <= allowed_recurring
        if ok_alpha.any():
            return float(grid[int(np.argmax(ok_alpha))]), n
    return float(ALPHA_GRID[-1]), n


def season_peaks(
    periods: pd.PeriodIndex,
    surprise: np.ndarray,
    covered: np.ndarray,
    *,
    years: int,
    halfwidth: int,
) -> np.ndarray:
    """Per period and theme: in how many of the ``years`` previous years a covered period within
    +- ``halfwidth`` periods of the same date was at least as surprising as this one.

    ``surprise`` is (T, K), higher = further above expectation (``EmergingDetector`` uses
    ``-log10`` of each period's own p-value, so each past week is judged against its own baseline
    and noise, not against a share that may have drifted since); NaN where there is no test. Only
    periods strictly before ``t`` count. A storm week of an ordinary winter finds weeks as
    surprising in earlier winters; a new need does not.
    """
    T, K = surprise.shape
    level = np.where(covered[:, None], surprise, np.nan)
    reached = np.zeros((T, K), dtype=np.int64)
    if T == 0 or years <= 0:
        return reached
    base = periods[0].ordinal
    idx = np.arange(T)
    for y in range(1, years + 1):
        shifted = (periods.start_time - pd.DateOffset(years=y)).to_period(periods.freqstr)
        centre = np.asarray(shifted.asi8, dtype=np.int64) - base
        peak = np.full((T, K), -np.inf)
        for off in range(-halfwidth, halfwidth + 1):
            j = centre + off
            ok = (j >= 0) & (j < idx)
            peak = np.fmax(peak, np.where(ok[:, None], level[np.clip(j, 0, T - 1)], np.nan))
        with np.errstate(invalid="ignore"):
            reached += peak >= level
    return reached
