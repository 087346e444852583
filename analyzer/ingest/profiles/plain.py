"""Any table, with the columns named on the command line (``--text-col`` is required).

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

from analyzer.ingest.profiles.base import ColumnMap, Profile, column_key
from analyzer.ingest.time_columns import LATER_STEP, TIME_WORD


@dataclass(frozen=True)
class PlainProfile(Profile):
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
    description="any table: --text-col (required), --id-col, --time-col, --label-col, ...",
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
