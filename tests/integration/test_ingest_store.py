"""Store semantics of ingest: idempotent re-ingest, newer versions win, planted PII never stored."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from analyzer.ingest import IngestOptions, ingest_file
from analyzer.ingest.profiles.boston import BOSTON_COLUMNS
from analyzer.store.database import Store

COLUMNS = list(BOSTON_COLUMNS)

# Planted personal data (all fake): none of these strings may be stored or exported.
PHONE = "617-555-0142"
EMAIL = "dana.whitfield@example.org"
NAME = "Dana Whitfield"
HOUSE = "45 Birch St"
PII = (PHONE, EMAIL, NAME, HOUSE, "5550142", "Whitfield")


def row(i: int, **changes: str) -> dict[str, str]:
    r = {
        "service_request_id": f"1020000{i:05d}",
        "requested_datetime": "2020-04-02T09:00:00-04:00",
        "updated_datetime": "2020-04-03T09:00:00-04:00",
        "status": "open",
        "service_name": "Other",
        "service_code": "4f38920fe75084437f0001a0",
        "description": f"Overflowing trash barrel at the park, report {i}",
        "status_notes": "",
        "address": "45 Birch St, 1, Roslindale",
        "lat": "42.2859",
        "long": "-71.1311",
        "media_url": "",
    }
    r.update(changes)
    return r


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    return {
        "records": store.query_df("SELECT * EXCLUDE (ingested_at) FROM records ORDER BY id"),
        "rejects": store.query_df(
            "SELECT * EXCLUDE (rejected_at) FROM rejects ORDER BY file_hash, row_number"
        ),
        "files": store.query_df("SELECT * EXCLUDE (ingested_at) FROM files ORDER BY file_hash"),
    }


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_dtype=False)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.duckdb")
    yield s
    s.close()


def run(store: Store, path: Path, **opts: object):
    return ingest_file(store, path, options=IngestOptions(**opts), progress=False)


def test_reingesting_the_same_file_changes_nothing(store: Store, tmp_path: Path) -> None:
    p = write(tmp_path / "a.csv", [row(1), row(2), row(3, description="")])
    first = run(store, p)
    assert (first.rows_inserted, first.rows_rejected) == (2, 1)
    before = snapshot(store)

    again = run(store, p)
    assert again.skipped and again.rows_inserted == 0 and again.rows_unchanged == 2
    assert again.rows_rejected == 1
    assert_same(before, snapshot(store))

    # forced re-read: every row compared and found unchanged; rejects replaced, not doubled
    forced = run(store, p, force=True)
    assert not forced.skipped
    assert (forced.rows_inserted, forced.rows_updated, forced.rows_unchanged) == (0, 0, 2)
    assert_same(before, snapshot(store))


def test_newer_version_updates_and_older_does_not(store: Store, tmp_path: Path) -> None:
    run(store, write(tmp_path / "v1.csv", [row(1, description="barrel full", status="open")]))
    newer = row(
        1,
        description="barrel emptied",
        status="closed",
        updated_datetime="2020-04-10T09:00:00-04:00",
    )
    r2 = run(store, write(tmp_path / "v2.csv", [newer, row(2)]))
    assert (r2.rows_inserted, r2.rows_updated, r2.rows_unchanged) == (1, 1, 0)
    rec = store.query_df("SELECT text, status FROM records WHERE id = 'boston:102000000001'")
    assert rec.values.tolist() == [["barrel emptied", "closed"]]

    older = row(1, description="stale copy", updated_datetime="2020-04-05T09:00:00-04:00")
    r3 = run(store, write(tmp_path / "v3.csv", [older]))
    assert (r3.rows_inserted, r3.rows_updated, r3.rows_unchanged) == (0, 0, 1)
    rec = store.query_df("SELECT text, status FROM records WHERE id = 'boston:102000000001'")
    assert rec.values.tolist() == [["barrel emptied", "closed"]]
    assert store.scalar("SELECT count(*) FROM records") == 2


def test_records_without_update_times_take_the_corrected_text(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "s1.csv"
    a.write_text("row_id,year,council_district,comment\n1,2016,3,Fix the sidewalks\n")
    run(store, a, dataset="austin")
    b = tmp_path / "s2.csv"
    b.write_text("row_id,year,council_district,comment\n1,2016,3,Fix the sidewalks on Oak\n")
    r = run(store, b, dataset="austin")
    assert r.rows_updated == 1
    assert store.scalar("SELECT text FROM records WHERE id = 'survey:austin:1'") == (
        "Fix the sidewalks on Oak"
    )


def test_planted_pii_never_reaches_text_attributes_or_rejects(store: Store, tmp_path: Path) -> None:
    desc = (
        f"My name is {NAME}, call me at {PHONE} or {EMAIL}. "
        f"The barrel in front of {HOUSE} has not been emptied for a week."
    )
    notes = f"Spoke with {NAME} ({PHONE}), crew sent."
    rows = [
        row(1, description=desc, status_notes=notes),
        row(2, description=desc, status_notes=notes, requested_datetime="not a date"),  # rejected
        row(3, description=desc, lat="999"),  # rejected
    ]
    r = run(store, write(tmp_path / "pii.csv", rows))
    assert (r.rows_loaded, r.rows_rejected) == (1, 2)
    rec = store.query_df("SELECT text, attributes::VARCHAR AS a, raw_text FROM records").iloc[0]
    stored = " ".join(
        [rec["text"], rec["a"], *store.query_df("SELECT content FROM rejects")["content"]]
    )
    for secret in PII:
        assert secret not in stored, secret
    assert "[PHONE]" in rec["text"] and "[EMAIL]" in rec["text"] and "[NAME]" in rec["text"]
    assert "barrel" in rec["text"]  # redaction removes the data, not the complaint
    assert json.loads(rec["a"])["address"] == "Birch St, Roslindale"
    assert rec["raw_text"] is None  # no --keep-raw: the original is not kept


def test_keep_raw_keeps_the_original_only_in_raw_text(store: Store, tmp_path: Path) -> None:
    desc = f"Call {PHONE} about the barrel"
    run(store, write(tmp_path / "raw.csv", [row(1, description=desc)]), keep_raw=True)
    rec = store.query_df("SELECT text, raw_text FROM records").iloc[0]
    assert rec["raw_text"] == desc and PHONE not in rec["text"]


def test_same_rows_in_two_files_are_not_duplicated(store: Store, tmp_path: Path) -> None:
    rows = [row(1), row(2)]
    run(store, write(tmp_path / "a.csv", rows))
    r = run(store, write(tmp_path / "b.csv", [*rows, row(3)]))  # different bytes, same records
    assert (r.rows_inserted, r.rows_unchanged) == (1, 2)
    assert store.scalar("SELECT count(*) FROM records") == 3
