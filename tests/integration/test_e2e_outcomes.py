"""End to end in headless Chromium: the Service delivery page over a real, analysed Boston sample.

The API and the explorer run on loopback as a user starts them (`civicpulse serve`, `civicpulse
ui`) over the Boston 311 sample that `make run` loads, ingested and analysed by the CLI. The page
passes only when it shows no error, no warning, no exception, no "Could not load" and no missing
number printed as "None"/"nan", and shows its data: outcome bars for every theme, the areas'
observed / expected with intervals, their places, and example requests with their closing
outcome, also after choosing an outcome in the drill-down.

Run with `make test-e2e` (needs Debian's chromium).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_support import CHROMIUM, CLI, MISSING_JS, api_and_explorer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
PAGE = "service-delivery"

CHARTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const traces = el._fullData || [];
  const bars = traces.filter(t => t.type === 'bar');
  const yaxis = (el._fullLayout || {}).yaxis || {};
  const cats = yaxis.type === 'category'
    ? new Set(bars.flatMap(t => Array.from(t.y || []))) : new Set();
  return {
    types: traces.map(t => t.type),
    points: traces.reduce((n, t) => n + (t._length || 0), 0),
    error_bars: traces.filter(t => t.error_x && t.error_x.visible).length,
    categories: cats.size,
    ticks: el.querySelectorAll('.ytick').length,
  };
})"""


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    folder = tmp_path_factory.mktemp("e2e-outcomes")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CIVICPULSE_API_KEY", "CIVICPULSE_API_KEY_FILE", "CIVICPULSE_API_URL")
    }
    env["CIVICPULSE_STORE_PATH"] = str(folder / "store.duckdb")
    env["PYTHONPATH"] = str(ROOT)
    cli = CLI
    sample = str(ROOT / "data_samples" / "boston_311_sample.csv")
    for args in (["ingest", sample], ["analyze"]):
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True, cwd=ROOT)
    with api_and_explorer(env, cwd=folder) as url:
        yield url


def _settle(page: Any) -> None:
    page.get_by_text("Stop", exact=True).wait_for(state="hidden", timeout=180_000)
    page.wait_for_timeout(2000)


def _table_rows(page: Any) -> list[int]:
    rows = []
    for grid in page.locator('[data-testid="stDataFrame"] [aria-rowcount]').all():
        rows.append(int(grid.get_attribute("aria-rowcount") or 0) - 1)
    return rows


def _no_problem(page: Any) -> None:
    for testid in ("stException", "stAlertContentError", "stAlertContentWarning"):
        found = page.locator(f'[data-testid="{testid}"]')
        assert found.count() == 0, (testid, found.first.inner_text())
    text = page.inner_text("body")
    for bad in ("Could not load", "Page not found", "Traceback"):
        assert bad not in text, bad
    assert page.evaluate(MISSING_JS) == []


def test_service_delivery_page_shows_outcomes_areas_and_examples(explorer: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{explorer}/{PAGE}", wait_until="networkidle", timeout=120_000)
        page.get_by_role("heading", name="Service delivery").first.wait_for(timeout=120_000)
        _settle(page)
        _no_problem(page)

        # per theme, how the city responded: one bar per theme and outcome, every theme labelled
        page.get_by_text("How the city responded, per theme").wait_for()
        charts = page.evaluate(CHARTS_JS)
        outcomes = charts[0]
        assert "bar" in outcomes["types"] and outcomes["categories"] >= 10, outcomes
        assert outcomes["ticks"] >= outcomes["categories"], outcomes
        # the areas, each with its observed / expected and interval, and where they are
        forest = next(c for c in charts if c["error_bars"])
        assert forest["points"] >= 10, forest
        assert any(c["types"] == ["scatter"] and c["points"] >= 10 for c in charts[1:]), charts
        assert page.get_by_text("areas as their mix predicts").count() == 1
        # the theme table and example requests with their outcome
        rows = _table_rows(page)
        assert len(rows) >= 2 and rows[0] >= 10 and rows[-1] >= 1, rows
        # every check above passed: only now does the README's screenshot change
        page.screenshot(path=str(SHOTS / "service_delivery.png"), full_page=True)

        # drill down: only the duplicates of the first theme, each shown with its outcome
        choice = page.get_by_role("combobox", name="Outcome")
        choice.click()
        choice.fill("duplicate")
        page.get_by_role("option", name="duplicate", exact=True).click()
        page.wait_for_timeout(1000)
        _settle(page)
        _no_problem(page)
        cells = page.locator('[data-testid="stDataFrame"]').last.locator('[role="gridcell"]')
        shown = [c.inner_text() for c in cells.all()]
        assert "duplicate" in shown, shown[:20]
        others = {"resolved / action taken", "nothing found", "referred / not the city's"}
        assert not others & set(shown), shown[:20]
        browser.close()
