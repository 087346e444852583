"""The ONNX Runtime embedding backend: cache integrity, order, truncation and closeness to torch.

The models are built once into the user's cache (``$CIVICPULSE_CACHE``) and reused by later runs;
the first build exports the packaged weights and takes about a minute.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from analyzer.cli import main
from analyzer.common.hashing import sha256_file
from analyzer.embedding import onnx_backend as fast_embed
from analyzer.embedding.batching import BatchingEncoder
from analyzer.embedding.embedder import Embedder
from analyzer.embedding.model_files import (
    MANIFEST_FILE,
    PACKAGED_MODEL_SHA256,
    BuiltModel,
    packaged_model_path,
    read_model_config,
)
from analyzer.embedding.onnx_backend import (
    MODEL_FILE,
    OnnxEncoder,
    ensure_model,
    onnx_encoder,
    verify_built,
)
from analyzer.errors import ModelBundleError

# Varied on purpose: 311 requests, survey comments, other languages, digits, punctuation,
# one word, very long; what residents actually type.
SENTENCES = [
    "Car parked on the sidewalk blocking the ramp at 25 Main St.",
    "Illegal parking in front of the fire hydrant, every night this week!!",
    "Abandoned white van with flat tires, hasn't moved in 3 weeks",
    "Sidewalk not shoveled",
    "The sidewalk on Tremont has not been shoveled since Tuesday's storm and is a sheet of ice.",
    "Huge pothole on Comm Ave near the BU bridge, damaged my tire",
    "Streetlight out at corner of Dudley and Warren",
    "Needles in the playground at Ramsay Park, kids play here",
    "Trash cans overflowing on Blue Hill Ave",
    "Rats everywhere in the alley behind the restaurant",
    "The park is lovely, thank you for the new benches.",
    "I feel unsafe walking home at night because the lights are broken.",
    "Please add more bike lanes downtown.",
    "Bus 28 is always late and overcrowded in the mornings",
    "Graffiti on the library wall",
    "Noise from construction starting at 5am on Saturday",
    "Tree branch hanging over the road after the wind storm, could fall on cars",
    "Broken glass all over the basketball court",
    "Dangerous intersection, cars run the red light constantly",
    "Loose manhole cover makes a loud bang whenever a truck drives over it",
    "El contenedor de basura lleva una semana sin recogerse.",
    "La acera está rota frente a la escuela.",
    "Il y a un nid-de-poule énorme devant chez moi.",
    "Water main break flooding the street",
    "Snow plow blocked my driveway again",
    "ok",
    "???",
    "12345",
    "Vehicle: Honda Civic, plate 4ABC12, blue, parked > 72 hours",
    "Dog waste not picked up on the Esplanade path",
    "Traffic signal stuck on red at Mass Ave & Columbus",
    "Homeless encampment near the train station, people need help",
    "Thank you to the crew who fixed our street so quickly!",
    "Why does it take the city months to fix a simple crosswalk sign?",
    "Illegal dumping of mattresses and furniture in the vacant lot",
    "Bed bugs reported in the apartment building at 100 Elm",
    "Missed recycling pickup on Thursday",
    "More trees and shade in the summer please",
    "The community center should stay open later for teenagers",
    "Heat wave: cooling centers were closed when we needed them",
    "unsafe dangerous conditions at the vacant building, door open, kids going in",
    "Fallen wires on the sidewalk after the storm — very dangerous",
    "Abandoned bicycle locked to the sign post for months",
    "Car with no plates has been sitting on the street since January",
    "Dead animal in the road",
    "Pedestrian crossing button does not work",
    "Sidewalk is uneven and my grandmother tripped",
    "the the the the the",
    "COVID testing site line blocks the entire sidewalk",
    " ".join(
        ["The snow on this sidewalk has not been cleared for days and people walk in the road."] * 3
    ),
]
assert len(SENTENCES) == 50


def run_cli(*args: str) -> int:
    """``civicpulse ARGS``'s exit code."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.fixture(scope="session")
def built() -> dict[str, BuiltModel]:
    """Both modes, built (first run) or verified from the cache (later runs)."""
    return {quant: ensure_model(None, quant) for quant in ("fp32", "int8")}


@pytest.fixture(scope="session")
def encoders(built: dict[str, BuiltModel]) -> dict[str, OnnxEncoder]:
    return {quant: onnx_encoder(packaged_model_path(), 64, quant=quant) for quant in built}


@pytest.fixture(scope="session")
def torch_encode() -> Callable[[list[str]], np.ndarray]:
    from analyzer.embedding.torch_backend import torch_encoder

    return torch_encoder(str(packaged_model_path()), "cpu", 64)


def test_built_model_exists_and_hash_verifies(built: dict[str, BuiltModel]) -> None:
    for quant, model in built.items():
        assert model.path.is_file()
        assert model.manifest["onnx_sha256"] == sha256_file(model.path)
        assert model.manifest["source_sha256"] == PACKAGED_MODEL_SHA256
        assert model.manifest["quant"] == quant
        assert model.manifest["max_seq_length"] == 256  # sentence_bert_config.json
        assert verify_built(model.path.parent, PACKAGED_MODEL_SHA256, quant) is None
        # The fusion is where most of the speed comes from: every layer must have been matched.
        assert model.manifest["fused_operators"]["Attention"] == 6
    # int8 weights are a quarter of the size; the embedding table stays float32.
    assert built["int8"].path.stat().st_size < 0.8 * built["fp32"].path.stat().st_size


def _copy_cache(built: dict[str, BuiltModel], root: Path) -> None:
    for model in built.values():
        shutil.copytree(model.path.parent, root / "onnx" / model.path.parent.name)


def test_corrupt_cache_file_is_detected_and_rebuilt(
    built: dict[str, BuiltModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICPULSE_CACHE", str(tmp_path))
    _copy_cache(built, tmp_path)
    folder = fast_embed.model_dir(packaged_model_path(), "int8")
    assert folder.parent == tmp_path / "onnx"
    model_file = folder / MODEL_FILE
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights: still loads, wrong numbers
    model_file.write_bytes(bytes(data))

    problem = verify_built(folder, PACKAGED_MODEL_SHA256, "int8")
    assert problem is not None and "does not match" in problem

    # int8 is rebuilt from the (verified) float32 model: quantisation only, ~10 s.
    rebuilt = ensure_model(None, "int8")
    assert rebuilt.rebuilt
    assert rebuilt.path == model_file
    assert verify_built(folder, PACKAGED_MODEL_SHA256, "int8") is None
    # The recipe is deterministic: the rebuild reproduces the original file exactly.
    assert rebuilt.manifest["onnx_sha256"] == built["int8"].manifest["onnx_sha256"]
    # No temporary build folder is left behind.
    assert not list((tmp_path / "onnx").glob(".build-*"))


def test_truncated_file_and_changed_source_are_detected(
    built: dict[str, BuiltModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICPULSE_CACHE", str(tmp_path))
    _copy_cache(built, tmp_path)
    folder = fast_embed.model_dir(packaged_model_path(), "fp32")
    other_source = "0" * 64
    assert "source_sha256" in str(verify_built(folder, other_source, "fp32"))
    assert "quant" in str(verify_built(folder, PACKAGED_MODEL_SHA256, "int8"))
    with open(folder / MODEL_FILE, "r+b") as fh:
        fh.truncate(1000)
    assert verify_built(folder, PACKAGED_MODEL_SHA256, "fp32") is not None
    (folder / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    assert "manifest" in str(verify_built(folder, PACKAGED_MODEL_SHA256, "fp32"))


def test_outputs_are_384_d_unit_vectors(encoders: dict[str, OnnxEncoder]) -> None:
    for enc in encoders.values():
        out = enc(SENTENCES)
        assert out.shape == (50, 384) and out.dtype == np.float32
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_input_order_is_kept_with_bucketing(encoders: dict[str, OnnxEncoder]) -> None:
    rng = random.Random(7)
    perm = list(range(len(SENTENCES)))
    rng.shuffle(perm)
    shuffled = [SENTENCES[i] for i in perm]
    fp = encoders["fp32"]
    # Sorted by length inside and batched several texts at a time, then scattered back.
    assert 1 < len(fp.batches(np.array([len(x) for x in fp.tokenize(shuffled)]))) < len(SENTENCES)
    base = fp(SENTENCES)
    again = fp(shuffled)
    assert list((again @ base.T).argmax(axis=1)) == perm
    # float32 has no per-batch scale: other batch neighbours and padding change nothing.
    np.testing.assert_allclose(again, base[perm], atol=2e-5)
    np.testing.assert_allclose(np.vstack([fp([x]) for x in shuffled[:10]]), again[:10], atol=2e-5)


def test_int8_vectors_do_not_depend_on_batch_neighbours(encoders: dict[str, OnnxEncoder]) -> None:
    q = encoders["int8"]
    assert q.batch_size == 1  # see onnx_encoder: dynamic int8 scales per batch
    perm = list(reversed(range(len(SENTENCES))))
    base = q(SENTENCES)
    np.testing.assert_allclose(q([SENTENCES[i] for i in perm]), base[perm], atol=1e-6)
    np.testing.assert_allclose(q(SENTENCES[3:5]), base[3:5], atol=1e-6)
    # Why: the same int8 model batched 16 at a time moves vectors by up to a few hundredths.
    batched = OnnxEncoder(q.model_file, packaged_model_path() / "tokenizer.json", batch_size=16)
    drift = 1 - cosine_rows(batched(SENTENCES), base)
    assert drift.max() > 1e-4


def test_batches_cover_every_text_once_within_limits() -> None:
    enc = BatchingEncoder.__new__(BatchingEncoder)  # only the batching arithmetic, no runtime
    enc.batch_size, enc.max_batch_tokens = 64, 2048
    lengths = np.array([random.Random(i).randint(2, 256) for i in range(1000)])
    batches = enc.batches(lengths)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(1000))
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * lengths[b].max() <= 2048
    # Similar lengths share a batch: little padding.
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()


def test_close_to_the_torch_encoder(
    encoders: dict[str, OnnxEncoder], torch_encode: Callable[[list[str]], np.ndarray]
) -> None:
    ref = torch_encode(SENTENCES)
    fp32 = cosine_rows(encoders["fp32"](SENTENCES), ref)
    int8 = cosine_rows(encoders["int8"](SENTENCES), ref)
    assert fp32.mean() >= 0.999 and fp32.min() >= 0.999
    assert int8.mean() >= 0.95
    assert int8.min() >= 0.9


def test_empty_and_very_long_texts(
    encoders: dict[str, OnnxEncoder], torch_encode: Callable[[list[str]], np.ndarray]
) -> None:
    long_text = " ".join(["Cars parked on both sides of the street block the snow plows."] * 300)
    tail_only = long_text + " Unrelated words about a library book sale and a jazz concert."
    texts = ["", long_text, tail_only]
    ref = torch_encode(texts)
    for enc in encoders.values():
        out = enc(texts)
        assert np.all(np.isfinite(out))
        assert len(enc.tokenize([long_text])[0]) == 256  # truncated like sentence-transformers
        # What comes after token 256 is ignored, exactly as in sentence-transformers.
        np.testing.assert_allclose(out[1], out[2], atol=2e-5)
        assert cosine_rows(out, ref).min() > 0.95


def test_embedder_onnx_backend(
    built: dict[str, BuiltModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICPULSE_ONNX_QUANT", "int8")
    emb = Embedder(backend="onnx")
    assert emb.model_family.endswith("+onnx-int8")
    assert emb.model_id == f"{emb.model_family}#{emb.build_id}"  # the vectors' build
    texts = ["pothole on Main St", "", "pothole on Main St", "thank you"]
    out = emb.embed(texts)
    assert out.shape == (4, 384)
    np.testing.assert_allclose(out[0], out[2])
    monkeypatch.setenv("CIVICPULSE_ONNX_QUANT", "fp32")
    assert Embedder(backend="onnx").model_family.endswith("+onnx-fp32")
    monkeypatch.setenv("CIVICPULSE_ONNX_QUANT", "int4")
    with pytest.raises(ValueError, match="int4"):
        Embedder(backend="onnx")


def test_build_cli_verifies_cache(
    built: dict[str, BuiltModel], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("models", "build", "--backend", "onnx", "--quant", "all") == 0
    assert run_cli("models", "verify", "--backend", "onnx", "--quant", "all") == 0
    out = capsys.readouterr().out
    assert "onnx fp32: verified" in out and "onnx int8: verified" in out
    assert out.count(": ok") == 2
    # what was verified: the source weights and each built file, by sha256
    assert f"sha256 {PACKAGED_MODEL_SHA256}" in out
    for model in built.values():
        assert out.count(f"model.onnx sha256 {model.manifest['onnx_sha256']}") == 2


def test_models_cli_refuses_a_users_mistake_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli("models", "build", "--backend", "tensorflow") == 2
    assert "unknown backend 'tensorflow'" in capsys.readouterr().err
    assert run_cli("models", "verify", "--backend", "openvino", "--quant", "int8") == 2
    assert "--quant applies to the onnx backend only" in capsys.readouterr().err
    assert run_cli("models", "verify", "--backend", "onnx", "--quant", "int4") == 2
    err = capsys.readouterr().err
    assert "int4" in err and len(err.strip().splitlines()) == 1


def test_models_verify_of_an_empty_cache_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CIVICPULSE_CACHE", str(tmp_path))
    assert run_cli("models", "verify", "--backend", "onnx") == 1
    captured = capsys.readouterr()
    assert ": not built" in captured.out
    assert "civicpulse models build --backend onnx" in captured.err
    assert not list(tmp_path.iterdir())  # verifying builds nothing


def test_unsupported_model_folder_is_refused(tmp_path: Path) -> None:
    src = packaged_model_path()
    for name in ("config.json", "sentence_bert_config.json"):
        shutil.copy(src / name, tmp_path / name)
    modules = json.loads((src / "modules.json").read_text(encoding="utf-8"))
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    with pytest.raises(ModelBundleError, match="Dense"):
        read_model_config(tmp_path)
    assert read_model_config(src)["max_seq_length"] == 256
