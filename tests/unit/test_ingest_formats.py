"""Formats: encoding and delimiter detection, JSON streaming, Parquet, gzip, read_table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.ingest import read_table
from analyzer.ingest.formats import iter_chunks, sniff
from analyzer.ingest.formats import jsonl as jsonl_mod
from analyzer.ingest.formats.csv import sniff_delimiter

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "ingest"
SAMPLES = ROOT / "data_samples"


def test_utf8_bom_is_stripped_from_the_first_column(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffrow_id,comment\n1,café\n".encode())
    info = sniff(p)
    assert info.encoding == "utf-8-sig"
    df = read_table(p)
    assert list(df.columns) == ["row_id", "comment"]
    assert df.loc[0, "comment"] == "café"


def test_cp1252_is_detected_even_when_the_first_bad_byte_is_late(tmp_path: Path) -> None:
    # 300 KB of ASCII, then Windows punctuation: the head alone looks like UTF-8
    rows = ["id,comment"] + [f"{i},plain ascii row number {i}" for i in range(12_000)]
    rows.append("99999,“Smart quotes” – and a café")
    p = tmp_path / "late.csv"
    p.write_bytes("\n".join(rows).encode("cp1252") + b"\n")
    info = sniff(p)
    assert info.encoding == "cp1252"
    df = read_table(p)
    assert df.iloc[-1]["comment"] == "“Smart quotes” – and a café"


def test_latin1_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(b"id,comment\n1,caf\xe9 \x81 ok\n")  # 0x81 does not exist in cp1252
    info = sniff(p)
    assert info.encoding == "latin_1"
    assert read_table(p).loc[0, "comment"] == "café \x81 ok"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ","),
        ('a;b;c\n1;"x, y, z";3\n4;5;6\n', ";"),
        ("a\tb\n1\tfree, text; here\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        # commas inside a quoted field must not win over the real delimiter
        ('id;text\n1;"one, two, three, four"\n2;"five, six"\n', ";"),
    ],
)
def test_delimiter_sniffing(text: str, expected: str) -> None:
    assert sniff_delimiter(text) == expected


def test_json_array_streams_objects_split_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = [
        {"id": i, "text": f"request {i} " + "x" * (i % 7), "n": None, "ok": True} for i in range(50)
    ]
    p = tmp_path / "a.json"
    p.write_text(json.dumps(objs, indent=2), encoding="utf-8")
    monkeypatch.setattr(jsonl_mod, "_BLOCK_CHARS", 37)  # every object crosses a block boundary
    chunks = list(iter_chunks(sniff(p), chunk_rows=16))
    assert [c.first_row for c in chunks] == [1, 17, 33, 49]
    df = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert len(df) == 50
    assert df.loc[49, "id"] == "49" and df.loc[0, "n"] == "" and df.loc[0, "ok"] == "true"


def test_json_lines_with_varying_keys(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b", "extra": {"k": [1, 2]}}\n')
    df = read_table(p)
    assert list(df["id"]) == ["1", "2"]
    assert df.loc[0, "extra"] == "" and json.loads(df.loc[1, "extra"]) == {"k": [1, 2]}


def test_invalid_json_names_the_record(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('[{"id": 1}, {"id": 2,, }]')
    with pytest.raises(InputError, match=r"bad.json: row 2: invalid JSON"):
        read_table(p)


def test_json_scalar_values_are_not_rows(tmp_path: Path) -> None:
    p = tmp_path / "nums.json"
    p.write_text("[1, 2, 3]")
    with pytest.raises(InputError, match="row 1: JSON value is a int"):
        read_table(p)


def test_gzip_by_magic_bytes_not_by_name(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"  # gzip content without a .gz suffix
    p.write_bytes(gzip.compress(b"id,comment\n1,hello\n2,world\n"))
    info = sniff(p)
    assert info.gzip and info.kind == "csv"
    assert read_table(p)["comment"].tolist() == ["hello", "world"]


def test_parquet_typed_columns_become_strings() -> None:
    df = read_table(FIX / "austin_survey.parquet")
    assert len(df) == 200
    assert set(df.columns) == {"row_id", "year", "council_district", "comment"}
    assert df["year"].isin(["2016", "2017"]).all()  # int16 -> "2016", not "2016.0"
    assert all(isinstance(v, str) for v in df.iloc[0])


def test_gzipped_json_lines_and_csv_fixtures() -> None:
    jl = read_table(FIX / "boston_sample.jsonl.gz")
    assert len(jl) == 60 and "service_request_id" in jl.columns
    gz = read_table(FIX / "bowling_green_comments.csv.gz")
    assert len(gz) == 120 and "comment-body" in gz.columns


def test_read_table_keeps_values_verbatim() -> None:
    df = read_table(SAMPLES / "austin_survey_comments.csv")
    raw = pd.read_csv(SAMPLES / "austin_survey_comments.csv", dtype=str, keep_default_na=False)
    assert df.shape == raw.shape
    assert (df.values == raw.values).all()


def test_binary_without_nul_bytes_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "noise.csv"
    p.write_bytes(bytes(range(1, 256)) * 200)  # no NUL, not UTF-8, mostly control characters
    with pytest.raises(InputError, match="binary content"):
        sniff(p)


def test_concatenated_gzip_members_are_one_stream(tmp_path: Path) -> None:
    p = tmp_path / "two.csv.gz"
    p.write_bytes(gzip.compress(b"id,comment\n1,a\n") + gzip.compress(b"2,b\n"))
    assert read_table(p)["comment"].tolist() == ["a", "b"]
