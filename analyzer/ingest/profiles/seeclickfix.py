"""SeeClickFix issues: the API v2 JSON (``GET /api/v2/issues``, saved pages or arrays of issues) and
the CSV exports cities publish (SeeClickFix's own export, flattened API pulls such as Detroit's
Improve Detroit data, and Socrata copies such as Gainesville's myGNV ``78uv-94ar``).

What they share: a resident ``description``, a ``summary`` (the issue title, by default the
request type's title), ``created_at`` / ``acknowledged_at`` / ``closed_at`` (or ``created``,
``acknowledged``, ``closed`` in the Socrata copies), ``lat`` / ``lng``. The category is the
request type's title: a nested object in the API, a column in the CSVs (``request_type``), else
the summary. Reporter, assignee and voter objects carry people's names and are never stored.
The close time is ``closed_at`` (``closed``), else the last update; acknowledged and reopened
times stay in the attributes as ISO 8601 UTC, the comments (where staff write their closing
notes) and form answers as redacted text.

A resident who answers the request type's form may leave the description empty: their words are
then in a free-text answer (94 of Detroit's 134 issues without a description have one, in
``additional_details`` or ``other_form_answers``; the API's ``questions``). Those rows take the first such answer that is not a
placeholder ("No Answer Given") as their text instead of being rejected as empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analyzer.ingest.boilerplate import is_placeholder
from analyzer.ingest.profiles.base import Profile, column_key, find_column

_CREATED = ("created_at", "created", "created_date")
_ACKNOWLEDGED = ("acknowledged_at", "acknowledged")
_TYPE = ("request_type", "request_type_id", "request_type_title", "summary")
# free-text form answers, in the order they stand in for an empty description
_ANSWER_TEXT = ("additional_details", "questions", "other_form_answers", "form_answers")


def _loads(value: str) -> Any:
    if not value or value[0] not in "[{":
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _map_unique(values: pd.Series, fn: Any) -> pd.Series:
    uniq = pd.unique(values)
    mapping = {u: fn(u) for u in uniq}
    return values.map(mapping).fillna("").astype(str)


def _title(value: str) -> str:
    obj = _loads(value)
    if isinstance(obj, dict):
        return str(obj.get("title") or "")
    return value  # a CSV column already holding the title


def _type_id(value: str) -> str:
    obj = _loads(value)
    return str(obj.get("id") or "") if isinstance(obj, dict) else ""


def _answers(value: str) -> str:
    """Form answers ``[{"question": ..., "answer": ...}]`` as "question: answer | ..."."""
    obj = _loads(value)
    if not isinstance(obj, list):
        return value
    parts = []
    for qa in obj:
        if isinstance(qa, dict) and str(qa.get("answer") or "").strip():
            parts.append(f"{qa.get('question') or ''}: {qa.get('answer')}".strip(": "))
    return " | ".join(parts)


def _comment_texts(value: str) -> str:
    """The comments' words only (commenters are people: their names are not kept)."""
    obj = _loads(value)
    if not isinstance(obj, list):
        return value
    texts = [str(c.get("comment") or "").strip() for c in obj if isinstance(c, dict)]
    return " | ".join(t for t in texts if t)


def _image(value: str) -> str:
    obj = _loads(value)
    if isinstance(obj, dict):
        return str(obj.get("image_full") or obj.get("video_url") or "")
    return value


@dataclass(frozen=True)
class SeeClickFixProfile(Profile):
    def matches(self, columns: Sequence[str]) -> bool:
        # a description, a created time, an acknowledged time (SeeClickFix's own workflow step)
        # and a request type or summary
        return all(
            find_column(columns, group) is not None
            for group in (("description",), _CREATED, _ACKNOWLEDGED, _TYPE)
        )

    def reshape(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = super().reshape(frame)
        keys = {column_key(c): c for c in frame.columns}
        out = frame.copy()
        rt = keys.get("request_type")
        if rt is not None and out[rt].astype(str).str.startswith("{").any():
            out["request_type_title"] = _map_unique(out[rt].astype(str), _title)
            if "request_type_id" not in keys:
                out["request_type_id"] = _map_unique(out[rt].astype(str), _type_id)
            out = out.drop(columns=[rt])
        for key, fn in (("questions", _answers), ("comments", _comment_texts), ("media", _image)):
            col = keys.get(key)
            if col is not None:
                out[col] = _map_unique(out[col].astype(str), fn)
        return out

    def joined_text(self, frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
        text = super().joined_text(frame, cols)
        if "text" in self.overrides:
            return text  # --text-col: the user's column, as given
        empty = text.str.strip() == ""
        for cand in _ANSWER_TEXT:
            if not empty.any():
                break
            col = find_column(list(frame.columns), [cand])
            if col is None or col in cols:
                continue
            answer = frame[col].fillna("").astype(str).str.strip()
            usable = empty & (answer != "") & ~is_placeholder(answer)
            text = text.where(~usable, answer)
            empty &= ~usable
        return text


SEECLICKFIX = SeeClickFixProfile(
    name="seeclickfix",
    source="seeclickfix",
    id_prefix="seeclickfix",
    description=(
        "SeeClickFix issues: API v2 JSON or CSV exports (also Socrata copies such as myGNV); "
        "category = request type, else summary"
    ),
    text=("description",),
    id=("id", "issue_id"),
    created=_CREATED,
    # the close time: when the issue was closed; an export's last update moves with every comment
    # and bulk archiving (Gainesville's "last_updated" is a data refresh for most rows)
    updated=("closed_at", "closed", "updated_at", "last_updated"),
    category=("request_type_title", "request_type", "category", "summary"),
    status=("status",),
    lat=("lat", "latitude"),
    lon=("lng", "lon", "long", "longitude"),
    area=("neighborhood", "neighbourhood", "commission_district", "council_district", "district"),
    address=("address", "location_detail"),
    safe=(
        "request_type_id",
        "rating",
        "minutes_to_acknowledge",
        "minutes_to_close",
        "days_to_close",
        "police_sector",
        "comment_count",
        "vote_count",
        "shortened_url",
        "url",
        "html_url",
        "api_url",
        "comments_url",
        "media",
        "media_url",
        "flag_count",
        "private_visibility",
    ),
    drop=(
        "reporter",
        "reporter_display",
        "reporter_id",
        "reporter_name",
        "assignee",
        "votes",
        "current_user_relationship",
        "point",
        "location",
    ),
    times=(
        "acknowledged_at",
        "acknowledged",
        "closed_at",
        "closed",
        "reopened_at",
        "reopened",
    ),
    date_order="MDY",  # the US platform's CSV copies (Socrata) write MM/DD/YYYY
    priority=15,
)
