"""The layout's rules (docs/architecture.md), checked on every test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_cycles_no_private_imports_small_modules() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout
    assert "import cycles: 0" in out.stdout
    assert "private names imported from another module: 0" in out.stdout


def test_core_imports_no_web_framework() -> None:
    for path in (ROOT / "analyzer").rglob("*.py"):
        text = path.read_text()
        for framework in ("fastapi", "streamlit", "starlette"):
            assert f"import {framework}" not in text and f"from {framework}" not in text, path
