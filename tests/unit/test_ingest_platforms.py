"""Which profile a header is, and how API responses saved as they came are unwrapped."""

from __future__ import annotations

import pytest

from analyzer.ingest.formats.jsonl import records_in
from analyzer.ingest.profiles import detect_profile
from analyzer.ingest.profiles.boston import BOSTON_COLUMNS
from analyzer.ingest.profiles.open311 import GEOREPORT_FIELDS

HEADERS = {
    "seeclickfix": [
        # SeeClickFix API v2 issue fields
        "id,status,summary,description,rating,lat,lng,point,address,created_at,updated_at,"
        "acknowledged_at,closed_at,reporter,shortened_url,url,html_url,media",
        # a Socrata copy of a SeeClickFix city (Gainesville's myGNV)
        "id,created,request_type,description,status,acknowledged,closed,last_updated,"
        "minutes_to_acknowledge,minutes_to_close,days_to_close,assigned_to,reopened,"
        "location_detail,latitude,longitude,commission_district,police_sector",
        # a flattened API pull (Detroit's Improve Detroit)
        "id,created_at,summary,request_type_id,description,nature_of_issue,additional_details,"
        "when_occurring,vehicle_make_model_plate,other_form_answers,status,acknowledged_at,"
        "closed_at,lat,lng",
    ],
    "fixmystreet": [
        "service_request_id,requested_datetime,updated_datetime,agency_sent_datetime,"
        "service_name,service_code,title,detail,description,status_in_feed,interface_used,"
        "comment_count,lat,long,media_url,first_seen_open_utc,last_seen_open_utc,"
        "first_absent_utc,n_snapshots_open",
        "service_request_id,status,service_name,service_code,description,title,detail,"
        "requested_datetime,updated_datetime,lat,long,interface_used,requestor_name",
    ],
    "open311": [",".join(GEOREPORT_FIELDS)],
    "boston": [",".join(BOSTON_COLUMNS)],
}


@pytest.mark.parametrize(("profile", "header"), [(p, h) for p, hs in HEADERS.items() for h in hs])
def test_each_platform_is_detected_from_its_header(profile: str, header: str) -> None:
    assert detect_profile(header.split(",")) == profile


def test_wrapped_api_pages_yield_their_records() -> None:
    issue = {"id": 1, "description": "pothole"}
    assert records_in({"issues": [issue], "metadata": {"page": 1}}) == [issue]
    fms = {"service_requests": [{"request": [issue, {"id": 2, "description": "x"}]}]}
    assert [r["id"] for r in records_in(fms) or []] == [1, 2]
    assert records_in({"results": []}) == []


def test_records_are_not_mistaken_for_wrappers() -> None:
    # a record with a list of objects (its comments) and a text field is a record
    record = {"id": 1, "description": "pothole", "comments": [{"comment": "done"}]}
    assert records_in(record) is None
    assert records_in({"id": 3, "data": [{"x": 1}], "text": "a comment"}) is None
