"""Sentence embeddings: the packaged all-MiniLM-L6-v2 (or a local model) run by a named backend.

Layers, each importing only those below it:

- ``embedder``: ``Embedder`` and ``get_embedder`` (the shared one; defaults from the settings);
- ``registry``: the backends by name (``backend_factory``, ``BACKENDS``);
- ``torch_backend``, ``onnx_backend``, ``openvino_backend``: the backends, each registered with
  ``@register_backend(name)``; ``quantize``: the OpenVINO int8 recipes;
- ``backend`` (what a backend is, ``register_backend``) and ``batching`` (the ONNX and OpenVINO
  encoders' shared base, ``BatchingEncoder``);
- ``model_files``: the packaged weights and their sha256, local model folders, the build cache.

``civicpulse models build|verify`` builds and checks the backends' local models.
"""

from analyzer.embedding.backend import EmbeddingBackend, ModelFiles, register_backend
from analyzer.embedding.embedder import CHUNK_TEXTS, FROM_SETTINGS, Embedder, get_embedder
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

__all__ = [
    "BACKENDS",
    "CHUNK_TEXTS",
    "EMBED_DIM",
    "FROM_SETTINGS",
    "PACKAGED_MODEL_ID",
    "PACKAGED_MODEL_SHA256",
    "Embedder",
    "EmbeddingBackend",
    "ModelFiles",
    "backend_factory",
    "backend_names",
    "get_embedder",
    "packaged_model_path",
    "register_backend",
    "resolve_model",
    "source_sha256",
    "verify_packaged_model",
]
