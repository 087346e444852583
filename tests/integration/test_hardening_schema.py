"""Issue #22, finding 8, one by one (the bounded fuzz is tests/integration/test_hardening_fuzz.py):
the OpenAPI document says what the code enforces, and answers are what it says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings
from tests.integration.api_support import ABANDONED


@pytest.fixture()
def client(api_store_file: Path, tmp_path: Path, copy_store) -> Iterator[TestClient]:
    from api.app import create_app
    from api.keys import create_key

    path = copy_store(api_store_file, tmp_path)
    app = create_app(
        Settings(store_path=path, tagger_model=str(tmp_path / "no-tagger"), rate_limit_per_minute=0)
    )
    with TestClient(app) as c:
        key, _ = create_key(app.state.civicpulse.store, "schema", "write")
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def _schema(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][name]


def test_blank_text_and_labels_are_refused_by_the_schema_too(client: TestClient) -> None:
    schema = _schema(client)
    for model, field in (("TagItem", "text"), ("ThemeRename", "label"), ("ThemeMerge", "into")):
        prop = _component(schema, model)["properties"][field]
        assert prop.get("pattern") == r"\S", (model, prop)
        assert not re.search(prop["pattern"], " \t\n")
    blank = client.patch(f"/v1/themes/{ABANDONED}", json={"label": "   "})
    assert blank.status_code == 422


def test_tag_says_exactly_one_of_text_and_texts(client: TestClient) -> None:
    body = _component(_schema(client), "TagRequest")
    [one, many] = body["oneOf"]
    assert one["required"] == ["text"] and many["required"] == ["texts"]
    assert {"required": ["lat"]} in many["not"]["anyOf"]
    assert body["properties"]["text"]["type"] == "string"  # given or left out, never null
    assert client.post("/v1/tag", json={"text": None, "texts": ["a"]}).status_code == 422


def test_open311_post_documents_description_as_required(client: TestClient) -> None:
    op = _schema(client)["paths"]["/open311/v2/requests.json"]["post"]
    for media in ("application/json", "application/x-www-form-urlencoded"):
        schema = op["requestBody"]["content"][media]["schema"]
        assert "description" in schema["required"], media
        assert schema["properties"]["description"]["pattern"] == r"\S"
    form = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["lat"]["type"] == "number"  # a form has no null


def test_a_self_merge_is_a_conflict_documented_as_such(client: TestClient) -> None:
    op = _schema(client)["paths"]["/v1/themes/{theme_id}/merge"]["post"]
    assert "409" in op["responses"]
    answer = client.post(f"/v1/themes/{ABANDONED}/merge", json={"into": ABANDONED})
    assert answer.status_code == 409 and "itself" in answer.json()["detail"]


def test_options_names_every_method_of_the_path(client: TestClient) -> None:
    for path, methods in (
        ("/v1/records", "GET, POST"),
        ("/v1/keys", "GET, POST"),
        ("/open311/v2/requests.json", "GET, POST"),
    ):
        answer = client.options(path)
        assert answer.status_code == 405 and answer.headers["allow"] == methods, path


def test_numbers_are_numbers_and_bounds_are_not_blank(client: TestClient) -> None:
    record = {"id": "x1", "text": "a pothole on Main Street", "lon": False}
    assert client.post("/v1/records", json={"records": [record]}).status_code == 422
    assert client.get("/v1/stats", params={"until": ""}).status_code == 422
    assert client.get("/v1/stats", params={"until": "2020-01-01"}).status_code == 200
    bad = client.get("/open311/v2/requests.json", params={"start_date": "0.5"})
    assert bad.status_code == 422
    status = client.get("/open311/v2/requests.json", params={"status": "opened"})
    assert status.status_code == 422
