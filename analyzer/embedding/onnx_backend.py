"""The ONNX embedding backend: the packaged sentence-transformers model run by ONNX Runtime.

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
source weights and of the built ``.onnx``, the converter versions and the build id derived from
them (``analyzer.embedding.build_id``). A file that no longer matches its manifest (corrupt,
truncated, or built from other weights) is rebuilt. Builds write to a temporary folder and are
moved in with ``os.replace`` under a file lock (``analyzer.embedding.model_files``), so a
concurrent process never loads half a file.

At run time ``OnnxEncoder`` (an ``analyzer.embedding.batching.BatchingEncoder``) sorts texts by
token length and batches them with others of similar length, so a batch carries almost no padding.
int8 runs one text per call (no padding at all; see ``onnx_encoder``), float32 small sorted
batches; both keep the cores busy with one single-threaded run per core.

``civicpulse models build --backend onnx [--quant fp32|int8|all]`` builds the model explicitly.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.common.clock import utc_stamp
from analyzer.common.hashing import sha256_file
from analyzer.embedding.backend import EmbeddingBackend, Encoder, ModelFiles, register_backend
from analyzer.embedding.batching import BatchingEncoder
from analyzer.embedding.build_id import recorded_build_problem
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
from analyzer.errors import ModelBundleError

log = logging.getLogger(__name__)

QUANT_ENV = "CIVICPULSE_ONNX_QUANT"
QUANT_MODES = ("fp32", "int8")
DEFAULT_QUANT = "int8"
# Bump when the build recipe changes the numbers it produces: old cache folders are then ignored.
BUILD_VERSION = 2
OPSET = 17
MODEL_FILE = "model.onnx"


# --------------------------------------------------------------------------- cache


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
    problem = recorded_build_problem(manifest)
    if problem is not None:
        return problem
    digest = sha256_file(model_file)
    if digest != manifest.get("onnx_sha256"):
        return f"{model_file}: sha256 {digest[:12]} does not match the manifest (corrupt?)"
    return None


def ensure_model(
    model_path: Path | None = None, quant: str | None = None, *, force: bool = False
) -> BuiltModel:
    """The verified ONNX model for ``model_path`` (default: the packaged one), built if needed."""
    model_path = Path(model_path) if model_path else packaged_model_path()
    quant = _check_quant(quant or default_quant())
    source_sha = source_sha256(model_path)
    folder = model_dir(model_path, quant)
    return ensure_built(
        folder,
        MODEL_FILE,
        verify=lambda: verify_built(folder, source_sha, quant),
        build=lambda: _build(model_path, quant, source_sha, folder),
        what="ONNX model",
        force=force,
    )


# --------------------------------------------------------------------------- build


def _build(model_path: Path, quant: str, source_sha: str, folder: Path) -> None:
    cfg = read_model_config(model_path)
    try:
        import onnx  # noqa: F401 - the fusion and quantisation tools need it; inference does not
    except ImportError:
        raise ModelBundleError(
            "building the ONNX model needs the onnx package (pip install onnx==1.23.2)"
        ) from None
    started = time.perf_counter()
    with staging_folder(folder) as tmp:
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
            "built_at": utc_stamp(),
        }
        publish(tmp, folder, [MODEL_FILE], manifest)


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


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


class OnnxEncoder(BatchingEncoder):
    """``BatchingEncoder`` over an ONNX Runtime session of the mean-pooled model.

    Batches are small on purpose: measured here (int8, one core), 8 texts or ~512 padded tokens
    per batch ran 1.5x faster than 64 texts, because a batch's activations then stay in the
    core's L2 cache through the LayerNorm/GELU/attention steps. ``batch_size`` caps the texts and
    ``max_batch_tokens`` the padded tokens per batch (one overlong text still forms a batch).

    Small batches split badly across threads, so the cores are used by ``workers`` batches
    running at once on one shared session (ORT releases the GIL in ``run``), each single-threaded.
    """

    width_multiple = 1  # ORT needs no shape rounding: its kernels are not compiled per shape
    thread_name_prefix = "onnx-embed"

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

    def _run(self, ids: list[list[int]], lengths: np.ndarray, unit: np.ndarray) -> np.ndarray:
        return self._infer(*self.padded(ids, lengths, unit))

    def _infer(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    def _first_inference(self) -> None:
        ids = np.zeros((1, self.width_multiple), dtype=np.int64)
        self._infer(ids, np.ones_like(ids))


def onnx_encoder(
    model_path: Path,
    batch_size: int,
    *,
    quant: str | None = None,
    threads: int | None = None,
    built: BuiltModel | None = None,
) -> OnnxEncoder:
    """An ONNX Runtime encoder of the sentence-transformers model in ``model_path``.

    Builds (or reuses the verified cached) ONNX model, or runs the already verified ``built``
    one; ``quant`` defaults to ``$CIVICPULSE_ONNX_QUANT`` or "int8"; ``threads`` to the cores this
    process may use.
    """
    model_path = Path(model_path)
    built = built or ensure_model(model_path, quant)
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


@register_backend("onnx")
class OnnxBackend(EmbeddingBackend):
    """ONNX Runtime; its quantisation mode (``$CIVICPULSE_ONNX_QUANT``) is part of the model id,
    as fp32 and int8 give different vectors."""

    def __init__(self) -> None:
        # What ``build`` verified, per (source folder, mode): ``encoder`` runs exactly that build.
        self._built: dict[tuple[Path, str], BuiltModel] = {}

    def id_suffix(self) -> str:
        return model_id_suffix()

    def encoder(self, model_path: Path, *, batch_size: int, device: str) -> Encoder:
        built = self._built.get((Path(model_path), default_quant()))
        return onnx_encoder(model_path, batch_size, built=built)

    def variants(self, requested: str | None = None) -> list[str | None]:
        if requested == "all":
            return list(QUANT_MODES)
        return [_check_quant(requested or default_quant())]

    def build(
        self, model_path: Path, *, variant: str | None = None, force: bool = False
    ) -> ModelFiles:
        built = ensure_model(model_path, variant, force=force)
        self._built[(Path(model_path), built.manifest["quant"])] = built
        digests = {MODEL_FILE: built.manifest["onnx_sha256"]}
        return ModelFiles.of_build(
            self._label(variant), built.path.parent, built.manifest, digests, rebuilt=built.rebuilt
        )

    def verify(self, model_path: Path, *, variant: str | None = None) -> ModelFiles:
        quant = _check_quant(variant or default_quant())
        folder = model_dir(model_path, quant)
        problem = verify_built(folder, source_sha256(model_path), quant)
        if problem:
            return ModelFiles(self._label(quant), folder, problem=problem)
        manifest = read_manifest(folder)
        self._built[(Path(model_path), quant)] = BuiltModel(folder / MODEL_FILE, manifest, False)
        digests = {MODEL_FILE: manifest["onnx_sha256"]}
        return ModelFiles.of_build(self._label(quant), folder, manifest, digests)

    def _label(self, quant: str | None) -> str:
        return f"onnx {_check_quant(quant or default_quant())}"
