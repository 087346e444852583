"""The reference embedding backend: sentence-transformers' own ``encode``, float32, on torch.

Nothing to build: it loads the local weights (the packaged ones verified against their pinned
sha256 first). Its vectors are what the other backends are measured against, and its model id is
the model's own, with no backend suffix and no build id: the weights' sha256, already in the id,
is all its build id is derived from.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from analyzer.embedding.backend import EmbeddingBackend, Encoder, ModelFiles, register_backend
from analyzer.embedding.model_files import source_sha256, source_weights


@lru_cache(maxsize=4)
def torch_encoder(path: str, device: str, batch_size: int) -> Encoder:
    """sentence-transformers' ``encode`` of the model in ``path`` (L2-normalised, float32)."""
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


@register_backend("torch")
class TorchBackend(EmbeddingBackend):
    def model_family(self, base_id: str) -> str:
        return base_id

    def model_id(self, base_id: str, build_id: str) -> str:
        return base_id

    def encoder(self, model_path: Path, *, batch_size: int, device: str) -> Encoder:
        return torch_encoder(str(model_path), device, batch_size)

    def build(
        self, model_path: Path, *, variant: str | None = None, force: bool = False
    ) -> ModelFiles:
        return self.verify(model_path, variant=variant)

    def verify(self, model_path: Path, *, variant: str | None = None) -> ModelFiles:
        self.variants(variant)
        weights = source_weights(model_path)
        digest = source_sha256(model_path)
        facts = {"backend": "torch", "source_sha256": digest}
        return ModelFiles.of_build("torch", weights.parent, facts, {weights.name: digest})
