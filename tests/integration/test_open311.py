"""Open311 GeoReport v2 in both formats, in process (TestClient): every route answers in .json and
.xml, each answer has the spec's fields in the spec's order (wiki.open311.org/GeoReport_v2 and
/Service_Discovery), the XML document carries the same values as the JSON one, errors are the
spec's ``<errors><error>`` document or JSON list, and service definitions list the attributes of
services with ``metadata=true``. The shipped tagger is found from any working directory.

The published client drives a live server in test_open311_client.py."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings

ROOT = Path(__file__).resolve().parents[2]
BOSTON_TAGGER = ROOT / "models" / "boston-311"
BASE = "/open311/v2"

# The spec's field lists, in the spec's order (extensions may follow them).
SERVICE = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")
DEFINITION = ("service_code", "attributes")
ATTRIBUTE = (
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
)
VALUE = ("key", "name")
CREATED = ("service_request_id", "service_notice", "account_id")
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
TOKEN = ("service_request_id", "token")
ERROR = ("code", "description")
DISCOVERY = ("changeset", "contact", "key_service", "endpoints")
ENDPOINT = ("specification", "url", "changeset", "type", "formats")
# The XML element of one item of each list, as the spec's examples name them.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
W3C_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}

# A city's services list with one service definition, as a zero-shot tagger bundle keeps it.
SERVICES = [
    {
        "name": "Illegal Parking",
        "description": "A vehicle parked illegally: blocking a driveway, hydrant, crosswalk or "
        "bike lane, double parked, or without a resident permit.",
        "keywords": ["parking", "hydrant", "driveway"],
        "group": "Streets",
        "attributes": [
            {
                "code": "vehicle_type",
                "datatype": "singlevaluelist",
                "required": True,
                "order": 1,
                "description": "What kind of vehicle is it?",
                "values": [{"key": "car", "name": "Car"}, {"key": "truck", "name": "Truck"}],
            },
            {
                "code": "hours_parked",
                "datatype": "number",
                "order": 2,
                "description": "About how many hours has it been there?",
                "datatype_description": "a whole number of hours",
            },
        ],
    },
    {
        "name": "Pothole",
        "description": "A hole or broken pavement in the road surface.",
        "group": "Streets",
    },
    {"name": "Other", "description": "Any other city service."},
]


# -- helpers -------------------------------------------------------------------------------


def xml_root(response: Any) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(response.content)


def xml_to_data(element: ET.Element) -> Any:
    """An XML answer back into JSON's shape (lists by the spec's item names, text leaves)."""
    children = list(element)
    if element.tag in ITEMS:
        assert all(c.tag == ITEMS[element.tag] for c in children), element.tag
        return [xml_to_data(c) for c in children]
    if not children:
        return element.text
    tags = [c.tag for c in children]
    assert len(tags) == len(set(tags)), f"repeated element in <{element.tag}>"
    return {c.tag: xml_to_data(c) for c in children}


def as_text(value: Any) -> Any:
    """A JSON answer with every leaf as the text XML carries (an empty string is an empty
    element, as null is)."""
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None or value == "" else str(value)


def both(client: TestClient, path: str, **kwargs: Any) -> tuple[Any, Any]:
    """GET ``path`` as .json and .xml: the JSON body and the XML document as data, after
    checking that both say the same."""
    js = client.get(f"{path}.json", **kwargs)
    xm = client.get(f"{path}.xml", **kwargs)
    assert js.status_code == xm.status_code == 200, (js.text, xm.text)
    assert js.headers["content-type"].startswith("application/json")
    root = xml_root(xm)
    data = xml_to_data(root)
    assert data == as_text(js.json())
    return js.json(), root


def spec_fields(item: dict[str, Any], fields: tuple[str, ...]) -> None:
    assert list(item)[: len(fields)] == list(fields), list(item)


def check_service(s: dict[str, Any]) -> None:
    spec_fields(s, SERVICE)
    assert s["service_code"] and s["service_name"] and s["description"]
    assert isinstance(s["metadata"], bool) and s["type"] in ("realtime", "batch", "blackbox")


def check_request(r: dict[str, Any]) -> None:
    spec_fields(r, REQUEST)
    assert r["service_request_id"] and r["status"] in ("open", "closed")
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert r[name] is None or W3C_DATETIME.match(r[name]), (name, r[name])


def check_errors(response: Any, status: int, *, xml: bool) -> str:
    """The spec's error answer in its format; returns the (first) description."""
    assert response.status_code == status, response.text
    if xml:
        root = xml_root(response)
        assert root.tag == "errors"
        errors = xml_to_data(root)
        for e in errors:
            assert list(e) == list(ERROR) and e["code"] == str(status)
    else:
        errors = response.json()
        for e in errors:
            assert list(e) == list(ERROR) and e["code"] == status
    assert errors and all(e["description"] for e in errors)
    assert "Traceback" not in response.text
    return str(errors[0]["description"])


def new_key(client: TestClient) -> str:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, "open311-test")
    return key


def make_client(store: Path, tagger: Path | str) -> TestClient:
    from api.app import create_app

    settings = Settings(store_path=store, tagger_model=str(tagger), rate_limit_per_minute=0)
    return TestClient(create_app(settings))


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture()
def store_path(api_store_file: Path, tmp_path: Path, copy_store) -> Path:
    return copy_store(api_store_file, tmp_path)


@pytest.fixture()
def client(store_path: Path) -> Iterator[TestClient]:
    """The shipped supervised tagger (Boston's five services; no definitions)."""
    with make_client(store_path, BOSTON_TAGGER) as c:
        yield c


@pytest.fixture(scope="module")
def zero_shot_tagger(tmp_path_factory: pytest.TempPathFactory):
    from analyzer.tagging.supervised import ZeroShotTagger

    return ZeroShotTagger(SERVICES).fit()


@pytest.fixture()
def defined_client(store_path: Path, zero_shot_tagger, tmp_path: Path) -> Iterator[TestClient]:
    """A zero-shot tagger built from a services list in which one service has a definition."""
    folder = zero_shot_tagger.save(tmp_path / "city-zero-shot")
    with make_client(store_path, folder) as c:
        yield c


# -- GET services and service definitions ---------------------------------------------------


def test_services_in_both_formats(client: TestClient) -> None:
    services, root = both(client, f"{BASE}/services")
    assert root.tag == "services"
    assert [s["service_name"] for s in services] == [
        "Abandoned Vehicle",
        "Illegal Parking",
        "Other",
        "Sidewalk Not Shoveled",
        "Unsafe Dangerous Conditions",
    ]
    for s in services:
        check_service(s)
        assert s["metadata"] is False  # a supervised tagger has no service definitions
    # jurisdiction_id is accepted (one jurisdiction per endpoint).
    same, _ = both(client, f"{BASE}/services", params={"jurisdiction_id": "boston.gov"})
    assert same == services
    # Every service's definition exists, with no attributes.
    for s in services:
        definition, root = both(client, f"{BASE}/services/{s['service_code']}")
        assert root.tag == "service_definition"
        assert definition == {"service_code": s["service_code"], "attributes": []}


def test_service_definitions_list_attributes_of_metadata_services(
    defined_client: TestClient,
) -> None:
    services, _ = both(defined_client, f"{BASE}/services")
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {"illegal-parking", "pothole", "other"}
    for s in services:
        check_service(s)
    parking = by_code["illegal-parking"]
    assert parking["metadata"] is True
    assert parking["keywords"] == "parking, hydrant, driveway" and parking["group"] == "Streets"
    assert by_code["pothole"]["metadata"] is False and by_code["pothole"]["group"] == "Streets"

    definition, root = both(defined_client, f"{BASE}/services/illegal-parking")
    spec_fields(definition, DEFINITION)
    assert root.tag == "service_definition" and definition["service_code"] == "illegal-parking"
    attrs = definition["attributes"]
    assert [a["code"] for a in attrs] == ["vehicle_type", "hours_parked"]
    for a in attrs:
        spec_fields(a, ATTRIBUTE)
        assert a["datatype"] in DATATYPES and isinstance(a["order"], int)
        assert isinstance(a["variable"], bool) and isinstance(a["required"], bool)
        for v in a["values"]:
            assert list(v) == list(VALUE)
    assert attrs[0]["required"] is True and attrs[1]["required"] is False
    assert attrs[0]["values"] == [{"key": "car", "name": "Car"}, {"key": "truck", "name": "Truck"}]
    assert attrs[1]["datatype_description"] == "a whole number of hours"
    # In XML, the spec's nesting: <attributes><attribute>…<values><value><key/><name/>.
    assert [e.text for e in root.findall("./attributes/attribute/values/value/key")] == [
        "car",
        "truck",
    ]

    plain, _ = both(defined_client, f"{BASE}/services/pothole")
    assert plain == {"service_code": "pothole", "attributes": []}
    # A service known only from the store's records (not the tagger's) has an empty definition.
    stored, _ = both(defined_client, f"{BASE}/services/abandoned-vehicle")
    assert stored["attributes"] == []
    for fmt in ("json", "xml"):
        missing = defined_client.get(f"{BASE}/services/moon-landing.{fmt}")
        assert "moon-landing" in check_errors(missing, 404, xml=fmt == "xml")


def test_a_malformed_definition_is_the_bundles_fault(
    store_path: Path, zero_shot_tagger, tmp_path: Path
) -> None:
    broken = [dict(c) for c in SERVICES]
    broken[0] = {**broken[0], "attributes": [{"code": "vehicle_type", "datatype": "colour"}]}
    original = zero_shot_tagger.categories
    zero_shot_tagger.categories = broken
    try:
        folder = zero_shot_tagger.save(tmp_path / "broken")
    finally:
        zero_shot_tagger.categories = original
    with make_client(store_path, folder) as c:
        for fmt in ("json", "xml"):
            text = check_errors(
                c.get(f"{BASE}/services/illegal-parking.{fmt}"), 503, xml=fmt == "xml"
            )
            assert "illegal-parking" in text and "attribute 1" in text
            # The other services' definitions are still served.
            assert c.get(f"{BASE}/services/pothole.{fmt}").status_code == 200


# -- POST a request, then read it back --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_then_read_back(client: TestClient, fmt: str) -> None:
    key = new_key(client)
    form = {
        "api_key": key,
        "jurisdiction_id": "boston.gov",
        "service_code": "illegal-parking",
        "description": "Van parked across the crosswalk since Monday, call 617-555-0143",
        "lat": "42.3467",
        "long": "-71.0972",
        "email": "resident@example.org",
    }
    posted = client.post(f"{BASE}/requests.{fmt}", data=form)
    assert posted.status_code == 200, posted.text
    if fmt == "xml":
        root = xml_root(posted)
        assert root.tag == "service_requests"
        [created] = xml_to_data(root)
    else:
        [created] = posted.json()
    spec_fields(created, CREATED)
    assert "token" not in created  # created in real time: the id, not a token
    rid = created["service_request_id"]
    assert rid and created["service_code"] == "illegal-parking"

    [one], root = both(client, f"{BASE}/requests/{rid}")
    assert root.tag == "service_requests" and [e.tag for e in root] == ["request"]
    check_request(one)
    assert one["service_request_id"] == rid and one["status"] == "open"
    assert one["service_code"] == "illegal-parking" and one["service_name"] == "Illegal Parking"
    assert "617-555-0143" not in one["description"] and "[PHONE]" in one["description"]
    assert one["lat"] == pytest.approx(42.3467) and one["long"] == pytest.approx(-71.0972)

    listed, _ = both(client, f"{BASE}/requests")  # the last 90 days: only this one
    assert [r["service_request_id"] for r in listed] == [rid]
    by_ids, _ = both(client, f"{BASE}/requests", params={"service_request_id": f"{rid},nope"})
    assert by_ids == [one]
    [token], root = both(client, f"{BASE}/tokens/{rid}")
    assert list(token) == list(TOKEN) and token == {"service_request_id": rid, "token": rid}


def test_requests_by_date_range_in_both_formats(client: TestClient) -> None:
    first = client.app.state.civicpulse.store.query_df(
        "SELECT strftime(min(created_at), '%Y-%m-%dT%H:%M:%SZ') AS t FROM records "
        "WHERE id LIKE 'boston:%'"
    )["t"].iloc[0]
    params = {"start_date": first, "end_date": first, "jurisdiction_id": "boston.gov"}
    old, root = both(client, f"{BASE}/requests", params=params)
    assert root.tag == "service_requests" and len(old) >= 1
    for r in old:
        check_request(r)
        assert r["requested_datetime"] == first
    assert all(r["service_request_id"].isdigit() for r in old)  # the city's own ids
    [same], _ = both(client, f"{BASE}/requests/{old[0]['service_request_id']}")
    assert same == old[0]
    # No match is an empty list / an empty <service_requests/>.
    none, root = both(client, f"{BASE}/requests", params={**params, "service_code": "nope"})
    assert none == [] and root.tag == "service_requests" and len(root) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_are_the_specs_in_each_format(client: TestClient, fmt: str) -> None:
    xml = fmt == "xml"
    missing = client.get(f"{BASE}/requests/does-not-exist.{fmt}")
    assert check_errors(missing, 404, xml=xml) == "no service request 'does-not-exist'"
    check_errors(client.get(f"{BASE}/tokens/does-not-exist.{fmt}"), 404, xml=xml)
    wide = {"start_date": "2010-01-01T00:00:00Z", "end_date": "2011-01-01T00:00:00Z"}
    assert "90 days" in check_errors(
        client.get(f"{BASE}/requests.{fmt}", params=wide), 400, xml=xml
    )
    bad_date = client.get(f"{BASE}/requests.{fmt}", params={"start_date": "yesterday"})
    assert check_errors(bad_date, 422, xml=xml).startswith("query.start_date")
    form = {"service_code": "illegal-parking", "description": "Car on the sidewalk"}
    check_errors(client.post(f"{BASE}/requests.{fmt}", data=form), 401, xml=xml)
    key = new_key(client)
    unknown = client.post(
        f"{BASE}/requests.{fmt}", data={**form, "service_code": "moon-landing", "api_key": key}
    )
    assert "moon-landing" in check_errors(unknown, 400, xml=xml)
    bad_lat = client.post(f"{BASE}/requests.{fmt}", data={**form, "lat": "999", "api_key": key})
    assert check_errors(bad_lat, 422, xml=xml).startswith("body.lat")
    # A key in the header works as well as the form field, and JSON bodies are accepted.
    as_json = client.post(
        f"{BASE}/requests.{fmt}", json=form, headers={"Authorization": f"Bearer {key}"}
    )
    assert as_json.status_code == 200, as_json.text


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_checks_the_services_attributes(defined_client: TestClient, fmt: str) -> None:
    xml = fmt == "xml"
    key = new_key(defined_client)
    form = {
        "api_key": key,
        "service_code": "illegal-parking",
        "description": "A truck blocking the hydrant on the corner",
    }
    url = f"{BASE}/requests.{fmt}"
    text = check_errors(defined_client.post(url, data=form), 400, xml=xml)
    assert "attribute[vehicle_type] is required" in text
    wrong = defined_client.post(url, data={**form, "attribute[vehicle_type]": "spaceship"})
    assert "attribute[vehicle_type]" in check_errors(wrong, 400, xml=xml)
    assert "spaceship" not in wrong.text  # answers are not echoed back
    ok = defined_client.post(
        url, data={**form, "attribute[vehicle_type]": "truck", "attribute[hours_parked]": "5"}
    )
    assert ok.status_code == 200, ok.text
    # A service without a definition needs no attributes.
    plain = defined_client.post(
        url, data={**form, "service_code": "pothole", "description": "Deep pothole on Elm St"}
    )
    assert plain.status_code == 200, plain.text
    # JSON bodies may send the answers as an "attribute" object.
    as_json = defined_client.post(
        f"{BASE}/requests.{fmt}", json={**form, "attribute": {"vehicle_type": "car"}}
    )
    assert as_json.status_code == 200, as_json.text


# -- discovery ------------------------------------------------------------------------------


def test_discovery_describes_the_endpoint(client: TestClient) -> None:
    for path in ("/open311/discovery", f"{BASE}/discovery"):
        doc, root = both(client, path)
        assert root.tag == "discovery"
        spec_fields(doc, DISCOVERY)
        assert W3C_DATETIME.match(doc["changeset"]) and doc["contact"] and doc["key_service"]
        [endpoint] = doc["endpoints"]
        spec_fields(endpoint, ENDPOINT)
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"] == "http://testserver/open311/v2"
        assert endpoint["type"] in ("production", "test")
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        # The endpoint it names answers in each format it lists.
        assert client.get(f"{BASE}/services.xml").status_code == 200
        assert client.get(f"{BASE}/services.json").status_code == 200


def test_every_route_is_documented_in_both_formats(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/open311/discovery",
        f"{BASE}/discovery",
        f"{BASE}/services",
        f"{BASE}/services/{{service_code}}",
        f"{BASE}/requests",
        f"{BASE}/requests/{{service_request_id}}",
        f"{BASE}/tokens/{{token}}",
    ):
        for fmt in ("json", "xml"):
            assert f"{route}.{fmt}" in paths, f"{route}.{fmt}"
    xml_ok = paths[f"{BASE}/services.xml"]["get"]["responses"]["200"]["content"]
    assert "text/xml" in xml_ok


# -- the tagger from any working directory ------------------------------------------------------


def test_the_shipped_tagger_is_found_from_another_folder(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_app

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings(store_path=store_path, rate_limit_per_minute=0)
    assert settings.tagger_model == "models/boston-311"  # relative, as shipped
    assert not Path(settings.tagger_model).exists()  # not from this folder
    with TestClient(create_app(settings)) as c:
        services = c.get(f"{BASE}/services.json")
        assert services.status_code == 200, services.text
        assert len(services.json()) == 5


def test_model_paths_resolve_against_the_cwd_then_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.config import PROJECT_ROOT, resolve_model_path

    assert (PROJECT_ROOT / "models" / "boston-311" / "manifest.json").is_file()
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("models/boston-311") == PROJECT_ROOT / "models" / "boston-311"
    # A folder of that name in the working directory wins (a city's own models/).
    (tmp_path / "models" / "boston-311").mkdir(parents=True)
    assert resolve_model_path("models/boston-311") == Path("models/boston-311")
    # An absolute path is kept as given; a path found nowhere too (the error names it).
    assert resolve_model_path(tmp_path / "nowhere") == tmp_path / "nowhere"
    assert resolve_model_path("models/nowhere") == Path("models/nowhere")


def test_errors_before_the_route_are_xml_on_xml_paths(client: TestClient) -> None:
    """An unknown .xml path (the app's 404) and a bad key on an .xml POST (the gateway's 401)
    answer with the spec's XML error document, as errors raised inside the routes do."""
    check_errors(client.get("/open311/v2/no-such-route.xml"), 404, xml=True)
    bad_key = client.post(
        "/open311/v2/requests.xml",
        data={"service_code": "x", "description": "pothole"},
        headers={"X-API-Key": "not-a-key"},
    )
    check_errors(bad_key, 401, xml=True)
    check_errors(client.get("/open311/v2/no-such-route.json"), 404, xml=False)
