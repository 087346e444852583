"""Every explorer page runs against a live API (a real uvicorn server on loopback over a real store)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "ui" / "views"

# A live uvicorn server over an analysed store: `make test-slow`.
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(settings) -> Iterator[str]:
    """A real uvicorn server over ``settings``' store on loopback, for as long as the caller."""
    import uvicorn

    from api.app import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory):
    from analyzer.analysis.pipeline import run_analysis
    from analyzer.config import load_settings
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    folder = tmp_path_factory.mktemp("ui")
    boston = pd.read_csv(ROOT / "data_samples" / "boston_311_sample.csv", dtype=str)
    boston = boston[boston["description"].fillna("").str.len() > 20].sample(n=400, random_state=3)
    boston.to_csv(folder / "boston.csv", index=False)
    austin = pd.read_csv(ROOT / "data_samples" / "austin_survey_comments.csv", dtype=str).head(200)
    austin.to_csv(folder / "austin.csv", index=False)
    store_path = folder / "store.duckdb"
    settings = load_settings().with_overrides(store_path=store_path)
    with Store(store_path) as store:
        ingest_file(store, folder / "boston.csv", profile="boston", progress=False)
        ingest_file(store, folder / "austin.csv", profile="survey", progress=False)
        run_analysis(store, settings)
        from api.keys import create_key

        key, _ = create_key(store, "explorer-test")
    for url in _serve(settings):
        yield url, key


@pytest.fixture(scope="module")
def two_cities_api(tmp_path_factory: pytest.TempPathFactory):
    """Two cities of kind 311 whose exports end ten months apart, each one theme "parking"."""
    from analyzer.config import load_settings
    from analyzer.store.database import Store
    from api.keys import create_key
    from tests.integration.explorer_support import build_two_city_store

    store_path = build_two_city_store(tmp_path_factory.mktemp("ui-two-cities"))
    with Store(store_path) as store:
        key, _ = create_key(store, "explorer-test")
    for url in _serve(load_settings().with_overrides(store_path=store_path)):
        yield url, key


def _run(page: str, api: tuple[str, str], monkeypatch: pytest.MonkeyPatch, **query: str):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CIVICPULSE_API_URL", api[0])
    monkeypatch.setenv("CIVICPULSE_API_KEY", api[1])
    from ui.common import cached_get, client

    client.clear()
    cached_get.clear()
    at = AppTest.from_file(str(VIEWS / page), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # a page that could not load its data says so in a warning: that is a broken page
    assert not at.warning, [w.value for w in at.warning]
    return at


def _figures(at) -> list[dict]:
    """The plotly figures a page drew, as their JSON specs."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _points(fig: dict, types: tuple[str, ...] = ("scatter", "scattergl")) -> int:
    """Points drawn by a figure's traces of these types (plotly may send arrays base64-packed)."""
    n = 0
    for trace in fig["data"]:
        if trace.get("type", "scatter") in types:
            x = trace.get("x")
            if isinstance(x, dict):  # {"dtype": ..., "bdata": ...}
                size = np.dtype(x["dtype"]).itemsize
                n += len(base64.b64decode(x["bdata"])) // size
            else:
                n += len(x or [])
    return n


def _values(x: object) -> np.ndarray:
    """A trace's values, whether plotly sent a list or a base64-packed array."""
    if isinstance(x, dict):
        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]))
    return np.asarray(x, dtype=float)


def test_overview(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("overview.py", live_api, monkeypatch)
    assert at.title[0].value == "What residents are telling us"
    labels = [m.label for m in at.metric]
    assert "Requests and comments" in labels and "Themes" in labels
    assert int(at.metric[0].value.replace(",", "")) == 600


def test_themes_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("themes.py", live_api, monkeypatch)
    assert at.header, "a theme page is shown"
    assert any("Keywords" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert len(table) >= 2
    # a missing number shows as "–", never as None / NaN (the explorer drew "None")
    # each theme's main city category and its share: where themes and categories agree
    cats = [c for c in table["main category"].tolist() if c != "–"]
    assert len(cats) >= 1 and all(s.endswith("%") for s in table["its share"] if s != "–")
    for col in ("growth (28 d)", "sentiment"):
        shown = table[col].tolist()
        assert all(isinstance(v, str) and v and v != "None" for v in shown), (col, shown)
    assert _points(_figures(at)[0]) >= 100


def test_theme_page_shows_how_the_city_responded(
    live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _run("themes.py", live_api, monkeypatch, source="311")
    assert "How the city responded" in [s.value for s in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Closed"].replace(",", "")) > 0
    assert metrics["Median days to close"] != "–"
    shares = _figures(at)[-1]  # the closing outcomes of the theme's requests, as shares
    assert {d["name"] for d in shares["data"]} <= {
        "resolved / action taken",
        "nothing found",
        "duplicate",
        "referred / not the city's",
        "administratively closed",
        "unknown",
    }
    assert abs(sum(float(np.sum(_values(d["x"]))) for d in shares["data"]) - 1) < 0.01


def test_themes_filter_from_url(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("themes.py", live_api, monkeypatch, source="survey")
    assert at.query_params["source"] == ["survey"] or at.query_params["source"] == "survey"


def test_emerging_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("emerging.py", live_api, monkeypatch)
    assert at.title[0].value == "Emerging needs"


def test_map_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("map.py", live_api, monkeypatch)
    assert at.title[0].value == "Where"
    metrics = {m.label: int(m.value.replace(",", "")) for m in at.metric}
    assert metrics["With coordinates"] >= 350 and metrics["Drawn as points"] >= 350
    where, areas = _figures(at)
    # every located request counted on the grid, a sample drawn as points coloured by theme
    assert where["data"][0]["type"] == "heatmap"
    assert _points(where) == metrics["Drawn as points"]
    assert len(areas["data"]) >= 2


def test_survey_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("survey.py", live_api, monkeypatch)
    assert at.subheader, "a survey theme is shown"
    # only sources of kind survey or engagement are offered (not the 311 requests)
    assert at.radio[0].options == ["survey"]
    themes = _figures(at)[0]
    bars = len(themes["data"][0]["y"])
    # one label per bar: the chart is tall enough that plotly hides none
    assert len(themes["layout"]["yaxis"]["ticktext"]) == bars and bars >= 3
    assert themes["layout"]["height"] >= 24 * bars


def test_tag_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("tag.py", live_api, monkeypatch)
    at.text_area[0].input("Car parked on the sidewalk blocking the wheelchair ramp for two days")
    at.button[0].click().run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert labels["Category"] in {
        "Illegal Parking",
        "Abandoned Vehicle",
        "Other",
        "Sidewalk Not Shoveled",
        "Unsafe Dangerous Conditions",
    }


def test_data_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("data.py", live_api, monkeypatch)
    assert at.title[0].value == "Data"


# -- two cities in one store ------------------------------------------------------------------


def test_overview_keeps_two_cities_apart(
    two_cities_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _run("overview.py", two_cities_api, monkeypatch)
    volume, _mood, top = _figures(at)
    # one weekly line per city, and one bar per theme although both are labelled "parking"
    assert sorted(t["name"] for t in volume["data"]) == ["boston", "springfield"]
    assert sorted(y for t in top["data"] for y in t["y"]) == ["BOSX0001", "SPRX0001"]
    assert sorted(top["layout"]["yaxis"]["ticktext"]) == [
        "parking · boston",
        "parking · springfield",
    ]
    # no alert: the page says why instead of a bare "no emerging needs"
    assert any("too little history" in i.value for i in at.info)


def test_map_draws_each_city_on_its_own_grid(
    two_cities_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _run("map.py", two_cities_api, monkeypatch)
    assert at.radio[0].options == ["boston (50)", "springfield (30)"]
    where = _figures(at)[0]
    assert _points(where) == 50  # every Boston record: fewer than the sample's bound
    at.radio[0].set_value("springfield").run()
    assert not at.warning
    assert _points(_figures(at)[0]) == 30


def test_emerging_page_explains_no_alert(
    two_cities_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _run("emerging.py", two_cities_api, monkeypatch, kind="311")
    assert "too few records" in at.info[0].value and "too little history" in at.info[0].value
    table = at.dataframe[0].value
    assert table["source"].tolist() == ["boston", "springfield"]
