"""The ingest CLI: ingest / status / rejects / export, the formula-injection guard, PII in exports,
and a process killed in the middle of a file."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analyzer.cli import main
from analyzer.cli.ingest import neutralise_formula
from analyzer.ingest import IngestOptions, ingest_file
from analyzer.ingest.profiles.boston import BOSTON_COLUMNS
from analyzer.store.database import Store

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"
FIX = ROOT / "tests" / "fixtures" / "ingest"

COLUMNS = list(BOSTON_COLUMNS)


def row(i: int, **changes: str) -> dict[str, str]:
    r = dict(
        zip(
            COLUMNS,
            [
                f"1030000{i:05d}",
                "2020-04-02T09:00:00-04:00",
                "2020-04-03T09:00:00-04:00",
                "open",
                "Other",
                "4f38920fe75084437f0001a0",
                f"Streetlight out on the corner, report {i}",
                "",
                "10 Oak St, Roslindale",
                "42.2859",
                "-71.1311",
                "",
            ],
            strict=True,
        )
    )
    r.update(changes)
    return r


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def snapshot(db: Path) -> dict[str, pd.DataFrame]:
    with Store(db) as s:  # read-write open: replays (or discards) whatever the WAL holds
        return {
            "records": s.query_df("SELECT * EXCLUDE (ingested_at) FROM records ORDER BY id"),
            "rejects": s.query_df(
                "SELECT * EXCLUDE (rejected_at) FROM rejects ORDER BY file_hash, row_number"
            ),
            "files": s.query_df("SELECT * EXCLUDE (ingested_at) FROM files ORDER BY file_hash"),
        }


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k], check_dtype=False)


def test_ingest_status_rejects_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.duckdb")
    p = write(tmp_path / "r.csv", [row(1), row(2, lat="123.4"), row(3, description="")])
    code, out, err = cli(["ingest", str(p), str(FIX / "socrata_311.csv"), "--store", db], capsys)
    assert code == 0, err
    assert (
        "r.csv (boston, csv, utf-8): 3 rows read, 1 loaded "
        "(1 new, 0 updated, 0 unchanged), 2 rejected" in out
    )
    assert "rejected 1: coordinates out of range" in out and "rejected 1: empty text" in out
    assert "socrata_311.csv (socrata-311" in out

    code, out, _ = cli(["status", "--store", db], capsys)
    assert code == 0
    assert "311" in out and "41" in out  # 1 Boston + 40 Socrata records
    assert "coordinates out of range" in out and "empty text" in out

    code, out, _ = cli(["rejects", "--store", db, "--limit", "5"], capsys)
    assert code == 0 and "rejects (2)" in out and "lat" in out

    code, out, _ = cli(["ingest", str(p), "--store", db], capsys)
    assert code == 0 and "already ingested" in out

    dest = tmp_path / "out" / "records.csv"
    code, out, _ = cli(
        [
            "export",
            "--output",
            str(dest),
            "--store",
            db,
            "--source",
            "311",
            "--since",
            "2020-04-01",
            "--until",
            "2020-05-01",
        ],
        capsys,
    )
    assert code == 0 and "wrote 1 records" in out
    exported = pd.read_csv(dest, dtype=str, keep_default_na=False)
    assert exported["id"].tolist() == ["boston:103000000001"]
    assert "raw_text" not in exported.columns
    assert exported.loc[0, "created_at"] == "2020-04-02T13:00:00Z"


def test_export_bad_date_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store(tmp_path / "s.duckdb").close()
    code, _, err = cli(
        [
            "export",
            "-o",
            str(tmp_path / "x.csv"),
            "--store",
            str(tmp_path / "s.duckdb"),
            "--since",
            "yesterday-ish",
        ],
        capsys,
    )
    assert (
        code == 2 and err.strip() == "error: --since: not a date: 'yesterday-ish' (use YYYY-MM-DD)"
    )


def test_status_without_a_store_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(["status", "--store", str(tmp_path / "none.duckdb")], capsys)
    assert code == 2 and "no store yet" in err


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+cmd", "'+1+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("-71.1311", "-71.1311"),  # a number is not a formula
        ("plain", "plain"),
    ],
)
def test_neutralise_formula(value: str, expected: str) -> None:
    assert neutralise_formula(value) == expected


def test_export_neutralises_formulas_and_never_leaks_pii(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.duckdb")
    phone, email = "617-555-0187", "r.okafor@example.net"
    rows = [
        row(1, description='=HYPERLINK("http://evil.example","click")'),
        row(2, description="@SUM(1+1) is what the sign says", service_name="+Other"),
        row(3, description=f"-1+1 pothole; call Ruth Okafor at {phone} or {email}"),
    ]
    code, _, err = cli(
        ["ingest", str(write(tmp_path / "f.csv", rows)), "--store", db, "--keep-raw"], capsys
    )
    assert code == 0, err
    dest = tmp_path / "e.csv"
    code, _, _ = cli(["export", "-o", str(dest), "--store", db], capsys)
    assert code == 0
    text = dest.read_text(encoding="utf-8")
    assert (
        phone not in text and email not in text and "Okafor" not in text
    )  # raw_text kept, not exported
    with open(dest, newline="", encoding="utf-8") as fh:
        out = {r["id"]: r for r in csv.DictReader(fh)}
    assert out["boston:103000000001"]["text"].startswith("'=HYPERLINK")
    assert out["boston:103000000002"]["text"].startswith("'@SUM")
    assert out["boston:103000000002"]["category"] == "'+Other"
    assert out["boston:103000000003"]["text"].startswith("'-1+1")
    assert out["boston:103000000003"]["lon"] == "-71.1311"
    for r in out.values():
        for v in r.values():
            assert not v.startswith(("=", "+", "@", "\t", "\r")) and not (
                v.startswith("-") and not v.replace(".", "", 1).lstrip("-").isdigit()
            ), v
    with Store(db, read_only=True) as s:  # --keep-raw did keep it, in the store only
        assert phone in s.scalar("SELECT raw_text FROM records WHERE id = 'boston:103000000003'")


def test_interrupt_between_chunks_rolls_back(tmp_path: Path) -> None:
    """The in-process half of the crash test: an exception after a chunk was staged."""
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        ingest_file(s, FIX / "socrata_311.csv", progress=False)
    before = snapshot(db)
    p = write(tmp_path / "big.csv", [row(i) for i in range(1, 31)])

    def boom(rows: int, share: float) -> None:
        raise KeyboardInterrupt

    with Store(db) as s, pytest.raises(KeyboardInterrupt):
        ingest_file(s, p, options=IngestOptions(chunk_rows=10), progress=boom)
    assert_same(before, snapshot(db))


@pytest.mark.slow
def test_sigkill_midway_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store(db) as s:  # a store with something in it already
        ingest_file(s, FIX / "socrata_311.csv", progress=False)
    before = snapshot(db)

    sample = pd.read_csv(SAMPLES / "boston_311_sample.csv", dtype=str, keep_default_na=False)
    big = tmp_path / "boston_part.csv"
    sample.head(800).to_csv(big, index=False)

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from analyzer.cli import main; main()",
            "ingest",
            str(big),
            "--store",
            str(db),
            "--chunk-rows",
            "40",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "rows read" in line or not line:
                break
        assert "40 rows read" in line, f"no progress line before the deadline: {line!r}"
        assert proc.poll() is None, "the ingest finished before it could be killed"
        # the first chunk is staged inside the open transaction: kill now, no cleanup possible
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    assert_same(before, snapshot(db))

    with Store(db) as s:  # and a re-run loads everything
        r = ingest_file(s, big, progress=False)
        assert r.rows_read == 800 and r.rows_loaded + r.rows_rejected == 800
        assert r.rows_inserted == r.rows_loaded
        assert s.scalar("SELECT count(*) FROM records") == len(before["records"]) + r.rows_loaded
