"""Issue #22, several API processes on one store: ``civicpulse serve --publish-every`` publishes a
read-only snapshot and the live keys' hashes beside the store; ``civicpulse serve --replica-of``
serves the same API from the snapshot, read-only, refuses writes naming the primary, reopens a
newer snapshot, and refuses a key revoked on the primary from its next request on."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings
from analyzer.errors import InputError
from analyzer.store.database import Store
from analyzer.store.replica import (
    KeyFile,
    Publisher,
    Snapshot,
    key_file,
    publish_snapshot,
    snapshot_file,
    write_key_file,
)
from api.app import create_app
from api.keys import create_key, revoke_key, verify_key_file
from tests.integration.live_support import free_port, stop, wait_for

CLI = [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CIVICPULSE_TAGGER_MODEL": str(tmp_path / "no-model"),
        "CIVICPULSE_CONFIG": str(tmp_path / "none.toml"),
        "CIVICPULSE_STORE_PATH": str(tmp_path / "unused.duckdb"),
    }


def _label(store: Store, theme_id: str) -> str:
    return str(store.scalar("SELECT label FROM themes WHERE theme_id = ?", [theme_id]))


# -- in process: the snapshot, the key file, the gateway ------------------------------------------


def test_snapshot_holds_what_was_committed_and_a_replica_reopens_a_newer_one(
    tmp_path: Path, api_store_file: Path, copy_store
) -> None:
    path = copy_store(api_store_file, tmp_path)
    with Store(path) as store:
        theme = str(store.scalar("SELECT min(theme_id) FROM themes"))
        first = publish_snapshot(store)
        assert first.path == snapshot_file(path) and first.bytes > 0
        assert not Path(str(first.path) + ".wal").exists()
        replica = Snapshot(first.path)
        before = replica.store()
        assert before.read_only and _label(before, theme) == _label(store, theme)

        # a transaction still open on another connection is not in the next snapshot
        writer = store.con.cursor()
        writer.execute("BEGIN TRANSACTION")
        writer.execute("UPDATE themes SET label = 'uncommitted' WHERE theme_id = ?", [theme])
        publish_snapshot(store)
        writer.execute("ROLLBACK")
        assert _label(replica.store(), theme) != "uncommitted"

        store.execute("UPDATE themes SET label = 'renamed' WHERE theme_id = ?", [theme])
        publish_snapshot(store)
        after = replica.store()
        # DuckDB keeps one database per path and process: the replica must not get the old one
        assert after is not before and _label(after, theme) == "renamed"
        assert _label(before, theme) != "renamed"  # a request still reading the old one goes on
        assert replica.store() is after  # unchanged file: no reopen

        # a snapshot cut short (a copy still arriving) is not served: the previous one is
        whole = first.path.read_bytes()
        cut = first.path.with_name("cut.tmp")
        cut.write_bytes(whole[: len(whole) // 2])
        os.replace(cut, first.path)
        assert replica.store() is after
        replica.close()
        with pytest.raises(InputError, match="incomplete"):
            Snapshot(first.path).store()


def test_publisher_publishes_after_writes_only(tmp_path: Path, api_store_file: Path, copy_store):
    path = copy_store(api_store_file, tmp_path)
    with Store(path) as store:
        publisher = Publisher(store, every=0.2).start()
        try:
            deadline = time.monotonic() + 30
            while publisher.last is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert publisher.last is not None and not publisher.pending()
            mtime = snapshot_file(path).stat().st_mtime_ns
            time.sleep(0.6)  # three checks, nothing written: nothing published
            assert snapshot_file(path).stat().st_mtime_ns == mtime
            publisher.note_write()
            while publisher.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not publisher.pending()
            assert snapshot_file(path).stat().st_mtime_ns != mtime
        finally:
            publisher.close()


def test_key_file_follows_every_key_change(tmp_path: Path) -> None:
    with Store(tmp_path / "keys.duckdb") as store:
        kept, _ = create_key(store, "kept", "read")
        written = write_key_file(store)
        assert written == key_file(store.path)
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        text = written.read_text()
        assert kept not in text and kept.split(".")[1] not in text  # hashes only
        keys = KeyFile(written)
        assert verify_key_file(keys, kept).scope == "read"
        new, record = create_key(store, "new", "write")
        assert verify_key_file(keys, new).scope == "write"  # no snapshot needed
        assert revoke_key(store, record.key_id)
        assert verify_key_file(keys, new) is None
        assert verify_key_file(keys, kept) is not None
        assert verify_key_file(keys, kept[:-1] + ("A" if kept[-1] != "A" else "B")) is None
        written.unlink()
        assert verify_key_file(keys, kept) is None  # no key file: no key is accepted


def test_a_replica_app_refuses_writes_and_serves_reads(
    tmp_path: Path, api_store_file: Path, copy_store
) -> None:
    path = copy_store(api_store_file, tmp_path)
    with Store(path) as store:
        key, _ = create_key(store, "reader", "admin")
        write_key_file(store)
        publish_snapshot(store)
        primary = create_app(Settings(store_path=path, tagger_model=tmp_path / "none"))
    settings = Settings(store_path=tmp_path / "unused.duckdb", tagger_model=tmp_path / "none")
    replica = create_app(settings, replica_of=path, primary_url="http://primary.example:8000")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(replica) as r, TestClient(primary) as p:
        assert r.get("/v1/themes", headers=auth).json() == p.get("/v1/themes", headers=auth).json()
        got = r.get("/v1/records", params={"limit": 5}, headers=auth)
        assert got.status_code == 200 and got.headers["x-civicpulse-snapshot"].endswith("Z")
        for method, url, body in (
            ("POST", "/v1/records", {"records": [{"text": "a pothole on Elm St"}]}),
            ("PATCH", "/v1/themes/REQ0001", {"label": "x"}),
            ("POST", "/v1/analyze", {}),
            ("DELETE", "/v1/keys/0123456789ab", None),
            ("GET", "/v1/keys", None),
            ("POST", "/open311/v2/requests.json", {"description": "x"}),
        ):
            answer = r.request(method, url, json=body, headers=auth)
            assert answer.status_code == 403, (method, url, answer.text)
            detail = answer.json()
            if url.startswith("/open311/"):
                detail = {"detail": detail[0]["description"], "code": "read_only_replica"}
            assert detail["code"] == "read_only_replica"
            assert "http://primary.example:8000" in detail["detail"]
        # without a key, writes are refused just the same; reads need the key as on the primary
        assert r.post("/v1/records", json={"records": []}).status_code == 403
        assert r.get("/v1/records").status_code == 401


def test_replica_without_a_snapshot_is_one_line_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--replica-of", str(tmp_path / "nothing.duckdb"), "--port", "1"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "--publish-every" in line


def test_replica_options_that_do_not_go_together(tmp_path: Path) -> None:
    for args in (
        ["--replica-of", "x.duckdb", "--store", "y.duckdb"],
        ["--primary-url", "http://x:1"],
        ["--publish-every", "-1"],
    ):
        done = subprocess.run(
            [*CLI, "serve", "--port", "1", *args],
            env=_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# -- live: a primary and two replica processes ----------------------------------------------------


def _wait_until(check, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


@pytest.mark.slow  # three live servers in subprocesses
def test_primary_and_replicas_live(tmp_path: Path, api_store_file: Path, copy_store) -> None:
    store = copy_store(api_store_file, tmp_path)
    env = _env(tmp_path)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    port = free_port()
    primary_url = f"http://127.0.0.1:{port}"
    primary = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--store", str(store), "--publish-every", "0.5"],
        env=env,
        **quiet,
    )
    procs = [primary]
    try:
        wait_for(f"{primary_url}/healthz", primary)
        _wait_until(lambda: snapshot_file(store).exists() and key_file(store).exists(), 60)
        assert stat.S_IMODE(key_file(store).stat().st_mode) == 0o600
        replica_urls = []
        for _ in range(2):  # several replicas at once, on one snapshot file
            rport = free_port()
            proc = subprocess.Popen(
                [*CLI, "serve", "--replica-of", str(store), "--port", str(rport)], env=env, **quiet
            )
            procs.append(proc)
            replica_urls.append(f"http://127.0.0.1:{rport}")
        for url, proc in zip(replica_urls, procs[1:], strict=True):
            wait_for(f"{url}/healthz", proc)
        admin = (Path(f"{store}.admin_key")).read_text().strip()
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(timeout=30) as http:
            on_primary = http.get(f"{primary_url}/v1/themes", headers=auth).json()
            assert on_primary["items"]
            for url in replica_urls:
                assert http.get(f"{url}/v1/themes", headers=auth).json() == on_primary
                records = http.get(f"{url}/v1/records", params={"limit": 5}, headers=auth)
                assert records.status_code == 200 and len(records.json()["items"]) == 5

            # a write on the primary reaches the replicas with the next snapshot
            theme = on_primary["items"][0]["theme_id"]
            renamed = http.patch(
                f"{primary_url}/v1/themes/{theme}",
                json={"label": "renamed on the primary"},
                headers=auth,
            )
            assert renamed.status_code == 200, renamed.text

            def renamed_everywhere() -> bool:
                return all(
                    next(
                        t["label"]
                        for t in http.get(f"{u}/v1/themes", headers=auth).json()["items"]
                        if t["theme_id"] == theme
                    )
                    == "renamed on the primary"
                    for u in replica_urls
                )

            lag = _wait_until(renamed_everywhere, 20)
            assert lag < 20

            # a write sent to a replica: 403, naming the primary
            refused = http.post(
                f"{replica_urls[0]}/v1/records",
                json={"records": [{"text": "a pothole on Elm St"}]},
                headers=auth,
            )
            assert refused.status_code == 403
            assert refused.json()["code"] == "read_only_replica"
            assert primary_url in refused.json()["detail"]

            # a key revoked on the primary is refused by every replica from its next request on
            made = http.post(
                f"{primary_url}/v1/keys", json={"name": "temp", "scope": "read"}, headers=auth
            ).json()
            temp = {"Authorization": f"Bearer {made['key']}"}
            for url in replica_urls:
                assert (
                    http.get(f"{url}/v1/records", params={"limit": 1}, headers=temp).status_code
                    == 200
                )
            revoked = http.delete(f"{primary_url}/v1/keys/{made['key_id']}", headers=auth)
            assert revoked.status_code == 200 and revoked.json()["revoked"] is True
            for url in replica_urls:
                answer = http.get(f"{url}/v1/records", params={"limit": 1}, headers=temp)
                assert answer.status_code == 401, answer.text
            assert made["key"] not in key_file(store).read_text()
            assert json.loads(key_file(store).read_text())["keys"]
    finally:
        stop(*reversed(procs))
    # the primary stopped; the replicas' files stay for a restart
    assert snapshot_file(store).exists()


def test_concurrent_key_changes_leave_the_last_state_in_the_key_file(tmp_path: Path) -> None:
    with Store(tmp_path / "race.duckdb") as store:
        made = [create_key(store, f"k{i}", "read") for i in range(8)]
        write_key_file(store)
        threads = [
            threading.Thread(target=revoke_key, args=(store, record.key_id))
            for _, record in made[:6]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        keys = KeyFile(key_file(store.path))
        assert [verify_key_file(keys, k) is None for k, _ in made] == [True] * 6 + [False] * 2


def test_only_authorised_writes_ask_for_a_snapshot(
    tmp_path: Path, api_store_file: Path, copy_store
) -> None:
    path = copy_store(api_store_file, tmp_path)
    app = create_app(Settings(store_path=path, tagger_model=tmp_path / "none"))
    with TestClient(app) as c:
        state = app.state.civicpulse
        key, _ = create_key(state.store, "writer", "write")
        auth = {"Authorization": f"Bearer {key}"}
        state.publisher = Publisher(state.store, every=60)  # not started: it only counts here
        before = state.publisher.generation
        assert c.get("/v1/themes", headers=auth).status_code == 200
        assert c.post("/v1/records", json={"records": []}).status_code == 401
        assert c.patch("/v1/themes/REQ0001", json={"label": "x"}).status_code == 401
        assert state.publisher.generation == before  # reads and refusals cost no snapshot
        assert c.patch("/v1/themes/REQ0001", json={"label": "x"}, headers=auth).status_code == 200
        assert state.publisher.generation == before + 1
