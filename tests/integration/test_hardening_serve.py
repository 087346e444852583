"""Issue #22, finding 3 (one writer, many hands): while ``civicpulse serve`` holds the store, CLI
commands run through its API with a local administrator key and print what they print without
it; ``serve`` beside a CLI job, and a CLI beside a server that does not answer, each say in one
line which process holds the store (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analyzer.cli import main
from analyzer.cli.common import admin_key_file, owner_file, server_owner
from analyzer.config import Settings
from analyzer.store.database import Store
from tests.integration.live_support import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())"]
# A CLI job holding the store: it opens it for writing, says so, and waits.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from analyzer.store.database import Store
    with Store(sys.argv[1]):
        print("holding", flush=True)
        time.sleep(120)
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CIVICPULSE_TAGGER_MODEL": str(tmp_path / "no-model"),
        "CIVICPULSE_CONFIG": str(tmp_path / "none.toml"),
        "CIVICPULSE_STORE_PATH": str(tmp_path / "unused.duckdb"),
    }


def _cli(args: list[str], tmp_path: Path, timeout: float = 600) -> tuple[int, str, str]:
    done = subprocess.run(
        [*CLI, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


def _get(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _tiny_survey(folder: Path) -> Path:
    rows = pd.read_csv(ROOT / "data_samples" / "austin_survey_comments.csv", nrows=80, dtype=str)
    path = folder / "tiny_survey.csv"
    rows.to_csv(path, index=False)
    return path


def _start_serve(store: Path, port: int, tmp_path: Path, log: Path) -> subprocess.Popen:
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--store", str(store)],
            cwd=tmp_path,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_env(tmp_path),
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("serve did not answer within 120 s")


@pytest.mark.slow  # a live server in a subprocess, and a real (tiny) analysis
def test_cli_commands_run_through_a_running_api(tmp_path: Path) -> None:
    store = tmp_path / "served.duckdb"
    port = free_port()
    data = _tiny_survey(tmp_path)
    proc = _start_serve(store, port, tmp_path, tmp_path / "serve.log")
    try:
        # serve says it holds the store, and keeps an administrator key only this user can read
        owner = json.loads(owner_file(store).read_text())
        assert owner["pid"] == proc.pid and owner["url"] == f"http://127.0.0.1:{port}"
        for private in (owner_file(store), admin_key_file(store)):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private

        code, out, err = _cli(["ingest", data.name, "--store", store.name], tmp_path)
        assert code == 0, err
        assert "80 rows read, 80 loaded" in out
        code, out, err = _cli(["analyze", "--store", str(store)], tmp_path)
        assert code == 0, err
        assert "themes" in err and "error" not in err
        code, served_status, err = _cli(["status", "--store", str(store)], tmp_path)
        assert code == 0, err
        assert "survey" in served_status and "80" in served_status
        code, out, err = _cli(["themes", "--store", str(store), "--format", "csv"], tmp_path)
        assert code == 0 and out.startswith("theme_id,"), err
        code, out, err = _cli(["opinions", "--list", "--store", str(store)], tmp_path)
        assert code == 0 and "held by" not in err, err  # no conversation yet, but it ran
        code, out, err = _cli(["export", "-o", "records.csv", "--store", str(store)], tmp_path)
        assert code == 0, err
        assert len(pd.read_csv(tmp_path / "records.csv")) == 80  # the caller's relative path

        code, out, err = _cli(
            ["apikey", "create", "--name", "leaked", "--scope", "read", "--store", str(store)],
            tmp_path,
        )
        assert code == 0, err
        key = out.strip().splitlines()[-1]
        key_id = key.split(".")[0][3:]
        stats = f"http://127.0.0.1:{port}/v1/records?limit=1"
        assert _get(stats, key) == 200
        code, out, err = _cli(["apikey", "list", "--store", str(store)], tmp_path)
        assert code == 0 and key_id in out and key not in out, err
        code, out, err = _cli(["apikey", "revoke", key_id, "--store", str(store)], tmp_path)
        assert code == 0, err
        assert _get(stats, key) == 401  # refused from its next request on
        # a user's mistake through the API is the same one line and exit 2
        code, out, err = _cli(["apikey", "revoke", key_id, "--store", str(store)], tmp_path)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not owner_file(store).exists()  # gone with the server
    # without a server the command opens the store itself, and prints the same
    code, direct_status, err = _cli(["status", "--store", str(store)], tmp_path)
    assert code == 0, err
    assert direct_status == served_status


@pytest.mark.slow  # serve in a subprocess
def test_serve_beside_a_cli_job_refuses_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        code, _, err = _cli(
            ["serve", "--port", str(free_port()), "--store", str(store)], tmp_path, timeout=120
        )
    finally:
        holder.kill()
        holder.wait()
    assert code == 2, err
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert f"process {holder.pid}" in line and line.startswith("error: ")
    assert not owner_file(store).exists()


def test_cli_beside_a_server_that_does_not_answer(tmp_path: Path) -> None:
    store = tmp_path / "quiet.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        # the owner file of a server that holds the store but does not answer (yet)
        owner = json.loads(_owner_record(store, holder.pid, free_port()))
        owner_file(store).write_text(json.dumps(owner))
        admin_key_file(store).write_text("cp_000000000000.not-a-real-key-but-long-enough-xx\n")
        assert server_owner(store) is not None
        code, out, err = _cli(["status", "--store", str(store)], tmp_path, timeout=120)
        assert code == 2 and out == ""
        [line] = err.strip().splitlines()
        assert f"PID {holder.pid}" in line and "does not answer" in line and "kill" in line
        # no owner file: the lock itself names the process
        owner_file(store).unlink()
        code, out, err = _cli(["status", "--store", str(store)], tmp_path, timeout=120)
        assert code == 2 and "Traceback" not in err
        [line] = err.strip().splitlines()
        assert f"process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    # an owner file whose process is gone is ignored: the store opens directly again
    owner_file(store).write_text(_owner_record(store, holder.pid, free_port()))
    assert server_owner(store) is None
    code, out, err = _cli(["status", "--store", str(store)], tmp_path, timeout=120)
    assert code == 0 and "files ingested: 0" in out, err


def _owner_record(store: Path, pid: int, port: int) -> str:
    from analyzer.store.runs import process_start

    return json.dumps(
        {
            "pid": pid,
            "url": f"http://127.0.0.1:{port}",
            "started": "2026-01-01T00:00:00Z",
            "store": str(store),
            "host": socket.gethostname(),
            "process_start": process_start(pid),
        }
    )


def test_the_admin_route_runs_the_same_command(
    api_store_file: Path, tmp_path: Path, copy_store, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy_store(api_store_file, tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["status", "--store", str(path)])
    assert exc.value.code == 0
    direct = capsys.readouterr().out

    from api.app import create_app
    from api.keys import create_key

    with Store(path) as st:
        admin, _ = create_key(st, "admin", "admin")
        writer, _ = create_key(st, "writer", "write")
    settings = Settings(store_path=path, tagger_model=str(tmp_path / "no-tagger"))
    app = create_app(settings)
    body = {"argv": ["status", "--store", str(path)]}
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        answer = local.post(
            "/v1/admin/commands", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"exit_code": 0, "stdout": direct, "stderr": ""}
        # a write key is not an administrator's
        refused = local.post(
            "/v1/admin/commands", json=body, headers={"Authorization": f"Bearer {writer}"}
        )
        assert refused.status_code == 403
        assert local.post("/v1/admin/commands", json=body).status_code == 401
        # only the commands that use the store
        other = local.post(
            "/v1/admin/commands",
            json={"argv": ["serve"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert other.status_code == 422
    with TestClient(app) as remote:  # not a loopback caller
        answer = remote.post(
            "/v1/admin/commands", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        assert answer.status_code == 403
