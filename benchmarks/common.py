"""Shared helpers for benchmarks: where the real data lives, deterministic slices, cached embeddings.

Benchmarks that need ../shared/data_raw exit 0 with a "skipped" line when it is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "cache" / "embeddings"
RESULTS = ROOT / "benchmarks" / "results"

BOSTON_FILES = {
    "Illegal Parking": "boston_open311_illegal_parking.csv",
    "Other": "boston_open311_other.csv",
    "Sidewalk Not Shoveled": "boston_open311_sidewalk_not_shoveled.csv",
    "Abandoned Vehicle": "boston_open311_abandoned_vehicle.csv",
    "Unsafe Dangerous Conditions": "boston_open311_unsafe_dangerous_conditions.csv",
}


def data_raw() -> Path | None:
    """../shared/data_raw (or $CIVICPULSE_DATA_RAW) if present."""
    env = os.environ.get("CIVICPULSE_DATA_RAW")
    path = Path(env) if env else ROOT.parent / "shared" / "data_raw"
    return path if path.is_dir() else None


def require_data_raw(name: str) -> Path:
    path = data_raw()
    if path is None:
        print(f"[{name}] skipped: ../shared/data_raw is absent")
        sys.exit(0)
    return path


def boston_stratified() -> pd.DataFrame:
    path = (
        require_data_raw("boston") / "boston_open311" / "boston_open311_sample_stratified_2000.csv"
    )
    df = pd.read_csv(path, dtype={"service_request_id": str})
    return df[df["description"].fillna("").str.strip() != ""].reset_index(drop=True)


def boston_service(service: str, usecols: Sequence[str] | None = None) -> pd.DataFrame:
    path = require_data_raw("boston") / "boston_open311" / BOSTON_FILES[service]
    df = pd.read_csv(path, dtype={"service_request_id": str}, usecols=usecols)
    return df


def boston_other_50k(seed: int = 0) -> pd.DataFrame:
    """50,000 Boston "Other" requests with a description (deterministic random sample)."""
    df = boston_service("Other")
    df = df[df["description"].fillna("").str.strip() != ""]
    return (
        df.sample(n=50_000, random_state=seed)
        .sort_values("requested_datetime")
        .reset_index(drop=True)
    )


def tweeteval(split: str) -> tuple[list[str], np.ndarray]:
    base = require_data_raw("tweeteval") / "tweeteval_sentiment"
    texts = (base / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (base / f"{split}_labels.txt").read_text(encoding="utf-8").split("\n")
    texts = [t for t in texts if t != ""] if len(texts) > len([x for x in labels if x]) else texts
    labels_arr = np.array([int(x) for x in labels if x.strip() != ""])
    return texts[: len(labels_arr)], labels_arr


def cached_embeddings(name: str, texts: Sequence[str], *, backend: str = "torch") -> np.ndarray:
    """Embeddings of ``texts`` with the packaged model, cached on disk under var/cache/embeddings."""
    from analyzer.embedding.embedder import get_embedder

    key = hashlib.blake2b("\x1f".join(texts).encode("utf-8"), digest_size=8).hexdigest()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{backend}-{key}.npy"
    if path.is_file():
        return np.load(path)
    emb = get_embedder(backend=backend).embed(list(texts), progress=True)
    np.save(path, emb.astype(np.float32))
    return emb


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


# wrk (a C load generator) runs a Lua script; its ``done`` hook prints the run's figures as one
# JSON line, read back by ``wrk_report``.
_WRK_FIELDS = (
    '"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    '"max_us": %d, "mean_us": %f'
)
WRK_DONE_LUA = [
    "done = function(summary, latency, requests)",
    "  local e = summary.errors",
    f"  io.write(string.format([[WRK_JSON {{{_WRK_FIELDS}}}]] .. '\\n',",
    "    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,",
    "    e.timeout, latency:percentile(50), latency:percentile(90),",
    "    latency:percentile(99), latency.max, latency.mean))",
    "end",
]


def wrk_report(stdout: str) -> dict[str, Any]:
    """The figures ``WRK_DONE_LUA`` printed (requests, duration_us, errors, latencies in us)."""
    line = next(x for x in stdout.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a server a benchmark or test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(*procs: Any, timeout: float = 15) -> None:
    """Terminate the ``subprocess.Popen`` servers a benchmark or test started, killing any that
    has not exited after ``timeout`` seconds."""
    import subprocess

    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
