"""A fast embedding backend: the packaged sentence-transformers model run by ONNX Runtime.

The ONNX model is built here, from the local weights, never downloaded:

1. export: the transformer plus mean pooling over the attention mask (what the model's
   ``1_Pooling/config.json`` says) with ``torch.onnx.export``, batch and sequence axes dynamic;
2. fuse: ONNX Runtime's BERT optimiser folds each layer into Attention / SkipLayerNormalization /
   BiasGelu kernels (a plain export leaves dozens of small ops per layer);
3. quantise (mode "int8", the default): dynamic int8 weights, per output channel, on the MatMuls
   and the fused attention's QKV projection. LayerNorm, GELU, softmax and the embedding table
   stay float32. Per-channel scales and leaving those out are what keep the vectors at ~0.99
   cosine to float32 (the default per-tensor ``quantize_dynamic`` of everything gives ~0.96);
   see benchmarks/embed_speed.py.

The result is cached under ``$CIVICPULSE_CACHE/onnx`` (default ``~/.cache/civicpulse/onnx``) in a
folder named by the source weights' hash and the mode, with a manifest holding the sha256 of the
source weights and of the built ``.onnx``. A file that no longer matches its manifest (corrupt,
truncated, or built from other weights) is rebuilt. Builds write to a temporary folder and are
moved in with ``os.replace`` under a file lock, so a concurrent process never loads half a file.

At run time texts are tokenised once with the fast ``tokenizers`` library, truncated at the
model's ``max_seq_length`` (256), sorted by token length and batched with others of similar length,
so a batch carries almost no padding, then put back in input order. int8 runs one text per call
(no padding at all; see ``onnx_encoder``), float32 small sorted batches; both keep the cores busy
with one single-threaded run per core.

``python -m analyzer.embedding.onnx_backend build`` builds the model explicitly (``make run`` calls it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.embedding.embedder import (
    OPENVINO_WEIGHTS,
    packaged_model_path,
    sha256_file,
    verify_packaged_model,
)
from analyzer.errors import ModelBundleError

log = logging.getLogger(__name__)

CACHE_ENV = "CIVICPULSE_CACHE"
QUANT_ENV = "CIVICPULSE_ONNX_QUANT"
THREADS_ENV = "CIVICPULSE_ONNX_THREADS"
QUANT_MODES = ("fp32", "int8")
DEFAULT_QUANT = "int8"
# Bump when the build recipe changes the numbers it produces: old cache folders are then ignored.
BUILD_VERSION = 2
OPSET = 17
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
# Only these modules are reproduced by the export; anything else (a Dense head, say) would be
# silently dropped, so such models are refused instead.
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


# --------------------------------------------------------------------------- cache and hashes


def cache_base() -> Path:
    """CivicPulse's cache: ``$CIVICPULSE_CACHE``, else ``~/.cache/civicpulse``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "civicpulse"


def cache_root() -> Path:
    """Where built ONNX models live: ``cache_base() / "onnx"``."""
    return cache_base() / "onnx"


def default_quant() -> str:
    """The quantisation mode in force: ``$CIVICPULSE_ONNX_QUANT`` or "int8"."""
    quant = os.environ.get(QUANT_ENV, DEFAULT_QUANT).strip().lower() or DEFAULT_QUANT
    return _check_quant(quant)


def model_id_suffix(quant: str | None = None) -> str:
    """Model-id suffix for a mode, e.g. "-int8": modes give different vectors, so distinct ids."""
    return f"-{_check_quant(quant or default_quant())}"


def _check_quant(quant: str) -> str:
    if quant not in QUANT_MODES:
        modes = ", ".join(QUANT_MODES)
        raise ValueError(f"unknown ONNX quantisation mode {quant!r} (one of {modes})")
    return quant


def _source_weights(model_path: Path) -> Path:
    for pattern in ("model.safetensors", "*.safetensors", "pytorch_model.bin"):
        found = sorted(model_path.glob(pattern))
        if found:
            return found[0]
    raise ModelBundleError(f"{model_path} holds no model weights (*.safetensors)")


def source_sha256(model_path: Path) -> str:
    """sha256 of the weights an ONNX model is built from (the packaged ones are also verified)."""
    model_path = Path(model_path)
    with contextlib.suppress(ModelBundleError):
        if model_path.resolve() == packaged_model_path().resolve():
            return verify_packaged_model()
    weights = _source_weights(model_path)
    stat = weights.stat()
    return _sha256_cached(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the key so that a replaced file is hashed again.
    return sha256_file(path)


def model_dir(model_path: Path, quant: str) -> Path:
    """Cache folder for one (source weights, mode, recipe): a new source lands in a new folder."""
    return cache_root() / f"{source_sha256(model_path)[:16]}-{quant}-v{BUILD_VERSION}"


def verify_built(folder: Path, source_sha: str, quant: str) -> str | None:
    """Why the built model in ``folder`` cannot be used, or None when it verifies."""
    manifest_path = folder / MANIFEST_FILE
    model_file = folder / MODEL_FILE
    if not manifest_path.is_file() or not model_file.is_file():
        return "not built"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    expected = {"source_sha256": source_sha, "quant": quant, "build_version": BUILD_VERSION}
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"manifest {key} is {manifest.get(key)!r}, expected {value!r}"
    digest = sha256_file(model_file)
    if digest != manifest.get("onnx_sha256"):
        return f"{model_file}: sha256 {digest[:12]} does not match the manifest (corrupt?)"
    return None


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock so that concurrent processes build once and wait for each other."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX; the atomic rename still protects readers
        yield
        return
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BuiltModel:
    """A verified ONNX model on disk and what it was built from."""

    path: Path
    manifest: dict[str, Any]
    rebuilt: bool


def ensure_model(
    model_path: Path | None = None, quant: str | None = None, *, force: bool = False
) -> BuiltModel:
    """The verified ONNX model for ``model_path`` (default: the packaged one), built if needed."""
    model_path = Path(model_path) if model_path else packaged_model_path()
    quant = _check_quant(quant or default_quant())
    source_sha = source_sha256(model_path)
    folder = model_dir(model_path, quant)
    if not force and verify_built(folder, source_sha, quant) is None:
        return _built(folder, rebuilt=False)
    with _build_lock(folder):
        # Another process may have finished the build while this one waited for the lock.
        reason = "forced" if force else verify_built(folder, source_sha, quant)
        if reason is None:
            return _built(folder, rebuilt=False)
        log.info("building ONNX model in %s (%s)", folder, reason)
        _build(model_path, quant, source_sha, folder)
        problem = verify_built(folder, source_sha, quant)
        if problem is not None:  # pragma: no cover - disk trouble
            raise ModelBundleError(f"the ONNX model just built does not verify: {problem}")
        return _built(folder, rebuilt=True)


def _built(folder: Path, *, rebuilt: bool) -> BuiltModel:
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return BuiltModel(folder / MODEL_FILE, manifest, rebuilt)


# --------------------------------------------------------------------------- build


def read_model_config(model_path: Path) -> dict[str, Any]:
    """max_seq_length, pooling and transformer sizes of a local sentence-transformers folder."""
    model_path = Path(model_path)
    modules_file = model_path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        unsupported = sorted({m["type"] for m in modules} - _SUPPORTED_MODULES)
        if unsupported:
            raise ModelBundleError(
                f"{model_path}: the ONNX backend does not reproduce {', '.join(unsupported)}"
            )
    pooling_file = model_path / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        if modes != ["pooling_mode_mean_tokens"]:
            raise ModelBundleError(f"{pooling_file}: only mean pooling is supported, not {modes}")
    st_config = model_path / "sentence_bert_config.json"
    max_seq = 256
    if st_config.is_file():
        max_seq = int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    max_seq = min(max_seq, int(config.get("max_position_embeddings", max_seq)))
    return {
        "max_seq_length": max_seq,
        "num_heads": int(config["num_attention_heads"]),
        "hidden_size": int(config["hidden_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "model_type": str(config.get("model_type", "bert")),
    }


def _build(model_path: Path, quant: str, source_sha: str, folder: Path) -> None:
    cfg = read_model_config(model_path)
    try:
        import onnx  # noqa: F401 - the fusion and quantisation tools need it; inference does not
    except ImportError:
        raise ModelBundleError(
            "building the ONNX model needs the onnx package (pip install onnx==1.23.2)"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # A sibling temporary folder: same file system, so os.replace below is an atomic rename.
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        final = tmp / MODEL_FILE
        if quant == "int8":
            # Quantise the verified float32 build rather than export twice.
            base = ensure_model(model_path, "fp32")
            fusion = base.manifest["fused_operators"]
            _quantise(base.path, final)
        else:
            raw = tmp / "raw.onnx"
            _export(model_path, raw)
            fusion = _fuse(raw, final, cfg)
        manifest = {
            "source": str(model_path),
            "source_sha256": source_sha,
            "onnx_sha256": sha256_file(final),
            "quant": quant,
            "build_version": BUILD_VERSION,
            "opset": OPSET,
            "max_seq_length": cfg["max_seq_length"],
            "pooling": "mean",
            "fused_operators": fusion,
            "versions": _versions(),
            "build_seconds": round(time.perf_counter() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        # Model first, manifest last: a reader that sees the new model with the old manifest finds
        # a hash mismatch and waits on the lock rather than using a file it cannot vouch for.
        os.replace(final, folder / MODEL_FILE)
        os.replace(tmp / MANIFEST_FILE, folder / MANIFEST_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def load_transformer(model_path: Path) -> Any:
    """The packaged transformer (no pooling) as a torch module in eval mode, from local files."""
    import transformers
    from transformers import AutoModel

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # "eager" attention exports as plain MatMul/Softmax, the pattern ORT's fusion recognises;
    # it also takes a ready 4D additive mask as is (analyzer.embedding.openvino_backend's packed rows).
    return AutoModel.from_pretrained(
        str(model_path), attn_implementation="eager", local_files_only=True
    ).eval()


def mean_pooled_module(model_path: Path) -> tuple[Any, tuple[Any, Any]]:
    """The transformer plus masked mean pooling as one torch module, and example inputs to trace.

    What the model's ``1_Pooling`` does, as a graph with dynamic batch and sequence axes, for the
    ONNX export here.
    """
    import torch

    bert = load_transformer(model_path)

    class MeanPooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0  # trace with padding present, so the masking path is the one exported
    return MeanPooled(bert).eval(), (ids, mask)


def _export(model_path: Path, out: Path) -> None:
    import torch

    wrapper, (ids, mask) = mean_pooled_module(model_path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter needs neither onnxscript nor a network; the model is static BERT.
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _fuse(raw: Path, out: Path, cfg: dict[str, Any]) -> dict[str, int]:
    from onnxruntime.transformers.optimizer import optimize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # opt_level 0: only the portable transformer fusions are saved; the hardware-specific
        # rewrites happen when the session loads (ORT_ENABLE_ALL).
        optimised = optimize_model(
            str(raw),
            model_type=cfg["model_type"] if cfg["model_type"] == "bert" else "bert",
            num_heads=cfg["num_heads"],
            hidden_size=cfg["hidden_size"],
            opt_level=0,
        )
    stats = {k: int(v) for k, v in optimised.get_fused_operator_statistics().items() if v}
    if stats.get("Attention", 0) != cfg["num_layers"]:
        # Still correct, only slower; say so rather than fail.
        log.warning(
            "ONNX attention fusion matched %s of %s layers",
            stats.get("Attention", 0),
            cfg["num_layers"],
        )
    optimised.save_model_to_file(str(out), use_external_data_format=False)
    return stats


def _quantise(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(src),
            str(out),
            # Measured on 1,000 Boston texts: MatMul only 0.9940 mean cosine to fp32, adding the
            # Attention QKV projection 0.9926 and 1.2x faster; Gather (the embedding table)
            # would shrink the file but costs accuracy and no time.
            op_types_to_quantize=["MatMul", "Attention"],
            per_channel=True,
            # VNNI/AMX CPUs need no 7-bit range; reduced range costs accuracy for nothing there.
            reduce_range=False,
            weight_type=QuantType.QInt8,
            # The fused contrib ops defeat shape inference; their outputs are float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


# --------------------------------------------------------------------------- run time


def default_threads() -> int:
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxEncoder:
    """Callable ``list[str] -> (n, dim) float32`` of L2-normalised sentence embeddings.

    Batches are small on purpose: measured here (int8, one core), 8 texts or ~512 padded tokens
    per batch ran 1.5x faster than 64 texts, because a batch's activations then stay in the
    core's L2 cache through the LayerNorm/GELU/attention steps. ``batch_size`` caps the texts and
    ``max_batch_tokens`` the padded tokens per batch (one overlong text still forms a batch).

    Small batches split badly across threads, so the cores are used by ``workers`` batches
    running at once on one shared session (ORT releases the GIL in ``run``), each single-threaded.
    """

    width_multiple = 1  # ORT needs no shape rounding: its kernels are not compiled per shape

    def __init__(
        self,
        model_file: Path,
        tokenizer_file: Path,
        *,
        max_seq_length: int = 256,
        batch_size: int = 64,
        max_batch_tokens: int = 512,
        threads: int | None = None,
        workers: int | None = None,
        chunk_size: int = 4096,
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
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = max(1, self.threads // self.workers)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle pool threads sleep instead of spinning: on a shared machine spinning steals cores
        # from other work, and batches here are long enough that wake-up latency is noise.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.model_file), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def _init_batching(
        self,
        model_file: Path,
        tokenizer_file: Path,
        *,
        max_seq_length: int,
        batch_size: int,
        max_batch_tokens: int,
        threads: int | None,
        workers: int | None,
        chunk_size: int,
    ) -> None:
        """Tokenizer, batch limits and worker count: everything but the runtime session."""
        from tokenizers import Tokenizer

        self.model_file = Path(model_file)
        self.max_seq_length = max_seq_length
        self.batch_size = max(1, batch_size)
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.chunk_size = max(chunk_size, self.batch_size)
        self.threads = threads or default_threads()
        self.workers = max(1, min(workers or self.threads, self.threads))
        tok = Tokenizer.from_file(str(tokenizer_file))
        # tokenizer.json ships with fixed padding and truncation at 128; sentence-transformers
        # truncates at max_seq_length and pads per batch, so do the same.
        tok.no_padding()
        tok.enable_truncation(max_length=max_seq_length)
        self.tokenizer = tok
        self._pool: ThreadPoolExecutor | None = None
        self._first_call = threading.Lock()
        self._warmed = False

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Chunks bound the memory held by tokenizer output on very large inputs; bucketing inside
        # a chunk of a few thousand texts is nearly as tight as over the whole input.
        for start in range(0, len(texts), self.chunk_size):
            part = texts[start : start + self.chunk_size]
            chunk = [t if isinstance(t, str) else "" for t in part]
            out[start : start + len(chunk)] = self._encode_chunk(chunk)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    # A batch's longest text is at most this many times its shortest (plus one width step):
    # padding costs as much as real tokens, and batching itself saves little on a CPU (measured:
    # 16 texts of 40 tokens in one call 75 ms, one at a time 6 ms each), so a few random texts
    # (an API micro-batch) split by length rather than all padding to the longest.
    max_pad_ratio = 1.25

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index batches over texts sorted by token length, each within the batch limits."""
        order = np.argsort(lengths, kind="stable")
        sorted_lengths = lengths[order]
        batches: list[np.ndarray] = []
        start = 0
        while start < len(order):
            # Sorted ascending, so the last row of a candidate batch is its padded length.
            stop = min(start + self.batch_size, len(order))
            first = int(sorted_lengths[start])
            limit = max(first * self.max_pad_ratio, first + self.width_multiple)
            stop = max(
                start + 1,
                min(stop, int(np.searchsorted(sorted_lengths, limit, side="right"))),
            )
            while stop - start > 1:
                width = int(lengths[order[stop - 1]])
                if (stop - start) * width <= self.max_batch_tokens:
                    break
                # Strictly shrinks (budget // width < rows here) and stops at one row.
                stop = start + max(1, self.max_batch_tokens // width)
            batches.append(order[start:stop])
            start = stop
        return batches

    def _run(self, ids: list[list[int]], lengths: np.ndarray, batch: np.ndarray) -> np.ndarray:
        width = int(lengths[batch].max())
        # Widths rounded up to a multiple: fewer distinct shapes for runtimes that compile a
        # kernel per shape; the padding is masked, so the vectors do not change.
        width = -(-width // self.width_multiple) * self.width_multiple
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, index in enumerate(batch):
            n = lengths[index]
            input_ids[row, :n] = ids[index]
            mask[row, :n] = 1
        return self._infer(input_ids, mask)

    def _infer(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    def _warm(self) -> None:
        """One inference, by one thread, before any other: the first call of the process.

        OpenVINO's and ONNX Runtime's Python bindings (pybind11) set up their numpy bridge on the
        process's first call; two threads making that first call at once deadlocked here (each
        waiting for the other, no CPU used): pool threads, or two callers of one encoder (the
        API's tagging workers). One call under a lock takes that out of the race.
        """
        if self._warmed:
            return
        with self._first_call:
            if not self._warmed:
                self._first_inference()
                self._warmed = True

    def _first_inference(self) -> None:
        ids = np.zeros((1, self.width_multiple), dtype=np.int64)
        self._infer(ids, np.ones_like(ids))

    def _parallel(self) -> ThreadPoolExecutor:
        """The worker pool (created once, after the first inference)."""
        with self._first_call:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-embed")
            return self._pool

    # The units of work, one inference call each: here index batches (``batches``); an encoder
    # with another input layout (``analyzer.embedding.openvino_backend``'s packed rows) overrides these four.
    def plan(self, lengths: np.ndarray) -> list[Any]:
        """One unit per inference call over texts of these token lengths."""
        return self.batches(lengths)

    def _cost(self, unit: Any, lengths: np.ndarray) -> int:
        """A unit's padded tokens (what its call costs)."""
        return len(unit) * int(lengths[unit].max())

    def _texts_of(self, unit: Any) -> Any:
        """The indices of a unit's texts, in the order ``_run`` returns their vectors."""
        return unit

    def _encode_chunk(self, texts: list[str]) -> np.ndarray:
        self._warm()
        ids = self.tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        units = self.plan(lengths)
        if self.workers > 1 and len(units) > 1:
            # Costliest first: the last unit to start is then a short one, so the streams finish
            # together instead of one running the longest unit alone at the end.
            units.sort(key=lambda u: -self._cost(u, lengths))
            results = self._parallel().map(lambda u: self._run(ids, lengths, u), units)
        else:
            results = (self._run(ids, lengths, u) for u in units)
        for unit, vectors in zip(units, results, strict=True):
            out[self._texts_of(unit)] = vectors
        return out


def onnx_encoder(
    model_path: Path,
    batch_size: int,
    *,
    quant: str | None = None,
    threads: int | None = None,
) -> OnnxEncoder:
    """An ONNX Runtime encoder of the sentence-transformers model in ``model_path``.

    Builds (or reuses the verified cached) ONNX model; ``quant`` defaults to
    ``$CIVICPULSE_ONNX_QUANT`` or "int8"; ``threads`` to the cores this process may use.
    """
    model_path = Path(model_path)
    built = ensure_model(model_path, quant)
    if built.manifest["quant"] == "int8":
        # Dynamic int8 takes one activation scale per batch, so a text's vector would depend on
        # its neighbours (0.97-0.99 cosine between batchings, measured). One text per run makes
        # every vector independent of how the input was split (store cache, the Ray engine),
        # needs no padding, and measured within ~10% of the best batch size here.
        batch_size = 1
    return OnnxEncoder(
        built.path,
        model_path / "tokenizer.json",
        max_seq_length=int(built.manifest["max_seq_length"]),
        batch_size=batch_size,
        threads=threads,
    )


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analyzer.embedding.onnx_backend",
        description="Build or check the local ONNX and OpenVINO embedding models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build (or reuse) the models"), ("verify", "check the cache")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--backend", choices=["onnx", *OPENVINO_WEIGHTS, "all"], default="all")
        cmd.add_argument("--quant", choices=[*QUANT_MODES, "all"], default=None, help="ONNX only")
        cmd.add_argument("--model", default=None, help="local sentence-transformers folder")
        if name == "build":
            cmd.add_argument("--force", action="store_true", help="rebuild even if verified")
    args = parser.parse_args(argv)
    # The quantiser logs every tensor at INFO on the root logger; only this module's lines matter.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    model_path = Path(args.model) if args.model else packaged_model_path()
    quants = list(QUANT_MODES) if args.quant == "all" else [args.quant or default_quant()]
    status = 0
    try:
        if args.backend in ("onnx", "all"):
            for quant in quants:
                status = _build_or_verify(args, model_path, quant) or status
        for backend in OPENVINO_WEIGHTS:
            if args.backend in (backend, "all"):
                status = _build_or_verify(args, model_path, None, backend) or status
    except ModelBundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status


def _build_or_verify(
    args: argparse.Namespace, model_path: Path, quant: str | None, ov_backend: str = "openvino"
) -> int:
    """Build or verify one model: an ONNX ``quant`` mode, or the IR of the OpenVINO backend
    ``ov_backend`` when ``quant`` is None."""
    from analyzer.embedding import openvino_backend as ov_embed

    weights = OPENVINO_WEIGHTS[ov_backend]
    what = f"onnx {quant}" if quant else ov_backend
    if args.command == "build":
        started = time.perf_counter()
        if quant:
            built = ensure_model(model_path, quant, force=args.force)
            path, digest, rebuilt = built.path, built.manifest["onnx_sha256"], built.rebuilt
        else:
            ir = ov_embed.ensure_model(model_path, weights=weights, force=args.force)
            path, digest, rebuilt = ir.path, ir.manifest["sha256"]["model.bin"], ir.rebuilt
        done = "built" if rebuilt else "verified"
        print(f"{what}: {done} {path} sha256 {digest[:16]} ({time.perf_counter() - started:.1f} s)")
        return 0
    source = source_sha256(model_path)
    if quant:
        folder = model_dir(model_path, quant)
        problem = verify_built(folder, source, quant)
    else:
        folder = ov_embed.model_dir(model_path, weights)
        problem = ov_embed.verify_built(folder, source, weights)
    print(f"{what}: {folder}: {problem or 'ok'}")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
