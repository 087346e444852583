"""The "Opinion groups" page in headless Chromium, on the Bowling Green sample as `make run` loads
it (comments, their votes, an analysis for the themes), the API and the explorer on loopback.

Fails on any error or warning the page shows ("Could not load ..." included) and checks that the
page shows its data: the participant map with its points, each group's statements, the common
ground and divisive tables and the theme × group table. Run with `make test-e2e`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.live_support import CHROMIUM, CLI, api_and_explorer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
SAMPLES = ("bowling_green_comments.csv", "bowling_green_participants-votes.csv.gz")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    folder = tmp_path_factory.mktemp("e2e-opinions")
    env = {**os.environ, "CIVICPULSE_STORE_PATH": str(folder / "store.duckdb")}
    cli = CLI
    for args in (["ingest", *(str(ROOT / "data_samples" / n) for n in SAMPLES)], ["analyze"]):
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [*cli, "apikey", "create", "--name", "e2e"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with api_and_explorer(env, key=key) as url:
        yield url


def _no_trouble(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    assert page.get_by_text("Could not load").count() == 0


def test_opinion_groups_page_shows_groups_map_and_themes(servers: str) -> None:
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
        page.goto(f"{servers}/opinions", wait_until="networkidle", timeout=120_000)
        page.get_by_role("heading", name="Opinion groups").first.wait_for(timeout=120_000)
        page.get_by_text("What each group stands for").first.wait_for(timeout=180_000)
        page.get_by_text("Stop", exact=True).wait_for(state="hidden", timeout=180_000)
        page.wait_for_timeout(2000)
        _no_trouble(page)
        # the participant map: one point per participant of the sample (2,031)
        points = page.locator(".js-plotly-plot .scatterlayer .point")
        assert points.count() > 1500
        # each group with its representative statements, quoted
        assert page.get_by_text("Group A").count() >= 1
        assert page.get_by_text("Group B").count() >= 1
        assert page.locator('[data-testid="stMarkdownContainer"] blockquote').count() >= 4
        # common ground, divisive and the theme x group table, each a table with rows
        assert page.get_by_text("Common ground", exact=True).count() >= 1
        assert page.get_by_text("Divisive", exact=True).count() >= 1
        assert page.get_by_text("No themes for these statements yet").count() == 0
        assert page.locator('[data-testid="stDataFrame"]').count() >= 3
        page.screenshot(path=str(SHOTS / "opinions.png"), full_page=True)
        # the export's own groups: another computation, same checks
        page.get_by_text("the export's own groups").click()
        page.wait_for_timeout(1000)
        page.get_by_text("Stop", exact=True).wait_for(state="hidden", timeout=180_000)
        page.wait_for_timeout(2000)
        _no_trouble(page)
        assert page.locator(".js-plotly-plot .scatterlayer .point").count() > 1500
        browser.close()
