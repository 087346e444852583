"""Issue #22, finding 1 on the CLI: dates near the calendar's ends are clamped by the one rule
(analyzer.common.clock) in ``themes export``, ``themes report`` and ``export``: exit 0 with the
same rows as no bound, never exit 1 with an OverflowError."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analyzer.cli import main
from tests.integration.api_support import PARKING


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture()
def store(api_store_file: Path, tmp_path: Path, copy_store) -> str:
    return str(copy_store(api_store_file, tmp_path))


@pytest.mark.parametrize(
    "bounds",
    [
        ["--until", "9999-12-31"],
        ["--since", "0001-01-01T00:00:00+05:00"],
        ["--since", "0001-01-01", "--until", "9999-12-31T23:59:59-05:00"],
    ],
)
def test_themes_export_and_report_clamp(
    bounds: list[str], store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.csv"
    code, _, err = cli(["themes", "export", PARKING, "--out", str(plain), "--store", store], capsys)
    assert code == 0, err
    edged = tmp_path / "edged.csv"
    code, _, err = cli(
        ["themes", "export", PARKING, "--out", str(edged), "--store", store, *bounds], capsys
    )
    assert code == 0, err
    assert len(pd.read_csv(edged)) == len(pd.read_csv(plain)) > 0
    page = tmp_path / "report.html"
    code, _, err = cli(
        ["themes", "report", PARKING, "--out", str(page), "--store", store, *bounds], capsys
    )
    assert code == 0, err


def test_export_clamps(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records.csv"
    code, printed, err = cli(
        [
            "export",
            "-o",
            str(out),
            "--store",
            store,
            "--since",
            "0001-01-01T00:00:00+05:00",
            "--until",
            "9999-12-31",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(pd.read_csv(out)) > 0 and "wrote" in printed


def test_a_reversed_range_beyond_the_ends_is_still_refused(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        [
            "themes",
            "export",
            PARKING,
            "--out",
            str(tmp_path / "x.csv"),
            "--store",
            store,
            "--since",
            "9999-12-31",
            "--until",
            "9999-01-01",
        ],
        capsys,
    )
    assert code == 2 and "--until must be after --since" in err
