"""Opinions end to end: votes ingested into the store (the Bowling Green sample, a Polis export
folder, a bad votes file), ``civicpulse opinions`` stateless and on the store, and the API."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analyzer.cli import main
from analyzer.config import Settings
from analyzer.store.database import Store
from tests.conftest import SHARED, needs_shared

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"
COMMENTS = SAMPLES / "bowling_green_comments.csv"
VOTES = SAMPLES / "bowling_green_participants-votes.csv.gz"
POLIS = SHARED / "polis_opendata"


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Bowling Green sample's comments and votes, ingested as `make run` does (closed)."""
    from analyzer.ingest import ingest_file
    from analyzer.ingest.votes import ingest_votes_input

    path = tmp_path_factory.mktemp("opinions") / "store.duckdb"
    with Store(path) as st:
        ingest_file(st, COMMENTS, progress=False)
        ingest_votes_input(st, VOTES, progress=False)
    return path


@pytest.fixture()
def store_file(sample_store: Path, tmp_path: Path, copy_store: Callable[..., Path]) -> Path:
    return copy_store(sample_store, tmp_path)


def test_sample_votes_load_with_their_statements(store_file: Path) -> None:
    with Store(store_file, read_only=True) as st:
        conv = st.query_df("SELECT * FROM conversations")
        assert conv["conversation_id"].tolist() == ["bowling_green"]
        assert conv.loc[0, "statement_prefix"] == "polis:bowling_green_comments:"
        assert st.scalar("SELECT count(*) FROM votes") == 225_524
        assert st.scalar("SELECT count(DISTINCT participant_id) FROM votes") == 2031
        assert st.scalar("SELECT sum(CASE WHEN vote = 1 THEN 1 END) FROM votes") > 100_000
        grouped = st.scalar(
            "SELECT count(*) FROM conversation_participants WHERE source_group IS NOT NULL"
        )
        assert grouped == 1581  # Polis put 1,581 participants in a group
        assert st.scalar("SELECT count(*) FROM rejects") == 0
        profile = st.scalar("SELECT profile FROM files WHERE path LIKE '%votes.csv.gz'")
        assert profile == "polis-participants-votes [bowling_green]"


def test_opinions_on_the_store_are_recorded_and_kept(
    store_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bg.json"
    args = ["opinions", "--conversation", "bowling_green", "--store", str(store_file)]
    code, _, err = cli([*args, "--output", str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["conversation"]["participants"] == 2031
    assert result["conversation"]["statements"] == 896
    assert len(result["groups"]) >= 2
    assert (
        sum(g["size"] for g in result["groups"]) == result["conversation"]["clustered_participants"]
    )
    with Store(store_file, read_only=True) as st:
        texts = dict(
            st.query_df(
                "SELECT substr(id, 30) AS sid, text FROM records "
                "WHERE starts_with(id, 'polis:bowling_green_comments:')"
            ).itertuples(index=False, name=None)
        )
        run = st.query_df("SELECT kind, status, manifest FROM runs WHERE kind = 'opinions'")
    # statement texts are the stored (redacted) records, by the export's own ids
    assert all(s["text"] == texts[str(s["statement_id"])] for s in result["statements"])
    assert any(s["flags"] for s in result["statements"])
    assert len(run) == 1 and run.loc[0, "status"] == "done"
    manifest = json.loads(run.loc[0, "manifest"])
    assert manifest["seed"] == 42 and manifest["parameters"]["method"] == "civicpulse"
    assert manifest["conversation_id"] == "bowling_green" and manifest["input_hash"]
    code, _, err = cli(args, capsys)  # unchanged input and settings: the kept result
    assert code == 0 and "(kept)" in err and result["run"]["run_id"] in err
    code, _, _ = cli([*args, "--use-source-groups", "--output", str(out)], capsys)
    polis = json.loads(out.read_text())
    assert sorted(g["size"] for g in polis["groups"]) == [753, 828]


def test_api_lists_conversations_and_serves_opinions(store_file: Path) -> None:
    from api.app import create_app

    settings = Settings(
        store_path=store_file,
        tagger_model=str(store_file.parent / "no-tagger-here"),
        rate_limit_per_minute=10_000,
    )
    with TestClient(create_app(settings)) as client:
        listing = client.get("/v1/conversations").json()
        assert listing["total"] == 1
        conv = listing["items"][0]
        assert conv["conversation_id"] == "bowling_green" and conv["votes"] == 225_524
        assert conv["has_source_groups"] and conv["statements_with_text"] == 896
        r = client.get("/v1/conversations/bowling_green/opinions", params={"method": "polis"})
        assert r.status_code == 200
        body = r.json()
        assert body["method"]["method"] == "polis" and 2 <= len(body["groups"]) <= 5
        assert len(body["participants"]) == 2031
        assert {"statement_id", "text", "gic", "agree_by_group", "flags"} <= set(
            body["statements"][0]
        )
        again = client.get("/v1/conversations/bowling_green/opinions", params={"method": "polis"})
        assert again.json()["run"]["cached"] and again.json()["groups"] == body["groups"]
        missing = client.get("/v1/conversations/nowhere/opinions")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert (
            client.get("/v1/conversations/bowling_green/opinions?max_groups=1").status_code == 422
        )


def test_bad_votes_are_quarantined_with_their_row_and_reason(
    store_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes = tmp_path / "bowling_green_votes.csv"
    votes.write_text(
        "participant,statement_id,vote,time\n"
        "9001,1,1,2018-02-10T10:00:00Z\n"
        "9001,2,agree,2018-02-10T10:01:00Z\n"
        "9002,1,7,2018-02-10T10:02:00Z\n"
        ",3,1,2018-02-10T10:03:00Z\n"
        "9003,2,-1,yesterday-ish\n",
        encoding="utf-8",
    )
    code, out, err = cli(["ingest", str(votes), "--store", str(store_file)], capsys)
    assert code == 0, err
    assert "conversation 'bowling_green'" in out and "2 votes loaded" in out
    assert "3 rejected" in out
    with Store(store_file, read_only=True) as st:
        rejects = st.query_df(
            "SELECT row_number, column_name, reason FROM rejects ORDER BY row_number"
        )
        assert st.scalar("SELECT count(*) FROM votes WHERE participant_id = '9001'") == 2
    assert rejects.values.tolist() == [
        [3, "vote", "vote must be 1 (agree), -1 (disagree) or 0 (pass)"],
        [4, "participant", "no participant id"],
        [5, "time", "time not understood"],
    ]
    header_only = tmp_path / "empty_votes.csv"
    header_only.write_text("participant,statement_id,vote\n", encoding="utf-8")
    code, _, err = cli(["ingest", str(header_only), "--store", str(store_file)], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "empty_votes.csv" in err


def test_source_groups_requested_where_the_export_has_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes = tmp_path / "town_votes.csv"
    rows = ["voter-id,comment-id,vote"] + [
        f"{p},{s},{1 if (p + s) % 3 else -1}" for p in range(30) for s in range(8)
    ]
    votes.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, _, err = cli(
        ["opinions", "--input", str(votes), "--use-source-groups", "--no-themes"], capsys
    )
    assert code == 2 and "group-id" in err
    out = tmp_path / "town.json"
    code, _, err = cli(
        ["opinions", "--input", str(votes), "--no-themes", "--output", str(out)], capsys
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["conversation"]["conversation_id"] == "town"
    assert result["statements"][0]["text"] == "" and result["themes"] == []


@needs_shared
def test_gic_with_polis_groups_equals_polis_published_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = POLIS / "bg2050-volunteers"
    out = tmp_path / "bg2050.json"
    code, _, err = cli(
        [
            "opinions",
            "--input",
            str(folder),
            "--use-source-groups",
            "--no-themes",
            "--output",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    published = pd.read_csv(folder / "comments.csv").set_index("comment-id")
    ours = {s["statement_id"]: s["gic"] for s in result["statements"]}
    assert set(ours) == set(published.index)
    for cid, expected in published["group-informed-consensus"].items():
        assert ours[cid] == pytest.approx(expected, abs=1e-9), cid
    assert sorted(g["size"] for g in result["groups"]) == [8, 100]


@needs_shared
def test_polis_export_folder_ingests_comments_and_votes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bg2050-volunteers"
    shutil.copytree(POLIS / "bg2050-volunteers", folder)
    db = str(tmp_path / "s.duckdb")
    code, out, err = cli(["ingest", str(folder), "--store", db], capsys)
    assert code == 0, err
    assert "371 loaded" in out and "14,283 votes loaded" in out
    with Store(db) as st:
        from analyzer.opinions import OpinionModel, conversation_opinions

        title = st.scalar("SELECT title FROM conversations")
        assert title == "Together, we'll build the BG of 2050."
        result = conversation_opinions(
            st, "bg2050-volunteers", OpinionModel(use_source_groups=True)
        )
    published = pd.read_csv(folder / "comments.csv").set_index("comment-id")
    for s in result["statements"]:
        expected = published.loc[s["statement_id"], "group-informed-consensus"]
        assert s["gic"] == pytest.approx(expected, abs=1e-9)
    moderated = int((published["moderated"] == -1).sum())
    assert result["conversation"]["moderated_out"] == moderated


@needs_shared
def test_sample_votes_are_the_polis_export_unchanged() -> None:
    source = POLIS / "american-assembly.bowling-green" / "participants-votes.csv"
    shipped = gzip.decompress(VOTES.read_bytes())
    assert hashlib.sha256(shipped).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()


@pytest.mark.slow
def test_stateless_opinions_join_themes_of_the_statements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bg"
    folder.mkdir()
    shutil.copy(COMMENTS, folder / "comments.csv")
    (folder / "participants-votes.csv").write_bytes(gzip.decompress(VOTES.read_bytes()))
    out = tmp_path / "bg.json"
    code, _, err = cli(["opinions", "--input", str(folder), "--output", str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    themed = [s for s in result["statements"] if s["theme_id"]]
    assert len(themed) > len(result["statements"]) / 2
    assert result["themes"] and all(t["verdict"] for t in result["themes"])
    assert {g["group_id"] for g in result["themes"][0]["groups"]} == {
        g["group_id"] for g in result["groups"]
    }


def test_forgetting_a_votes_file_removes_its_votes(
    store_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(["forget", "--file", str(VOTES), "--store", str(store_file)], capsys)
    assert code == 0, out
    assert "225,524 votes removed" in out
    with Store(store_file, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM votes") == 0
        assert st.scalar("SELECT count(*) FROM conversation_participants") == 0
        assert st.scalar("SELECT count(*) FROM files WHERE path LIKE '%votes.csv.gz'") == 0
        assert st.scalar("SELECT count(*) FROM records") > 0  # the statements stay


def test_concurrent_reads_share_the_store_without_a_server_error(store_file: Path) -> None:
    """The API's threads share one DuckDB connection: a parallel fuzz run once got 500s
    (ResourceInUseException) from an unlocked catalogue read on the opinions route."""
    from concurrent.futures import ThreadPoolExecutor

    from api.app import create_app

    settings = Settings(
        store_path=store_file,
        tagger_model=str(store_file.parent / "no-tagger-here"),
        rate_limit_per_minute=100_000,
    )
    paths = [
        "/v1/conversations",
        "/v1/conversations/0/opinions",
        "/v1/conversations/nowhere/opinions",
        "/open311/v2/tokens/nope.json",
        "/open311/v2/requests/nope.json",
        "/v1/themes",
        "/healthz",
    ] * 12
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda p: client.get(p).status_code, paths))
    assert all(c < 500 for c in codes), sorted(set(codes))
