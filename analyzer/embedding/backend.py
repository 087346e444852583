"""What an embedding backend is, and how one registers under a name.

A backend turns the local model folder into an encoder (``list[str] -> (n, dim) float32``), names
the vectors it gives (its part of the model id: the store caches vectors per model id), and builds
and verifies whatever it runs from (``civicpulse models build|verify``), each build with a build id
(``analyzer.embedding.build_id``) that the model id ends with. Each registers itself by
name with ``@register_backend(name)``, as spaCy components do; ``analyzer.embedding.registry``
imports the built-in ones and looks a name up (``backend_factory``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from analyzer.embedding.build_id import build_facts, build_id_of, model_id_with_build

Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ModelFiles:
    """What a backend runs from, as ``civicpulse models build|verify`` report it.

    ``sha256`` maps each file name in ``folder`` to its (verified) sha256; ``problem`` says why
    the files cannot be used (None: they verify); ``build_id`` names the build they are (None
    when they do not verify); ``facts`` are what the build id is derived from.
    """

    label: str
    folder: Path
    sha256: dict[str, str] = field(default_factory=dict)
    rebuilt: bool = False
    problem: str | None = None
    build_id: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_build(
        cls,
        label: str,
        folder: Path,
        manifest: dict[str, Any],
        sha256: dict[str, str],
        *,
        rebuilt: bool = False,
    ) -> ModelFiles:
        """The verified files of a build with this ``manifest``, and its build id."""
        return cls(
            label,
            folder,
            dict(sha256),
            rebuilt,
            None,
            build_id_of(manifest),
            build_facts(manifest),
        )


class EmbeddingBackend:
    """One way of running the model: a subclass per registered name."""

    name: ClassVar[str] = ""

    def model_family(self, base_id: str) -> str:
        """The id of this backend's vectors of the model ``base_id``, whichever build."""
        return f"{base_id}+{self.name}{self.id_suffix()}"

    def model_id(self, base_id: str, build_id: str) -> str:
        """The id of the vectors of build ``build_id``: what the store caches them by."""
        return model_id_with_build(self.model_family(base_id), build_id)

    def id_suffix(self) -> str:
        """What else makes this backend's vectors differ (a quantisation mode, a precision)."""
        return ""

    def encoder(self, model_path: Path, *, batch_size: int, device: str) -> Encoder:
        """An encoder of the model in ``model_path`` (built first if needed)."""
        raise NotImplementedError

    def variants(self, requested: str | None = None) -> list[str | None]:
        """The variants ``build`` and ``verify`` take: ``requested`` ("all", a name, or None for
        the one in force) checked; a backend without variants has one, None."""
        if requested is not None:
            raise ValueError(f"the {self.name} backend has no variant {requested!r}")
        return [None]

    def build(
        self, model_path: Path, *, variant: str | None = None, force: bool = False
    ) -> ModelFiles:
        """Build (or verify and reuse) the files this backend runs from, with their build id.

        ``encoder`` on the same instance then runs exactly these files."""
        raise NotImplementedError

    def verify(self, model_path: Path, *, variant: str | None = None) -> ModelFiles:
        """Check the files this backend runs from, building nothing."""
        raise NotImplementedError


_FACTORIES: dict[str, Callable[[], EmbeddingBackend]] = {}

B = TypeVar("B", bound=type[EmbeddingBackend])


def register_backend(name: str) -> Callable[[B], B]:
    """Class decorator: register an ``EmbeddingBackend`` subclass under ``name``."""

    def register(cls: B) -> B:
        existing = _FACTORIES.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"embedding backend {name!r} is already registered ({existing})")
        cls.name = name
        _FACTORIES[name] = cls
        return cls

    return register


def registered_factory(name: str) -> Callable[[], EmbeddingBackend] | None:
    """The factory registered under ``name``, if any."""
    return _FACTORIES.get(name)


def registered_names() -> tuple[str, ...]:
    """Every registered backend name, in registration order."""
    return tuple(_FACTORIES)
