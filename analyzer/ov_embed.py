"""The fastest CPU embedding backends here: the packaged model run by OpenVINO.

Why OpenVINO: on CPUs with native bfloat16 (AMX on Intel Sapphire Rapids and later, AVX512-BF16
on AMD Zen 4: the two kinds this project has run on), its CPU plugin runs the transformer's
matrix products in bfloat16, and it fuses attention, GELU and LayerNorm into JIT kernels. The
vectors stay at 0.9999+ cosine to sentence-transformers' float32 ``encode`` (bfloat16 keeps
float32's exponent range, so nothing is calibrated or clipped), unlike static int8 schemes whose
scales are calibrated on data. Where the CPU has no native bfloat16 the same model runs in
float32 (still fused). See benchmarks/embed_speed.py.

The model is converted here from the local weights (``ov.convert_model`` on the same
transformer-plus-mean-pooling module the ONNX export uses), never downloaded, and cached as
OpenVINO IR under ``$CIVICPULSE_CACHE/openvino`` in a folder named by the source weights' hash,
with a manifest holding the sha256 of the source and of both IR files; a folder that no longer
verifies is rebuilt, under a file lock, written to a temporary folder and renamed into place.

At run time batching is ``analyzer.fast_embed.OnnxEncoder``'s (one tokenisation, texts sorted by
length, batches within a text and a padded-token budget, input order restored), with widths
rounded up to a multiple of 8: the CPU plugin JIT-compiles kernels per input shape, so fewer
shapes mean fewer compilations. One single-threaded inference stream per core.

Two weight variants, each its own backend name and model id (their vectors differ slightly, and
the store caches vectors per model id):

- ``openvino`` (``weights="full"``): float32 weights, computed in bfloat16 where the CPU can;
  0.9999+ cosine to sentence-transformers.
- ``openvino-int8`` (``weights="int8"``): the 39 linear layers' weights compressed to int8 by
  NNCF (``nncf.compress_weights``, data-free, symmetric, one scale per output channel), and the
  CPU plugin's dynamic quantization of their inputs to int8 in groups of 128 values
  (``DYNAMIC_QUANTIZATION_GROUP_SIZE``; measured: without it the int8-weight model was slower
  than the bfloat16 one, 135 vs 117 ms for 32 texts of 32 tokens on one core). Nothing is
  calibrated on data. Measured on an AMD EPYC (Zen 4, no AMX), two cores: 1.3x the bfloat16
  model's texts/s both in bulk and in the API's micro-batches (small batches read all weights
  once per call, so halving their bytes matters), at 0.9987 mean cosine to float32 (ONNX dynamic
  int8: 0.993). Group sizes 32 / 64 / 256 / 384 were slower or less exact.
  benchmarks/embed_speed.py measures both against sentence-transformers.

``python -m analyzer.fast_embed build --backend openvino`` (or ``openvino-int8``) builds them
explicitly (``make run``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.embed import packaged_model_path, sha256_file
from analyzer.errors import ModelBundleError
from analyzer.fast_embed import (
    MANIFEST_FILE,
    OnnxEncoder,
    _build_lock,
    cache_base,
    mean_pooled_module,
    read_model_config,
    source_sha256,
)

__all__ = [
    "BUILD_VERSION",
    "OpenVinoEncoder",
    "build_model",
    "ensure_model",
    "inference_precision",
    "openvino_encoder",
    "verify_built",
]

BUILD_VERSION = 1
IR_FILES = ("model.xml", "model.bin")
PRECISION_ENV = "CIVICPULSE_OV_PRECISION"
WEIGHTS = ("full", "int8")
# Values per dynamically quantised group of a linear layer's input (see the module docstring).
INT8_GROUP_SIZE = 128


def cache_root() -> Path:
    """Where converted models live: ``cache_base() / "openvino"``."""
    return cache_base() / "openvino"


def _check_weights(weights: str) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"unknown OpenVINO weights {weights!r} ({', '.join(WEIGHTS)})")
    return weights


def model_dir(model_path: Path, weights: str = "full") -> Path:
    variant = "" if _check_weights(weights) == "full" else f"{weights}-"
    return cache_root() / f"{source_sha256(model_path)[:16]}-ir-{variant}v{BUILD_VERSION}"


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


@lru_cache(maxsize=1)
def inference_precision() -> str:
    """ "bf16" where the CPU computes in bfloat16 natively (AMX / AVX512-BF16), else "f32".

    ``$CIVICPULSE_OV_PRECISION`` (bf16 or f32) overrides it. Part of the model id, because the
    two give (very slightly) different vectors and the store caches vectors per model id.
    """
    env = os.environ.get(PRECISION_ENV, "").strip().lower()
    if env:
        if env not in ("bf16", "f32"):
            raise ValueError(f"{PRECISION_ENV} must be bf16 or f32, not {env!r}")
        return env
    caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in caps else "f32"


def verify_built(folder: Path, source_sha: str, weights: str = "full") -> str | None:
    """Why the converted model in ``folder`` cannot be used, or None when it verifies."""
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file() or not all((folder / f).is_file() for f in IR_FILES):
        return "not built"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    expected = {"source_sha256": source_sha, "build_version": BUILD_VERSION, "weights": weights}
    for key, value in expected.items():
        # Manifests written before the int8 variant existed name no weights: full ones.
        if manifest.get(key, "full" if key == "weights" else None) != value:
            return f"manifest {key} is {manifest.get(key)!r}, expected {value!r}"
    for name in IR_FILES:
        digest = sha256_file(folder / name)
        if digest != manifest.get("sha256", {}).get(name):
            return f"{folder / name}: sha256 {digest[:12]} does not match the manifest (corrupt?)"
    return None


@dataclass(frozen=True)
class BuiltIR:
    """A verified OpenVINO IR on disk and what it was built from."""

    path: Path
    manifest: dict[str, Any]
    rebuilt: bool


def ensure_model(
    model_path: Path | None = None, *, weights: str = "full", force: bool = False
) -> BuiltIR:
    """The verified IR for ``model_path`` (default: the packaged model), converted if needed."""
    model_path = Path(model_path) if model_path else packaged_model_path()
    source_sha = source_sha256(model_path)
    folder = model_dir(model_path, weights)
    if not force and verify_built(folder, source_sha, weights) is None:
        return _built(folder, rebuilt=False)
    with _build_lock(folder):
        reason = "forced" if force else verify_built(folder, source_sha, weights)
        if reason is None:  # another process built it while this one waited
            return _built(folder, rebuilt=False)
        build_model(model_path, source_sha, folder, weights)
        problem = verify_built(folder, source_sha, weights)
        if problem is not None:  # pragma: no cover - disk trouble
            raise ModelBundleError(f"the OpenVINO model just built does not verify: {problem}")
        return _built(folder, rebuilt=True)


def _built(folder: Path, *, rebuilt: bool) -> BuiltIR:
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return BuiltIR(folder / IR_FILES[0], manifest, rebuilt)


def build_model(model_path: Path, source_sha: str, folder: Path, weights: str = "full") -> None:
    """Convert the local model to OpenVINO IR in ``folder``, atomically.

    ``weights="full"`` keeps float32 weights; ``"int8"`` compresses the linear layers' weights
    with NNCF (symmetric, per output channel, data-free).
    """
    import openvino as ov
    import torch

    cfg = read_model_config(model_path)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        module, (ids, mask) = mean_pooled_module(model_path)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = ov.convert_model(
                module,
                example_input={"input_ids": ids, "attention_mask": mask},
                input=[
                    ("input_ids", [-1, -1], ov.Type.i64),
                    ("attention_mask", [-1, -1], ov.Type.i64),
                ],
            )
        versions = {"openvino": ov.get_version(), "torch": torch.__version__}
        if _check_weights(weights) == "int8":
            converted, versions["nncf"] = _compress_int8(converted)
        # float32 weights on disk (int8 ones for "int8"); the plugin converts float32 to
        # bfloat16 at compile time where it can.
        ov.save_model(converted, str(tmp / IR_FILES[0]), compress_to_fp16=False)
        manifest = {
            "source": str(model_path),
            "source_sha256": source_sha,
            "sha256": {name: sha256_file(tmp / name) for name in IR_FILES},
            "build_version": BUILD_VERSION,
            "weights": weights,
            "max_seq_length": cfg["max_seq_length"],
            "pooling": "mean",
            "versions": versions,
            "build_seconds": round(time.perf_counter() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        # Weights and graph first, manifest last (see analyzer.fast_embed._build).
        for name in (*reversed(IR_FILES), MANIFEST_FILE):
            os.replace(tmp / name, folder / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compress_int8(model: Any) -> tuple[Any, str]:
    """The model with its linear layers' weights in int8 (NNCF, data-free) and NNCF's version."""
    import logging

    import nncf

    # NNCF prints a bit-width table and a progress bar at INFO; the build's own line suffices.
    logging.getLogger("nncf").setLevel(logging.WARNING)
    compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
    return compressed, str(nncf.__version__)


class OpenVinoEncoder(OnnxEncoder):
    """``OnnxEncoder``'s tokenising and batching over an OpenVINO compiled model.

    ``workers`` inference streams (one per core by default), each single-threaded with its own
    infer request; OpenVINO releases the GIL while it runs, so the streams run in parallel.
    """

    width_multiple = 8

    def __init__(
        self,
        model_file: Path,
        tokenizer_file: Path,
        *,
        max_seq_length: int = 256,
        batch_size: int = 64,
        max_batch_tokens: int = 2048,
        threads: int | None = None,
        workers: int | None = None,
        chunk_size: int = 4096,
        precision: str | None = None,
        weights: str = "full",
    ) -> None:
        self._init_batching(
            model_file,
            tokenizer_file,
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            threads=threads,
            workers=workers,
            chunk_size=chunk_size,
        )
        self.precision = precision or inference_precision()
        self.weights = _check_weights(weights)
        config = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "NUM_STREAMS": str(self.workers),
            "INFERENCE_NUM_THREADS": str(self.threads),
            "ENABLE_HYPER_THREADING": "NO",
            # 0 turns dynamic quantization off: the full model stays exact in bfloat16.
            "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(INT8_GROUP_SIZE if weights == "int8" else 0),
        }
        core = _core()
        self.compiled = core.compile_model(core.read_model(str(self.model_file)), "CPU", config)
        self.dim = int(self.compiled.outputs[0].get_partial_shape()[-1].get_length())
        self._local = threading.local()

    def _infer(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:  # one infer request per calling thread (stream)
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({"input_ids": input_ids, "attention_mask": mask})
        return np.array(result[self.compiled.outputs[0]], dtype=np.float32, copy=True)


def openvino_encoder(
    model_path: Path, batch_size: int = 64, *, threads: int | None = None, weights: str = "full"
) -> OpenVinoEncoder:
    """An OpenVINO encoder of the sentence-transformers model in ``model_path`` (built if needed)."""
    model_path = Path(model_path)
    built = ensure_model(model_path, weights=weights)
    return OpenVinoEncoder(
        built.path,
        model_path / "tokenizer.json",
        max_seq_length=int(built.manifest["max_seq_length"]),
        batch_size=batch_size,
        threads=threads,
        weights=weights,
    )
