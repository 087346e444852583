"""Shared fixtures. Tests use data_samples/ and small fixtures; those needing ../shared skip without it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
SHARED = Path(os.environ.get("CIVICPULSE_DATA_RAW", ROOT.parent / "shared" / "data_raw"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data_raw is absent")


@pytest.fixture()
def tmp_store(tmp_path: Path):
    from analyzer.store.database import Store

    with Store(tmp_path / "store.duckdb") as store:
        yield store


def copy_store_file(src: Path, folder: Path, name: str = "store.duckdb") -> Path:
    """A copy of a closed DuckDB store (and of its write-ahead log, if one was left) in ``folder``.

    Expensive stores are built once per module or session and copied per test, so that no test
    sees what another one wrote."""
    dest = folder / name
    shutil.copyfile(src, dest)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, dest.with_name(dest.name + ".wal"))
    return dest


@pytest.fixture(scope="session")
def copy_store() -> Callable[..., Path]:
    """``copy_store(path, folder)``: see ``copy_store_file``."""
    return copy_store_file


@pytest.fixture(scope="session")
def api_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The API tests' store (tests/integration/api_support.py), built once per session. Closed and
    never written to: tests copy it (``copy_store``) first."""
    from tests.integration.api_support import build_store

    return build_store(tmp_path_factory.mktemp("api-store"))


@pytest.fixture(scope="session")
def embedder():
    from analyzer.embedding.embedder import get_embedder

    return get_embedder()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own store path and no stray civicpulse.toml from the working directory."""
    monkeypatch.setenv("CIVICPULSE_STORE_PATH", str(tmp_path / "civicpulse.duckdb"))
    monkeypatch.setenv("CIVICPULSE_CONFIG", str(tmp_path / "no-config.toml"))
