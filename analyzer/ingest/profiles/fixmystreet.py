"""FixMyStreet reports (mySociety; fixmystreet.com and the councils' own cobrands), as its Open311
server returns them (``/open311/v2/requests.json``: GeoReport v2 fields plus ``title``,
``detail``, ``interface_used``, ``comment_count``, ``requestor_name``) or as CSV of them, such as
../shared/data_raw/lewisham_fixmystreet.

The resident writes a title and a detail; ``description`` is FixMyStreet's own "title: detail",
so the text is title and detail (the title left out where the detail repeats it), and
``description`` only when they are absent. ``requestor_name`` (a resident who chose to show it)
is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from analyzer.ingest.profiles.base import TEXT_JOINER, ColumnMap, Profile, find_column
from analyzer.ingest.profiles.open311 import OPEN311


@dataclass(frozen=True)
class FixMyStreetProfile(Profile):
    def matches(self, columns: Sequence[str]) -> bool:
        if not all(find_column(columns, [c]) for c in ("service_request_id", "requested_datetime")):
            return False
        return find_column(columns, ["title", "detail", "interface_used"]) is not None

    def resolve(self, columns: Sequence[str], file: str) -> ColumnMap:
        if "text" not in self.overrides and not find_column(columns, ["title", "detail"]):
            return replace(self, text=("description",), join_text=False).resolve(columns, file)
        return super().resolve(columns, file)

    def reshape(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = super().reshape(frame)
        desc = find_column(list(frame.columns), ["description"])
        if (
            desc
            and "text" not in self.overrides
            and find_column(frame.columns, ["title", "detail"])
        ):
            # FixMyStreet's "title: detail": the resident's words a second time
            frame = frame.drop(columns=[desc])
        return frame

    def joined_text(self, frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
        if "text" in self.overrides or len(cols) != 2:
            return super().joined_text(frame, cols)
        title = frame[cols[0]].fillna("").astype(str).str.strip()
        detail = frame[cols[1]].fillna("").astype(str).str.strip()
        # "Fly tipping" / "Fly tipping on the corner": the detail already says it
        t = title.str.lower().str.rstrip(" .:!")
        lowered = detail.str.lower()
        starts = [d.startswith(x) for d, x in zip(lowered.tolist(), t.tolist(), strict=True)]
        repeats = (t == "") | pd.Series(starts, index=detail.index, dtype=bool)
        joined = title.where(detail == "", title + TEXT_JOINER + detail)
        return joined.where(~repeats | (detail == ""), detail)


FIXMYSTREET = FixMyStreetProfile(
    name="fixmystreet",
    source="fixmystreet",
    id_prefix="fixmystreet",
    description="FixMyStreet reports (Open311 output or CSV): text = title — detail",
    text=("title", "detail"),
    join_text=True,
    id=("service_request_id",),
    created=("requested_datetime",),
    updated=("updated_datetime",),
    category=("service_name",),
    status=("status", "status_in_feed"),
    lat=("lat", "latitude"),
    lon=("long", "lon", "longitude"),
    area=("zipcode", "ward", "area"),
    address=("address",),
    safe=(
        *OPEN311.safe,
        "interface_used",
        "comment_count",
        "n_snapshots_open",
        "status_in_feed",
    ),
    drop=("requestor_name", "requestor_email", "requestor_phone", "first_name", "last_name"),
    times=(
        "agency_sent_datetime",
        "expected_datetime",
        "first_seen_open_utc",
        "last_seen_open_utc",
        "first_absent_utc",
    ),
    priority=25,
)
