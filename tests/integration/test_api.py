"""The HTTP API through TestClient: every endpoint, and the security behaviour (401, 413, 422, 429,
CORS, no stack traces, JSON logs without text), against a store of real ingested Boston rows."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings
from tests.integration.api_support import (
    ABANDONED,
    OTHER,
    PARKING,
    RUN_ID,
    STALE_ALERT_LABEL,
)


@pytest.fixture()
def store_path(api_store_file: Path, tmp_path: Path, copy_store) -> Path:
    """A private copy per test, so writes in one test never leak into another."""
    return copy_store(api_store_file, tmp_path)


def make_client(store_path: Path, **overrides: object) -> TestClient:
    from api.app import create_app

    settings = Settings(
        store_path=store_path,
        tagger_model=str(store_path.parent / "no-tagger-here"),
        rate_limit_per_minute=10_000,
    ).with_overrides(**overrides)
    return TestClient(create_app(settings))


@pytest.fixture()
def client(store_path: Path) -> Iterator[TestClient]:
    with make_client(store_path) as c:
        yield c


def new_key(client: TestClient, name: str = "test") -> str:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, name)
    return key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def record_count(client: TestClient, where: str = "TRUE") -> int:
    store = client.app.state.civicpulse.store
    return int(store.query_df(f"SELECT count(*) AS n FROM records WHERE {where}")["n"].iloc[0])


# -- health and docs -----------------------------------------------------------------------


def test_health_ready_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["store"] == "ok" and body["records"] == record_count(client)
    assert body["tagger"].startswith("unavailable")  # no bundle at the configured path
    # Without a tagger, tagging says so (503) instead of failing or guessing.
    tag = client.post("/v1/tag", json={"text": "car on the sidewalk"})
    assert tag.status_code == 503 and tag.json()["code"] == "unavailable"
    services = client.get("/open311/v2/services.json")
    assert services.status_code == 503 and services.json()[0]["code"] == 503
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/tag",
        "/v1/themes",
        "/v1/themes/{theme_id}",
        "/v1/themes/{theme_id}/merge",
        "/v1/emerging",
        "/v1/records",
        "/v1/stats",
        "/v1/corrections",
        "/v1/analyze",
        "/v1/runs/{run_id}",
        "/open311/v2/services.json",
        "/open311/v2/requests.json",
        "/open311/v2/requests/{service_request_id}.json",
    ):
        assert path in paths


# -- themes --------------------------------------------------------------------------------


def test_themes_sizes_add_up_and_filter(client: TestClient) -> None:
    body = client.get("/v1/themes").json()
    assert body["total"] == len(body["items"]) == 5
    assert sum(t["size"] for t in body["items"]) == body["assigned"] == record_count(client)
    sizes = [t["size"] for t in body["items"]]
    assert sizes == sorted(sizes, reverse=True)
    for t in body["items"]:
        # The fixture's themes are the city's categories: each size is a count of records.
        assert t["size"] == record_count(client, f"category = '{t['label'].title()}'")
        assert t["sentiment"] is None or -1 <= t["sentiment"] <= 1

    only = client.get("/v1/themes", params={"category": "Illegal Parking"}).json()
    assert [t["theme_id"] for t in only["items"]] == [PARKING]
    assert only["items"][0]["size"] == record_count(client, "category = 'Illegal Parking'")

    until = client.get("/v1/themes", params={"until": "2012-12-31"}).json()
    assert until["assigned"] == record_count(
        client, "created_at < TIMESTAMPTZ '2013-01-01 00:00:00+00'"
    )

    page = client.get(
        "/v1/themes", params={"limit": 2, "offset": 1, "sort": "label", "order": "asc"}
    )
    labels = sorted(t["label"] for t in body["items"])
    assert [t["label"] for t in page.json()["items"]] == labels[1:3]


def test_theme_detail_parts_add_up(client: TestClient) -> None:
    detail = client.get(f"/v1/themes/{PARKING}").json()
    size = detail["size"]
    assert size == record_count(client, "category = 'Illegal Parking'")
    assert sum(p["count"] for p in detail["series"]) == size
    assert sum(s["size"] for s in detail["subthemes"]) == size
    assert detail["subtheme_count"] == len(detail["subthemes"]) >= 1
    assert sum(a["count"] for a in detail["areas"]) <= size
    assert detail["categories"] == [
        {"key": "Illegal Parking", "count": size, "sentiment": detail["categories"][0]["sentiment"]}
    ]
    # Unfiltered: the analysis' own picks, which it stores as (redacted) texts of the theme's
    # records. Under a filter: records of the theme picked around its centroid.
    members = client.app.state.civicpulse.store.query_df(
        "SELECT r.text FROM records r JOIN assignments a ON a.record_id = r.id "
        "WHERE a.theme_id = ?",
        [PARKING],
    )["text"]
    assert 1 <= len(detail["examples"]) <= 5
    assert all(e["text"] in set(members) for e in detail["examples"])
    filtered = client.get(f"/v1/themes/{PARKING}", params={"source": "311"}).json()["examples"]
    assert 1 <= len(filtered) <= 5
    assert all(e["theme_id"] == PARKING and e["text"] in set(members) for e in filtered)
    assert [ev["event"] for ev in detail["lineage"]] == ["new"]
    assert detail["lineage"][0]["run_id"] == RUN_ID
    # A filter that keeps no records of the theme leaves its size at zero, not an error.
    empty = client.get(f"/v1/themes/{PARKING}", params={"until": "2000-01-01"}).json()
    assert empty["size"] == 0 and empty["series"] == [] and empty["examples"] == []
    missing = client.get("/v1/themes/no-such-theme")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_rename_and_merge_need_a_key_and_persist(client: TestClient, store_path: Path) -> None:
    before = {t["theme_id"]: t["size"] for t in client.get("/v1/themes").json()["items"]}
    assert client.patch(f"/v1/themes/{OTHER}", json={"label": "Misc"}).status_code == 401
    assert client.post(f"/v1/themes/{OTHER}/merge", json={"into": PARKING}).status_code == 401
    key = new_key(client)
    renamed = client.patch(
        f"/v1/themes/{OTHER}", json={"label": "  Misc   requests "}, headers=auth(key)
    )
    assert renamed.status_code == 200 and renamed.json()["label"] == "Misc requests"
    merged = client.post(f"/v1/themes/{OTHER}/merge", json={"into": PARKING}, headers=auth(key))
    assert merged.status_code == 200 and merged.json()["merged_into"] == PARKING
    after = {t["theme_id"]: t for t in client.get("/v1/themes").json()["items"]}
    assert OTHER not in after
    assert after[PARKING]["size"] == before[PARKING] + before[OTHER]
    assert after[PARKING]["merged_from"] == [OTHER]
    # The merged theme answers with its target; sub-themes of both are listed.
    via_old = client.get(f"/v1/themes/{OTHER}").json()
    assert via_old["theme_id"] == PARKING and via_old["requested_id"] == OTHER
    assert {s["theme_id"].split(".")[0] for s in via_old["subthemes"]} == {
        PARKING,
        OTHER,
    }
    # Bad merges: into itself, into a sub-theme (level), a cycle: 409 (#22: well-formed requests
    # the themes' state refuses); unknown (404).
    self_merge = client.post(
        f"/v1/themes/{ABANDONED}/merge",
        json={"into": ABANDONED},
        headers=auth(key),
    )
    assert self_merge.status_code == 409 and "itself" in self_merge.json()["detail"]
    sub = via_old["subthemes"][0]["theme_id"]
    level = client.post(f"/v1/themes/{ABANDONED}/merge", json={"into": sub}, headers=auth(key))
    assert level.status_code == 409
    cycle = client.post(f"/v1/themes/{PARKING}/merge", json={"into": OTHER}, headers=auth(key))
    assert cycle.status_code == 409
    unknown = client.post("/v1/themes/nope/merge", json={"into": OTHER}, headers=auth(key))
    assert unknown.status_code == 404
    client.close()
    # A new process over the same store sees the edits (they live in theme_overrides).
    with make_client(store_path) as again:
        items = {t["theme_id"]: t for t in again.get("/v1/themes").json()["items"]}
        assert OTHER not in items and items[PARKING]["merged_from"] == [OTHER]
        assert again.get(f"/v1/themes/{OTHER}").json()["theme_id"] == PARKING


def test_projection_points(client: TestClient) -> None:
    out = client.get("/v1/projection", params={"limit": 10}).json()
    assert len(out["points"]) == 10 and out["sampled"] is True
    assert out["total"] == record_count(client, "lat IS NOT NULL AND lon IS NOT NULL")
    assert all(p["theme_id"] and p["text"] for p in out["points"])
    # Deterministic sample: the same call gives the same points.
    assert client.get("/v1/projection", params={"limit": 10}).json() == out
    one = client.get("/v1/projection", params={"theme_id": OTHER}).json()
    assert {p["theme_id"] for p in one["points"]} == {OTHER}


# -- emerging, stats, runs -----------------------------------------------------------------


def test_emerging_alerts_use_current_labels(client: TestClient) -> None:
    out = client.get("/v1/emerging").json()
    assert out["run_id"] == RUN_ID and out["total"] == 1
    alert = out["items"][0]
    assert alert["theme_id"] == PARKING
    # the theme's label, not the copy the alert was stored with
    assert alert["theme_label"] == "illegal parking" != STALE_ALERT_LABEL
    assert alert["ratio"] == 4.1 and alert["q_value"] == 0.01
    # The detector's examples (the theme's newest texts, newest first) come back as stored.
    store = client.app.state.civicpulse.store
    newest = store.query_df(
        "SELECT r.text FROM records r JOIN assignments a ON a.record_id = r.id "
        "WHERE a.theme_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT 2",
        [PARKING],
    )["text"].tolist()
    assert alert["examples"] == newest and len(newest) == 2
    assert client.get("/v1/emerging", params={"until": "2000-01-01"}).json()["total"] == 0
    assert client.get("/v1/emerging", params={"source": "survey"}).json()["total"] == 0
    assert client.get("/v1/emerging", params={"max_q": 0.001}).json()["total"] == 0


def test_stats_add_up(client: TestClient) -> None:
    out = client.get("/v1/stats").json()
    n = record_count(client)
    assert out["records"] == n == sum(s["count"] for s in out["sources"])
    assert sum(c["count"] for c in out["categories"]) == n
    assert sum(p["count"] for p in out["series"]) == n
    assert sum(s["count"] for s in out["sentiment"]) == n
    assert out["themes"] == 5 and out["alerts"] == 1 and out["assigned"] == n
    assert out["last_run"]["run_id"] == RUN_ID
    only = client.get("/v1/stats", params={"category": "Other"}).json()
    assert only["records"] == record_count(client, "category = 'Other'")


def test_runs(client: TestClient) -> None:
    run = client.get(f"/v1/runs/{RUN_ID}").json()
    assert run["status"] == "done" and run["progress"] == 1.0
    assert client.get("/v1/runs/nope").status_code == 404
    assert [r["run_id"] for r in client.get("/v1/runs").json()["items"]] == [RUN_ID]


def test_analyze_runs_in_background_and_reports(client: TestClient) -> None:
    assert client.post("/v1/analyze").status_code == 401
    key = new_key(client)
    started = client.post("/v1/analyze", json={"refit": False}, headers=auth(key))
    assert started.status_code == 202
    url = started.json()["url"]
    assert started.headers["location"] == url
    deadline = time.monotonic() + 120
    run = client.get(url).json()
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        run = client.get(url).json()
    assert run["status"] in {"done", "failed"}
    if run["status"] == "failed":
        # Whatever failed, the run says so in one line, with no trace.
        assert "Traceback" not in run["message"] and "\n" not in run["message"]
    else:
        assert run["progress"] == 1.0 and run["manifest"]["counts"]["records"] == record_count(
            client
        )


# -- records -------------------------------------------------------------------------------


def test_records_need_a_key_and_serve_redacted_text_only(client: TestClient) -> None:
    assert client.get("/v1/records").status_code == 401
    key = new_key(client)
    store = client.app.state.civicpulse.store
    # Even if raw text was kept (--keep-raw), it is never served.
    store.execute("UPDATE records SET raw_text = 'RAW-SECRET ' || text")
    out = client.get("/v1/records", params={"limit": 500}, headers=auth(key)).json()
    assert out["total"] == record_count(client) == len(out["items"])
    assert "RAW-SECRET" not in json.dumps(out)
    planted = [r for r in out["items"] if r["id"] == "boston:990000000001"]
    assert planted and "617-555-0142" not in planted[0]["text"] and "[PHONE]" in planted[0]["text"]
    assert all("raw_text" not in r for r in out["items"])


def test_records_word_search_and_filters(client: TestClient) -> None:
    key = new_key(client)
    out = client.get("/v1/records", params={"q": "HYDRANT", "limit": 50}, headers=auth(key)).json()
    assert out["mode"] == "text" or out["mode"] == "similarity"
    if out["mode"] == "text":
        assert out["total"] >= 1 and all("hydrant" in r["text"].lower() for r in out["items"])
    # LIKE wildcards in q are literal characters, not patterns.
    literal = client.get("/v1/records", params={"q": "%_%"}, headers=auth(key)).json()
    assert literal["mode"] == "text" and literal["total"] == record_count(
        client, "text LIKE '%\\%\\_\\%%' ESCAPE '\\'"
    )
    by_theme = client.get(
        "/v1/records", params={"theme_id": OTHER, "limit": 100}, headers=auth(key)
    ).json()
    assert by_theme["total"] == record_count(client, "category = 'Other'")
    oldest = client.get("/v1/records", params={"order": "oldest", "limit": 3}, headers=auth(key))
    times = [r["created_at"] for r in oldest.json()["items"]]
    assert times == sorted(times)


def test_post_records_reports_bad_rows(client: TestClient) -> None:
    key = new_key(client)
    rows = [
        {
            "id": "r1",
            "text": "Streetlight out on the corner, call 617-555-0199",
            "created_at": "2020-04-01T10:00:00Z",
            "lat": 42.35,
            "lon": -71.06,
            "category": "Street Lights",
            "attributes": {"channel": "app"},
        },
        {"id": "r2", "text": "Pothole", "created_at": "the day before yesterday"},
        {"id": "r3", "text": "   "},
        {"id": "r4", "text": "Graffiti on the wall", "lat": 123.0, "lon": 10.0},
        {"text": "No id given: one is made", "source": "survey"},
    ]
    before = record_count(client)
    res = client.post("/v1/records", json={"records": rows}, headers=auth(key))
    assert res.status_code == 200
    body = res.json()
    assert body["loaded"] == 2 and body["rejected"] == 3
    assert [(r["index"], r["id"]) for r in body["rejects"]] == [(1, "r2"), (2, "r3"), (3, "r4")]
    assert all(r["reason"] for r in body["rejects"])
    assert body["ids"][0] == "api:r1" and len(body["ids"]) == 2
    assert record_count(client) == before + 2
    stored = client.get("/v1/records", params={"q": "Streetlight"}, headers=auth(key)).json()
    assert stored["items"][0]["text"].endswith("[PHONE]")
    # Posting the same record again changes nothing (idempotent upsert).
    again = client.post("/v1/records", json={"records": rows[:1]}, headers=auth(key)).json()
    assert again["loaded"] == 1 and record_count(client) == before + 2


def test_auth_is_checked_before_the_body(client: TestClient) -> None:
    bad_json = client.post(
        "/v1/records", content=b"{this is not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 401  # not 422: the body was never parsed
    big = client.post(
        "/v1/records",
        content=b"x" * 5_000_000,
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 401
    assert big.headers["www-authenticate"] == "Bearer"


# -- limits and validation -----------------------------------------------------------------


def test_body_limit_by_length_and_when_streamed(store_path: Path) -> None:
    with make_client(store_path, max_body_bytes=2_000) as c:
        key = new_key(c)
        big = {"records": [{"text": "x" * 3_000}]}
        declared = c.post("/v1/records", json=big, headers=auth(key))
        assert declared.status_code == 413 and declared.json()["code"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            yield b'{"records": [{"text": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        streamed = c.post(
            "/v1/records",
            content=chunks(),
            headers={**auth(key), "content-type": "application/json"},
        )
        assert streamed.status_code == 413
        small = c.post(
            "/v1/records", json={"records": [{"text": "ok, a short one"}]}, headers=auth(key)
        )
        assert small.status_code == 200

        def small_chunks() -> Iterator[bytes]:
            yield b'{"records": [{"text": '
            yield b'"a streamed record"}]}'

        ok = c.post(
            "/v1/records",
            content=small_chunks(),
            headers={**auth(key), "content-type": "application/json"},
        )
        assert ok.status_code == 200 and ok.json()["loaded"] == 1


def test_validation_errors_are_422_with_paths_and_no_echo(client: TestClient) -> None:
    key = new_key(client)
    secret = "my private words 617-555-0123"
    res = client.post(
        "/v1/records",
        json={"records": [{"text": "fine"}, {"text": secret, "lat": "north-ish"}]},
        headers=auth(key),
    )
    assert res.status_code == 422
    body = res.json()
    assert body["code"] == "validation_error"
    assert "body.records[1].lat" in [e["path"] for e in body["detail"]]
    assert secret not in res.text and "north-ish" not in res.text
    too_many = client.post("/v1/tag", json={"texts": ["a"] * 1001})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["path"] == "body.texts"
    too_long = client.post("/v1/tag", json={"text": "a" * 10_001})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["path"] == "body.text"
    both = client.post("/v1/tag", json={"text": "a", "texts": ["b"]})
    assert both.status_code == 422
    extra = client.patch(f"/v1/themes/{OTHER}", json={"label": "x", "sneaky": 1}, headers=auth(key))
    assert extra.status_code == 422 and extra.json()["detail"][0]["path"] == "body.sneaky"
    bad_query = client.get("/v1/themes", params={"limit": 0})
    assert bad_query.status_code == 422 and bad_query.json()["detail"][0]["path"] == "query.limit"
    window = client.get("/v1/themes", params={"since": "2020-01-02", "until": "2020-01-01"})
    assert window.status_code == 422 and window.json()["detail"][0]["path"] == "query.until"
    vague = client.get("/v1/themes", params={"since": "last tuesday"})
    assert vague.status_code == 422 and vague.json()["detail"][0]["path"] == "query.since"


def test_rate_limit_per_key_and_per_client(store_path: Path) -> None:
    with make_client(store_path, rate_limit_per_minute=3) as c:
        for _ in range(3):
            assert c.get("/v1/stats").status_code == 200
        limited = c.get("/v1/stats")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["code"] == "rate_limited"
        # A key has its own budget, separate from the anonymous client's.
        key = new_key(c)
        assert c.get("/v1/stats", headers=auth(key)).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes are never limited


def test_keys_invalid_revoked_and_private_reads(store_path: Path) -> None:
    from api.keys import revoke_key

    with make_client(store_path, read_public=False) as c:
        assert c.get("/v1/themes").status_code == 401
        key = new_key(c)
        assert c.get("/v1/themes", headers=auth(key)).status_code == 200
        assert c.get("/v1/themes", headers={"X-API-Key": key}).status_code == 200
        forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
        assert c.get("/v1/themes", headers=auth(forged)).status_code == 401
        assert revoke_key(c.app.state.civicpulse.store, key.split(".")[0][3:])
        assert c.get("/v1/themes", headers=auth(key)).status_code == 401
        assert c.get("/healthz").status_code == 200
    with make_client(store_path) as c:
        # Reads are public here, but a key that is presented must still be valid.
        assert c.get("/v1/themes").status_code == 200
        assert (
            c.get(
                "/v1/themes", headers=auth("cp_000000000000.not-a-real-key-at-all-xxxxxxxxxxxxx")
            ).status_code
            == 401
        )


def test_cors_off_by_default_and_on_when_configured(store_path: Path) -> None:
    origin = {"Origin": "https://dashboard.example.org"}
    with make_client(store_path) as c:
        assert "access-control-allow-origin" not in c.get("/v1/stats", headers=origin).headers
    with make_client(store_path, cors_origins=("https://dashboard.example.org",)) as c:
        res = c.get("/v1/stats", headers=origin)
        assert res.headers["access-control-allow-origin"] == "https://dashboard.example.org"
        other = c.get("/v1/stats", headers={"Origin": "https://elsewhere.example.org"})
        assert "access-control-allow-origin" not in other.headers


def test_internal_errors_leave_no_trace_and_logs_hold_no_text(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key(client)
    caplog.set_level(logging.INFO, logger="civicpulse.api")
    client.get("/v1/records", params={"q": "hydrant private words"}, headers=auth(key))
    # A real failure: the table the query needs is gone.
    client.app.state.civicpulse.store.execute("DROP TABLE theme_overrides")
    res = client.get("/v1/themes")
    assert res.status_code == 500
    assert res.json() == {
        "detail": "internal error; the request was not completed",
        "code": "internal_error",
    }
    for word in ("Traceback", 'File "', "theme_overrides", "Catalog"):
        assert word not in res.text
    from api.logs import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "civicpulse.api"]
    requests = [json.loads(line) for line in lines if '"event": "request"' in line]
    assert {"method", "path", "status", "ms", "key_id"} <= set(requests[0])
    search = next(r for r in requests if r["path"] == "/v1/records")
    assert search["status"] == 200 and search["key_id"] == key.split(".")[0][3:]
    assert any(r["status"] == 500 and r["path"] == "/v1/themes" for r in requests)
    joined = "\n".join(lines)
    assert "private words" not in joined and "hydrant" not in joined and key not in joined


# -- Open311 -------------------------------------------------------------------------------


def test_open311_round_trip_form_encoded(client: TestClient) -> None:
    key = new_key(client)
    description = "Truck parked on the sidewalk for two days; my cell is 617-555-0100"
    form = {
        "api_key": key,
        "service_code": "illegal-parking",
        "description": description,
        "lat": "42.3467",
        "long": "-71.0972",
        "address_string": "1200 Boylston St, Boston, MA 02215",
        "email": "resident@example.org",
        "first_name": "Jane",
        "phone": "6175550100",
    }
    posted = client.post("/open311/v2/requests.json", data=form)
    assert posted.status_code == 200, posted.text
    [created] = posted.json()
    assert (
        created["service_code"] == "illegal-parking" and created["service_code_source"] == "client"
    )
    rid = created["service_request_id"]
    [got] = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert got["service_request_id"] == rid and got["status"] == "open"
    assert got["service_code"] == "illegal-parking" and got["service_name"] == "Illegal Parking"
    assert "617-555-0100" not in got["description"] and "[PHONE]" in got["description"]
    assert got["lat"] == pytest.approx(42.3467) and got["long"] == pytest.approx(-71.0972)
    assert got["address"] and not got["address"].startswith("1200")  # house number dropped
    # Personal fields of the spec are not stored anywhere.
    row = client.app.state.civicpulse.store.query_df(
        "SELECT * FROM records WHERE id = ?", [f"open311:{rid}"]
    ).to_json()
    for value in ("resident@example.org", "Jane", "6175550100", "617-555-0100"):
        assert value not in row
    # GET requests.json: the default window is the last 90 days, and filters apply.
    listed = client.get("/open311/v2/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [rid]
    assert client.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    assert client.get("/open311/v2/requests.json", params={"service_code": "other"}).json() == []
    by_id = client.get("/open311/v2/requests.json", params={"service_request_id": f"{rid},nope"})
    assert [r["service_request_id"] for r in by_id.json()] == [rid]
    first = client.app.state.civicpulse.store.query_df(
        "SELECT strftime(min(created_at), '%Y-%m-%dT%H:%M:%SZ') AS t FROM records "
        "WHERE id LIKE 'boston:%'"
    )["t"].iloc[0]
    old = client.get(
        "/open311/v2/requests.json", params={"start_date": first, "end_date": first}
    ).json()
    assert len(old) >= 1 and all(r["requested_datetime"] == first for r in old)
    assert all(r["service_request_id"].isdigit() for r in old)  # Boston's own ids, no prefix
    [same] = client.get(f"/open311/v2/requests/{old[0]['service_request_id']}.json").json()
    assert same == old[0]
    wide = client.get(
        "/open311/v2/requests.json",
        params={"start_date": "2010-01-01T00:00:00Z", "end_date": "2011-01-01T00:00:00Z"},
    )
    assert wide.status_code == 400 and wide.json()[0]["code"] == 400
    missing = client.get("/open311/v2/requests/does-not-exist.json")
    assert missing.status_code == 404 and missing.json() == [
        {"code": 404, "description": "no service request 'does-not-exist'"}
    ]


def test_open311_post_needs_a_key_and_a_known_service(client: TestClient) -> None:
    form = {"service_code": "illegal-parking", "description": "Car on the sidewalk"}
    no_key = client.post("/open311/v2/requests.json", data=form)
    assert no_key.status_code == 401 and no_key.json()[0]["code"] == 401
    wrong = client.post("/open311/v2/requests.json", data={**form, "api_key": "cp_nope"})
    assert wrong.status_code == 401
    key = new_key(client)
    unknown = client.post(
        "/open311/v2/requests.json", data={**form, "service_code": "moon-landing", "api_key": key}
    )
    assert unknown.status_code == 400 and "moon-landing" in unknown.json()[0]["description"]
    # JSON is accepted too, with the key in a header.
    as_json = client.post("/open311/v2/requests.json", json=form, headers=auth(key))
    assert as_json.status_code == 200
    no_text = client.post(
        "/open311/v2/requests.json", data={"service_code": "other", "api_key": key}
    )
    assert no_text.status_code == 400
    bad_lat = client.post("/open311/v2/requests.json", data={**form, "lat": "999", "api_key": key})
    assert bad_lat.status_code == 422 and bad_lat.json()[0]["description"].startswith("body.lat")


def test_theme_growth_is_recomputable_from_records(client: TestClient) -> None:
    """recent = the last 28 days of the period, previous = the 28 days before; growth their
    relative change (none without a baseline)."""
    body = client.get("/v1/themes", params={"category": "Other"}).json()
    end = body["period_end"].replace("Z", "+00:00")
    [theme] = body["items"]

    def count(lo_days: int, hi_days: int) -> int:
        return record_count(
            client,
            f"category = 'Other' AND created_at >= TIMESTAMPTZ '{end}' - INTERVAL {lo_days} DAY "
            f"AND created_at < TIMESTAMPTZ '{end}' - INTERVAL {hi_days} DAY",
        )

    recent, previous = count(28, 0), count(56, 28)
    assert recent >= 1  # the period ends at the theme's newest record
    assert (theme["recent_count"], theme["previous_count"]) == (recent, previous)
    expected = None if previous == 0 else round((recent - previous) / previous, 4)
    assert theme["growth"] == expected
