"""Sentence embeddings, offline, from the packaged all-MiniLM-L6-v2 or any local sentence-transformers folder.

- The packaged model's ``model.safetensors`` is checked against its known sha256 before loading.
- The backend that runs the model is looked up by name (``analyzer.embedding.registry``); with no
  name, the one in the settings (``embed_backend``), like the model and the batch size.
- Identical texts are embedded once per call; with a store, vectors are cached by model id and text hash
  so that ``civicpulse analyze`` embeds only what is new.
- Rows are L2-normalised float32, one per input text, in input order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from analyzer.common.hashing import text_hash
from analyzer.common.vectors import normalise_rows
from analyzer.config import load_settings
from analyzer.embedding.backend import Encoder, ModelFiles
from analyzer.embedding.build_id import check_pinned, pinned_build
from analyzer.embedding.model_files import EMBED_DIM, resolve_model
from analyzer.embedding.registry import backend_factory

if TYPE_CHECKING:
    from analyzer.store.database import Store

# Texts per encoder call and per write to the store's cache (bounds memory; resumable runs).
CHUNK_TEXTS = 4096


class Default(Enum):
    """``get_embedder``'s "not given": take the value from the settings."""

    FROM_SETTINGS = "from settings"


FROM_SETTINGS = Default.FROM_SETTINGS


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    ``backend`` is "torch" (sentence-transformers ``encode``), "openvino"
    (``analyzer.embedding.openvino_backend``, bfloat16 where the CPU has it), "openvino-int8" (the
    same with int8 weights and dynamically quantised activations), "openvino-int8-static" (int8
    weights and statically quantised activations, calibrated at build time: the fastest here) or
    "onnx" (``analyzer.embedding.onnx_backend``, int8), or any other registered name
    (``analyzer.embedding.registry``); None is the settings' ``embed_backend``, as None
    ``batch_size`` is their ``embed_batch_size``. ``model`` None is the packaged model. Loading is
    lazy: constructing an Embedder is cheap; the first use of ``model_id`` or ``build_id`` builds
    (or verifies) the backend's model, and ``$CIVICPULSE_EMBED_BUILD`` makes that verify only,
    refusing any build but the pinned one.

    ``model_family`` names the model, backend and precision (or mode); ``model_id`` adds the
    build (the torch backend's is its weights', already in the family).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        backend: str | None = None,
        batch_size: int | None = None,
        device: str = "cpu",
    ) -> None:
        if backend is None or batch_size is None:
            settings = load_settings()
            backend = backend or settings.embed_backend
            batch_size = batch_size or settings.embed_batch_size
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self.device = device
        self.model_path_, self._base_id, self.weights_sha256_ = resolve_model(model)
        self._backend = backend_factory(backend)()
        # The backend's part of the id: its vectors differ from the others' (and for some with a
        # mode or a precision in force), and the store caches vectors per model id.
        self.model_family = self._backend.model_family(self._base_id)
        self._files: ModelFiles | None = None
        self._files_lock = threading.Lock()
        self._encoder: Encoder | None = None

    @property
    def files_(self) -> ModelFiles:
        """The verified files this embedder runs, with their build id (built first if needed)."""
        with self._files_lock:
            if self._files is None:
                if pinned_build() is None:
                    self._files = self._backend.build(self.model_path_)
                else:  # never build under a pin: a new build would not be the pinned one
                    files = self._backend.verify(self.model_path_)
                    check_pinned(
                        files.build_id,
                        label=self.backend,
                        folder=files.folder,
                        problem=files.problem,
                    )
                    self._files = files
            return self._files

    @property
    def build_id(self) -> str:
        """The build id of the model this embedder runs (``analyzer.embedding.build_id``)."""
        build_id = self.files_.build_id
        assert build_id is not None  # files_ verified
        return build_id

    @property
    def model_id(self) -> str:
        """The id the store caches this embedder's vectors by: the family and the build."""
        return self._backend.model_id(self._base_id, self.build_id)

    def build_record(self) -> dict[str, Any]:
        """What a run manifest records of the build: its id and what the id is derived from."""
        return {"id": self.build_id, **self.files_.facts}

    @property
    def dim(self) -> int:
        return EMBED_DIM if not self.model else int(self._load()(["x"]).shape[1])

    def _load(self) -> Encoder:
        if self._encoder is None:
            self.files_  # noqa: B018 - the backend runs the files whose build id the vectors get
            self._encoder = self._backend.encoder(
                self.model_path_, batch_size=self.batch_size, device=self.device
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


def get_embedder(
    model: str | os.PathLike[str] | Literal[Default.FROM_SETTINGS] | None = FROM_SETTINGS,
    backend: str | None = None,
    batch_size: int | None = None,
) -> Embedder:
    """A shared Embedder per (model, backend, batch size); the weights load once per process.

    What is not given comes from the settings (``load_settings``: ``embed_model``,
    ``embed_backend``, ``embed_batch_size``), so every caller has the same default. ``model`` None
    or "" is the packaged model.
    """
    if model is FROM_SETTINGS or backend is None or batch_size is None:
        settings = load_settings()
        model = settings.embed_model if model is FROM_SETTINGS else model
        backend = backend or settings.embed_backend
        batch_size = batch_size or settings.embed_batch_size
    return _shared_embedder(model or "", backend, batch_size)


@lru_cache(maxsize=8)
def _shared_embedder(model: str | os.PathLike[str], backend: str, batch_size: int) -> Embedder:
    return Embedder(model or None, backend=backend, batch_size=batch_size)


def clear_shared_embedders() -> None:
    """Forget the shared embedders: the next ``get_embedder`` verifies (or builds) its model again,
    so a model rebuilt in this process is picked up with its new build id."""
    _shared_embedder.cache_clear()
