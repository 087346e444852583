"""data_samples/: sizes, shapes and the promises made in data_samples/README.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analyzer.ingest.profiles.boston import BOSTON_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"
DATA_RAW = ROOT.parent / "shared" / "data_raw"

PHONE = re.compile(r"(?<!\d)(?:\(?\d{3}\)?[\s.-]?)\d{3}[\s.-]?\d{4}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[A-Za-z]{2,}")


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLES / name, dtype=str, keep_default_na=False)


@pytest.mark.parametrize(
    "name", ["boston_311_sample.csv", "bowling_green_comments.csv", "austin_survey_comments.csv"]
)
def test_sample_exists_and_is_small(name: str) -> None:
    path = SAMPLES / name
    assert path.is_file()
    assert path.stat().st_size < 5 * 2**20
    assert name in (SAMPLES / "README.md").read_text(encoding="utf-8")


def test_boston_sample_shape() -> None:
    df = read("boston_311_sample.csv")
    assert list(df.columns) == list(
        BOSTON_COLUMNS
    )  # same columns as the source: the boston profile
    assert 4_800 <= len(df) <= 5_000
    assert df["service_name"].nunique() == 5
    years = df["requested_datetime"].str[:4]
    assert years.nunique() >= 12  # spread over 2008..2020
    assert years.value_counts().max() < 0.2 * len(df)
    month = df["requested_datetime"].str[:7]
    covid = df[(df["service_name"] == "Other") & month.isin(["2020-03", "2020-04"])]
    assert len(covid) >= 400
    assert df["lat"].astype(float).between(34, 43).all()  # coordinates are kept


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("boston_311_sample.csv", ["description", "status_notes"]),
        ("bowling_green_comments.csv", ["comment-body"]),
        ("austin_survey_comments.csv", ["comment"]),
    ],
)
def test_samples_hold_no_phone_numbers_or_emails(name: str, columns: list[str]) -> None:
    df = read(name)
    for c in columns:
        assert not df[c].str.contains(PHONE).any(), c
        assert not df[c].str.contains(EMAIL).any(), c


def test_boston_addresses_have_no_house_numbers() -> None:
    addresses = read("boston_311_sample.csv")["address"]
    assert not addresses.str.match(r"\s*\d+[A-Za-z]{0,2}(?:[-–]\d+)?[A-Za-z]*\s*[A-Za-z]").any()


@pytest.mark.slow
@pytest.mark.skipif(not DATA_RAW.is_dir(), reason="../shared/data_raw is absent")
def test_build_samples_reproduces_the_files() -> None:
    out = subprocess.run(
        [sys.executable, str(SAMPLES / "build_samples.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
