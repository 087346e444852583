"""Rebuild the three data samples from ../shared/data_raw, redacted with analyzer.ingest.privacy.redact.

    python data_samples/build_samples.py            # writes data_samples/*.csv, prints counts
    python data_samples/build_samples.py --check    # rebuild in memory, compare with the files

Deterministic: fixed seeds, inputs sorted before sampling. Exits 0 with a "skipped" line when
../shared/data_raw (or $CIVICPULSE_DATA_RAW) is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data_samples"
SEED = 42

BOSTON_FILES = {
    "Illegal Parking": "boston_open311_illegal_parking.csv",
    "Other": "boston_open311_other.csv",
    "Sidewalk Not Shoveled": "boston_open311_sidewalk_not_shoveled.csv",
    "Abandoned Vehicle": "boston_open311_abandoned_vehicle.csv",
    "Unsafe Dangerous Conditions": "boston_open311_unsafe_dangerous_conditions.csv",
}
# rows per service outside the COVID-19 window; with COVID_ROWS the sample has 5,000 rows
BOSTON_QUOTA = {
    "Illegal Parking": 1400,
    "Other": 1250,
    "Sidewalk Not Shoveled": 900,
    "Abandoned Vehicle": 700,
    "Unsafe Dangerous Conditions": 300,
}
# "Other" requests of March-April 2020 (with a description): the emerging-need slice (COVID-19)
COVID_ROWS = 450
COVID_MONTHS = ("2020-03", "2020-04")

POLIS_CONVERSATION = "american-assembly.bowling-green"

# A last check after redaction, not a redactor: rows where something that looks like personal
# data is still there (a house number left on the address, a phone- or e-mail-like string, a URL
# carrying an address) are left out of the sample rather than shipped.
_RESIDUAL = re.compile(
    r"(?<!\d)(?:\(?\d{3}\)?[\s.-]?)\d{3}[\s.-]?\d{4}(?!\d)"  # phone-like digit runs
    r"|[\w.+-]+@[\w-]+\.[A-Za-z]{2,}"  # e-mail
    r"|https?://\S*\d+[-_][A-Za-z]+[-_](?:St|Ave|Rd|Street|Avenue|Road)\b",  # address in a URL
    re.IGNORECASE,
)
_HOUSE_NUMBER_LEFT = re.compile(r"^\s*\d+[A-Za-z]{0,2}(?:[-–]\d+)?[A-Za-z]*\s*[A-Za-z]")


def data_raw() -> Path | None:
    env = os.environ.get("CIVICPULSE_DATA_RAW")
    path = Path(env) if env else ROOT.parent / "shared" / "data_raw"
    return path if path.is_dir() else None


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _redact_column(values: pd.Series) -> tuple[pd.Series, int]:
    """Each distinct non-empty value redacted once; returns the column and the cells changed."""
    from analyzer.ingest.privacy.redact import redact_many

    uniq = sorted({v for v in values if v.strip()})
    mapping = {u: r.text for u, r in zip(uniq, redact_many(uniq), strict=True)}
    out = values.map(lambda v: mapping.get(v, v))
    return out, int((out != values).sum())


def _spread_over_years(df: pd.DataFrame, quota: int, seed: int) -> pd.DataFrame:
    """About the same number of rows from every year (all of a year when it has fewer)."""
    years = df["requested_datetime"].str[:4]
    groups = sorted(years.unique())
    remaining, picked = quota, []
    # smallest years first, so what they cannot fill is shared among the larger ones
    sizes = years.value_counts()
    for i, year in enumerate(sorted(groups, key=lambda y: sizes[y])):
        share = math.ceil(remaining / (len(groups) - i))
        rows = df[years == year]
        take = rows.sample(n=min(share, len(rows)), random_state=seed)
        picked.append(take)
        remaining -= len(take)
    return pd.concat(picked)


def build_boston(raw: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    base = raw / "boston_open311"
    parts, stats = [], {}
    for service, name in BOSTON_FILES.items():
        df = _read(base / name).sort_values("service_request_id", kind="stable")
        if service == "Other":
            month = df["requested_datetime"].str[:7]
            window = df[month.isin(COVID_MONTHS) & (df["description"].str.strip() != "")]
            covid = window.sample(n=min(COVID_ROWS, len(window)), random_state=SEED)
            parts.append(covid)
            stats["other_mar_apr_2020"] = len(covid)
            df = df[~month.isin(COVID_MONTHS)]
        parts.append(_spread_over_years(df, BOSTON_QUOTA[service], SEED))
    sample = pd.concat(parts).sort_values(["requested_datetime", "service_request_id"])
    sample = sample.reset_index(drop=True)

    from analyzer.ingest.privacy.redact import redact_address

    sample["description"], stats["descriptions_changed"] = _redact_column(sample["description"])
    sample["status_notes"], stats["status_notes_changed"] = _redact_column(sample["status_notes"])
    address = sample["address"].map(lambda a: redact_address(a) or "" if a else "")
    stats["addresses_changed"] = int((address != sample["address"]).sum())
    sample["address"] = address
    residual = (
        sample["description"].str.contains(_RESIDUAL)
        | sample["status_notes"].str.contains(_RESIDUAL)
        | sample["address"].str.contains(_HOUSE_NUMBER_LEFT)
    )
    stats["left_out_after_check"] = int(residual.sum())
    sample = sample[~residual].reset_index(drop=True)
    stats["rows"] = len(sample)
    stats["by_service"] = sample["service_name"].value_counts().to_dict()
    stats["by_year"] = sample["requested_datetime"].str[:4].value_counts().sort_index().to_dict()
    stats["empty_descriptions"] = int((sample["description"].str.strip() == "").sum())
    return sample, stats


def build_polis(raw: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    df = _read(raw / "polis_opendata" / POLIS_CONVERSATION / "comments.csv")
    df["comment-body"], changed = _redact_column(df["comment-body"])
    residual = df["comment-body"].str.contains(_RESIDUAL)
    df = df[~residual].reset_index(drop=True)
    return df, {
        "rows": len(df),
        "comments_changed": changed,
        "left_out_after_check": int(residual.sum()),
    }


def build_austin(raw: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    df = _read(raw / "austin_community_survey" / "austin_community_survey_comments_2016_2017.csv")
    df["comment"], changed = _redact_column(df["comment"])
    residual = df["comment"].str.contains(_RESIDUAL)
    df = df[~residual].reset_index(drop=True)
    return df, {
        "rows": len(df),
        "comments_changed": changed,
        "left_out_after_check": int(residual.sum()),
        "by_year": df["year"].value_counts().sort_index().to_dict(),
    }


SAMPLES = {
    "boston_311_sample.csv": (build_boston, "boston_open311"),
    "bowling_green_comments.csv": (
        build_polis,
        f"polis_opendata/{POLIS_CONVERSATION}/comments.csv",
    ),
    "austin_survey_comments.csv": (
        build_austin,
        "austin_community_survey/austin_community_survey_comments_2016_2017.csv",
    ),
}


def _csv_bytes(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the files, write nothing"
    )
    parser.add_argument("--only", choices=sorted(SAMPLES), help="build one sample")
    args = parser.parse_args(argv)
    raw = data_raw()
    if raw is None:
        print("[build_samples] skipped: ../shared/data_raw is absent")
        return 0
    sys.path.insert(0, str(ROOT))
    status = 0
    for name, (build, source) in SAMPLES.items():
        if args.only and name != args.only:
            continue
        df, stats = build(raw)
        data = _csv_bytes(df)
        target = OUT / name
        if args.check:
            same = target.is_file() and target.read_bytes() == data
            print(f"{name}: {'identical' if same else 'DIFFERENT'}")
            status |= 0 if same else 1
            continue
        target.write_bytes(data)
        src = raw / source
        src_hash = _sha256(src) if src.is_file() else "(folder)"
        print(
            f"{name}: {len(df):,} rows, {len(data) / 1e6:.2f} MB, "
            f"sha256 {hashlib.sha256(data).hexdigest()[:16]}; source {source} {src_hash[:16]}"
        )
        print(f"  {stats}")
    return status


if __name__ == "__main__":
    sys.exit(main())
