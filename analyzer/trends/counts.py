"""Counting and baselines for emerging needs (``analyzer.trends.detector``): records to a grid of periods x
themes (``theme_counts``), and each theme's expected share of the volume from its recent and
seasonal history (``volume_adjusted_baseline``), with other themes' bursts capped in the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analyzer.errors import InputError

_PERIOD_ALIASES = {
    "D": "D",
    "DAY": "D",
    "DAILY": "D",
    "W": "W",
    "WEEK": "W",
    "WEEKLY": "W",
    "M": "M",
    "MONTH": "M",
    "MONTHLY": "M",
}

# the baselines an expected count can come from (see ``baseline_shares``)
BASELINES = ("recent", "seasonal", "max")
_REQUIRED = ("record_id", "theme_id", "created_at")


def normalise_period(period: str) -> str:
    key = str(period).strip().upper()
    if key not in _PERIOD_ALIASES:
        raise InputError(f"period must be one of D, W, M (day, week, month); got {period!r}")
    return _PERIOD_ALIASES[key]


def require_columns(df: pd.DataFrame, needed: tuple[str, ...] = _REQUIRED) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns)) or "(none)"
        raise InputError(f"missing column {missing[0]!r}; columns found: {found}")


def to_utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (pandas periods are naive); bad values are a user error.

    Times from the store arrive as timestamps; strings (a user's table) go through the one date
    parser ingest uses (``analyzer.ingest.dates``): the format is decided over the whole column,
    so day-first dates are never read month-first where the day is 12 or less."""
    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        ts = s if s.dt.tz is not None else s.dt.tz_localize("UTC")
    elif s.map(lambda v: isinstance(v, datetime | np.datetime64) or pd.isna(v)).all():
        ts = pd.to_datetime(s, utc=True)
    else:
        from analyzer.ingest.dates import parse_time_column

        ts, _ = parse_time_column(s.astype(object), column="created_at", row_offset=0)
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise InputError("missing or unparseable date", row=row, column="created_at")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None)


def theme_keys(values: pd.Series) -> pd.Series:
    """Theme ids as strings; missing, empty and -1 (an outlier label) mean unassigned (None)."""
    s = pd.Series(values)
    if pd.api.types.is_float_dtype(s) and bool(np.all(np.mod(s.dropna(), 1) == 0)):
        s = s.astype("Int64")  # 3.0 (ints with NaN) is theme "3", not "3.0"
    raw = s.to_numpy(dtype=object)
    na = pd.isna(raw)
    out = np.full(len(raw), None, dtype=object)
    out[~na] = [str(v) for v in raw[~na]]
    out[np.isin(out, ["", "-1"])] = None
    return pd.Series(out, index=s.index, dtype=object)


# --------------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------------


@dataclass
class PeriodGrid:
    """Counts on a complete, consecutive period index (zeros filled)."""

    periods: pd.PeriodIndex
    themes: np.ndarray  # theme ids (str)
    counts: np.ndarray  # (T, K) float
    totals: np.ndarray  # (T,) every record, assigned or not


def _period_index(ts: pd.Series, freq: str) -> pd.Series:
    return ts.dt.to_period(freq)


def count_grid(
    per: pd.Series,
    theme: pd.Series,
    freq: str,
    themes: np.ndarray | None = None,
    span: tuple[pd.Period, pd.Period] | None = None,
) -> PeriodGrid:
    lo, hi = span if span is not None else (per.min(), per.max())
    periods = pd.period_range(lo, hi, freq=freq)
    t_idx = np.asarray(pd.PeriodIndex(per).asi8, dtype=np.int64) - lo.ordinal
    totals = np.bincount(t_idx, minlength=len(periods)).astype(float)
    if themes is None:
        themes = np.array(sorted(theme.dropna().unique(), key=_sort_key), dtype=object)
    k_idx = pd.Index(themes).get_indexer(theme.to_numpy())
    ok = k_idx >= 0
    counts = np.zeros((len(periods), len(themes)), dtype=float)
    np.add.at(counts, (t_idx[ok], k_idx[ok]), 1.0)
    return PeriodGrid(periods, themes, counts, totals)


def _sort_key(v: str) -> tuple[int, Any]:
    # numeric ids in numeric order, others after, alphabetically
    try:
        return (0, float(v))
    except ValueError:
        return (1, v)


def theme_counts(df: pd.DataFrame, period: str = "W", *, by_area: bool = False) -> pd.DataFrame:
    """Counts per theme per period (``D``, ``W`` or ``M``), optionally per theme and area.

    Returns a long table with ``window_start``, ``window_end`` (exclusive, UTC-naive), ``theme_id``,
    [``area``], ``count``, ``total`` (all records of that period [and area], assigned or not) and
    ``share`` (= count / total). Without ``by_area`` every theme x period of the full range is
    listed (zeros included); with ``by_area`` only non-zero cells are.
    """
    require_columns(df, ("theme_id", "created_at"))
    freq = normalise_period(period)
    if df.empty:
        cols = ["window_start", "window_end", "theme_id", "count", "total", "share"]
        return pd.DataFrame(columns=cols[:3] + (["area"] if by_area else []) + cols[3:])
    per = _period_index(to_utc_naive(df["created_at"]), freq)
    theme = theme_keys(df["theme_id"])
    if not by_area:
        g = count_grid(per, theme, freq)
        t, k = np.meshgrid(np.arange(len(g.periods)), np.arange(len(g.themes)), indexing="ij")
        out = pd.DataFrame(
            {
                "window_start": g.periods.start_time[t.ravel()],
                "window_end": (g.periods + 1).start_time[t.ravel()],
                "theme_id": g.themes[k.ravel()],
                "count": g.counts.ravel().astype(np.int64),
                "total": g.totals[t.ravel()].astype(np.int64),
            }
        )
    else:
        if "area" not in df.columns:
            raise InputError("missing column 'area' (needed for counts by area)")
        frame = pd.DataFrame({"period": per, "theme_id": theme, "area": df["area"].astype(object)})
        frame = frame[frame["area"].notna()]
        totals = frame.groupby(["period", "area"], sort=True).size().rename("total")
        counts = (
            frame[frame["theme_id"].notna()]
            .groupby(["period", "theme_id", "area"], sort=True)
            .size()
            .rename("count")
            .reset_index()
        )
        out = counts.join(totals, on=["period", "area"])
        pidx = pd.PeriodIndex(out["period"], freq=freq)
        out.insert(0, "window_start", pidx.start_time)
        out.insert(1, "window_end", (pidx + 1).start_time)
        out = out.drop(columns="period")
    out["share"] = np.where(out["total"] > 0, out["count"] / out["total"].clip(lower=1), 0.0)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# baseline
# --------------------------------------------------------------------------------------------


def covered_periods(totals: np.ndarray, min_coverage: float) -> np.ndarray:
    """Periods with real volume. A scrape gap (a few records a month where there are usually
    thousands) must neither be tested nor serve as a baseline."""
    nz = totals[totals > 0]
    if nz.size == 0:
        return np.zeros_like(totals, dtype=bool)
    return totals >= max(1.0, min_coverage * float(np.median(nz)))


def _window_sums(cum: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Sum over rows [start, stop) from a cumulative array with a leading zero row."""
    start = np.clip(start, 0, cum.shape[0] - 1)
    stop = np.clip(stop, 0, cum.shape[0] - 1)
    stop = np.maximum(stop, start)
    return cum[stop] - cum[start]


def baseline_shares(
    periods: pd.PeriodIndex,
    counts: np.ndarray,
    totals: np.ndarray,
    covered: np.ndarray,
    *,
    recent_periods: int,
    mode: str | np.ndarray,
    season_years: int,
    season_halfwidth: int,
    denominators: np.ndarray | None = None,
    min_baseline_volume: float = 20.0,
    recent_counts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected share per (period, theme) and the baseline count behind it.

    ``counts`` is (T, K); ``totals`` (T,) is the volume shares are taken of, unless
    ``denominators`` (T, K) gives each column its own. ``mode`` (one, or one per theme) is
    ``"recent"`` (the last ``recent_periods`` covered periods), ``"seasonal"`` (the same periods of
    previous years, falling back to recent where there are none) or ``"max"`` (the larger of the
    two). Only covered periods strictly before ``t`` are used, so the baseline of a period never
    sees that period. ``recent_counts`` (T, K), if given, replaces ``counts`` in the recent
    baseline only (the theme's past bursts capped, see ``_capped_own_counts``); the seasonal one
    keeps the real counts, since last winter's peaks are exactly what it must remember. Returns
    ``(share, base_count)``, NaN share where there is no baseline volume.
    """
    modes = np.broadcast_to(np.asarray(mode, dtype=object), (counts.shape[1],))
    bad = set(modes) - set(BASELINES)
    if bad:
        raise InputError(f"baseline must be one of {', '.join(BASELINES)}; got {sorted(bad)[0]!r}")
    seasonal = bool(np.any(modes != "recent"))
    T = counts.shape[0]
    den = totals if denominators is None else denominators
    den2 = den[:, None] if den.ndim == 1 else den
    cmask = covered[:, None].astype(float)
    c_cov = counts * cmask
    n_cov = np.broadcast_to(den2, counts.shape) * cmask

    # recent: the last `recent_periods` covered periods before t (skipping gaps entirely)
    cov_idx = np.flatnonzero(covered)
    rcounts = counts if recent_counts is None else recent_counts
    cc = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(rcounts[cov_idx], axis=0)])
    nn = np.vstack(
        [
            np.zeros((1, counts.shape[1])),
            np.cumsum(np.broadcast_to(den2, counts.shape)[cov_idx], axis=0),
        ]
    )
    m = np.searchsorted(cov_idx, np.arange(T))  # covered periods strictly before t
    lo = np.maximum(m - recent_periods, 0)
    rc = _window_sums(cc, lo, m)
    rn = _window_sums(nn, lo, m)

    # seasonal: the same periods of previous years, +-halfwidth, covered only, pooled
    sc = np.zeros_like(rc)
    sn = np.zeros_like(rn)
    if seasonal and season_years > 0:
        cum_c = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(c_cov, axis=0)])
        cum_n = np.vstack([np.zeros((1, counts.shape[1])), np.cumsum(n_cov, axis=0)])
        base = periods[0].ordinal
        freq = periods.freqstr
        starts = periods.start_time
        idx = np.arange(T)
        for y in range(1, season_years + 1):
            shifted = (starts - pd.DateOffset(years=y)).to_period(freq)
            centre = np.asarray(shifted.asi8, dtype=np.int64) - base
            a = centre - season_halfwidth
            b = np.minimum(centre + season_halfwidth + 1, idx)  # never t itself or later
            valid = (b > 0) & (a < T)
            a = np.where(valid, a, 0)
            b = np.where(valid, b, 0)
            sc += _window_sums(cum_c, a, b)
            sn += _window_sums(cum_n, a, b)

    # Jeffreys-like smoothing: a theme absent from its baseline still gets a small, finite share.
    # A baseline with almost no volume (the stray records of a scrape gap) says nothing about
    # shares, and taking the max with it would be arbitrary: it is treated as absent.
    floor = max(float(min_baseline_volume), 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_rec = np.where(rn >= floor, (rc + 0.5) / (rn + 1.0), np.nan)
        s_sea = np.where(sn >= floor, (sc + 0.5) / (sn + 1.0), np.nan)
    has_sea = np.isfinite(s_sea)
    use_sea = np.where(
        modes == "max",
        has_sea & (~np.isfinite(s_rec) | (s_sea > s_rec)),
        (modes == "seasonal") & has_sea,
    )
    share = np.where(use_sea, s_sea, s_rec)
    base_count = np.where(use_sea, sc, rc)
    return share, base_count


def capped_contributions(
    counts: np.ndarray, expected: np.ndarray, *, cap: float = 2.0, slack: float = 5.0
) -> np.ndarray:
    """Each theme's count, capped at ``cap * expected + slack`` (uncapped where none is expected).

    Used for the volume a theme's share is taken of: a burst elsewhere counts only up to twice its
    usual size.
    """
    e = np.where(np.isfinite(expected), expected, np.inf)
    return np.minimum(counts, cap * e + slack)


def robust_volumes(
    grid: PeriodGrid, covered: np.ndarray, kwargs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Per period and theme, the volume of every OTHER record, with other themes' bursts capped;
    and every theme's own counts capped the same way.

    Leaving the theme out means its own burst cannot inflate its own denominator; capping the other
    themes at twice their recent level means a snowstorm (or another theme's burst) does not make
    every theme's share look depressed, nor, once in the baseline, fake surges afterwards. The
    capped own counts serve the theme's recent baseline (``robust_baseline``): last month's burst
    does not raise the bar for this week, so a need that keeps rising for a second and third week
    is still news.
    """
    totals = grid.totals.astype(float)
    loo = np.maximum(totals[:, None] - grid.counts, 0.0)
    recent, _ = baseline_shares(
        grid.periods, grid.counts, totals, covered, mode="recent", denominators=loo, **kwargs
    )
    contrib = capped_contributions(grid.counts, recent * loo)
    capped_total = totals - (grid.counts - contrib).sum(axis=1)
    return np.maximum(capped_total[:, None] - contrib, 0.0), contrib


def volume_adjusted_baseline(
    counts: pd.DataFrame,
    totals: pd.Series | None = None,
    *,
    baseline: str = "max",
    recent_periods: int = 8,
    season_years: int = 5,
    season_halfwidth: int = 2,
    min_coverage: float = 0.1,
    min_baseline_volume: int = 20,
) -> pd.DataFrame:
    """Expected count per period and theme from the theme's share of volume in comparable periods.

    ``counts``: one row per period (a consecutive ``PeriodIndex``, e.g. ``theme_counts``
    pivoted) and one column per theme. ``totals``: the total volume per period (every record,
    assigned or not); defaults to the row sums. ``expected[t, k] = share[t, k] * totals[t]`` with
    the share of ``baseline``: ``"recent"``, ``"seasonal"`` or ``"max"`` (the larger of both); NaN
    for periods without coverage or without any baseline. (``EmergingDetector`` also takes each
    theme's share of the volume of the other themes, with their bursts capped, and chooses the
    baseline per theme.) See the module docstring.
    """
    if not isinstance(counts.index, pd.PeriodIndex):
        raise InputError("counts must be indexed by a PeriodIndex (one row per period)")
    periods = pd.period_range(counts.index.min(), counts.index.max(), freq=counts.index.freq)
    counts = counts.reindex(periods, fill_value=0)
    tot = (
        counts.sum(axis=1) if totals is None else totals.reindex(periods, fill_value=0)
    ).to_numpy(dtype=float)
    cov = covered_periods(tot, min_coverage)
    share, _ = baseline_shares(
        periods,
        counts.to_numpy(dtype=float),
        tot,
        cov,
        recent_periods=recent_periods,
        mode=baseline,
        season_years=season_years,
        season_halfwidth=season_halfwidth,
        min_baseline_volume=min_baseline_volume,
    )
    expected = share * tot[:, None]
    expected[~cov] = np.nan
    return pd.DataFrame(expected, index=periods, columns=counts.columns)
