"""Outcomes through the store: the CLI, the API and a new ingest, on real ingested requests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analyzer.cli import main
from tests.conftest import SHARED, needs_shared

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "boston_311_sample.csv"
PHONE = "617-555-0199"
COLUMNS = (
    "group",
    "requests",
    "closed",
    "open",
    "median_days",
    "median_low",
    "median_high",
    "p90_days",
    "on_time_share",
    "share_resolved",
    "share_no_violation",
    "share_duplicate",
    "share_referred",
    "share_administrative",
    "share_unknown",
    "observed",
    "expected",
    "ratio",
    "ratio_low",
    "ratio_high",
    "q_value",
)


def run_cli(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Boston sample through the real ingest, plus one request whose closing note carries a
    staff member's phone number (the note must come out redacted)."""
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    folder = tmp_path_factory.mktemp("outcomes")
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    planted = df[(df["service_name"] == "Illegal Parking") & (df["description"] != "")].head(1)
    planted = planted.copy()
    planted["service_request_id"] = "101099999991"
    planted["status"] = "closed"
    # the latest request: the first example of its category
    planted["requested_datetime"] = "2020-04-26T10:00:00-04:00"
    planted["updated_datetime"] = "2020-04-26T12:00:00-04:00"
    planted["status_notes"] = f"Case Resolved. Vehicle towed. Questions: call Joe at {PHONE}."
    path = folder / "boston.csv"
    pd.concat([df, planted]).to_csv(path, index=False)
    with Store(folder / "store.duckdb") as store:
        assert ingest_file(store, path, progress=False).rows_loaded > 4000
    return folder / "store.duckdb"


@pytest.fixture()
def store_path(store_file: Path, copy_store, tmp_path: Path) -> Path:
    return copy_store(store_file, tmp_path)


def test_cli_by_area_json_adds_up(store_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("outcomes", "--by", "area", "--format", "json", "--store", str(store_path)) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    rows = pd.DataFrame(report["rows"])
    assert set(COLUMNS) <= set(rows.columns)
    assert rows["requests"].sum() == report["counts"]["requests"] > 4000
    for measure in ("time_to_close", "without_action"):
        totals = report["totals"][measure]
        assert totals["observed"] == pytest.approx(totals["expected"])
    assert rows["observed"].sum() == pytest.approx(rows["expected"].sum())
    # no targets given and none stored: said, not invented
    assert "no targets" in out.err and rows["on_time_share"].isna().all()
    assert {"Dorchester", "Roxbury", "South Boston"} <= set(rows["group"])


def test_cli_table_names_the_areas_that_differ(
    store_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli("outcomes", "--by", "category", "--store", str(store_path)) == 0
    out = capsys.readouterr().out
    # Boston's categories close at very different speeds from what their themes predict
    assert "differ from what their mix of requests predicts" in out
    assert re.search(r"Illegal Parking: observed / expected [0-9.]+ \([0-9.]+-[0-9.]+\)", out)


def test_cli_csv_with_targets(store_path: Path, tmp_path: Path) -> None:
    targets = tmp_path / "targets.csv"
    targets.write_text(
        "category,target_days\nIllegal Parking,1\nAbandoned Vehicle,14\n", encoding="utf-8"
    )
    out = tmp_path / "by_category.csv"
    code = run_cli(
        "outcomes",
        "--by",
        "category",
        "--targets",
        str(targets),
        "--measure",
        "on_time",
        "--output",
        str(out),
        "--store",
        str(store_path),
    )
    assert code == 0
    df = pd.read_csv(out).set_index("group")
    assert 0 < df.loc["Illegal Parking", "on_time_share"] < 1
    assert pd.isna(df.loc["Other", "on_time_share"])  # no target for it
    assert (df["measure"] == "on_time").all()


def test_cli_mistakes_are_one_line_exit_2(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "targets.csv"
    bad.write_text("category,target_days\nIllegal Parking,soon\n", encoding="utf-8")
    assert run_cli("outcomes", "--targets", str(bad), "--store", str(store_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 2, column 'target_days'" in err and str(bad) in err
    assert run_cli("outcomes", "--since", "2020-13-01", "--store", str(store_path)) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert run_cli("outcomes", "--by", "street", "--store", str(store_path)) == 2


def test_api_outcomes_and_examples_are_the_cli_numbers(
    store_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from analyzer.config import Settings
    from api.app import create_app

    assert run_cli("outcomes", "--by", "area", "--format", "json", "--store", str(store_path)) == 0
    cli = json.loads(capsys.readouterr().out)
    with TestClient(create_app(Settings(store_path=store_path))) as client:
        got = client.get("/v1/outcomes", params={"by": "area"})
        assert got.status_code == 200
        assert got.json()["rows"] == cli["rows"]  # one rule for the CLI and the API
        since = client.get("/v1/outcomes", params={"by": "category", "since": "2019-01-01"})
        assert 0 < since.json()["counts"]["requests"] < cli["counts"]["requests"]
        target = client.get("/v1/outcomes", params={"target": "Illegal Parking:2"})
        assert target.status_code == 200 and target.json()["counts"]["with_target"] > 100
        assert client.get("/v1/outcomes", params={"target": "Other:never"}).status_code == 422
        examples = client.get(
            "/v1/outcomes/examples",
            params={"by": "category", "group": "Illegal Parking", "outcome": "resolved"},
        )
        assert examples.status_code == 200
        items = examples.json()["items"]
        assert items and all(i["outcome"] == "resolved" for i in items)
        assert all(i["category"] == "Illegal Parking" and i["text"] for i in items)
        # the planted note is served, redacted: the staff member's phone number is gone
        notes = [i["note"] or "" for i in items]
        assert any("Vehicle towed" in n for n in notes)
        assert not any(PHONE in n for n in notes)


def test_outcomes_follow_a_new_ingest(store_path: Path, tmp_path: Path) -> None:
    from analyzer.ingest import ingest_file
    from analyzer.outcomes import outcomes
    from analyzer.store.database import Store

    with Store(store_path) as store:
        before = outcomes(store, "category").counts["requests"]
        more = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).head(30).copy()
        more["service_request_id"] = [f"1010888888{i:02d}" for i in range(30)]
        more["description"] = "a new request " + more.index.astype(str)
        path = tmp_path / "more.csv"
        more.to_csv(path, index=False)
        ingest_file(store, path, progress=False)
        after = outcomes(store, "category").counts["requests"]
    assert after == before + 30


GAINESVILLE = SHARED / "gainesville_mygnv" / "gainesville_mygnv_311_sample_5000.csv"
HONOLULU = SHARED / "honolulu_311" / "honolulu_311_archive_subset_2011_2019.csv"


@needs_shared
def test_gainesville_districts_from_status_and_close_times(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = str(tmp_path / "gnv.duckdb")
    args = [
        "ingest",
        str(GAINESVILLE),
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
        "--store",
        store,
    ]
    assert run_cli(*args) == 0
    capsys.readouterr()
    assert run_cli("outcomes", "--by", "area", "--format", "json", "--store", store) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    rows = pd.DataFrame(report["rows"])
    # commission districts 1-4; "Archived" requests are closed, with their close times
    assert {"1", "2", "3", "4"} <= set(rows["group"])
    assert report["counts"]["closed"] > 4000 and rows["median_days"].notna().all()
    assert "no closing notes" in captured.err
    assert rows["share_referred"].sum() > 0  # "Referred to Another Agency" is an outcome


@needs_shared
def test_honolulu_without_areas_still_gets_times(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = str(tmp_path / "hnl.duckdb")
    args = [
        "ingest",
        str(HONOLULU),
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
        "--store",
        store,
    ]
    assert run_cli(*args) == 0
    capsys.readouterr()
    assert run_cli("outcomes", "--by", "category", "--format", "json", "--store", store) == 0
    report = json.loads(capsys.readouterr().out)
    rows = pd.DataFrame(report["rows"]).set_index("group")
    assert {"Vehicle", "Trash", "Light"} <= set(rows.index)
    # "Referred To Dept" without a close time is still open: censored, not closed
    assert report["counts"]["open"] > 2000
    assert rows.loc["Vehicle", "median_days"] > 0
    assert report["totals"]["time_to_close"]["observed"] == pytest.approx(
        report["totals"]["time_to_close"]["expected"]
    )


ODD_FILTERS = [
    {"since": "9999-12-31"},
    {"until": "0001-01-01"},
    {"until": "9999-12-31"},
    {"since": "0001-01-01T00:00:00+14:00"},
    {"since": "1900-01-01", "until": "1900-01-02"},
    {"source": "no such source"},
    {"kind": "survey"},
    {"area": "nowhere"},
    {"category": "no such category"},
    {"period": "quarter", "measure": "on_time", "target": "Other:0.000001"},
    {"since": "2020-04-20", "measure": "without_action", "alpha": "0.999"},
]


def test_api_odd_filters_answer_without_a_server_error(store_path: Path, tmp_path: Path) -> None:
    """A filter that matches nothing, a far date, a store with no requests at all: an answer
    with an empty table and the reason, never a 500 (a fuzz run once got one: the table of no
    rows had no columns)."""
    from analyzer.config import Settings
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store
    from api.app import create_app

    comments = tmp_path / "comments.duckdb"
    with Store(comments) as store:  # survey comments only: no status, no close time
        ingest_file(store, ROOT / "data_samples" / "austin_survey_comments.csv", progress=False)
    for path, reason in (
        (store_path, "no service requests match these filters"),
        (tmp_path / "empty.duckdb", "the store is empty"),
        (comments, "no service requests in this store"),
    ):
        app = create_app(Settings(store_path=path))
        with TestClient(app, raise_server_exceptions=False) as client:
            for by in ("area", "theme", "category"):
                for params in ODD_FILTERS:
                    got = client.get("/v1/outcomes", params={"by": by, **params})
                    assert got.status_code == 200, (path.name, by, params, got.text[:200])
                    body = got.json()
                    if body["counts"]["requests"] == 0:
                        assert body["rows"] == [] and reason in body["messages"][0]
                    examples = client.get(
                        "/v1/outcomes/examples", params={"by": by, "group": "x", **params}
                    )
                    assert examples.status_code == 200 and examples.json()["items"] == []


def test_cli_says_what_a_store_lacks(store_path: Path, tmp_path: Path, capsys) -> None:
    """A new user's store without requests, or requests without areas or times, gets told what
    is missing and which ingest option provides it."""
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    comments = tmp_path / "comments.duckdb"
    with Store(comments) as store:
        ingest_file(store, ROOT / "data_samples" / "austin_survey_comments.csv", progress=False)
    assert run_cli("outcomes", "--store", str(comments)) == 0
    out = capsys.readouterr()
    assert "no service requests in this store" in out.err and "--status-col" in out.err
    assert "outcomes by" not in out.out  # no empty table
    bare = tmp_path / "bare.csv"  # status and text only: no times, no areas
    pd.DataFrame(
        {"text": ["pothole on main", "graffiti on wall", "tree down"], "status": ["Closed"] * 3}
    ).to_csv(bare, index=False)
    store = str(tmp_path / "bare.duckdb")
    assert (
        run_cli(
            "ingest", str(bare), "--text-col", "text", "--status-col", "status", "--store", store
        )
        == 0
    )
    capsys.readouterr()
    assert run_cli("outcomes", "--by", "area", "--store", store) == 0
    err = capsys.readouterr().err
    assert "no request has an area" in err and "--area-col" in err
    assert "no creation times" in err and "--time-col" in err
