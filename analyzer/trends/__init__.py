"""Trends: which themes are rising, where, and which are brand new (see ``detector``'s docstring).

- ``counts``: records to a grid of periods x themes, and each theme's expected share of the volume;
- ``stats``: negative binomial tests, Benjamini–Hochberg, calibration, season peaks, shared shocks;
- ``detector``: ``EmergingDetector``, which puts them together, and the alerts table it writes.
"""

from __future__ import annotations

from analyzer.trends.counts import (
    BASELINES,
    capped_contributions,
    theme_counts,
    volume_adjusted_baseline,
)
from analyzer.trends.detector import ALERT_COLUMNS, EmergingDetector, alerts_for_store
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
    "ALPHA_GRID",
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
