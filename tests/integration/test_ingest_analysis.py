"""What ingest decides, as the analysis sees it: theme ids from what the records are (not from
their source's name), boilerplate left out, and ``forget`` taking derived results with it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analyzer.analysis.pipeline import load_records, run_analysis
from analyzer.analysis.plan import make_plan
from analyzer.cli import main
from analyzer.config import load_settings
from analyzer.ingest import IngestOptions, ingest_file
from analyzer.store.database import Store

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "boston_311_sample.csv"
PLACEHOLDER = "This request was submitted to NYC 311 without a description."


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two Boston files ingested as ``--source nyc311`` (a city's own name), the second with
    placeholders, analysed once. Closed: tests copy it."""
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df = df[df["description"].str.len() > 20].sort_values("requested_datetime").head(150)
    folder = tmp_path_factory.mktemp("nyc")
    first, second = folder / "a.csv", folder / "b.csv"
    df.iloc[:100].to_csv(first, index=False)
    later = df.iloc[100:].copy()
    later.iloc[:15, later.columns.get_loc("description")] = PLACEHOLDER
    later.to_csv(second, index=False)
    path = folder / "s.duckdb"
    with Store(path) as st:
        for f in (first, second):
            opts = IngestOptions(profile="boston", source="nyc311")
            ingest_file(st, f, options=opts, progress=False)
        run_analysis(st, load_settings().with_overrides(store_path=path))
    return path, first, second


@pytest.fixture()
def store_copy(analysed: tuple[Path, Path, Path], tmp_path: Path, copy_store) -> Path:
    return copy_store(analysed[0], tmp_path)


def cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_a_renamed_311_source_gets_request_theme_ids(store_copy: Path) -> None:
    with Store(store_copy, read_only=True) as st:
        themes = st.query_df("SELECT theme_id, source FROM themes")
        kinds = st.query_df("SELECT DISTINCT kind FROM records")["kind"].tolist()
    assert kinds == ["311"]
    assert len(themes) and themes["theme_id"].str.match(r"REQ\d{4}").all()  # not "NYCX0001"
    assert set(themes["source"]) == {"nyc311"}


def test_boilerplate_gets_no_theme_and_no_sentiment(store_copy: Path) -> None:
    with Store(store_copy, read_only=True) as st:
        flagged = st.query_df("SELECT id FROM records WHERE boilerplate")["id"]
        derived = st.query_df(
            "SELECT record_id FROM assignments UNION ALL SELECT record_id FROM sentiment"
        )["record_id"]
        n_records = st.scalar("SELECT count(*) FROM records")
    assert len(flagged) == 15 and n_records == 150  # kept in the store
    assert not set(flagged) & set(derived)
    assert derived.nunique() == 135


def test_forgetting_a_file_takes_its_results_and_marks_the_source_for_a_refit(
    store_copy: Path, analysed: tuple[Path, Path, Path]
) -> None:
    second = analysed[2]
    assert cli(["forget", "--file", str(second), "--store", str(store_copy)]) == 0
    with Store(store_copy) as st:
        left = st.query_df(
            "SELECT (SELECT count(*) FROM records) AS r, "
            "(SELECT count(*) FROM assignments a LEFT JOIN records r ON r.id = a.record_id "
            " WHERE r.id IS NULL) AS orphans, "
            "(SELECT count(*) FROM files) AS f"
        )
        assert left.values.tolist() == [[100, 0, 1]]
        records = load_records(st, "model")
        plan = make_plan(st, records, False, None)
    assert plan.refit_sources == {"nyc311"}  # its themes were fitted with texts now gone


def test_forgetting_a_source_retires_its_themes(store_copy: Path) -> None:
    assert cli(["forget", "--source", "nyc311", "--store", str(store_copy)]) == 0
    with Store(store_copy, read_only=True) as st:
        status = st.query_df("SELECT DISTINCT status FROM themes")["status"].tolist()
        counts = st.query_df(
            "SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM assignments) "
            "+ (SELECT count(*) FROM sentiment) + (SELECT count(*) FROM emerging) AS n"
        )["n"][0]
    assert status == ["retired"] and counts == 0


def test_a_version_2_store_gets_each_record_s_kind_on_open(tmp_path: Path) -> None:
    """Schema 2 had no ``records.kind``: the migration derives it from what decided then (the
    source's name; a renamed source read by a 311 profile is requests; other names were shown
    as comments) and adds ``boilerplate`` (false)."""
    path = tmp_path / "v2.duckdb"
    with Store(path) as st:  # today's schema, taken back to version 2's records table
        st.execute("ALTER TABLE records DROP COLUMN kind")
        st.execute("ALTER TABLE records DROP COLUMN boilerplate")
        st.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        files = [("h1", "socrata-311 [text=descriptor]"), ("h2", "csv [text=body]")]
        for h, profile in files:
            st.execute(
                "INSERT INTO files (file_hash, path, profile) VALUES (?, ?, ?)", [h, h, profile]
            )
        rows = [
            ("a", "311", None),
            ("b", "nyc311", "h1"),
            ("c", "other", "h2"),
            ("d", "survey", None),
            ("e", "engagement", None),
        ]
        for rid, source, file_hash in rows:
            st.execute(
                "INSERT INTO records (id, source, text, text_hash, file_hash) "
                "VALUES (?, ?, 't', 'h', ?)",
                [rid, source, file_hash],
            )
    # read-only commands answer before any write has migrated the store
    assert cli(["status", "--store", str(path)]) == 0
    assert cli(["export", "--output", str(tmp_path / "out.csv"), "--store", str(path)]) == 0
    assert pd.read_csv(tmp_path / "out.csv")["kind"].isna().all()
    with Store(path) as st:
        got = st.query_df("SELECT id, kind, boilerplate FROM records ORDER BY id")
    assert got["kind"].tolist() == ["311", "311", "survey", "survey", "engagement"]
    assert not got["boilerplate"].any()
