"""Model bundles: a folder with ``manifest.json`` plus weights in safe formats (NumPy ``.npy`` / JSON).

Never a pickle. The manifest records the sha256 of every file; a bundle whose files do not match is
refused with a clear error. Layout::

    models/NAME/
      manifest.json      kind, created_at, labels, metrics, training data hash, library versions,
                         embedding model id and sha256, files: {name: sha256}
      arrays/*.npy       numeric weights (allow_pickle=False on load)
      *.json             vocabularies, parameters
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.common.clock import utc_stamp
from analyzer.errors import ModelBundleError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions(*names: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names or ("numpy", "scikit-learn", "sentence-transformers", "torch", "spacy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def save_bundle(
    folder: str | Path,
    *,
    kind: str,
    arrays: dict[str, np.ndarray],
    documents: dict[str, Any],
    manifest: dict[str, Any],
) -> Path:
    """Write arrays (``arrays/NAME.npy``) and JSON documents (``NAME.json``), then the manifest."""
    folder = Path(folder)
    (folder / "arrays").mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; bundles hold numeric arrays only")
        path = folder / "arrays" / f"{name}.npy"
        np.save(path, arr, allow_pickle=False)
        files[f"arrays/{name}.npy"] = _sha256(path)
    for name, doc in documents.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
        files[f"{name}.json"] = _sha256(path)
    full = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created_at": utc_stamp(),
        "library_versions": library_versions(),
        **manifest,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(full, indent=2, default=str) + "\n", "utf-8")
    return folder


class Bundle:
    """A verified, loaded bundle: ``manifest``, ``arrays`` (dict of np.ndarray), ``documents``."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.arrays: dict[str, np.ndarray] = {}
        self.documents: dict[str, Any] = {}

    def array(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def document(self, name: str) -> Any:
        return self.documents[name]


def load_bundle(folder: str | Path, *, kind: str | None = None) -> Bundle:
    """Load and verify a bundle; raise ModelBundleError naming the first problem found."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise ModelBundleError(f"not a model bundle: {MANIFEST} is missing", file=str(folder))
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelBundleError(f"unreadable manifest: {exc}", file=str(mpath)) from None
    if kind is not None and manifest.get("kind") != kind:
        raise ModelBundleError(
            f"bundle kind is {manifest.get('kind')!r}, expected {kind!r}", file=str(folder)
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelBundleError("manifest lists no files", file=str(mpath))
    bundle = Bundle(folder, manifest)
    for rel, digest in files.items():
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents:
            raise ModelBundleError(
                f"manifest names a file outside the bundle: {rel}", file=str(mpath)
            )
        if not path.is_file():
            raise ModelBundleError(
                f"file {rel} listed in the manifest is missing", file=str(folder)
            )
        if _sha256(path) != digest:
            raise ModelBundleError(
                f"file {rel} does not match its sha256 in the manifest (modified or corrupted)",
                file=str(folder),
            )
        if rel.startswith("arrays/") and rel.endswith(".npy"):
            bundle.arrays[Path(rel).stem] = np.load(path, allow_pickle=False)
        elif rel.endswith(".json"):
            bundle.documents[Path(rel).stem] = json.loads(path.read_text("utf-8"))
    return bundle
