"""Survey exports: one open-ended comment column plus respondent attributes (district, year...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from analyzer.ingest.profiles.base import Profile, find_column

_TEXT = ("comment", "comments", "response", "answer", "feedback", "open_ended", "verbatim")
_AREA = ("council_district", "district", "ward", "neighborhood", "neighbourhood", "zip", "zipcode")
_TIME = ("year", "survey_year", "date", "submitted_at", "timestamp")


@dataclass(frozen=True)
class SurveyProfile(Profile):
    def matches(self, columns: Sequence[str]) -> bool:
        # a comment column plus at least one respondent attribute that places it in time or space
        return find_column(columns, _TEXT) is not None and (
            find_column(columns, _AREA) is not None or find_column(columns, _TIME) is not None
        )

    def time_strings(self, raw: pd.Series) -> pd.Series:
        s = raw.fillna("").astype(str).str.strip()
        year = s.str.fullmatch(r"(?:19|20)[0-9]{2}")
        # a survey year is the date 1 January of that year (UTC), not a point in local time
        return s.where(~year, s + "-01-01T00:00:00Z")


SURVEY = SurveyProfile(
    name="survey",
    source="survey",
    default_kind="survey",
    id_prefix="survey",
    description="Survey comments: a comment column; district -> area, year -> 1 January",
    text=_TEXT,
    id=("row_id", "respondent_id", "response_id", "id"),
    created=_TIME,
    area=_AREA,
    category=("question", "topic"),
    dataset_in_id=True,
    priority=0,
)
