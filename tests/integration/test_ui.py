"""Every explorer page runs against a live API (a real uvicorn server on loopback over a real store)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

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


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory):
    import uvicorn

    from analyzer.analysis.pipeline import run_analysis
    from analyzer.config import load_settings
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store
    from api.app import create_app

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
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=10)


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
    return at


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
    assert len(at.dataframe) >= 1


def test_themes_filter_from_url(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("themes.py", live_api, monkeypatch, source="survey")
    assert at.query_params["source"] == ["survey"] or at.query_params["source"] == "survey"


def test_emerging_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("emerging.py", live_api, monkeypatch)
    assert at.title[0].value == "Emerging needs"


def test_map_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("map.py", live_api, monkeypatch)
    assert at.title[0].value == "Where"


def test_survey_page(live_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run("survey.py", live_api, monkeypatch)
    assert at.subheader, "a survey theme is shown"


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
