"""Read replicas (#22): several API processes, on this machine or others, reading one store.

DuckDB lets one process write a store file, and while it does no other process may open that file,
not even to read. ``civicpulse serve`` is that one writer. With ``--publish-every SECONDS`` it also
publishes what it holds for readers:

- a **snapshot**, ``<store>.replica.duckdb``: a complete copy of the store's committed state,
  made by DuckDB itself (``COPY FROM DATABASE``, on a connection of its own, so the copy reads one
  consistent transaction while the API's other threads go on reading and writing), written to a
  temporary file and renamed over the last one, so that a reader only ever opens a whole
  snapshot. :class:`Publisher` checks every ``SECONDS`` whether the API wrote since the last
  snapshot (a write generation that the API's writing routes, its administrator commands and
  its analyses bump) and publishes when it did;
- a **key file**, ``<store>.keys.json``: the live API keys' hashes, scopes and names (never a
  key), owner-only (0600), rewritten by every key change before the change is answered
  (:func:`refresh_key_file`), so that a key revoked on the primary is refused by every replica
  from its next request on, however old its snapshot.

``civicpulse serve --replica-of STORE`` serves the API from the newest snapshot, read-only
(:class:`Snapshot` reopens it when a newer one has been renamed in), and checks keys against the
key file (:class:`KeyFile`, re-read when it changes). Several replicas may run at once: DuckDB
lets any number of processes open a file read-only while nobody writes it, and nobody writes a
published snapshot. On another machine the two files are copied there (or shared) under the same
names, the snapshot always to a temporary name first and then renamed (``rsync`` does this).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from analyzer.common.private_files import write_private
from analyzer.errors import InputError
from analyzer.store.database import Store

log = logging.getLogger("civicpulse.store")

SNAPSHOT_SUFFIX = ".replica.duckdb"
KEYS_SUFFIX = ".keys.json"
KEY_FILE_VERSION = 1
# A DuckDB file begins with three 4 KiB headers, then its blocks.
HEADER_BYTES = 3 * 4096

_aliases = itertools.count(1)
_key_file_lock = threading.Lock()


def snapshot_file(store_path: str | Path) -> Path:
    """Where the primary serving ``store_path`` publishes its read-only snapshot."""
    p = Path(store_path).expanduser().resolve()
    return p.with_name(p.name + SNAPSHOT_SUFFIX)


def key_file(store_path: str | Path) -> Path:
    """Where the primary serving ``store_path`` keeps its live keys' hashes for its replicas."""
    p = Path(store_path).expanduser().resolve()
    return p.with_name(p.name + KEYS_SUFFIX)


# -- the snapshot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One snapshot: where, how long it took, how large it is, and the write generation it holds."""

    path: Path
    seconds: float
    bytes: int
    generation: int = 0


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def publish_snapshot(store: Store, dest: Path | None = None, generation: int = 0) -> Published:
    """Copy the committed state of ``store`` to ``dest`` (default ``snapshot_file(store.path)``)
    and rename it into place. Runs on a connection of its own: it does not take the Store's lock,
    so the API's requests are not held up, and it copies one transaction's view (a write that
    commits meanwhile is in the next snapshot)."""
    if store.read_only:
        raise InputError("a read-only store cannot publish a snapshot", file=str(store.path))
    dest = snapshot_file(store.path) if dest is None else Path(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    alias = f"civicpulse_snapshot_{os.getpid()}_{next(_aliases)}"
    started = time.perf_counter()
    con = store.con.cursor()
    try:
        database = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
        con.execute(f"ATTACH {_sql_string(str(tmp))} AS {alias}")
        try:
            con.execute(f'COPY FROM DATABASE "{database}" TO {alias}')
            con.execute(f"CHECKPOINT {alias}")  # everything in the file, no WAL beside it
        finally:
            con.execute(f"DETACH {alias}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    with contextlib.suppress(OSError):  # readable by whoever may read the store, no one else
        os.chmod(tmp, stat.S_IMODE(store.path.stat().st_mode))
    os.replace(tmp, dest)
    return Published(dest, time.perf_counter() - started, dest.stat().st_size, generation)


class Publisher:
    """The primary's background publisher: every ``every`` seconds, a new snapshot if the API
    wrote since the last one (``note_write``); the first snapshot is made at once."""

    def __init__(self, store: Store, every: float, dest: Path | None = None) -> None:
        if every <= 0:
            raise InputError("--publish-every must be a positive number of seconds")
        self.store = store
        self.every = float(every)
        self.dest = snapshot_file(store.path) if dest is None else Path(dest)
        self.last: Published | None = None
        self.failures = 0
        self._generation = 1  # the store as opened has not been published yet
        self._published = 0
        self._lock = threading.Lock()
        self._publishing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="snapshot-publisher", daemon=True)

    @property
    def generation(self) -> int:
        return self._generation

    def note_write(self) -> None:
        """The API wrote (or may have written) to the store: publish at the next check."""
        with self._lock:
            self._generation += 1

    def pending(self) -> bool:
        return self._generation != self._published

    def publish(self) -> Published:
        """Publish now (one publication at a time)."""
        with self._publishing:
            generation = self._generation  # read before the copy: a write during it publishes again
            done = publish_snapshot(self.store, self.dest, generation)
            self._published = generation
            self.last = done
            log.info(
                "snapshot published",
                extra={
                    "event": "snapshot",
                    "ms": round(done.seconds * 1000, 1),
                    "bytes": done.bytes,
                    "generation": generation,
                },
            )
            return done

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _loop(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            wait = self.every
            if not self.pending():
                continue
            try:
                self.publish()
            except Exception as exc:  # logged; the next check tries again
                self.failures += 1
                log.warning(
                    "snapshot not published",
                    extra={"event": "snapshot", "error": type(exc).__name__},
                )

    def close(self, timeout: float = 30.0) -> None:
        """Stop checking; a write not yet published is published now (the primary stopping)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.pending() and self._published:
            with contextlib.suppress(Exception):
                self.publish()


class SnapshotStore(Store):
    """A read-only Store of one published snapshot file.

    Opened as a database ATTACHed (read-only) to an in-memory DuckDB of its own, never with
    ``duckdb.connect(path)``: DuckDB keeps one database per path and process, so connecting to
    the path again after a newer snapshot was renamed in would hand back the old one."""

    def __init__(self, path: str | Path) -> None:  # no super().__init__(): opened differently
        self.path = Path(path)
        self.read_only = True
        self.interrupted_runs: list[str] = []
        self._lock = threading.RLock()
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"ATTACH {_sql_string(str(self.path))} AS snapshot (READ_ONLY)")
            con.execute("USE snapshot")
            con.execute("SET TimeZone = 'UTC'")
            # A file cut short (a copy still arriving) opens, and fails only when a query reaches
            # a missing block: refuse it here, by the size its own header gives.
            blocks, block_size = con.execute(
                "SELECT total_blocks, block_size FROM pragma_database_size() "
                "WHERE database_name = 'snapshot'"
            ).fetchone()  # type: ignore[misc]
            expected = HEADER_BYTES + int(blocks) * int(block_size)
            if os.path.getsize(self.path) < expected:
                raise InputError(
                    f"the snapshot is incomplete ({os.path.getsize(self.path):,} of "
                    f"{expected:,} bytes)",
                    file=str(self.path),
                )
        except BaseException:
            con.close()
            raise
        self.con = con


class Snapshot:
    """A replica's view of the newest published snapshot: ``store()`` gives a read-only Store of
    it, reopened when a newer snapshot has been renamed in (one ``stat`` per call). A snapshot
    that cannot be opened (a half-copied file on another machine) is logged and skipped: the
    replica goes on serving the one it has."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._signature: tuple[int, int, int] | None = None
        self._bad: tuple[int, int, int] | None = None
        self.opened_at = 0.0
        self.reopened = 0

    def _stat(self) -> tuple[tuple[int, int, int], float] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size), st.st_mtime

    def store(self) -> Store:
        found = self._stat()
        current = self._store
        if current is not None and (found is None or found[0] in (self._signature, self._bad)):
            return current
        with self._lock:
            found = self._stat()
            if self._store is not None and (
                found is None or found[0] in (self._signature, self._bad)
            ):
                return self._store
            if found is None:
                raise InputError(
                    "no snapshot to serve yet: start the primary with `civicpulse serve "
                    "--publish-every SECONDS` (it publishes one at once), or copy its snapshot "
                    "here",
                    file=str(self.path),
                )
            try:
                fresh = SnapshotStore(self.path)
            except Exception as exc:
                if self._store is None:
                    why = exc.message if isinstance(exc, InputError) else type(exc).__name__
                    raise InputError(
                        f"the snapshot cannot be opened ({why}); copy it again, to a temporary "
                        "name first and then renamed",
                        file=str(self.path),
                    ) from None
                self._bad = found[0]
                log.warning(
                    "snapshot not opened; serving the previous one",
                    extra={"event": "snapshot", "error": type(exc).__name__},
                )
                return self._store
            # The previous Store is not closed here: a request may still be reading it. It closes
            # when the last reference to it goes (the renamed-over file stays readable meanwhile).
            self._store, self._signature, self._bad = fresh, found[0], None
            self.opened_at = found[1]
            self.reopened += 1
            return fresh

    def published(self) -> str | None:
        """When the snapshot being served was published (its file's modification), UTC."""
        if self._store is None:
            return None
        stamp = datetime.fromtimestamp(self.opened_at, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


# -- the key file ------------------------------------------------------------------------------


def write_key_file(store: Store, path: Path | None = None) -> Path:
    """Write the live keys' hashes, scopes and names (never a key) to ``path`` (default
    ``key_file(store.path)``), owner-only, atomically."""
    path = key_file(store.path) if path is None else Path(path)
    with _key_file_lock:  # a later change's file is never overwritten by an earlier one's
        df = store.query_df(
            "SELECT key_id, key_hash, coalesce(scope, 'write') AS scope, name FROM api_keys "
            "WHERE NOT revoked ORDER BY key_id"
        )
        keys = [
            {"key_id": r.key_id, "key_hash": r.key_hash, "scope": r.scope, "name": r.name}
            for r in df.itertuples(index=False)
        ]
        body = {
            "version": KEY_FILE_VERSION,
            "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "keys": keys,
        }
        write_private(path, json.dumps(body) + "\n")
    return path


def refresh_key_file(store: Store) -> None:
    """After a key change: rewrite the store's key file if it has one (replicas are in use)."""
    if store.read_only or not key_file(store.path).exists():
        return
    write_key_file(store)


class KeyFile:
    """A replica's view of the primary's key file, re-read whenever it changes (one ``stat`` per
    lookup). A missing or unreadable file accepts no key at all."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._keys: dict[str, dict[str, Any]] = {}

    def lookup(self, key_id: str) -> dict[str, Any] | None:
        """The live key ``key_id``'s record (``key_hash``, ``scope``, ``name``), else None."""
        try:
            st = os.stat(self.path)
            signature: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            # a file changed twice within the clock's step could keep its signature: re-read it
            recent = time.time() - st.st_mtime < 2.0
        except OSError:
            signature, recent = None, False
        if signature != self._signature or recent:
            with self._lock:
                self._keys = self._read() if signature is not None else {}
                self._signature = signature
        return self._keys.get(key_id)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k["key_id"]): dict(k) for k in raw["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "key file unreadable: no key is accepted",
                extra={"event": "keys", "error": type(exc).__name__},
            )
            return {}
