"""Tagging through the API with a real tagger bundle (zero-shot over Boston's five services):
POST /v1/tag, micro-batching under concurrent requests, Open311 services and tagging of a request
posted without a service code, and corrections."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings
from tests.integration.api_support import source_rows

# An Open311-style services list, as a city with no labelled history would give it.
SERVICES = [
    {
        "name": "Illegal Parking",
        "description": "A vehicle parked illegally: blocking a driveway, hydrant, crosswalk, bike "
        "lane or handicap space, double parked, or parked without a resident permit.",
    },
    {
        "name": "Abandoned Vehicle",
        "description": "A car left on the street for weeks without moving: flat tyres, no plates, "
        "expired registration or inspection sticker.",
    },
    {
        "name": "Sidewalk Not Shoveled",
        "description": "Snow or ice not cleared from a sidewalk after a storm, so people "
        "cannot walk.",
    },
    {
        "name": "Unsafe Dangerous Conditions",
        "description": "A dangerous building or structure: loose bricks, open excavation, falling "
        "debris, exposed wires, unsafe construction site.",
    },
    {
        "name": "Other",
        "description": "Any other city service: trash, noise, streetlights, potholes, graffiti, "
        "trees, rodents and general questions.",
    },
]


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from analyzer.tagging.supervised import ZeroShotTagger

    folder = tmp_path_factory.mktemp("tagger") / "boston-zero-shot"
    rows = source_rows(per_service=6)
    tagger = ZeroShotTagger(SERVICES).fit(
        [r["description"] for r in rows], [r["service_name"] for r in rows]
    )
    tagger.save(folder)
    return folder


@pytest.fixture()
def client(
    api_store_file: Path, tagger_dir: Path, tmp_path: Path, copy_store
) -> Iterator[TestClient]:
    from api.app import create_app

    path = copy_store(api_store_file, tmp_path)
    settings = Settings(store_path=path, tagger_model=str(tagger_dir), rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as c:
        yield c


def key_for(client: TestClient) -> dict[str, str]:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, "tagging")
    return {"Authorization": f"Bearer {key}"}


def test_tag_one_and_many(client: TestClient, tagger_dir: Path) -> None:
    from analyzer.tagging.supervised import load_tagger

    one = client.post("/v1/tag", json={"text": "Sidewalk in front of 12 Elm St was never shoveled"})
    assert one.status_code == 200
    body = one.json()
    assert body["model"] == tagger_dir.name
    [res] = body["results"]
    names = {s["name"] for s in SERVICES}
    assert res["label"] in names and 0 <= res["confidence"] <= 1
    alts = res["alternatives"]
    assert len(alts) == 3 and alts[0]["label"] == res["label"]
    assert [a["probability"] for a in alts] == sorted(
        (a["probability"] for a in alts), reverse=True
    )
    assert res["duplicates"] is None  # no location and time given

    texts = [r["description"] for r in source_rows(per_service=3)]
    many = client.post("/v1/tag", json={"texts": texts}).json()["results"]
    # the service embeds with the configured backend; compare with the same backend
    backend = client.app.state.civicpulse.settings.embed_backend
    direct = load_tagger(tagger_dir, embed_backend=backend).predict_detailed(texts)
    assert [r["label"] for r in many] == [d["predicted_label"] for d in direct]
    assert [r["needs_review"] for r in many] == [d["needs_review"] for d in direct]
    for got, want in zip(many, direct, strict=True):
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-3)


def test_concurrent_requests_are_batched_but_answered_separately(client: TestClient) -> None:
    """16 clients at once: the micro-batcher merges their texts into few model calls, and each
    caller still gets the answer for its own text."""
    texts = [r["description"] for r in source_rows(per_service=4)][:16]
    alone = [client.post("/v1/tag", json={"text": t}).json()["results"][0] for t in texts]
    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(
            pool.map(lambda t: client.post("/v1/tag", json={"text": t}).json()["results"][0], texts)
        )
    assert [r["label"] for r in together] == [r["label"] for r in alone]
    for a, b in zip(together, alone, strict=True):
        # The default static int8 model's scales are fixed, so a text's vector does not depend
        # on its row-mates (tests/test_ov_embed.py); another caller's answer would be off by
        # far more than this.
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-3)


def test_open311_services_and_a_request_tagged_on_arrival(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json").json()
    assert [s["service_name"] for s in services] == [s["name"] for s in SERVICES]
    assert services[0]["service_code"] == "illegal-parking"
    assert services[0]["description"].startswith("A vehicle parked illegally")
    headers = key_for(client)
    text = "Red pickup parked across my driveway and blocking the hydrant, third day in a row"
    posted = client.post(
        "/open311/v2/requests.json",
        data={"description": text, "lat": "42.35", "long": "-71.06"},
        headers=headers,
    )
    assert posted.status_code == 200, posted.text
    [created] = posted.json()
    assert created["service_code_source"] == "tagger"
    assert created["service_code"] in {s["service_code"] for s in services}
    assert "service_code was not given" in created["service_notice"]
    assert 0 <= created["confidence"] <= 1
    [got] = client.get(f"/open311/v2/requests/{created['service_request_id']}.json").json()
    assert got["service_code"] == created["service_code"]
    assert got["service_notice"] == created["service_notice"]
    assert got["description"] == text


def test_corrections_are_stored_redacted(client: TestClient) -> None:
    text = "Blue sedan abandoned for a month, owner is John Smith 617-555-0177"
    assert client.post("/v1/corrections", json={"text": text, "label": "Other"}).status_code == 401
    headers = key_for(client)
    res = client.post(
        "/v1/corrections", json={"text": text, "label": "Abandoned Vehicle"}, headers=headers
    )
    assert res.status_code == 201
    body = res.json()
    assert body["label"] == "Abandoned Vehicle" and body["known_label"] is True
    stored = client.app.state.civicpulse.store.query_df(
        "SELECT text, label FROM corrections WHERE id = ?", [body["id"]]
    )
    assert stored["label"].iloc[0] == "Abandoned Vehicle"
    assert "617-555-0177" not in stored["text"].iloc[0]
    new_label = client.post(
        "/v1/corrections",
        json={"text": "Bees nesting in the bus shelter", "label": "Pests"},
        headers=headers,
    )
    assert new_label.status_code == 201 and new_label.json()["known_label"] is False


def test_likely_duplicates_when_location_and_time_are_given(client: TestClient) -> None:
    headers = key_for(client)
    first = "Grey van parked across the crosswalk at the school entrance every morning"
    posted = client.post(
        "/open311/v2/requests.json",
        data={
            "description": first,
            "lat": "42.3467",
            "long": "-71.0972",
            "service_code": "illegal-parking",
        },
        headers=headers,
    ).json()[0]
    record_id = f"open311:{posted['service_request_id']}"
    [got] = client.get(f"/open311/v2/requests/{posted['service_request_id']}.json").json()
    later = got["requested_datetime"].replace("Z", "+00:00")
    item = {
        "text": "A grey van is parked across the school crosswalk again this morning",
        "lat": 42.3468,  # about 11 m away
        "lon": -71.0972,
        "created_at": later,
    }
    near = client.post("/v1/tag", json={"texts": [item, "no location here"]}).json()["results"]
    assert [d["record_id"] for d in near[0]["duplicates"]] == [record_id]
    assert near[0]["duplicates"][0]["distance_m"] < 150
    assert near[1]["duplicates"] is None
    far = client.post("/v1/tag", json={**item, "text": item["text"], "lat": 42.40}).json()
    assert far["results"][0]["duplicates"] == []


def test_records_search_by_meaning(client: TestClient) -> None:
    """With the store's texts embedded (as an analysis run leaves them), ``q`` ranks by meaning."""
    from analyzer.embedding.embedder import get_embedder

    state = client.app.state.civicpulse
    store = state.store
    texts = store.query_df("SELECT text FROM records")["text"].tolist()
    get_embedder(None, state.settings.embed_backend).embed(texts, store=store)
    headers = key_for(client)
    out = client.get(
        "/v1/records", params={"q": "snow and ice on the walkway", "limit": 3}, headers=headers
    ).json()
    assert out["mode"] == "similarity" and out["total"] == len(texts)
    scores = [r["score"] for r in out["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.3
    assert out["items"][0]["category"] == "Sidewalk Not Shoveled"
