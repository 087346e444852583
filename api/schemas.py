"""Pydantic models for every request and response of the API.

Text fields are length-limited here so that an oversized field is a 422 naming its path, long before
it reaches a model. Response models list exactly what may leave the service: redacted text only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from analyzer.common.clock import clamp_utc
from api.schema_rules import TAG_ONE_OF, Lat, Lon, Number

MAX_TEXT_CHARS = 10_000
MAX_TAG_TEXTS = 1_000
MAX_RECORDS_PER_POST = 1_000
MAX_SHORT = 200

Short = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
NonEmptyShort = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SHORT, pattern=r"\S")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"\S")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: str
    code: str


class FieldError(BaseModel):
    loc: list[str | int]
    path: str
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]
    code: Literal["validation_error"] = "validation_error"


# -- health ----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    store: str
    tagger: str
    records: int | None = None
    tagger_calls: int = Field(0, description="model calls since start")
    tagger_texts: int = Field(0, description="texts tagged since start (texts / calls = batch)")


# -- tagging ---------------------------------------------------------------------------------


# A time the caller gives: any ISO date-time, clamped to what the store holds (year 1 or 9999
# would overflow the duplicate search's window); naive is UTC.
ClampedTime = Annotated[datetime, AfterValidator(clamp_utc)]


class TagItem(Strict):
    text: Text
    lat: Lat | None = None
    lon: Lon | None = None
    created_at: ClampedTime | None = Field(
        None, description="when the request was made; with lat/lon, enables duplicate detection"
    )


class TagRequest(Strict):
    """Either ``text`` (one request) or ``texts`` (up to 1,000: strings, or objects with a
    location and time)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=TAG_ONE_OF)  # ``_one_of``

    # Not nullable: a field is given or left out (null is refused), so TAG_ONE_OF can say the rule.
    text: Text = None  # type: ignore[assignment]
    texts: list[Text | TagItem] = Field(None, min_length=1, max_length=MAX_TAG_TEXTS)
    lat: Lat = None  # type: ignore[assignment]
    lon: Lon = None  # type: ignore[assignment]
    created_at: ClampedTime = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_of(self) -> TagRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        if self.texts is not None and (self.lat, self.lon, self.created_at) != (None, None, None):
            raise ValueError("with 'texts', give lat/lon/created_at per item")
        return self

    def items(self) -> list[TagItem]:
        if self.text is not None:
            return [TagItem(text=self.text, lat=self.lat, lon=self.lon, created_at=self.created_at)]
        return [t if isinstance(t, TagItem) else TagItem(text=t) for t in self.texts or []]


class Alternative(BaseModel):
    label: str
    probability: float


class Duplicate(BaseModel):
    record_id: str
    similarity: float = Field(description="cosine similarity of the texts")
    distance_m: float = Field(description="great-circle distance in metres")
    days_before: float = Field(description="how many days before the new request it was filed")


class TagResult(BaseModel):
    label: str | None
    confidence: float
    needs_review: bool
    alternatives: list[Alternative]
    possible_new_category: bool = False
    duplicates: list[Duplicate] | None = Field(
        None, description="likely repeats of open requests; null when no location/time was given"
    )


class TagResponse(BaseModel):
    model: str
    results: list[TagResult]


# -- themes ----------------------------------------------------------------------------------


class ThemeSummary(BaseModel):
    theme_id: str
    label: str
    original_label: str | None
    keywords: list[str]
    level: int | None
    parent_id: str | None
    source: str | None = Field(None, description="the records' source the theme was fitted on")
    size: int
    recent_count: int
    previous_count: int
    growth: float | None = Field(description="(last 28 days - 28 days before) / 28 days before")
    sentiment: float | None
    merged_from: list[str]
    subtheme_count: int = 0
    run_id: str | None
    top_category: str | None = Field(None, description="the category most records carry")
    top_category_share: float | None = Field(None, description="its share of them")


class ThemeList(BaseModel):
    items: list[ThemeSummary]
    total: int
    limit: int
    offset: int
    assigned: int
    period_end: datetime | None


class SubTheme(BaseModel):
    theme_id: str
    label: str
    keywords: list[str]
    size: int
    sentiment: float | None


class WeekPoint(BaseModel):
    week: datetime | None
    count: int
    sentiment: float | None


class Breakdown(BaseModel):
    key: str
    count: int
    sentiment: float | None = None


class RecordOut(BaseModel):
    id: str | None
    source: str | None
    text: str = Field(description="redacted text")
    created_at: datetime | None
    updated_at: datetime | None
    category: str | None
    status: str | None
    lat: float | None
    lon: float | None
    area: str | None
    theme_id: str | None
    theme_label: str | None
    subtheme_id: str | None
    subtheme_label: str | None
    sentiment: str | None
    sentiment_score: float | None
    score: float | None = Field(None, description="similarity to q (similarity search only)")


class LineageEvent(BaseModel):
    run_id: str | None
    theme_id: str
    event: str
    related: list[str]
    at: datetime | None


class ThemeDetail(ThemeSummary):
    status: str
    first_seen_run: str | None
    requested_id: str
    period_end: datetime | None
    subthemes: list[SubTheme]
    series: list[WeekPoint]
    areas: list[Breakdown]
    categories: list[Breakdown]
    sources: list[Breakdown]
    examples: list[RecordOut]
    lineage: list[LineageEvent]


class ThemeRename(Strict):
    label: NonEmptyShort


class ThemeMerge(Strict):
    into: NonEmptyShort


class ThemeEdit(BaseModel):
    theme_id: str
    label: str | None = None
    merged_into: str | None = None


class MapPoint(BaseModel):
    record_id: str
    x: float
    y: float
    theme_id: str | None
    theme_label: str | None
    subtheme_id: str | None
    text: str


class MapOut(BaseModel):
    points: list[MapPoint]
    total: int
    sampled: bool


# -- emerging --------------------------------------------------------------------------------


class Alert(BaseModel):
    theme_id: str | None
    theme_label: str | None
    kind: str | None
    period: str | None
    window_start: datetime | None
    window_end: datetime | None
    area: str | None
    count: int
    baseline: float | None
    ratio: float | None
    p_value: float | None
    q_value: float | None
    examples: list[str]


class AlertList(BaseModel):
    items: list[Alert]
    total: int
    limit: int
    offset: int
    run_id: str | None


# -- records ---------------------------------------------------------------------------------


class RecordList(BaseModel):
    items: list[RecordOut]
    total: int
    limit: int
    offset: int
    mode: Literal["filter", "text", "similarity"]


AttrValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None


class RecordIn(Strict):
    """One record as a city system sends it; dates and coordinates are checked by ingest, and a row
    that fails comes back in ``rejects`` with its reason instead of failing the whole batch."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SHORT)] | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=50)] = "api"
    created_at: Annotated[str, StringConstraints(max_length=64)] | None = None
    updated_at: Annotated[str, StringConstraints(max_length=64)] | None = None
    category: Short | None = None
    status: Annotated[str, StringConstraints(max_length=50)] | None = None
    lat: Number | None = None
    lon: Number | None = None
    area: Short | None = None
    attributes: dict[Short, AttrValue] | None = Field(None, max_length=50)


class RecordsIn(Strict):
    records: list[RecordIn] = Field(min_length=1, max_length=MAX_RECORDS_PER_POST)


class RejectOut(BaseModel):
    index: int = Field(description="0-based position in the posted list")
    id: str | None
    column: str | None
    reason: str


class RecordsResult(BaseModel):
    loaded: int
    rejected: int
    ids: list[str]
    rejects: list[RejectOut]


# -- corrections -----------------------------------------------------------------------------


class CorrectionIn(Strict):
    text: Text
    label: NonEmptyShort
    record_id: NonEmptyShort | None = None


class CorrectionOut(BaseModel):
    id: str
    label: str
    known_label: bool = Field(description="whether the active tagger knows this label")


# -- stats -----------------------------------------------------------------------------------


class SourceCount(BaseModel):
    source: str
    count: int
    first: datetime | None
    last: datetime | None


class KeyCount(BaseModel):
    key: str
    count: int


class RunOut(BaseModel):
    run_id: str
    kind: str | None
    status: str | None
    started_at: datetime | None
    finished_at: datetime | None
    progress: float
    message: str | None
    manifest: dict[str, Any]


class StatsOut(BaseModel):
    records: int
    assigned: int
    sources: list[SourceCount]
    categories: list[KeyCount]
    areas: list[KeyCount]
    sentiment: list[KeyCount]
    series: list[WeekPoint]
    rejects: int
    reject_reasons: list[KeyCount]
    themes: int
    subthemes: int
    alerts: int
    corrections: int
    last_run: RunOut | None


# -- runs ------------------------------------------------------------------------------------


class AnalyzeIn(Strict):
    refit: bool = Field(False, description="re-fit every source's themes instead of updating them")


class AnalyzeAccepted(BaseModel):
    run_id: str
    status: str
    url: str


class RunList(BaseModel):
    items: list[RunOut]


# -- Open311 GeoReport v2 --------------------------------------------------------------------


class Open311Error(BaseModel):
    code: int
    description: str


class Open311Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = False
    type: Literal["realtime", "batch", "blackbox"] = "realtime"
    keywords: str = ""
    group: str = ""


class Open311AttributeValue(BaseModel):
    key: str
    name: str


class Open311Attribute(BaseModel):
    """One question of a service definition (GeoReport v2 GET Service Definition)."""

    variable: bool = True
    code: NonEmptyShort
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool = False
    datatype_description: str | None = None
    order: int
    description: str
    values: list[Open311AttributeValue] = Field(default_factory=list)


class Open311ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


class Open311Token(BaseModel):
    service_request_id: str
    token: str


class Open311Endpoint(BaseModel):
    specification: str
    url: str
    changeset: datetime
    type: Literal["production", "test"]
    formats: list[str]


class Open311Discovery(BaseModel):
    """Open311 Service Discovery: where the endpoint is and what it speaks."""

    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]


class Open311RequestIn(BaseModel):
    """GeoReport v2 POST fields. Personal fields (email, names, phone) are accepted for
    compatibility and discarded: CivicPulse never stores them."""

    model_config = ConfigDict(extra="ignore")

    api_key: Annotated[str, StringConstraints(max_length=MAX_SHORT)] | None = None
    jurisdiction_id: Short | None = None
    service_code: Short | None = None
    lat: Lat | None = None
    long: Lon | None = None
    address_string: Annotated[str, StringConstraints(max_length=500)] | None = None
    address_id: Short | None = None
    email: Short | None = None
    device_id: Short | None = None
    account_id: Short | None = None
    first_name: Short | None = None
    last_name: Short | None = None
    phone: Short | None = None
    description: Annotated[str, StringConstraints(max_length=4000)] | None = None
    media_url: Annotated[str, StringConstraints(max_length=2000)] | None = None


class Open311Created(BaseModel):
    service_request_id: str
    service_notice: str | None = None
    account_id: str | None = None
    # Extensions: how the service code was chosen.
    service_code: str
    service_code_source: Literal["client", "tagger"]
    confidence: float | None = None
    needs_review: bool | None = None


class Open311Request(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str | None = None
    description: str | None = Field(None, description="redacted text")
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: datetime | None = None
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


DateOrDatetime = date | datetime


# -- opinions (conversations with votes: analyzer.opinions) ---------------------------------

StatementId = int | str


class ConversationOut(BaseModel):
    conversation_id: str
    title: str
    description: str | None = None
    participants: int
    statements: int
    statements_with_text: int
    votes: int
    has_source_groups: bool = Field(description="the export carried its own group per participant")
    updated_at: str | None = None


class ConversationList(BaseModel):
    items: list[ConversationOut]
    total: int


class OpinionConversation(BaseModel):
    conversation_id: str
    title: str
    participants: int
    statements: int
    votes: int
    moderated_out: int
    clustered_participants: int


class RepresentativeStatement(BaseModel):
    statement_id: StatementId
    text: str = Field(description="redacted text")
    agree_probability: float
    repness: float
    repness_test: float
    repful_for: Literal["agree", "disagree"]
    n_agree: int
    n_disagree: int
    n_seen: int


class OpinionGroup(BaseModel):
    group_id: int
    size: int
    representative: list[RepresentativeStatement]


class OpinionStatement(BaseModel):
    statement_id: StatementId
    text: str = Field(description="redacted text")
    moderated: bool
    n_votes: int
    n_agree: int
    n_disagree: int
    n_pass: int
    pass_rate: float | None
    gic: float | None = Field(description="group-informed consensus")
    agree_by_group: dict[str, float]
    max_group_difference: float | None
    rated: bool = Field(description="enough votes for the flags")
    flags: list[Literal["common_ground", "divisive", "uncertain"]]
    theme_id: str | None
    theme_label: str | None


class OpinionParticipant(BaseModel):
    participant_id: StatementId
    group_id: int | None
    x: float
    y: float
    n_votes: int
    uniform_voter: bool


class ThemeQuote(BaseModel):
    statement_id: StatementId
    text: str = Field(description="redacted text")
    agree_probability: float | None = None
    stance: Literal["agrees", "disagrees"] | None = None


class ThemeGroupView(BaseModel):
    group_id: int
    mean_agree_probability: float | None
    says: list[ThemeQuote]


class ThemeOpinion(BaseModel):
    theme_id: str
    theme_label: str
    statements: int
    rated_statements: int
    common_ground: int
    divisive: int
    uncertain: int
    common_ground_share: float
    divisive_share: float
    verdict: Literal["common ground", "divided", "mixed", "too few votes"]
    common_ground_examples: list[ThemeQuote]
    divisive_examples: list[ThemeQuote]
    groups: list[ThemeGroupView]


class OpinionRun(BaseModel):
    run_id: str
    computed_at: str
    cached: bool


class OpinionsOut(BaseModel):
    conversation: OpinionConversation
    method: dict[str, Any]
    groups: list[OpinionGroup]
    statements: list[OpinionStatement]
    participants: list[OpinionParticipant]
    common_ground: list[StatementId]
    divisive: list[StatementId]
    uncertain: list[StatementId]
    themes: list[ThemeOpinion]
    run: OpinionRun


# -- outcomes (service delivery) --------------------------------------------------------------

OutcomeLabel = Literal[
    "resolved", "no_violation", "duplicate", "referred", "administrative", "unknown"
]


class OutcomeRow(BaseModel):
    """One group (theme, category or area): how the city responded, and how that compares with
    what the group's mix of requests predicts at citywide rates (``measure`` names the comparison
    in ``observed`` ... ``q_value``; each measure also has its own prefixed fields)."""

    group: str
    requests: int
    closed: int
    open: int
    median_days: float | None = Field(description="Kaplan-Meier median days to close")
    median_low: float | None
    median_high: float | None
    p90_days: float | None
    p90_low: float | None
    p90_high: float | None
    on_time_share: float | None = Field(description="null without targets")
    on_time_requests: int
    share_resolved: float | None
    share_no_violation: float | None
    share_duplicate: float | None
    share_referred: float | None
    share_administrative: float | None
    share_unknown: float | None
    without_action_share: float | None
    lat: float | None = Field(description="median latitude of the group's requests")
    lon: float | None = Field(description="median longitude of the group's requests")
    measure: Literal["time_to_close", "on_time", "without_action"]
    observed: float | None
    expected: float | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    p_value: float | None
    q_value: float | None
    differs: bool
    verdict: str
    time_to_close_observed: float | None
    time_to_close_expected: float | None
    time_to_close_ratio: float | None
    time_to_close_ratio_low: float | None
    time_to_close_ratio_high: float | None
    time_to_close_p_value: float | None
    time_to_close_q_value: float | None
    on_time_observed: float | None
    on_time_expected: float | None
    on_time_ratio: float | None
    on_time_ratio_low: float | None
    on_time_ratio_high: float | None
    on_time_p_value: float | None
    on_time_q_value: float | None
    without_action_observed: float | None
    without_action_expected: float | None
    without_action_ratio: float | None
    without_action_ratio_low: float | None
    without_action_ratio_high: float | None
    without_action_p_value: float | None
    without_action_q_value: float | None


class OutcomesOut(BaseModel):
    by: Literal["theme", "category", "area"]
    measure: Literal["time_to_close", "on_time", "without_action"]
    alpha: float
    rows: list[OutcomeRow]
    messages: list[str] = Field(description="what a reader must know (no targets, no notes, …)")
    totals: dict[str, dict[str, float]] = Field(
        description="per measure, observed and expected summed over the groups (equal)"
    )
    counts: dict[str, int]


class OutcomeExample(BaseModel):
    id: str
    created_at: datetime | None
    closed_at: datetime | None
    category: str | None
    theme: str | None
    area: str | None
    status: str | None
    outcome: OutcomeLabel | None
    days: float | None
    on_time: bool | None
    text: str | None = Field(description="redacted request text")
    note: str | None = Field(description="redacted closing note")


class OutcomeExamples(BaseModel):
    items: list[OutcomeExample]


# -- API keys (#22) ----------------------------------------------------------------------------

KeyScope = Literal["read", "write", "admin"]


class KeyIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")] = Field(
        description="who or what uses the key"
    )
    scope: KeyScope = Field(
        "write",
        description="read: every GET and tagging; write: also every write; admin: also /v1/keys",
    )


class KeyOut(BaseModel):
    key_id: str
    name: str
    scope: KeyScope
    created_at: str | None
    revoked: bool
    last_used_at: str | None = Field(description="UTC, to the minute; null when never used")


class KeyList(BaseModel):
    items: list[KeyOut]


class KeyCreated(BaseModel):
    key: str = Field(description="the key itself: shown this once, only its hash is kept")
    key_id: str
    name: str
    scope: KeyScope


class KeyRevoked(BaseModel):
    key_id: str
    revoked: bool
