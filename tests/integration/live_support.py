"""What the tests that start real servers share: a free port, waiting for a server to answer,
the API and the explorer started side by side, and the browser the end-to-end tests drive."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import free_port, stop

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLI = [sys.executable, "-m", "analyzer.cli.__main__"]
# leaves of the page that show a missing number as None / NaN instead of "–"
MISSING_JS = """() => Array.from(document.querySelectorAll('body *'))
  .filter(el => el.children.length === 0 && /^(None|nan|NaN|null)$/.test(el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 200))"""


def wait_for(url: str, proc: subprocess.Popen, seconds: int = 180) -> None:
    """Until ``url`` answers 200; fails at once if the process behind it exits."""
    for _ in range(seconds * 2):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


@contextmanager
def api_and_explorer(
    env: dict[str, str], *, cwd: Path | None = None, key: str | None = None
) -> Iterator[str]:
    """``civicpulse serve`` and ``civicpulse ui`` on free ports (the explorer pointed at the API,
    with ``key`` when given); yields the explorer's URL once both answer, stops both after."""
    api_port, ui_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env_ui = {**env, "CIVICPULSE_API_URL": api_url}
    if key is not None:
        env_ui["CIVICPULSE_API_KEY"] = key
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": cwd}
    api = subprocess.Popen([*CLI, "serve", "--port", str(api_port)], env=env, **quiet)
    ui = subprocess.Popen([*CLI, "ui", "--port", str(ui_port)], env=env_ui, **quiet)
    try:
        wait_for(f"{api_url}/healthz", api)
        wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health", ui)
        yield f"http://127.0.0.1:{ui_port}"
    finally:
        stop(ui, api)
