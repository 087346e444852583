"""The published Open311 client (``georeport`` 0.3.1 from PyPI, pinned in the dev extras) against a
real ``civicpulse serve`` started from a folder outside the repository, in both of its formats: it
lists services, reads a service definition, posts a request with a key, lists requests and reads
one back.

georeport 0.3.1 has no method for POST, so the request is posted as GeoReport v2 clients do: form
fields (``api_key`` among them) to ``requests.{format}`` under the client's own root address, with
the client's own HTTP library, and the answer is parsed as the client parses the others
(``xmltodict`` for XML)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_support import free_port

georeport = pytest.importorskip("georeport")  # a dev tool: without it this module is skipped
requests = pytest.importorskip("requests")
xmltodict = pytest.importorskip("xmltodict")

ROOT = Path(__file__).resolve().parents[2]
BOSTON = [
    "abandoned-vehicle",
    "illegal-parking",
    "other",
    "sidewalk-not-shoveled",
    "unsafe-dangerous-conditions",
]
SERVICE = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")
REQUEST = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)

# A live server in a subprocess: `make test-slow`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(
    api_store_file: Path, copy_store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``civicpulse serve`` over a copy of the API tests' store (real Boston rows), started with
    its working directory outside the repository and the default (relative) tagger path."""
    from analyzer.store.database import Store
    from api.keys import create_key

    folder = tmp_path_factory.mktemp("open311-live")
    assert not folder.resolve().is_relative_to(ROOT)
    store_path = copy_store(api_store_file, folder)
    with Store(store_path) as store:
        key, _ = create_key(store, "georeport-client")
        first = store.query_df(
            "SELECT strftime(min(created_at), '%Y-%m-%dT%H:%M:%SZ') AS t FROM records "
            "WHERE id LIKE 'boston:%'"
        )["t"].iloc[0]
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CIVICPULSE_TAGGER_MODEL", "CIVICPULSE_MODELS_DIR")
    }
    env.update(
        {
            "CIVICPULSE_CONFIG": str(folder / "none.toml"),
            "CIVICPULSE_STORE_PATH": str(store_path),
            "CIVICPULSE_RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    cmd = [
        sys.executable,
        "-c",
        "import sys; from analyzer.cli import main; sys.exit(main())",
        "serve",
        "--port",
        str(port),
    ]
    log_path = folder / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                        if json.loads(r.read()) == {"status": "ok"}:
                            break
                except OSError:
                    time.sleep(0.3)
            else:
                pytest.fail(f"the server did not start:\n{log_path.read_text()[-2000:]}")
            yield {"base": base, "key": key, "first": first, "log": log_path}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def as_list(value: Any) -> list[Any]:
    """xmltodict gives one child as a dict, several as a list, none as None."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_started_from_another_folder_it_finds_the_shipped_tagger(live: dict[str, Any]) -> None:
    with urllib.request.urlopen(f"{live['base']}/open311/v2/services.json", timeout=30) as r:
        assert r.status == 200
        services = json.loads(r.read())
    assert [s["service_code"] for s in services] == BOSTON
    assert "no tagger model" not in live["log"].read_text()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_published_client_session(live: dict[str, Any], fmt: str) -> None:
    client = georeport.GeoReport(
        f"{live['base']}/open311/v2",
        jurisdiction="boston.gov",
        api_key=live["key"],
        output_format=fmt,
    )
    services = client.get_service_list()
    assert [s["service_code"] for s in services] == BOSTON
    for s in services:
        assert list(s) == list(SERVICE)
        assert str(s["metadata"]).lower() == "false" and s["type"] == "realtime"

    definition = client.get_service_definition("illegal-parking")
    assert definition["service_code"] == "illegal-parking"
    assert as_list(definition["attributes"]) == []  # no service of this tagger has metadata

    description = f"Pickup truck parked on the sidewalk of Tremont St ({fmt}), call 617-555-0199"
    posted = requests.post(
        f"{client.root_address}/requests.{fmt}",
        data={
            "api_key": client.api_key,
            "jurisdiction_id": client.jurisdiction,
            "service_code": "illegal-parking",
            "description": description,
            "lat": "42.3519",
            "long": "-71.0643",
        },
        timeout=60,
    )
    assert posted.status_code == 200, posted.text
    if fmt == "xml":
        assert posted.headers["content-type"].startswith("text/xml")
        [created] = as_list(xmltodict.parse(posted.content)["service_requests"]["request"])
    else:
        [created] = posted.json()
    assert list(created)[:3] == ["service_request_id", "service_notice", "account_id"]
    rid = created["service_request_id"]

    one = client.get_service_request(rid)
    assert list(one) == list(REQUEST)
    assert one["service_request_id"] == rid and one["status"] == "open"
    assert one["service_code"] == "illegal-parking" and one["service_name"] == "Illegal Parking"
    assert "617-555-0199" not in one["description"] and "Tremont" in one["description"]
    assert float(one["lat"]) == pytest.approx(42.3519)

    recent = as_list(client.get_service_requests())  # the last 90 days
    assert rid in [r["service_request_id"] for r in recent]
    by_id = as_list(client.get_service_requests(service_request_id=rid))
    assert [r["service_request_id"] for r in by_id] == [rid]
    first = live["first"]
    old = as_list(
        client.get_service_requests(start_date=first, end_date=first, status="open,closed")
    )
    assert old and all(r["requested_datetime"] == first for r in old)
    assert all(list(r) == list(REQUEST) for r in old)

    # Without a key the client's POST is refused with the spec's error document.
    refused = requests.post(
        f"{client.root_address}/requests.{fmt}",
        data={"service_code": "illegal-parking", "description": description},
        timeout=30,
    )
    assert refused.status_code == 401
    if fmt == "xml":
        [error] = as_list(xmltodict.parse(refused.content)["errors"]["error"])
    else:
        [error] = refused.json()
    assert int(error["code"]) == 401 and error["description"]
