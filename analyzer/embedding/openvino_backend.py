"""The fastest CPU embedding backends here: the packaged model run by OpenVINO.

Why OpenVINO: on CPUs with native bfloat16 (AMX on Intel Sapphire Rapids and later, AVX512-BF16
on AMD Zen 4: the two kinds this project has run on), its CPU plugin runs the transformer's
matrix products in bfloat16, and it fuses attention, GELU and LayerNorm into JIT kernels. The
vectors stay at 0.9999+ cosine to sentence-transformers' float32 ``encode`` (bfloat16 keeps
float32's exponent range, so nothing is calibrated or clipped). Where the CPU has no native
bfloat16 the same model runs in float32 (still fused). The int8 variants below trade a little of
that exactness (0.998-0.999 cosine) for speed. See benchmarks/embed_speed.py.

The model is converted here from the local weights (``ov.convert_model`` on the transformer the
ONNX export loads, over packed rows: see below), never downloaded, and cached as
OpenVINO IR under ``$CIVICPULSE_CACHE/openvino`` in a folder named by the source weights' hash,
with a manifest holding the sha256 of the source and of both IR files, the recipe, the converter
versions and the build id derived from them (``analyzer.embedding.build_id``); a folder that no
longer verifies (or, for the static model, was calibrated on other texts than those in force) is
rebuilt, under a file lock, written to a temporary folder and renamed into place.

The converted graph takes packed rows (``packed_module``): several texts one after the other in a
row, each attending only to itself, with its own positions; the encoder packs a whole input
(``pack_rows``: rows of up to 96 tokens, or about one row per stream for a micro-batch), runs the
calls on one single-threaded inference stream per core, costliest first, and takes each text's
mean in float32. Widths are rounded up to a multiple of 8: the CPU plugin JIT-compiles kernels
per input shape, so fewer shapes mean fewer compilations.

Three weight variants, each its own backend name and model id (their vectors differ slightly,
and the store caches vectors per model id):

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
- ``openvino-int8-static`` (``weights="int8-static"``, the default): weights and activations in
  int8 with fixed scales, calibrated once at build time on real resident text from data_samples/
  (NNCF post-training quantisation; recipe and measurements in ``analyzer.embedding.quantize``). The
  linear layers then run as pure int8 products (VNNI; 350 vs 294 GOP/s per core for the dynamic
  model's, benchmarks/embed_ceiling.py): 1.15-1.2x the dynamic model's texts/s at
  the same cosine to float32 on Boston descriptions (0.9986 vs 0.9987) and nearly the same on
  engagement comments (0.9980 vs 0.9983), and a text's vector no longer depends on its row-mates.

benchmarks/embed_speed.py measures them all against sentence-transformers.

``civicpulse models build --backend openvino`` (or ``openvino-int8``, ``openvino-int8-static``)
builds them explicitly (``make run`` builds the default).
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.common.clock import utc_stamp
from analyzer.common.hashing import sha256_file
from analyzer.embedding.backend import EmbeddingBackend, Encoder, ModelFiles, register_backend
from analyzer.embedding.batching import BatchingEncoder, pack_rows
from analyzer.embedding.build_id import build_id_of, pinned_build, recorded_build_problem
from analyzer.embedding.model_files import (
    MANIFEST_FILE,
    BuiltModel,
    cache_base,
    ensure_built,
    load_transformer,
    packaged_model_path,
    publish,
    read_manifest,
    read_model_config,
    source_sha256,
    staging_folder,
)
from analyzer.embedding.quantize import (
    calibration_sha256,
    calibration_source,
    calibration_texts,
    compress_int8,
    quantize_static,
    texts_sha256,
)
from analyzer.errors import ModelBundleError

__all__ = [
    "BUILD_VERSION",
    "OpenVinoEncoder",
    "build_model",
    "calibration_feeds",
    "compile_config",
    "ensure_model",
    "inference_precision",
    "openvino_encoder",
    "packed_module",
    "verify_built",
]


# 2: packed rows (input_ids, position_ids, segments in; token states out). 1 padded one text per
# row and pooled in the graph.
BUILD_VERSION = 2
IR_FILES = ("model.xml", "model.bin")
PRECISION_ENV = "CIVICPULSE_OV_PRECISION"
WEIGHTS = ("full", "int8", "int8-static")
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
    problem = recorded_build_problem(manifest)
    if problem is None and weights == "int8-static":
        problem = _calibration_problem(manifest)
    if problem is not None:
        return problem
    for name in IR_FILES:
        digest = sha256_file(folder / name)
        if digest != manifest.get("sha256", {}).get(name):
            return f"{folder / name}: sha256 {digest[:12]} does not match the manifest (corrupt?)"
    return None


def _calibration_problem(manifest: dict[str, Any]) -> str | None:
    """Why a static int8 build no longer matches the calibration texts in force, or None.

    The pinned build (``$CIVICPULSE_EMBED_BUILD``) is used as it is: a copied build need not be
    recalibrated on this machine's texts."""
    built = manifest.get("quantization", {}).get("calibration", {}).get("sha256")
    if pinned_build() == build_id_of(manifest):
        return None
    try:
        current = calibration_sha256()
    except ModelBundleError as exc:
        return str(exc)
    if built != current:
        return (
            f"calibrated on other texts (sha256 {str(built)[:12]}) than those in force "
            f"({current[:12]})"
        )
    return None


def ensure_model(
    model_path: Path | None = None, *, weights: str = "full", force: bool = False
) -> BuiltModel:
    """The verified IR for ``model_path`` (default: the packaged model), converted if needed."""
    model_path = Path(model_path) if model_path else packaged_model_path()
    source_sha = source_sha256(model_path)
    folder = model_dir(model_path, weights)
    return ensure_built(
        folder,
        IR_FILES[0],
        verify=lambda: verify_built(folder, source_sha, weights),
        build=lambda: build_model(model_path, source_sha, folder, weights),
        what="OpenVINO model",
        force=force,
    )


PACKED_INPUTS = ("input_ids", "position_ids", "segments")


def packed_module(model_path: Path) -> tuple[Any, dict[str, Any]]:
    """The transformer over packed rows, as a torch module, and example inputs to trace.

    A row holds several texts one after the other: ``segments`` numbers each token's text within
    its row (1, 2, ...; 0 is padding) and ``position_ids`` restarts at 0 for every text. A token
    attends only to tokens of its own text (a block-diagonal additive mask), so each text gets
    exactly the states it would get alone: positions, attention and every per-token layer are the
    same. The output is the last hidden state per token, float32; the caller takes each text's
    mean (sentence-transformers' mean pooling) in float32.
    """
    import torch

    bert = load_transformer(model_path)

    class PackedRows(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, position_ids: torch.Tensor, segments: torch.Tensor
        ) -> torch.Tensor:
            same_text = segments.unsqueeze(2) == segments.unsqueeze(1)
            blocked = torch.tensor(torch.finfo(torch.float32).min)
            mask = torch.where(same_text, torch.tensor(0.0), blocked).unsqueeze(1)
            return self.inner(
                input_ids=input_ids,
                position_ids=position_ids,
                attention_mask=mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state

    # two rows: two texts packed in one, one text with padding
    segments = torch.tensor([[1] * 10 + [2] * 6, [1] * 12 + [0] * 4])
    positions = torch.tensor([list(range(10)) + list(range(6)), list(range(12)) + [0] * 4])
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64) * (segments > 0)
    example = {"input_ids": ids, "position_ids": positions, "segments": segments}
    return PackedRows(bert).eval(), example


def build_model(model_path: Path, source_sha: str, folder: Path, weights: str = "full") -> None:
    """Convert the local model to OpenVINO IR in ``folder``, atomically.

    ``weights="full"`` keeps float32 weights; ``"int8"`` compresses the linear layers' weights
    with NNCF (symmetric, per output channel, data-free); ``"int8-static"`` quantises weights and
    activations statically, calibrated on the packed rows of ``calibration_texts`` (built from
    the full IR, which is built first if needed; see ``analyzer.embedding.quantize``).
    """
    import openvino as ov
    import torch

    cfg = read_model_config(model_path)
    started = time.perf_counter()
    with staging_folder(folder) as tmp:
        module, example = packed_module(model_path)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = ov.convert_model(
                module,
                example_input=example,
                input=[(name, [-1, -1], ov.Type.i64) for name in PACKED_INPUTS],
            )
        versions = {"openvino": ov.get_version(), "torch": torch.__version__}
        recipe: dict[str, Any] = {}
        if _check_weights(weights) == "int8":
            converted, versions["nncf"] = compress_int8(converted)
        elif weights == "int8-static":
            converted, recipe = _quantize_static(converted, model_path)
            versions["nncf"] = recipe.pop("nncf")
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
            "inputs": list(PACKED_INPUTS),
            "pooling": "mean, by the caller (token states out)",
            "versions": versions,
            **({"quantization": recipe} if recipe else {}),
            "build_seconds": round(time.perf_counter() - started, 1),
            "built_at": utc_stamp(),
        }
        # Weights and graph first, manifest last (``publish``).
        publish(tmp, folder, list(reversed(IR_FILES)), manifest)


def compile_config(weights: str, *, precision: str, streams: int, threads: int) -> dict[str, str]:
    """The CPU plugin's settings for a model of these ``weights`` (the encoder's, and what
    benchmarks profile with)."""
    return {
        "INFERENCE_PRECISION_HINT": precision,
        "NUM_STREAMS": str(streams),
        "INFERENCE_NUM_THREADS": str(threads),
        "ENABLE_HYPER_THREADING": "NO",
        # Dynamic quantization only for the int8-weight model; 0 turns it off: the full model
        # stays exact in bfloat16, and the static one's scales are in the graph.
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(INT8_GROUP_SIZE if weights == "int8" else 0),
    }


def calibration_feeds(
    model_path: Path | None = None, texts: Sequence[str] | None = None
) -> list[dict[str, np.ndarray]]:
    """What the static int8 model is calibrated on: the packed calls a bulk run (one stream)
    makes of ``texts`` (default ``calibration_texts``), built with the full IR (built first if
    needed)."""
    model_path = Path(model_path) if model_path else packaged_model_path()
    full = ensure_model(model_path, weights="full")
    encoder = OpenVinoEncoder(
        full.path,
        model_path / "tokenizer.json",
        max_seq_length=int(full.manifest["max_seq_length"]),
        workers=1,
    )
    return encoder.feeds(calibration_texts() if texts is None else texts)


def _quantize_static(model: Any, model_path: Path) -> tuple[Any, dict[str, Any]]:
    """``quantize_static`` on ``calibration_feeds``; the recipe with what it was calibrated on."""
    texts = calibration_texts()
    quantized, recipe = quantize_static(model, calibration_feeds(model_path, texts))
    recipe["calibration"] = {
        "source": calibration_source(),
        "texts": len(texts),
        "sha256": texts_sha256(texts),
    }
    return quantized, recipe


class OpenVinoEncoder(BatchingEncoder):
    """A ``BatchingEncoder`` over an OpenVINO compiled model of packed rows.

    ``workers`` inference streams (one per core by default), each single-threaded with its own
    infer request; OpenVINO releases the GIL while it runs, so the streams run in parallel.
    Texts are packed several to a row (``pack_rows``, ``packed_module``) instead of padded one
    to a row: no padding beyond a row's end, and an API micro-batch of a few texts is one call per
    stream. Measured on an AMD EPYC (Zen 4, 2 cores), int8 weights, against one text per row in
    batches of similar length: bulk about 5% more texts/s, micro-batches of 8-16 real Boston
    texts 9-15%, at the same vectors (cosine 0.999995 mean). With bfloat16 weights a text's vector
    does not depend on its row-mates (0.999999); with int8 weights the dynamic quantisation's
    scales span more than one token, so row-mates nudge it (min 0.9997 over 120 Boston texts,
    far inside the int8 model's own 0.9987 to float32).
    """

    width_multiple = 8
    thread_name_prefix = "openvino-embed"
    # Bulk rows of up to 96 tokens (longer texts get their own row): padding beyond the row's
    # end shrinks as rows grow, attention over the whole row grows with them (each token attends
    # over the row before the mask zeroes other texts); measured 96 best of 64 / 96 / 128 / 192.
    row_tokens = 96
    # Up to this many tokens per stream, an input is a micro-batch: one row per stream.
    small_tokens = 256

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
        super().__init__(
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
        config = compile_config(
            self.weights, precision=self.precision, streams=self.workers, threads=self.threads
        )
        core = _core()
        self.compiled = core.compile_model(core.read_model(str(self.model_file)), "CPU", config)
        self.dim = int(self.compiled.outputs[0].get_partial_shape()[-1].get_length())
        self._local = threading.local()

    def plan(self, lengths: np.ndarray) -> list[list[list[int]]]:
        """Calls of rows of text indices for texts of these token lengths (``pack_rows``)."""
        return pack_rows(
            lengths,
            workers=self.workers,
            row_tokens=self.row_tokens,
            call_tokens=self.max_batch_tokens,
            small_tokens=self.small_tokens,
        )

    def _infer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Token states (rows, width, dim) for one packed call (``PACKED_INPUTS``)."""
        request = getattr(self._local, "request", None)
        if request is None:  # one infer request per calling thread (stream)
            request = self._local.request = self.compiled.create_infer_request()
        return np.asarray(request.infer(feed)[self.compiled.outputs[0]], dtype=np.float32)

    def feeds(self, texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
        """The packed inputs of the calls that embedding ``texts`` makes (no inference).

        What the static int8 model is calibrated on, and what benchmarks profile.
        """
        ids = self.tokenize([t if isinstance(t, str) else "" for t in texts])
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        return [self._feed(ids, lengths, call)[0] for call in self.plan(lengths)]

    def _feed(
        self, ids: list[list[int]], lengths: np.ndarray, call: list[list[int]]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One call's packed inputs and its pooling matrix (row t averages text t's tokens)."""
        width = max(int(lengths[row].sum()) for row in call)
        width = -(-width // self.width_multiple) * self.width_multiple
        shape = (len(call), width)
        feed = {name: np.zeros(shape, dtype=np.int64) for name in PACKED_INPUTS}
        # pooling[t] averages text t's tokens (float32, like sentence-transformers' pooling)
        pooling = np.zeros((sum(len(row) for row in call), width), dtype=np.float32)
        t = 0
        for r, row in enumerate(call):
            start = 0
            for k, index in enumerate(row):
                n = int(lengths[index])
                stop = start + n
                feed["input_ids"][r, start:stop] = ids[index]
                feed["position_ids"][r, start:stop] = np.arange(n)
                feed["segments"][r, start:stop] = k + 1
                pooling[t + k, start:stop] = 1.0 / n
                start = stop
            t += len(row)
        return feed, pooling

    def _run(self, ids: list[list[int]], lengths: np.ndarray, call: list[list[int]]) -> np.ndarray:
        """Mean-pooled vectors of one call's texts, row by row in ``call`` order."""
        feed, pooling = self._feed(ids, lengths, call)
        states = self._infer(feed)
        out = np.empty((len(pooling), states.shape[-1]), dtype=np.float32)
        t = 0
        for r, row in enumerate(call):
            out[t : t + len(row)] = pooling[t : t + len(row)] @ states[r]
            t += len(row)
        return out

    def _cost(self, unit: list[list[int]], lengths: np.ndarray) -> int:
        return len(unit) * max(int(lengths[row].sum()) for row in unit)  # rows x longest row

    def _texts_of(self, unit: list[list[int]]) -> list[int]:
        return [i for row in unit for i in row]

    def _first_inference(self) -> None:
        self._run([[101, 102]], np.array([2]), [[0]])  # [CLS] [SEP]


def openvino_encoder(
    model_path: Path,
    batch_size: int = 64,
    *,
    threads: int | None = None,
    weights: str = "full",
    built: BuiltModel | None = None,
) -> OpenVinoEncoder:
    """An OpenVINO encoder of the sentence-transformers model in ``model_path`` (built if needed),
    or of the already verified ``built`` one."""
    model_path = Path(model_path)
    built = built or ensure_model(model_path, weights=weights)
    return OpenVinoEncoder(
        built.path,
        model_path / "tokenizer.json",
        max_seq_length=int(built.manifest["max_seq_length"]),
        batch_size=batch_size,
        threads=threads,
        weights=weights,
    )


@register_backend("openvino")
class OpenVinoBackend(EmbeddingBackend):
    """OpenVINO with float32 weights (bfloat16 compute where the CPU has it); the precision in
    force is part of the model id, as bf16 and f32 give (very slightly) different vectors."""

    weights = "full"

    def __init__(self) -> None:
        # What ``build`` verified, per source folder: ``encoder`` runs exactly that build.
        self._built: dict[Path, BuiltModel] = {}

    def id_suffix(self) -> str:
        return f"-{inference_precision()}"

    def encoder(self, model_path: Path, *, batch_size: int, device: str) -> Encoder:
        built = self._built.get(Path(model_path))
        return openvino_encoder(model_path, batch_size, weights=self.weights, built=built)

    def build(
        self, model_path: Path, *, variant: str | None = None, force: bool = False
    ) -> ModelFiles:
        self.variants(variant)
        built = ensure_model(model_path, weights=self.weights, force=force)
        self._built[Path(model_path)] = built
        return ModelFiles.of_build(
            self.name,
            built.path.parent,
            built.manifest,
            built.manifest["sha256"],
            rebuilt=built.rebuilt,
        )

    def verify(self, model_path: Path, *, variant: str | None = None) -> ModelFiles:
        self.variants(variant)
        folder = model_dir(model_path, self.weights)
        problem = verify_built(folder, source_sha256(model_path), self.weights)
        if problem:
            return ModelFiles(self.name, folder, problem=problem)
        manifest = read_manifest(folder)
        self._built[Path(model_path)] = BuiltModel(folder / IR_FILES[0], manifest, rebuilt=False)
        return ModelFiles.of_build(self.name, folder, manifest, manifest["sha256"])


@register_backend("openvino-int8")
class OpenVinoInt8Backend(OpenVinoBackend):
    """int8 weights, activations quantised at run time (groups of ``INT8_GROUP_SIZE``)."""

    weights = "int8"


@register_backend("openvino-int8-static")
class OpenVinoInt8StaticBackend(OpenVinoBackend):
    """int8 weights and activations at scales calibrated at build time (``quantize``)."""

    weights = "int8-static"
