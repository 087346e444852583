"""Open311 GeoReport v2 service requests (``GET /requests.json`` responses, or CSV of them)."""

from __future__ import annotations

import re
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

_ZIP = re.compile(r"\b(\d{5})(?:-\d{4})?\b")
# address parts that are not a place name: state, country, ZIP, a unit number
_NOT_PLACE = re.compile(
    r"(?:MA|Massachusetts|USA?|United States|[A-Z]{2}\s+\d{5}(?:-\d{4})?|\d[\w\s#-]*|#.*)",
    re.IGNORECASE,
)
_LATLON_TEXT = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*[NS]\b", re.IGNORECASE)


def area_from_address(address: str) -> str | None:
    """The neighbourhood (the last place-name part after the street), else the ZIP code.

    ``"18 Mount Vernon St, 2, Charlestown"`` -> Charlestown;
    ``"374 Baker St West Roxbury, MA 02132"`` -> 02132; ``"42.33N 71.03W"`` -> None.
    """
    if not address or _LATLON_TEXT.match(address):
        return None
    parts = [p.strip() for p in address.split(",")]
    for part in reversed(parts[1:]):
        if part and not _NOT_PLACE.fullmatch(part) and re.search(r"[A-Za-z]{3}", part):
            return " ".join(w if w.isupper() and len(w) <= 3 else w.title() for w in part.split())
    m = _ZIP.search(address)
    return m.group(1) if m else None


def areas_from_addresses(addresses: pd.Series) -> pd.Series:
    uniq = pd.unique(addresses)
    mapping = {a: area_from_address(a) or "" for a in uniq}
    return addresses.map(mapping)


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
