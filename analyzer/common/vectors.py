"""Vectors: L2-normalisation and the float16 codec used for stored embeddings and centroids."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def normalise_rows(mat: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32; an all-zero row stays zero."""
    mat = np.asarray(mat, dtype=np.float32)
    if mat.ndim == 1:
        norm = float(np.linalg.norm(mat))
        return mat / norm if norm > 0 else mat
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms == 0, 1.0, norms)


def encode_vector(vec: np.ndarray) -> bytes:
    """Float16 bytes of a 1-D vector (compact storage for embeddings and centroids)."""
    return np.asarray(vec, dtype=np.float16).tobytes()


def decode_vectors(blobs: Iterable[bytes], dim: int | None = None) -> np.ndarray:
    """Stack float16 blobs into a float32 matrix."""
    blobs = list(blobs)
    if not blobs:
        return np.zeros((0, dim or 0), dtype=np.float32)
    buf = b"".join(bytes(b) for b in blobs)
    arr = np.frombuffer(buf, dtype=np.float16).astype(np.float32)
    return arr.reshape(len(blobs), -1)
