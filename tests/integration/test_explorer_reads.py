"""What the explorer reads, through the API and the CLI, on a store of two cities (issue 18):
the map aggregated server-side, filters by kind and source, growth against each source's own
latest date, emerging needs that say why there is no alert, and the explorer's own API key."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings
from tests.integration.explorer_support import LABEL, build_two_city_store


@pytest.fixture(scope="module")
def two_cities_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_two_city_store(tmp_path_factory.mktemp("two-cities"))


@pytest.fixture()
def two_cities(two_cities_file: Path, tmp_path: Path, copy_store) -> Path:
    return copy_store(two_cities_file, tmp_path)


def make_client(store_path: Path) -> TestClient:
    from api.app import create_app

    return TestClient(
        create_app(
            Settings(
                store_path=store_path,
                tagger_model=str(store_path.parent / "no-tagger-here"),
                rate_limit_per_minute=10_000,
            )
        )
    )


@pytest.fixture()
def client(two_cities: Path) -> Iterator[TestClient]:
    with make_client(two_cities) as c:
        yield c


def key_for(client: TestClient) -> dict[str, str]:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, "test")
    return {"Authorization": f"Bearer {key}"}


def run_cli(*args: str) -> int:
    from analyzer.cli import main

    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


# -- the map ---------------------------------------------------------------------------------


def test_map_counts_every_located_record_on_one_grid_per_source(client: TestClient) -> None:
    store = client.app.state.civicpulse.store
    located = dict(
        store.query_df(
            "SELECT source, count(*) AS n FROM records WHERE lat IS NOT NULL GROUP BY 1"
        ).itertuples(index=False)
    )
    out = client.get("/v1/map")
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["total"] == body["located"] == sum(located.values())
    # one grid per city, over its own extent; every located record is in a cell or counted outside
    assert {r["source"]: r["located"] for r in body["regions"]} == located
    for region in body["regions"]:
        assert sum(c["count"] for c in region["cells"]) + region["outside"] == region["located"]
        for cell in region["cells"]:
            assert region["lat_min"] <= cell["lat"] <= region["lat_max"]
            assert cell["theme_id"] in {"BOSX0001", "SPRX0001"}
            assert cell["theme_label"] == LABEL
    # a sample to draw, without text for a caller without a key
    assert body["points"] and all("text" not in p or p["text"] is None for p in body["points"])
    assert {p["source"] for p in body["points"]} == set(located)
    # two cities' "Boston" areas stay two areas
    assert {(a["source"], a["area"]) for a in body["areas"]} >= {
        ("boston", "Boston"),
        ("springfield", "Boston"),
    }


def test_map_is_bounded_whatever_the_store(client: TestClient) -> None:
    body = client.get("/v1/map", params={"points": 5, "bins": 8}).json()
    per_source: dict[str, int] = {}
    for p in body["points"]:
        per_source[p["source"]] = per_source.get(p["source"], 0) + 1
    assert per_source == {"boston": 5, "springfield": 5} and body["sampled"] is True
    assert all(len(r["cells"]) <= 8 * 8 for r in body["regions"])
    # the same sample on every call (by hashed id), and text only with a key
    again = client.get("/v1/map", params={"points": 5, "bins": 8}, headers=key_for(client))
    assert [p["id"] for p in again.json()["points"]] == [p["id"] for p in body["points"]]
    assert all(p["text"] for p in again.json()["points"])
    # the bounds are documented limits (422), not a 2,000 the explorer asked for and was refused
    assert client.get("/v1/map", params={"points": 5001}).status_code == 422
    assert client.get("/v1/map", params={"bins": 1000}).status_code == 422
    one = client.get("/v1/map", params={"theme_id": "SPRX0001"}).json()
    assert [r["source"] for r in one["regions"]] == ["springfield"]


# -- kind and source, growth -------------------------------------------------------------------


def test_themes_filter_by_kind_and_growth_uses_each_sources_own_end(client: TestClient) -> None:
    items = client.get("/v1/themes").json()["items"]
    by_id = {t["theme_id"]: t for t in items}
    assert set(by_id) == {"BOSX0001", "SPRX0001"}
    # Springfield's export ends ten months before Boston's: its growth is measured against its
    # own last 28 days (18 records) and the 28 before (12), not Boston's (none of its records)
    for tid in by_id:
        assert by_id[tid]["growth"] == 0.5, by_id[tid]
    assert {t["source"] for t in items} == {"boston", "springfield"}
    assert client.get("/v1/themes/SPRX0001").json()["growth"] == 0.5
    assert client.get("/v1/themes", params={"kind": "311"}).json()["total"] == 2
    assert client.get("/v1/themes", params={"kind": "survey"}).json()["total"] == 0
    assert client.get("/v1/stats", params={"kind": "survey"}).json()["records"] == 0
    assert client.get("/v1/stats", params={"kind": "311"}).json()["records"] == 80
    assert client.get("/v1/map", params={"kind": "survey"}).json()["total"] == 0
    assert client.get("/v1/emerging", params={"kind": "311"}).status_code == 200


def test_kind_of_a_store_written_before_the_kind_column(two_cities: Path) -> None:
    """Read-only (so not migrated), an older store's records have no kind: a record's kind is
    then its source's name, as it had to be."""
    from analyzer.queries import Filters, Page, list_themes
    from analyzer.store.database import Store

    con = duckdb.connect(str(two_cities))
    con.execute("ALTER TABLE records DROP COLUMN kind")
    con.close()
    with Store(two_cities, read_only=True) as store:
        got = list_themes(store, Filters(kind="springfield"), Page())
        assert [t["theme_id"] for t in got["items"]] == ["SPRX0001"]


# -- emerging needs explain themselves -------------------------------------------------------


def test_emerging_says_why_there_is_no_alert(client: TestClient) -> None:
    assert client.get("/v1/emerging").json()["items"] == []
    why = client.get("/v1/emerging/explain").json()
    reasons = {s["source"]: s["reason"] for s in why["sources"]}
    assert "too few records" in reasons["boston"] and "at least 10" in reasons["boston"]
    assert "too little history" in reasons["springfield"]
    assert "8 weeks" in reasons["springfield"] and "12 weeks in all" in reasons["springfield"]
    assert why["detector"]["windows"] == 4 and why["detector"]["min_count"] == 10
    only = client.get("/v1/emerging/explain", params={"source": "springfield"}).json()
    assert [s["source"] for s in only["sources"]] == ["springfield"]
    none = client.get("/v1/emerging/explain", params={"source": "nyc311"}).json()
    assert "no records with source 'nyc311'" in none["reason"]
    assert "boston" in none["reason"] and "springfield" in none["reason"]


def test_emerging_cli_explains_and_filters(
    two_cities: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("emerging", "--store", str(two_cities)) == 0
    out = capsys.readouterr().out
    assert "too few records" in out and "too little history" in out
    assert run_cli("emerging", "--store", str(two_cities), "--source", "springfield") == 0
    out = capsys.readouterr().out
    assert "springfield" in out and "boston" not in out
    assert run_cli("emerging", "--store", str(two_cities), "--kind", "survey") == 0
    assert "no records with kind 'survey'" in capsys.readouterr().out
    # beside JSON the reason goes to stderr, and stdout stays JSON
    assert run_cli("emerging", "--store", str(two_cities), "--format", "json") == 0
    res = capsys.readouterr()
    assert json.loads(res.out) == [] and "too little history" in res.err


def test_themes_cli_filters_by_kind_and_says_why_empty(
    two_cities: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("themes", "--store", str(two_cities), "--kind", "311", "--format", "csv") == 0
    out = capsys.readouterr().out
    assert "BOSX0001" in out and "SPRX0001" in out and "springfield" in out
    assert run_cli("themes", "--store", str(two_cities), "--source", "311") == 0
    out = capsys.readouterr().out
    assert "no themes with --source 311" in out and "boston (50)" in out
    assert (
        run_cli("themes", "--store", str(two_cities), "--kind", "survey", "--format", "json") == 0
    )
    res = capsys.readouterr()
    assert json.loads(res.out) == [] and "no themes with --kind survey" in res.err


def test_emerging_alert_kind_is_its_own_parameter(
    api_store_file: Path, tmp_path: Path, copy_store
) -> None:
    """``kind`` is the records' kind on every route; the alert's kind is ``alert_kind``."""
    with make_client(copy_store(api_store_file, tmp_path)) as c:
        # the fixture's one alert is a "spike" on a theme of Boston 311 requests
        assert c.get("/v1/emerging", params={"kind": "311"}).json()["total"] == 1
        assert c.get("/v1/emerging", params={"kind": "survey"}).json()["total"] == 0
        assert c.get("/v1/emerging", params={"alert_kind": "spike"}).json()["total"] == 1
        assert c.get("/v1/emerging", params={"alert_kind": "surge"}).json()["total"] == 0


def test_emerging_cli_table_shows_the_week_as_a_day(
    api_store_file: Path,
    tmp_path: Path,
    copy_store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # one line per row
    store = copy_store(api_store_file, tmp_path)
    assert run_cli("emerging", "--store", str(store)) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "REQ0002" in line)
    assert re.search(r"│ 20[0-9]{2}-[0-9]{2}-[0-9]{2} +│", row), row  # the day, no time or offset


# -- the explorer's API key --------------------------------------------------------------------


def test_serve_provisions_the_explorers_key_and_ui_finds_it(
    two_cities: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.cli.serve import explorer_key_file, provision_explorer_key, ui_environment
    from analyzer.config import load_settings
    from api.keys import create_key, verify_key

    monkeypatch.delenv("CIVICPULSE_API_KEY", raising=False)
    monkeypatch.delenv("CIVICPULSE_API_KEY_FILE", raising=False)
    monkeypatch.setenv("CIVICPULSE_STORE_PATH", str(two_cities))
    settings = load_settings()
    path = explorer_key_file(settings)
    assert path == two_cities.parent.resolve() / "explorer_api_key"
    assert provision_explorer_key(two_cities, path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert provision_explorer_key(two_cities, path) is False  # a live key is kept
    assert path.read_text().strip() == key
    # the explorer, started from any directory, is pointed at that file
    env = ui_environment(settings, {"PATH": os.environ.get("PATH", "")})
    assert env["CIVICPULSE_API_KEY_FILE"] == str(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIVICPULSE_API_KEY_FILE", env["CIVICPULSE_API_KEY_FILE"])
    from ui.client import api_key

    assert api_key() == key
    with make_client(two_cities) as c:
        assert verify_key(c.app.state.civicpulse.store, key) is not None
        got = c.get("/v1/records", params={"limit": 3}, headers={"X-API-Key": key})
        assert got.status_code == 200 and len(got.json()["items"]) == 3
        # another store's key in the file is replaced at the next start
        other, _ = create_key(c.app.state.civicpulse.store, "other")
    path.write_text("cp_000000000000.notakeyofthisstorexxxxxxxxxxxxxxxxxxxxxxxx\n")
    assert provision_explorer_key(two_cities, path) is True
    assert path.read_text().strip() not in ("", key, other)


def test_explorer_says_how_it_gets_its_key_on_401(
    two_cities: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.client import ApiError, Client

    monkeypatch.delenv("CIVICPULSE_API_KEY", raising=False)
    key_file = tmp_path / "explorer_api_key"
    monkeypatch.setenv("CIVICPULSE_API_KEY_FILE", str(key_file))
    with make_client(two_cities) as http:
        api = Client(find_key=True, http=http)
        with pytest.raises(ApiError) as err:
            api.get("/v1/records", limit=1)
        message = str(err.value)
        assert message.startswith("401") and str(key_file) in message
        assert "civicpulse serve" in message and "CIVICPULSE_API_KEY" in message
        # the key file written after the explorer started is picked up without a restart
        store = http.app.state.civicpulse.store
        from api.keys import create_key

        key, _ = create_key(store, "explorer")
        key_file.write_text(key + "\n")
        assert len(api.get("/v1/records", limit=1)["items"]) == 1


# -- the Tag page's tagger, from any folder ------------------------------------------------------


def test_the_shipped_tagger_answers_post_tag_from_another_folder(
    two_cities: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default ``tagger_model`` ("models/boston-311") resolved against the working directory:
    an API started elsewhere than the repository answered POST /v1/tag with 503."""
    from api.app import create_app

    monkeypatch.delenv("CIVICPULSE_TAGGER_MODEL", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings(store_path=two_cities, rate_limit_per_minute=10_000)
    assert not Path(settings.tagger_model).is_absolute()
    assert not Path(settings.tagger_model).exists()  # not in this folder
    with TestClient(create_app(settings)) as c:
        got = c.post("/v1/tag", json={"text": "Car parked across my driveway since this morning"})
    assert got.status_code == 200, got.text
    assert got.json()["results"][0]["label"]
