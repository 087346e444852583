"""End to end in headless Chromium: the API and the explorer on loopback, every page visited.

Run with `make test-e2e` (needs Debian's chromium; `.ci/run` installs it). Screenshots go to
docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# page -> (its title, a key element that shows the page really loaded its data)
PAGES = {
    "overview": ("What residents are telling us", "Top themes"),
    "themes": ("Themes", "All themes"),
    # an alert's figures: the samples hold real surges (COVID-19 in spring 2020)
    "emerging": ("Emerging needs", "Ratio to expected"),
    "map": ("Where", "Theme"),
    "survey": ("Survey and engagement comments", "What residents wrote"),
    "tag": ("Tag a request", "Request text"),
    "data": ("Data", "Upload an export"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: int = 180) -> None:
    for _ in range(seconds * 2):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    folder = tmp_path_factory.mktemp("e2e")
    store = folder / "store.duckdb"
    env = {**os.environ, "CIVICPULSE_STORE_PATH": str(store)}
    cli = [sys.executable, "-m", "analyzer.cli.__main__"]
    # what `make run` ingests and analyzes
    samples = ("boston_311_sample.csv", "bowling_green_comments.csv", "austin_survey_comments.csv")
    for args in (["ingest", *(str(ROOT / "data_samples" / n) for n in samples)], ["analyze"]):
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [*cli, "apikey", "create", "--name", "e2e"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    api_port, ui_port = _free_port(), _free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env_ui = {**env, "CIVICPULSE_API_URL": api_url, "CIVICPULSE_API_KEY": key}
    api = subprocess.Popen(
        [*cli, "serve", "--port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ui = subprocess.Popen(
        [*cli, "ui", "--port", str(ui_port)],
        env=env_ui,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"{api_url}/healthz", api)
        _wait(f"http://127.0.0.1:{ui_port}/_stcore/health", ui)
        yield f"http://127.0.0.1:{ui_port}"
    finally:
        for p in (ui, api):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_every_page_renders_without_error(servers: str) -> None:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path, (title, key_text) in PAGES.items():
            page.goto(f"{servers}/{path}", wait_until="networkidle", timeout=120_000)
            page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
            page.get_by_text(key_text).first.wait_for(timeout=180_000)
            # wait for the script run to finish ("Stop" disappears) and the charts to draw
            page.get_by_text("Stop", exact=True).wait_for(state="hidden", timeout=180_000)
            page.wait_for_timeout(2000)
            assert page.locator('[data-testid="stException"]').count() == 0, path
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, path
            page.screenshot(path=str(SHOTS / f"{path}.png"), full_page=True)
        browser.close()
    assert len(list(SHOTS.glob("*.png"))) >= len(PAGES)
