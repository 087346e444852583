"""The stateless CLI contracts of DESIGN.md: embed, cluster, sentiment (CSV in, CSV out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "austin_survey_comments.csv"


def run_cli(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def comments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = pd.read_csv(SAMPLE, dtype=str).sample(n=150, random_state=1)
    path = tmp_path_factory.mktemp("in") / "comments.csv"
    df.to_csv(path, index=False)
    return path


def test_embed_contract(comments: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.npy"
    assert (
        run_cli("embed", "--input", str(comments), "--text-col", "comment", "--output", str(out))
        == 0
    )
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr.shape == (150, 384)
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-4)
    # input order is kept: reversing the input reverses the rows
    rev = tmp_path / "rev.csv"
    pd.read_csv(comments, dtype=str).iloc[::-1].to_csv(rev, index=False)
    out2 = tmp_path / "e2.npy"
    assert (
        run_cli("embed", "--input", str(rev), "--text-col", "comment", "--output", str(out2)) == 0
    )
    back = np.load(out2)[::-1]
    # the same vectors in the same places; the int8-static backend computes in bf16, so a text
    # packed beside other texts may move in the 4th decimal (cosine 0.9997 at worst seen)
    cos = np.sum(back * arr, axis=1)
    assert cos.min() > 0.999, cos.min()
    assert np.median(np.abs(back - arr).max(axis=1)) < 1e-5  # most rows: identical


def test_cluster_contract(comments: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    assert (
        run_cli("cluster", "--input", str(comments), "--text-col", "comment", "--output", str(out))
        == 0
    )
    src = pd.read_csv(comments, dtype=str)
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(res.columns[: len(src.columns)]) == list(src.columns)
    for col in ("theme_id", "theme_label", "parent_theme_id", "parent_theme_label"):
        assert col in res.columns
    assigned = res[res["theme_id"] != ""]
    assert len(assigned) >= 0.9 * len(res)
    # the finest level is a sub-theme of its parent
    assert (assigned.apply(lambda r: r["theme_id"].startswith(r["parent_theme_id"]), axis=1)).all()
    assert res.loc[res["theme_id"] == "", "theme_label"].eq("unassigned").all()


def test_cluster_leaves_placeholders_and_empty_texts_out(comments: Path, tmp_path: Path) -> None:
    """As `analyze` does: "See photo" rows and empty rows join no theme (none is named for them);
    --keep-boilerplate clusters the placeholders."""
    src = pd.read_csv(comments, dtype=str, keep_default_na=False)
    src.loc[src.index[:12], "comment"] = "See photo"
    src.loc[src.index[12:15], "comment"] = ""
    path, out = tmp_path / "with_placeholders.csv", tmp_path / "c.csv"
    src.to_csv(path, index=False)
    args = ("cluster", "--input", str(path), "--text-col", "comment", "--output", str(out))
    assert run_cli(*args) == 0
    res = pd.read_csv(out, dtype=str, keep_default_na=False)
    left_out = res["comment"].isin(["See photo", ""])
    assert (res.loc[left_out, "theme_id"] == "").all()
    assert res.loc[left_out, "parent_theme_label"].eq("unassigned").all()
    assert not res["theme_label"].str.contains("photo").any()
    assert run_cli(*args, "--keep-boilerplate") == 0
    kept = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (kept.loc[kept["comment"] == "See photo", "theme_id"] != "").any()


def test_sentiment_contract(comments: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert (
        run_cli(
            "sentiment", "--input", str(comments), "--text-col", "comment", "--output", str(out)
        )
        == 0
    )
    res = pd.read_csv(out)
    assert set(res["sentiment"]) <= {"negative", "neutral", "positive"}
    assert res["sentiment_score"].between(-1, 1).all()
    neg = res.loc[res["sentiment"] == "negative", "sentiment_score"]
    pos = res.loc[res["sentiment"] == "positive", "sentiment_score"]
    if len(neg) and len(pos):
        assert neg.mean() < pos.mean()


@pytest.mark.parametrize("command", ["embed", "cluster", "sentiment"])
def test_missing_text_column_is_exit_2(
    command: str, comments: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / ("o.npy" if command == "embed" else "o.csv")
    code = run_cli(command, "--input", str(comments), "--text-col", "nope", "--output", str(out))
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "comment" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_missing_file_is_exit_2(tmp_path: Path, capsys) -> None:
    code = run_cli(
        "sentiment",
        "--input",
        str(tmp_path / "absent.csv"),
        "--text-col",
        "t",
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert code == 2
    assert "absent.csv" in capsys.readouterr().err


def test_table_cells_show_a_missing_number_the_same_way() -> None:
    """A growth column with no figure in it holds None, one with some figures NaN: both '–'."""
    from analyzer.cli.nlp import _cell

    assert _cell(None) == "–" and _cell(float("nan")) == "–"
    assert _cell(0.25) == "0.25" and _cell(["a", "b"]) == '["a", "b"]' and _cell(0) == "0"
