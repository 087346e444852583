"""Malformed input, file by file: each has its expected message (file-level problems: exit code 2
from the CLI with one line naming the file) or reject reason (row-level problems), and no row is
ever lost: rows_loaded + rows_rejected == rows_read, and the store holds exactly that."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from analyzer.cli import main
from analyzer.ingest import IngestOptions, IngestReport, ingest_file
from analyzer.ingest.clean import TEXT_CAP
from analyzer.ingest.profiles.boston import BOSTON_COLUMNS
from analyzer.store.database import Store


def boston_row(i: int, **changes: str) -> dict[str, str]:
    row = {
        "service_request_id": f"1010000{i:05d}",
        "requested_datetime": "2019-05-01T10:00:00-04:00",
        "updated_datetime": "2019-05-02T09:30:00-04:00",
        "status": "closed",
        "service_name": "Other",
        "service_code": "4f38920fe75084437f0001a0",
        "description": f"Pothole in the bike lane, request {i}",
        "status_notes": "Case Resolved.",
        "address": "12 Elm St, Jamaica Plain",
        "lat": "42.3101",
        "long": "-71.1123",
        "media_url": "",
    }
    row.update(changes)
    return row


def write_boston(
    path: Path,
    rows: list[dict[str, str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    columns: list[str] | None = None,
) -> Path:
    cols = columns or list(BOSTON_COLUMNS)
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.DictWriter(fh, fieldnames=cols, delimiter=delimiter, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.duckdb")
    yield s
    s.close()


def ingest(store: Store, path: Path, **opts: object) -> IngestReport:
    report = ingest_file(store, path, options=IngestOptions(**opts), progress=False)
    # nothing lost, in the report and in the store
    assert report.rows_loaded + report.rows_rejected == report.rows_read
    n_rej = store.scalar("SELECT count(*) FROM rejects WHERE file_hash = ?", [report.file_hash])
    n_rec = store.scalar("SELECT count(*) FROM records WHERE file_hash = ?", [report.file_hash])
    assert n_rej == report.rows_rejected
    assert n_rec == report.rows_loaded
    return report


def rejects_of(store: Store) -> pd.DataFrame:
    return store.query_df(
        "SELECT row_number, column_name, reason, content FROM rejects ORDER BY row_number"
    )


def record(store: Store, rid: str) -> pd.Series:
    df = store.query_df(
        "SELECT *, strftime(created_at, '%Y-%m-%dT%H:%M:%S') AS created_utc "
        "FROM records WHERE id = ?",
        [rid],
    )
    assert len(df) == 1, f"record {rid} not found"
    return df.iloc[0]


# -- file-level problems: one line, exit code 2, store untouched ---------------------------------


def _missing_text(p: Path) -> list[str]:
    cols = [c for c in list(BOSTON_COLUMNS) if c != "description"]
    write_boston(p, [boston_row(1)], columns=cols)
    return ["--profile", "boston"]


def _undetectable(p: Path) -> list[str]:
    p.write_text("alpha,beta\n1,2\n")
    return []


def _unknown_text_col(p: Path) -> list[str]:
    write_boston(p, [boston_row(1)])
    return ["--text-col", "comment_text"]


def _broken_quoting(p: Path) -> list[str]:
    write_boston(p, [boston_row(1), boston_row(2)])
    with open(p, "a") as fh:
        fh.write(
            '101000000003,2019-05-01T10:00:00-04:00,,open,Other,x,"never closed,,,42.3,-71.1,\n'
        )
        fh.write("101000000004,2019-05-01T10:00:00-04:00,,open,Other,x,fine,,,42.3,-71.1,\n")
    return []


def _extra_field(p: Path) -> list[str]:
    write_boston(p, [boston_row(1)])
    with open(p, "a") as fh:
        fh.write("101000000002,2019-05-01,,open,Other,x,a, b,notes,addr,42.3,-71.1,\n")
    return []


def _empty(p: Path) -> list[str]:
    p.write_bytes(b"")
    return []


def _whitespace(p: Path) -> list[str]:
    p.write_text("\n\n   \n")
    return []


def _header_only(p: Path) -> list[str]:
    write_boston(p, [])
    return []


def _binary(p: Path) -> list[str]:
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40)
    return []


def _bad_json(p: Path) -> list[str]:
    p.write_text('[{"service_request_id": "1", "description": "a"}, {"service_request_id": }]')
    return []


def _unknown_profile(p: Path) -> list[str]:
    write_boston(p, [boston_row(1)])
    return ["--profile", "nyc"]


def _bad_tz(p: Path) -> list[str]:
    write_boston(p, [boston_row(1)])
    return ["--tz", "Boston/Harbour"]


FILE_LEVEL: list[tuple[str, Callable[[Path], list[str]], str, str]] = [
    (
        "missing text column",
        _missing_text,
        "a.csv",
        "no text column for profile 'boston' (expected 'description'); columns found: "
        "service_request_id, requested_datetime",
    ),
    (
        "undetectable header",
        _undetectable,
        "a.csv",
        "cannot tell the profile from the header; columns found: alpha, beta",
    ),
    ("unknown --text-col", _unknown_text_col, "a.csv", "no column 'comment_text' (given for text)"),
    (
        "broken quoting",
        _broken_quoting,
        "a.csv",
        "row 3: broken quoting: a quoted field is never closed",
    ),
    ("unquoted delimiter", _extra_field, "a.csv", "row 2: expected 12 fields, saw 13"),
    ("empty file", _empty, "a.csv", "empty file (0 bytes)"),
    ("whitespace only", _whitespace, "a.csv", "empty file (only whitespace)"),
    ("header only", _header_only, "a.csv", "header only, no data rows"),
    ("binary file", _binary, "a.csv", "binary content"),
    ("invalid JSON", _bad_json, "a.json", "row 2: invalid JSON"),
    ("unknown profile", _unknown_profile, "a.csv", "unknown profile 'nyc'; known profiles: boston"),
    ("unknown time zone", _bad_tz, "a.csv", "unknown time zone 'Boston/Harbour'"),
]


@pytest.mark.parametrize(
    ("make", "name", "expected"),
    [pytest.param(m, n, e, id=i) for i, m, n, e in FILE_LEVEL],
)
def test_file_level_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, name: str, expected: str
) -> None:
    path = tmp_path / name
    extra = make(path)
    db = tmp_path / "cli.duckdb"
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(path), "--store", str(db), *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert expected in err, err
    if "profile 'nyc'" not in expected and "time zone" not in expected:
        assert str(path) in err  # the message names the file
    if db.exists():  # nothing was written
        with Store(db, read_only=True) as s:
            assert s.scalar("SELECT count(*) FROM records") == 0
            assert s.scalar("SELECT count(*) FROM rejects") == 0
            assert s.scalar("SELECT count(*) FROM files") == 0


def test_nonexistent_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(tmp_path / "nope.csv"), "--store", str(tmp_path / "s.duckdb")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.csv'}: no such file"


def test_error_late_in_a_file_rolls_back_earlier_chunks(store: Store, tmp_path: Path) -> None:
    p = write_boston(tmp_path / "late.csv", [boston_row(i) for i in range(1, 40)])
    with open(p, "a") as fh:
        fh.write('1019,2019-05-01,,open,Other,x,"unclosed,,,1,2,\n')
    from analyzer.errors import InputError

    with pytest.raises(InputError, match=r"row 40: broken quoting"):
        ingest_file(store, p, options=IngestOptions(chunk_rows=10), progress=False)
    # three chunks were staged before the error; none of them is visible
    assert store.scalar("SELECT count(*) FROM records") == 0
    assert store.scalar("SELECT count(*) FROM files") == 0


# -- encodings and delimiters: loaded, text decoded right --------------------------------------


def test_cp1252_file(store: Store, tmp_path: Path) -> None:
    rows = [boston_row(1, description="Café sidewalk – “icy” again"), boston_row(2)]
    p = write_boston(tmp_path / "win.csv", rows, encoding="cp1252")
    r = ingest(store, p)
    assert r.encoding == "cp1252" and r.rows_loaded == 2
    assert record(store, "boston:101000000001").text == "Café sidewalk – “icy” again"


def test_utf8_bom_file(store: Store, tmp_path: Path) -> None:
    p = write_boston(tmp_path / "bom.csv", [boston_row(1)], encoding="utf-8-sig")
    r = ingest(store, p)
    # the BOM must not glue itself to "service_request_id", or the profile would not be found
    assert r.profile == "boston" and r.encoding == "utf-8-sig" and r.rows_loaded == 1


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(store: Store, tmp_path: Path, delimiter: str) -> None:
    rows = [boston_row(1, description="one, two; three | four"), boston_row(2)]
    p = write_boston(tmp_path / "d.csv", rows, delimiter=delimiter)
    r = ingest(store, p)
    assert r.profile == "boston" and r.rows_loaded == 2
    assert record(store, "boston:101000000001").text == "one, two; three | four"


# -- row-level problems: rejects with reason and column ----------------------------------------


def test_three_date_formats(store: Store, tmp_path: Path) -> None:
    rows = [
        boston_row(1, requested_datetime="2019-05-01T10:00:00-04:00"),  # ISO with offset
        boston_row(2, requested_datetime="05/01/2019 10:00 AM", updated_datetime=""),  # US, local
        boston_row(3, requested_datetime="1556719200000", updated_datetime=""),  # epoch ms
    ]
    p = write_boston(tmp_path / "dates.csv", rows)
    # 05/01 could be 5 January: the file cannot tell, so the order is named
    r = ingest(store, p, tz="America/New_York", date_format="%m/%d/%Y %I:%M %p")
    assert r.rows_loaded == 3 and r.rows_rejected == 0
    assert record(store, "boston:101000000001").created_utc == "2019-05-01T14:00:00"
    assert record(store, "boston:101000000002").created_utc == "2019-05-01T14:00:00"
    assert record(store, "boston:101000000003").created_utc == "2019-05-01T14:00:00"


def test_unparseable_and_out_of_range_dates(store: Store, tmp_path: Path) -> None:
    rows = [
        boston_row(1),
        boston_row(2, requested_datetime="last Tuesday"),
        boston_row(3, updated_datetime="2019-02-30T10:00:00"),
        boston_row(4, requested_datetime="1850-01-01T00:00:00Z"),
    ]
    r = ingest(store, write_boston(tmp_path / "d.csv", rows))
    assert (r.rows_loaded, r.rows_rejected) == (1, 3)
    rej = rejects_of(store)
    assert rej[["row_number", "column_name", "reason"]].values.tolist() == [
        [2, "requested_datetime", "unparseable date"],
        [3, "updated_datetime", "unparseable date"],
        [4, "requested_datetime", "date out of range"],
    ]
    # the original row is kept with the reason
    assert json.loads(rej.loc[0, "content"])["requested_datetime"] == "last Tuesday"


def test_coordinates(store: Store, tmp_path: Path) -> None:
    rows = [
        boston_row(1, lat="123.4"),  # out of range
        boston_row(2, long="-200"),
        boston_row(3, lat="north", long="-71.1"),  # non-numeric
        boston_row(4, lat="0", long="0"),  # (0, 0) means "not geocoded": kept, no coordinates
        boston_row(5, lat="", long=""),
        boston_row(6),
    ]
    r = ingest(store, write_boston(tmp_path / "c.csv", rows))
    assert (r.rows_loaded, r.rows_rejected) == (3, 3)
    assert rejects_of(store)[["row_number", "column_name", "reason"]].values.tolist() == [
        [1, "lat", "coordinates out of range"],
        [2, "long", "coordinates out of range"],
        [3, "lat", "non-numeric coordinates"],
    ]
    assert pd.isna(record(store, "boston:101000000004").lat)
    assert pd.isna(record(store, "boston:101000000005").lon)
    assert record(store, "boston:101000000006").lat == pytest.approx(42.3101)


def test_duplicate_ids_keep_the_latest_update(store: Store, tmp_path: Path) -> None:
    rows = [
        boston_row(1, description="first version", updated_datetime="2019-05-02T09:00:00-04:00"),
        boston_row(1, description="latest version", updated_datetime="2019-05-09T09:00:00-04:00"),
        # the H-prefixed form is the same request (SOURCE.md), so this one is a duplicate too
        {
            **boston_row(
                1, description="older again", updated_datetime="2019-05-03T09:00:00-04:00"
            ),
            "service_request_id": "H12345-101000000001",
        },
        boston_row(2),
    ]
    r = ingest(store, write_boston(tmp_path / "dup.csv", rows))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (4, 2, 2)
    assert r.rejects_by_reason == {"duplicate id": 2}
    assert record(store, "boston:101000000001").text == "latest version"
    rej = rejects_of(store)
    assert rej["row_number"].tolist() == [1, 3]
    assert set(rej["column_name"]) == {"service_request_id"}
    assert json.loads(rej.loc[0, "content"])["text"] == "first version"


def test_html_and_script_are_stripped(store: Store, tmp_path: Path) -> None:
    rows = [
        boston_row(1, description="<p>Broken <b>street light</b></p><script>alert('x')</script>"),
        boston_row(2, description="&lt;script&gt;steal()&lt;/script&gt;Graffiti on wall"),
        boston_row(3, description='<img src=x onerror="alert(1)">Trash <i>everywhere</i>'),
        boston_row(4, description="<br/><div></div>"),  # nothing but markup: empty text
        boston_row(5, description="Speed is < 25 and noise > 80 dB"),  # not markup
    ]
    r = ingest(store, write_boston(tmp_path / "h.csv", rows))
    assert (r.rows_loaded, r.rows_rejected) == (4, 1)
    assert record(store, "boston:101000000001").text == "Broken street light"
    assert record(store, "boston:101000000002").text == "Graffiti on wall"
    assert record(store, "boston:101000000003").text == "Trash everywhere"
    assert record(store, "boston:101000000005").text == "Speed is < 25 and noise > 80 dB"
    texts = " ".join(store.query_df("SELECT text FROM records")["text"])
    assert "<" not in texts.replace("< 25", "") and "alert" not in texts and "steal" not in texts
    assert rejects_of(store)["reason"].tolist() == ["empty text"]


def test_empty_text(store: Store, tmp_path: Path) -> None:
    rows = [boston_row(1, description=""), boston_row(2, description="   \t "), boston_row(3)]
    r = ingest(store, write_boston(tmp_path / "e.csv", rows))
    assert (r.rows_loaded, r.rows_rejected) == (1, 2)
    rej = rejects_of(store)
    assert rej["reason"].tolist() == ["empty text", "empty text"]
    assert rej["column_name"].tolist() == ["description", "description"]


def test_ten_megabyte_field_is_capped_not_fatal(store: Store, tmp_path: Path) -> None:
    huge = ("snow " * 2_000_000)[:10_000_000]
    rows = [boston_row(1, description=huge, status_notes=huge), boston_row(2)]
    r = ingest(store, write_boston(tmp_path / "big.csv", rows))
    assert (r.rows_loaded, r.rows_rejected, r.rows_truncated) == (2, 0, 1)
    rec = record(store, "boston:101000000001")
    assert 0 < len(rec.text) <= TEXT_CAP and rec.text.startswith("snow snow")
    attrs = json.loads(rec.attributes)
    assert attrs["text_truncated_from"] == 10_000_000
    assert len(attrs["status_notes"]) <= 2_001  # other columns are capped too


def test_missing_id_is_rejected(store: Store, tmp_path: Path) -> None:
    r = ingest(
        store,
        write_boston(tmp_path / "i.csv", [boston_row(1, service_request_id=" "), boston_row(2)]),
    )
    assert r.rejects_by_reason == {"missing id": 1}
