"""A new city's first day, on every export in ../shared/data_raw with a category column.

    nice python -m benchmarks.new_city               # five cities, up to 3,000 rows each
    nice python -m benchmarks.new_city --rows 1500   # quicker
    nice python -m benchmarks.new_city --city honolulu

For each city, from a fresh store, the first-day commands the README documents, each run through
the real CLI (``python -m analyzer.cli``, a new process per command, as a user types them):

    civicpulse ingest EXPORT [the city's flags] --source CITY
    civicpulse analyze
    civicpulse themes --source CITY --format json
    civicpulse emerging --source CITY --format json
    civicpulse outcomes --by category --source CITY --format json
    civicpulse tag train --input past.csv --text-col C --label-col L --out M   (the oldest 70%)
    civicpulse tag predict --model M --input later.csv ...                     (the newest 30%)

and prints per city: rows read / loaded / rejected / flagged as boilerplate, the date format read
and the date range, themes, emerging alerts, requests closed and their median days to close,
tagging macro-F1 on the later 30% beside the named
baseline (TF-IDF + LinearSVC trained on the same past rows), the share of the later requests
auto-accepted (``needs_review`` false) and their precision, wall seconds, and every problem found:
a command that fails, rows lost for another reason than an empty text or a duplicate id, a date
in the export missing from the store, a warning in the ingest summary, no themes, no closed
request or no time to close, a `tag train`
that did not find the time column by itself (``tag train`` is called as the contract in
DESIGN.md writes it, without ``--time-col``: it must choose its review threshold on later
requests all the same). A second
baseline checks the dates: the rows whose created time pandas' value-by-value reading
(``format="mixed"``) puts elsewhere than the column's own format does (what "39% misread" was).

An export of a city not in ../shared: ``--export FILE --text-col C --label-col L --time-col T
[--date-format F] [--tz ZONE]`` runs the same flow on it.

The cut of each export is its newest ``--rows`` rows (the files are sorted by time; Honolulu's
undated rows come last and stay in). Writes benchmarks/results/new_city.json (new_city-ROWS.json
for another --rows); skips (exit 0) when ../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.common import require_data_raw, write_result  # noqa: E402


@dataclass(frozen=True)
class City:
    """One export and how the README says to read it on the first day."""

    name: str
    path: str  # under data_raw (or absolute: --export)
    flags: tuple[str, ...]  # ingest flags beside --source
    text: str  # columns of the raw export, for the tagging files
    label: str
    time: str
    tz: str = "UTC"
    date_format: str | None = None
    # whether the export says which requests are closed (Lewisham's feed lists open reports only)
    closes: bool = True


CITIES = (
    City(
        "boston",
        "boston_open311/boston_open311_sample_stratified_2000.csv",
        (),
        "description",
        "service_name",
        "requested_datetime",
    ),
    City(
        "gainesville",
        "gainesville_mygnv/gainesville_mygnv_311_sample_5000.csv",
        ("--tz", "America/New_York"),
        "description",
        "request_type",
        "created",
        "America/New_York",
    ),
    City(
        "detroit",
        "detroit_traffic_complaints/detroit_improve_detroit_traffic_complaints_2018_2025.csv",
        (),
        "description",
        "nature_of_issue",
        "created_at",
    ),
    City(
        "lewisham",
        "lewisham_fixmystreet/lewisham_fixmystreet_reports_2021_2024.csv",
        (),
        "detail",
        "service_name",
        "requested_datetime",
        closes=False,
    ),
    City(
        "honolulu",
        "honolulu_311/honolulu_311_archive_subset_2011_2019.csv",
        (
            "--text-col",
            "Description",
            "--time-col",
            "DateCreate_Converted",
            "--label-col",
            "ReportType",
            "--tz",
            "Pacific/Honolulu",
        ),
        "Description",
        "ReportType",
        "DateCreate_Converted",
        "Pacific/Honolulu",
    ),
)
EXPECTED_REJECTS = {"empty text", "duplicate id"}


@dataclass
class Result:
    city: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_boilerplate: int = 0
    date_format: str = ""
    first_date: str = ""
    last_date: str = ""
    themes: int = 0
    alerts: int = 0
    emerging_note: str = ""
    requests_closed: int = 0  # outcomes: requests the store can tell are closed
    requests_timed: int = 0  # ... and those with a time to close (closed, not before made)
    median_days: float | None = None  # Kaplan-Meier median days to close, largest category
    macro_f1: float | None = None
    baseline_macro_f1: float | None = None
    auto_accepted: float = 0.0  # share of the later requests tagged without review
    auto_precision: float | None = None  # precision of those
    later_unseen_share: float = 0.0  # later requests in a category the history never had
    auto_precision_known: float | None = None  # precision of those in the history's categories
    test_rows: int = 0
    dates_misread_by_mixed: int = 0
    seconds: float = 0.0
    steps_s: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Runner:
    """``python -m analyzer.cli ...`` against one store; every step timed and checked."""

    def __init__(self, store: Path, result: Result) -> None:
        self.store = store
        self.result = result
        self.env = {**os.environ, "CIVICPULSE_STORE_PATH": str(store), "PYTHONPATH": str(ROOT)}

    def __call__(self, step: str, *args: str, store: bool = True) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "analyzer.cli", *args]
        if store:
            cmd += ["--store", str(self.store)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=ROOT)
        self.result.steps_s[step] = round(time.perf_counter() - t0, 1)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            self.result.problems.append(f"{step} exit {proc.returncode}: {last[:200]}")
        elif "Traceback" in proc.stderr:
            self.result.problems.append(f"{step}: a traceback on stderr")
        return proc


def cut(data: Path, city: City, rows: int) -> pd.DataFrame:
    from analyzer.ingest import read_table

    return read_table(data / city.path).tail(rows).reset_index(drop=True)


def ingest_summary(text: str, result: Result, city: City) -> None:
    """Read the figures back from the summary the user sees."""
    import re

    m = re.search(r"([\d,]+) rows read, ([\d,]+) loaded .*?, ([\d,]+) rejected", text)
    if m:
        result.rows_read, result.rows_loaded, result.rows_rejected = (
            int(g.replace(",", "")) for g in m.groups()
        )
    if m := re.search(r"boilerplate ([\d,]+) records", text):
        result.rows_boilerplate = int(m.group(1).replace(",", ""))
    if m := re.search(rf"dates in '{re.escape(city.time)}': (.*)", text):
        result.date_format = m.group(1).strip()
    if m := re.search(r"created from (\S+) to (\S+)", text):
        result.first_date, result.last_date = m.group(1), m.group(2)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("warning:") and "carry no offset" not in line:
            result.problems.append(f"ingest {line}")
        if line.startswith("rejected "):
            reason = line.split(":", 1)[1].strip()
            if reason not in EXPECTED_REJECTS:
                result.problems.append(f"ingest {line}")


def check_dates(store: Path, raw: pd.DataFrame, city: City, result: Result) -> None:
    """Every time in the export is in the store; how many the value-by-value reading misreads."""
    from analyzer.ingest.dates import detect_format, parse_dates
    from analyzer.store.database import Store

    with Store(store, read_only=True) as st:
        dated = int(st.scalar("SELECT count(created_at) FROM records"))
        loaded = int(st.scalar("SELECT count(*) FROM records"))
    values = raw[city.time].astype(str).str.strip()
    fmt = detect_format(values, column=city.time, explicit=city.date_format)
    ours, _ = parse_dates(values, fmt, city.tz)
    expected = int(ours.notna().sum())
    # rows rejected for their text keep their time out of the store: compare among loaded rows
    if dated < min(expected, loaded) - result.rows_rejected:
        result.problems.append(f"{expected - dated} dates of the export are not in the store")
    mixed = value_by_value(values, city.tz)
    both = ours.notna() & mixed.notna()
    diff = (ours[both] - mixed[both]).abs() > pd.Timedelta(minutes=1)
    result.dates_misread_by_mixed = int(diff.sum())


def value_by_value(values: pd.Series, tz: str) -> pd.Series:
    """The baseline reading: pandas ``format="mixed"``, each value on its own (times with an
    offset to UTC, the others in the city's zone)."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    present = values != ""
    aware = present & values.str.contains(r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$")
    if aware.any():
        out[aware] = pd.to_datetime(values[aware], format="mixed", utc=True, errors="coerce")
    naive = present & ~aware
    if naive.any():
        local = pd.to_datetime(values[naive], format="mixed", errors="coerce")
        out[naive] = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    return out


def tagging(run: Runner, raw: pd.DataFrame, city: City, work: Path, result: Result) -> None:
    """Train on the oldest 70% of labelled rows (by time), predict the newest 30%."""
    from analyzer.ingest.dates import detect_format, parse_dates

    df = raw[[city.text, city.label, city.time]].copy()
    df = df[(df[city.text].str.strip() != "") & (df[city.label].str.strip() != "")]
    fmt = detect_format(df[city.time], column=city.time, explicit=city.date_format)
    times, _ = parse_dates(df[city.time], fmt, city.tz)
    df = df[times.notna().to_numpy()]
    times = times[times.notna()]
    order = np.argsort(times.to_numpy(), kind="stable")
    df = df.iloc[order].reset_index(drop=True)
    cut_at = int(len(df) * 0.7)
    past, later = df.iloc[:cut_at], df.iloc[cut_at:]
    past.to_csv(work / "past.csv", index=False)
    later[[city.text]].to_csv(work / "later.csv", index=False)
    model = work / "model"
    train = run(
        "tag train",
        "tag", "train", "--input", str(work / "past.csv"), "--text-col", city.text,
        "--label-col", city.label, "--out", str(model),
        *(("--date-format", city.date_format) if city.date_format else ()),
    )  # fmt: skip
    if train.returncode != 0:
        return
    if f"times in '{city.time}' (found by its name" not in train.stdout + train.stderr:
        result.problems.append(f"tag train: validated without the time column {city.time!r}")
    pred = run(
        "tag predict",
        "tag", "predict", "--model", str(model), "--input", str(work / "later.csv"),
        "--text-col", city.text, "--output", str(work / "pred.csv"),
        store=False,
    )  # fmt: skip
    if pred.returncode != 0:
        return
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score
    from sklearn.svm import LinearSVC

    truth = later[city.label].str.strip().to_numpy()
    tagged = pd.read_csv(work / "pred.csv", dtype=str, keep_default_na=False)
    got = tagged["predicted_label"]
    result.macro_f1 = round(float(f1_score(truth, got.to_numpy(), average="macro")), 4)
    accepted = (tagged["needs_review"] == "False").to_numpy()
    right = got.to_numpy() == truth
    result.auto_accepted = round(float(accepted.mean()), 4)
    if accepted.any():
        result.auto_precision = round(float(right[accepted].mean()), 4)
    # a category the history never had cannot be learnt: how much of the later 30% is one
    unseen = ~np.isin(truth, past[city.label].str.strip().unique())
    result.later_unseen_share = round(float(unseen.mean()), 4)
    if (accepted & ~unseen).any():
        result.auto_precision_known = round(float(right[accepted & ~unseen].mean()), 4)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_past = vec.fit_transform(past[city.text])
    svc = LinearSVC().fit(x_past, past[city.label].str.strip())
    base = svc.predict(vec.transform(later[city.text]))
    result.baseline_macro_f1 = round(float(f1_score(truth, base, average="macro")), 4)
    result.test_rows = len(later)


def has_close_times(raw: pd.DataFrame) -> bool:
    """Whether the cut of the export holds any close time (a column named for it with a value):
    Honolulu's newest 700 rows have none, which is the data, not a misreading."""
    from analyzer.ingest.time_columns import close_time_candidates

    return any(
        (raw[c].astype(str).str.strip() != "").any()
        for c in close_time_candidates([str(c) for c in raw.columns])
    )


def outcomes(run: Runner, city: City, raw: pd.DataFrame, result: Result) -> None:
    """How the city responded, as a manager's first look shows it: every export here says which
    requests are closed and when, so closed requests and a time to close must come out."""
    proc = run(
        "outcomes", "outcomes", "--by", "category", "--source", city.name, "--format", "json"
    )
    if proc.returncode != 0:
        return
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        result.problems.append(
            f"outcomes: --format json printed something else: {proc.stdout[:80]!r}"
        )
        return
    counts = report.get("counts", {})
    result.requests_closed = int(counts.get("closed", 0))
    result.requests_timed = int(counts.get("closed_timed", 0))
    rows = [r for r in report.get("rows", []) if r.get("median_days") is not None]
    if rows:
        largest = max(rows, key=lambda r: r.get("requests", 0))
        result.median_days = round(float(largest["median_days"]), 1)
    if not city.closes:
        return
    if result.requests_closed == 0:
        result.problems.append("outcomes: no request is closed")
    elif result.requests_timed == 0 and has_close_times(raw):
        result.problems.append("outcomes: no time to close")


def _json_list(text: str, step: str, result: Result) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        result.problems.append(f"{step}: --format json printed something else: {text[:80]!r}")
        return []
    return value if isinstance(value, list) else [value]


def run_city(data: Path, city: City, rows: int) -> Result:
    result = Result(city.name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"new-city-{city.name}-") as tmp:
        work = Path(tmp)
        raw = cut(data, city, rows)
        export = work / Path(city.path).name
        raw.to_csv(export.with_suffix(".csv"), index=False)
        export = export.with_suffix(".csv")
        run = Runner(work / "store.duckdb", result)
        ingest = run("ingest", "ingest", str(export), *city.flags, "--source", city.name)
        ingest_summary(ingest.stdout, result, city)
        if ingest.returncode == 0:
            check_dates(run.store, raw, city, result)
            if result.rows_loaded + result.rows_rejected != result.rows_read:
                result.problems.append("rows loaded + rejected != rows read")
            run("analyze", "analyze")
            themes = run("themes", "themes", "--source", city.name, "--format", "json")
            if themes.returncode == 0:
                result.themes = len(_json_list(themes.stdout, "themes", result))
                if result.themes == 0:
                    result.problems.append("no themes")
            emerging = run("emerging", "emerging", "--source", city.name, "--format", "json")
            if emerging.returncode == 0:
                result.alerts = len(_json_list(emerging.stdout, "emerging", result))
                result.emerging_note = (
                    emerging.stderr.strip().splitlines()[-1][:160]
                    if (not result.alerts and emerging.stderr.strip())
                    else ""
                )
            outcomes(run, city, raw, result)
        tagging(run, raw, city, work, result)
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def show(results: list[Result]) -> None:
    def f1(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    head = (
        f"{'city':<12} {'read':>6} {'loaded':>6} {'rej':>5} {'boiler':>6}  {'dates':<22} "
        f"{'themes':>6} {'alerts':>6} {'closed':>6} {'days':>5} {'F1 ours':>7} {'F1 svc':>7} {'auto':>5} {'prec':>5} "
        f"{'mixed≠':>6} {'sec':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        span = f"{r.first_date}..{r.last_date}" if r.first_date else "–"
        print(
            f"{r.city:<12} {r.rows_read:>6,} {r.rows_loaded:>6,} {r.rows_rejected:>5,} "
            f"{r.rows_boilerplate:>6,}  {span:<22} {r.themes:>6} {r.alerts:>6} "
            f"{r.requests_closed:>6,} {'–' if r.median_days is None else r.median_days:>5} "
            f"{f1(r.macro_f1):>7} {f1(r.baseline_macro_f1):>7} {r.auto_accepted:>5.0%} "
            f"{f1(r.auto_precision):>5} {r.dates_misread_by_mixed:>6,} "
            f"{r.seconds:>6.0f}"
        )
    print()
    for r in results:
        print(f"{r.city}: dates {r.date_format or '–'}; steps {r.steps_s}")
        if r.emerging_note:
            print(f"  no alert: {r.emerging_note}")
        if r.later_unseen_share >= 0.005:
            print(
                f"  {r.later_unseen_share:.0%} of the later requests are in a category the history "
                f"never had; auto-accepted precision on the history's categories "
                f"{f1(r.auto_precision_known)}"
            )
        for p in r.problems:
            print(f"  PROBLEM: {p}")
    clean = [r.city for r in results if not r.problems]
    print(f"\nran clean: {len(clean)} of {len(results)} ({', '.join(clean) or 'none'})")
    print(
        "closed / days: requests `outcomes` tells are closed, and the median days to close "
        "(Kaplan-Meier) of the largest category; "
        "F1 ours: `tag train` / `tag predict` (macro-F1 on the newest 30%); F1 svc: TF-IDF + "
        "LinearSVC on the same rows; auto / prec: the newest 30% tagged without review and their "
        "precision (the promise is 0.95); mixed≠: created times pandas format='mixed' reads "
        "elsewhere than the column's own format"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000, help="newest rows of each export")
    ap.add_argument("--city", action="append", choices=[c.name for c in CITIES])
    ap.add_argument("--export", type=Path, help="an export of another city instead")
    ap.add_argument("--text-col", help="with --export: the text column")
    ap.add_argument("--label-col", help="with --export: the category column (tagging)")
    ap.add_argument("--time-col", help="with --export: the created time column")
    ap.add_argument("--date-format", help="with --export: strftime of its day/month dates")
    ap.add_argument("--tz", default="UTC", help="with --export: the city's time zone")
    args = ap.parse_args(argv)
    if args.export:
        if not (args.text_col and args.label_col and args.time_col):
            ap.error("--export needs --text-col, --label-col and --time-col")
        flags = ["--text-col", args.text_col, "--label-col", args.label_col]
        flags += ["--time-col", args.time_col, "--tz", args.tz]
        if args.date_format:
            flags += ["--date-format", args.date_format]
        chosen = [
            City(
                args.export.stem.split(".")[0].lower().replace(" ", "-")[:20] or "city",
                str(args.export.resolve()),
                tuple(flags),
                args.text_col,
                args.label_col,
                args.time_col,
                args.tz,
                args.date_format,
            )
        ]
        data = Path("/")
    else:
        data = require_data_raw("new_city")
        chosen = [c for c in CITIES if not args.city or c.name in args.city]
    results = []
    for city in chosen:
        print(f"[new_city] {city.name}: {args.rows:,} rows at most ...", flush=True)
        results.append(run_city(data, city, args.rows))
    show(results)
    if args.export:
        print("(an --export run: benchmarks/results/new_city.json is left as it was)")
        return 0 if all(not r.problems for r in results) else 1
    write_result(
        "new_city" if args.rows == 3000 else f"new_city-{args.rows}",
        {
            "rows_per_city": args.rows,
            "baselines": {
                "tagging": "TF-IDF (1-2 grams) + LinearSVC on the same past rows",
                "dates": "pandas.to_datetime(format='mixed'), value by value",
            },
            "cities": [r.__dict__ for r in results],
        },
    )
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
