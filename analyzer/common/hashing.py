"""Hashes with one meaning each: the text cache key and a file's sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path


def text_hash(text: str) -> str:
    """Stable 128-bit hash of a text (the embedding cache key and the records' ``text_hash``)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
