"""The ``civicpulse`` command line. Each command group lives in its own module and registers on ``app``.

Exit codes: 0 success, 2 bad input or usage (one line naming file, row and column), 1 anything else.
No traceback for a user's mistake; set CIVICPULSE_DEBUG=1 to see one for internal errors.
"""

from __future__ import annotations

import importlib
import os
import sys

import click
import typer
from typer.exceptions import TyperException

from analyzer.cli.common import StoreServedError, send_to_server
from analyzer.errors import InputError

app = typer.Typer(
    name="civicpulse",
    help="CivicPulse: what residents tell their city, read at scale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules; each registers its commands on ``app`` at import.
COMMAND_MODULES = ("ingest", "nlp", "tag", "serve", "models", "opinions", "outcomes")


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"analyzer.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"analyzer.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        # without standalone mode, click returns a command's typer.Exit(code) instead of raising it
        code = app(args=argv, standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return _exit(2)
    except StoreServedError as served:  # `civicpulse serve` holds the store: the command runs there
        try:
            return _exit(send_to_server(sys.argv[1:] if argv is None else list(argv), served))
        except InputError as exc:
            print(f"error: {exc.one_line()}", file=sys.stderr)
            return _exit(2)
    except (click.exceptions.Exit, typer.Exit) as exc:
        return _exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        print("aborted", file=sys.stderr)
        return _exit(1)
    except click.ClickException as exc:
        exc.show()
        return _exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except TyperException as exc:  # typer vendors click: its usage errors carry exit_code 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return _exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted; the store is unchanged for the step in progress", file=sys.stderr)
        return _exit(130)
    except Exception as exc:  # last line of defence: one line, exit 1
        if os.environ.get("CIVICPULSE_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return _exit(1)
    return _exit(code if isinstance(code, int) else 0)


def _exit(code: int | None) -> int:
    code = 0 if code is None else int(code)
    if __name__ != "__main__":
        sys.exit(code)
    return code
