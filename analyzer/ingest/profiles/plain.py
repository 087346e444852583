"""Any table no other profile knows: its text column named with ``--text-col``, or else found by
its name and values (``analyzer.ingest.text_columns``; the summary says which).

Columns whose names say what they are (the id: ``id``, ``case_id``, ``SR_NUMBER``, ``numero``...;
``status``/``estado``; ``lat``/``latitude``/``latitud``, ``lon``/``lng``/``longitude``/``longitud``;
the area: ``neighborhood``, ``ward``, ``barrio``...; the category: ``category``, ``request_type``,
``SR_TYPE``, ``issue_type``... as listed below) are used when present and the summary says which;
the ``--*-col`` options name others. The created time and the close time may be named
(``--time-col``, ``--updated-col``); without them, the columns whose names say them and whose
values parse are used, and the summary says which (``analyzer.ingest.time_columns``; ``tag
train`` finds its created time by the same rule). The summary says what
is missing and what that turns off. Columns named for a later step of a request (closed,
resolved, acknowledged, completed, updated, modified; in Spanish cierre, resuelto, actualizado,
modificado) with a date or time (fecha) in the name are read as times and kept in the attributes
as ISO 8601 UTC, as the platforms' profiles keep theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from analyzer.ingest.clean import point_coordinates
from analyzer.ingest.profiles.base import ColumnMap, Profile, column_key, find_column
from analyzer.ingest.time_columns import LATER_STEP, TIME_WORD

# a column that holds both coordinates (GeoJSON, Socrata's location object, WKT, "(lat, lon)")
POINT_COLUMNS = (
    "location",
    "point",
    "geom",
    "the_geom",
    "geometry",
    "geocoded_column",
    "geolocation",
    "geo_location",
    "coordinates",
    "coords",
    "lat_lon",
    "latlon",
    "lat_long",
    "latlong",
    "ubicacion",
    "localizacion",
    "geolocalizacion",
    "coordenadas",
    "localizacao",
)
# the columns a point column is read into
POINT_LAT, POINT_LON = "latitude", "longitude"


def point_column(columns: Sequence[str], lat: Sequence[str], lon: Sequence[str]) -> str | None:
    """The column to read both coordinates from: one named for them, when no column is named for
    the latitude or the longitude."""
    if find_column(columns, lat) or find_column(columns, lon):
        return None
    return find_column(columns, POINT_COLUMNS)


@dataclass(frozen=True)
class PlainProfile(Profile):
    def reshape(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = super().reshape(frame)
        columns = [str(c) for c in frame.columns]
        col = point_column(columns, self.lat, self.lon)
        if col is None:
            return frame
        lat, lon = point_coordinates(frame[col])
        return frame.assign(**{POINT_LAT: lat, POINT_LON: lon})

    def time_columns(self, columns: Sequence[str], cmap: ColumnMap) -> list[str]:
        found = super().time_columns(columns, cmap)
        mapped = cmap.mapped()
        for col in columns:
            key = column_key(col)
            if col in found or col in mapped:
                continue
            if LATER_STEP.search(key) and TIME_WORD.search(key):
                found.append(col)
        return found


PLAIN_CSV = PlainProfile(
    name="csv",
    source="other",
    id_prefix="csv",
    description=(
        "any table: --text-col (else found by its name and values), --id-col, --time-col, "
        "--label-col, ..."
    ),
    text=(),
    # the names cities give the request's own number (an id found by its name is used only when it
    # is filled: ``analyzer.ingest.pipeline``)
    id=(
        "id",
        "case_id",
        "caseid",
        "case_number",
        "service_request_id",
        "request_id",
        "sr_number",
        "sr_id",
        "ticket_id",
        "ticket_number",
        "unique_key",
        "incident_id",
        "issue_id",
        "report_id",
        "comment_id",
        "numero",
        "folio",
        "radicado",
        "protocolo",
    ),
    # the names cities give the category column (compared loosely: "Request Type", "SR_TYPE");
    # only names that say it: a bare "type" may be the channel ("Web", "Phone")
    category=(
        "category",
        "request_type",
        "service_request_type",
        "request_category",
        "service_name",
        "sr_type",
        "issue_type",
        "problem_type",
        "complaint_type",
        "case_type",
        "report_type",
        "categoria",
        "tipo_de_solicitud",
    ),
    status=("status", "current_status", "currentstatus", "estado"),
    # where: the city's own areas ("Neighborhood", "Community Area", "Ward"; barrio, colonia,
    # comuna, localidad, distrito, bairro), which outcomes compare
    area=(
        "area",
        "neighborhood",
        "neighbourhood",
        "community_area",
        "ward",
        "council_district",
        "district",
        "barrio",
        "colonia",
        "comuna",
        "localidad",
        "distrito",
        "bairro",
    ),
    lat=("lat", "latitude", "latitud"),
    lon=("lon", "lng", "long", "longitude", "longitud"),
    dataset_in_id=True,
    priority=-10,
)
