"""Issue #22, finding 8: a bounded schemathesis run (its own CLI, as the pass that found the
failures ran it: examples, coverage and fuzzing phases) against a live ``civicpulse serve`` on a
copy of the API tests' store: no server error, and every answer as the OpenAPI document says,
including valid requests accepted, invalid ones refused, and OPTIONS / undeclared methods answered
with a complete ``Allow``. About half a minute; ``make test-slow`` (so ``.ci/run``) runs it.

Left out: POST /v1/analyze (each example would start an analysis; it has its own tests),
POST /v1/admin/commands (it runs CLI commands; tests/integration/test_hardening_serve.py) and
DELETE (revoking keys; tests/integration/test_hardening_keys.py). The answers that are right by
design but that OpenAPI cannot state are named in tests/integration/fuzz_hooks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.live_support import free_port

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
# schemathesis' stateful checks (use after free, resource availability, auth probes) need links
# the document does not declare; the two checks replaced by fuzz_hooks' versions are off too.
EXCLUDED_CHECKS = (
    "ignored_auth,use_after_free,ensure_resource_availability,"
    "positive_data_acceptance,not_a_server_error"
)


@pytest.mark.slow  # a live server and a few thousand requests
@pytest.mark.skipif(not ST.is_file(), reason="schemathesis (a dev extra) is not installed")
def test_bounded_fuzz_finds_no_server_error_and_no_schema_violation(
    api_store_file: Path, copy_store, tmp_path: Path
) -> None:
    from analyzer.store.database import Store
    from api.keys import create_key

    store = copy_store(api_store_file, tmp_path)  # the fuzzer writes: a copy of its own
    with Store(store) as st:
        key, _ = create_key(st, "schemathesis", "admin")
    port = free_port()
    env = {
        **os.environ,
        "CIVICPULSE_TAGGER_MODEL": str(tmp_path / "no-tagger"),
        "CIVICPULSE_CONFIG": str(tmp_path / "none.toml"),
        "CIVICPULSE_RATE_LIMIT_PER_MINUTE": "0",  # limits have their own test
        "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "analyzer.cli",
                "serve",
                "--port",
                str(port),
                "--store",
                str(store),
            ],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.3)
        run = subprocess.run(
            [
                str(ST),
                "--no-color",
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                "all",
                "--exclude-checks",
                EXCLUDED_CHECKS,
                "--max-examples",
                "10",
                "--workers",
                "1",
                "--seed",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--exclude-path",
                "/v1/analyze",
                "--exclude-path",
                "/v1/admin/commands",
                "--exclude-method",
                "DELETE",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "unhandled error" not in log.read_text()  # no 500 was logged either


def test_the_hooks_module_loads() -> None:
    """fuzz_hooks registers its two checks with schemathesis (a dev extra)."""
    pytest.importorskip("schemathesis")
    from tests.integration import fuzz_hooks

    assert callable(fuzz_hooks.valid_requests_accepted) and callable(fuzz_hooks.no_server_error)
