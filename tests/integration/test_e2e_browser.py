"""End to end in headless Chromium: the API and the explorer on loopback, every page visited.

Set up as a user would: the samples `make run` loads, ingested and analysed by the CLI, then
`civicpulse serve` and `civicpulse ui` started from another directory with no API key given (the
explorer must find the key `serve` provisions). A page passes only when it shows no error, no
warning, no "Could not load" and no dialog, and shows its data: charts with points or bars (every
bar labelled), tables with rows, an alert with its figures, a tagged request.

Run with `make test-e2e` (needs Debian's chromium; `.ci/run` installs it). The screenshots are
written to docs/screenshots/ (the README shows them) only when every page passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_support import CHROMIUM, CLI, MISSING_JS, api_and_explorer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1300}

# Per chart: its traces' types and points, its bars' categories and the labels drawn for them.
CHARTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const traces = el._fullData || [];
  const bars = traces.filter(t => t.type === 'bar');
  const horizontal = bars.some(t => t.orientation === 'h');
  const axis = (el._fullLayout || {})[horizontal ? 'yaxis' : 'xaxis'] || {};
  // only a category axis must label every bar (a date axis labels its own ticks)
  const cats = axis.type === 'category'
    ? new Set(bars.flatMap(t => Array.from((horizontal ? t.y : t.x) || []))) : new Set();
  return {
    types: traces.map(t => t.type),
    points: traces.reduce((n, t) => n + (t._length || 0), 0),
    heatmap: traces.some(t => t.type === 'heatmap' && t.z && t.z.length > 0),
    categories: cats.size,
    ticks: el.querySelectorAll(horizontal ? '.ytick' : '.xtick').length,
  };
})"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    folder = tmp_path_factory.mktemp("e2e")
    store = folder / "store.duckdb"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CIVICPULSE_API_KEY", "CIVICPULSE_API_KEY_FILE", "CIVICPULSE_API_URL")
    }
    env["CIVICPULSE_STORE_PATH"] = str(store)
    cli = CLI
    # what `make run` ingests and analyzes
    samples = ("boston_311_sample.csv", "bowling_green_comments.csv", "austin_survey_comments.csv")
    for args in (["ingest", *(str(ROOT / "data_samples" / n) for n in samples)], ["analyze"]):
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True, cwd=ROOT)
    env["PYTHONPATH"] = str(ROOT)
    # started elsewhere than the repository, and no key given: `serve` provisions the explorer's
    with api_and_explorer(env, cwd=folder) as url:
        assert (folder / "explorer_api_key").is_file(), "serve did not provision the explorer key"
        yield url


# -- what each page must show -----------------------------------------------------------------


def _charts(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(CHARTS_JS)


def _table_rows(page: Any) -> list[int]:
    """Data rows of each table (the grid's row count less its header)."""
    rows = []
    for grid in page.locator('[data-testid="stDataFrame"] [aria-rowcount]').all():
        rows.append(int(grid.get_attribute("aria-rowcount") or 0) - 1)
    return rows


def _metric(page: Any, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def check_labels(path: str, charts: list[dict[str, Any]]) -> None:
    for chart in charts:
        if "bar" in chart["types"]:
            assert chart["ticks"] >= chart["categories"], (path, "bars without a label", chart)


def check_overview(page: Any) -> None:
    assert int(_metric(page, "Requests and comments").replace(",", "")) > 8000
    charts = _charts(page)
    volume, mood, top = charts[:3]
    assert volume["points"] > 100 and mood["points"] > 100
    assert "bar" in top["types"] and top["categories"] == 10
    assert page.get_by_text("expected (×").count() >= 3  # the strongest alerts, with figures


def check_themes(page: Any) -> None:
    charts = _charts(page)
    assert charts[0]["points"] >= 1000, charts[0]  # the map of texts
    rows = _table_rows(page)
    assert rows and rows[0] >= 20, rows  # every theme in the table


def check_emerging(page: Any) -> None:
    assert page.get_by_text("Ratio to expected").count() >= 3  # alert cards with their figures
    charts = _charts(page)
    assert len(charts) >= 2 and all(c["points"] >= 2 for c in charts[:2]), charts[:2]
    quotes = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="“")
    assert quotes.count() >= 3  # examples in residents' words


def check_map(page: Any) -> None:
    where = _charts(page)[0]
    assert where["heatmap"], where  # every located request, counted per cell
    assert where["points"] >= 1000, where  # and a sample drawn as points
    assert page.get_by_text("By area").count() == 1


def check_survey(page: Any) -> None:
    charts = _charts(page)
    assert charts[0]["categories"] >= 10, charts[0]
    page.get_by_text("What residents wrote").wait_for()
    assert page.locator("blockquote").count() >= 3


def check_tag(page: Any) -> None:
    page.get_by_role("textbox").first.fill(
        "Car parked on the sidewalk blocking the wheelchair ramp for two days"
    )
    page.get_by_role("button", name="Tag").click()
    page.locator('[data-testid="stMetric"]').filter(has_text="Confidence").wait_for()
    _settle(page)
    assert _metric(page, "Category") not in ("", "–")
    assert _table_rows(page) and _table_rows(page)[0] >= 2  # the alternatives


def check_data(page: Any) -> None:
    rows = _table_rows(page)
    assert rows and rows[0] == 3, rows  # the three sources
    assert sum(rows) >= 5


# page path -> (its title, what it must show)
PAGES: dict[str, tuple[str, Callable[[Any], None]]] = {
    "": ("What residents are telling us", check_overview),
    "themes": ("Themes", check_themes),
    "emerging": ("Emerging needs", check_emerging),
    "map": ("Where", check_map),
    "survey": ("Survey and engagement comments", check_survey),
    "tag": ("Tag a request", check_tag),
    "data": ("Data", check_data),
}


def _settle(page: Any) -> None:
    """Wait for the script run to finish ("Stop" disappears) and the charts to draw."""
    page.get_by_text("Stop", exact=True).wait_for(state="hidden", timeout=180_000)
    page.wait_for_timeout(2000)


def check_no_problem(path: str, page: Any) -> None:
    """No error, warning, exception or dialog, and nothing that could not load."""
    for testid in ("stException", "stAlertContentError", "stAlertContentWarning"):
        found = page.locator(f'[data-testid="{testid}"]')
        assert found.count() == 0, (path, testid, found.first.inner_text())
    assert page.locator('[role="dialog"]').count() == 0, (path, "a dialog is open")
    text = page.inner_text("body")
    for bad in ("Could not load", "Page not found"):
        assert bad not in text, (path, bad)
    # a missing number shows as "–": no element reads "None" or "nan" on its own
    assert page.evaluate(MISSING_JS) == [], path
    check_labels(path, _charts(page))


def test_every_page_renders_its_data(servers: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
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
        page = browser.new_page(viewport=VIEWPORT)
        for path, (title, check) in PAGES.items():
            page.goto(f"{servers}/{path}", wait_until="networkidle", timeout=120_000)
            page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
            _settle(page)
            check_no_problem(path or "overview", page)
            check(page)
            check_no_problem(path or "overview", page)
            page.screenshot(path=str(shots / f"{path or 'overview'}.png"))
        # pages added since (their own tests check their data): at least nothing broken
        links = page.locator('[data-testid="stSidebarNav"] a').evaluate_all(
            "els => els.map(e => new URL(e.href).pathname.replace(/^\\//, ''))"
        )
        for path in sorted(set(links) - set(PAGES)):
            page.goto(f"{servers}/{path}", wait_until="networkidle", timeout=120_000)
            _settle(page)
            check_no_problem(path, page)
        browser.close()
    # only a run where every page passed replaces the README's screenshots
    SHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.glob("*.png"):
        shutil.copyfile(shot, SHOTS / shot.name)
    assert len(list(shots.glob("*.png"))) == len(PAGES)
