"""``civicpulse models build|verify``: the embedding backends' local models.

``build`` converts the packaged (or a local) model for a backend, once: the result is cached under
``$CIVICPULSE_CACHE`` and hash-checked on every later use. ``verify`` checks the source weights and
the built files against their sha256 and prints them, building nothing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from analyzer.cli import app
from analyzer.cli.common import settings
from analyzer.errors import InputError

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
    """The model folder and its weights' sha256 (the packaged ones checked against the pin)."""
    from analyzer.embedding.model_files import resolve_model, source_sha256, source_weights

    folder, _, _ = resolve_model(model or settings().embed_model or None)
    digest = source_sha256(folder)
    typer.echo(f"source: {source_weights(folder)} sha256 {digest}")
    return folder, digest


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
    folder, _ = _source(model)
    for name, variant in plan:
        started = time.perf_counter()
        files = backend_factory(name)().build(folder, variant=variant, force=force)
        done = "built" if files.rebuilt else "verified"
        seconds = time.perf_counter() - started
        typer.echo(f"{files.label}: {done} {files.folder} ({seconds:.1f} s)")
        for file, digest in files.sha256.items():
            typer.echo(f"  {file} sha256 {digest}")


@models_app.command("verify")
def verify(backend: BackendOpt = None, quant: QuantOpt = None, model: ModelOpt = None) -> None:
    """Check the source weights and the built files against their sha256 (exit 1: not built)."""
    from analyzer.embedding.registry import backend_factory

    plan = _plan(backend, quant)
    folder, _ = _source(model)
    failed = []
    for name, variant in plan:
        files = backend_factory(name)().verify(folder, variant=variant)
        typer.echo(f"{files.label}: {files.folder}: {files.problem or 'ok'}")
        for file, digest in files.sha256.items():
            typer.echo(f"  {file} sha256 {digest}")
        if files.problem:
            failed.append(name)
    if failed:
        names = list(dict.fromkeys(failed))
        again = f" --backend {names[0]}" if len(names) == 1 else ""
        typer.echo(
            f"error: {', '.join(names)} not verified; run `civicpulse models build{again}`",
            err=True,
        )
        raise typer.Exit(1)
