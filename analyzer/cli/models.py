"""``civicpulse models build|verify``: the embedding backends' local models.

``build`` converts the packaged (or a local) model for a backend, once: the result is cached under
``$CIVICPULSE_CACHE`` and hash-checked on every later use. ``verify`` checks the source weights and
the built files against their sha256 and prints them, building nothing. Both print each build's id
(``analyzer.embedding.build_id``) and the model id the store caches its vectors by; ``verify``
fails for the backend in force when ``$CIVICPULSE_EMBED_BUILD`` pins another build.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from analyzer.cli import app
from analyzer.cli.common import settings
from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.embedding.backend import EmbeddingBackend, ModelFiles

models_app = typer.Typer(
    help="The embedding models: build the backends' local models, verify their sha256.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="torch, onnx, openvino, openvino-int8, openvino-int8-static, or all "
        "(default: the configured embed_backend)",
    ),
]
QuantOpt = Annotated[
    str | None,
    typer.Option(
        "--quant", help="onnx only: fp32, int8 or all (default $CIVICPULSE_ONNX_QUANT, else int8)"
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="a local sentence-transformers folder (default: the configured embed_model, "
        "else the packaged all-MiniLM-L6-v2)",
    ),
]


def _plan(backend: str | None, quant: str | None) -> list[tuple[str, str | None]]:
    """(backend, variant) pairs to build or verify; InputError for a user's mistake."""
    from analyzer.embedding.registry import backend_factory, backend_names

    names = backend_names()
    chosen = backend or settings().embed_backend
    if chosen != "all" and chosen not in names:
        raise InputError(f"unknown backend {chosen!r}; one of {', '.join(names)} or all")
    if quant is not None and chosen not in ("onnx", "all"):
        raise InputError(f"--quant applies to the onnx backend only, not {chosen}")
    plan: list[tuple[str, str | None]] = []
    for name in names if chosen == "all" else (chosen,):
        try:
            variants = backend_factory(name)().variants(quant if name == "onnx" else None)
        except ValueError as exc:  # an unknown --quant, or $CIVICPULSE_ONNX_QUANT
            raise InputError(str(exc)) from None
        plan += [(name, variant) for variant in variants]
    return plan


def _source(model: Path | None) -> tuple[Path, str]:
    """The model folder and its base model id (the packaged weights checked against the pin)."""
    from analyzer.embedding.model_files import resolve_model, source_sha256, source_weights

    folder, base_id, _ = resolve_model(model or settings().embed_model or None)
    digest = source_sha256(folder)
    typer.echo(f"source: {source_weights(folder)} sha256 {digest}")
    return folder, base_id


def _echo_files(files: ModelFiles, backend: EmbeddingBackend, base_id: str) -> None:
    for file, digest in files.sha256.items():
        typer.echo(f"  {file} sha256 {digest}")
    if files.build_id:
        typer.echo(f"  build id {files.build_id}")
        typer.echo(f"  model id {backend.model_id(base_id, files.build_id)}")


def _not_pinned(name: str, files: ModelFiles) -> bool:
    """Whether ``$CIVICPULSE_EMBED_BUILD`` pins another build for the backend in force (said)."""
    from analyzer.embedding.build_id import BUILD_ENV, pinned_build

    pin = pinned_build()
    if pin is None or name != settings().embed_backend or files.build_id == pin:
        return False
    typer.echo(f"  not the build {BUILD_ENV} pins ({pin})")
    return True


def _fail(names: list[str]) -> None:
    from analyzer.embedding.build_id import pinned_build

    names = list(dict.fromkeys(names))
    again = f" --backend {names[0]}" if len(names) == 1 else ""
    fix = (
        "copy the pinned build's folder from the machine that built it"
        if pinned_build()
        else f"run `civicpulse models build{again}`"
    )
    typer.echo(f"error: {', '.join(names)} not verified; {fix}", err=True)
    raise typer.Exit(1)


@models_app.command("build")
def build(
    backend: BackendOpt = None,
    quant: QuantOpt = None,
    model: ModelOpt = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even if verified")] = False,
) -> None:
    """Build (or verify and reuse) the local model a backend runs from."""
    from analyzer.embedding.registry import backend_factory

    plan = _plan(backend, quant)
    # The build's own lines ("building ... in ..."), not the quantiser's tables at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("analyzer.embedding").setLevel(logging.INFO)
    folder, base_id = _source(model)
    failed = []
    for name, variant in plan:
        started = time.perf_counter()
        chosen = backend_factory(name)()
        files = chosen.build(folder, variant=variant, force=force)
        done = "built" if files.rebuilt else "verified"
        seconds = time.perf_counter() - started
        typer.echo(f"{files.label}: {done} {files.folder} ({seconds:.1f} s)")
        _echo_files(files, chosen, base_id)
        if _not_pinned(name, files):
            failed.append(name)
    if failed:
        _fail(failed)


@models_app.command("verify")
def verify(backend: BackendOpt = None, quant: QuantOpt = None, model: ModelOpt = None) -> None:
    """Check the source weights and the built files against their sha256 (exit 1: not built)."""
    from analyzer.embedding.registry import backend_factory

    plan = _plan(backend, quant)
    folder, base_id = _source(model)
    failed = []
    for name, variant in plan:
        chosen = backend_factory(name)()
        files = chosen.verify(folder, variant=variant)
        typer.echo(f"{files.label}: {files.folder}: {files.problem or 'ok'}")
        _echo_files(files, chosen, base_id)
        if files.problem or _not_pinned(name, files):
            failed.append(name)
    if failed:
        _fail(failed)
