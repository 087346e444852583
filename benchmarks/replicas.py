"""Read replicas (#22): publish time, snapshot lag, and read throughput of the primary alone vs the
primary and one replica, in one run.

    python -m benchmarks.replicas                      # a store of --rows Boston rows per service
    python -m benchmarks.replicas --store PATH         # a copy of an existing store (a city's)
    python -m benchmarks.replicas --rows 500 --rounds 3 --seconds 10 --clients 8
    python -m benchmarks.replicas --rows 0 --vectors random --interval 5 --name replicas-city

The store: ``--rows`` rows of each Boston service in ../shared/data_raw through the real
``civicpulse ingest`` and ``civicpulse analyze`` (skipped cleanly without data_raw), or a copy of
``--store`` (the original is never opened). ``--rows 0 --vectors random``: all 320,770 rows,
ingested, and instead of the analysis (hours on 2 busy cores) an embedding cache of its size with
random values (a copy costs by bytes, not values; the store then has no themes).

- publish: ``analyzer.store.replica.publish_snapshot`` (DuckDB's ``COPY FROM DATABASE`` into a new
  file, renamed into place), median of ``--publishes``; baseline: copying the closed store file
  byte for byte (``shutil.copyfile``), the least any copy costs (and not safe beside a writer).
- lag: ``civicpulse serve --publish-every INTERVAL`` and ``civicpulse serve --replica-of``; ``--lags``
  times a record is posted to the primary (POST /v1/records) and the replica is polled every
  20 ms until it serves it: seconds from the primary's answer, median and max. Expect about
  INTERVAL / 2 + the publish time on average, at most INTERVAL + the publish time.
- reads: wrk, closed loop, GET /v1/themes and GET /v1/records?limit=50 in turn with a read key,
  rate limit off: all ``--clients`` on the primary (baseline) vs half on the primary and half on
  the replica at once (two wrk processes: a round robin of clients). ``--rounds`` rounds of
  each, interleaved; medians. Everything (servers and wrk) shares this machine's cores, so a
  replica here adds a process, not a core: on separate machines each replica brings its own.
  Skipped (the rest still runs) without wrk (``apt-get install wrk``).

Prints each figure beside its baseline and writes benchmarks/results/replicas.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    BOSTON_FILES,
    WRK_DONE_LUA,
    data_raw,
    free_port,
    stop,
    write_result,
    wrk_report,
)

CLI = [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())"]


def cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"civicpulse {' '.join(args[:1])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def fill_random_vectors(store: Path, width: int = 384) -> int:
    """An embedding cache of an analysis' size (one vector per distinct analysable text) with
    random values: what a copy costs depends on the bytes, not on the values."""
    import numpy as np

    from analyzer.store.database import Store

    rng = np.random.default_rng(0)
    with Store(store) as st:
        hashes = st.query_df(
            "SELECT DISTINCT text_hash FROM records WHERE NOT coalesce(boilerplate, false)"
        )["text_hash"].tolist()
        for i in range(0, len(hashes), 20_000):
            part = hashes[i : i + 20_000]
            vectors = rng.standard_normal((len(part), width)).astype(np.float32)
            st.put_embeddings("benchmark-random-vectors", part, vectors)
        st.execute("CHECKPOINT")
    return len(hashes)


def build_store(
    folder: Path, rows: int, vectors: str, env: dict[str, str]
) -> tuple[Path, dict[str, Any]]:
    """``rows`` rows (0: all) of each Boston service, ingested by the real CLI, then analysed by
    it (``vectors == "analyze"``) or given a random embedding cache of the same size."""
    import pandas as pd

    raw = data_raw()
    if raw is None:
        print("[replicas] skipped: ../shared/data_raw is absent (or give --store PATH)")
        sys.exit(0)
    files = []
    for name in BOSTON_FILES.values():
        if rows:
            part = pd.read_csv(raw / "boston_open311" / name, nrows=rows, dtype=str)
            files.append(folder / name)
            part.to_csv(files[-1], index=False)
        else:
            files.append(raw / "boston_open311" / name)
    store = folder / "store.duckdb"
    t0 = time.perf_counter()
    cli(["ingest", *map(str, files), "--store", str(store)], env, folder)
    t1 = time.perf_counter()
    if vectors == "analyze":
        cli(["analyze", "--store", str(store)], env, folder)
        made = {"analyze_s": round(time.perf_counter() - t1, 1)}
    else:
        made = {"random_vectors": fill_random_vectors(store)}
    what = f"first {rows} rows" if rows else "all rows"
    how = "analysed" if vectors == "analyze" else "random vectors, not analysed"
    return store, {
        "ingest_s": round(t1 - t0, 1),
        **made,
        "source": f"Boston, {what} of each service ({how})",
    }


def measure_publish(store: Path, n: int, folder: Path) -> dict[str, Any]:
    from analyzer.store.database import Store
    from analyzer.store.replica import publish_snapshot

    copies = []
    for i in range(n):
        dest = folder / f"plain-copy-{i}.duckdb"
        t0 = time.perf_counter()
        shutil.copyfile(store, dest)
        copies.append(time.perf_counter() - t0)
        dest.unlink()
    publishes = []
    with Store(store) as st:
        records = int(st.scalar("SELECT count(*) FROM records"))
        embeddings = int(st.scalar("SELECT count(*) FROM embeddings"))
        for _ in range(n):
            publishes.append(publish_snapshot(st, folder / "bench.replica.duckdb"))
    snap = publishes[-1]
    return {
        "records": records,
        "embeddings": embeddings,
        "store_mb": round(store.stat().st_size / 1e6, 1),
        "snapshot_mb": round(snap.bytes / 1e6, 1),
        "publish_s": [round(p.seconds, 3) for p in publishes],
        "publish_median_s": round(statistics.median(p.seconds for p in publishes), 3),
        "plain_copy_s": [round(c, 3) for c in copies],
        "plain_copy_median_s": round(statistics.median(copies), 3),
    }


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("wb") as fh:
        return subprocess.Popen(
            [*CLI, *args], env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT
        )


def wait_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: exited {proc.returncode}: {log.read_text()[-800:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def measure_lag(primary: str, replica: str, admin: str, n: int, interval: float) -> dict[str, Any]:
    """Seconds from the primary's answer to a new record (POST /v1/records) until the replica
    serves it, ``n`` times, each write at a random point of the publisher's period."""
    pause = random.Random(0)
    auth = {"Authorization": f"Bearer {admin}"}
    probe = {"source": "lagprobe", "limit": 1}
    lags = []
    with httpx.Client(timeout=60, headers=auth) as http:

        def on_replica() -> int:
            return int(http.get(f"{replica}/v1/records", params=probe).json()["total"])

        for i in range(n):
            record = {"id": f"lag-{i}", "source": "lagprobe", "text": f"probe {i}: a pothole"}
            answer = http.post(f"{primary}/v1/records", json={"records": [record]})
            answer.raise_for_status()
            t0 = time.perf_counter()
            while on_replica() < i + 1:
                if time.perf_counter() - t0 > 300:
                    raise SystemExit("the replica did not see a write within 300 s")
                time.sleep(0.02)
            lags.append(time.perf_counter() - t0)
            time.sleep(pause.uniform(0, interval))  # at another point of the publisher's period
    return {
        "lag_s": [round(x, 3) for x in lags],
        "lag_median_s": round(statistics.median(lags), 3),
        "lag_max_s": round(max(lags), 3),
    }


def published_ms(log: Path) -> list[float]:
    """The primary's own publish times, from its log ("snapshot published", ms)."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"snapshot published"' in line:
            try:
                out.append(float(json.loads(line)["ms"]))
            except (ValueError, KeyError):
                continue
    return out


def wrk_script(folder: Path, key: str) -> Path:
    script = folder / "reads.lua"
    lua = [
        'local paths = {"/v1/themes", "/v1/records?limit=50"}',
        "local i = 0",
        f'wrk.headers["Authorization"] = "Bearer {key}"',
        "request = function()",
        "  i = i + 1",
        '  return wrk.format("GET", paths[(i % 2) + 1])',
        "end",
        *WRK_DONE_LUA,
    ]
    script.write_text("\n".join(lua) + "\n", encoding="utf-8")
    return script


def wrk(targets: list[tuple[str, int]], script: Path, seconds: int) -> dict[str, Any]:
    """One wrk process per (url, connections), all at once; their figures combined."""
    procs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{c}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url, c in targets
    ]
    parts = []
    for p in procs:
        out, _ = p.communicate()
        parts.append(wrk_report(out))
    rps = sum(w["requests"] / (w["duration_us"] / 1e6) for w in parts)
    errors = sum(w[k] for w in parts for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "throughput_rps": round(rps, 1),
        "errors": errors,
        # percentiles of separate processes cannot be merged exactly: the worse of them
        "p50_ms": round(max(w["p50_us"] for w in parts) / 1000, 1),
        "p99_ms": round(max(w["p99_us"] for w in parts) / 1000, 1),
        "per_process_rps": [round(w["requests"] / (w["duration_us"] / 1e6), 1) for w in parts],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas")
    parser.add_argument("--store", type=Path, default=None, help="measure a copy of this store")
    parser.add_argument("--rows", type=int, default=1000, help="rows per Boston service, 0: all")
    parser.add_argument(
        "--vectors",
        choices=("analyze", "random"),
        default="analyze",
        help="analyze the store (real), or fill its embedding cache with random vectors of the "
        "same size (a city-sized store without hours of embedding; no themes)",
    )
    parser.add_argument("--publishes", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="serve --publish-every")
    parser.add_argument("--lags", type=int, default=9)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--name", default="replicas", help="results file: benchmarks/results/NAME.json"
    )
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="civicpulse-replicas-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "CIVICPULSE_CONFIG": str(folder / "none.toml"),
            "CIVICPULSE_STORE_PATH": str(folder / "unused.duckdb"),
            "CIVICPULSE_TAGGER_MODEL": str(folder / "no-tagger"),
            "CIVICPULSE_RATE_LIMIT_PER_MINUTE": "0",
        }
        built: dict[str, Any] = {}
        if args.store is not None:
            if not args.store.is_file() or Path(f"{args.store}.wal").exists():
                raise SystemExit(f"{args.store}: no such store, or it is open (a .wal beside it)")
            store = folder / "store.duckdb"
            shutil.copyfile(args.store, store)
            built["source"] = str(args.store)
        else:
            store, built = build_store(folder, args.rows, args.vectors, env)
        key = cli(
            ["apikey", "create", "--name", "bench", "--scope", "read", "--store", str(store)],
            env,
            folder,
        )
        key = key.strip().splitlines()[-1]

        publish = measure_publish(store, args.publishes, folder)
        print(
            f"[replicas] store: {publish['records']:,} records, {publish['embeddings']:,} cached "
            f"vectors, {publish['store_mb']} MB ({built['source']})"
        )
        print(
            f"[replicas] publish a snapshot ({publish['snapshot_mb']} MB): median "
            f"{publish['publish_median_s']} s of {args.publishes}; baseline, a byte copy of the "
            f"closed file: {publish['plain_copy_median_s']} s "
            f"({publish['publish_median_s'] / max(publish['plain_copy_median_s'], 1e-9):.1f}x)"
        )

        pport, rport = free_port(), free_port()
        primary, replica = f"http://127.0.0.1:{pport}", f"http://127.0.0.1:{rport}"
        plog, rlog = folder / "primary.log", folder / "replica.log"
        p = start(
            [
                "serve",
                "--port",
                str(pport),
                "--store",
                str(store),
                "--publish-every",
                str(args.interval),
            ],
            env,
            folder,
            plog,
        )
        procs = [p]
        try:
            wait_up(primary, p, plog)
            deadline = time.monotonic() + 600
            while not Path(f"{store}.replica.duckdb").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            r = start(
                ["serve", "--replica-of", str(store), "--port", str(rport)], env, folder, rlog
            )
            procs.append(r)
            wait_up(replica, r, rlog)
            admin = Path(f"{store}.admin_key").read_text(encoding="utf-8").strip()
            lag = measure_lag(primary, replica, admin, args.lags, args.interval)
            lag["publish_in_server_ms"] = published_ms(plog)
            print(
                f"[replicas] lag from a write's answer on the primary to the replica serving it "
                f"(--publish-every {args.interval:g}): median {lag['lag_median_s']} s, max "
                f"{lag['lag_max_s']} s over {args.lags} writes (keys: none, the key file is "
                "rewritten before a key change is answered)"
            )
            if lag["publish_in_server_ms"]:
                print(
                    "[replicas] publishing inside the primary while it serves: median "
                    f"{statistics.median(lag['publish_in_server_ms']) / 1000:.2f} s over "
                    f"{len(lag['publish_in_server_ms'])} snapshots"
                )
            # every snapshot published by the lag probes is in; reads from here on
            time.sleep(args.interval * 2)
            reads: dict[str, Any] = {"skipped": "wrk is not installed"}
            if shutil.which("wrk"):
                script = wrk_script(folder, key)
                half = max(1, args.clients // 2)
                for url in (primary, replica):  # warm both
                    wrk([(url, 2)], script, 2)
                rounds: dict[str, list[dict[str, Any]]] = {"primary": [], "primary+replica": []}
                for _ in range(args.rounds):
                    rounds["primary"].append(wrk([(primary, args.clients)], script, args.seconds))
                    rounds["primary+replica"].append(
                        wrk([(primary, half), (replica, args.clients - half)], script, args.seconds)
                    )
                reads = {"clients": args.clients, "seconds": args.seconds, "rounds": rounds}
                for name, rs in rounds.items():
                    reads[name] = {
                        "throughput_rps_median": statistics.median(x["throughput_rps"] for x in rs),
                        "p50_ms_median": statistics.median(x["p50_ms"] for x in rs),
                        "p99_ms_median": statistics.median(x["p99_ms"] for x in rs),
                        "errors": sum(x["errors"] for x in rs),
                    }
                base, both = reads["primary"], reads["primary+replica"]
                reads["ratio"] = round(
                    both["throughput_rps_median"] / max(base["throughput_rps_median"], 1e-9), 2
                )
                for name in ("primary", "primary+replica"):
                    x = reads[name]
                    print(
                        f"[replicas] reads, {args.clients} clients, {name}: "
                        f"{x['throughput_rps_median']} req/s, p50 {x['p50_ms_median']} ms, p99 "
                        f"{x['p99_ms_median']} ms, {x['errors']} errors (medians of {args.rounds})"
                    )
                print(
                    f"[replicas] primary + 1 replica vs primary alone: {reads['ratio']}x "
                    f"throughput on {os.cpu_count()} cores shared by both servers and wrk"
                )
            else:
                print("[replicas] reads skipped: wrk is not installed (apt-get install wrk)")
        finally:
            stop(*reversed(procs), timeout=30)
        load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(f"[replicas] load average (1 min) before / after: {load[0]} / {load[1]}")
        write_result(
            args.name,
            {
                "store": built,
                "publish": publish,
                "interval_s": args.interval,
                "lag": lag,
                "reads": reads,
                "load_average": load,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
