"""Open311 GeoReport v2 service requests (``GET /requests.json`` responses, or CSV of them)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analyzer.ingest.profiles.base import ColumnMap, Profile

GEOREPORT_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)

# The neighbourhood is the last comma-separated part made of words, optionally followed by the
# state and a ZIP code. Plain string patterns: pandas runs them in RE2 over the whole column.
_AREA = (
    r",[ ]*([A-Za-z][A-Za-z .'-]*[A-Za-z])[ ]*"
    r"(?:,[ ]*(?:MA|Massachusetts)(?:[^A-Za-z,][^,]*)?)?(?:,[ ]*[0-9]{5}(?:-[0-9]{4})?)?[ ]*$"
)
_ZIP = r"(?:^|[^0-9])([0-9]{5})(?:-[0-9]{4})?(?:[^0-9]|$)"
_NOT_AREA = {"Ma", "Massachusetts", "Usa", "Us", "United States"}


def areas_from_addresses(addresses: pd.Series) -> pd.Series:
    """The neighbourhood written after the street, else the ZIP code, else "" (vectorised).

    ``"18 Mount Vernon St, 2, Charlestown"`` -> Charlestown;
    ``"374 Baker St West Roxbury, MA 02132"`` -> 02132; ``"42.33N 71.03W"`` -> "".
    """
    s = addresses.fillna("").astype(str)
    area = s.str.extract(_AREA, expand=False).str.title()
    area = area.where(~area.isin(_NOT_AREA))
    zips = s.str.extract(_ZIP, expand=False)
    return area.fillna(zips).fillna("").astype(str)


def area_from_address(address: str) -> str | None:
    """One address; see :func:`areas_from_addresses`."""
    return areas_from_addresses(pd.Series([address], dtype="str")).iloc[0] or None


@dataclass(frozen=True)
class Open311Profile(Profile):
    def derive(self, frame: pd.DataFrame, out: pd.DataFrame, cmap: ColumnMap) -> None:
        if cmap.area is None:
            addr = next((c for c in self.address if c in frame.columns), None)
            if addr is not None:
                out["area"] = areas_from_addresses(frame[addr].astype(str))


OPEN311 = Open311Profile(
    name="open311",
    source="311",
    id_prefix="open311",
    description="Open311 GeoReport v2 requests (JSON array or CSV of the standard fields)",
    text=("description",),
    id=("service_request_id",),
    created=("requested_datetime",),
    updated=("updated_datetime",),
    category=("service_name",),
    status=("status",),
    lat=("lat", "latitude"),
    lon=("long", "lon", "longitude"),
    area=("zipcode", "zip"),
    address=("address",),
    safe=(
        "service_code",
        "agency_responsible",
        "service_notice",
        "expected_datetime",
        "address_id",
        "media_url",
    ),
    signature=("service_request_id", "requested_datetime", "description"),
    priority=10,
)
