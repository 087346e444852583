"""Sentence embeddings: the packaged all-MiniLM-L6-v2 (or a local model) run by a named backend.

Layers, each importing only those below it:

- ``embedder``: ``Embedder`` and ``get_embedder`` (the shared one; defaults from the settings);
- ``registry``: the backends by name (``backend_factory``, ``BACKENDS``);
- ``torch_backend``, ``onnx_backend``, ``openvino_backend``: the backends, each registered with
  ``@register_backend(name)``; ``quantize``: the OpenVINO int8 recipes;
- ``backend`` (what a backend is, ``register_backend``) and ``batching`` (the ONNX and OpenVINO
  encoders' shared base, ``BatchingEncoder``);
- ``model_files``: the packaged weights and their sha256, local model folders, the build cache;
  ``build_id``: the id of a build, derived from what determines its vectors, which the model id
  ends with (``$CIVICPULSE_EMBED_BUILD`` pins one);
- ``store_vectors``: whether a store's last analysis embedded with the model in force
  (``model_change``), checked by ``civicpulse analyze`` before it embeds.

``civicpulse models build|verify`` builds and checks the backends' local models.
"""

from analyzer.embedding.backend import EmbeddingBackend, ModelFiles, register_backend
from analyzer.embedding.build_id import (
    BUILD_ENV,
    build_id_of,
    pinned_build,
    split_model_id,
)
from analyzer.embedding.embedder import (
    CHUNK_TEXTS,
    FROM_SETTINGS,
    Embedder,
    clear_shared_embedders,
    get_embedder,
)
from analyzer.embedding.model_files import (
    EMBED_DIM,
    PACKAGED_MODEL_ID,
    PACKAGED_MODEL_SHA256,
    packaged_model_path,
    resolve_model,
    source_sha256,
    verify_packaged_model,
)
from analyzer.embedding.registry import BACKENDS, backend_factory, backend_names
from analyzer.embedding.store_vectors import ModelChange, last_analysis_model, model_change

__all__ = [
    "BACKENDS",
    "BUILD_ENV",
    "CHUNK_TEXTS",
    "EMBED_DIM",
    "FROM_SETTINGS",
    "PACKAGED_MODEL_ID",
    "PACKAGED_MODEL_SHA256",
    "Embedder",
    "EmbeddingBackend",
    "ModelChange",
    "ModelFiles",
    "backend_factory",
    "backend_names",
    "build_id_of",
    "clear_shared_embedders",
    "get_embedder",
    "last_analysis_model",
    "model_change",
    "packaged_model_path",
    "pinned_build",
    "register_backend",
    "resolve_model",
    "source_sha256",
    "split_model_id",
    "verify_packaged_model",
]
