"""Shared set-up for the API tests: a store built from real Boston 311 rows.

Rows come from data_samples/boston_311_sample.csv (or, until that file exists, the Boston
stratified sample in ../shared/data_raw) and go through the real ingest (validation, redaction).
The analysis tables are then written by the analysis run's own writers (``analyzer.store.writers``:
``write_themes``, ``write_sentiment``, ``write_alerts``) with ids of the real format
(``analyzer.themes.ids``: ``REQ0002``, sub-theme ``REQ0002.01``), from the records themselves: one
theme per city category (numbered in the categories' alphabetical order), one sub-theme per
(category, status), the map position from the coordinates, VADER sentiment of the redacted text,
the themes' centroids from the texts' real embeddings, one emerging alert and its run. The read layer is then tested against numbers that can
be recomputed from the records.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
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
RUN_ID = "20200426-000000-0f1c2e"  # the shape analyzer.common.clock.new_run_id gives
PHONE_TEXT = "Car blocking the hydrant again, call me at 617-555-0142 if you need details"
# A second planted request, for the exports: a spreadsheet formula with a phone number and an email.
EXPORT_PHONE, EXPORT_EMAIL = "617-555-0187", "r.okafor@example.net"
FORMULA_ID = "boston:990000000077"
FORMULA_TEXT = (
    f'=HYPERLINK("http://evil.example","x") car on the hydrant, call me at {EXPORT_PHONE} '
    f"or {EXPORT_EMAIL}"
)
SENTIMENT_MODEL = "vader-fixture"
STALE_ALERT_LABEL = "label when the alert was raised"

# The theme of each Boston service: REQ (the 311 prefix) + its place in alphabetical order.
ABANDONED, PARKING, OTHER, SIDEWALK, UNSAFE = "REQ0001", "REQ0002", "REQ0003", "REQ0004", "REQ0005"
CATEGORY_THEMES = {
    "Abandoned Vehicle": ABANDONED,
    "Illegal Parking": PARKING,
    "Other": OTHER,
    "Sidewalk Not Shoveled": SIDEWALK,
    "Unsafe Dangerous Conditions": UNSAFE,
}


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


def theme_row(values: dict[str, Any]) -> dict[str, Any]:
    """A theme row with exactly the writer's columns, read when called, so a column added to
    ``THEME_COLUMNS`` (a value known here, or None) needs no change in the tests."""
    from analyzer.store.writers import THEME_COLUMNS

    return {col: values.get(col) for col in THEME_COLUMNS}


def _breakdown(part: pd.DataFrame) -> str:
    """Counts per source, area and category, shaped as ``ThemeModel`` stores them."""
    out = {}
    for col in ("source", "area", "category"):
        counts = part[col].fillna("(none)").astype(str).value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        out[col] = {str(k): int(v) for k, v in counts.items()}
    return json.dumps(out)


def analysis_tables(store) -> dict[str, Any]:
    """What an analysis run would hand to the writers, derived from the store's records."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from analyzer.common.vectors import encode_vector, normalise_rows
    from analyzer.embedding.embedder import get_embedder
    from analyzer.themes.ids import source_prefix, subtheme_id, theme_id

    recs = store.query_df(
        "SELECT id, source, text, category, status, area, lat, lon, created_at FROM records "
        "ORDER BY id"
    )
    assert set(recs["source"]) == {"311"}, "the fixture's themes are numbered for one source"
    prefix = source_prefix("311")
    categories = sorted(recs["category"].unique())
    ids = {c: theme_id(i, prefix) for i, c in enumerate(categories, start=1)}
    assert ids == {c: CATEGORY_THEMES[c] for c in categories}, ids

    vader = SentimentIntensityAnalyzer()
    recs["score"] = [vader.polarity_scores(t)["compound"] for t in recs["text"]]
    sentiment = pd.DataFrame(
        {
            "record_id": recs["id"],
            "model_id": SENTIMENT_MODEL,
            "label": [
                "positive" if s > 0.05 else "negative" if s < -0.05 else "neutral"
                for s in recs["score"]
            ],
            "score": recs["score"],
        }
    )
    # The texts' real vectors, for the centroids. They are not left in the store's embedding cache,
    # so that ``q`` searches here use the word match (similarity search has its own test).
    vectors = get_embedder().embed(recs["text"].tolist())

    recs["theme_id"] = recs["category"].map(ids)
    recs["status"] = recs["status"].fillna("unknown")
    recs["subtheme_id"] = None
    themes: list[dict[str, Any]] = []

    def add(tid: str, parent: str | None, label: str, keywords: list[str], rows) -> None:
        part = recs.loc[rows]
        themes.append(
            theme_row(
                {
                    "theme_id": tid,
                    "parent_id": parent,
                    "level": 1 if parent is None else 2,
                    "label": label,
                    "keywords": json.dumps(keywords),
                    "size": len(part),
                    "examples": json.dumps(part["text"].head(3).tolist()),
                    "breakdown": _breakdown(part),
                    "sentiment": float(part["score"].mean()),
                    "centroid": encode_vector(normalise_rows(vectors[rows].mean(axis=0))),
                    "status": "active",
                    "run_id": RUN_ID,
                    "source": "311",
                }
            )
        )

    for category in categories:
        rows = np.flatnonzero(recs["category"].to_numpy() == category)
        tid = ids[category]
        add(tid, None, category.lower(), category.lower().split(), rows)
        statuses = sorted(recs.loc[rows, "status"].unique())
        for n, status in enumerate(statuses, start=1):
            sub_rows = rows[recs.loc[rows, "status"].to_numpy() == status]
            sid = subtheme_id(tid, n)
            recs.loc[sub_rows, "subtheme_id"] = sid
            add(sid, tid, f"{category.lower()} ({status})", [status], sub_rows)
    assignments = pd.DataFrame(
        {
            "record_id": recs["id"],
            "theme_id": recs["theme_id"],
            "subtheme_id": recs["subtheme_id"],
            "x": recs["lon"],
            "y": recs["lat"],
            "run_id": RUN_ID,
        }
    )
    lineage = [
        {
            "run_id": RUN_ID,
            "theme_id": t["theme_id"],
            "event": "new",
            "related": "[]",
            "source": "311",
        }
        for t in themes
        if t["level"] == 1
    ]
    # One alert on the largest theme (ties: the first id), with its newest texts as examples, as
    # the detector gives them, and a label that has gone stale since.
    top = recs["theme_id"].value_counts().sort_index().idxmax()
    newest = recs.loc[recs["theme_id"] == top].sort_values(["created_at", "id"])
    end = newest["created_at"].max()
    alerts = pd.DataFrame(
        [
            {
                "run_id": RUN_ID,
                "theme_id": top,
                "theme_label": STALE_ALERT_LABEL,
                "kind": "spike",
                "period": "W",
                "window_start": end - pd.Timedelta(days=7),
                "window_end": end,
                "area": None,
                "count": 5,
                "baseline": 1.2,
                "ratio": 4.1,
                "p_value": 0.001,
                "q_value": 0.01,
                "examples": newest["text"].tail(2).iloc[::-1].tolist(),
            }
        ]
    )
    n_top = len(categories)
    return {
        "sentiment": sentiment,
        "themes": {
            "themes": themes,
            "assignments": [assignments],
            "lineage": lineage,
            "per_source": {"311": {"mode": "refit", "n_top": n_top, "n_sub": len(themes) - n_top}},
        },
        "alerts": alerts,
        "counts": {"records": len(recs), "themes": n_top, "subthemes": len(themes) - n_top},
    }


def fill_analysis(store) -> None:
    """The analysis tables and the run, written by the production writers in one transaction."""
    from analyzer.store.writers import write_alerts, write_sentiment, write_themes

    tables = analysis_tables(store)
    manifest = {"run_id": RUN_ID, "counts": tables["counts"], "fixture": "tests/api_support"}
    store.start_run(RUN_ID, "analyze", manifest)
    with store.transaction() as con:
        write_sentiment(con, tables["sentiment"])
        write_themes(con, tables["themes"], RUN_ID)
        write_alerts(con, tables["alerts"])
    store.update_run(RUN_ID, status="done", progress=1.0, message="done", manifest=manifest)


def build_store(folder: Path, per_service: int = 14) -> Path:
    """A store with real, ingested Boston rows (and two planted Illegal Parking requests: one with a
    phone number, one a spreadsheet formula with a phone number and an email) and analysis tables
    derived from them. Returns its path (the store is closed).

    Tests share one such store per session (the ``api_store_file`` fixture) and copy it before
    they write to it."""
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    rows = source_rows(per_service)
    for rid, text in (("990000000001", PHONE_TEXT), (FORMULA_ID.split(":")[1], FORMULA_TEXT)):
        planted = dict(rows[0])
        planted.update(service_request_id=rid, description=text, service_name="Illegal Parking")
        rows.append(planted)
    csv_path = write_csv(rows, folder / "boston_rows.csv")
    path = folder / "api.duckdb"
    with Store(path) as store:
        report = ingest_file(store, csv_path, progress=False)
        assert report.rows_loaded > 0
        fill_analysis(store)
    return path
