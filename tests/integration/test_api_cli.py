"""``civicpulse apikey`` and ``civicpulse serve`` as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.store.database import Store


def run_cli(*args: str) -> tuple[int, str, str]:
    from analyzer.cli import _register, app

    _register()
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_apikey_create_list_revoke(tmp_path: Path) -> None:
    from api.keys import verify_key

    store_path = tmp_path / "keys.duckdb"
    code, out, err = run_cli("apikey", "create", "--name", "intake app", "--store", str(store_path))
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert key.startswith("cp_") and "." in key
    key_id = key.split(".")[0][3:]
    assert key_id in err  # the id is shown with the one-time notice
    with Store(store_path) as store:
        rows = store.query_df("SELECT key_id, name, key_hash FROM api_keys")
        assert rows["key_id"].tolist() == [key_id] and rows["name"].tolist() == ["intake app"]
        # Only a hash is stored: the key itself appears nowhere in the table.
        assert key not in rows.to_json() and rows["key_hash"].iloc[0].startswith("sha256$")
        assert verify_key(store, key).key_id == key_id

    code, out, _ = run_cli("apikey", "list", "--store", str(store_path))
    assert code == 0 and key_id in out and "intake app" in out and key not in out
    assert "\tfalse" in out

    code, _, err = run_cli("apikey", "revoke", key_id, "--store", str(store_path))
    assert code == 0, err
    code, out, _ = run_cli("apikey", "list", "--store", str(store_path))
    assert "\ttrue" in out
    with Store(store_path) as store:
        assert verify_key(store, key) is None
    # Revoking again, or an unknown id, is a user error (exit 2 through the CLI's main).
    from analyzer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["apikey", "revoke", key_id, "--store", str(store_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["apikey", "create", "--name", "   ", "--store", str(store_path)])
    assert exc.value.code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # a live server in a subprocess
def test_serve_answers_and_logs_json(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CIVICPULSE_TAGGER_MODEL": str(tmp_path / "no-model"),
        "CIVICPULSE_CONFIG": str(tmp_path / "none.toml"),
    }
    cmd = [
        sys.executable,
        "-c",
        "import sys; from analyzer.cli import main; sys.exit(main())",
        "serve",
        "--port",
        str(port),
        "--store",
        str(tmp_path / "serve.duckdb"),
    ]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 90
            health = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        health = json.loads(r.read())
                        break
                except OSError:
                    time.sleep(0.3)
            assert health == {"status": "ok"}
            url = f"http://127.0.0.1:{port}/v1/stats?area=private+words"
            with urllib.request.urlopen(url, timeout=10) as r:
                assert json.loads(r.read())["records"] == 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lines = [ln for ln in log_path.read_text().splitlines() if ln.startswith("{")]
    requests = [json.loads(ln) for ln in lines if '"event": "request"' in ln]
    assert any(r["path"] == "/v1/stats" and r["status"] == 200 for r in requests)
    assert "private words" not in log_path.read_text()  # no query strings in the log
