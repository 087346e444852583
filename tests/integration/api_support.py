"""Shared set-up for the API tests: a store built from real Boston 311 rows.

Rows come from data_samples/boston_311_sample.csv (or, until that file exists, the Boston
stratified sample in ../shared/data_raw) and go through the real ingest (validation, redaction).
The analysis tables are filled the way an analysis run fills them, from those records: one theme per
city category, one sub-theme per (category, status), the map position from the coordinates, VADER
sentiment of the redacted text, one emerging alert and its run. The read layer is then tested
against numbers that can be recomputed from the records themselves.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "boston_311_sample.csv"
SHARED_SAMPLE = (
    ROOT.parent
    / "shared"
    / "data_raw"
    / "boston_open311"
    / "boston_open311_sample_stratified_2000.csv"
)
RUN_ID = "20200426-000000-fixture"
PHONE_TEXT = "Car blocking the hydrant again, call me at 617-555-0142 if you need details"


def source_rows(per_service: int = 14) -> list[dict[str, str]]:
    """The first ``per_service`` rows with a description of each Boston service."""
    path = SAMPLE if SAMPLE.is_file() else SHARED_SAMPLE
    if not path.is_file():
        pytest.skip("no Boston sample (data_samples/ or ../shared/data_raw)")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_service: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        name = row.get("service_name", "")
        if row.get("description", "").strip() and len(by_service[name]) < per_service:
            by_service[name].append(row)
    return [r for name in sorted(by_service) for r in by_service[name]]


def write_csv(rows: list[dict[str, str]], path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "-", text.lower()).strip("-")


def fill_analysis(store) -> None:
    """Themes, sub-themes, assignments, sentiment, lineage, one alert and the run, from records."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    recs = store.query_df(
        "SELECT id, text, category, status, lat, lon, created_at FROM records ORDER BY id"
    )
    vader = SentimentIntensityAnalyzer()
    scores = [vader.polarity_scores(t)["compound"] for t in recs["text"]]
    sentiment = pd.DataFrame(
        {
            "record_id": recs["id"],
            "model_id": "vader-fixture",
            "label": [
                "positive" if s > 0.05 else "negative" if s < -0.05 else "neutral" for s in scores
            ],
            "score": scores,
        }
    )
    recs["theme_id"] = "t-" + recs["category"].map(slug)
    recs["subtheme_id"] = recs["theme_id"] + "." + recs["status"].fillna("unknown").map(slug)
    themes = []
    for tid, part in recs.groupby("theme_id"):
        themes.append(
            {
                "theme_id": tid,
                "parent_id": None,
                "level": 1,
                "label": part["category"].iloc[0].lower(),
                "keywords": json.dumps(part["category"].iloc[0].lower().split()),
                "size": len(part),
                "examples": json.dumps(part["id"].head(3).tolist()),
                "status": "active",
            }
        )
        for sid, sub in part.groupby("subtheme_id"):
            themes.append(
                {
                    "theme_id": sid,
                    "parent_id": tid,
                    "level": 2,
                    "label": f"{part['category'].iloc[0].lower()} ({sub['status'].iloc[0]})",
                    "keywords": json.dumps([str(sub["status"].iloc[0])]),
                    "size": len(sub),
                    "examples": json.dumps(sub["id"].head(2).tolist()),
                    "status": "active",
                }
            )
    themes_df = pd.DataFrame(themes)
    assign = recs[["id", "theme_id", "subtheme_id", "lon", "lat"]].rename(
        columns={"id": "record_id", "lon": "x", "lat": "y"}
    )
    top = recs["theme_id"].value_counts().index[0]
    newest = recs.loc[recs["theme_id"] == top].sort_values("created_at")
    alert = pd.DataFrame(
        {
            "theme_id": [top],
            "examples": [json.dumps(newest["id"].tail(2).tolist())],
            "window_end": [newest["created_at"].max()],
        }
    )
    with store.transaction() as con:
        con.register("_s", sentiment)
        con.execute("INSERT INTO sentiment SELECT record_id, model_id, label, score FROM _s")
        con.register("_t", themes_df)
        con.execute(
            "INSERT INTO themes (theme_id, parent_id, level, label, keywords, size, examples, "
            "status, run_id, first_seen_run) SELECT theme_id, parent_id, level, label, keywords, "
            f"size, examples, status, '{RUN_ID}', '{RUN_ID}' FROM _t"
        )
        con.register("_a", assign)
        con.execute(
            "INSERT INTO assignments SELECT record_id, theme_id, subtheme_id, x, y, "
            f"'{RUN_ID}' FROM _a"
        )
        con.execute(
            "INSERT INTO theme_lineage SELECT ?, theme_id, 'new', '[]' FROM _t WHERE level = 1",
            [RUN_ID],
        )
        con.register("_e", alert)
        con.execute(
            "INSERT INTO emerging SELECT ?, theme_id, 'fixture label', 'spike', 'W', "
            "window_end - INTERVAL 7 DAY, window_end, NULL, 5, 1.2, 4.1, 0.001, 0.01, examples "
            "FROM _e",
            [RUN_ID],
        )
        con.execute(
            "INSERT INTO runs VALUES (?, 'analyze', 'done', TIMESTAMPTZ '2020-04-26 00:00:00+00', "
            "TIMESTAMPTZ '2020-04-26 00:01:00+00', 1.0, 'done', '{}')",
            [RUN_ID],
        )
        for name in ("_s", "_t", "_a", "_e"):
            con.unregister(name)


def build_store(folder: Path, per_service: int = 14) -> Path:
    """A store with real, ingested Boston rows (one with a planted phone number) and analysis
    tables derived from them. Returns its path (the store is closed)."""
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    rows = source_rows(per_service)
    planted = dict(rows[0])
    planted.update(
        service_request_id="990000000001",
        description=PHONE_TEXT,
        service_name="Illegal Parking",
    )
    rows.append(planted)
    csv_path = write_csv(rows, folder / "boston_rows.csv")
    path = folder / "api.duckdb"
    with Store(path) as store:
        report = ingest_file(store, csv_path, progress=False)
        assert report.rows_loaded > 0
        fill_analysis(store)
    return path
