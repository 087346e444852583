"""A store written by the previous version (schema 1: no ``source`` on themes and lineage) opens,
is migrated in place, and answers as before.

The store is built here with schema 1's own DDL and rows shaped as that version's writer left
them, including its retirement bug: a re-fit wrote "retired" lineage events but left those themes
active. The migration gives every theme and lineage row its source and retires those themes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from analyzer import queries
from analyzer.analysis.pipeline import load_records
from analyzer.analysis.plan import make_plan
from analyzer.store.database import SCHEMA_VERSION, Store, table_columns

# Schema 1, as analyzer/store.py (version 1) created every store: a frozen copy.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- canonical records; text is already redacted; raw_text only with --keep-raw and never served
CREATE TABLE IF NOT EXISTS records (
    id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    category VARCHAR,
    status VARCHAR,
    lat DOUBLE,
    lon DOUBLE,
    area VARCHAR,
    attributes JSON,
    text_hash VARCHAR NOT NULL,
    raw_text VARCHAR,
    file_hash VARCHAR,
    ingested_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS rejects (
    file VARCHAR,
    file_hash VARCHAR,
    row_number BIGINT,
    column_name VARCHAR,
    reason VARCHAR,
    content VARCHAR,
    rejected_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS files (
    file_hash VARCHAR PRIMARY KEY,
    path VARCHAR,
    profile VARCHAR,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    ingested_at TIMESTAMPTZ DEFAULT current_timestamp
);

-- embedding cache keyed by model id and text hash; float16 to keep it compact
CREATE TABLE IF NOT EXISTS embeddings (
    model_id VARCHAR,
    text_hash VARCHAR,
    vector BLOB,
    PRIMARY KEY (model_id, text_hash)
);

CREATE TABLE IF NOT EXISTS sentiment (
    record_id VARCHAR PRIMARY KEY,
    model_id VARCHAR,
    label VARCHAR,
    score DOUBLE
);

CREATE TABLE IF NOT EXISTS themes (
    theme_id VARCHAR PRIMARY KEY,
    parent_id VARCHAR,
    level INTEGER,
    label VARCHAR,
    keywords JSON,
    size BIGINT,
    examples JSON,
    breakdown JSON,
    sentiment DOUBLE,
    centroid BLOB,
    status VARCHAR,
    run_id VARCHAR,
    first_seen_run VARCHAR
);

CREATE TABLE IF NOT EXISTS assignments (
    record_id VARCHAR PRIMARY KEY,
    theme_id VARCHAR,
    subtheme_id VARCHAR,
    x REAL,
    y REAL,
    run_id VARCHAR
);

CREATE TABLE IF NOT EXISTS theme_lineage (
    run_id VARCHAR,
    theme_id VARCHAR,
    event VARCHAR,
    related JSON
);

CREATE TABLE IF NOT EXISTS theme_overrides (
    theme_id VARCHAR PRIMARY KEY,
    label VARCHAR,
    merged_into VARCHAR,
    updated_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS emerging (
    run_id VARCHAR,
    theme_id VARCHAR,
    theme_label VARCHAR,
    kind VARCHAR,
    period VARCHAR,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    area VARCHAR,
    count BIGINT,
    baseline DOUBLE,
    ratio DOUBLE,
    p_value DOUBLE,
    q_value DOUBLE,
    examples JSON
);

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    kind VARCHAR,
    status VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    progress DOUBLE,
    message VARCHAR,
    manifest JSON
);

CREATE TABLE IF NOT EXISTS corrections (
    id VARCHAR,
    text VARCHAR,
    label VARCHAR,
    record_id VARCHAR,
    created_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    key_hash VARCHAR,
    created_at TIMESTAMPTZ DEFAULT current_timestamp,
    revoked BOOLEAN DEFAULT false
);
INSERT INTO meta VALUES ('schema_version', '1');
"""

R1, R2, R3 = "20200101-000000-aaaaaa", "20200201-000000-bbbbbb", "20200301-000000-cccccc"
# theme -> (parent, first run, last run that wrote it, its records' source, record count)
THEMES: dict[str, tuple[str | None, str, str, str, int]] = {
    "REQ0001": (None, R1, R3, "311", 6),
    "REQ0001.01": ("REQ0001", R1, R3, "311", 3),
    "REQ0001.02": ("REQ0001", R1, R3, "311", 3),
    "REQ0002": (None, R1, R1, "311", 0),  # dropped by R2; the old writer left it active
    "REQ0002.01": ("REQ0002", R1, R1, "311", 0),
    "REQ0003": (None, R2, R3, "311", 4),
    "REQ0003.01": ("REQ0003", R2, R3, "311", 4),
    "SRV0001": (None, R1, R3, "survey", 3),
    "SRV0001.01": ("SRV0001", R1, R3, "survey", 3),
    "XYZX0001": (None, R1, R1, "", 0),  # no members, and no source has this prefix
}
LINEAGE = [
    *[(R1, t, "new", []) for t in THEMES if THEMES[t][1] == R1],
    (R2, "REQ0001", "same", ["REQ0001"]),
    (R2, "REQ0001.01", "same", ["REQ0001.01"]),
    (R2, "REQ0001.02", "retired", []),  # ... and matched again by R3: it stays active
    (R2, "REQ0002", "retired", ["REQ0003"]),
    (R2, "REQ0002.01", "retired", []),
    (R2, "REQ0003", "new", ["REQ0002"]),
    (R2, "REQ0003.01", "new", []),
    (R3, "REQ0001", "same", ["REQ0001"]),
    (R3, "REQ0001.01", "same", ["REQ0001.01"]),
    (R3, "REQ0001.02", "same", ["REQ0001.02"]),
    (R3, "REQ0003", "same", ["REQ0003"]),
    (R3, "REQ0003.01", "same", ["REQ0003.01"]),
]


def write_v1_store(path: Path) -> None:
    rng = np.random.default_rng(0)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA_V1)
    n = 0
    for tid, (parent, first, last, source, size) in THEMES.items():
        centroid = rng.normal(size=8)
        centroid = (centroid / np.linalg.norm(centroid)).astype(np.float16).tobytes()
        members = []
        if parent is not None:  # records are added once, through their sub-theme
            for _ in range(size):
                n += 1
                rid = f"{source}:{n}"
                members.append(rid)
                con.execute(
                    "INSERT INTO records (id, source, text, created_at, category, text_hash) "
                    "VALUES (?, ?, ?, TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_days(?), ?, ?)",
                    [rid, source, f"request {n} about {tid}", n, f"cat {parent}", f"h{n}"],
                )
                con.execute(
                    "INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
                    [rid, parent, tid, float(n), float(-n), last],
                )
        con.execute(
            "INSERT INTO themes VALUES (?, ?, ?, ?, ?, ?, ?, '{}', NULL, ?, 'active', ?, ?)",
            [
                tid,
                parent,
                1 if parent is None else 2,
                f"label of {tid}",
                json.dumps([tid.lower()]),
                size,
                json.dumps(members[:2]),
                centroid,
                last,
                first,
            ],
        )
    for run, tid, event, related in LINEAGE:
        con.execute(
            "INSERT INTO theme_lineage VALUES (?, ?, ?, ?)", [run, tid, event, json.dumps(related)]
        )
    for month, run in enumerate((R1, R2, R3), start=1):
        manifest = {"run_id": run, "models": {"embedding": "some-model@1"}}
        con.execute(
            "INSERT INTO runs VALUES (?, 'analyze', 'done', make_timestamptz(2020, ?, 1, 0, 0, 0), "
            "make_timestamptz(2020, ?, 1, 0, 1, 0), 1.0, 'done', ?)",
            [run, month, month, json.dumps(manifest)],
        )
    con.close()


def answers(path: Path) -> dict[str, Any]:
    """What the read layer says about the store (opened read-only: nothing is migrated)."""
    out: dict[str, Any] = {}
    with Store(path, read_only=True) as store:
        out["list"] = queries.list_themes(store)
        out["stats"] = queries.stats(store)
        for tid in THEMES:
            try:
                out[tid] = queries.theme_detail(store, tid)
            except queries.ThemeNotFoundError:
                out[tid] = 404
    return out


@pytest.fixture()
def v1_store(tmp_path: Path) -> Path:
    path = tmp_path / "v1.duckdb"
    write_v1_store(path)
    return path


def test_a_version_1_store_is_migrated_on_open_and_answers_the_same(v1_store: Path) -> None:
    before = answers(v1_store)
    # the old bug, as the previous version served it: a dropped theme answered 200, size 0
    assert before["REQ0002"]["status"] == "active" and before["REQ0002"]["size"] == 0

    with Store(v1_store) as store:
        assert store.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(
            SCHEMA_VERSION
        )
        for table in ("themes", "theme_lineage"):
            assert "source" in table_columns(store.con, table)
        themes = store.query_df("SELECT theme_id, source, status FROM themes ORDER BY theme_id")
        lineage = store.query_df("SELECT theme_id, source FROM theme_lineage")

    source = dict(zip(themes["theme_id"], themes["source"], strict=True))
    # from the records assigned to the theme; a theme without members from its id's prefix
    assert {t: s for t, s in source.items() if t != "XYZX0001"} == {
        t: "311" if t.startswith("REQ") else "survey" for t in THEMES if t != "XYZX0001"
    }
    assert pd.isna(source["XYZX0001"])  # no source issues "XYZX": left without one
    # lineage rows take their theme's
    assert lineage["theme_id"].map(source).fillna("-").tolist() == (
        lineage["source"].fillna("-").tolist()
    )
    assert lineage["source"].notna().sum() == len(LINEAGE) - 1  # all but XYZX0001's
    # the themes the last re-fit that saw them dropped are retired now; one matched again is not
    status = dict(zip(themes["theme_id"], themes["status"], strict=True))
    assert {t for t, s in status.items() if s == "retired"} == {"REQ0002", "REQ0002.01"}

    after = answers(v1_store)
    # everything else answers as before; the retired pair answer 404 and no longer count
    assert after["REQ0002"] == after["REQ0002.01"] == 404
    for key, value in before.items():
        if key not in ("REQ0002", "REQ0002.01", "stats"):
            assert after[key] == value, key
    counted = {
        "themes": before["stats"]["themes"] - 1,
        "subthemes": before["stats"]["subthemes"] - 1,
    }
    assert after["stats"] == {**before["stats"], **counted}


def test_migration_runs_once_and_the_next_analysis_sees_each_sources_themes(
    v1_store: Path,
) -> None:
    with Store(v1_store):
        pass
    with Store(v1_store) as store:  # already current: nothing to do
        assert store.scalar("SELECT count(*) FROM themes WHERE status = 'retired'") == 2
        records = load_records(store, "sentiment-model")
        plan = make_plan(store, records, refit=False, sentiment_model=None)
    # every record has an assignment, so both sources go incremental, over their active themes
    assert plan.refit_sources == set()
    by_source = plan.previous.groupby(plan.previous["source"].fillna("-"))["theme_id"]
    assert {k: sorted(v) for k, v in by_source} == {
        "311": ["REQ0001", "REQ0001.01", "REQ0001.02", "REQ0003", "REQ0003.01"],
        "survey": ["SRV0001", "SRV0001.01"],
        "-": ["XYZX0001"],
    }
