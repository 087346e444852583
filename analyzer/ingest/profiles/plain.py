"""Any table, with the columns named on the command line (``--text-col`` is required).

Columns whose names say what they are (``id``, ``status``/``estado``, ``lat``/``latitude``/
``latitud``, ``lon``/``lng``/``longitude``/``longitud``) are used when present; the category must
be named (``--label-col``), and so may the created time (``--time-col``): without it, the column
whose name says it and whose values parse is used, and the summary says which
(``analyzer.ingest.time_columns``, the rule ``tag train`` follows too). The summary says what
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
    id=("id",),
    status=("status", "current_status", "currentstatus", "estado"),
    lat=("lat", "latitude", "latitud"),
    lon=("lon", "lng", "long", "longitude", "longitud"),
    dataset_in_id=True,
    priority=-10,
)
