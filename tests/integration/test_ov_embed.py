"""The OpenVINO embedding backend: conversion cache integrity, closeness to torch, order, batching.

The IR is converted once into the user's cache (``$CIVICPULSE_CACHE``) and reused by later runs;
the tests that tamper with a cache copy it into a temporary one first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from analyzer.embedding import openvino_backend as ov_embed
from analyzer.embedding.batching import pack_rows
from analyzer.embedding.embedder import Embedder
from analyzer.embedding.model_files import (
    CACHE_ENV,
    MANIFEST_FILE,
    packaged_model_path,
    source_sha256,
)
from analyzer.embedding.openvino_backend import (
    IR_FILES,
    OpenVinoEncoder,
    ensure_model,
    openvino_encoder,
)
from analyzer.embedding.torch_backend import torch_encoder
from tests.integration.test_fast_embed import SENTENCES, cosine_rows, run_cli


@pytest.fixture(scope="module")
def ov_encoder() -> OpenVinoEncoder:
    return openvino_encoder(packaged_model_path(), 64)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return torch_encoder(str(packaged_model_path()), "cpu", 64)(SENTENCES)


def test_close_to_sentence_transformers(ov_encoder: OpenVinoEncoder, reference: np.ndarray) -> None:
    got = ov_encoder(SENTENCES)
    assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = cosine_rows(got, reference)
    # bfloat16 keeps float32's range: no calibration, no clipping; float32 is closer still.
    assert cos.min() > 0.999, (cos.min(), SENTENCES[int(cos.argmin())])


def test_vectors_do_not_depend_on_batch_mates_or_order(ov_encoder: OpenVinoEncoder) -> None:
    together = ov_encoder(SENTENCES)
    alone = np.vstack([ov_encoder([s]) for s in SENTENCES[:12]])
    assert cosine_rows(alone, together[:12]).min() > 0.9999
    order = np.random.default_rng(3).permutation(len(SENTENCES))
    shuffled = ov_encoder([SENTENCES[i] for i in order])
    assert cosine_rows(shuffled, together[order]).min() > 0.9999


def test_packed_calls_cover_every_text_once_within_limits(ov_encoder: OpenVinoEncoder) -> None:
    ids = ov_encoder.tokenize(SENTENCES * 6)
    lengths = np.array([len(x) for x in ids])
    calls = ov_encoder.plan(lengths)
    texts = [i for call in calls for row in call for i in row]
    assert sorted(texts) == list(range(len(lengths)))
    rows = [row for call in calls for row in call]
    assert any(len(row) > 1 for row in rows)  # packed, not one text per row
    for row in rows:
        assert len(row) == 1 or lengths[row].sum() <= ov_encoder.row_tokens
    for call in calls:
        fills = [int(lengths[row].sum()) for row in call]
        assert len(call) == 1 or len(call) * max(fills) <= ov_encoder.max_batch_tokens
        assert max(fills) <= 1.25 * min(fills) or len(call) == 1
    seen: list[tuple[int, ...]] = []
    real_tokens: list[int] = []
    original = ov_encoder._infer

    def spy(feed: dict[str, np.ndarray]) -> np.ndarray:
        seen.append(feed["input_ids"].shape)
        real_tokens.append(int((feed["segments"] > 0).sum()))
        return original(feed)

    ov_encoder._infer = spy  # type: ignore[method-assign]
    try:
        ov_encoder(SENTENCES)
    finally:
        del ov_encoder._infer
    assert seen and all(width % OpenVinoEncoder.width_multiple == 0 for _, width in seen)
    assert sum(real_tokens) == lengths[: len(SENTENCES)].sum()  # every token once, no more


def test_feeds_are_the_calls_an_embedding_run_makes(ov_encoder: OpenVinoEncoder) -> None:
    """``feeds`` (what the static model is calibrated on) gives the inputs ``__call__`` infers."""
    ov_encoder._warm()  # the one-off first inference is not part of the run
    inferred: list[dict[str, np.ndarray]] = []
    original = ov_encoder._infer

    def spy(feed: dict[str, np.ndarray]) -> np.ndarray:
        inferred.append(feed)
        return original(feed)

    ov_encoder._infer = spy  # type: ignore[method-assign]
    try:
        ov_encoder(SENTENCES)
    finally:
        del ov_encoder._infer
    feeds = ov_encoder.feeds(SENTENCES)
    key = lambda f: f["input_ids"].tobytes()  # noqa: E731 - calls run in any order
    assert sorted(map(key, feeds)) == sorted(map(key, inferred))
    ids = ov_encoder.tokenize(SENTENCES)
    assert sum(int((f["segments"] > 0).sum()) for f in feeds) == sum(map(len, ids))
    for f in feeds:  # every text's positions restart at 0
        starts = (f["segments"] > 0) & (f["position_ids"] == 0)
        assert starts.sum() == sum(len(set(row[row > 0].tolist())) for row in f["segments"])


def test_pack_rows_gives_a_micro_batch_one_row_per_worker() -> None:
    lengths = np.array([30, 12, 45, 20, 9, 33, 17, 40])  # 206 tokens: an API micro-batch
    calls = pack_rows(lengths, workers=2, row_tokens=96, call_tokens=2048, small_tokens=256)
    assert 2 <= len(calls) <= 3 and all(len(call) == 1 for call in calls)
    fills = sorted(int(lengths[call[0]].sum()) for call in calls)
    assert fills[-1] <= 103 + 45  # about half each: the streams finish together
    assert sorted(i for call in calls for row in call for i in row) == list(range(8))
    # one worker: everything in one row, one call
    assert (
        len(pack_rows(lengths, workers=1, row_tokens=96, call_tokens=2048, small_tokens=256)) == 1
    )
    assert (
        pack_rows(
            np.array([], dtype=int), workers=2, row_tokens=96, call_tokens=2048, small_tokens=256
        )
        == []
    )


def test_packed_rows_give_each_text_its_own_vector(ov_encoder: OpenVinoEncoder) -> None:
    """Texts sharing a row attend only to themselves: the same vector as alone in a call."""
    texts = [SENTENCES[0], "pothole", SENTENCES[5], "Graffiti on the wall", SENTENCES[9]]
    ids = ov_encoder.tokenize(texts)
    lengths = np.array([len(x) for x in ids])
    shared = ov_encoder._run(ids, lengths, [[0, 1, 2, 3, 4]])  # one row, five texts
    alone = np.vstack([ov_encoder._run(ids, lengths, [[i]]) for i in range(5)])
    assert cosine_rows(shared, alone).min() > 0.99999


def test_int8_row_mates_move_a_vector_only_slightly(int8_encoder: OpenVinoEncoder) -> None:
    """The int8 model's dynamic quantisation scales activations over more than one token, so
    row-mates nudge a text's vector (measured on 120 Boston texts: min cosine 0.99966, 5th
    percentile 0.99991 in rows of six; 0.999999 for the bfloat16 model) - far below the int8
    model's own distance to float32 (0.9987)."""
    texts = [SENTENCES[0], "pothole", SENTENCES[5], "Graffiti on the wall", SENTENCES[9]]
    ids = int8_encoder.tokenize(texts)
    lengths = np.array([len(x) for x in ids])
    shared = int8_encoder._run(ids, lengths, [[0, 1, 2, 3, 4]])
    alone = np.vstack([int8_encoder._run(ids, lengths, [[i]]) for i in range(5)])
    assert cosine_rows(shared, alone).min() > 0.999


def test_truncates_like_sentence_transformers(
    ov_encoder: OpenVinoEncoder, reference: np.ndarray
) -> None:
    long_text = " ".join(["pothole"] * 600)  # far beyond max_seq_length
    ref = torch_encoder(str(packaged_model_path()), "cpu", 64)([long_text])
    assert cosine_rows(ov_encoder([long_text]), ref)[0] > 0.999
    assert ov_encoder.max_seq_length == 256


def test_cache_is_hash_checked_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = ensure_model()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    folder = ov_embed.model_dir(packaged_model_path())
    assert folder.parent == tmp_path / "openvino"
    shutil.copytree(built.path.parent, folder)
    source = source_sha256(packaged_model_path())
    assert ov_embed.verify_built(folder, source) is None
    assert ensure_model().rebuilt is False

    with open(folder / "model.bin", "r+b") as fh:  # flip bytes in the weights
        fh.seek(4096)
        fh.write(b"\x00\x01\x02\x03")
    problem = ov_embed.verify_built(folder, source)
    assert problem and "does not match the manifest" in problem
    rebuilt = ensure_model()
    assert rebuilt.rebuilt is True
    assert ov_embed.verify_built(folder, source) is None
    # the weights convert exactly (the graph file carries conversion metadata that may differ)
    assert rebuilt.manifest["sha256"]["model.bin"] == built.manifest["sha256"]["model.bin"]
    assert not list((tmp_path / "openvino").glob(".build-*"))

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["source_sha256"] = "0" * 64  # built from other weights
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "source_sha256" in (ov_embed.verify_built(folder, source) or "")
    (folder / IR_FILES[0]).unlink()
    assert ov_embed.verify_built(folder, source) == "not built"


def test_embedder_backend_and_model_id(monkeypatch: pytest.MonkeyPatch) -> None:
    emb = Embedder(backend="openvino")
    assert emb.model_family.endswith(f"+openvino-{ov_embed.inference_precision()}")
    vec = emb.embed(["Sidewalk not shoveled", "Sidewalk not shoveled", "Graffiti"])
    assert vec.shape == (3, 384) and np.allclose(vec[0], vec[1])
    ov_embed.inference_precision.cache_clear()
    monkeypatch.setenv(ov_embed.PRECISION_ENV, "f32")
    try:
        assert Embedder(backend="openvino").model_family.endswith("+openvino-f32")
        ov_embed.inference_precision.cache_clear()
        monkeypatch.setenv(ov_embed.PRECISION_ENV, "fp8")
        with pytest.raises(ValueError, match="bf16 or f32"):
            Embedder(backend="openvino")
    finally:
        ov_embed.inference_precision.cache_clear()
    with pytest.raises(ValueError, match="unknown embedding backend"):
        Embedder(backend="tensorflow")


def test_one_default_backend_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_embedder()`` and ``Embedder()`` with no backend use the settings' embed_backend
    (openvino-int8-static unless configured), not a default of their own."""
    from analyzer.config import Settings
    from analyzer.embedding import get_embedder

    default = f"+openvino-int8-static-{ov_embed.inference_precision()}"
    assert Settings().embed_backend == "openvino-int8-static"
    assert get_embedder().model_family.endswith(default)
    assert get_embedder().batch_size == Settings().embed_batch_size
    assert Embedder().model_family.endswith(default)
    assert get_embedder() is get_embedder(None, "openvino-int8-static", 64)
    monkeypatch.setenv("CIVICPULSE_EMBED_BACKEND", "torch")
    monkeypatch.setenv("CIVICPULSE_EMBED_BATCH_SIZE", "32")
    torch_default = get_embedder()
    assert torch_default.model_id == "sentence-transformers/all-MiniLM-L6-v2@53aa5117"
    assert torch_default.batch_size == 32
    # given values win; None model is the packaged one whatever the settings say
    monkeypatch.setenv("CIVICPULSE_EMBED_MODEL", "/nonexistent/model")
    assert get_embedder(None, "openvino").model_family.endswith(
        f"+openvino-{ov_embed.inference_precision()}"
    )


def test_backends_are_registered_by_name() -> None:
    from analyzer.embedding import BACKENDS, EmbeddingBackend, backend_factory, register_backend

    assert set(BACKENDS) == {"torch", "onnx", "openvino", "openvino-int8", "openvino-int8-static"}
    assert backend_factory("openvino-int8-static")().weights == "int8-static"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown embedding backend 'nope'"):
        backend_factory("nope")
    with pytest.raises(ValueError, match="already registered"):

        @register_backend("onnx")
        class Other(EmbeddingBackend):
            pass


@pytest.mark.parametrize(
    ("backend", "weights", "verified"),
    [
        ("openvino", "full", ": ok"),
        ("openvino-int8", "int8", "-ir-int8-v2: ok"),
        ("openvino-int8-static", "int8-static", "-ir-int8-static-v2: ok"),
    ],
)
def test_build_cli(
    backend: str, weights: str, verified: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("models", "build", "--backend", backend) == 0
    assert run_cli("models", "verify", "--backend", backend) == 0
    out = capsys.readouterr().out
    assert f"{backend}: verified" in out and verified in out
    built = ensure_model(weights=weights)
    for name, digest in built.manifest["sha256"].items():
        assert out.count(f"{name} sha256 {digest}") == 2  # printed by build and by verify


def test_first_inference_runs_before_the_worker_pool_starts() -> None:
    """pybind11's numpy bridge is set up on the first call: two pool threads doing it at once
    deadlocked, so a fresh encoder makes one call on the calling thread before its pool exists."""
    import threading

    enc = openvino_encoder(packaged_model_path(), 64)
    enc.workers = max(enc.workers, 2)
    enc._pool = None
    calls: list[tuple[str, bool]] = []
    original = enc._infer

    def spy(feed: dict[str, np.ndarray]) -> np.ndarray:
        calls.append((threading.current_thread().name, enc._pool is None))
        return original(feed)

    enc._infer = spy  # type: ignore[method-assign]
    enc([SENTENCES[0][:10], " ".join(SENTENCES)])  # lengths far apart: two batches, the pool
    assert calls[0] == (threading.current_thread().name, True)
    assert any(name.startswith("openvino-embed") for name, _ in calls[1:])


def _cpu_has_vnni() -> bool:
    """Whether this CPU multiplies int8 with VNNI (AVX512-VNNI, AVX-VNNI or AMX), from
    /proc/cpuinfo (Linux; elsewhere assumed)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return True
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def unit_vectors_close_to(
    reference: np.ndarray, encoder: OpenVinoEncoder, *, mean: float, least: float
) -> np.ndarray:
    """The encoder's vectors of SENTENCES: unit length, cosine to ``reference`` above
    ``mean`` on average and ``least`` for every sentence."""
    got = encoder(SENTENCES)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = cosine_rows(got, reference)
    assert cos.mean() > mean and cos.min() > least, (cos.mean(), cos.min())
    return got


@pytest.fixture(scope="module")
def int8_encoder() -> OpenVinoEncoder:
    return openvino_encoder(packaged_model_path(), 64, weights="int8")


def test_int8_weights_stay_close_and_are_really_int8(
    int8_encoder: OpenVinoEncoder, ov_encoder: OpenVinoEncoder, reference: np.ndarray
) -> None:
    # int8 weights (per-channel) and int8 activations (groups of 128): close, not exact.
    got = unit_vectors_close_to(reference, int8_encoder, mean=0.997, least=0.99)
    # A different model from the full one (not the same IR under another name).
    assert cosine_rows(got, ov_encoder(SENTENCES)).min() < 0.99999
    assert int8_encoder.weights == "int8"
    assert int8_encoder.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == (
        ov_embed.INT8_GROUP_SIZE
    )
    built = ensure_model(weights="int8")
    assert built.manifest["weights"] == "int8" and "nncf" in built.manifest["versions"]
    assert built.path.parent != ensure_model().path.parent
    # int8 weights on disk: the graph holds i8 constants feeding the matrix products.
    import openvino as ov

    model = ov.Core().read_model(str(built.path))
    i8 = [op for op in model.get_ops() if op.get_type_name() == "Constant"]
    assert sum(str(op.get_element_type()) == "<Type: 'int8_t'>" for op in i8) >= 36
    assert built.path.with_suffix(".bin").stat().st_size < 0.5 * (
        ensure_model().path.with_suffix(".bin").stat().st_size
    )


def test_int8_backend_has_its_own_model_id_and_cache(tmp_path: Path) -> None:
    full, int8 = Embedder(backend="openvino"), Embedder(backend="openvino-int8")
    assert int8.model_family.endswith(f"+openvino-int8-{ov_embed.inference_precision()}")
    assert full.model_id != int8.model_id
    assert ov_embed.model_dir(packaged_model_path(), "int8").name.endswith("-ir-int8-v2")
    source = source_sha256(packaged_model_path())
    # A full IR's folder does not verify as int8 (and the other way round).
    assert "weights" in (ov_embed.verify_built(ensure_model().path.parent, source, "int8") or "")
    with pytest.raises(ValueError, match="unknown OpenVINO weights"):
        ov_embed.model_dir(packaged_model_path(), "int4")


@pytest.fixture(scope="module")
def static_encoder() -> OpenVinoEncoder:
    return openvino_encoder(packaged_model_path(), 64, weights="int8-static")


def test_static_int8_is_calibrated_close_and_independent_of_row_mates(
    static_encoder: OpenVinoEncoder, int8_encoder: OpenVinoEncoder, reference: np.ndarray
) -> None:
    # the farthest is "ok" (3 tokens, 0.986): fixed scales fit real requests, not fragments.
    # Without VNNI (AVX2 only) OpenVINO's int8 products add pairs in saturating 16-bit lanes
    # (vpmaddubsw): measured here mean 0.9963, least 0.977, against 0.9985 / 0.986 with VNNI
    mean, least = (0.997, 0.98) if _cpu_has_vnni() else (0.995, 0.97)
    got = unit_vectors_close_to(reference, static_encoder, mean=mean, least=least)
    # its own model: not the dynamic int8 one under another name
    assert cosine_rows(got, int8_encoder(SENTENCES)).min() < 0.99999
    # fixed activation scales: a text's vector is the same alone as packed with others
    # (the dynamic model's scales span a row: ~3e-4 in cosine)
    alone = np.vstack([static_encoder([s]) for s in SENTENCES[:12]])
    assert cosine_rows(alone, got[:12]).min() > 0.99999
    assert static_encoder.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == 0
    built = ensure_model(weights="int8-static")
    recipe = built.manifest["quantization"]
    assert built.manifest["weights"] == "int8-static" and "nncf" in built.manifest["versions"]
    assert recipe["calibration"]["texts"] == 1000 and len(recipe["calibration"]["sha256"]) == 64
    assert recipe["kept_in_float"] == [
        "__module.inner.encoder.layer.0.output.dense/aten::linear/MatMul"
    ]
    import openvino as ov

    model = ov.Core().read_model(str(built.path))
    kinds = [op.get_type_name() for op in model.get_ops()]
    # activations quantised in the graph: the 35 int8 linear layers' inputs and attention's
    assert kinds.count("FakeQuantize") >= 30
    assert Embedder(backend="openvino-int8-static").model_family.endswith(
        f"+openvino-int8-static-{ov_embed.inference_precision()}"
    )


def test_concurrent_first_callers_wait_for_one_warm_inference() -> None:
    """Two threads using one fresh encoder (the API's tagging and search threads): exactly one
    inference runs before the encoder is warm, and both get the right vectors."""
    import threading

    enc = openvino_encoder(packaged_model_path(), 64, weights="int8")
    assert not enc._warmed
    cold: list[str] = []
    original = enc._infer

    def spy(feed: dict[str, np.ndarray]) -> np.ndarray:
        if not enc._warmed:
            cold.append(threading.current_thread().name)
        return original(feed)

    enc._infer = spy  # type: ignore[method-assign]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(2)

    def call(i: int) -> None:
        start.wait()
        results[i] = enc(SENTENCES[i * 5 : i * 5 + 5])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(cold) == 1 and enc._warmed
    expected = openvino_encoder(packaged_model_path(), 64, weights="int8")(SENTENCES[:10])
    assert cosine_rows(np.vstack([results[0], results[1]]), expected).min() > 0.9999


def test_parallel_calls_start_longest_first(ov_encoder: OpenVinoEncoder) -> None:
    """The streams get the costliest calls first, so a request's last call is a short one
    (measured: 336 vs 298 texts/s and batch p99 40 vs 46 ms on API-sized micro-batches)."""
    submitted: list[int] = []

    class Recorder:
        def map(self, fn, calls):  # type: ignore[no-untyped-def]
            for call in calls:
                submitted.append(len(call) * max(int(lengths[row].sum()) for row in call))
            return [fn(call) for call in calls]

    texts = [SENTENCES[0][:12], " ".join(SENTENCES), SENTENCES[3], " ".join(SENTENCES[:4])]
    texts = texts * 8  # beyond a micro-batch: rows of up to row_tokens
    lengths = np.array([len(x) for x in ov_encoder.tokenize(texts)])
    original, workers = ov_encoder._parallel, ov_encoder.workers
    ov_encoder._parallel = lambda: Recorder()  # type: ignore[method-assign, assignment, return-value]
    try:
        ov_encoder.workers = max(workers, 2)
        got = ov_encoder(texts)
    finally:
        ov_encoder._parallel, ov_encoder.workers = original, workers  # type: ignore[method-assign]
    assert len(submitted) >= 3 and submitted == sorted(submitted, reverse=True)
    expected = np.vstack([ov_encoder([t]) for t in texts[:4]])
    assert cosine_rows(got[:4], expected).min() > 0.9999
