"""``civicpulse serve`` (the API, the store's one writer), ``civicpulse ui`` (the explorer) and
``civicpulse apikey create|list|revoke``.

The explorer reads record-level data through the API, which needs a key: ``serve`` makes one for
it on its first start against a store and keeps it in ``explorer_api_key`` beside the store
(owner-only; the store has only its hash), and ``ui`` points the explorer at that file.

One writer, many hands (#22): ``serve`` also keeps a local administrator key beside the store
(``<store>.admin_key``, owner-only) and an owner file (``<store>.serve.json``: PID, URL, start)
while it runs; a CLI command started beside it sends itself to the API with that key
(``analyzer.cli.common``), so ``ingest``, ``analyze``, ``status``, ``apikey revoke``... work while
the API serves.

Several API processes, on this machine or others (#22): ``serve --publish-every SECONDS`` also
publishes a read-only snapshot of the store and its live keys' hashes beside it
(``analyzer.store.replica``), and ``serve --replica-of STORE`` serves the same API from that
snapshot, read-only (``api.replica``): as many replicas as wanted, writes refused with 403 naming
the primary, a key revoked on the primary refused by each replica from its next request on.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from analyzer.cli import app
from analyzer.cli.common import (
    ADMIN_KEY_NAME,
    admin_key_file,
    claim_store,
    console,
    open_store,
    release_store,
    server_owner,
    settings,
)
from analyzer.common.private_files import write_private
from analyzer.config import Settings
from analyzer.errors import InputError
from analyzer.store.database import Store

StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="DuckDB store (default from settings)")
]

apikey_app = typer.Typer(
    help="API keys: shown once when made, stored only as a hash.", no_args_is_help=True
)
app.add_typer(apikey_app, name="apikey")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to bind (default from settings)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default from settings, 8000)")] = None,
    store: StoreOpt = None,
    publish_every: Annotated[
        float,
        typer.Option(
            "--publish-every",
            metavar="SECONDS",
            help="for read replicas: check this often whether the API wrote and, if it did, "
            "publish a read-only snapshot <store>.replica.duckdb (the live keys' hashes are kept "
            "in <store>.keys.json, rewritten on every key change); 0, the default: no replicas",
        ),
    ] = 0.0,
    replica_of: Annotated[
        Path | None,
        typer.Option(
            "--replica-of",
            metavar="STORE",
            help="serve as a read replica of STORE: the same API, read-only, from the newest "
            "snapshot its primary (`serve --publish-every`) publishes beside it; writes answer "
            "403 naming the primary. Run as many as you like, on other ports or machines",
        ),
    ] = None,
    primary_url: Annotated[
        str | None,
        typer.Option(
            "--primary-url",
            metavar="URL",
            help="with --replica-of: the primary's URL that refused writes name (default: the "
            "URL in <STORE>.serve.json)",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs). One process: it is the store's only writer; read
    replicas (--replica-of) serve the snapshots it publishes (--publish-every)."""
    import uvicorn

    from api import logs
    from api.app import create_app

    s = settings(store)
    s = s.with_overrides(api_host=host, api_port=port)
    if replica_of is not None:
        if store is not None or publish_every:
            raise InputError(
                "--replica-of serves a snapshot: it takes neither --store nor --publish-every",
                column="--replica-of",
            )
        _serve_replica(s, replica_of, primary_url)
        return
    if primary_url is not None:
        raise InputError("--primary-url goes with --replica-of", column="--primary-url")
    if publish_every < 0:
        raise InputError(
            "--publish-every must be 0 (off) or a number of seconds", column="--publish-every"
        )
    running = server_owner(s.store_path)
    if running is not None:
        raise InputError(
            f"the store is already served by {running.describe()}; stop it first, or serve "
            "another store with --store",
            file=str(s.store_path),
        )
    logs.configure()
    api = create_app(s, warm=True)
    # Hold the store from here on (the app's startup finds it open): a CLI job that holds it
    # makes this one line naming that process (StoreLockedError, exit 2), never a traceback.
    held = api.state.civicpulse.store
    key_file = explorer_key_file(s)
    made = provision_key(held, key_file, EXPLORER_KEY_NAME)
    admin_file = admin_key_file(s.store_path)
    provision_key(held, admin_file, ADMIN_KEY_NAME, scope="admin")
    url = f"http://{_loopback(s.api_host)}:{s.api_port}"
    claim_store(s.store_path, url)
    console.print(f"CivicPulse API on http://{s.api_host}:{s.api_port} (store {s.store_path})")
    if publish_every:
        from analyzer.store.replica import Publisher, write_key_file

        keys = write_key_file(held)
        api.state.civicpulse.publisher = Publisher(held, publish_every).start()
        console.print(
            f"read replicas: a snapshot {api.state.civicpulse.publisher.dest} is published now "
            f"and then within {publish_every:g} s of each write; live keys' hashes in {keys} "
            f"(`civicpulse serve --replica-of {s.store_path} --port N` serves it)"
        )
    console.print(
        f"the explorer's API key: {'written to' if made else 'kept in'} {key_file} "
        "(`civicpulse ui` reads it)"
    )
    console.print(
        f"CLI commands on this store now run through this API (administrator key {admin_file})"
    )
    try:
        uvicorn.run(
            _releasing(api, s.store_path),
            host=s.api_host,
            port=s.api_port,
            workers=1,  # DuckDB allows one writing process; more workers could not open the store
            access_log=False,  # our own request log has no query strings (they can hold search text)
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        release_store(s.store_path)


def _serve_replica(s: Settings, replica_of: Path, primary_url: str | None) -> None:
    """``serve --replica-of``: the API, read-only, from the primary's newest snapshot."""
    import uvicorn

    from analyzer.store.replica import key_file, snapshot_file
    from api import logs
    from api.app import create_app

    replica_of = replica_of.expanduser().resolve()
    snapshot, keys = snapshot_file(replica_of), key_file(replica_of)
    for needed, what in ((snapshot, "no snapshot to serve yet"), (keys, "no key file yet")):
        if not needed.is_file():
            raise InputError(
                f"{what}: start the primary with `civicpulse serve --store {replica_of} "
                "--publish-every SECONDS` (it publishes both at once), or copy its "
                f"{snapshot.name} and {keys.name} here",
                file=str(needed),
            )
    logs.configure()
    api = create_app(s, warm=True, replica_of=replica_of, primary_url=primary_url)
    state = api.state.civicpulse
    held = state.store  # opened now: a snapshot that cannot be opened is one line, exit 2
    records = held.scalar("SELECT count(*) FROM records")
    console.print(
        f"CivicPulse read replica on http://{s.api_host}:{s.api_port}: {records} records from "
        f"{snapshot} (reopened when a newer one is published), keys from {keys}; writes answer "
        f"403: {state.refusal()}"
    )
    uvicorn.run(
        api,
        host=s.api_host,
        port=s.api_port,
        workers=1,  # more replica processes on other ports (or machines) for more readers
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def _releasing(api: Any, store_path: Path) -> Any:
    """``api`` that removes the owner file once it has shut down: uvicorn re-raises SIGTERM after
    a graceful shutdown, so code after ``uvicorn.run`` may never run."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await api(scope, receive, send)
            return

        async def send_releasing(message: dict) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                release_store(store_path)
            await send(message)

        await api(scope, receive, send_releasing)

    return app


def _loopback(host: str) -> str:
    """The address a CLI on this machine reaches a server bound to ``host`` at."""
    if host in ("", "0.0.0.0", "::", "[::]", "localhost"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


EXPLORER_KEY_NAME = "explorer"


def explorer_key_file(s: Settings) -> Path:
    """Where the explorer's API key is kept: ``$CIVICPULSE_API_KEY_FILE``, else
    ``explorer_api_key`` beside the store (``make run``'s ``var/explorer_api_key``), absolute so
    the explorer finds it whatever its working directory."""
    named = os.environ.get("CIVICPULSE_API_KEY_FILE")
    path = Path(named) if named else Path(s.store_path).parent / "explorer_api_key"
    return path.expanduser().resolve()


def provision_explorer_key(store_path: Path, key_file: Path) -> bool:
    """Make sure ``key_file`` holds a live key of the store at ``store_path``; True when a new one
    was made. ``civicpulse serve`` does this before serving (it is the store's writer), so the
    explorer started with ``civicpulse ui`` needs no set-up. A file whose key this store does not
    know (another store's, or revoked) is replaced."""
    from analyzer.store.database import Store

    with Store(store_path) as st:
        return provision_key(st, key_file, EXPLORER_KEY_NAME)


def provision_key(store: Store, key_file: Path, name: str, scope: str = "write") -> bool:
    """Make sure ``key_file`` holds a live key of ``store`` with ``scope``; True when a new one
    was made. The file is written owner-only (0600) and replaced atomically; the store keeps only
    the key's hash, as for every key."""
    from api.keys import create_key, verify_key

    current = key_file.read_text(encoding="utf-8").strip() if key_file.is_file() else ""
    if current:
        found = verify_key(store, current)
        if found is not None and found.scope == scope:
            if key_file.stat().st_mode & 0o077:
                os.chmod(key_file, 0o600)  # only this machine's user may read it
            return False
    key, _ = create_key(store, name, scope)
    write_private(key_file, key + "\n")
    return True


def ui_environment(s: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The explorer's environment: the API's address and where its key is (unless the caller
    set ``CIVICPULSE_API_KEY`` or ``CIVICPULSE_API_KEY_FILE`` themselves)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CIVICPULSE_API_URL", s.api_url)
    if not env.get("CIVICPULSE_API_KEY"):
        env.setdefault("CIVICPULSE_API_KEY_FILE", str(explorer_key_file(s)))
    return env


def _ui_script() -> Path:
    spec = importlib.util.find_spec("ui")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "app.py"
        if candidate.is_file():
            return candidate
    candidate = Path(__file__).resolve().parents[2] / "ui" / "app.py"
    if not candidate.is_file():
        raise InputError("the explorer (ui/app.py) is not installed", file=str(candidate))
    return candidate


@app.command()
def ui(
    port: Annotated[int | None, typer.Option(help="port (default from settings, 8501)")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Start the Streamlit explorer; it reads through the API (CIVICPULSE_API_URL)."""
    s = settings()
    script = _ui_script()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.port",
        str(port or s.ui_port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    env = ui_environment(s)
    if env.get("CIVICPULSE_API_KEY"):
        console.print(f"explorer: API {env['CIVICPULSE_API_URL']}, key from CIVICPULSE_API_KEY")
    elif Path(env["CIVICPULSE_API_KEY_FILE"]).is_file():
        console.print(
            f"explorer: API {env['CIVICPULSE_API_URL']}, key from {env['CIVICPULSE_API_KEY_FILE']}"
        )
    else:
        console.print(
            f"explorer: API {env['CIVICPULSE_API_URL']}; no key yet at "
            f"{env['CIVICPULSE_API_KEY_FILE']}: `civicpulse serve` writes it when it starts "
            "(or set CIVICPULSE_API_KEY)"
        )
    # Replace this process with Streamlit so a supervisor's signal reaches the server itself
    # (a child process would outlive a terminated parent).
    os.execve(sys.executable, cmd, env)


def _keys_store(store: Path | None):
    import duckdb

    try:
        return open_store(store)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise InputError(
                "the store is open in another process (is `civicpulse serve` running?); "
                "stop it to manage keys",
                file=str(settings(store).store_path),
            ) from None
        raise


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option("--name", help="who or what uses the key")],
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="read (GETs and tagging), write (also every write) or admin (also /v1/keys)",
        ),
    ] = "write",
    store: StoreOpt = None,
) -> None:
    """Make a key and print it once: only its hash is kept."""
    from api.keys import check_scope, create_key

    scope = check_scope(scope)  # before the store is opened: a wrong flag costs nothing
    with _keys_store(store) as st:
        key, record = create_key(st, name, scope)
    console.print(
        f"key id {record.key_id} ({record.name}, {record.scope}); store the key now, it is not "
        "shown again:"
    )
    print(key)


@apikey_app.command("list")
def apikey_list(store: StoreOpt = None) -> None:
    """Key ids, names, creation times, whether revoked, scopes and last use (never the keys)."""
    from api.keys import list_keys

    with _keys_store(store) as st:
        keys = list_keys(st)
    if not keys:
        console.print("no API keys; make one with `civicpulse apikey create --name NAME`")
        return
    print("key_id\tname\tcreated_at\trevoked\tscope\tlast_used_at")
    for k in keys:
        print(
            f"{k['key_id']}\t{k['name']}\t{k['created_at']}\t{str(k['revoked']).lower()}\t"
            f"{k['scope']}\t{k['last_used_at'] or 'never'}"
        )


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (from `apikey list`) or the key")],
    store: StoreOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from then on."""
    from api.keys import revoke_key

    with _keys_store(store) as st:
        if not revoke_key(st, key_id):
            raise InputError(f"no live key with id {key_id!r}", column="key_id")
    console.print(f"revoked {key_id}")
