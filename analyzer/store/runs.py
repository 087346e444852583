"""Who is running a run, and what became of the runs whose process died.

A run (``runs``, status ``running``) records its owner in ``run_owners``: the host, the process id
and that process's start time (so that a recycled PID is not taken for the owner), and a heartbeat
that every progress update moves. A process killed mid-run (``kill -9``, a crash, a power cut)
cannot say so; the next process that opens the store for writing does: a run still ``running``
whose owner on this host is gone, or whose owner on another host has been silent for
``STALE_AFTER``, or that has no owner at all (written before owners were recorded) is marked
``failed`` with a message saying why. DuckDB lets one process write a store at a time, so while a
run's own process lives nobody else can open the store for writing: the check cannot fail a live
run of another process on this host.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

RUN_OWNERS_SCHEMA = """
-- the process that runs each run, and its heartbeat (analyzer.store.runs)
CREATE TABLE IF NOT EXISTS run_owners (
    run_id VARCHAR PRIMARY KEY,
    host VARCHAR,
    pid BIGINT,
    process_start VARCHAR,
    heartbeat_at TIMESTAMPTZ
);
"""
# A run owned by another host is taken for dead after this long without a heartbeat.
STALE_AFTER = timedelta(minutes=30)

__all__ = [
    "RUN_OWNERS_SCHEMA",
    "STALE_AFTER",
    "fail_orphaned_runs",
    "process_alive",
    "process_start",
    "record_owner",
    "touch_run",
]


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (``/proc/PID/stat``, Linux); ""
    where that cannot be read. With the PID it names one process, even after the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) is in brackets and may hold spaces; field 22 is the start time
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` on this host still runs and is the one that started at
    ``started`` ("" when that was not known)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    now = process_start(pid)
    return not (started and now and now != started)


def record_owner(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """This process owns ``run_id`` from now on."""
    pid = os.getpid()
    con.execute(
        "INSERT OR REPLACE INTO run_owners VALUES (?, ?, ?, ?, current_timestamp)",
        [run_id, socket.gethostname(), pid, process_start(pid)],
    ).fetchall()


def touch_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """The run's heartbeat: its owner is still at it."""
    con.execute(
        "UPDATE run_owners SET heartbeat_at = current_timestamp WHERE run_id = ?", [run_id]
    ).fetchall()


def fail_orphaned_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Mark ``failed`` every ``running`` run whose process is gone (see the module's docstring);
    returns their ids."""
    # times as epoch seconds: fetching TIMESTAMPTZ values would make DuckDB import pytz
    rows = con.execute(
        "SELECT r.run_id, o.host, o.pid, o.process_start, epoch(o.heartbeat_at), "
        "epoch(current_timestamp) FROM runs r "
        "LEFT JOIN run_owners o USING (run_id) WHERE r.status = 'running'"
    ).fetchall()
    host = socket.gethostname()
    dead: list[tuple[str, str]] = []
    for run_id, owner_host, pid, started, heartbeat, now in rows:
        if owner_host is None:
            dead.append((run_id, "its process is unknown (the run predates owner records)"))
        elif owner_host == host:
            if not process_alive(int(pid), started or ""):
                dead.append((run_id, f"its process (PID {pid}) ended before the run finished"))
        elif heartbeat is None or now - heartbeat > STALE_AFTER.total_seconds():
            last = (
                datetime.fromtimestamp(heartbeat, UTC).strftime("%Y-%m-%d %H:%M UTC")
                if heartbeat is not None
                else "never"
            )
            dead.append(
                (run_id, f"its process (PID {pid} on {owner_host}) sent no heartbeat since {last}")
            )
    for run_id, why in dead:
        con.execute(
            "UPDATE runs SET status = 'failed', finished_at = current_timestamp, message = ? "
            "WHERE run_id = ? AND status = 'running'",
            [f"interrupted: {why}; found when the store was next opened"[:300], run_id],
        ).fetchall()
    return [run_id for run_id, _ in dead]
