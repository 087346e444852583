"""Emerging-needs benchmark: EmergingDetector beside a naive z-score detector on real Boston 311.

1. Planted bursts. Real weekly theme series (50,000 Boston "Other" requests; themes from
   ``analyzer.themes.model.ThemeModel`` when it imports and fits, else MiniBatchKMeans k=30 on the same
   cached embeddings). Each replicate plants one burst per theme (themes with a usual week of >= 5
   requests) in a random week: copies of real requests of that theme, spread over the week,
   adding uniform(0.5, 3.0) x the theme's usual weekly count (the mean of the 8 weeks before).
   Detectors run week by week exactly as a user would run them each Monday: a week's verdict uses
   only that week and the past, with BH across that week's themes (``check_equivalence`` compares
   with real ``detect`` calls).

   Tune / test split. Detector settings were chosen on "tune" (bursts planted in 2015-2016, seeds
   1000+) and are reported on "test" (bursts planted in 2017-01..2019-03, seeds 0+), with the
   detector's DEFAULT operating point (q <= fdr, ratio >= min_ratio, count >= min_count). One
   extra figure, labelled ``..._tuned_on_test``, reads off the q threshold that gives exactly 1
   false alarm per 50 theme-weeks on the test split itself: a reference for how good the ranking
   is, never the headline. ``--sweep`` is how the defaults were chosen: it evaluates
   ``SWEEP_GRID`` on the tune split only (recall, false alarms, the snow and COVID checks per
   setting; results/emerging_sweep.json) and names the best tune recall with at most
   ``SWEEP_MAX_FALSE_ALARMS`` per 50, no sidewalk-snow alarm and COVID-19 flagged.

   Two definitions, both reported:

   - ``all_bursts`` (the definition before this revision): recall over every planted burst, the
     +50% ones included; a false alarm is an alert on ANY unplanted theme-week.
   - ``headline``: what a service manager needs to hear about. A planted burst counts when it adds
     at least the usual week and >= 10 records (``size >= 1``) AND the week it lands in then looks
     like a surge: its count is at least twice the usual week and >= 10 above it. (Plants land in
     real weeks, and a real week can be far below usual; +10 copies into a week that had 0 leaves
     a week below twice the usual one, which no reader of the counts would call a doubling.) The
     null is every unplanted theme-week EXCEPT real surges by that same rule (a real week at least
     twice the usual one and >= 10 above it): an alert there may well be right (a real event of
     2017-2019 we have no labels for), so it is neither a hit nor a false alarm; how many of them
     were alerted is reported (``ours_real_surges_alerted_share``). The same rule decides both
     sides, so the detector gains nothing by alerting on real surges it would not get credit for.

   Every size bucket (``by_size``: +50-100%, +100-150%, ... of the usual week) and usual-count bucket
   (``by_usual_weekly_count``) is reported with the recall under both definitions; a Poisson oracle
   that knows each week's true mean shows what is detectable at all.
2. Real checks. (a) The COVID-19 requests of March-April 2020 in Boston "Other" (after the
   2019-04..2020-03 coverage gap) must be flagged. (b) Sidewalk snow in the ordinary winters
   2016-17 and 2017-18 (the five services as themes) must not be.

Baseline, side by side: z-score of the week's raw count against the previous 8 weeks' mean and
standard deviation (floored at 1), alert when z > 3: no season, no volume adjustment, no FDR.

Run: ``nice python -m benchmarks.emerging [--replicates 10] [--seed 0] [--themes auto|kmeans]``.
Prints a table and writes benchmarks/results/emerging.json. ``--sweep [--grid JSON]``: the tune-split
grid instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from analyzer.trends.detector import EmergingDetector, benjamini_hochberg, theme_counts
from benchmarks.common import (
    BOSTON_FILES,
    boston_other_50k,
    boston_service,
    cached_embeddings,
    require_data_raw,
    write_result,
)

COVID = re.compile(
    r"covid|corona|social[\s-]*distanc|\bmasks?\b|gathering|quarantin", flags=re.IGNORECASE
)
NAIVE_WEEKS, NAIVE_Z = 8, 3.0
MIN_USUAL = 5.0  # a theme-week gets a burst only if the theme usually has >= 5 requests a week
USUAL_WEEKS = 8  # a theme's usual week: the mean of the 8 weeks before
SIZES = (0.5, 3.0)  # a burst adds uniform(0.5, 3.0) x the usual week
HEADLINE_MIN_SIZE, HEADLINE_MIN_ADDED = 1.0, 10
# The detector's defaults before they were chosen with ``--sweep`` (issue #3), reported beside the
# new ones on the test split, snow and COVID checks included: what the change bought.
PREVIOUS_DEFAULT: dict[str, Any] = {
    "fdr": 0.05,
    "tolerated_events": 3,
    "min_count": 5,
    "recurrence_days": None,
    "season_peak_years": None,
    "common_shocks": False,
}
# Detector settings are tuned on "tune" (bursts planted in 2015-2016, seeds 1000+) and reported
# on "test" (bursts planted in 2017-01..2019-03, seeds 0+): no figure is tuned on what it reports.
SPLITS: dict[str, dict[str, Any]] = {
    "tune": {
        "weeks": (pd.Timestamp("2015-01-05"), pd.Timestamp("2016-12-26")),
        "seed_offset": 1000,
    },
    "test": {"weeks": (pd.Timestamp("2017-01-02"), pd.Timestamp("2019-03-18")), "seed_offset": 0},
}
# The grid ``--sweep`` evaluates on the tune split, and the false-alarm ceiling a setting must keep
# there (below the 1 per 50, leaving margin for the test split).
SWEEP_GRID: dict[str, tuple[Any, ...]] = {
    "common_shocks": (False, True),
    "season_peak_years": (None, 2, 3),
    "recurrence_days": (21,),
    "recurrence_years": (2, 4),
    "tolerated_events": (8, 10),
    "min_count": (10,),
    "fdr": (0.15, 0.2, 0.25, 0.3),
}
SWEEP_MAX_FALSE_ALARMS = 0.5
WINTERS = {
    "2016-17": (pd.Timestamp("2016-11-28"), pd.Timestamp("2017-03-27")),
    "2017-18": (pd.Timestamp("2017-11-27"), pd.Timestamp("2018-03-26")),
}


# ---------------------------------------------------------------------------------------------
# data and themes
# ---------------------------------------------------------------------------------------------


def records_from_boston(df: pd.DataFrame, theme: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": df["service_request_id"].astype(str).to_numpy(),
            "theme_id": theme,
            "created_at": pd.to_datetime(df["requested_datetime"], utc=True, format="ISO8601"),
            "text": df["description"].fillna("").astype(str).to_numpy(),
        }
    )


def assign_themes(
    texts: list[str], emb: np.ndarray, mode: str, seed: int
) -> tuple[np.ndarray, dict[str, str], str, float]:
    """Theme id per text, readable labels, which method, seconds."""
    t0 = time.perf_counter()
    if mode in {"auto", "thememodel"}:
        try:
            from analyzer.themes.model import ThemeModel

            model = ThemeModel(seed=seed).fit(emb, texts)
            ids = np.asarray(model.labels_, dtype=object)
            labels = {t.theme_id: t.label for t in model.themes_ if t.level == 1}
            return ids, labels, f"ThemeModel ({len(labels)} themes)", time.perf_counter() - t0
        except Exception as exc:  # any failure falls back to the documented baseline
            if mode == "thememodel":
                raise
            print(f"ThemeModel unavailable ({type(exc).__name__}); using MiniBatchKMeans k=30")
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=30, random_state=seed, n_init=3, batch_size=4096).fit(emb)
    ids = np.array([f"K{c:02d}" for c in km.labels_], dtype=object)
    return ids, {}, "MiniBatchKMeans k=30 on MiniLM embeddings", time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# the two detectors, week by week
# ---------------------------------------------------------------------------------------------


def ours_weekly(det: EmergingDetector, df: pd.DataFrame) -> pd.DataFrame:
    """Every theme-week with our verdict as ``detect(df, as_of=week)`` would give it.

    One ``score`` pass and a BH per week is the same computation as calling ``detect`` once per week
    (the baseline of a week only uses earlier weeks); ``check_equivalence`` verifies it.
    """
    sc = det.score(df)
    sc["q_value"] = sc.groupby("window_start")["p_value"].transform(
        lambda p: benjamini_hochberg(p.to_numpy())
    )
    return flag_weekly(sc, det)


def flag_weekly(sc: pd.DataFrame, det: EmergingDetector, fdr: float | None = None) -> pd.DataFrame:
    """The ``alert`` column of a weekly table at the detector's operating point (or ``fdr``)."""
    sc["alert"] = det.alertable(sc, fdr)
    return sc


def check_equivalence(det: EmergingDetector, df: pd.DataFrame, weekly: pd.DataFrame) -> int:
    """Compare the weekly table with real ``detect`` calls on a few weeks; returns weeks checked."""
    weeks = weekly.loc[weekly["alert"], "window_start"].drop_duplicates().sort_values()
    picked = list(weeks.iloc[:: max(1, len(weeks) // 3)][:3])
    for week in picked:
        got = det.detect(df, as_of=week)
        got = set(got.loc[got["kind"] != "area_surge", "theme_id"])
        want = set(weekly.loc[(weekly["window_start"] == week) & weekly["alert"], "theme_id"])
        if got != want:
            raise AssertionError(f"detect() and the weekly table disagree on {week.date()}")
    return len(picked)


def naive_weekly(df: pd.DataFrame) -> pd.DataFrame:
    tc = theme_counts(df, "W")
    wide = tc.pivot(index="window_start", columns="theme_id", values="count").astype(float)
    prev = wide.shift(1).rolling(NAIVE_WEEKS, min_periods=NAIVE_WEEKS)
    z = (wide - prev.mean()) / prev.std(ddof=1).clip(lower=1.0)
    out = z.stack().rename("z").reset_index()
    out["alert"] = out["z"] > NAIVE_Z
    return out


# ---------------------------------------------------------------------------------------------
# 1. planted bursts
# ---------------------------------------------------------------------------------------------


def weekly_wide(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts, usual): weeks x themes; usual = the mean count of the 8 weeks before."""
    tc = theme_counts(df, "W")
    wide = tc.pivot(index="window_start", columns="theme_id", values="count").astype(float)
    return wide, wide.shift(1).rolling(USUAL_WEEKS).mean()


def looks_like_surge(count: Any, usual: Any) -> Any:
    """The benchmark's surge rule: at least twice the usual week and >= 10 records above it."""
    return (count >= (1 + HEADLINE_MIN_SIZE) * usual) & (count - usual >= HEADLINE_MIN_ADDED)


def plant(
    df: pd.DataFrame,
    rng: np.random.Generator,
    rep: int,
    window: tuple[pd.Timestamp, pd.Timestamp],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One burst per theme (where the theme is big enough) in a random week: (data, plants)."""
    wide, usual = weekly_wide(df)
    weeks = usual.index[(usual.index >= window[0]) & (usual.index <= window[1])]
    plants, extra = [], []
    by_theme = {k: g for k, g in df[df["theme_id"].notna()].groupby("theme_id")}
    for theme in usual.columns:
        ok = [w for w in weeks if usual.at[w, theme] >= MIN_USUAL]
        if not ok:
            continue
        week = ok[int(rng.integers(len(ok)))]
        size = float(rng.uniform(*SIZES))
        n = round(size * usual.at[week, theme])
        donors = by_theme[theme]
        pick = donors.iloc[rng.choice(len(donors), n, replace=n > len(donors))].copy()
        pick["created_at"] = week.tz_localize("UTC") + pd.to_timedelta(
            rng.uniform(0, 7 * 86400, n), unit="s"
        )
        pick["record_id"] = [f"planted-{rep}-{theme}-{j}" for j in range(n)]
        extra.append(pick)
        plants.append(
            {
                "window_start": week,
                "theme_id": theme,
                "size": size,
                "usual": usual.at[week, theme],
                "added": n,
                "observed": wide.at[week, theme] + n,
            }
        )
    return pd.concat([df, *extra], ignore_index=True), pd.DataFrame(plants)


def real_surges(df: pd.DataFrame) -> pd.DataFrame:
    """Theme-weeks of the REAL data that already look like a surge (``looks_like_surge``).

    By the benchmark's own rule something emerged there, so an alert on it is not counted as a
    false alarm under the headline definition. Returned as (window_start, theme_id, count, usual).
    """
    wide, usual = weekly_wide(df)
    rise = looks_like_surge(wide, usual)
    out = rise.stack().rename("surge").reset_index()
    out = out[out["surge"]].drop(columns="surge")
    counts = wide.stack().rename("count").reset_index()
    usual_long = usual.stack().rename("usual").reset_index()
    return out.merge(counts, on=["window_start", "theme_id"]).merge(
        usual_long, on=["window_start", "theme_id"]
    )


def large_plant(hits: pd.DataFrame) -> pd.Series:
    """Planted bursts that add at least the usual week and >= 10 records."""
    return (hits["size"] >= HEADLINE_MIN_SIZE) & (hits["added"] >= HEADLINE_MIN_ADDED)


def headline(hits: pd.DataFrame) -> pd.Series:
    """Large plants whose week then looks like a surge by the rule that defines real surges."""
    return large_plant(hits) & looks_like_surge(hits["observed"], hits["usual"])


def poisson_oracle_recall(usual: np.ndarray, added: np.ndarray, rate: float) -> np.ndarray:
    """Power of a test that KNOWS each theme-week's expected count and that counts are Poisson.

    An upper bound for any detector at false-alarm rate ``rate`` per theme-week: the alert threshold
    is the smallest count whose Poisson tail is <= rate; recall is the chance that the week's count
    plus the planted burst reaches it. Real series are noisier than Poisson, so no real detector
    reaches it; it shows how much of a +50% burst on 5-10 requests a week is detectable at all.
    """
    from scipy import stats

    mu = np.asarray(usual, dtype=float)
    threshold = stats.poisson.isf(max(rate, 1e-12), mu) + 1  # P(Y >= threshold) <= rate
    return stats.poisson.sf(threshold - np.asarray(added) - 1, mu)


def _alertable_q(rows: pd.DataFrame, det: EmergingDetector) -> np.ndarray:
    """Per-week q-values, 1 where the effect-size, count or season rule forbids an alert anyway."""
    return np.where(det.eligible(rows), rows["q_value"].fillna(1.0), 1.0)


def _recall(hits: pd.DataFrame, col: str) -> float:
    return round(float(hits[col].mean()), 3) if len(hits) else float("nan")


def planted_benchmark(
    df: pd.DataFrame, replicates: int, seed: int, split: str = "test", **detector: Any
) -> dict[str, Any]:
    """Recall on planted bursts and false alarms on quiet theme-weeks, in the split's weeks."""
    lo, hi = SPLITS[split]["weeks"]
    seed = seed + SPLITS[split]["seed_offset"]
    surges = real_surges(df)
    surges = surges[surges["window_start"].between(lo, hi)]
    surge_key = surges.set_index(["window_start", "theme_id"]).index
    rows = []
    n_null = n_all = fa_ours = fa_ours_all = fa_naive = fa_naive_all = 0
    naive_null_z: list[np.ndarray] = []
    ours_null_q: list[np.ndarray] = []
    alerted_surges = 0
    checked = 0
    seconds = 0.0
    for rep in range(replicates):
        rng = np.random.default_rng(seed + rep)
        data, plants = plant(df, rng, rep, (lo, hi))
        t0 = time.perf_counter()
        det = EmergingDetector(period="W", by_area=False, **detector).fit(data)
        ours = ours_weekly(det, data)
        seconds += time.perf_counter() - t0
        if rep == 0:
            checked = check_equivalence(det, data, ours)
        naive = naive_weekly(data)
        ours = ours[ours["window_start"].between(lo, hi)]
        merged = ours.merge(
            naive[["window_start", "theme_id", "z", "alert"]],
            on=["window_start", "theme_id"],
            how="left",
            suffixes=("", "_naive"),
        )
        merged["alert_naive"] = merged["alert_naive"].fillna(False).astype(bool)
        idx = merged.set_index(["window_start", "theme_id"]).index
        is_plant = idx.isin(plants.set_index(["window_start", "theme_id"]).index)
        is_surge = idx.isin(surge_key)
        hits = plants.merge(merged, on=["window_start", "theme_id"], how="left")
        hits["replicate"] = rep
        rows.append(hits)
        unplanted = merged[~is_plant]
        n_all += len(unplanted)
        fa_ours_all += int(unplanted["alert"].sum())
        fa_naive_all += int(unplanted["alert_naive"].sum())
        null = merged[~is_plant & ~is_surge]
        alerted_surges += int(merged.loc[~is_plant & is_surge, "alert"].sum())
        n_null += len(null)
        fa_ours += int(null["alert"].sum())
        fa_naive += int(null["alert_naive"].sum())
        naive_null_z.append(null["z"].fillna(-np.inf).to_numpy())
        ours_null_q.append(_alertable_q(null, det))
    hits = pd.concat(rows, ignore_index=True)
    hits["alert"] = hits["alert"].fillna(False).astype(bool)
    hits["alert_naive"] = hits["alert_naive"].fillna(False).astype(bool)
    head = hits[headline(hits)]

    # the naive detector at the same false-alarm rate as ours (a fair, matched comparison)
    null_z = np.concatenate(naive_null_z)
    null_z = null_z[np.isfinite(null_z)]
    ours_rate = fa_ours / n_null
    z_matched = float(np.quantile(null_z, 1 - ours_rate)) if ours_rate > 0 else float(null_z.max())
    z_at_budget = float(np.quantile(null_z, 1 - 1 / 50))
    # ours at exactly 1 per 50: a q threshold read off this very test (for reference only; the
    # headline is the detector's own default)
    null_q = np.concatenate(ours_null_q)
    q_at_budget = float(np.quantile(null_q, 1 / 50, method="lower"))

    def oracle(h: pd.DataFrame, rate: float) -> float:
        r = poisson_oracle_recall(h["usual"].to_numpy(), h["added"].to_numpy(), rate)
        return round(float(r.mean()), 3)

    def block(h: pd.DataFrame) -> dict[str, Any]:
        return {
            "bursts": len(h),
            "recall_ours": _recall(h, "alert"),
            "recall_naive": _recall(h, "alert_naive"),
            "recall_naive_at_our_false_alarm_rate": round(float((h["z"] > z_matched).mean()), 3),
            "recall_ours_at_1_per_50_tuned_on_test": round(
                float((_alertable_q(h, det) < q_at_budget).mean()), 3
            ),
            "recall_naive_at_1_per_50": round(float((h["z"] > z_at_budget).mean()), 3),
            "poisson_oracle_at_our_false_alarm_rate": oracle(h, max(ours_rate, 1e-6)),
            "poisson_oracle_at_1_per_50": oracle(h, 1 / 50),
        }

    def by_bin(col: str, edges: list[float]) -> list[dict[str, Any]]:
        cut = pd.cut(hits[col], edges)
        out = []
        for interval, g in hits.groupby(cut, observed=True):
            gh = g[headline(g)]
            out.append(
                {
                    col: f"{interval.left:g}-{interval.right:g}",
                    "bursts": len(g),
                    "recall_ours": _recall(g, "alert"),
                    "recall_naive": _recall(g, "alert_naive"),
                    "headline_bursts": len(gh),
                    "headline_recall_ours": _recall(gh, "alert"),
                }
            )
        return out

    return {
        "split": split,
        "weeks": [str(lo.date()), str(hi.date())],
        "seeds": [seed, seed + replicates - 1],
        "bursts": len(hits),
        "headline_bursts": len(head),
        "themes_with_bursts": int(hits["theme_id"].nunique()),
        "null_theme_weeks": n_null,
        "unplanted_theme_weeks": n_all,
        "real_surge_theme_weeks": len(surges),
        "headline": {
            "definition": (
                f"bursts adding >= {HEADLINE_MIN_SIZE:g}x the usual week and >= "
                f"{HEADLINE_MIN_ADDED} records, in a week that then holds >= "
                f"{1 + HEADLINE_MIN_SIZE:g}x the usual count and >= {HEADLINE_MIN_ADDED} above it; "
                "false alarms on unplanted theme-weeks that are not real surges by that rule"
            ),
            **block(head),
            "false_alarms_per_50_ours": round(50 * fa_ours / n_null, 3),
            "false_alarms_per_50_naive": round(50 * fa_naive / n_null, 3),
        },
        "large_plants": {
            "definition": (
                f"bursts adding >= {HEADLINE_MIN_SIZE:g}x the usual week and >= "
                f"{HEADLINE_MIN_ADDED} records, whatever the week then looks like; false alarms "
                "as in the headline"
            ),
            **block(hits[large_plant(hits)]),
            "false_alarms_per_50_ours": round(50 * fa_ours / n_null, 3),
            "false_alarms_per_50_naive": round(50 * fa_naive / n_null, 3),
        },
        "all_bursts": {
            "definition": (
                "every planted burst (+50% to +300% of the usual week); false alarms on every "
                "unplanted theme-week, real surges included (the definition before this revision)"
            ),
            **block(hits),
            "false_alarms_per_50_ours": round(50 * fa_ours_all / n_all, 3),
            "false_alarms_per_50_naive": round(50 * fa_naive_all / n_all, 3),
        },
        "ours_alerts_on_real_surges": alerted_surges,
        "ours_real_surges_alerted_share": round(
            alerted_surges / max(1, len(surges) * replicates), 3
        ),
        "ours_seconds_fit_and_score": round(seconds / replicates, 2),
        "ours_q_threshold_at_1_per_50_tuned_on_test": float(f"{q_at_budget:.3g}"),
        "naive_z_threshold_at_our_false_alarm_rate": round(z_matched, 2),
        "by_size": by_bin("size", [0.5, 1.0, 1.5, 2.0, 3.0]),
        "by_usual_weekly_count": by_bin("usual", [5, 10, 20, 40, 1e6]),
        "weeks_checked_against_detect": checked,
    }


# ---------------------------------------------------------------------------------------------
# 2. real checks
# ---------------------------------------------------------------------------------------------


def _redact(texts: list[str]) -> tuple[list[str], str]:
    try:
        from analyzer.ingest.privacy.redact import redact
    except ImportError:
        return [
            f"<{len(t)} characters>" for t in texts
        ], "lengths only (no analyzer.ingest.privacy.redact)"
    return [redact(t).text for t in texts], "analyzer.ingest.privacy.redact.redact"


def covid_check(df: pd.DataFrame, labels: dict[str, str], **detector: Any) -> dict[str, Any]:
    """Alerts in March–April 2020 in Boston "Other", and how much COVID-19 talk they cover."""
    det = EmergingDetector(period="W", windows=9, by_area=False, **detector).fit(df)
    alerts = det.detect(df, as_of="2020-04-30", theme_labels=labels)
    is_covid = df["text"].str.contains(COVID)
    ts = df["created_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    spring = (ts >= pd.Timestamp("2020-03-01")) & (ts < pd.Timestamp("2020-05-01"))
    covered = np.zeros(len(df), dtype=bool)
    rows = []
    for a in alerts.itertuples():
        members = (df["theme_id"] == a.theme_id) & (ts >= a.window_start) & (ts < a.window_end)
        covered |= members.to_numpy() & is_covid.to_numpy()
        examples, how = _redact(list(a.examples))
        rows.append(
            {
                "theme_id": a.theme_id,
                "theme_label": a.theme_label,
                "kind": a.kind,
                "week": str(a.window_start.date()),
                "count": int(a.count),
                "baseline": round(float(a.baseline), 2),
                "ratio": round(float(a.ratio), 2),
                "q_value": float(f"{a.q_value:.3g}"),
                "covid_share": round(float(is_covid[members].mean()), 3),
                "examples": examples,
                "examples_redaction": how,
            }
        )
    n_covid = int((is_covid & spring).sum())
    flagged = any(r["covid_share"] >= 0.5 for r in rows)

    # the naive detector on the same weeks: after the gap every theme "surges"
    naive = naive_weekly(df)
    naive_spring = naive[(naive["window_start"] >= pd.Timestamp("2020-03-02")) & naive["alert"]]
    return {
        "records_mar_apr_2020": int(spring.sum()),
        "covid_records_mar_apr_2020": n_covid,
        "alerts": rows,
        "covid_flagged": bool(flagged),
        "covid_records_in_alerts": round(float(covered.sum() / max(n_covid, 1)), 3),
        "naive_alerts": len(naive_spring),
        "naive_themes_alerted": int(naive_spring["theme_id"].nunique()),
        "themes": int(df["theme_id"].nunique()),
    }


def snow_records() -> pd.DataFrame:
    """Every request of the five Boston services, the service as its theme."""
    parts = []
    for service in BOSTON_FILES:
        d = boston_service(
            service, usecols=["service_request_id", "requested_datetime", "description"]
        )
        parts.append(records_from_boston(d, np.full(len(d), service, dtype=object)))
    return pd.concat(parts, ignore_index=True)


def snow_check(df: pd.DataFrame | None = None, **detector: Any) -> dict[str, Any]:
    """The five services as themes; is Sidewalk Not Shoveled flagged in an ordinary winter?"""
    df = snow_records() if df is None else df
    det = EmergingDetector(period="W", by_area=False, **detector).fit(df)
    ours = ours_weekly(det, df)
    naive = naive_weekly(df)
    out: dict[str, Any] = {"alpha_sidewalk": round(det.alpha_["Sidewalk Not Shoveled"], 3)}
    for name, (lo, hi) in WINTERS.items():
        o = ours[ours["window_start"].between(lo, hi)]
        n = naive[naive["window_start"].between(lo, hi)]
        snow_o = o[o["theme_id"] == "Sidewalk Not Shoveled"]
        snow_n = n[n["theme_id"] == "Sidewalk Not Shoveled"]
        out[name] = {
            "weeks": int(snow_o["window_start"].nunique()),
            "sidewalk_requests": int(snow_o["count"].sum()),
            "peak_week": str(snow_o.loc[snow_o["count"].idxmax(), "window_start"].date()),
            "peak_count": int(snow_o["count"].max()),
            "peak_ratio_to_baseline": round(
                float(snow_o.loc[snow_o["count"].idxmax(), "ratio"]), 2
            ),
            "ours_sidewalk_alerts": int(snow_o["alert"].sum()),
            "naive_sidewalk_alerts": int(snow_n["alert"].sum()),
            "ours_alerts_other_services": int(o["alert"].sum() - snow_o["alert"].sum()),
        }
    return out


# ---------------------------------------------------------------------------------------------
# 3. choosing the defaults: a grid on the TUNE split only
# ---------------------------------------------------------------------------------------------


def sweep(
    df: pd.DataFrame,
    labels: dict[str, str],
    replicates: int,
    seed: int,
    grid: dict[str, tuple[Any, ...]],
    snow_df: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Headline recall, false alarms per 50, sidewalk-snow alarms and COVID per setting, tune split.

    The planted figures are computed exactly as in ``planted_benchmark(split="tune")``. Settings
    that change ``fit`` are fitted once per replicate; each ``fdr`` is a threshold on the same
    q-values. The snow and COVID checks are the real checks of this benchmark (the same for every
    split: they are requirements, not scores). The chosen setting: the best tune recall among
    those with at most ``SWEEP_MAX_FALSE_ALARMS`` per 50, no sidewalk-snow alarm in either winter
    and COVID-19 flagged.
    """
    lo, hi = SPLITS["tune"]["weeks"]
    seed0 = seed + SPLITS["tune"]["seed_offset"]
    surges = real_surges(df)
    surge_key = (
        surges[surges["window_start"].between(lo, hi)].set_index(["window_start", "theme_id"]).index
    )
    snow_df = snow_records() if snow_df is None else snow_df
    fdrs = tuple(grid.get("fdr", (EmergingDetector().fdr,)))
    fit_keys = [k for k in grid if k != "fdr"]
    combos = [
        dict(zip(fit_keys, v, strict=True)) for v in itertools.product(*(grid[k] for k in fit_keys))
    ]

    reps = []
    naive_hits = naive_heads = naive_fa = naive_null = 0
    for rep in range(replicates):
        rng = np.random.default_rng(seed0 + rep)
        data, plants = plant(df, rng, rep, (lo, hi))
        plant_key = plants.set_index(["window_start", "theme_id"]).index
        head_key = plants[headline(plants)].set_index(["window_start", "theme_id"]).index
        reps.append((data, plant_key, head_key))
        naive = naive_weekly(data)
        naive = naive[naive["window_start"].between(lo, hi)]
        nidx = naive.set_index(["window_start", "theme_id"]).index
        naive_heads += len(head_key)
        naive_hits += int(naive.loc[nidx.isin(head_key), "alert"].sum())
        quiet = ~nidx.isin(plant_key) & ~nidx.isin(surge_key)
        naive_null += int(quiet.sum())
        naive_fa += int(naive.loc[quiet, "alert"].sum())

    rows: list[dict[str, Any]] = []
    for combo in combos:
        t0 = time.perf_counter()
        heads, nulls, n_heads, n_null = [], [], 0, 0
        for data, plant_key, head_key in reps:
            det = EmergingDetector(period="W", by_area=False, **combo).fit(data)
            sc = ours_weekly(det, data)
            sc = sc[sc["window_start"].between(lo, hi)]
            idx = sc.set_index(["window_start", "theme_id"]).index
            quiet = ~idx.isin(plant_key) & ~idx.isin(surge_key)
            heads.append(sc[idx.isin(head_key)])
            nulls.append(sc[quiet])
            n_heads += len(head_key)  # a burst week without a baseline is a miss
            n_null += int(quiet.sum())
        head_rows, null_rows = pd.concat(heads), pd.concat(nulls)
        snow_det = EmergingDetector(period="W", by_area=False, **combo).fit(snow_df)
        snow_sc = ours_weekly(snow_det, snow_df)
        sidewalk = snow_sc[snow_sc["theme_id"] == "Sidewalk Not Shoveled"]
        for fdr in fdrs:
            hits = int(flag_weekly(head_rows.copy(), det, fdr)["alert"].sum())
            fa = int(flag_weekly(null_rows.copy(), det, fdr)["alert"].sum())
            side = flag_weekly(sidewalk.copy(), snow_det, fdr)
            snow = {
                w: int(side.loc[side["window_start"].between(a, b), "alert"].sum())
                for w, (a, b) in WINTERS.items()
            }
            # how close the nearest sidewalk-snow week came to an alert (its q, where the count
            # and ratio rules allow one)
            in_winter = np.zeros(len(side), dtype=bool)
            for a, b in WINTERS.values():
                in_winter |= side["window_start"].between(a, b).to_numpy()
            snow_q = float(np.min(_alertable_q(side[in_winter], snow_det), initial=1.0))
            covid = covid_check(df, labels, **combo, fdr=fdr)
            row = {
                **combo,
                "fdr": fdr,
                "headline_recall": round(hits / max(n_heads, 1), 3),
                "false_alarms_per_50": round(50 * fa / max(n_null, 1), 3),
                "snow_alarms": snow,
                "snow_min_q": round(snow_q, 3),
                "covid_flagged": covid["covid_flagged"],
                "covid_alerts": len(covid["alerts"]),
            }
            row["eligible"] = bool(
                row["false_alarms_per_50"] <= SWEEP_MAX_FALSE_ALARMS
                and not any(snow.values())
                and row["covid_flagged"]
            )
            rows.append(row)
            _print_sweep_row(row)
        print(f"    ({time.perf_counter() - t0:.0f}s)", flush=True)
    eligible = [r for r in rows if r["eligible"]]
    chosen = (
        max(eligible, key=lambda r: (r["headline_recall"], -r["false_alarms_per_50"]))
        if eligible
        else None
    )
    return {
        "split": "tune",
        "weeks": [str(lo.date()), str(hi.date())],
        "seeds": [seed0, seed0 + replicates - 1],
        "headline_bursts": naive_heads,
        "rule": (
            f"best tune headline recall with false alarms <= {SWEEP_MAX_FALSE_ALARMS} per 50 "
            "theme-weeks, no sidewalk-snow alarm in either winter, COVID-19 flagged"
        ),
        "naive": {
            "headline_recall": round(naive_hits / max(naive_heads, 1), 3),
            "false_alarms_per_50": round(50 * naive_fa / max(naive_null, 1), 3),
        },
        "grid": {k: list(v) for k, v in grid.items()},
        "rows": rows,
        "chosen": chosen,
    }


def _print_sweep_row(row: dict[str, Any]) -> None:
    settings = ", ".join(
        f"{k}={row[k]}" for k in row if k not in _SWEEP_FIGURES and not isinstance(row[k], dict)
    )
    snow = "/".join(str(v) for v in row["snow_alarms"].values())
    print(
        f"  {settings:<58}{row['headline_recall']:>8.3f}{row['false_alarms_per_50']:>8.3f}"
        f"{snow:>7}{row['snow_min_q']:>7.3f}{'yes' if row['covid_flagged'] else 'no':>5}"
        f"{'*' if row['eligible'] else '':>3}",
        flush=True,
    )


_SWEEP_FIGURES = {
    "headline_recall",
    "false_alarms_per_50",
    "snow_alarms",
    "snow_min_q",
    "covid_flagged",
    "covid_alerts",
    "eligible",
}


# ---------------------------------------------------------------------------------------------


def print_planted(res: dict[str, Any]) -> None:
    print(
        f"\nPlanted bursts, {res['split']} split (weeks {res['weeks'][0]}..{res['weeks'][1]}, "
        f"seeds {res['seeds'][0]}-{res['seeds'][1]}): {res['bursts']} bursts in "
        f"{res['themes_with_bursts']} themes, {res['null_theme_weeks']} quiet theme-weeks, "
        f"{res['real_surge_theme_weeks']} real surge theme-weeks"
    )
    print(f"{'':<44}{'bursts':>7}{'recall':>8}{'false alarms/50':>17}")
    for key in ("headline", "large_plants", "all_bursts"):
        b = res[key]
        fa_o, fa_n = b["false_alarms_per_50_ours"], b["false_alarms_per_50_naive"]
        print(f"  {key}")
        print(
            f"{'    EmergingDetector (settings above)':<44}{b['bursts']:>7}{b['recall_ours']:>8.3f}{fa_o:>17.3f}"
        )
        print(f"{'    naive z>3 (8 weeks)':<44}{'':>7}{b['recall_naive']:>8.3f}{fa_n:>17.3f}")
        print(
            f"{'    naive at our false-alarm rate':<44}{'':>7}"
            f"{b['recall_naive_at_our_false_alarm_rate']:>8.3f}{fa_o:>17.3f}"
        )
        print(f"{'    naive at 1/50':<44}{'':>7}{b['recall_naive_at_1_per_50']:>8.3f}{1.0:>17.3f}")
        print(
            f"{'    ours at 1/50 (q tuned on this split)':<44}{'':>7}"
            f"{b['recall_ours_at_1_per_50_tuned_on_test']:>8.3f}{1.0:>17.3f}"
        )
        print(
            f"{'    Poisson oracle at 1/50':<44}{'':>7}"
            f"{b['poisson_oracle_at_1_per_50']:>8.3f}{1.0:>17.3f}"
        )
    print(f"  real surges alerted: {res['ours_real_surges_alerted_share']:.0%}")
    for name, col in (("size (x usual week)", "size"), ("usual weekly count", "usual")):
        print(f"  recall by {name}:")
        for b in res["by_size" if col == "size" else "by_usual_weekly_count"]:
            print(
                f"    {b[col]:<10}{b['bursts']:>4} bursts  ours {b['recall_ours']:.3f}  naive "
                f"{b['recall_naive']:.3f}  | headline {b['headline_bursts']:>3}: ours "
                f"{b['headline_recall_ours']:.3f}"
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--themes", choices=["auto", "thememodel", "kmeans"], default="auto")
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="evaluate SWEEP_GRID on the tune split only (writes results/emerging_sweep.json)",
    )
    ap.add_argument(
        "--grid", type=json.loads, default=None, help="with --sweep: e.g. '{\"fdr\": [0.1, 0.2]}'"
    )
    args = ap.parse_args(argv)
    require_data_raw("emerging")

    t0 = time.perf_counter()
    other = boston_other_50k()
    texts = other["description"].tolist()
    emb = cached_embeddings("boston-other-50k", texts)
    theme, labels, method, theme_s = assign_themes(texts, emb, args.themes, args.seed)
    df = records_from_boston(other, theme)
    print(
        f"themes: {method}, {theme_s:.1f}s; {len(df)} records, "
        f"{df['theme_id'].notna().mean():.1%} assigned"
    )

    if args.sweep:
        grid = SWEEP_GRID if args.grid is None else {k: tuple(v) for k, v in args.grid.items()}
        print(
            f"\nSweep on the tune split ({args.replicates} replicates): headline recall, false "
            "alarms / 50, sidewalk-snow alarms 2016-17/2017-18 and the lowest sidewalk q of both "
            "winters, COVID flagged; * eligible"
        )
        res = sweep(df, labels, args.replicates, args.seed, grid)
        print(
            f"  naive z>3 (8 weeks), same bursts: recall {res['naive']['headline_recall']:.3f} at "
            f"{res['naive']['false_alarms_per_50']:.3f} false alarms / 50"
        )
        print(f"  chosen ({res['rule']}): {res['chosen']}")
        write_result(
            "emerging_sweep",
            {
                "themes": {"method": method, "seconds": round(theme_s, 1)},
                "sweep": res,
                "params": {"replicates": args.replicates, "seed": args.seed},
                "seconds_total": round(time.perf_counter() - t0, 1),
            },
        )
        return

    tune = planted_benchmark(df, args.replicates, args.seed, "tune")
    planted = planted_benchmark(df, args.replicates, args.seed, "test")
    previous = planted_benchmark(df, args.replicates, args.seed, "test", **PREVIOUS_DEFAULT)
    previous_real = {
        "covid": covid_check(df, labels, **PREVIOUS_DEFAULT),
        "snow": snow_check(**PREVIOUS_DEFAULT),
    }
    covid = covid_check(df, labels)
    snow = snow_check()

    for res in (tune, planted):
        print_planted(res)
    print(f"\n--- For comparison, the defaults before issue #3: {PREVIOUS_DEFAULT}")
    print_planted(previous)
    sc, ss = previous_real["covid"], previous_real["snow"]
    print(
        f"  COVID flagged: {sc['covid_flagged']} ({len(sc['alerts'])} alerts); sidewalk snow "
        "alerts: " + ", ".join(f"{w} {ss[w]['ours_sidewalk_alerts']}" for w in WINTERS)
    )
    print()
    print(
        f"COVID-19, Boston Other, March-April 2020: {covid['covid_records_mar_apr_2020']} of "
        f"{covid['records_mar_apr_2020']} requests mention it"
    )
    print(
        f"  ours: {len(covid['alerts'])} alerts; flagged: {covid['covid_flagged']}; "
        f"{covid['covid_records_in_alerts']:.0%} of the COVID requests are in alerted theme-weeks"
    )
    for a in covid["alerts"]:
        print(
            f"  - {a['kind']} {a['theme_id']} '{a['theme_label']}' week {a['week']}: "
            f"{a['count']} vs {a['baseline']} (x{a['ratio']}, q={a['q_value']}), "
            f"COVID share {a['covid_share']:.0%}"
        )
        for ex in a["examples"][:3]:
            print(f'      "{ex[:140]}"')
    print(
        f"  naive: {covid['naive_alerts']} alerts on {covid['naive_themes_alerted']} of "
        f"{covid['themes']} themes in the same weeks"
    )
    print()
    print("Sidewalk snow (five services as themes), weekly:")
    for name in WINTERS:
        w = snow[name]
        print(
            f"  winter {name}: {w['sidewalk_requests']} requests, peak {w['peak_count']} "
            f"(week {w['peak_week']}, x{w['peak_ratio_to_baseline']} of baseline); "
            f"sidewalk alerts: "
            f"ours {w['ours_sidewalk_alerts']}, naive {w['naive_sidewalk_alerts']}"
        )

    write_result(
        "emerging",
        {
            "themes": {"method": method, "seconds": round(theme_s, 1)},
            "planted": planted,
            "planted_tune_split": tune,
            "previous_default": {
                "detector": PREVIOUS_DEFAULT,
                "planted": previous,
                "covid_flagged": previous_real["covid"]["covid_flagged"],
                "covid_alerts": len(previous_real["covid"]["alerts"]),
                "snow": previous_real["snow"],
            },
            "covid": covid,
            "snow": snow,
            "params": {
                "replicates": args.replicates,
                "seed": args.seed,
                "detector": EmergingDetector(period="W", by_area=False).__dict__,
            },
            "seconds_total": round(time.perf_counter() - t0, 1),
        },
    )


if __name__ == "__main__":
    main()
