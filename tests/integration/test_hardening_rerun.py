"""Issue #22, finding 4 (second half): ``civicpulse analyze`` killed (-9) at the embedding stage
or at the themes stage, then run again, gives exactly the themes (ids, sizes) and assignments of
an uninterrupted run on a copy of the same store.

A killed run leaves vectors in the cache (written chunk by chunk, so that the next run resumes).
Vectors read from the cache went through its float16 codec; vectors just embedded had not, and
the run used them as they were: on 2,500 Boston requests a re-run after a kill at either stage
gave themes of other sizes (theme REQ0002: 184 records against 183) and other assignments. The
runs here use chunks of 300 texts, so that a small sample has several.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_ROWS = 2500
CHUNK = 300

# ``civicpulse analyze`` with chunks of CHUNK texts; with a stage named, it stops there (forever,
# after writing the flag file) so that the test kills it at that stage.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import analyzer.embedding.embedder as embedder
    from analyzer.store.database import Store

    store, chunk, stage, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    embedder.CHUNK_TEXTS = chunk
    if stage == "embedding":  # after the first chunk reached the cache
        put = Store.put_embeddings

        def put_then_stop(self, *args, **kwargs):
            put(self, *args, **kwargs)
            flag.write_text(stage)
            time.sleep(600)

        Store.put_embeddings = put_then_stop
    elif stage == "themes":
        import analyzer.analysis.pipeline as pipeline

        def stop(*args, **kwargs):
            flag.write_text(stage)
            time.sleep(600)

        pipeline.run_themes = stop
    from analyzer.cli import main
    main(["analyze", "--store", store])
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CIVICPULSE_TAGGER_MODEL": str(tmp_path / "no-model"),
        "CIVICPULSE_CONFIG": str(tmp_path / "none.toml"),
    }


def _analyze(store: Path, tmp_path: Path, stage: str = "") -> None:
    flag = tmp_path / f"{store.stem}.{stage or 'done'}.flag"
    cmd = [sys.executable, "-c", CHILD, str(store), str(CHUNK), stage, str(flag)]
    if not stage:
        done = subprocess.run(
            cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return
    child = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 600
        while not flag.exists():
            assert child.poll() is None, f"analyze exited before the {stage} stage"
            assert time.monotonic() < deadline, f"analyze never reached the {stage} stage"
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _outcome(store: Path) -> tuple[list[tuple], list[tuple], int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        themes = con.execute(
            "SELECT theme_id, parent_id, size FROM themes WHERE status = 'active' ORDER BY theme_id"
        ).fetchall()
        assigned = con.execute(
            "SELECT record_id, theme_id FROM assignments ORDER BY record_id"
        ).fetchall()
        cached = con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    finally:
        con.close()
    return themes, assigned, int(cached)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rerun")
    rows = pd.read_csv(ROOT / "data_samples" / "boston_311_sample.csv", dtype=str)
    rows = rows[rows["description"].fillna("").str.strip() != ""].head(SAMPLE_ROWS)
    data = folder / "requests.csv"
    rows.to_csv(data, index=False)
    store = folder / "base.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer.cli", "ingest", str(data), "--store", str(store)],
        cwd=ROOT,
        env=_env(folder),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return store


@pytest.fixture(scope="module")
def uninterrupted(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = tmp_path_factory.mktemp("uninterrupted")
    store = folder / "store.duckdb"
    shutil.copyfile(ingested, store)
    _analyze(store, folder)
    return _outcome(store)


@pytest.mark.slow  # three real analyses of 1,500 texts
@pytest.mark.parametrize("stage", ["embedding", "themes"])
def test_a_rerun_after_a_kill_equals_an_uninterrupted_run(
    stage: str, ingested: Path, uninterrupted: tuple, tmp_path: Path
) -> None:
    store = tmp_path / "store.duckdb"
    shutil.copyfile(ingested, store)
    _analyze(store, tmp_path, stage)
    _, assigned, cached = _outcome(store)
    assert not assigned  # nothing of the killed run's themes was written
    if stage == "embedding":
        assert 0 < cached < SAMPLE_ROWS  # it left part of the vectors behind
    _analyze(store, tmp_path)
    themes, assigned, cached = _outcome(store)
    want_themes, want_assigned, want_cached = uninterrupted
    assert cached == want_cached
    assert len(themes) == len(want_themes) and themes == want_themes
    assert assigned == want_assigned
