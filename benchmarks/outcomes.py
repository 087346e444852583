"""Outcomes benchmark: closing-note outcomes, duplicates, speed and other cities, each beside a
named baseline in the same run.

    nice python -m benchmarks.outcomes                  # all four parts
    nice python -m benchmarks.outcomes --part notes     # one part (notes, duplicates, speed, cities)

(a) notes: the closing-note classifier (``analyzer.outcomes.ClosingNoteClassifier``) against a
    keyword baseline in the style of New York City Council's 311 analysis (phrases sorted into
    outcome buckets, the first bucket whose phrase appears wins), on every labelled note of
    benchmarks/data/boston_closing_notes.csv: macro-F1 and accuracy per draw and over all, with
    95% bootstrap intervals (2,000 resamples of the notes, paired), per-outcome F1, and the
    accuracy weighted by how many closed requests carry each note. The labels were never used
    to write either (see boston_closing_notes.md). Needs nothing from ../shared.
(b) duplicates: the city's own duplicates in the Boston store (requests closed "Duplicate of
    Existing Case"; the named pairs are those whose note names the earlier case). Each detector
    is run as at intake (a new request against the earlier requests still open then) and
    measured by request precision (flagged requests the city closed as duplicates: a lower
    bound, the city does not mark every one), request recall and named-pair recall. Baseline:
    the plain rule (same category, 150 m, 7 days). Ours: text and place (the requests' stored
    embeddings), the rule chosen on the requests of 2016-2017 (the first years with named
    pairs) and scored on 2018-2020: the most precise rule of a small grid whose recall (request
    and pair) is at least the plain rule's on 2016-2017 ("never worse"), and, for reference, the
    grid's best F1 there.
(c) speed: ``outcomes(store, by)`` on the whole Boston store (every stage from the SQL read:
    classification of every note, Kaplan-Meier per group, the three standardised comparisons),
    cold (memo cleared), median of 3, per ``by``; the target is 10 s. Baseline: what a plain
    dashboard computes (pandas median days to close of closed requests per area, open requests
    dropped) on the same frame. Also the note classifier's and the keyword baseline's time over
    every closing note in the store, and which areas differ (the `civicpulse outcomes --by area`
    answer).
(d) cities: Gainesville (commission districts; "Archived" closes) and Honolulu (no areas) from
    ../shared/data_raw through the same CLI commands a user types (``civicpulse ingest`` then
    ``civicpulse outcomes --format json``), into fresh stores.

The Boston store is var/cache/outcomes/boston.duckdb (``--store``): the five Boston CSVs
ingested and analysed (themes for the strata, embeddings for the text detector). When it is
missing it is built through the CLI (``civicpulse ingest`` of the five files, then ``civicpulse
analyze``: about 10 minutes on 2 cores). Parts (b)-(d) print "skipped" when ../shared/data_raw
is absent; (a) runs anywhere. Writes benchmarks/results/outcomes.json (a ``--part`` run replaces
its parts there and keeps the others).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from analyzer.outcomes import OUTCOMES, ClosingNoteClassifier  # noqa: E402
from benchmarks.common import BOSTON_FILES, data_raw, write_result  # noqa: E402

NOTES = ROOT / "benchmarks" / "data" / "boston_closing_notes.csv"
STORE = ROOT / "var" / "cache" / "outcomes" / "boston.duckdb"
RESULT = ROOT / "benchmarks" / "results" / "outcomes.json"
SEED = 20
BOOTSTRAP = 2000
SPEED_TARGET_S = 10.0
TUNE_YEARS = (2016, 2017)
TEST_YEARS = (2018, 2019, 2020)
PARTS = ("notes", "duplicates", "speed", "cities")

# The baseline: outcome buckets of phrases, as NYC Council's analysis of 311 resolution
# descriptions sorted them ("did not observe", "no evidence", "summons", "duplicate", "referred",
# "not within its jurisdiction"...), with Boston's words for the same things. The first bucket
# with a phrase in the lower-cased note decides; no phrase: unknown. Written before it was run on
# the labelled notes and not changed after.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("duplicate", ("duplicate", "already submitted", "already reported", "existing case")),
    (
        "no_violation",
        (
            "no violation",
            "did not observe",
            "not observed",
            "no evidence",
            "not found",
            "could not find",
            "unable to locate",
            "not at location",
            "no cause",
            "gone",
            "clear",
            "nothing",
        ),
    ),
    (
        "referred",
        (
            "refer",
            "jurisdiction",
            "another agency",
            "other agency",
            "forwarded",
            "private property",
        ),
    ),
    (
        "administrative",
        ("administrative", "invalid", "in error", "insufficient", "more information", "test"),
    ),
    (
        "resolved",
        (
            "resolved",
            "fixed",
            "repaired",
            "summons",
            "ticket",
            "citation",
            "violation",
            "tagged",
            "towed",
            "removed",
            "cleaned",
            "completed",
            "action",
        ),
    ),
)


def keyword_baseline(notes: list[str]) -> np.ndarray:
    out = np.full(len(notes), "unknown", dtype=object)
    for i, note in enumerate(notes):
        text = str(note or "").lower()
        for outcome, phrases in KEYWORDS:
            if any(p in text for p in phrases):
                out[i] = outcome
                break
    return out


# -- (a) closing notes ----------------------------------------------------------------------


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    labels = sorted(set(y))
    return {
        "macro_f1": round(float(f1_score(y, pred, labels=labels, average="macro")), 4),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
    }


def notes_part() -> dict[str, Any]:
    df = pd.read_csv(NOTES, dtype=str, keep_default_na=False)
    df = df[df["label"] != ""].reset_index(drop=True)
    y = df["label"].to_numpy()
    t0 = time.perf_counter()
    ours = ClosingNoteClassifier().predict(df["status_notes"].tolist())
    ours_s = time.perf_counter() - t0
    base = keyword_baseline(df["status_notes"].tolist())
    draws: dict[str, Any] = {}
    for draw, part in df.groupby("draw", sort=False):
        idx = part.index.to_numpy()
        draws[draw] = {
            "notes": len(idx),
            "ours": _scores(y[idx], ours[idx]),
            "baseline": _scores(y[idx], base[idx]),
        }
    held = df["draw"].str.startswith("holdout").to_numpy()
    if held.any():  # the draws no rule was written after: the fairest estimate
        draws["holdouts"] = {
            "notes": int(held.sum()),
            "ours": _scores(y[held], ours[held]),
            "baseline": _scores(y[held], base[held]),
        }
    rng = np.random.default_rng(SEED)
    boot = []
    labels = sorted(set(y))
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        a = f1_score(y[i], ours[i], labels=labels, average="macro", zero_division=0)
        b = f1_score(y[i], base[i], labels=labels, average="macro", zero_division=0)
        boot.append((a, b, a - b))
    boot_arr = np.array(boot)
    lo, hi = np.quantile(boot_arr, [0.025, 0.975], axis=0)
    weight = pd.to_numeric(df["requests_with_note"], errors="coerce").fillna(1).to_numpy()
    per_class = {
        o: {
            "notes": int((y == o).sum()),
            "ours_f1": round(float(f1_score(y == o, ours == o)), 4),
            "baseline_f1": round(float(f1_score(y == o, base == o)), 4),
        }
        for o in OUTCOMES
    }
    return {
        "labelled_notes": len(y),
        "labels": {o: int((y == o).sum()) for o in OUTCOMES},
        "all": {
            "ours": _scores(y, ours),
            "baseline": _scores(y, base),
            "ours_macro_f1_95": [round(float(lo[0]), 4), round(float(hi[0]), 4)],
            "baseline_macro_f1_95": [round(float(lo[1]), 4), round(float(hi[1]), 4)],
            "difference_95": [round(float(lo[2]), 4), round(float(hi[2]), 4)],
            "ours_accuracy_weighted_by_requests": round(
                float(np.average(ours == y, weights=weight)), 4
            ),
            "baseline_accuracy_weighted_by_requests": round(
                float(np.average(base == y, weights=weight)), 4
            ),
        },
        "draws": draws,
        "per_outcome": per_class,
        "ours_seconds": round(ours_s, 3),
        "target_macro_f1": 0.90,
    }


# -- the Boston store -----------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "analyzer.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)


def boston_store(path: Path, raw: Path) -> Path:
    """The analysed Boston store, built through the CLI when it is missing."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    files = [str(raw / "boston_open311" / name) for name in BOSTON_FILES.values()]
    print(f"[outcomes] building {path} (ingest, then analyze: ~10 min on 2 cores)", flush=True)
    for args in (("ingest", *files), ("analyze",)):
        t0 = time.perf_counter()
        proc = _cli(*args, "--store", str(path))
        if proc.returncode != 0:
            raise SystemExit(f"[outcomes] civicpulse {args[0]} failed: {proc.stderr[-500:]}")
        print(f"  civicpulse {args[0]}: {time.perf_counter() - t0:.0f} s", flush=True)
    return path


# -- (b) duplicates -------------------------------------------------------------------------


def _requests_and_vectors(store_path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    from analyzer.common.vectors import decode_vectors, normalise_rows
    from analyzer.store.database import Store

    with Store(store_path, read_only=True) as store:
        df = store.query_df(
            "SELECT id, created_at, updated_at, status, lat, lon, category, text_hash, "
            "attributes->>'status_notes' AS note FROM records"
        )
        emb = store.query_df("SELECT text_hash, vector FROM embeddings")
    vectors = normalise_rows(decode_vectors(emb["vector"]))
    row = pd.Series(np.arange(len(emb)), index=emb["text_hash"]).groupby(level=0).first()
    at = row.reindex(df["text_hash"]).to_numpy()
    out = np.zeros((len(df), vectors.shape[1]), dtype=np.float32)  # no vector: similar to none
    known = ~np.isnan(at)
    out[known] = vectors[at[known].astype(int)]
    closed = df["status"].fillna("").str.lower().eq("closed")
    df["closed_at"] = df["updated_at"].where(closed)
    return df, out


def _grid_scores(
    wide: pd.DataFrame,
    new_year: np.ndarray,
    years: tuple[int, ...],
    city_dup: np.ndarray,
    pair_hit: np.ndarray,
    n_pairs: int,
    n: int,
    mask: np.ndarray,
) -> dict[str, float]:
    keep = mask & np.isin(new_year, years)
    flagged = np.zeros(n, dtype=bool)
    flagged[wide["new"].to_numpy()[keep]] = True
    tp = int((flagged & city_dup).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(city_dup.sum()))
    pairs_found = int(np.unique(wide["pair"].to_numpy()[keep & pair_hit]).size)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "pair_recall": pairs_found / max(1, n_pairs),
    }


def duplicates_part(store_path: Path) -> dict[str, Any]:
    from analyzer.outcomes import (
        candidate_pairs,
        evaluate_detector,
        named_duplicate_pairs,
        order_pairs,
    )
    from analyzer.tagging.duplicates import INTAKE_RULE, DuplicateRule

    t0 = time.perf_counter()
    df, vectors = _requests_and_vectors(store_path)
    note = df["note"].fillna("")
    # the city's own verdict: its closing code, not our classifier
    is_dup = note.str.lower().str.startswith("duplicate of existing case").to_numpy()
    created = df.set_index("id")["created_at"]
    pairs = order_pairs(named_duplicate_pairs(df["id"], note, is_dup), created)
    year = pd.to_datetime(df["created_at"], utc=True).dt.year.to_numpy()
    ids = df["id"].astype(str).to_numpy()
    print(
        f"[outcomes] duplicates: {len(df):,} requests, {int(is_dup.sum()):,} closed as "
        f"duplicates by the city, {len(pairs):,} named pairs",
        flush=True,
    )

    # every candidate any rule of the grid could accept, once, with its features
    widest = DuplicateRule(max_meters=200, max_days=30, same_category=False)
    wide = candidate_pairs(df, widest, vectors=vectors)
    position = pd.Series(np.arange(len(df)), index=ids)
    wide["new"] = position.reindex(wide["new_id"]).to_numpy()
    cat = df["category"].fillna("").to_numpy()
    a_cat, b_cat = (
        cat[wide["new"].to_numpy()],
        cat[position.reindex(wide["candidate_id"]).to_numpy()],
    )
    same = (a_cat == b_cat) | (a_cat == "") | (b_cat == "")
    key = pd.Series(np.arange(len(pairs)), index=pd.MultiIndex.from_frame(pairs))
    hit = key.reindex(pd.MultiIndex.from_arrays([wide["new_id"], wide["candidate_id"]]))
    wide["pair"] = hit.fillna(-1).astype(int).to_numpy()
    pair_hit = wide["pair"].to_numpy() >= 0
    pair_year = year[position.reindex(pairs["later_id"]).to_numpy()]
    new_year = year[wide["new"].to_numpy()]
    meters, days = wide["meters"].to_numpy(), wide["days"].to_numpy()
    sim = wide["similarity"].to_numpy()

    def mask(rule: DuplicateRule) -> np.ndarray:
        # the rule's own test (the one intake uses), on the precomputed widest candidates
        return (days <= rule.max_days) & rule.accepts(meters, sim, same)

    def scores(rule: DuplicateRule, years: tuple[int, ...]) -> dict[str, float]:
        in_years = np.isin(year, years)
        return _grid_scores(
            wide,
            new_year,
            years,
            is_dup & in_years,
            pair_hit,
            int(np.isin(pair_year, years).sum()),
            len(df),
            mask(rule),
        )

    plain = DuplicateRule()
    floor = scores(plain, TUNE_YEARS)
    grid = []
    for r, d, s, near, cross in itertools.product(
        (50, 100, 150, 200),
        (3, 7, 14, 30),
        (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
        (None, 10, 25, 50),
        (None, 0.8, 0.9),
    ):
        rule = DuplicateRule(
            max_meters=r,
            max_days=d,
            min_similarity=s,
            near_meters=near,
            cross_category_similarity=cross,
        )
        grid.append((rule, scores(rule, TUNE_YEARS)))
    never_worse = [
        (rule, sc)
        for rule, sc in grid
        if sc["recall"] >= floor["recall"] and sc["pair_recall"] >= floor["pair_recall"]
    ]
    chosen = max(never_worse, key=lambda x: x[1]["precision"])[0] if never_worse else plain
    best_f1 = max(grid, key=lambda x: x[1]["f1"])[0]

    # the detectors themselves (candidate_pairs), scored by evaluate_detector on the test years
    test_ids = set(ids[np.isin(year, TEST_YEARS)])
    city = set(ids[is_dup])
    out: dict[str, Any] = {
        "requests": len(df),
        "city_duplicates": int(is_dup.sum()),
        "named_pairs": len(pairs),
        "named_pairs_by_year": {
            str(k): int(v) for k, v in pd.Series(pair_year).value_counts().sort_index().items()
        },
        "tune_years": list(TUNE_YEARS),
        "test_years": list(TEST_YEARS),
        "grid_rules": len(grid),
        "detectors": {},
    }
    for name, rule in (
        ("plain rule", plain),
        ("intake (POST /v1/tag)", INTAKE_RULE),
        ("text + place", chosen),
        ("best F1", best_f1),
    ):
        t1 = time.perf_counter()
        proposed = candidate_pairs(df, rule, new_ids=test_ids, vectors=vectors)
        ev = evaluate_detector(proposed, pairs, city, test_ids)
        seconds = time.perf_counter() - t1
        tune = scores(rule, TUNE_YEARS)
        out["detectors"][name] = {
            "rule": {k: v for k, v in vars(rule).items()},
            "test": {
                "request_precision": _r(ev.request_precision),
                "request_recall": _r(ev.request_recall),
                "pair_recall": _r(ev.pair_recall),
                "flagged": ev.flagged,
                "city_duplicates": ev.city_duplicates,
                "pairs": ev.pairs,
                "pairs_found": ev.pairs_found,
            },
            "tune": {k: round(v, 4) for k, v in tune.items()},
            "seconds": round(seconds, 1),
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


# -- (c) speed on the whole store, and the Boston answer ------------------------------------


def speed_part(store_path: Path) -> dict[str, Any]:
    from analyzer.outcomes import forget_memo, outcomes, request_frame
    from analyzer.store.database import Store

    out: dict[str, Any] = {"target_s": SPEED_TARGET_S, "by": {}}
    with Store(store_path, read_only=True) as store:
        for by in ("area", "theme", "category"):
            times = []
            for _ in range(3):
                forget_memo()  # cold: nothing memoised
                t0 = time.perf_counter()
                report = outcomes(store, by)
                times.append(time.perf_counter() - t0)
            out["by"][by] = {
                "seconds_median": round(float(np.median(times)), 2),
                "seconds": [round(t, 2) for t in times],
                "groups": len(report.rows),
            }
        out["requests"] = report.counts["requests"]
        out["counts"] = report.counts
        # the baseline: a dashboard's median days of closed requests per area, open ones dropped
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            frame = request_frame(store)
            closed = frame["status"].fillna("").str.lower().eq("closed")
            days = (frame["updated_at"] - frame["created_at"]).dt.total_seconds() / 86_400
            area = frame["area"].fillna("(no area)").replace("", "(no area)")
            naive = days[closed & (days >= 0)].groupby(area[closed]).median()
            times.append(time.perf_counter() - t0)
        out["baseline_seconds_median"] = round(float(np.median(times)), 2)
        notes = frame["note"].dropna().tolist()
        t0 = time.perf_counter()
        ClosingNoteClassifier().predict(notes)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        keyword_baseline(notes)
        out["notes_classified"] = {
            "notes": len(notes),
            "distinct": len(set(notes)),
            "ours_seconds": round(ours_s, 2),
            "baseline_seconds": round(time.perf_counter() - t0, 2),
        }
        forget_memo()
        area = outcomes(store, "area")
    rows = area.rows.set_index("group")
    big = rows[rows["requests"] >= 4000].index
    out["median_days_big_areas"] = {
        g: {
            "kaplan_meier": rows.at[g, "median_days"],
            "closed_only_baseline": round(float(naive.get(g, np.nan)), 3),
            "open": int(rows.at[g, "open"]),
        }
        for g in big
    }
    out["boston_by_area"] = _differ(area)
    out["messages"] = area.messages
    return out


def _differ(report: Any) -> dict[str, Any]:
    """Per measure: the groups whose q-value is under alpha, with ratio and interval."""
    rows = report.rows
    out: dict[str, Any] = {}
    for measure in ("time_to_close", "on_time", "without_action"):
        q = rows[f"{measure}_q_value"]
        tested = q.notna()
        differ = rows[tested & (q < report.alpha)].sort_values(f"{measure}_q_value")
        out[measure] = {
            "tested": int(tested.sum()),
            "differ": [
                {
                    "group": r["group"],
                    "ratio": round(r[f"{measure}_ratio"], 3),
                    "low": round(r[f"{measure}_ratio_low"], 3),
                    "high": round(r[f"{measure}_ratio_high"], 3),
                    "q": float(f"{r[f'{measure}_q_value']:.3g}"),
                }
                for r in differ.to_dict("records")
            ],
            "spread": report.totals[measure],
        }
    return out


# -- (d) other cities -----------------------------------------------------------------------

CITIES = {
    "gainesville": (
        "gainesville_mygnv/gainesville_mygnv_311_sample_5000.csv",
        "area",
        (
            "--text-col",
            "description",
            "--label-col",
            "request_type",
            "--time-col",
            "created",
            "--updated-col",
            "closed",
            "--status-col",
            "status",
            "--area-col",
            "commission_district",
            "--lat-col",
            "latitude",
            "--lon-col",
            "longitude",
            "--tz",
            "America/New_York",
        ),
    ),
    "honolulu": (
        "honolulu_311/honolulu_311_archive_subset_2011_2019.csv",
        "category",
        (
            "--text-col",
            "Description",
            "--label-col",
            "ReportType",
            "--time-col",
            "DateCreate_Converted",
            "--updated-col",
            "DateClosed_Converted",
            "--status-col",
            "CurrentStatus",
            "--tz",
            "Pacific/Honolulu",
        ),
    ),
}


def cities_part(raw: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (path, by, flags) in CITIES.items():
            store = str(Path(folder) / f"{name}.duckdb")
            t0 = time.perf_counter()
            ingest = _cli("ingest", str(raw / path), *flags, "--store", store)
            t1 = time.perf_counter()
            result: dict[str, Any] = {"by": by, "ingest_exit": ingest.returncode}
            if ingest.returncode != 0:
                result["error"] = (ingest.stderr.strip().splitlines() or ["?"])[-1][:300]
            answers = {}
            for group in dict.fromkeys((by, "category")):
                proc = _cli("outcomes", "--by", group, "--format", "json", "--store", store)
                result[f"outcomes_by_{group}_exit"] = proc.returncode
                if proc.returncode == 0:
                    answers[group] = json.loads(proc.stdout)
            t2 = time.perf_counter()
            result["ingest_seconds"] = round(t1 - t0, 1)
            result["outcomes_seconds"] = round(t2 - t1, 1)
            if by in answers:
                report = answers[by]
                rows = pd.DataFrame(report["rows"])
                result["counts"] = report["counts"]
                result["messages"] = report["messages"]
                result["groups"] = len(rows)
                keep = ["group", "requests", "open", "median_days", "p90_days", "share_referred"]
                keep += ["ratio", "ratio_low", "ratio_high", "q_value", "verdict"]
                shown = rows[[c for c in keep if c in rows]].head(12).astype(object)
                result["rows"] = shown.where(shown.notna(), None).to_dict("records")
                result["differ"] = [
                    {
                        "group": r["group"],
                        "ratio": round(r["ratio"], 3),
                        "low": round(r["ratio_low"], 3),
                        "high": round(r["ratio_high"], 3),
                        "q": float(f"{r['q_value']:.3g}"),
                    }
                    for r in report["rows"]
                    if r["q_value"] is not None and r["q_value"] < report["alpha"]
                ]
            out[name] = result
    return out


# -- report ---------------------------------------------------------------------------------


def _print(results: dict[str, Any]) -> None:
    notes = results.get("notes")
    if notes:
        print(f"\n(a) closing-note outcomes: {notes['labelled_notes']} labelled Boston notes")
        print(
            f"{'draw':12} {'notes':>6}  {'ours F1':>8} {'acc':>6}  {'keywords F1':>11} {'acc':>6}"
        )
        for draw, d in [
            *notes["draws"].items(),
            ("all", {**notes["all"], "notes": notes["labelled_notes"]}),
        ]:
            print(
                f"{draw:12} {d['notes']:>6}  {d['ours']['macro_f1']:>8.3f} "
                f"{d['ours']['accuracy']:>6.3f}  {d['baseline']['macro_f1']:>11.3f} "
                f"{d['baseline']['accuracy']:>6.3f}"
            )
        a = notes["all"]
        print(
            f"all notes, 95% bootstrap: ours {a['ours_macro_f1_95']}, keywords "
            f"{a['baseline_macro_f1_95']}, difference {a['difference_95']}; accuracy weighted by "
            f"requests: ours {a['ours_accuracy_weighted_by_requests']:.3f}, keywords "
            f"{a['baseline_accuracy_weighted_by_requests']:.3f}"
        )
        print(
            "per outcome F1 (ours / keywords): "
            + ", ".join(
                f"{o} {v['ours_f1']:.2f}/{v['baseline_f1']:.2f}"
                for o, v in notes["per_outcome"].items()
            )
        )
    dup = results.get("duplicates")
    if isinstance(dup, dict) and "detectors" in dup:
        print(
            f"\n(b) duplicates against the city's own ({dup['city_duplicates']:,} closed as "
            f"duplicates, {dup['named_pairs']:,} named pairs); rule chosen on "
            f"{dup['tune_years']}, scored on {dup['test_years']}"
        )
        print(f"{'detector':14} {'precision':>9} {'recall':>7} {'pair recall':>11} {'flagged':>8}")
        for name, d in dup["detectors"].items():
            t = d["test"]
            print(
                f"{name:14} {t['request_precision']:>9.3f} {t['request_recall']:>7.3f} "
                f"{t['pair_recall']:>11.3f} {t['flagged']:>8,}   {d['rule']}"
            )
    speed = results.get("speed")
    if isinstance(speed, dict) and "by" in speed:
        print(f"\n(c) outcomes on the whole Boston store ({speed['requests']:,} requests), cold:")
        for by, s in speed["by"].items():
            print(
                f"  --by {by:9} {s['seconds_median']:>6.2f} s (median of 3; {s['groups']} groups)"
            )
        print(
            f"  baseline (closed-only median per area, pandas): {speed['baseline_seconds_median']:.2f} s; "
            f"target {speed['target_s']:.0f} s"
        )
        n = speed["notes_classified"]
        print(
            f"  notes: {n['notes']:,} ({n['distinct']:,} distinct) classified in "
            f"{n['ours_seconds']:.2f} s (keywords {n['baseline_seconds']:.2f} s)"
        )
        for measure, d in speed["boston_by_area"].items():
            names = "; ".join(
                f"{g['group']} {g['ratio']:.2f} ({g['low']:.2f}-{g['high']:.2f})"
                for g in d["differ"]
            )
            print(f"  {measure}: {len(d['differ'])} of {d['tested']} areas differ: {names or '-'}")
    cities = results.get("cities")
    if isinstance(cities, dict):
        for name, c in cities.items():
            if "counts" not in c:
                print(f"\n(d) {name}: {c}")
                continue
            k = c["counts"]
            print(
                f"\n(d) {name}: ingest {c['ingest_seconds']} s, outcomes {c['outcomes_seconds']} s; "
                f"{k['requests']:,} requests, {k['closed']:,} closed, {k['open']:,} open; "
                f"{c['groups']} groups by {c['by']}; differ: "
                + ("; ".join(f"{g['group']} {g['ratio']:.2f}" for g in c["differ"]) or "none")
            )
            for m in c["messages"]:
                print(f"    {m}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, action="append", help="only these parts")
    ap.add_argument("--store", type=Path, default=STORE, help="the analysed Boston store")
    args = ap.parse_args(argv)
    parts = args.part or list(PARTS)
    results: dict[str, Any] = {}
    if "notes" in parts:
        results["notes"] = notes_part()
    raw = data_raw()
    if raw is None:
        for part in parts:
            if part != "notes":
                print(f"[outcomes] {part} skipped: ../shared/data_raw is absent")
                results[part] = "skipped: ../shared/data_raw is absent"
    else:
        if {"duplicates", "speed"} & set(parts):
            store = boston_store(args.store, raw)
        if "speed" in parts:
            results["speed"] = speed_part(store)
        if "duplicates" in parts:
            results["duplicates"] = duplicates_part(store)
        if "cities" in parts:
            results["cities"] = cities_part(raw)
    _print(results)
    if set(parts) != set(PARTS) and RESULT.is_file():
        # a partial run replaces its own parts and keeps the others' last figures
        earlier = json.loads(RESULT.read_text(encoding="utf-8"))
        results = {
            **{k: earlier[k] for k in PARTS if k in earlier and k not in results},
            **results,
        }
        results["parts_run_last"] = parts
    write_result("outcomes", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
