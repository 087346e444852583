"""The embedding backends by name.

Importing this module imports the built-in backends, each of which registers itself with
``@register_backend(name)`` (``analyzer.embedding.backend``): "torch" (sentence-transformers),
"onnx" (ONNX Runtime), "openvino", "openvino-int8" and "openvino-int8-static" (OpenVINO). Their
runtimes (torch, onnxruntime, openvino) load only when a backend builds or encodes.
"""

from __future__ import annotations

from collections.abc import Callable

from analyzer.embedding.backend import EmbeddingBackend, registered_factory, registered_names

# Importing a backend's module registers it (``@register_backend``).
from analyzer.embedding.onnx_backend import OnnxBackend
from analyzer.embedding.openvino_backend import (
    OpenVinoBackend,
    OpenVinoInt8Backend,
    OpenVinoInt8StaticBackend,
)
from analyzer.embedding.torch_backend import TorchBackend

BUILTIN_BACKENDS: tuple[type[EmbeddingBackend], ...] = (
    TorchBackend,
    OpenVinoBackend,
    OpenVinoInt8Backend,
    OpenVinoInt8StaticBackend,
    OnnxBackend,
)
# The built-in backends' names.
BACKENDS: tuple[str, ...] = tuple(backend.name for backend in BUILTIN_BACKENDS)


def backend_names() -> tuple[str, ...]:
    """Every backend registered so far: the built-in ones, then any registered since."""
    return (*BACKENDS, *(name for name in registered_names() if name not in BACKENDS))


def backend_factory(name: str) -> Callable[[], EmbeddingBackend]:
    """What makes the backend registered as ``name``; ValueError for an unknown name."""
    factory = registered_factory(name)
    if factory is None:
        raise ValueError(f"unknown embedding backend {name!r} ({', '.join(backend_names())})")
    return factory
