"""Settings, errors, the store's transactions and embedding cache, the embedder, model bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzer.common.bundle import load_bundle, save_bundle
from analyzer.common.hashing import text_hash
from analyzer.config import load_settings
from analyzer.embedding import PACKAGED_MODEL_SHA256, verify_packaged_model
from analyzer.errors import InputError, ModelBundleError
from analyzer.store.database import Store


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "civicpulse.toml"
    cfg.write_text('[civicpulse]\nstore_path = "a.duckdb"\nseed = 7\nread_public = false\n')
    monkeypatch.setenv("CIVICPULSE_CONFIG", str(cfg))
    monkeypatch.delenv("CIVICPULSE_STORE_PATH", raising=False)
    s = load_settings()
    assert (s.store_path, s.seed, s.read_public) == (Path("a.duckdb"), 7, False)
    monkeypatch.setenv("CIVICPULSE_SEED", "11")
    assert load_settings().seed == 11


def test_settings_unknown_key_is_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "civicpulse.toml"
    cfg.write_text("[civicpulse]\nstore_pth = 'x'\n")
    monkeypatch.setenv("CIVICPULSE_CONFIG", str(cfg))
    with pytest.raises(InputError, match="unknown setting 'store_pth'"):
        load_settings()


def test_input_error_is_one_line() -> None:
    err = InputError("bad\nvalue", file="a.csv", row=3, column="lat")
    assert str(err) == "a.csv: row 3, column 'lat': bad value"


def test_transaction_rolls_back(tmp_store: Store) -> None:
    with pytest.raises(RuntimeError), tmp_store.transaction() as con:
        con.execute("INSERT INTO corrections (id, text, label) VALUES ('1', 'x', 'y')")
        raise RuntimeError("boom")
    assert tmp_store.scalar("SELECT count(*) FROM corrections") == 0
    with tmp_store.transaction() as con:
        con.execute("INSERT INTO corrections (id, text, label) VALUES ('1', 'x', 'y')")
    assert tmp_store.scalar("SELECT count(*) FROM corrections") == 1


def test_packaged_model_hash_is_verified() -> None:
    assert verify_packaged_model() == PACKAGED_MODEL_SHA256


def test_embedder_order_dedupe_and_cache(embedder, tmp_store: Store) -> None:
    texts = ["Pothole on Main St", "trash not picked up", "Pothole on Main St", "street light out"]
    vecs = embedder.embed(texts, store=tmp_store)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(vecs[0], vecs[2])
    # three distinct texts -> three cached rows; a second call reads them back (float16 storage)
    assert tmp_store.scalar("SELECT count(*) FROM embeddings") == 3
    again = embedder.embed(list(reversed(texts)), store=tmp_store)
    np.testing.assert_allclose(again[::-1], vecs, atol=2e-3)
    sims = vecs @ vecs.T
    assert sims[0, 1] < 0.6 < sims[0, 2]


def test_interrupted_embedding_keeps_finished_chunks(
    embedder, tmp_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New vectors reach the cache chunk by chunk: a crash keeps the finished chunks."""
    import analyzer.embedding.embedder as embed_mod

    monkeypatch.setattr(embed_mod, "CHUNK_TEXTS", 2)
    texts = [f"pothole number {i} on Main St" for i in range(5)]
    real = embedder._load()
    calls = []

    def flaky(chunk: list[str]) -> np.ndarray:
        calls.append(len(chunk))
        if len(calls) == 3:
            raise RuntimeError("killed midway")
        return real(chunk)

    monkeypatch.setattr(embedder, "_encoder", flaky)
    with pytest.raises(RuntimeError, match="midway"):
        embedder.embed(texts, store=tmp_store)
    assert calls == [2, 2, 1]
    assert tmp_store.scalar("SELECT count(*) FROM embeddings") == 4  # two chunks kept
    calls.clear()
    monkeypatch.setattr(embedder, "_encoder", lambda chunk: calls.append(len(chunk)) or real(chunk))
    embedder.embed(texts, store=tmp_store)
    assert calls == [1]  # only what was lost is embedded again
    assert tmp_store.scalar("SELECT count(*) FROM embeddings") == 5


def test_text_hash_is_stable() -> None:
    assert text_hash("abc") == text_hash("abc") != text_hash("abd")


def test_bundle_round_trip_and_tamper(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_bundle(
        folder,
        kind="test",
        arrays={"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
        documents={"params": {"labels": ["a", "b"]}},
        manifest={"labels": ["a", "b"]},
    )
    b = load_bundle(folder, kind="test")
    np.testing.assert_array_equal(b.array("w"), np.arange(6).reshape(2, 3))
    assert b.document("params") == {"labels": ["a", "b"]}
    with pytest.raises(ModelBundleError, match="kind"):
        load_bundle(folder, kind="other")
    raw = bytearray((folder / "arrays" / "w.npy").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "arrays" / "w.npy").write_bytes(bytes(raw))
    with pytest.raises(ModelBundleError, match=r"w\.npy does not match"):
        load_bundle(folder)


def test_bundle_refuses_path_escape(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_bundle(folder, kind="t", arrays={}, documents={"p": {}}, manifest={})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["../evil.json"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="outside the bundle"):
        load_bundle(folder)
