"""Boston 311 exports as in ../shared/data_raw/boston_open311 (GeoReport v2 fields, one CSV per
service). Differences from plain Open311: ids may carry an ``H<digits>-`` prefix (a second API id
form for the same request), ``status_notes`` is staff prose, and the area is the neighbourhood
written at the end of the address.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analyzer.ingest.profiles.base import Context, inherit
from analyzer.ingest.profiles.open311 import OPEN311, Open311Profile

BOSTON_COLUMNS = (
    "service_request_id",
    "requested_datetime",
    "updated_datetime",
    "status",
    "service_name",
    "service_code",
    "description",
    "status_notes",
    "address",
    "lat",
    "long",
    "media_url",
)

_H_PREFIX = r"^H[0-9]+-"


@dataclass(frozen=True)
class BostonProfile(Open311Profile):
    def make_ids(self, raw: pd.Series, ctx: Context) -> pd.Series:
        # "H188523-101001278672" and "101001278672" are the same request (see SOURCE.md)
        return super().make_ids(raw.str.strip().str.replace(_H_PREFIX, "", regex=True), ctx)


BOSTON = inherit(
    OPEN311,
    BostonProfile,
    name="boston",
    id_prefix="boston",
    description="Boston 311 (balsama/bos311 CSVs): H-prefixed ids, neighbourhood from address",
    area=(),  # derived from the address
    signature=("service_request_id", "requested_datetime", "description", "status_notes"),
    only=BOSTON_COLUMNS,
    priority=20,
)
