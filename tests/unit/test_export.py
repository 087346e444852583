"""A theme's exports: the formula guard, the records CSV (redacted, streamed, merges followed), the
one-page HTML report, their API routes (200 / 401 / 404) and CLI commands (exit 0 / 2), and theme
renames and merges surviving the next analysis.

The export tests run on real ingested Boston rows with analysis tables derived from them
(tests/integration/api_support.py); the re-analysis test runs the real pipeline on a small sample.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analyzer.cli import main
from analyzer.config import Settings
from analyzer.queries import (
    Filters,
    Page,
    ThemeNotFoundError,
    merge_themes,
    rename_theme,
    theme_detail,
)
from analyzer.reports.export import csv_cell, iter_csv, neutralise_formula, safe_filename
from analyzer.reports.report import RECORD_CSV_COLUMNS, theme_records_csv, theme_report_html
from analyzer.store.database import Store
from tests.integration.api_support import (
    EXPORT_EMAIL,
    EXPORT_PHONE,
    FORMULA_ID,
    OTHER,
    PARKING,
    RUN_ID,
)

ROOT = Path(__file__).resolve().parents[2]
PHONE, EMAIL, PLANTED_ID = EXPORT_PHONE, EXPORT_EMAIL, FORMULA_ID
THEME = PARKING


# -- the guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-71.1311", "-71.1311"),  # a longitude is a number, not a formula
        ("+1e5", "+1e5"),
        ("a = b + c", "a = b + c"),  # only the first character matters
        ("", ""),
    ],
)
def test_neutralise_formula(value: str, expected: str) -> None:
    assert neutralise_formula(value) == expected


def test_ingest_cli_uses_the_core_guard() -> None:
    from analyzer.cli import ingest

    assert ingest.neutralise_formula is neutralise_formula


def test_csv_cells_and_streamed_pieces_round_trip() -> None:
    assert csv_cell(None) == "" and csv_cell(float("nan")) == ""
    assert csv_cell(pd.Timestamp("2020-04-02 13:00", tz="America/New_York").to_pydatetime()) == (
        "2020-04-02T17:00:00Z"
    )
    assert csv_cell(["a", "b"]) == '["a", "b"]' and csv_cell(0.5) == 0.5
    rows = [
        ["1", 'quote " and, comma', "=cmd()"],
        ["2", "two\nlines", "-5"],
        ["3", "@x", None],
    ]
    pieces = list(iter_csv(["id", "text", "other"], [rows[:2], [], rows[2:]]))
    assert len(pieces) == 3  # header, then one piece per non-empty chunk
    back = list(csv.reader(io.StringIO("".join(pieces))))
    assert back == [
        ["id", "text", "other"],
        ["1", 'quote " and, comma', "'=cmd()"],
        ["2", "two\nlines", "-5"],
        ["3", "'@x", ""],
    ]
    # Every cell is quoted, so no separator inside a text can open a new cell.
    assert pieces[1].startswith('"1","quote "" and, comma"')


def test_safe_filename() -> None:
    assert safe_filename("REQ0001.03", "records.csv") == "theme-REQ0001.03-records.csv"
    assert safe_filename('a"b/..\\c é', "report.html") == "theme-a_b_.._c__-report.html"


# -- a store of real rows with a planted record -----------------------------------------------


@pytest.fixture()
def store_path(api_store_file: Path, tmp_path: Path, copy_store) -> Path:
    """A copy of the session's API store (tests/integration/api_support.py), whose planted
    ``FORMULA_ID`` request is a formula with a phone number and an email in it."""
    path = copy_store(api_store_file, tmp_path)
    with Store(path) as store:
        # Even when the raw text was kept (--keep-raw), no export may carry it.
        store.execute("UPDATE records SET raw_text = 'RAW-SECRET ' || text")
    return path


@pytest.fixture()
def store(store_path: Path):
    with Store(store_path) as s:
        yield s


def _read(pieces) -> pd.DataFrame:
    return pd.read_csv(io.StringIO("".join(pieces)), dtype=str, keep_default_na=False)


def test_records_csv_is_redacted_guarded_and_complete(store: Store) -> None:
    text = "".join(theme_records_csv(store, THEME))
    assert PHONE not in text and EMAIL not in text and "RAW-SECRET" not in text
    df = _read([text])
    assert tuple(df.columns) == RECORD_CSV_COLUMNS
    size = theme_detail(store, THEME)["size"]
    assert (
        len(df)
        == size
        == int(store.scalar("SELECT count(*) FROM records WHERE category = 'Illegal Parking'"))
    )
    assert set(df["theme_id"]) == {THEME} and (df["subtheme_id"] != "").all()
    planted = df.loc[df["id"] == PLANTED_ID, "text"].iloc[0]
    assert planted.startswith("'=HYPERLINK(")  # guarded against formula injection
    assert "[PHONE]" in planted and "[EMAIL]" in planted
    # Oldest first, and every cell of a text column that starts like a formula is guarded.
    assert df["created_at"].tolist() == sorted(df["created_at"])
    for col in ("text", "category", "area", "theme_label", "subtheme_label"):
        assert not df[col].str.match(r"^[=+@\t\r]").any()


def test_records_csv_chunks_filters_and_merges(store: Store) -> None:
    whole = "".join(theme_records_csv(store, THEME))
    assert "".join(theme_records_csv(store, THEME, chunk_rows=2)) == whole
    first = _read([whole])["created_at"].iloc[0]
    day = pd.Timestamp(first).normalize().to_pydatetime()
    later = _read(theme_records_csv(store, THEME, Filters(since=day + pd.Timedelta(days=1))))
    assert (later["created_at"] > first).all() and len(later) < len(_read([whole]))
    assert _read(theme_records_csv(store, THEME, Filters(category="Other"))).empty
    other = _read(theme_records_csv(store, OTHER))
    merge_themes(store, OTHER, THEME)
    merged = _read(theme_records_csv(store, THEME, chunk_rows=3))
    assert len(merged) == len(_read([whole])) + len(other)
    assert set(merged["theme_id"]) == {THEME}  # merged records count toward the target
    # The merged theme's own id answers with the theme it was merged into, as its page does.
    assert _read(theme_records_csv(store, OTHER)).equals(merged)
    # A sub-theme exports its own records only.
    sub = theme_detail(store, THEME)["subthemes"][0]
    part = _read(theme_records_csv(store, sub["theme_id"]))
    assert len(part) == sub["size"] and set(part["subtheme_id"]) == {sub["theme_id"]}


def test_unknown_theme_raises_before_anything_is_written(store: Store) -> None:
    with pytest.raises(ThemeNotFoundError):
        theme_records_csv(store, "no-such-theme")
    with pytest.raises(ThemeNotFoundError):
        theme_report_html(store, "no-such-theme")


def test_report_html_is_self_contained_with_charts_quotes_and_no_pii(store: Store) -> None:
    rename_theme(store, THEME, "Cars <b>blocking</b> hydrants")
    page = theme_report_html(store, THEME, Filters(source="311"))
    detail = theme_detail(store, THEME, Filters(source="311"))
    assert page.startswith("<!DOCTYPE html>")
    assert "Cars &lt;b&gt;blocking&lt;/b&gt; hydrants" in page and "<b>blocking</b>" not in page
    for chart in ("chart-weekly", "chart-areas", "chart-sentiment"):
        assert f'id="{chart}"' in page
    assert "Plotly.newPlot" in page and "<script src" not in page  # plotly.js is inline
    assert "Records per week" in page and "Sentiment of the records" in page
    assert detail["examples"]
    for ex in detail["examples"]:
        assert html.escape(ex["text"][:40]) in page
    assert PHONE not in page and EMAIL not in page and "RAW-SECRET" not in page
    assert "source = 311" in page and RUN_ID in page and "Generated " in page
    assert "Emerging-needs alerts" in page and "spike" in page  # the fixture's alert is on THEME
    assert "renamed from" in page
    # A theme colour from the same function the explorer uses.
    from analyzer.reports.colors import theme_color

    assert theme_color(THEME) in page


def test_report_with_no_records_under_the_filters(store: Store) -> None:
    page = theme_report_html(store, THEME, Filters(category="nothing-like-this"))
    assert "No dated records under these filters." in page
    assert "No records under these filters." in page


# -- the API -----------------------------------------------------------------------------------


def _client(store_path: Path, **overrides: object) -> TestClient:
    from api.app import create_app

    settings = Settings(
        store_path=store_path,
        tagger_model=str(store_path.parent / "no-tagger-here"),
        rate_limit_per_minute=10_000,
    ).with_overrides(**overrides)
    return TestClient(create_app(settings))


def _key(client: TestClient) -> dict[str, str]:
    from api.keys import create_key

    key, _ = create_key(client.app.state.civicpulse.store, "export-test")
    return {"Authorization": f"Bearer {key}"}


def test_api_records_csv_needs_a_key_and_is_redacted(store_path: Path) -> None:
    with _client(store_path) as c:
        url = f"/v1/themes/{THEME}/records.csv"
        denied = c.get(url)
        assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
        headers = _key(c)
        ok = c.get(url, headers=headers)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "text/csv; charset=utf-8"
        assert ok.headers["content-disposition"] == (
            f'attachment; filename="theme-{THEME}-records.csv"'
        )
        assert PHONE not in ok.text and EMAIL not in ok.text and "RAW-SECRET" not in ok.text
        df = _read([ok.text])
        assert len(df) == c.get(f"/v1/themes/{THEME}").json()["size"]
        assert "'=HYPERLINK(" in ok.text
        only = c.get(url, params={"until": "2000-01-01"}, headers=headers)
        assert only.status_code == 200 and _read([only.text]).empty
        missing = c.get("/v1/themes/nope/records.csv", headers=headers)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        bad = c.get(url, params={"since": "yesterday"}, headers=headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["path"] == "query.since"
        paths = c.get("/openapi.json").json()["paths"]
        assert "/v1/themes/{theme_id}/records.csv" in paths
        assert "/v1/themes/{theme_id}/report.html" in paths


def test_api_report_follows_the_theme_read_rules(store_path: Path) -> None:
    with _client(store_path) as c:
        ok = c.get(f"/v1/themes/{THEME}/report.html", params={"source": "311"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/html")
        assert ok.headers["content-disposition"] == (
            f'inline; filename="theme-{THEME}-report.html"'
        )
        assert "illegal parking" in ok.text and PHONE not in ok.text and EMAIL not in ok.text
        assert c.get("/v1/themes/nope/report.html").status_code == 404
    with _client(store_path, read_public=False) as c:
        assert c.get(f"/v1/themes/{THEME}/report.html").status_code == 401
        assert c.get(f"/v1/themes/{THEME}/report.html", headers=_key(c)).status_code == 200


# -- the CLI -----------------------------------------------------------------------------------


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_cli_themes_export_and_report(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ["--store", str(store_path)]
    out = tmp_path / "out" / "t.csv"
    code, _, err = cli(["themes", "export", THEME, "--out", str(out), *s], capsys)
    assert code == 0, err
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert tuple(df.columns) == RECORD_CSV_COLUMNS and PHONE not in out.read_text("utf-8")
    assert f"({len(df)} records of theme {THEME})" in err
    code, _, err = cli(
        ["themes", "export", THEME, "--out", str(out), "--until", "2000-01-01", *s], capsys
    )
    assert code == 0 and pd.read_csv(out).empty
    html_out = tmp_path / "r.html"
    code, _, err = cli(["themes", "report", THEME, "--out", str(html_out), *s], capsys)
    assert code == 0, err
    page = html_out.read_text("utf-8")
    assert 'id="chart-weekly"' in page and PHONE not in page and EMAIL not in page
    # The table command keeps its contract.
    code, table, _ = cli(["themes", "--format", "csv", "--limit", "2", *s], capsys)
    assert code == 0 and table.startswith("theme_id,")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["themes", "export", "NOPE", "--out", "{tmp}/x.csv"], "no theme 'NOPE'"),
        (["themes", "report", "NOPE", "--out", "{tmp}/x.html"], "no theme 'NOPE'"),
        (["themes", "export", THEME, "--out", "{tmp}/x.txt"], "--out must end in .csv"),
        (["themes", "report", THEME, "--out", "{tmp}/x.html", "--since", "soon"], "not a date"),
        (
            [
                "themes",
                "export",
                THEME,
                "--out",
                "{tmp}/x.csv",
                "--since",
                "2020-02-01",
                "--until",
                "2020-01-01",
            ],
            "--until must be after --since",
        ),
        (["themes", "export", "--out", "{tmp}/x.csv"], "Missing argument"),
    ],
)
def test_cli_bad_input_is_exit_2_with_one_line(
    args: list[str],
    needle: str,
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--store", str(store_path)]
    code, _, err = cli(args, capsys)
    assert code == 2 and needle in err and "Traceback" not in err
    if not needle.startswith("Missing"):  # usage errors print the usage line, like every command
        assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))  # nothing half-written


# -- renames and merges survive the next analysis ----------------------------------------------


def test_rename_and_merge_survive_reanalysis(tmp_path: Path) -> None:
    from analyzer.analysis.pipeline import run_analysis
    from analyzer.ingest import ingest_file
    from analyzer.queries import list_themes

    df = pd.read_csv(ROOT / "data_samples" / "boston_311_sample.csv", dtype=str)
    df = df[df["description"].fillna("").str.len() > 20].sort_values("requested_datetime")
    history = df.iloc[:-10].sample(n=260, random_state=1).sort_values("requested_datetime")
    history.to_csv(tmp_path / "history.csv", index=False)
    df.iloc[-10:].to_csv(tmp_path / "newest.csv", index=False)
    path = tmp_path / "s.duckdb"
    settings = Settings(store_path=path)
    with Store(path) as store:
        ingest_file(store, tmp_path / "history.csv", profile="boston", progress=False)
        run_analysis(store, settings)
        top = list_themes(store)["items"]
        assert len(top) >= 3
        keep, gone, renamed = top[0]["theme_id"], top[1]["theme_id"], top[2]["theme_id"]
        rename_theme(store, renamed, "Our own name")
        merge_themes(store, gone, keep)
        size_before = {
            t["theme_id"]: t["size"] for t in list_themes(store, page=Page(limit=1000))["items"]
        }

        def check(total_records: int) -> None:
            items = {t["theme_id"]: t for t in list_themes(store, page=Page(limit=1000))["items"]}
            assert gone not in items and gone in items[keep]["merged_from"]
            assert items[renamed]["label"] == "Our own name"
            assert theme_detail(store, gone)["theme_id"] == keep
            assert sum(t["size"] for t in items.values()) == list_themes(store)["assigned"]
            assert list_themes(store)["assigned"] <= total_records
            page = theme_report_html(store, renamed)
            assert "Our own name" in page
            merged = _read(theme_records_csv(store, keep))
            assert set(merged["theme_id"]) == {keep} and len(merged) == items[keep]["size"]

        check(260)
        # New records arrive: an incremental run keeps ids, so the edits still apply.
        ingest_file(store, tmp_path / "newest.csv", profile="boston", progress=False)
        second = run_analysis(store, settings)
        assert second["themes"]["311"]["mode"] == "incremental"
        check(270)
        after = {
            t["theme_id"]: t["size"] for t in list_themes(store, page=Page(limit=1000))["items"]
        }
        assert after[keep] >= size_before[keep]
        # A full re-fit matches themes to their old ids; the edits of surviving ids still apply.
        run_analysis(store, settings, refit=True)
        active = set(
            store.query_df("SELECT theme_id FROM themes WHERE status = 'active'")["theme_id"]
        )
        if {keep, gone, renamed} <= active:
            check(270)
