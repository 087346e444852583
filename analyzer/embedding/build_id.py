"""Build ids: which weights made a vector.

A locally built model (the ONNX and OpenVINO backends convert and quantise the source weights
here) is named by the source weights alone only until it is rebuilt: new calibration texts, another
NNCF or OpenVINO, another recipe give other weights under the same name. Its *build id* is derived
from what determines its vectors, as its manifest records them at build time: the source weights'
sha256, the built files' sha256, the recipe (with its calibration texts' sha256) and the converter
versions. Everything else in the manifest (where the source lay on disk, when and how fast it was
built) is left out (``VOLATILE_KEYS``), so the same build has the same id on every machine it is
copied to.

The id is folded into the model id the store caches vectors by (``model_id_with_build``): vectors
of two builds never share a cache key, and a store written before build ids existed has none of
the new keys, so its vectors are re-embedded rather than trusted.

``$CIVICPULSE_EMBED_BUILD`` pins one build: with it set, a process embeds only with that build and
never builds one of its own (``check_pinned``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from analyzer.errors import ModelBundleError

BUILD_ENV = "CIVICPULSE_EMBED_BUILD"
# Hex digits of a build id: 64 bits, short enough to read out and pin.
BUILD_ID_CHARS = 16
# Between a model id and its build id: ``…+openvino-int8-static-bf16#0123456789abcdef``.
BUILD_SEPARATOR = "#"
# What a build manifest says that does not determine the vectors.
VOLATILE_KEYS = frozenset({"source", "build_seconds", "built_at", "build_id"})


def build_facts(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a build manifest that determine the vectors (``VOLATILE_KEYS`` left out)."""
    return {key: value for key, value in manifest.items() if key not in VOLATILE_KEYS}


def build_id_of(facts: Mapping[str, Any]) -> str:
    """The build id of these facts: the first ``BUILD_ID_CHARS`` hex digits of the sha256 of their
    canonical JSON (keys sorted), so the same facts give the same id anywhere."""
    text = json.dumps(build_facts(facts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:BUILD_ID_CHARS]


def recorded_build_problem(manifest: Mapping[str, Any]) -> str | None:
    """Why a manifest's recorded ``build_id`` cannot be trusted (its facts were edited), or None.

    Manifests written before build ids existed record none: their id is derived the same way."""
    recorded = manifest.get("build_id")
    if recorded is None or recorded == build_id_of(manifest):
        return None
    return f"manifest build_id {recorded} does not match its contents ({build_id_of(manifest)})"


def model_id_with_build(family: str, build_id: str) -> str:
    """The model id vectors are cached by: the model family (model, backend, precision) and the
    build."""
    return f"{family}{BUILD_SEPARATOR}{build_id}"


def split_model_id(model_id: str) -> tuple[str, str | None]:
    """(family, build id or None) of a model id; None for an id from before build ids (or of the
    torch backend, whose id is its weights')."""
    family, sep, build = model_id.partition(BUILD_SEPARATOR)
    return family, (build if sep else None)


def pinned_build() -> str | None:
    """The build ``$CIVICPULSE_EMBED_BUILD`` pins, if any (lower-case hex)."""
    value = os.environ.get(BUILD_ENV, "").strip().lower()
    return value or None


def check_pinned(build_id: str | None, *, label: str, folder: object, problem: str | None) -> None:
    """Refuse (ModelBundleError, one line) a model that is not the pinned build.

    ``problem`` is why the files in ``folder`` do not verify (None: they do); under a pin nothing is
    built here, as a new build would almost never reproduce the pinned files.
    """
    pin = pinned_build()
    if pin is None or (problem is None and build_id == pin):
        return
    found = f"{problem}" if problem else f"build {build_id}"
    raise ModelBundleError(
        f"{BUILD_ENV} pins embedding build {pin}, but the {label} model in {folder} is {found}; "
        f"copy the pinned build's folder from the machine that built it (`civicpulse models "
        f"verify` there prints it) or unset {BUILD_ENV}"
    )
