"""Socrata 311 exports in NYC's column layout (unique_key, created_date, complaint_type, ...).

These have no resident free text, so the text is the complaint type and its descriptor
("Noise - Residential — Loud Music/Party"); ``--text-col`` picks a real text column when one exists.
"""

from __future__ import annotations

from analyzer.ingest.profiles.base import Profile

SOCRATA_311 = Profile(
    name="socrata-311",
    source="311",
    id_prefix="socrata",
    description="Socrata 311 (NYC layout): text = complaint_type — descriptor, area = borough",
    text=("complaint_type", "descriptor"),
    join_text=True,
    id=("unique_key",),
    created=("created_date",),
    updated=("resolution_action_updated_date", "closed_date"),
    category=("complaint_type",),
    status=("status",),
    lat=("latitude",),
    lon=("longitude",),
    area=("borough",),
    address=("incident_address",),
    safe=(
        "agency",
        "agency_name",
        "location_type",
        "incident_zip",
        "street_name",
        "cross_street_1",
        "cross_street_2",
        "intersection_street_1",
        "intersection_street_2",
        "address_type",
        "city",
        "facility_type",
        "due_date",
        "closed_date",
        "resolution_action_updated_date",
        "community_board",
        "council_district",
        "police_precinct",
        "bbl",
        "x_coordinate_state_plane",
        "y_coordinate_state_plane",
        "open_data_channel_type",
        "park_facility_name",
        "park_borough",
        "vehicle_type",
        "location",
    ),
    signature=("unique_key", "created_date", "complaint_type"),
    priority=10,
    times=("closed_date", "due_date", "resolution_action_updated_date"),
    date_order="MDY",  # Socrata writes floating timestamps month-first in its CSV exports
    flag_repeated=False,  # the text is made of category fields: repeats are the point
)
