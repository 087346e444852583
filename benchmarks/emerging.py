"""Emerging-needs benchmark: EmergingDetector beside a naive z-score detector on real Boston 311.

1. Planted bursts. Real weekly theme series (50,000 Boston "Other" requests; themes from
   ``analyzer.themes.ThemeModel`` when it imports and fits, else MiniBatchKMeans k=30 on the same
   cached embeddings). Each replicate plants one burst per theme in a random week of
   2015-01..2019-03: copies of real requests of that theme, +50% to +300% of the theme's usual
   weekly count (the mean of the 8 weeks before). Recall = planted theme-weeks flagged; false
   alarms = alerts on every other theme-week of the same period, per 50 theme-weeks. Detectors run
   week by week (a week's alerts use only that week and the past; BH across that week's themes).
2. Real checks. (a) The COVID-19 requests of March–April 2020 in Boston "Other" (after the
   2019-04..2020-03 coverage gap) must be flagged. (b) Sidewalk snow in the ordinary winters
   2016-17 and 2017-18 (the five services as themes) must not be.

Baseline, side by side: z-score of the week's raw count against the previous 8 weeks' mean and
standard deviation (floored at 1), alert when z > 3: no season, no volume adjustment, no FDR.

Run: ``nice python -m benchmarks.emerging [--replicates 3] [--seed 0] [--themes auto|kmeans]``.
Prints a table and writes benchmarks/results/emerging.json.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from analyzer.trends import EmergingDetector, benjamini_hochberg, theme_counts
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
PLANT_FROM, PLANT_TO = pd.Timestamp("2015-01-05"), pd.Timestamp("2019-03-18")
EVAL_FROM = pd.Timestamp("2014-07-07")  # a year after "Other" volume ramps up in 2013
NAIVE_WEEKS, NAIVE_Z = 8, 3.0
MIN_USUAL = 5.0  # a theme-week gets a burst only if the theme usually has >= 5 requests a week
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
            from analyzer.themes import ThemeModel

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
    sc["alert"] = (
        (sc["q_value"] <= det.fdr) & (sc["ratio"] >= det.min_ratio) & (sc["count"] >= det.min_count)
    )
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


def plant(
    df: pd.DataFrame, rng: np.random.Generator, rep: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One burst per theme (where the theme is big enough) in a random week: (data, plants)."""
    tc = theme_counts(df, "W")
    wide = tc.pivot(index="window_start", columns="theme_id", values="count").astype(float)
    usual = wide.shift(1).rolling(8).mean()
    weeks = wide.index[(wide.index >= PLANT_FROM) & (wide.index <= PLANT_TO)]
    plants, extra = [], []
    by_theme = {k: g for k, g in df[df["theme_id"].notna()].groupby("theme_id")}
    for theme in wide.columns:
        ok = [w for w in weeks if usual.at[w, theme] >= MIN_USUAL]
        if not ok:
            continue
        week = ok[int(rng.integers(len(ok)))]
        size = float(rng.uniform(0.5, 3.0))
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
            }
        )
    return pd.concat([df, *extra], ignore_index=True), pd.DataFrame(plants)


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
    """Per-week q-values, 1 where the effect-size or count rule forbids an alert anyway."""
    ok = (rows["ratio"] >= det.min_ratio) & (rows["count"] >= det.min_count)
    return np.where(ok, rows["q_value"].fillna(1.0), 1.0)


def planted_benchmark(
    df: pd.DataFrame, replicates: int, seed: int, **detector: Any
) -> dict[str, Any]:
    rows, fa_ours, fa_naive, n_null = [], 0, 0, 0
    naive_null_z: list[np.ndarray] = []
    ours_null_q: list[np.ndarray] = []
    checked = 0
    seconds = 0.0
    for rep in range(replicates):
        rng = np.random.default_rng(seed + rep)
        data, plants = plant(df, rng, rep)
        t0 = time.perf_counter()
        det = EmergingDetector(period="W", by_area=False, **detector).fit(data)
        ours = ours_weekly(det, data)
        seconds += time.perf_counter() - t0
        if rep == 0:
            checked = check_equivalence(det, data, ours)
        naive = naive_weekly(data)
        window = (ours["window_start"] >= EVAL_FROM) & (ours["window_start"] <= PLANT_TO)
        ours = ours[window]
        merged = ours.merge(
            naive[["window_start", "theme_id", "z", "alert"]],
            on=["window_start", "theme_id"],
            how="left",
            suffixes=("", "_naive"),
        )
        merged["alert_naive"] = merged["alert_naive"].fillna(False).astype(bool)
        key = plants.set_index(["window_start", "theme_id"]).index
        is_plant = merged.set_index(["window_start", "theme_id"]).index.isin(key)
        hits = plants.merge(merged, on=["window_start", "theme_id"], how="left")
        hits["replicate"] = rep
        rows.append(hits)
        null = merged[~is_plant]
        n_null += len(null)
        fa_ours += int(null["alert"].sum())
        fa_naive += int(null["alert_naive"].sum())
        naive_null_z.append(null["z"].fillna(-np.inf).to_numpy())
        ours_null_q.append(_alertable_q(null, det))
    hits = pd.concat(rows, ignore_index=True)
    hits["alert"] = hits["alert"].fillna(False).astype(bool)
    hits["alert_naive"] = hits["alert_naive"].fillna(False).astype(bool)

    # the naive detector at the same false-alarm rate as ours (a fair, matched comparison)
    null_z = np.concatenate(naive_null_z)
    ours_rate = fa_ours / n_null
    z_matched = (
        float(np.quantile(null_z[np.isfinite(null_z)], 1 - ours_rate))
        if ours_rate > 0
        else float(np.max(null_z[np.isfinite(null_z)]))
    )
    z_at_budget = float(np.quantile(null_z[np.isfinite(null_z)], 1 - 1 / 50))
    recall_naive_matched = float((hits["z"] > z_matched).mean())
    oracle = poisson_oracle_recall(hits["usual"].to_numpy(), hits["added"].to_numpy(), ours_rate)
    recall_naive_budget = float((hits["z"] > z_at_budget).mean())
    # ours at the false-alarm budget: the per-week q-value threshold that gives 1 per 50
    null_q = np.concatenate(ours_null_q)
    q_at_budget = float(np.quantile(null_q, 1 / 50, method="lower"))
    recall_ours_budget = float((_alertable_q(hits, det) < q_at_budget).mean())

    def by_bin(col: str, edges: list[float]) -> list[dict[str, Any]]:
        cut = pd.cut(hits[col], edges)
        out = []
        for interval, g in hits.groupby(cut, observed=True):
            out.append(
                {
                    col: f"{interval.left:g}-{interval.right:g}",
                    "bursts": len(g),
                    "recall_ours": round(float(g["alert"].mean()), 3),
                    "recall_naive": round(float(g["alert_naive"].mean()), 3),
                }
            )
        return out

    return {
        "bursts": len(hits),
        "themes_with_bursts": int(hits["theme_id"].nunique()),
        "years": sorted({int(w.year) for w in hits["window_start"]}),
        "null_theme_weeks": n_null,
        "ours": {
            "recall": round(float(hits["alert"].mean()), 3),
            "false_alarms_per_50": round(50 * fa_ours / n_null, 3),
            "seconds_fit_and_score": round(seconds / replicates, 2),
            "recall_at_1_per_50": round(recall_ours_budget, 3),
            "q_threshold_at_1_per_50": float(f"{q_at_budget:.3g}"),
        },
        "naive": {
            "recall": round(float(hits["alert_naive"].mean()), 3),
            "false_alarms_per_50": round(50 * fa_naive / n_null, 3),
            "recall_at_our_false_alarm_rate": round(recall_naive_matched, 3),
            "z_threshold_at_our_false_alarm_rate": round(z_matched, 2),
            "recall_at_1_per_50": round(recall_naive_budget, 3),
        },
        "poisson_oracle": {
            "recall_at_our_false_alarm_rate": round(float(oracle.mean()), 3),
            "recall_at_1_per_50": round(
                float(
                    poisson_oracle_recall(
                        hits["usual"].to_numpy(), hits["added"].to_numpy(), 1 / 50
                    ).mean()
                ),
                3,
            ),
        },
        "by_size": by_bin("size", [0.5, 1.0, 1.5, 2.0, 3.0]),
        "by_usual_weekly_count": by_bin("usual", [5, 10, 20, 40, 1e6]),
        "weeks_checked_against_detect": checked,
    }


# ---------------------------------------------------------------------------------------------
# 2. real checks
# ---------------------------------------------------------------------------------------------


def _redact(texts: list[str]) -> tuple[list[str], str]:
    try:
        from analyzer.privacy import redact
    except ImportError:
        return [f"<{len(t)} characters>" for t in texts], "lengths only (no analyzer.privacy)"
    return [redact(t).text for t in texts], "analyzer.privacy.redact"


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


def snow_check(**detector: Any) -> dict[str, Any]:
    """The five services as themes; is Sidewalk Not Shoveled flagged in an ordinary winter?"""
    parts = []
    for service in BOSTON_FILES:
        d = boston_service(
            service, usecols=["service_request_id", "requested_datetime", "description"]
        )
        parts.append(records_from_boston(d, np.full(len(d), service, dtype=object)))
    df = pd.concat(parts, ignore_index=True)
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--themes", choices=["auto", "thememodel", "kmeans"], default="auto")
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

    planted = planted_benchmark(df, args.replicates, args.seed)
    covid = covid_check(df, labels)
    snow = snow_check()

    o, n = planted["ours"], planted["naive"]
    print()
    print(
        f"Planted bursts into real weekly theme series ({planted['bursts']} bursts, "
        f"{planted['themes_with_bursts']} themes, "
        f"years {planted['years'][0]}-{planted['years'][-1]}, "
        f"{planted['null_theme_weeks']} un-planted theme-weeks)"
    )
    print(f"{'detector':<34}{'recall':>8}{'false alarms/50':>17}")
    print(f"{'EmergingDetector (q<=0.05)':<34}{o['recall']:>8.3f}{o['false_alarms_per_50']:>17.3f}")
    print(f"{'EmergingDetector at 1/50':<34}{o['recall_at_1_per_50']:>8.3f}{1.0:>17.3f}")
    print(f"{'naive z>3 (8 weeks)':<34}{n['recall']:>8.3f}{n['false_alarms_per_50']:>17.3f}")
    print(
        f"{'naive at our false-alarm rate':<34}{n['recall_at_our_false_alarm_rate']:>8.3f}"
        f"{o['false_alarms_per_50']:>17.3f}"
    )
    print(f"{'naive at 1 false alarm/50':<34}{n['recall_at_1_per_50']:>8.3f}{1.0:>17.3f}")
    po = planted["poisson_oracle"]
    print(
        f"{'Poisson oracle at our rate':<34}{po['recall_at_our_false_alarm_rate']:>8.3f}"
        f"{o['false_alarms_per_50']:>17.3f}"
    )
    print(f"{'Poisson oracle at 1/50':<34}{po['recall_at_1_per_50']:>8.3f}{1.0:>17.3f}")
    print("recall by burst size (x usual count):")
    for b in planted["by_size"]:
        print(
            f"  +{b['size']:<10}{b['bursts']:>4} bursts  ours {b['recall_ours']:.3f}"
            f"  naive {b['recall_naive']:.3f}"
        )
    print("recall by the theme's usual weekly count:")
    for b in planted["by_usual_weekly_count"]:
        print(
            f"  {b['usual']:<11}{b['bursts']:>4} bursts  ours {b['recall_ours']:.3f}"
            f"  naive {b['recall_naive']:.3f}"
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
