"""Helpers shared by the CLI command modules: settings, the store, CSV in / CSV out.

One writer, many hands (#22): DuckDB lets one process write a store. While ``civicpulse serve``
holds it, ``serve`` keeps an owner file beside it (``<store>.serve.json``: PID, URL, start) and an
administrator key readable only by this machine's user (``<store>.admin_key``, mode 0600).
``open_store`` then raises :class:`StoreServedError`; the CLI's ``main`` sends the command line to the
API (``POST /v1/admin/commands``, loopback only), which runs the very same command in its own
process against the store it holds (``run_in_server``) and answers with its output and exit code.
Without a running API, commands open the store directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from rich.console import Console

from analyzer.common.private_files import write_private
from analyzer.config import Settings, load_settings
from analyzer.errors import InputError
from analyzer.store.database import Store

# Status and error lines on stderr, as plain text: never wrapped or cropped at the terminal's width
# (a line is one line however narrow the terminal or however long a path in it), and never read
# as Rich markup (a path or a theme label may hold square brackets).
console = Console(stderr=True, soft_wrap=True, markup=False)


def settings(store: Path | None = None) -> Settings:
    s = load_settings()
    return s.with_overrides(store_path=store) if store else s


def open_store(store: Path | None = None, *, read_only: bool = False) -> Store:
    """The store, opened for this command. Inside ``civicpulse serve`` (a command sent to the
    API) it is a connection of the server's own store; while a live ``serve`` holds the store
    elsewhere on this machine it raises :class:`StoreServedError` (``main`` sends the command there)."""
    served = _SERVED.get()
    if served is not None:
        return BorrowedStore(served)
    path = settings(store).store_path
    owner = server_owner(path)
    if owner is not None:
        raise StoreServedError(owner, path)
    if read_only and not Path(path).exists():
        raise InputError("no store yet; run `civicpulse ingest FILE` first", file=str(path))
    return Store(path, read_only=read_only)


# -- one writer, many hands ------------------------------------------------------------------

# Commands the API runs for an administrator (``POST /v1/admin/commands``): the ones that use the
# store. ``serve``, ``ui`` and the stateless commands never need to go through the API.
SERVED_COMMANDS = (
    "ingest",
    "analyze",
    "status",
    "export",
    "themes",
    "rejects",
    "emerging",
    "outcomes",
    "apikey",
    "opinions",
    "forget",
)
# Options whose value is a path: made absolute before the command line is sent (the server's
# working directory is not the caller's).
PATH_OPTIONS = ("--output", "-o", "--out", "--store")
ADMIN_KEY_NAME = "cli administrator"


def owner_file(store_path: Path) -> Path:
    """Where ``civicpulse serve`` says that it holds the store at ``store_path``."""
    store_path = Path(store_path).expanduser().resolve()
    return store_path.with_name(store_path.name + ".serve.json")


def admin_key_file(store_path: Path) -> Path:
    """The local administrator key of the store at ``store_path`` (owner-only, made by serve)."""
    store_path = Path(store_path).expanduser().resolve()
    return store_path.with_name(store_path.name + ".admin_key")


@dataclass(frozen=True)
class ServerOwner:
    """A running ``civicpulse serve`` that holds a store."""

    pid: int
    url: str
    started: str
    store: str
    host: str = ""
    process_start: str = ""

    def describe(self) -> str:
        return f"`civicpulse serve` (PID {self.pid}, {self.url}, since {self.started})"


class StoreServedError(Exception):
    """The store is held by a live ``civicpulse serve`` on this machine: send the command there."""

    def __init__(self, owner: ServerOwner, store_path: Path) -> None:
        super().__init__(f"the store is held by {owner.describe()}")
        self.owner = owner
        self.store_path = Path(store_path)


def claim_store(store_path: Path, url: str) -> Path:
    """Say that this process (``serve``) holds the store: write the owner file; returns it."""
    from analyzer.store.runs import process_start

    pid = os.getpid()
    record = {
        "pid": pid,
        "url": url,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "store": str(Path(store_path).expanduser().resolve()),
        "host": socket.gethostname(),
        "process_start": process_start(pid),
    }
    path = owner_file(store_path)
    write_private(path, json.dumps(record) + "\n")
    return path


def release_store(store_path: Path) -> None:
    """Remove the owner file if it is this process's (``serve`` stopping)."""
    path = owner_file(store_path)
    with contextlib.suppress(OSError, ValueError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == os.getpid():
            path.unlink()


def server_owner(store_path: Path) -> ServerOwner | None:
    """The live ``civicpulse serve`` on this host that holds ``store_path``, if any (an owner
    file left by a killed server names a dead process and is ignored)."""
    from analyzer.store.runs import process_alive

    path = owner_file(store_path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        owner = ServerOwner(
            pid=int(raw["pid"]),
            url=str(raw["url"]),
            started=str(raw.get("started", "")),
            store=str(raw.get("store", "")),
            host=str(raw.get("host", "")),
            process_start=str(raw.get("process_start", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owner.host and owner.host != socket.gethostname():
        return None  # another machine's server (a shared folder): its PID means nothing here
    if owner.pid == os.getpid() or not process_alive(owner.pid, owner.process_start):
        return None
    return owner


def absolute_argv(argv: list[str], cwd: Path | None = None) -> list[str]:
    """``argv`` with the paths in it made absolute: existing files named as arguments and the
    values of ``PATH_OPTIONS``."""
    cwd = Path.cwd() if cwd is None else cwd
    out: list[str] = []
    after_path_option = False
    for arg in argv:
        if after_path_option:
            out.append(str((cwd / arg).resolve()))
            after_path_option = False
        elif arg in PATH_OPTIONS:
            out.append(arg)
            after_path_option = True
        elif arg.startswith("--") and "=" in arg and arg.split("=", 1)[0] in PATH_OPTIONS:
            name, value = arg.split("=", 1)
            out.append(f"{name}={(cwd / value).resolve()}")
        elif not arg.startswith("-") and (cwd / arg).exists():
            out.append(str((cwd / arg).resolve()))
        else:
            out.append(arg)
    return out


def send_to_server(argv: list[str], served: StoreServedError) -> int:
    """Run ``argv`` in the ``civicpulse serve`` that holds the store; print what it printed and
    return its exit code. Failing that, one :class:`InputError` line saying what holds the store
    and what to do. The server is on this machine (its owner file is beside the store, its URL is
    a loopback address): paths in ``argv`` are sent as paths, and the server reads the files."""
    owner, store_path = served.owner, served.store_path
    where = str(store_path)
    if not argv or argv[0] not in SERVED_COMMANDS:
        raise InputError(
            f"the store is held by {owner.describe()}; `civicpulse {' '.join(argv[:1])}` does not "
            "run through the API: stop the server or use another store with --store",
            file=where,
        )
    key_path = admin_key_file(store_path)
    try:
        key = key_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(
            f"the store is held by {owner.describe()}, and its administrator key "
            f"{key_path} cannot be read ({exc.strerror}); run the command as the user who "
            "started the server, or stop it",
            file=where,
        ) from None
    body = json.dumps({"argv": absolute_argv(argv)}).encode("utf-8")
    request = urllib.request.Request(
        owner.url.rstrip("/") + "/v1/admin/commands",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        # an analysis can take long; the server answers when the command is done
        with urllib.request.urlopen(request, timeout=24 * 3600) as answer:
            result = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = _detail(exc)
        raise InputError(
            f"`civicpulse serve` (PID {owner.pid}) refused the command: HTTP {exc.code} {detail}",
            file=where,
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(
            f"the store is held by {owner.describe()}, whose API does not answer ({reason}); "
            f"wait until it is up, or stop it (kill {owner.pid}) to use the store directly",
            file=where,
        ) from None
    sys.stderr.write(str(result.get("stderr", "")))
    sys.stdout.write(str(result.get("stdout", "")))
    sys.stdout.flush()
    return int(result.get("exit_code", 1))


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        detail: Any = json.loads(exc.read()).get("detail", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return detail if isinstance(detail, str) else json.dumps(detail)[:200]


class BorrowedStore(Store):
    """A connection of the server's store for one command run inside the server: its own
    DuckDB connection to the same database (safe beside the server's other threads), closed
    when the command is done while the server's store stays open."""

    def __init__(self, parent: Store) -> None:  # no super().__init__(): nothing is opened anew
        self.path = parent.path
        self.read_only = False
        self.con = parent.con.cursor()
        self.con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.RLock()
        self.interrupted_runs: list[str] = []


_SERVED: contextvars.ContextVar[Store | None] = contextvars.ContextVar("served", default=None)
_OUTPUT: contextvars.ContextVar[tuple[io.StringIO, io.StringIO] | None] = contextvars.ContextVar(
    "output", default=None
)
_RUN_LOCK = threading.Lock()  # one command at a time, as one terminal would run them


class _Switch(io.TextIOBase):
    """sys.stdout / sys.stderr that write to the command's buffer in a thread running a sent
    command (a context variable), and to the real stream everywhere else."""

    def __init__(self, real: TextIO, index: int) -> None:
        self.real = real
        self.index = index

    def _target(self) -> TextIO:
        buffers = _OUTPUT.get()
        return self.real if buffers is None else buffers[self.index]

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False if _OUTPUT.get() is not None else self.real.isatty()

    def fileno(self) -> int:
        if _OUTPUT.get() is not None:
            raise io.UnsupportedOperation("fileno")
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8" if _OUTPUT.get() is not None else self.real.encoding


def _install_switches() -> None:
    if not isinstance(sys.stdout, _Switch):
        sys.stdout = _Switch(sys.stdout, 0)
    if not isinstance(sys.stderr, _Switch):
        sys.stderr = _Switch(sys.stderr, 1)


@contextlib.contextmanager
def serving(store: Store) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Run a sent ``civicpulse`` command inside the server (``POST /v1/admin/commands``): within
    the block, ``open_store`` gives a connection of ``store`` (the server's) and what the command
    prints to stdout / stderr goes to the two buffers yielded, exactly as a terminal would get it.
    One command at a time, as one terminal would run them."""
    out, err = io.StringIO(), io.StringIO()
    with _RUN_LOCK:
        _install_switches()
        served = _SERVED.set(store)
        output = _OUTPUT.set((out, err))
        try:
            yield out, err
        finally:
            _OUTPUT.reset(output)
            _SERVED.reset(served)


def read_input_table(path: Path, text_col: str) -> pd.DataFrame:
    """Read a CSV for the stateless commands (cluster, embed, sentiment, tag predict).

    Every column is kept as a string so the output reproduces the input; the text column must exist.
    """
    from analyzer.ingest import read_table

    df = read_table(path)
    resolve_column(df, text_col, path)
    return df


def resolve_column(df: pd.DataFrame, name: str, path: Path | str | None = None) -> str:
    """The column ``name`` names, compared as ``ingest`` does ("Description", "description" and
    "DESCRIPTION" are one column); an :class:`InputError` listing the columns when none is."""
    from analyzer.ingest.profiles import find_column

    found = find_column([str(c) for c in df.columns], [name])
    if found is None:
        cols = ", ".join(map(str, df.columns)) or "(none)"
        raise InputError(
            f"no column {name!r}; columns found: {cols}", file=str(path) if path else None
        )
    return found


def texts_of(df: pd.DataFrame, text_col: str) -> list[str]:
    return df[resolve_column(df, text_col)].fillna("").astype(str).tolist()


def write_output_table(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
