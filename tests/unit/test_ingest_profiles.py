"""Every profile, read from data_samples/ (slices, to keep redaction time small) and from the
format fixtures derived from them; the full samples are ingested in a slow test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.ingest import IngestOptions, detect_profile, ingest_file, read_table
from analyzer.store.database import Store

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"
FIX = ROOT / "tests" / "fixtures" / "ingest"


def load(store: Store, path: Path, **opts: object):
    report = ingest_file(store, path, options=IngestOptions(**opts), progress=False)
    assert report.rows_loaded + report.rows_rejected == report.rows_read
    return report


def records(store: Store, prefix: str) -> pd.DataFrame:
    return store.query_df(
        "SELECT *, strftime(created_at, '%Y-%m-%dT%H:%M:%SZ') AS created_utc FROM records "
        "WHERE starts_with(id, ?) ORDER BY id",
        [prefix],
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("profiles") / "store.duckdb")
    yield s
    s.close()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (SAMPLES / "boston_311_sample.csv", "boston"),
        (SAMPLES / "bowling_green_comments.csv", "polis"),
        (SAMPLES / "austin_survey_comments.csv", "survey"),
        (FIX / "open311_requests.json", "open311"),
        (FIX / "socrata_311.csv", "socrata-311"),
        (FIX / "austin_survey.parquet", "survey"),
        (FIX / "boston_sample.jsonl.gz", "boston"),
        (FIX / "bowling_green_comments.csv.gz", "polis"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_detect_profile_from_header(path: Path, expected: str) -> None:
    assert detect_profile(list(read_table(path).columns)) == expected


def test_detect_profile_loose_header_names() -> None:
    # Socrata's portal export spells the same columns "Unique Key", "Created Date", ...
    assert (
        detect_profile(["Unique Key", "Created Date", "Complaint Type", "Descriptor"])
        == "socrata-311"
    )
    with pytest.raises(InputError, match="columns found: a, b"):
        detect_profile(["a", "b"])


def test_boston_sample_slice(store: Store, tmp_path: Path) -> None:
    full = pd.read_csv(SAMPLES / "boston_311_sample.csv", dtype=str, keep_default_na=False)
    part = full.iloc[::50]  # 100 rows, all five services
    path = tmp_path / "boston_slice.csv"
    part.to_csv(path, index=False)
    r = load(store, path)
    assert r.profile == "boston" and r.rows_read == len(part)
    empty = int((part["description"].str.strip() == "").sum())
    assert r.rejects_by_reason.get("empty text", 0) == empty
    assert r.rows_loaded == len(part) - empty

    df = records(store, "boston:")
    assert len(df) == r.rows_loaded
    assert df["source"].eq("311").all()
    assert not df["id"].str.contains(r"boston:H\d+-").any()  # the H<digits>- prefix is stripped
    assert set(df["category"]) == set(part["service_name"])  # all five services
    assert df["area"].notna().mean() > 0.9
    assert df["lat"].between(34, 43).all() and df["lon"].between(-74, -70).all()
    # created_at is UTC: a -04:00 / -05:00 offset is applied, not dropped
    src = part.set_index(part["service_request_id"].str.replace(r"^H\d+-", "", regex=True))
    one = df.iloc[0]
    raw = src.loc[one["id"].split(":", 1)[1], "requested_datetime"]
    assert one["created_utc"] == pd.Timestamp(raw).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs = json.loads(one["attributes"])
    assert {"status_notes", "address", "service_code", "media_url"} <= set(attrs)
    assert "description" not in attrs and "service_name" not in attrs  # mapped, not repeated
    # addresses go through privacy.redact_address (house numbers dropped), nothing else
    from analyzer.ingest.privacy.redact import redact_address

    by_id = src["address"]
    for rid, a in zip(df["id"], df["attributes"], strict=True):
        assert json.loads(a)["address"] == (redact_address(by_id[rid.split(":", 1)[1]]) or "")


def test_boston_area_is_the_neighbourhood() -> None:
    from analyzer.ingest.profiles.open311 import area_from_address

    assert area_from_address("18 Mount Vernon St, 2, Charlestown") == "Charlestown"
    assert area_from_address("Intersection Of F St & W Second St, South Boston") == "South Boston"
    assert area_from_address("206 Norwell St, Dorchester, MA, 02124") == "Dorchester"
    assert area_from_address("374 Baker St West Roxbury, MA 02132") == "02132"
    assert area_from_address("42.33N 71.03W") is None


def test_polis_gz_fixture_in_its_conversation_folder(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "american-assembly.bowling-green"
    folder.mkdir()
    path = folder / "comments.csv.gz"
    shutil.copy(FIX / "bowling_green_comments.csv.gz", path)
    r = load(store, path)
    assert r.profile == "polis" and r.rows_loaded == 120 and r.rows_rejected == 0
    df = records(store, "polis:american-assembly.bowling-green:")
    assert len(df) == 120
    first = df[df["id"] == "polis:american-assembly.bowling-green:895"].iloc[0]
    assert first["source"] == "engagement"
    assert first["created_utc"] == "2018-02-13T05:58:16Z"  # 1518501496471 ms
    assert first["status"] == "accepted"
    attrs = json.loads(first["attributes"])
    assert attrs["agrees"] == "48" and attrs["disagrees"] == "8" and attrs["moderated"] == "1"
    assert set(df["status"]) <= {"accepted", "rejected", "unmoderated"}


def test_survey_parquet_fixture(store: Store) -> None:
    r = load(store, FIX / "austin_survey.parquet", dataset="austin")
    assert r.profile == "survey" and r.format == "parquet" and r.rows_loaded == 200
    df = records(store, "survey:austin:")
    assert len(df) == 200 and df["source"].eq("survey").all()
    assert set(df["created_utc"]) <= {"2016-01-01T00:00:00Z", "2017-01-01T00:00:00Z"}
    assert set(df["area"]) <= {str(d) for d in range(1, 11)}
    src = read_table(FIX / "austin_survey.parquet")
    row_id = src.loc[0, "row_id"]
    assert f"survey:austin:{row_id}" in set(df["id"])


def test_open311_json_fixture(store: Store) -> None:
    r = load(store, FIX / "open311_requests.json", dataset="boston-api")
    assert r.profile == "open311" and r.format == "json"
    src = json.loads((FIX / "open311_requests.json").read_text())
    empty = sum(1 for o in src if not (o["description"] or "").strip())
    assert (r.rows_read, r.rows_rejected) == (40, empty)
    df = records(store, "open311:boston-api:")
    assert len(df) == 40 - empty
    with_zip = {
        f"open311:boston-api:{o['service_request_id']}": o["zipcode"] for o in src if o["zipcode"]
    }
    got = df.set_index("id")["area"]
    assert all(got[k] == v for k, v in with_zip.items() if k in got.index)
    assert df["updated_at"].notna().all()


def test_socrata_fixture_text_is_type_and_descriptor(store: Store) -> None:
    r = load(store, FIX / "socrata_311.csv", tz="America/New_York")
    assert r.profile == "socrata-311" and r.rows_read == 40 and r.rows_rejected == 0
    src = pd.read_csv(FIX / "socrata_311.csv", dtype=str, keep_default_na=False)
    df = records(store, "socrata:").set_index("id")
    row = src.iloc[0]
    rec = df.loc[f"socrata:{row['unique_key']}"]
    expected = row["complaint_type"] + (f" — {row['descriptor']}" if row["descriptor"] else "")
    assert rec["text"] == expected
    assert rec["category"] == row["complaint_type"] and rec["area"] == row["borough"]
    local = pd.to_datetime(row["created_date"], format="%m/%d/%Y %I:%M:%S %p")
    utc = local.tz_localize("America/New_York").tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rec["created_utc"] == utc
    assert "incident_address" in json.loads(rec["attributes"])


def test_boston_jsonl_gz_fixture(store: Store) -> None:
    r = load(store, FIX / "boston_sample.jsonl.gz")
    assert r.profile == "boston" and r.format == "json" and r.rows_read == 60


def test_plain_csv_with_named_columns(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    pd.DataFrame(
        {
            "ref": ["a1", "a2", "a3"],
            "when": ["2021-03-01", "2021-03-02", "2021-03-03"],
            "topic": ["parks", "roads", "parks"],
            "ward": ["W1", "W2", "W1"],
            "body": ["More benches please", "Fix the potholes on Main", "Dogs off leash"],
            "note": ["ok", "ok", "ok"],
        }
    ).to_csv(path, index=False)
    r = load(
        store,
        path,
        text_cols=("body",),
        id_col="ref",
        time_col="when",
        label_col="topic",
        area_col="ward",
        source="feedback",
    )
    assert r.profile == "csv [area=ward category=topic created=when id=ref text=body]"
    df = records(store, "csv:feedback:")
    assert df["id"].tolist() == ["csv:feedback:a1", "csv:feedback:a2", "csv:feedback:a3"]
    assert df["source"].eq("feedback").all() and df["category"].tolist() == [
        "parks",
        "roads",
        "parks",
    ]
    assert json.loads(df.loc[0, "attributes"]) == {"note": "ok"}


def test_plain_csv_needs_a_text_column(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="profile 'csv' needs --text-col; columns found: a, b"):
        load(store, path, profile="csv")


@pytest.mark.slow
def test_full_samples(tmp_path: Path) -> None:
    with Store(tmp_path / "full.duckdb") as s:
        b = load(s, SAMPLES / "boston_311_sample.csv")
        p = load(
            s, SAMPLES / "bowling_green_comments.csv", dataset="american-assembly.bowling-green"
        )
        a = load(s, SAMPLES / "austin_survey_comments.csv", dataset="austin")
        rows = len(pd.read_csv(SAMPLES / "boston_311_sample.csv", dtype=str))
        assert b.rows_read == rows and p.rows_loaded == 896 and a.rows_loaded == 3186
        other_2020 = s.scalar(
            "SELECT count(*) FROM records WHERE category = 'Other' "
            "AND created_at >= '2020-03-01' AND created_at < '2020-05-01'"
        )
        assert other_2020 >= 400


def test_the_upload_form_offers_the_columns_ingest_would_read() -> None:
    """One rule: the explorer's first guess is what `civicpulse ingest` finds by itself."""
    from analyzer.ingest import suggest_columns

    frame = pd.DataFrame(
        {
            "service_request_id": ["101", "102", "103"],
            "requested_datetime": ["2024-01-02T10:00:00Z", "2024-01-03T11:00:00Z",
                                   "2024-01-05T09:30:00Z"],
            "service_name": ["Pothole", "Street Light", "Pothole"],
            "description": ["deep pothole on elm street", "the light is out all night",
                            "another pothole near the school"],
            "Neighborhood": ["Dorchester", "Roxbury", "Dorchester"],
            "lat": ["42.3", "42.31", "42.29"],
            "long": ["-71.05", "-71.06", "-71.07"],
        }
    )  # fmt: skip
    assert suggest_columns(frame) == {
        "text": "description", "id": "service_request_id", "time": "requested_datetime",
        "category": "service_name", "lat": "lat", "lon": "long", "area": "Neighborhood",
    }  # fmt: skip
    assert suggest_columns(frame[["lat"]])["text"] == ""
