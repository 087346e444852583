"""Issue #22, finding 4: a run whose process died is marked failed the next time the store is
opened for writing, instead of staying ``running`` in /v1/runs forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from analyzer.config import Settings
from analyzer.store.database import Store

ROOT = Path(__file__).resolve().parents[2]

# ``civicpulse analyze`` in a child process that stops (forever) once embedding has begun: the
# run is then really at its embedding stage when the test kills it.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from analyzer.embedding.embedder import Embedder

    flag = Path(sys.argv[2])

    def embed(self, *args, **kwargs):
        flag.write_text("embedding")
        time.sleep(600)

    Embedder.embed = embed
    from analyzer.cli import main
    main(["analyze", "--store", sys.argv[1]])
    """
)


def _run_rows(path: Path) -> list[tuple]:
    with Store(path, read_only=True) as store:
        return store.con.execute(
            "SELECT run_id, status, message FROM runs ORDER BY started_at"
        ).fetchall()


def test_analyze_killed_at_embedding_is_marked_failed_on_next_open(
    api_store_file: Path, tmp_path: Path, copy_store
) -> None:
    path = copy_store(api_store_file, tmp_path)
    before = {r[0] for r in _run_rows(path)}
    flag = tmp_path / "embedding.flag"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(flag)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert child.poll() is None, "analyze exited before it reached embedding"
            assert time.monotonic() < deadline, "analyze never reached embedding"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    with Store(path) as store:  # opened for writing: the check runs here
        [(run_id, status, message, progress, finished)] = [
            row
            for row in store.con.execute(
                "SELECT run_id, status, message, progress, finished_at IS NOT NULL FROM runs"
            ).fetchall()
            if row[0] not in before
        ]
        assert status == "failed" and finished, (status, message)
        assert getattr(store, "interrupted_runs", None) == [run_id]
    assert message.startswith(f"interrupted: its process (PID {child.pid}) ended")
    assert 0 < progress < 0.55  # it was killed while embedding, before the themes

    # What the API shows: the run failed, with why (the store opens again without it).
    from api.app import create_app

    settings = Settings(store_path=path, tagger_model=str(tmp_path / "no-tagger"))
    with TestClient(create_app(settings)) as client:
        runs = {r["run_id"]: r for r in client.get("/v1/runs").json()["items"]}
    assert runs[run_id]["status"] == "failed"
    assert "interrupted" in runs[run_id]["message"]


def test_rules_for_owners_on_this_and_other_hosts(tmp_path: Path) -> None:
    """Same host: the owner PID decides (a live one keeps its run, a finished one fails it);
    another host: the heartbeat decides; no owner at all (an older version's run): failed."""
    import socket

    from analyzer.store.runs import STALE_AFTER, process_start

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    now = datetime.now(UTC).timestamp()
    stale = STALE_AFTER.total_seconds()
    owners = {
        "alive-here": (host, os.getpid(), process_start(os.getpid()), now - 10 * stale),
        "gone-here": (host, gone.pid, "", now),
        "recycled-pid": (host, os.getppid(), "1", now),  # a live PID, another start time
        "fresh-elsewhere": ("elsewhere", 1, "", now - stale / 2),
        "silent-elsewhere": ("elsewhere", 1, "", now - stale - 60),
        "no-owner": None,
    }
    path = tmp_path / "runs.duckdb"
    with Store(path) as store:
        for run_id, owner in owners.items():
            store.execute(
                "INSERT INTO runs VALUES (?, 'analyze', 'running', current_timestamp, NULL, "
                "0.1, 'embedding', '{}')",
                [run_id],
            )
            if owner:
                store.execute(
                    "INSERT INTO run_owners VALUES (?, ?, ?, ?, to_timestamp(?))", [run_id, *owner]
                )
        store.execute(
            "INSERT INTO runs VALUES ('done-long-ago', 'analyze', 'done', current_timestamp, "
            "current_timestamp, 1, 'done', '{}')"
        )
    with Store(path) as store:
        failed = set(store.interrupted_runs)
        status = dict(store.con.execute("SELECT run_id, status FROM runs").fetchall())
    assert failed == {"gone-here", "recycled-pid", "silent-elsewhere", "no-owner"}
    assert {r for r, s in status.items() if s == "running"} == {"alive-here", "fresh-elsewhere"}
    assert status["done-long-ago"] == "done"
    # read-only opens change nothing
    with Store(path, read_only=True) as store:
        assert store.interrupted_runs == []


def test_a_run_records_its_owner_and_heartbeat(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        store.start_run("r1", "analyze", {})
        query = "SELECT pid, epoch(heartbeat_at) FROM run_owners"
        first = store.con.execute(query).fetchone()
        time.sleep(0.01)
        store.update_run("r1", progress=0.5, message="themes")
        pid, beat = store.con.execute(query).fetchone()
    assert pid == os.getpid() == first[0] and beat > first[1]
    # this process still runs it: opening the store again (same process) keeps it running
    with Store(tmp_path / "s.duckdb") as store:
        assert store.interrupted_runs == []
