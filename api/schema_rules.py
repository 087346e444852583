"""Rules the routes enforce across fields, written into the OpenAPI document (#22): the schema
says what the code enforces, so that a client (or a fuzzer) generating valid requests from it is
not refused. Kept apart from ``api.schemas`` (the pydantic models) because these are plain JSON
Schema, not models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

# POST /v1/tag (TagRequest._one_of): exactly one of text / texts; with texts, lat / lon /
# created_at go in each item, not at the top level. Only ``required`` and ``not``: the fields' own
# types stay in the model (repeating them here would make ReDoc merge conflicting types).
TAG_ONE_OF: dict[str, Any] = {
    "oneOf": [
        {"required": ["text"], "not": {"required": ["texts"]}},
        {
            "required": ["texts"],
            "not": {"anyOf": [{"required": [k]} for k in ("text", "lat", "lon", "created_at")]},
        },
    ]
}


def open311_post_schema(model_schema: dict[str, Any]) -> dict[str, Any]:
    """The documented body of an Open311 POST: the model's fields, with ``description``
    required and not blank, as the route requires (CivicPulse analyses the request's text; the
    model itself leaves it optional so that its absence gets the GeoReport-style 400)."""
    schema = {**model_schema, "properties": dict(model_schema.get("properties", {}))}
    schema["required"] = sorted({*schema.get("required", []), "description"})
    schema["properties"]["description"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": 4000,
        "pattern": r"\S",
        "title": "Description",
    }
    return schema


def not_bool(value: Any) -> Any:
    """A number field refuses true / false (pydantic would read them as 1 / 0; the schema says
    ``number``)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


Number = Annotated[float, BeforeValidator(not_bool)]
Lat = Annotated[float, Field(ge=-90, le=90), BeforeValidator(not_bool)]
Lon = Annotated[float, Field(ge=-180, le=180), BeforeValidator(not_bool)]


def form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` for a form-encoded body: a form has no null (a field is left out instead), so
    the null alternative of each optional field is dropped."""
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
        if "anyOf" in prop and len(options) == 1:
            rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            prop = {**rest, **options[0]}
        properties[name] = prop
    return {**schema, "properties": properties}
