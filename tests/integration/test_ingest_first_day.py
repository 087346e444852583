"""A new city's first day (issue 18), the ingest side, through the real CLI: dates read in the
column's own format, placeholders flagged and kept, the platforms' exports detected from their
header, what a record is apart from its source's name, undo, and the smaller findings.

Fixtures: made-up rows in each platform's real header (tests/fixtures/ingest/
build_platform_fixtures.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analyzer.cli import main
from analyzer.store.database import Store

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "ingest"
CITY = ["--text-col", "description", "--time-col", "created_at", "--label-col", "category"]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


def query(db: Path, sql: str) -> pd.DataFrame:
    with Store(db, read_only=True) as st:
        return st.query_df(sql)


# -- 1. dates -----------------------------------------------------------------------------------


def test_day_first_dates_are_read_day_first_and_the_summary_says_so(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "day_first_311.csv"
    code, out, _ = cli(["ingest", str(path), *CITY, "--id-col", "ref", "--store", str(db)], capsys)
    assert code == 0
    src = pd.read_csv(path, dtype=str)
    got = query(db, "SELECT id, strftime(created_at, '%Y-%m-%d %H:%M') AS t FROM records")
    got = dict(zip(got["id"].str.rsplit(":", n=1).str[-1], got["t"], strict=True))
    # R1000 is 04/01/2021 23:00: 4 January, not 1 April
    expected = pd.to_datetime(src["created_at"], format="%d/%m/%Y %H:%M").dt.strftime(
        "%Y-%m-%d %H:%M"
    )
    assert [got[ref] for ref in src["ref"]] == expected.tolist()
    assert "dates in 'created_at': %d/%m/%Y %H:%M (day-first)" in out
    assert f"created from {expected.min()[:10]} to {expected.max()[:10]}" in out


def test_an_ambiguous_date_column_exits_2_naming_date_format(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "ambiguous_dates.csv"
    code, out, err = cli(["ingest", str(path), *CITY, "--store", str(db)], capsys)
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "ambiguous_dates.csv" in line and "column 'created_at'" in line
    assert "--date-format" in line
    code, out, _ = cli(
        ["ingest", str(path), *CITY, "--date-format", "%d/%m/%Y %H:%M", "--store", str(db)],
        capsys,
    )
    assert code == 0
    first = query(db, "SELECT strftime(min(created_at), '%Y-%m-%d') AS d FROM records")["d"][0]
    assert first == "2021-03-01"  # 01/03/2021 as asked: 1 March


def test_tag_train_reads_unix_seconds_like_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = _labelled(tmp_path, n=36)
    train["when"] = (pd.Timestamp("2020-01-01").value // 10**9 + train.index * 3600).astype(str)
    train.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = cli(
        [
            "tag", "train", "--input", str(tmp_path / "t.csv"), "--text-col", "text",
            "--label-col", "label", "--time-col", "when", "--out", str(tmp_path / "m"),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "times in 'when': Unix seconds" in err


# -- 2. placeholders and boilerplate ------------------------------------------------------------


def test_placeholders_are_flagged_kept_listed_and_shown_by_status(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "nyc311_placeholder.csv"
    code, out, _ = cli(
        [
            "ingest",
            str(path),
            "--text-col",
            "description",
            "--source",
            "nyc311",
            "--store",
            str(db),
        ],
        capsys,
    )
    assert code == 0
    n_placeholder = int(
        (pd.read_csv(path, dtype=str)["description"].str.contains("without a description")).sum()
    )
    df = query(db, "SELECT text, boilerplate FROM records")
    assert len(df) == 40  # nothing lost
    assert int(df["boilerplate"].sum()) == n_placeholder
    assert df.loc[df["boilerplate"], "text"].str.contains("without a description").all()
    assert f"boilerplate {n_placeholder:,} records" in out
    assert f"{n_placeholder:,} × 'This request was submitted to NYC 311" in out

    code, out, _ = cli(["status", "--store", str(db)], capsys)
    assert code == 0 and "boilerplate" in out and "without a" in out

    # --keep-boilerplate keeps them in the analysis: the file is read again, nothing doubled
    code, out, _ = cli(
        [
            "ingest", str(path), "--text-col", "description", "--source", "nyc311",
            "--keep-boilerplate", "--store", str(db),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    df = query(db, "SELECT count(*) AS n, count(*) FILTER (WHERE boilerplate) AS b FROM records")
    assert df.values.tolist() == [[40, 0]]


def test_analysis_input_leaves_boilerplate_out(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analyzer.analysis.pipeline import load_records

    cli(["ingest", str(FIX / "nyc311_placeholder.csv"), "--text-col", "description",
         "--store", str(db)], capsys)  # fmt: skip
    with Store(db) as st:
        records = load_records(st, "any-model")
    assert len(records) == 8 and not records["text"].str.contains("without a").any()


# -- 3. profiles --------------------------------------------------------------------------------


def test_seeclickfix_api_json_is_detected_and_never_stores_names(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "seeclickfix_issues.json"
    code, out, _ = cli(["ingest", str(path), "--store", str(db)], capsys)
    assert code == 0 and "(seeclickfix, json" in out and "warning" not in out
    page = json.loads(path.read_text())["issues"]
    df = query(
        db,
        "SELECT id, category, status, kind, lat, created_at, "
        "strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS closed, attributes::VARCHAR AS a "
        "FROM records",
    ).set_index("id")
    assert len(df) == len(page)
    first = page[0]
    rec = df.loc[f"seeclickfix:{first['id']}"]
    assert rec["category"] == first["request_type"]["title"] and rec["kind"] == "311"
    assert rec["status"] == first["status"]
    attrs = json.loads(rec["a"])
    assert attrs["acknowledged_at"].endswith("Z") and attrs["request_type_id"] == str(
        first["request_type"]["id"]
    )
    assert attrs["comments"] == first["comments"][0]["comment"]
    closed = next(i for i in page if i["closed_at"])
    # the close time is the record's, which outcomes measure time to close to
    assert df.loc[f"seeclickfix:{closed['id']}", "closed"] == (
        pd.Timestamp(closed["closed_at"]).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    everything = " ".join(df["a"].tolist())
    for name in ("Jordan Example", "Casey Sample", "Robin Placeholder"):
        assert name not in everything


def test_seeclickfix_csv_exports_are_detected(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        ["ingest", str(FIX / "seeclickfix_export.csv"), "--tz", "America/New_York",
         "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "(seeclickfix, csv" in out
    assert "dates in 'closed': %m/%d/%Y %H:%M:%S (month-first)" in out
    src = pd.read_csv(FIX / "seeclickfix_export.csv", dtype=str, keep_default_na=False)
    row = src.iloc[0]
    rec = query(
        db,
        "SELECT category, status, area, attributes::VARCHAR AS a, "
        "strftime(created_at, '%Y-%m-%dT%H:%M') AS c, "
        "strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS closed FROM records "
        f"WHERE id = 'seeclickfix:{row['id']}'",
    ).iloc[0]
    assert rec["category"] == row["request_type"] and rec["status"] == row["status"]
    local = pd.Timestamp(row["created"]).tz_localize("America/New_York").tz_convert("UTC")
    assert rec["c"] == local.strftime("%Y-%m-%dT%H:%M")
    closed = pd.to_datetime(row["closed"], format="%m/%d/%Y %H:%M:%S")
    closed = closed.tz_localize("America/New_York").tz_convert("UTC")
    # the close time, not the export's last update (a bulk refresh in Gainesville's copy)
    assert rec["closed"] == closed.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "last_updated" in json.loads(rec["a"])

    code, out, _ = cli(
        ["ingest", str(FIX / "seeclickfix_api_pull.csv"), "--store", str(db)], capsys
    )
    assert code == 0 and "(seeclickfix, csv" in out
    cats = query(db, "SELECT DISTINCT category FROM records WHERE id LIKE 'seeclickfix:476%'")
    assert cats["category"].tolist() == ["Traffic Complaints"]  # the summary, no request type


def test_seeclickfix_form_answers_stand_in_for_an_empty_description(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Detroit's export: 134 of 4,179 issues have no description, 91 of them the resident's words
    # in the form's "additional details"; those were rejected as "empty text"
    src = pd.read_csv(FIX / "seeclickfix_api_pull.csv", dtype=str, keep_default_na=False)
    src.loc[[3, 4, 5], "description"] = ""
    src.loc[3, "additional_details"] = "Cars parked on the sidewalk every night, call 313-555-0188"
    src.loc[4, "additional_details"] = "Trucks speeding down the side street"
    src.loc[5, "additional_details"] = "No Answer Given"  # skipped: nothing to read
    src.to_csv(tmp_path / "pull.csv", index=False)
    code, out, _ = cli(["ingest", str(tmp_path / "pull.csv"), "--store", str(db)], capsys)
    assert code == 0 and "29 loaded" in out and "rejected 1: empty text" in out
    texts = query(db, "SELECT id, text FROM records").set_index("id")["text"]
    assert texts[f"seeclickfix:{src.loc[4, 'id']}"] == "Trucks speeding down the side street"
    sidewalk = texts[f"seeclickfix:{src.loc[3, 'id']}"]
    assert sidewalk.startswith("Cars parked on the sidewalk") and "555-0188" not in sidewalk
    assert texts[f"seeclickfix:{src.loc[0, 'id']}"] == src.loc[0, "description"]
    rej = query(db, "SELECT row_number, reason FROM rejects")
    assert rej.values.tolist() == [[6, "empty text"]]


def test_fixmystreet_csv_and_open311_json_are_detected(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(["ingest", str(FIX / "fixmystreet_reports.csv"), "--store", str(db)], capsys)
    assert code == 0 and "(fixmystreet, csv" in out
    src = pd.read_csv(FIX / "fixmystreet_reports.csv", dtype=str, keep_default_na=False)
    df = query(db, "SELECT id, text, category, attributes::VARCHAR AS a FROM records")
    df = df.set_index("id")
    for r in src.head(8).itertuples(index=False):
        rec = df.loc[f"fixmystreet:{r.service_request_id}"]
        # title and detail, the title left out where the detail repeats it; not "title: detail"
        assert rec["text"] in (r.detail, f"{r.title} — {r.detail}")
        assert rec["category"] == r.service_name
        assert "first_absent_utc" in json.loads(rec["a"]) and "description" not in json.loads(
            rec["a"]
        )
    code, out, _ = cli(
        ["ingest", str(FIX / "fixmystreet_requests.json"), "--store", str(db)], capsys
    )
    assert code == 0 and "(fixmystreet, json" in out and "12 loaded" in out
    names = query(db, "SELECT attributes::VARCHAR AS a FROM records")["a"]
    assert not names.str.contains("Jordan Example|Casey Sample|Robin Placeholder").any()


def test_a_wrong_profile_and_missing_columns_are_warned_about(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the issue: --profile open311 on a SeeClickFix export exited 0 with no dates, no categories
    code, out, err = cli(
        ["ingest", str(FIX / "seeclickfix_export.csv"), "--profile", "open311",
         "--text-col", "description", "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "looks like a 'seeclickfix' export" in out
    assert "no time column: emerging needs, growth" in out
    assert "no category column: tagging" in out
    assert "no location columns" not in out  # latitude / longitude were found


def test_a_file_without_location_says_the_map_is_off(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = pd.read_csv(FIX / "day_first_311.csv", dtype=str).drop(columns=["latitude", "longitude"])
    src.to_csv(tmp_path / "no_place.csv", index=False)
    code, out, _ = cli(
        ["ingest", str(tmp_path / "no_place.csv"), *CITY, "--store", str(db)], capsys
    )
    assert code == 0 and "no location columns: the map is off" in out


# -- 4. what a record is ------------------------------------------------------------------------


def test_kind_is_apart_from_the_source_name(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(["ingest", str(FIX / "socrata_311.csv"), "--source", "nyc311", "--store", str(db)], capsys)
    code, out, _ = cli(
        ["ingest", str(FIX / "day_first_311.csv"), *CITY, "--source", "consult", "--kind",
         "engagement", "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "kind engagement" in out
    kinds = query(db, "SELECT source, min(kind) AS k, max(kind) AS k2 FROM records GROUP BY 1")
    assert dict(zip(kinds["source"], kinds["k"], strict=True)) == {
        "nyc311": "311",
        "consult": "engagement",
    }
    code, _, err = cli(["ingest", str(FIX / "socrata_311.csv"), "--kind", "other"], capsys)
    assert code == 2 and "--kind must be one of 311, survey, engagement" in err


# -- 5. undo ------------------------------------------------------------------------------------


def test_reingesting_with_other_flags_replaces_instead_of_doubling(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "day_first_311.csv"
    cli(["ingest", str(path), "--text-col", "description", "--store", str(db)], capsys)
    code, out, _ = cli(["ingest", str(path), *CITY, "--id-col", "ref", "--store", str(db)], capsys)
    assert code == 0 and "removed 30 records of an earlier reading" in out
    assert query(db, "SELECT count(*) AS n FROM records")["n"][0] == 30
    code, out, _ = cli(["status", "--store", str(db)], capsys)
    assert "files ingested: 1 (30 rows read)" in out


def test_forget_a_file_or_a_source(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day_first = FIX / "day_first_311.csv"
    cli(["ingest", str(day_first), *CITY, "--source", "a", "--store", str(db)], capsys)
    cli(
        ["ingest", str(FIX / "seeclickfix_export.csv"), "--source", "b", "--store", str(db)], capsys
    )
    with Store(db) as st:  # what an analysis would have derived
        st.execute("INSERT INTO assignments SELECT id, 'REQ0001', NULL, 0, 0, 'r1' FROM records")
        st.execute("INSERT INTO sentiment SELECT id, 'm', 'neutral', 0 FROM records")
    code, out, _ = cli(["forget", "--file", str(day_first), "--store", str(db)], capsys)
    assert code == 0 and "30 records removed" in out
    left = query(
        db,
        "SELECT (SELECT count(*) FROM records) AS r, (SELECT count(*) FROM assignments) AS a, "
        "(SELECT count(*) FROM sentiment) AS s, (SELECT count(*) FROM files) AS f",
    )
    assert left.values.tolist() == [[39, 39, 39, 1]]
    # the same file can be ingested again (not "already ingested")
    code, out, _ = cli(
        ["ingest", str(day_first), *CITY, "--source", "a", "--store", str(db)], capsys
    )
    assert "30 new" in out

    code, out, _ = cli(["forget", "--source", "b", "--store", str(db)], capsys)
    assert code == 0 and "39 records removed" in out
    assert query(db, "SELECT DISTINCT source FROM records")["source"].tolist() == ["a"]
    assert query(db, "SELECT count(*) AS n FROM rejects")["n"][0] == 0  # b's empty-text reject

    code, _, err = cli(["forget", "--source", "nope", "--store", str(db)], capsys)
    assert code == 2 and "no records with source 'nope'" in err


# -- 6. smaller findings ------------------------------------------------------------------------


def test_a_duplicate_id_is_reported_at_the_repeated_row(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = pd.read_csv(FIX / "day_first_311.csv", dtype=str)
    src.loc[7] = src.loc[2]  # the same request exported twice: row 8 repeats row 3
    src.to_csv(tmp_path / "dup.csv", index=False)
    code, out, _ = cli(
        ["ingest", str(tmp_path / "dup.csv"), *CITY, "--id-col", "ref", "--store", str(db)],
        capsys,
    )
    assert code == 0 and "rejected 1: duplicate id" in out
    rej = query(db, "SELECT row_number, column_name, content FROM rejects")
    assert rej[["row_number", "column_name"]].values.tolist() == [[8, "ref"]]  # data row 8
    assert json.loads(rej["content"][0])["first_row"] == 3


def test_an_excel_workbook_is_read_like_its_csv(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Spanish export saved as .xlsx: the first sheet with rows, dates as Excel dates, ids as
    numbers; the same records as the .csv, and the summary names the columns it found."""
    import datetime as dt

    from openpyxl import Workbook

    src = pd.read_csv(FIX / "avisos_excel_es.csv", sep=";", encoding="cp1252", dtype=str,
                      keep_default_na=False)  # fmt: skip
    wb = Workbook()
    wb.active.title = "notes"  # an empty first sheet is passed over
    sheet = wb.create_sheet("avisos")
    sheet.append(list(src.columns))
    for row in src.itertuples(index=False):
        values = list(row)
        values[1] = dt.datetime.strptime(values[1], "%d/%m/%Y %H:%M")  # a real Excel date
        sheet.append(values)
    path = tmp_path / "avisos.xlsx"
    wb.save(path)
    code, out, _ = cli(["ingest", str(path), "--tz", "Europe/Madrid", "--store", str(db)], capsys)
    assert code == 0 and "24 loaded" in out and "xlsx" in out
    assert "text: 'Descripción', found by its name and values" in out
    assert "created time: 'Fecha de entrada'" in out
    got = query(db, "SELECT strftime(created_at, '%Y-%m-%d %H:%M') AS c, text FROM records")
    first = pd.to_datetime(src["Fecha de entrada"].iloc[0], format="%d/%m/%Y %H:%M")
    want = first.tz_localize("Europe/Madrid").tz_convert("UTC").strftime("%Y-%m-%d %H:%M")
    assert want in set(got["c"]) and len(got) == len(src)


def test_a_damaged_workbook_gets_a_save_as_csv_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    path = tmp_path / "requests.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    code, _, err = cli(["ingest", str(path), "--text-col", "x"], capsys)
    assert code == 2 and "save it as CSV" in err and "requests.xlsx" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_store_held_by_another_process_gets_a_one_line_message(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code, _, err = cli(
            ["ingest", str(FIX / "day_first_311.csv"), *CITY, "--store", str(db)], capsys
        )
        assert code == 2
        line = err.strip()
        assert "\n" not in line and "IO Error" not in line
        assert f"in use by process {holder.pid}" in line and "stop it" in line
    finally:
        holder.kill()
        holder.wait(timeout=10)
        time.sleep(0.1)


# -- 7. exports nobody tuned on -----------------------------------------------------------------


def test_a_spreadsheet_saved_spanish_export_loads_as_it_is(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ";" separated, Windows-1252, day-first, decimal-comma coordinates in "Latitud"/"Longitud":
    # every row was rejected for "non-numeric coordinates" (exit 0, and a warning that no row
    # had a time, as if the dates were wrong)
    path = FIX / "avisos_excel_es.csv"
    flags = [
        "--text-col", "Descripción", "--time-col", "Fecha de entrada", "--label-col", "Categoría",
        "--id-col", "Nº Aviso", "--source", "madrid", "--tz", "Europe/Madrid",
    ]  # fmt: skip
    # the coordinates named as the README says
    named = ["--lat-col", "Latitud", "--lon-col", "Longitud"]
    code, out, _ = cli(["ingest", str(path), *flags, *named, "--store", str(db)], capsys)
    assert code == 0 and "24 loaded" in out and "0 rejected" in out and "cp1252" in out
    assert "dates in 'Fecha de entrada': %d/%m/%Y %H:%M (day-first)" in out
    assert "warning" not in out
    # and found by their Spanish names without a flag (as "latitude" is)
    code, out, _ = cli(
        ["ingest", str(path), *flags, "--store", str(db.with_name("b.duckdb"))], capsys
    )
    assert code == 0 and "24 loaded" in out and "warning" not in out
    src = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    got = query(
        db,
        "SELECT id, lat, lon, status, strftime(created_at, '%Y-%m-%d %H:%M') AS c, "
        "strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS closed FROM records",
    ).set_index("id")
    row = src.iloc[1]
    rec = got.loc[f"csv:avisos_excel_es:{row['Nº Aviso']}"]
    assert rec["lat"] == pytest.approx(float(row["Latitud"].replace(",", ".")))
    assert rec["lon"] == pytest.approx(float(row["Longitud"].replace(",", ".")))
    assert rec["status"] == row["Estado"] == "Cerrado"
    local = pd.to_datetime(row["Fecha de entrada"], format="%d/%m/%Y %H:%M")
    assert rec["c"] == local.tz_localize("Europe/Madrid").tz_convert("UTC").strftime(
        "%Y-%m-%d %H:%M"
    )
    closed = pd.to_datetime(row["Fecha de cierre"], format="%d/%m/%Y %H:%M")
    assert rec["closed"] == closed.tz_localize("Europe/Madrid").tz_convert("UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_spanish_export_s_close_time_area_and_states_are_found_without_flags(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only --text-col: 'Fecha de cierre' is the close time, 'Distrito' the area, 'Categoría' the
    category (accents do not count), and "Cerrado" closes a request while "En curso" leaves it
    open, so time to close by district is on."""
    from analyzer.outcomes import outcomes
    from analyzer.queries import Filters, search_records
    from analyzer.queries.common import Page

    path = FIX / "avisos_excel_es.csv"
    code, out, _ = cli(
        ["ingest", str(path), "--text-col", "Descripción", "--store", str(db)], capsys
    )
    assert code == 0 and "24 loaded" in out
    assert "close time: 'Fecha de cierre', found by its name and values" in out
    assert "area: 'Distrito', found by its name" in out
    assert "category: 'Categoría', found by its name" in out
    assert "no status or close time" not in out
    src = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    with Store(db) as store:
        report = outcomes(store, by="area")
        closed = search_records(store, Filters(closed=True), Page(limit=100))["items"]
    assert set(src["Estado"]) == {"Cerrado", "En curso"}
    assert report.counts["requests"] == len(src)
    assert report.counts["closed"] == int((src["Estado"] == "Cerrado").sum())
    # each with its close time, so time to close is measured for all of them
    assert report.counts["closed_timed"] == report.counts["closed"]
    assert 0 < report.counts["closed"] < len(src)
    assert set(report.rows["group"]) == set(src["Distrito"])
    # the store's "closed" filter follows the same rule as outcomes
    assert len(closed) == report.counts["closed"]
    assert all(r["status"].lower() not in ("en curso", "pendiente") for r in closed)


def test_a_plain_export_is_read_with_no_flag_at_all(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`civicpulse ingest FILE` on a header no profile knows: the text column is found by its
    name and values, as if --text-col had named it, and the summary says so."""
    code, out, _ = cli(["ingest", str(FIX / "chicago_311.csv"), "--store", str(db)], capsys)
    assert code == 0 and "21 loaded" in out
    assert "text: 'SR_DESCRIPTION', found by its name and values" in out
    assert "created time: 'CREATED_DATE'" in out
    # read again with the column named: the same reading, nothing new
    code, out, _ = cli(
        ["ingest", str(FIX / "chicago_311.csv"), "--text-col", "SR_DESCRIPTION", "--store",
         str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "already ingested (csv [text=SR_DESCRIPTION])" in out


def test_the_text_column_is_the_one_residents_wrote_in() -> None:
    from analyzer.ingest.text_columns import find_text_column

    frame = pd.DataFrame(
        {
            "Description Code": ["PT", "SL", "PT", "GR"],  # a code, by its name
            "Problem Type": ["Pothole on the road", "Street light out", "Pothole", "Graffiti"],
            "Comments": ["", "", "", "call back"],  # mostly empty
            "Detalle": ["hay un bache enorme frente a la escuela", "la luz no enciende de noche",
                        "bache peligroso en la esquina", "pintadas en la pared del parque"],
            "Status Notes": ["Case closed after inspection"] * 4,
        }
    )  # fmt: skip
    assert find_text_column(frame) == "Detalle"
    assert find_text_column(frame[["Problem Type", "Comments"]]) is None
    # a title or a subject is text too, when there is nothing longer
    asunto = ["Bache en la calle Mayor", "Farola apagada", "Contenedor lleno", "Pintadas"]
    assert find_text_column(frame.assign(Asunto=asunto)[["Asunto", "Problem Type"]]) == "Asunto"
    assert find_text_column(frame.assign(Asunto=asunto)) == "Detalle"


def test_a_column_that_holds_both_coordinates_is_read_for_the_map(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GeoJSON points (a Socrata or ArcGIS JSON export), WKT and "(lat, lon)" pairs: the map is
    on without --lat-col / --lon-col; a value none of them reads is missing, not a reject."""
    rows = [
        {"details": "pothole on elm street", "point": {"type": "Point",
                                                       "coordinates": [-87.63, 41.86]}},
        {"details": "street light out all night", "point": "POINT (-87.61 41.80)"},
        {"details": "graffiti on the bridge", "point": "(41.75, -87.70)"},
        {"details": "trash not picked up", "point": "somewhere near the park"},
    ]  # fmt: skip
    path = tmp_path / "points.json"
    path.write_text(json.dumps(rows))
    code, out, _ = cli(["ingest", str(path), "--store", str(db)], capsys)
    assert code == 0 and "4 loaded" in out and "0 rejected" in out
    assert "location: 'point' read as latitude and longitude" in out
    assert "no location columns" not in out
    got = query(db, "SELECT text, lat, lon FROM records ORDER BY text").set_index("text")
    assert got.loc["pothole on elm street", "lat"] == pytest.approx(41.86)
    assert got.loc["pothole on elm street", "lon"] == pytest.approx(-87.63)
    assert got.loc["street light out all night", "lon"] == pytest.approx(-87.61)
    assert got.loc["graffiti on the bridge", "lat"] == pytest.approx(41.75)
    assert pd.isna(got.loc["trash not picked up", "lat"])


def test_an_id_column_with_blanks_is_not_taken_for_the_id(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cases.csv"
    pd.DataFrame(
        {
            "Case ID": ["C-1", "", "C-3"],
            "Details": ["pothole on elm", "graffiti on the wall", "streetlight out"],
            "Date Created": ["2024-01-02", "2024-01-03", "2024-01-04"],
        }
    ).to_csv(path, index=False)
    code, out, _ = cli(["ingest", str(path), "--text-col", "Details", "--store", str(db)], capsys)
    assert code == 0 and "3 loaded" in out and "0 rejected" in out
    assert "'Case ID' is not an id (1 blank in the first 3 rows)" in out
    assert query(db, "SELECT count(*) AS n FROM records")["n"].iloc[0] == 3


def test_a_chicago_style_export_reads_its_times_and_places(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIX / "chicago_311.csv"
    code, out, _ = cli(
        ["ingest", str(path), "--text-col", "SR_DESCRIPTION", "--time-col", "CREATED_DATE",
         "--label-col", "SR_TYPE", "--id-col", "SR_NUMBER", "--area-col", "COMMUNITY_AREA",
         "--source", "chicago", "--tz", "America/Chicago", "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "21 loaded" in out and "rejected 3: empty text" in out
    assert "dates in 'CREATED_DATE': %m/%d/%Y %I:%M:%S %p (month-first)" in out
    # LAST_MODIFIED_DATE is a time like CLOSED_DATE: kept as ISO 8601 UTC, not as written
    assert "dates in 'LAST_MODIFIED_DATE'" in out and "no location" not in out
    rec = query(
        db,
        "SELECT status, area, lat, attributes->>'LAST_MODIFIED_DATE' AS m FROM records "
        "WHERE id = 'csv:chicago_311:SR24-00001001'",
    ).iloc[0]
    assert rec["status"] == "Completed" and rec["area"] == "2" and rec["lat"] > 41
    src = pd.read_csv(path, dtype=str).set_index("SR_NUMBER").loc["SR24-00001001"]
    modified = pd.to_datetime(src["LAST_MODIFIED_DATE"], format="%m/%d/%Y %I:%M:%S %p")
    assert rec["m"] == modified.tz_localize("America/Chicago").tz_convert("UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_plain_export_s_created_time_is_found_without_time_col(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same export with only --text-col: CREATED_DATE is found by its name and values (never
    CLOSED_DATE or LAST_MODIFIED_DATE), so emerging needs and growth are on; SR_TYPE by its name,
    so tagging and the per-category views are."""
    code, out, _ = cli(
        ["ingest", str(FIX / "chicago_311.csv"), "--text-col", "SR_DESCRIPTION",
         "--tz", "America/Chicago", "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "created time: 'CREATED_DATE', found by its name and values" in out
    assert "no time column" not in out
    assert "category: 'SR_TYPE', found by its name" in out and "no category column" not in out
    assert query(db, "SELECT count(DISTINCT category) AS n FROM records")["n"].iloc[0] > 1
    src = pd.read_csv(FIX / "chicago_311.csv", dtype=str, keep_default_na=False)
    created = pd.to_datetime(src["CREATED_DATE"], format="%m/%d/%Y %I:%M:%S %p")
    first = created[src["SR_DESCRIPTION"].str.strip() != ""].min()
    assert f"created from {first.tz_localize('America/Chicago').tz_convert('UTC'):%Y-%m-%d}" in out
    # the close time by its name (never LAST_MODIFIED_DATE), the id and the area by theirs
    assert "close time: 'CLOSED_DATE', found by its name and values" in out
    assert "id: 'SR_NUMBER', found by its name" in out
    assert "area: 'COMMUNITY_AREA', found by its name" in out
    got = query(db, "SELECT id, updated_at FROM records ORDER BY id")
    assert got["id"].str.startswith("csv:chicago_311:SR24-").all()
    kept = src[src["SR_DESCRIPTION"].str.strip() != ""]
    assert got["updated_at"].notna().sum() == (kept["CLOSED_DATE"] != "").sum() > 0


def test_a_file_whose_every_row_is_rejected_says_so(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a plausible slip: the LOCATION column, "(41.86, -87.63)", named as the coordinates
    code, out, _ = cli(
        ["ingest", str(FIX / "chicago_311.csv"), "--text-col", "SR_DESCRIPTION", "--time-col",
         "CREATED_DATE", "--lat-col", "LOCATION", "--lon-col", "LOCATION", "--store", str(db)],
        capsys,
    )  # fmt: skip
    assert code == 0 and "0 loaded" in out
    assert "warning: no row was loaded: all 24 rejected, most for 'non-numeric coordinates'" in out
    assert "no row has a time" not in out  # the times were fine


def _labelled(tmp_path: Path, n: int) -> pd.DataFrame:
    src = pd.read_csv(FIX / "day_first_311.csv", dtype=str)
    rows = pd.concat([src] * (n // len(src) + 1), ignore_index=True).head(n)
    return pd.DataFrame({"text": rows["description"] + " " + rows.index.astype(str),
                         "label": rows["category"]})  # fmt: skip


def test_tag_train_leaves_out_single_example_labels_and_placeholders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = _labelled(tmp_path, n=40)
    train.loc[len(train)] = ["Storm drain blocked with leaves", "Storm Drain"]
    placeholder = "This request was submitted to NYC 311 without a description."
    for _ in range(6):
        train.loc[len(train)] = [placeholder, "Pothole"]
    train.to_csv(tmp_path / "train.csv", index=False)
    code, _, err = cli(
        ["tag", "train", "--input", str(tmp_path / "train.csv"), "--text-col", "TEXT",
         "--label-col", "Label", "--out", str(tmp_path / "model")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "'Storm Drain' (1)" in err and "6 rows of boilerplate" in err
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert "Storm Drain" not in manifest["labels"] and len(manifest["labels"]) == 4


def test_a_small_history_says_what_auto_accepting_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new city's 36 labelled requests cannot promise precision 0.95: `tag train` says so and
    how much more history would, instead of printing a review threshold of 1.000."""
    _labelled(tmp_path, n=36).to_csv(tmp_path / "train.csv", index=False)
    code, _, err = cli(
        ["tag", "train", "--input", str(tmp_path / "train.csv"), "--text-col", "text",
         "--label-col", "label", "--out", str(tmp_path / "model")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "review threshold 1.000" not in err
    assert "nothing can be auto-accepted at precision 0.95 yet" in " ".join(err.split())


def test_tag_predict_finds_the_text_column_whatever_its_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # trained with the columns named exactly (as today's main accepted), then predicted with
    # `--text-col description` on a file whose column is `Description`, as ingest would find it
    _labelled(tmp_path, n=36).to_csv(tmp_path / "train.csv", index=False)
    code, _, err = cli(
        ["tag", "train", "--input", str(tmp_path / "train.csv"), "--text-col", "text",
         "--label-col", "label", "--out", str(tmp_path / "model")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    new = pd.DataFrame({"Description": ["Graffiti on the wall by the school"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    code, _, err = cli(
        ["tag", "predict", "--model", str(tmp_path / "model"), "--input",
         str(tmp_path / "new.csv"), "--text-col", "description", "--output",
         str(tmp_path / "out.csv")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:1]) == ["Description"] and "predicted_label" in out.columns
