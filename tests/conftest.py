"""Shared fixtures. Tests use data_samples/ and small fixtures; those needing ../shared skip without it."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def embedder():
    from analyzer.embedding.embedder import get_embedder

    return get_embedder()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own store path and no stray civicpulse.toml from the working directory."""
    monkeypatch.setenv("CIVICPULSE_STORE_PATH", str(tmp_path / "civicpulse.duckdb"))
    monkeypatch.setenv("CIVICPULSE_CONFIG", str(tmp_path / "no-config.toml"))
