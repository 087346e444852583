"""The platforms' real exports in ../shared/data_raw (a cut of each, to keep redaction short):
detected from the header, dates read in each column's format, nothing silently lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analyzer.ingest import IngestOptions, ingest_file
from analyzer.store.database import Store
from tests.conftest import SHARED, needs_shared

CUT = 300

CASES = {
    # file, options, profile, created column and its format
    "gainesville": (
        "gainesville_mygnv/gainesville_mygnv_311_sample_5000.csv",
        {"tz": "America/New_York"},
        "seeclickfix",
        ("created", "ISO 8601"),
        ("closed", "%m/%d/%Y %H:%M:%S (month-first)"),
    ),
    "detroit": (
        "detroit_traffic_complaints/detroit_improve_detroit_traffic_complaints_2018_2025.csv",
        {},
        "seeclickfix",
        ("created_at", "ISO 8601"),
        ("closed_at", "ISO 8601"),
    ),
    "lewisham": (
        "lewisham_fixmystreet/lewisham_fixmystreet_reports_2021_2024.csv",
        {},
        "fixmystreet",
        ("requested_datetime", "ISO 8601"),
        ("first_absent_utc", "ISO 8601"),
    ),
    "honolulu": (
        "honolulu_311/honolulu_311_archive_subset_2011_2019.csv",
        {
            "text_cols": ("Description",),
            "time_col": "DateCreate_Converted",
            "label_col": "ReportType",
            "tz": "Pacific/Honolulu",
        },
        "csv",
        ("DateCreate_Converted", "%m/%d/%Y %I:%M:%S %p (month-first)"),
        None,
    ),
}


@needs_shared
@pytest.mark.parametrize("city", sorted(CASES))
def test_a_cut_of_each_real_export(city: str, tmp_path: Path) -> None:
    rel, opts, profile, created, other = CASES[city]
    src = pd.read_csv(SHARED / rel, dtype=str, keep_default_na=False)
    # an even cut across the file's years (the files are sorted by time)
    cut = src.iloc[:: max(1, len(src) // CUT)].head(CUT)
    path = tmp_path / Path(rel).name
    cut.to_csv(path, index=False)
    with Store(tmp_path / "s.duckdb") as st:
        r = ingest_file(st, path, options=IngestOptions(source=city, **opts), progress=False)
        stored = st.query_df(
            "SELECT count(*) AS n, count(created_at) AS dated, count(category) AS cat, "
            "count(lat) AS located, min(kind) AS kind FROM records"
        ).iloc[0]
    assert r.profile.split(" ")[0] == profile
    assert r.rows_loaded + r.rows_rejected == r.rows_read == len(cut)
    assert set(r.rejects_by_reason) <= {"empty text", "duplicate id"}
    assert r.date_formats[created[0]] == created[1]
    if other:
        assert r.date_formats[other[0]] == other[1]
    assert stored["kind"] == "311" and stored["cat"] == stored["n"]
    # every row with a time in the file has one in the store (no misread day or month)
    has_time = (cut[created[0]].str.strip() != "").sum()
    assert stored["dated"] >= has_time - r.rows_rejected
    assert stored["located"] > 0.9 * stored["n"]
    assert not [w for w in r.warnings if "column" in w and "no " in w]


@needs_shared
def test_detroit_rows_without_a_description_keep_the_residents_form_answer(
    tmp_path: Path,
) -> None:
    """Only the issues with no words at all are rejected: 40 of Detroit's 4,179 (SOURCE.md: 4,136
    have a description or a real ``additional_details`` answer; 3 more answered another form)."""
    from analyzer.ingest.boilerplate import is_placeholder

    rel = CASES["detroit"][0]
    src = pd.read_csv(SHARED / rel, dtype=str, keep_default_na=False)
    no_desc = src["description"].str.strip() == ""
    cut = pd.concat([src[no_desc], src[~no_desc].head(100)])
    answer = cut["additional_details"].str.strip()
    words = (answer != "") & ~is_placeholder(answer)
    other = cut["other_form_answers"].str.strip() != ""
    wordless = int((no_desc[cut.index] & ~words & ~other).sum())
    path = tmp_path / "detroit.csv"
    cut.to_csv(path, index=False)
    with Store(tmp_path / "s.duckdb") as st:
        r = ingest_file(st, path, options=IngestOptions(source="detroit"), progress=False)
    assert int(no_desc.sum()) == 134 and wordless == 40
    assert r.rows_rejected == wordless and r.rows_loaded == len(cut) - wordless
