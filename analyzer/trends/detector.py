"""Emerging needs: which themes are rising, where, and which themes are brand new.

A theme is *emerging* in a period when its SHARE of the volume rises beyond what comparable periods
predict. Working with shares rather than raw counts is what keeps a scrape gap, a holiday or a busy
month from firing every theme at once; comparing with the same weeks of previous years is what keeps
snow in winter from being news.

Expected count of theme ``k`` in period ``t``::

    volume_k(t)    = records of every OTHER theme (and unassigned ones) in t, each theme counted at
                     most twice its recent level: neither k's own burst nor a snowstorm elsewhere
                     moves k's denominator (``robust_volume``; else the plain total)
    share_recent   = k's pooled share over the last ``recent_periods`` covered periods, its own
                     past bursts counted at most twice their recent level (``robust_baseline``)
    share_seasonal = k's pooled share over t +- ``season_halfwidth`` periods in each of the
                     ``season_years`` previous years (covered periods only)
    expected       = share_b * volume_k(t), b = the baseline chosen for k by ``fit``: recent,
                     seasonal or the max of both, whichever predicted k's own history best;
                     then times exp(beta_k * shock_k(t)) (``common_shocks``): shock_k(t) is the
                     weighted log surprise, in the same period, of the themes that moved together
                     with k in its history (a snowstorm lifts snow, space savers and plowing at
                     once; a volume swing the shares did not absorb moves many themes alike),
                     beta_k how much of it k itself showed (0..1)

Periods with almost no volume (a coverage gap, e.g. Boston "Other" 2019-04..2020-03) are neither
tested nor used as a baseline.

The observed count is tested against ``expected`` with a one-sided negative binomial. Its
overdispersion ``alpha_k`` is calibrated by ``fit`` on the theme's own history (the smallest alpha
under which at most 1% of its past periods, plus a handful of tolerated past emergencies, would have
been flagged at p < 1%; never below what the bulk of its history shows). An exceedance that recurs
at the same time of year (+-3 weeks) in four or more other years (all but one of them, in a shorter
history) is the theme's season (snow in winter), never a tolerated emergency. The relative
variance of the baseline itself (``1 / (baseline count + 1)``) is added, so a theme with little
history needs a larger rise. P-values are adjusted with Benjamini–Hochberg across every theme x
window test of one ``detect`` call, and separately across every theme x area x window test (one
joint family would let hundreds of small area tests drown the city-level ones); an alert needs
``q <= fdr``, ``ratio >= min_ratio`` (the effect size) and ``count >= min_count``, and must not be
the theme's season: a week as surprising (as small a p-value, each against its own baseline) within
+-3 weeks of the same date in two or more earlier years makes it a season peak (``season_peaks``),
reported by ``score`` but never alerted.

Kinds of alert:

- ``surge``: a theme's share of the volume rose;
- ``new_theme``: (almost) all of a theme's records fall in the evaluated windows; it has no history;
- ``area_surge``: a theme's share of an area's volume rose, beyond the theme's change in the rest of
  the city (so a city-wide surge is reported once, as a surge, not once per area).

Input records: ``record_id``, ``theme_id``, ``created_at`` (UTC, or any tz-aware/ISO 8601 value),
optional ``area``, ``text`` (already redacted; only used for examples) and ``theme_label``. A
missing ``theme_id`` (an unassigned record) still counts in the volume. Logs carry counts, never
text. Counting and baselines live in ``analyzer.trends.counts``; the statistics (negative binomial,
Benjamini–Hochberg, calibration, season peaks, shared shocks) in ``analyzer.trends.stats``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.params import Params
from analyzer.errors import InputError
from analyzer.trends.counts import (
    BASELINES,
    PeriodGrid,
    baseline_shares,
    capped_contributions,
    count_grid,
    covered_periods,
    normalise_period,
    require_columns,
    robust_volumes,
    theme_counts,
    theme_keys,
    to_utc_naive,
    volume_adjusted_baseline,
)
from analyzer.trends.stats import (
    ALPHA_GRID,
    apply_shocks,
    benjamini_hochberg,
    calibrated_alpha,
    fit_shocks,
    nb_logpmf,
    nb_sf,
    season_peaks,
)

__all__ = [
    "ALERT_COLUMNS",
    "BASELINES",
    "EmergingDetector",
    "alerts_for_store",
    "apply_shocks",
    "benjamini_hochberg",
    "calibrated_alpha",
    "capped_contributions",
    "fit_shocks",
    "nb_logpmf",
    "nb_sf",
    "season_peaks",
    "theme_counts",
    "volume_adjusted_baseline",
]

log = logging.getLogger(__name__)

ALERT_COLUMNS = [
    "theme_id",
    "theme_label",
    "kind",
    "period",
    "window_start",
    "window_end",
    "area",
    "count",
    "baseline",
    "ratio",
    "p_value",
    "q_value",
    "examples",
]

# the bulk of a theme's history: at most 20% of its periods may reach p < 20%
BULK_LEVEL = 0.2
# Per-period defaults: about two months of recent history and +-2 weeks of season for weekly data.
_RECENT_DEFAULT = {"D": 56, "W": 8, "M": 3}
_HALFWIDTH_DEFAULT = {"D": 10, "W": 2, "M": 1}
_PERIOD_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}

# --------------------------------------------------------------------------------------------
# detector
# --------------------------------------------------------------------------------------------


class EmergingDetector(Params):
    """Flags themes whose share of volume rises beyond season and recent history.

    Parameters
    ----------
    period: "D", "W" or "M".
    min_count: an alert needs at least this many records in its window (10: a week of a handful of
        requests, however far above its baseline, is not yet a need to act on).
    fdr: Benjamini–Hochberg level across the theme-level tests of one ``detect`` call (and,
        separately, across its theme x area tests). The defaults (``fdr=0.2``,
        ``tolerated_events=10``, ``min_count=10``, ``recurrence_days=21``,
        ``recurrence_years=4``, ``season_peak_years=2``, ``common_shocks=True``) were chosen on
        the tune split of benchmarks/emerging.py (``--sweep``): the best recall on planted bursts
        that double a theme by 10+ requests, at under 0.5 false alarms per 50 theme-weeks, with
        COVID-19 flagged and no sidewalk-snow alarm in the winters 2016-17 and 2017-18. (Without the season check
        the snow check capped ``fdr``: the stormiest week of 2017-18 reaches q = 0.19; with it,
        that week is matched by as surprising weeks in earlier Januaries.)
    min_ratio: an alert needs observed / expected at least this (the effect size).
    seasonal: allow seasonal baselines (the same periods of previous years); False: recent only.
    baseline: "auto" (each theme gets the candidate that predicted its own history best, see
        ``fit``), or one of "recent", "seasonal", "max" for every theme.
    season_years, season_halfwidth: how many previous years, and +- how many periods around the same
        date in each (default per period: 2 weeks, 10 days, 1 month).
    recent_periods: how many covered periods before the window make the recent baseline (default per
        period: 8 weeks, 56 days, 3 months).
    min_coverage: a period with less than this fraction of the median period volume is a gap.
    windows: how many of the latest periods (up to ``as_of``) ``detect`` tests.
    by_area: also test theme x area (``area_surge``) when the data has an ``area`` column.
    min_area_volume: areas with fewer records than this in the whole history are not tested.
    new_theme_max_history: a theme is new when at most this fraction of its records up to the
        window's end lie before the first tested window.
    calibration_level: the overdispersion of each theme is the smallest under which at most this
        share of its past periods would have been flagged at p < this level (``calibrated_alpha``).
    tolerated_events: past one-off exceedances tolerated on top of that (real emergencies in the
        theme's history should not make the detector deaf to the next one). Recurring ones are
        never tolerated (``recurrence_days``).
    recurrence_days, recurrence_years: a past exceedance with exceedances within +- this many
        days of the same date in at least ``recurrence_years`` other years is the theme's season
        (Boston's sidewalk snow: storms every winter), not an emergency: it counts against
        ``calibration_level`` and is never one of the ``tolerated_events``, so tolerating more
        emergencies does not teach the detector that a snow theme is calm. None: every
        exceedance may be tolerated (the behaviour before this option).
    common_shocks: learn in ``fit`` which themes' surprises move together (``fit_shocks``) and
        raise or lower each theme's expectation by its co-moving peers' surprise in the same
        period (``apply_shocks``): a shock they share is not one theme's news, and the theme's
        overdispersion is calibrated on what the shared shocks leave unexplained.
    season_peak_years: a rise that a week at the same time of year (+- ``recurrence_days``)
        matched in at least this many of the ``season_years`` previous years (a p-value as small,
        each week against its own baseline) is the theme's season, not news: it is tested and
        reported by ``score`` (``season_peaks``) but never alerted (a storm week like those of
        earlier winters). None: off.
    bulk_alpha: never use less overdispersion than the bulk of the history shows (20% level).
    alpha_floor: lower bound on the overdispersion, so a theme with a suspiciously smooth history is
        not over-trusted.
    min_history_periods: a theme needs this many informative past periods for its own
        overdispersion; otherwise it borrows the median theme's.
    min_baseline_volume: a recent or seasonal baseline built on fewer records (of all themes) than
        this is ignored.
    robust_volume: take each theme's share of the volume of all OTHER records, with their bursts
        capped at twice their recent level (``capped_contributions``), so neither the theme's own
        burst nor a snowstorm elsewhere moves the denominator. False: share of the plain total.
    robust_baseline: build the theme's RECENT baseline on its own past counts capped the same way
        (at twice their recent level, plus 5), so a burst two weeks ago does not hide this week's
        continuation. The seasonal baseline keeps the real counts.
    max_examples: examples per alert (newest first).
    """

    def __init__(
        self,
        period: str = "W",
        *,
        min_count: int = 10,
        fdr: float = 0.2,
        min_ratio: float = 1.3,
        seasonal: bool = True,
        baseline: str = "auto",
        season_years: int = 5,
        season_halfwidth: int | None = None,
        recent_periods: int | None = None,
        min_coverage: float = 0.1,
        windows: int = 1,
        by_area: bool = True,
        min_area_volume: int = 50,
        new_theme_max_history: float = 0.1,
        calibration_level: float = 0.01,
        tolerated_events: int = 10,
        bulk_alpha: bool = True,
        alpha_floor: float = 0.005,
        min_history_periods: int = 20,
        min_baseline_volume: int = 20,
        robust_volume: bool = True,
        robust_baseline: bool = True,
        recurrence_days: int | None = 21,
        recurrence_years: int = 4,
        season_peak_years: int | None = 2,
        common_shocks: bool = True,
        max_examples: int = 5,
    ) -> None:
        self.period = period
        self.min_count = min_count
        self.fdr = fdr
        self.min_ratio = min_ratio
        self.seasonal = seasonal
        self.baseline = baseline
        self.season_years = season_years
        self.season_halfwidth = season_halfwidth
        self.recent_periods = recent_periods
        self.min_coverage = min_coverage
        self.windows = windows
        self.by_area = by_area
        self.min_area_volume = min_area_volume
        self.new_theme_max_history = new_theme_max_history
        self.calibration_level = calibration_level
        self.tolerated_events = tolerated_events
        self.bulk_alpha = bulk_alpha
        self.alpha_floor = alpha_floor
        self.min_history_periods = min_history_periods
        self.min_baseline_volume = min_baseline_volume
        self.robust_volume = robust_volume
        self.robust_baseline = robust_baseline
        self.recurrence_days = recurrence_days
        self.recurrence_years = recurrence_years
        self.season_peak_years = season_peak_years
        self.common_shocks = common_shocks
        self.max_examples = max_examples

    # -- parameters resolved per period ----------------------------------------------------
    def _freq(self) -> str:
        return normalise_period(self.period)

    def _recent(self) -> int:
        r = self.recent_periods
        return _RECENT_DEFAULT[self._freq()] if r is None else int(r)

    def recent_window(self) -> int:
        """How many periods before the tested windows make the recent baseline (the default for
        the period resolved): what "enough history" means when explaining why nothing alerted."""
        return self._recent()

    def _halfwidth(self) -> int:
        h = self.season_halfwidth
        return _HALFWIDTH_DEFAULT[self._freq()] if h is None else int(h)

    def _validate(self) -> None:
        if not 0 < self.fdr < 1:
            raise InputError(f"fdr must be in (0, 1); got {self.fdr}")
        if self.min_ratio < 1:
            raise InputError(f"min_ratio must be >= 1; got {self.min_ratio}")
        if self.windows < 1:
            raise InputError(f"windows must be >= 1; got {self.windows}")
        if self.baseline not in ("auto", *BASELINES):
            raise InputError(
                f"baseline must be auto, recent, seasonal or max; got {self.baseline!r}"
            )
        self._freq()

    def _prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        require_columns(df)
        freq = self._freq()
        frame = pd.DataFrame(
            {
                "record_id": df["record_id"].to_numpy(),
                "theme_id": theme_keys(df["theme_id"]).to_numpy(),
                "ts": to_utc_naive(df["created_at"]).to_numpy(),
            },
            index=df.index,
        )
        frame["period"] = frame["ts"].dt.to_period(freq)
        if "area" in df.columns:
            frame["area"] = df["area"].astype(object).where(df["area"].notna(), None)
        return frame

    def _baseline_kwargs(self) -> dict[str, Any]:
        return {
            "recent_periods": self._recent(),
            "season_years": self.season_years,
            "season_halfwidth": self._halfwidth(),
            "min_baseline_volume": self.min_baseline_volume,
        }

    def _candidates(self) -> tuple[str, ...]:
        if not self.seasonal:
            return ("recent",)
        if self.baseline == "auto":
            return BASELINES
        return (self.baseline,)

    def _volume(
        self, grid: PeriodGrid, covered: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The volume each theme is a share of, and the counts its recent baseline is built on
        (None: the real counts)."""
        if self.robust_volume or self.robust_baseline:
            volume, capped = robust_volumes(grid, covered, self._baseline_kwargs())
            if not self.robust_volume:
                volume = np.broadcast_to(grid.totals[:, None].astype(float), grid.counts.shape)
            return volume.copy(), (capped if self.robust_baseline else None)
        return np.broadcast_to(grid.totals[:, None].astype(float), grid.counts.shape).copy(), None

    def _expected(
        self, grid: PeriodGrid, mode: str | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Expected counts, baseline counts, coverage and the volume each theme is a share of."""
        covered = covered_periods(grid.totals, self.min_coverage)
        volume, recent_counts = self._volume(grid, covered)
        if mode is None:
            mode = self._modes_for(grid.themes)
        share, base = baseline_shares(
            grid.periods,
            grid.counts,
            grid.totals.astype(float),
            covered,
            mode=mode,
            denominators=volume,
            recent_counts=recent_counts,
            **self._baseline_kwargs(),
        )
        mu = share * volume
        mu[~covered] = np.nan
        # a theme whose "other records" vanish (every other source stopped being collected) has no
        # volume to be a share of: that period is a gap for this theme
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a theme with no volume at all
            typical = np.nanmedian(
                np.where(covered[:, None] & (volume > 0), volume, np.nan), axis=0
            )
        mu[~(volume >= self.min_coverage * np.nan_to_num(typical, nan=np.inf))] = np.nan
        return mu, base, covered, volume

    def _shocked(self, grid: PeriodGrid, mu: np.ndarray) -> np.ndarray:
        """Expected counts moved by the co-moving themes' surprise (``common_shocks``)."""
        if self.shocks_ is None:
            return mu
        return apply_shocks(self.shocks_, grid.themes, grid.counts, mu)

    def _p_values(self, grid: PeriodGrid, mu: np.ndarray, base: np.ndarray) -> np.ndarray:
        """One-sided p-value of every theme-period with an expectation (NaN elsewhere)."""
        alpha = self._alpha_for(grid.themes)[None, :] + 1.0 / (base + 1.0)
        ok = np.isfinite(mu)
        p = np.full(mu.shape, np.nan)
        p[ok] = nb_sf(grid.counts[ok], mu[ok], np.broadcast_to(alpha, mu.shape)[ok])
        return p

    def _season_peaks(self, grid: PeriodGrid, p: np.ndarray, covered: np.ndarray) -> np.ndarray:
        """``season_peaks`` of every theme-period, judged by each period's own p-value (zeros
        when ``season_peak_years`` is None)."""
        if self.season_peak_years is None or not self.seasonal or self.recurrence_days is None:
            return np.zeros(grid.counts.shape, dtype=np.int64)
        days = float(self.recurrence_days) / _PERIOD_DAYS[self._freq()]
        return season_peaks(
            grid.periods,
            -np.log10(np.maximum(p, 1e-300)),
            covered,
            years=self.season_years,
            halfwidth=max(1, round(days)),
        )

    def eligible(self, tests: pd.DataFrame) -> np.ndarray:
        """Which tests may alert whatever their q-value: the effect size (``ratio >= min_ratio``),
        enough records (``count >= min_count``) and not the theme's season (``season_peaks``)."""
        ok = (tests["ratio"] >= self.min_ratio) & (tests["count"] >= self.min_count)
        if self.season_peak_years is not None and "season_peaks" in tests.columns:
            ok &= tests["season_peaks"] < self.season_peak_years
        return ok.to_numpy(dtype=bool)

    def alertable(self, tests: pd.DataFrame, fdr: float | None = None) -> np.ndarray:
        """Which tests (rows with ``q_value``, ``ratio``, ``count`` and, from ``score``,
        ``season_peaks``) are alerts at ``fdr`` (default: the detector's)."""
        fdr = self.fdr if fdr is None else fdr
        return self.eligible(tests) & (tests["q_value"] <= fdr).to_numpy(dtype=bool)

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, y: Any = None) -> EmergingDetector:
        """Choose each theme's baseline and learn its overdispersion from its own history.

        For every candidate baseline (recent, seasonal, max of both; only recent when
        ``seasonal=False``) the theme's past periods are predicted, the overdispersion is calibrated
        (``calibrated_alpha``), and the candidate with the highest negative-binomial likelihood of
        the theme's history wins: a theme that follows the calendar (snow) gets a seasonal
        baseline, a theme that drifts over the years gets its recent level, without the upward bias
        that always taking the larger of the two would cost everywhere.
        """
        self._validate()
        frame = self._prepare(df)
        if frame.empty:
            raise InputError("no records to fit the emerging-needs detector on")
        grid = count_grid(frame["period"], frame["theme_id"], self._freq())
        candidates = self._candidates()
        # real past emergencies (a few per theme) are not overdispersion: tolerate them
        tolerated = float(self.tolerated_events)
        # each period's time in years: a past exceedance that recurs at the same time of another
        # year is the theme's season (snow in winter), never one of the tolerated emergencies
        start = grid.periods.start_time
        when = (start.year + (start.dayofyear - 1) / 365.25).to_numpy(dtype=float)
        recurrence = None if self.recurrence_days is None else float(self.recurrence_days) / 365.25
        fits = {c: self._expected(grid, mode=c)[:2] for c in candidates}
        # compare candidates on the same periods: those where every one of them has a baseline
        informative = np.ones_like(grid.counts, dtype=bool)
        for mu, _ in fits.values():
            informative &= np.isfinite(mu)
        informative &= np.fmax.reduce([m for m, _ in fits.values()]) >= 1.0

        alphas: dict[str, float] = {}
        modes: dict[str, str] = {}
        n_used: dict[str, int] = {}
        chosen: dict[int, str] = {}
        for j in range(len(grid.themes)):
            rows = informative[:, j]
            if int(rows.sum()) < self.min_history_periods:
                continue
            # the baseline whose predictions fit the theme's history best (each at its own
            # maximum-likelihood overdispersion, so the comparison is fair)
            scored = []
            for c, (mu, base) in fits.items():
                y, m, extra = grid.counts[rows, j], mu[rows, j], 1.0 / (base[rows, j] + 1.0)
                ll = nb_logpmf(y[None, :], m[None, :], extra[None, :] + ALPHA_GRID[:, None])
                scored.append((float(ll.mean(axis=1).max()), c))
            chosen[j] = max(scored)[1]
        mu_sel = np.full(grid.counts.shape, np.nan)
        base_sel = np.zeros(grid.counts.shape)
        for j, mode in chosen.items():
            mu_sel[:, j], base_sel[:, j] = fits[mode][0][:, j], fits[mode][1][:, j]
        self.shocks_ = None
        if self.common_shocks:
            self.shocks_ = fit_shocks(grid.themes, grid.counts, mu_sel)
            mu_sel = apply_shocks(self.shocks_, grid.themes, grid.counts, mu_sel)
        for j, mode in chosen.items():
            theme = grid.themes[j]
            mu, base = mu_sel[:, j], base_sel[:, j]
            # the overdispersion used in tests: calibrated on the tail (robust to a few real past
            # emergencies) but never below what the bulk of the history shows
            a_tail, n = calibrated_alpha(
                grid.counts[:, j],
                mu,
                base,
                level=self.calibration_level,
                tolerated=tolerated,
                when=when,
                recurrence_window=recurrence,
                recurrence_years=self.recurrence_years,
            )
            a_bulk, _ = calibrated_alpha(grid.counts[:, j], mu, base, level=BULK_LEVEL)
            if not np.isfinite(a_tail):
                continue
            modes[theme] = mode
            alphas[theme] = max(a_tail, a_bulk if self.bulk_alpha else 0.0, self.alpha_floor)
            n_used[theme] = n
        self.alpha_ = alphas
        self.baseline_ = modes
        # a theme without enough history borrows the typical theme's overdispersion, and the most
        # conservative baseline
        self.alpha_default_ = (
            float(np.median(list(alphas.values()))) if alphas else max(0.1, self.alpha_floor)
        )
        self.baseline_default_ = "max" if "max" in candidates else candidates[0]
        self.themes_ = grid.themes.copy()
        self.n_periods_ = len(grid.periods)
        self.history_periods_ = n_used
        self.fitted_span_ = (grid.periods[0], grid.periods[-1])
        chosen = pd.Series(list(modes.values()), dtype=object).value_counts().to_dict()
        log.info(
            "emerging: fitted %d themes over %d periods (median alpha %.3f, baselines %s)",
            len(alphas),
            len(grid.periods),
            self.alpha_default_,
            chosen,
        )
        return self

    def _modes_for(self, themes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.array(
            [self.baseline_.get(t, self.baseline_default_) for t in themes], dtype=object
        )

    def _alpha_for(self, themes: np.ndarray) -> np.ndarray:
        return np.array([self.alpha_.get(t, self.alpha_default_) for t in themes], dtype=float)

    # -- scoring ------------------------------------------------------------------------------
    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        """Every covered theme x period with its count, expected count, ratio and p-value.

        No FDR adjustment and no filtering: this is the raw material of ``detect`` (whose windows
        are a slice of it) and of dashboards. Columns: window_start, window_end, theme_id, count,
        total, baseline, ratio, p_value, season_peaks (in how many earlier years a week at the
        same time of year was as surprising; ``season_peak_years`` of them make it the season).
        """
        self._check_fitted()
        frame = self._prepare(df)
        grid = count_grid(frame["period"], frame["theme_id"], self._freq())
        mu, base, covered, _ = self._expected(grid)
        mu = self._shocked(grid, mu)
        p = self._p_values(grid, mu, base)
        peaks = self._season_peaks(grid, p, covered)
        t, k = np.nonzero(np.isfinite(mu))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = grid.counts[t, k] / mu[t, k]
        return pd.DataFrame(
            {
                "window_start": grid.periods.start_time[t],
                "window_end": (grid.periods + 1).start_time[t],
                "theme_id": grid.themes[k],
                "count": grid.counts[t, k].astype(np.int64),
                "total": grid.totals[t].astype(np.int64),
                "baseline": mu[t, k],
                "ratio": ratio,
                "p_value": p[t, k],
                "season_peaks": peaks[t, k],
            }
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("EmergingDetector is not fitted; call fit(df) first")

    # -- detect -------------------------------------------------------------------------------
    def detect(
        self,
        df: pd.DataFrame,
        as_of: Any = None,
        *,
        theme_labels: Mapping[Any, str] | None = None,
    ) -> pd.DataFrame:
        """Alerts for the last ``windows`` periods up to ``as_of`` (default: the newest record).

        The last window is the whole period that contains ``as_of``; later records are ignored.

        ``df`` must hold the history as well as the windows: the baseline is computed from it.
        ``theme_labels`` maps theme_id to a readable label (else a ``theme_label`` column, else
        the id).
        Returns one row per alert with ``ALERT_COLUMNS``, strongest first (q-value, then ratio).
        """
        self._check_fitted()
        self._validate()
        frame = self._prepare(df)
        if frame.empty:
            return _empty_alerts()
        freq = self._freq()
        if as_of is not None:
            last = to_utc_naive(pd.Series([as_of])).iloc[0].to_period(freq)
            frame = frame[frame["period"] <= last]
            if frame.empty:
                return _empty_alerts()
        else:
            last = frame["period"].max()
        first = last - (self.windows - 1)
        span = (frame["period"].min(), last)
        grid = count_grid(frame["period"], frame["theme_id"], freq, span=span)
        tw = np.arange(len(grid.periods))[grid.periods >= first]
        mu, base, covered, _ = self._expected(grid)
        mu = self._shocked(grid, mu)
        p_all = self._p_values(grid, mu, base)
        peaks = self._season_peaks(grid, p_all, covered)

        tests: list[pd.DataFrame] = []
        # theme-level tests (surge / new_theme)
        alpha_k = self._alpha_for(grid.themes)
        hist = grid.counts[: tw[0]].sum(axis=0) if len(tw) else np.zeros(len(grid.themes))
        upto = grid.counts[: tw[-1] + 1].sum(axis=0) if len(tw) else hist
        with np.errstate(divide="ignore", invalid="ignore"):
            is_new = (upto > 0) & (hist <= self.new_theme_max_history * upto)
        for t in tw:
            if not covered[t]:
                continue
            tests.append(
                pd.DataFrame(
                    {
                        "t": t,
                        "theme_id": grid.themes,
                        "area": None,
                        "kind": np.where(is_new, "new_theme", "surge"),
                        "count": grid.counts[t],
                        "baseline": mu[t],
                        "p_value": p_all[t],
                        "season_peaks": peaks[t],
                    }
                )
            )
        if self.by_area and "area" in frame.columns and len(tw):
            area_tests = self._area_tests(frame, grid, tw, covered, mu, alpha_k, is_new)
            if area_tests is not None:
                tests.append(area_tests)
        if not tests:
            return _empty_alerts()
        res = pd.concat(tests, ignore_index=True)
        res = res[np.isfinite(res["baseline"].to_numpy(dtype=float))]
        # Two BH families: city-level tests (surge, new_theme) and theme x area tests. One joint
        # family would let the many small area tests (themes x areas) drown the city-level ones.
        res["q_value"] = np.nan
        for is_area in (False, True):
            fam = (res["kind"] == "area_surge").to_numpy() == is_area
            res.loc[fam, "q_value"] = benjamini_hochberg(
                res.loc[fam, "p_value"].to_numpy(dtype=float)
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            res["ratio"] = res["count"] / res["baseline"]
        # an area surge is judged beyond the theme's change in the rest of the city, so the
        # city-level season check does not apply to it
        res["season_peaks"] = res["season_peaks"].fillna(0)
        hit = self.alertable(res)
        log.info("emerging: %d tests over %d windows, %d alerts", len(res), len(tw), int(hit.sum()))
        alerts = res[hit].copy()
        if alerts.empty:
            return _empty_alerts()
        alerts["window_start"] = grid.periods.start_time[alerts["t"].to_numpy()]
        alerts["window_end"] = (grid.periods + 1).start_time[alerts["t"].to_numpy()]
        alerts["period"] = freq
        alerts["count"] = alerts["count"].astype(np.int64)
        alerts["theme_label"] = self._labels(df, alerts["theme_id"], theme_labels)
        alerts["examples"] = self._examples(df, frame, grid, alerts)
        alerts = alerts.sort_values(["q_value", "ratio"], ascending=[True, False], kind="stable")
        return alerts[ALERT_COLUMNS].reset_index(drop=True)

    def _area_tests(
        self,
        frame: pd.DataFrame,
        grid: PeriodGrid,
        tw: np.ndarray,
        covered: np.ndarray,
        mu_city: np.ndarray,
        alpha_k: np.ndarray,
        is_new: np.ndarray,
    ) -> pd.DataFrame | None:
        with_area = frame[frame["area"].notna()]
        if with_area.empty:
            return None
        vol = with_area["area"].value_counts()
        areas = [a for a in vol.index if vol[a] >= self.min_area_volume]
        if len(areas) < 2:
            return None  # one area is the whole city: nothing to compare with
        out: list[pd.DataFrame] = []
        span = (grid.periods[0], grid.periods[-1])
        for area in sorted(areas, key=str):
            sub = with_area[with_area["area"] == area]
            g = count_grid(
                sub["period"], sub["theme_id"], self._freq(), themes=grid.themes, span=span
            )
            # the theme's share of the area's OTHER records, as in the city-level test
            others = np.maximum(g.totals[:, None] - g.counts, 0.0)
            share, base = baseline_shares(
                g.periods,
                g.counts,
                g.totals,
                covered,
                mode=self._modes_for(grid.themes),
                denominators=others,
                **self._baseline_kwargs(),
            )
            # an area week with almost no other records is a gap there, not a surge
            typical = np.median(others[covered], axis=0) if covered.any() else others[0] * 0
            thin = others < np.maximum(1.0, self.min_coverage * typical)
            for t in tw:
                if not covered[t] or g.totals[t] <= 0:
                    continue
                m = np.where(thin[t], np.nan, share[t] * others[t])
                y = g.counts[t]
                # beyond the theme's change in the rest of the city: a city-wide surge is one alert
                rest_y = grid.counts[t] - y
                rest_mu = mu_city[t] - m
                with np.errstate(divide="ignore", invalid="ignore"):
                    rest_ratio = np.where(rest_mu > 0, rest_y / rest_mu, 1.0)
                m = m * np.maximum(1.0, np.nan_to_num(rest_ratio, nan=1.0))
                a = alpha_k + 1.0 / (base[t] + 1.0)
                p = nb_sf(y, m, a)
                keep = ~is_new  # a brand-new theme is reported once, as new_theme
                out.append(
                    pd.DataFrame(
                        {
                            "t": t,
                            "theme_id": grid.themes[keep],
                            "area": area,
                            "kind": "area_surge",
                            "count": y[keep],
                            "baseline": m[keep],
                            "p_value": p[keep],
                        }
                    )
                )
        return pd.concat(out, ignore_index=True) if out else None

    def _labels(
        self, df: pd.DataFrame, theme_ids: pd.Series, labels: Mapping[Any, str] | None
    ) -> list[str]:
        mapping: dict[str, str] = {}
        if "theme_label" in df.columns:
            pairs = pd.DataFrame({"k": theme_keys(df["theme_id"]), "v": df["theme_label"]}).dropna()
            mapping.update(pairs.drop_duplicates("k").set_index("k")["v"].astype(str).to_dict())
        if labels:
            mapping.update({str(k): str(v) for k, v in labels.items()})
        return [mapping.get(t, t) for t in theme_ids]

    def _examples(
        self, df: pd.DataFrame, frame: pd.DataFrame, grid: PeriodGrid, alerts: pd.DataFrame
    ) -> list[list[str]]:
        """Up to ``max_examples`` texts of the alert's theme [and area] in its window, newest first.

        A burst's examples are what residents said in that window, so they are read from ``df``.
        """
        if "text" not in df.columns or self.max_examples <= 0:
            return [[] for _ in range(len(alerts))]
        texts = df["text"].reindex(frame.index)
        out: list[list[str]] = []
        for row in alerts.itertuples():
            sel = (frame["theme_id"] == row.theme_id) & (frame["period"] == grid.periods[row.t])
            if row.area is not None and "area" in frame.columns:
                sel &= frame["area"] == row.area
            idx = frame.index[sel.to_numpy()]
            order = frame.loc[idx].sort_values(["ts", "record_id"], ascending=False).index
            chosen = texts.loc[order].dropna().astype(str)
            out.append(chosen[chosen.str.strip() != ""].head(self.max_examples).tolist())
        return out


def _empty_alerts() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ALERT_COLUMNS})


def alerts_for_store(alerts: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """Alerts shaped like the store's ``emerging`` table (examples as JSON text)."""
    import json

    out = alerts.copy()
    out.insert(0, "run_id", run_id)
    out["examples"] = [json.dumps(list(e)) for e in out["examples"]]
    return out
