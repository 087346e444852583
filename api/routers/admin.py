"""Commands for this machine's administrator (#22, one writer, many hands).

DuckDB lets one process write a store, and while ``civicpulse serve`` runs that process is the
API. A ``civicpulse`` command started beside it (``ingest``, ``analyze``, ``status``, ``export``,
``themes``, ``rejects``, ``emerging``, ``outcomes``, ``apikey``, ``opinions``, ``forget``) sends its command line
here with the local administrator key that ``serve`` keeps beside the store; this route runs the
very same command (``analyzer.cli.main``) in this process against the store it holds, and answers
with what the command printed and its exit code. Nothing of the commands is re-implemented here.

Only callers on this machine (a loopback address) are served: the command line names files by
their paths on this machine, and the files are read and written by this process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints

from analyzer.cli import main
from analyzer.cli.common import SERVED_COMMANDS, serving
from api.deps import AdminDep, StateDep
from api.schemas import ErrorOut, Strict

router = APIRouter(prefix="/v1/admin", tags=["admin"])

LOOPBACK = ("127.0.0.1", "::1", "localhost")

Arg = Annotated[str, StringConstraints(max_length=4096)]


class CommandIn(Strict):
    argv: list[Arg] = Field(
        min_length=1,
        max_length=200,
        description=f"a civicpulse command line, without 'civicpulse'; its first word one of "
        f"{', '.join(SERVED_COMMANDS)}",
    )


class CommandOut(BaseModel):
    exit_code: int = Field(description="0 success, 2 bad input or usage, 1 anything else")
    stdout: str
    stderr: str


@router.post(
    "/commands",
    response_model=CommandOut,
    responses={
        403: {
            "model": ErrorOut,
            "description": "not an admin key, or not a caller on this machine",
        },
        422: {"model": ErrorOut, "description": "not a command the API runs"},
    },
)
def run_command(body: CommandIn, request: Request, state: StateDep, _admin: AdminDep) -> CommandOut:
    """Run a ``civicpulse`` command against the store this server holds (admin key, callers on
    this machine only); the answer is what the command printed and its exit code."""
    client = request.client.host if request.client else ""
    if client not in LOOPBACK:
        raise HTTPException(403, "commands are run only for callers on this machine")
    if body.argv[0] not in SERVED_COMMANDS:
        raise HTTPException(
            422, f"not a command the API runs; one of: {', '.join(SERVED_COMMANDS)}"
        )
    if body.argv[0] == "analyze" and state.analysis.busy():
        raise HTTPException(409, "an analysis started through POST /v1/analyze is still running")
    with serving(state.store) as (out, err):
        try:
            code: object = main(list(body.argv))
        except SystemExit as exc:
            code = exc.code
    exit_code = code if isinstance(code, int) else (0 if code is None else 1)
    return CommandOut(exit_code=exit_code, stdout=out.getvalue(), stderr=err.getvalue())
