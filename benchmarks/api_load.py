"""Load on POST /v1/tag: ``civicpulse serve`` on loopback, driven by wrk and by locust (headless).

    python -m benchmarks.api_load                 # 3 rounds of 60 s at 1 client, then at 16 clients
    python -m benchmarks.api_load --seconds 20    # shorter
    python -m benchmarks.api_load --clients 1,4,16 --rows 500
    python -m benchmarks.api_load --generator locust --embed-backend openvino

Steps: a temporary store gets ``--rows`` rows of data_samples/boston_311_sample.csv through the
real ingest; the tagger is Settings.tagger_model when that bundle exists, else a supervised Tagger
trained here on the sample's labelled rows (its service names); the server runs as its own process
with the rate limit off (this measures latency, not the limiter); each locust user posts one real
Boston description per request, in a closed loop (the next request leaves when the answer arrives).

Two load generators, one after the other on the same server (``--generator both``, the default
when wrk is installed; ``apt-get install wrk`` on Debian/Ubuntu):

- wrk (C, one event-loop thread, ``-c N`` connections in a closed loop, latency from its
  HdrHistogram): it costs the shared 2 cores almost nothing, so its figures are the server's.
  The target is judged on these.
- locust (Python/gevent, FastHttpUser): measured here at ~3 ms of CPU per request, a quarter of
  what the server spends, taken from the same 2 cores; its figures include that cost.

Prints p50 / p99 latency, throughput and errors per round, generator and client count, then the
medians over the rounds (single 60 s runs of the same code moved by +-15% here: the machine is
shared), and writes benchmarks/results/api_load.json. Target: p99 under 100 ms at 16 clients on
2 cores, no errors; judged on the median.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--prepare" not in sys.argv:
    # Locust runs on gevent, which must patch the standard library before anything else imports
    # it; the setup child (--prepare: ingest, torch) is spared the patching.
    try:
        from gevent import monkey
    except ImportError:
        print(
            "[api_load] skipped: the load generator is not installed (pip install locust==2.47.0)"
        )
        sys.exit(0)
    monkey.patch_all()

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "boston_311_sample.csv"
TARGET_P99_MS = 100.0


def civicpulse_cmd() -> list[str]:
    script = Path(sys.executable).with_name("civicpulse")
    if script.is_file():
        return [str(script)]
    found = shutil.which("civicpulse")
    if found:
        return [found]
    # Not installed as a script (an editable install makes one): the same entry point.
    return [sys.executable, "-c", "import sys; from analyzer.cli import main; sys.exit(main())"]


def prepare(
    folder: Path, rows: int, train_rows: int, seed: int, backend: str | None
) -> dict[str, Any]:
    """Run in a child process (heavy imports stay out of the gevent-patched parent)."""
    import pandas as pd

    from analyzer.config import load_settings
    from analyzer.ingest import ingest_file
    from analyzer.store.database import Store

    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df = df[df["description"].str.strip() != ""]
    # A spread of the sample (all services and years), not its first rows.
    subset = df.sample(n=min(rows, len(df)), random_state=seed).sort_values("requested_datetime")
    csv_path = folder / "sample.csv"
    subset.to_csv(csv_path, index=False)
    t0 = time.perf_counter()
    with Store(folder / "store.duckdb") as store:
        report = ingest_file(store, csv_path, progress=False)
        texts = store.query_df("SELECT text FROM records ORDER BY id")["text"].tolist()
    ingest_s = time.perf_counter() - t0
    settings = load_settings()
    model = Path(settings.tagger_model)
    if not model.is_absolute():
        model = ROOT / model
    trained = False
    train_s = 0.0
    if not (model / "manifest.json").is_file():
        from analyzer.ingest.privacy.redact import redact_many
        from analyzer.tagging.supervised import Tagger

        train = df.sample(n=min(train_rows, len(df)), random_state=seed + 1)
        t0 = time.perf_counter()
        train_texts = [r.text for r in redact_many(train["description"].tolist())]
        tagger = Tagger(random_state=seed).fit(train_texts, train["service_name"].tolist())
        model = folder / "models" / "boston-311"
        tagger.save(model)
        train_s = time.perf_counter() - t0
        trained = True
    if backend and backend != "torch":
        from analyzer.embedding.embedder import get_embedder

        # Builds (or checks) the cached ONNX model now, not during the server's warm-up.
        get_embedder(backend=backend).embed(["warm-up"])
    return {
        "embed_backend": backend or settings.embed_backend,
        "store": str(folder / "store.duckdb"),
        "model": str(model),
        "model_trained_here": trained,
        "rows_loaded": report.rows_loaded,
        "ingest_s": round(ingest_s, 1),
        "train_s": round(train_s, 1),
        "texts": texts,
    }


def readyz(base: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(base + "/readyz", timeout=30) as res:
        return json.loads(res.read())


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> dict[str, Any]:
    import urllib.request

    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as res:
                last = json.loads(res.read())
            if last.get("tagger") == "ok":
                return last
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready within {timeout:.0f} s: {last}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): what the server itself spent,
    whatever else the machine was running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return None


def run_locust(base: str, texts: list[str], users: int, seconds: float) -> dict[str, Any]:
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    rng = random.Random(users)

    class TagUser(FastHttpUser):
        host = base
        wait_time = constant(0)

        @task
        def tag(self) -> None:
            self.client.post("/v1/tag", json={"text": rng.choice(texts)}, name="POST /v1/tag")

    env = Environment(user_classes=[TagUser])
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(seconds)
    runner.quit()
    total = env.stats.total
    errors = {f"{e.method} {e.name}: {e.error}": e.occurrences for e in env.stats.errors.values()}
    return {
        "clients": users,
        "seconds": seconds,
        "requests": total.num_requests,
        "errors": total.num_failures,
        "error_kinds": errors,
        "throughput_rps": round(total.num_requests / seconds, 1),
        "p50_ms": total.get_response_time_percentile(0.50),
        "p90_ms": total.get_response_time_percentile(0.90),
        "p99_ms": total.get_response_time_percentile(0.99),
        "max_ms": round(total.max_response_time, 1),
        "mean_ms": round(total.avg_response_time, 1),
    }


def wrk_script(texts: list[str], folder: Path, seed: int) -> Path:
    """A wrk Lua script posting one of ``texts`` per request (drawn at random, seeded) and
    printing the run's figures as one JSON line when it ends."""
    from benchmarks.common import WRK_DONE_LUA

    bodies = []
    for text in texts:
        body = json.dumps({"text": text})
        level = 1
        while f"]{'=' * level}]" in body:  # a long-bracket level the body does not close
            level += 1
        bodies.append(f"[{'=' * level}[{body}]{'=' * level}]")
    script = folder / "tag.lua"
    lua = [
        "local bodies = {",
        ",\n".join(bodies),
        "}",
        'wrk.method = "POST"',
        'wrk.path = "/v1/tag"',
        'wrk.headers["Content-Type"] = "application/json"',
        f"math.randomseed({seed})",
        "request = function()",
        "  return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])",
        "end",
        *WRK_DONE_LUA,
    ]
    script.write_text("\n".join(lua) + "\n", encoding="utf-8")
    return script


def run_wrk(base: str, script: Path, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` connections in a closed loop from one wrk thread for ``seconds``."""
    from benchmarks.common import wrk_report

    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    w = wrk_report(out)
    seconds_run = w["duration_us"] / 1e6
    errors = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
    return {
        "clients": clients,
        "seconds": round(seconds_run, 1),
        "requests": w["requests"],
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "throughput_rps": round(w["requests"] / seconds_run, 1),
        "p50_ms": round(w["p50_us"] / 1000, 1),
        "p90_ms": round(w["p90_us"] / 1000, 1),
        "p99_ms": round(w["p99_us"] / 1000, 1),
        "max_ms": round(w["max_us"] / 1000, 1),
        "mean_ms": round(w["mean_us"] / 1000, 1),
    }


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per generator and client count: medians of p50, p99 and throughput over the rounds, and
    the errors and requests of all rounds together."""
    import statistics

    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["generator"], r["clients"]), []).append(r)
    return [
        {
            "generator": generator,
            "clients": clients,
            "rounds": len(rows),
            "p50_ms": statistics.median(r["p50_ms"] for r in rows),
            "p99_ms": statistics.median(r["p99_ms"] for r in rows),
            "p99_ms_rounds": [r["p99_ms"] for r in rows],
            "throughput_rps": statistics.median(r["throughput_rps"] for r in rows),
            "requests": sum(r["requests"] for r in rows),
            "errors": sum(r["errors"] for r in rows),
        }
        for (generator, clients), rows in groups.items()
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="per client count (default 60)")
    ap.add_argument(
        "--clients", default="1,16", help="comma-separated client counts (default 1,16)"
    )
    ap.add_argument("--rows", type=int, default=400, help="sample rows ingested into the store")
    ap.add_argument(
        "--train-rows", type=int, default=2000, help="rows to train a tagger on, if needed"
    )
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds of every run; medians reported (default 3)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--embed-backend",
        choices=["torch", "onnx", "openvino", "openvino-int8", "openvino-int8-static"],
        help="the server's embedding backend (default: from settings)",
    )
    ap.add_argument(
        "--generator",
        choices=["both", "wrk", "locust"],
        default="both" if shutil.which("wrk") else "locust",
        help="load generator(s), one after the other (default: both where wrk is installed)",
    )
    ap.add_argument("--prepare", help=argparse.SUPPRESS)  # internal: child process does the setup
    args = ap.parse_args(argv)

    if args.prepare:
        out = prepare(Path(args.prepare), args.rows, args.train_rows, args.seed, args.embed_backend)
        Path(args.prepare, "prepared.json").write_text(json.dumps(out), encoding="utf-8")
        return 0

    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    generators = ["wrk", "locust"] if args.generator == "both" else [args.generator]
    if "wrk" in generators and not shutil.which("wrk"):
        print("[api_load] wrk is not installed (apt-get install wrk): using locust only")
        generators = ["locust"]
    with tempfile.TemporaryDirectory(prefix="civicpulse-load-") as tmp:
        folder = Path(tmp)
        print(f"[api_load] preparing a store of {args.rows} sample rows and the tagger ...")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.api_load",
                "--prepare",
                tmp,
                "--rows",
                str(args.rows),
                "--train-rows",
                str(args.train_rows),
                "--seed",
                str(args.seed),
                *(["--embed-backend", args.embed_backend] if args.embed_backend else []),
            ],
            check=True,
            cwd=ROOT,
        )
        prep = json.loads((folder / "prepared.json").read_text(encoding="utf-8"))
        texts = prep.pop("texts")
        from benchmarks.common import free_port

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CIVICPULSE_TAGGER_MODEL": prep["model"],
            "CIVICPULSE_RATE_LIMIT_PER_MINUTE": "0",
            "CIVICPULSE_EMBED_BACKEND": prep["embed_backend"],
            "CIVICPULSE_CONFIG": str(folder / "none.toml"),
        }
        log_path = folder / "server.log"
        with log_path.open("wb") as log:
            cmd = [
                *civicpulse_cmd(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--store",
                prep["store"],
            ]
            server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                t0 = time.perf_counter()
                ready = wait_ready(base, server)
                startup_s = time.perf_counter() - t0
                print(f"[api_load] server ready in {startup_s:.1f} s: {ready}")
                script = wrk_script(texts, folder, args.seed)

                def drive(generator: str, n: int, seconds: float) -> dict[str, Any]:
                    if generator == "wrk":
                        return run_wrk(base, script, n, seconds)
                    return run_locust(base, texts, n, seconds)

                if args.warmup > 0:
                    drive(generators[0], max(clients), args.warmup)
                results = []
                runs = ((r, g, n) for r in range(args.rounds) for g in generators for n in clients)
                for rnd, generator, n in runs:
                    cpu0, before = cpu_seconds(server.pid), readyz(base)
                    res = {"round": rnd + 1, "generator": generator}
                    res.update(drive(generator, n, args.seconds))
                    cpu, after = cpu_seconds(server.pid) - cpu0, readyz(base)
                    calls = after["tagger_calls"] - before["tagger_calls"]
                    res["mean_batch"] = (
                        round((after["tagger_texts"] - before["tagger_texts"]) / calls, 1)
                        if calls
                        else None
                    )
                    res["server_cpu_ms_per_request"] = (
                        round(1000 * cpu / res["requests"], 2) if res["requests"] else None
                    )
                    res["load_average_after"] = load_average()
                    results.append(res)
                    print(
                        f"[api_load] round {rnd + 1}/{args.rounds} {generator:6s} {n:>3} clients, "
                        f"{args.seconds:.0f} s: "
                        f"p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, "
                        f"{res['throughput_rps']:.1f} req/s, {res['errors']} errors; server CPU "
                        f"{res['server_cpu_ms_per_request']} ms/request, mean model batch "
                        f"{res['mean_batch']}; "
                        f"load average {res['load_average_after']}"
                    )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
        logged = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    summary = summarise(results)
    print(f"[api_load] medians over {args.rounds} round(s) (this shared machine is noisy):")
    for row in summary:
        print(
            f"[api_load]   {row['generator']:6s} {row['clients']:>3} clients: p50 "
            f"{row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms (rounds {row['p99_ms_rounds']}), "
            f"{row['throughput_rps']:.1f} req/s, {row['errors']} errors"
        )
    # Judged on the first generator's (wrk's, where installed) largest client count.
    top = max((r for r in summary if r["generator"] == generators[0]), key=lambda r: r["clients"])
    met = top["requests"] > 0 and top["p99_ms"] < TARGET_P99_MS and top["errors"] == 0
    print(
        f"[api_load] target p99 < {TARGET_P99_MS:.0f} ms with no errors at {top['clients']} "
        f"clients ({top['generator']}, median of {args.rounds}): {'met' if met else 'NOT met'} "
        f"(p99 {top['p99_ms']:.0f} ms, {top['errors']} errors)"
    )
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import write_result

    write_result(
        "api_load",
        {
            "endpoint": "POST /v1/tag (one text per request)",
            "load_generators": {
                "wrk": "wrk 4.1 -t1 -cN, closed loop, random sample text per request",
                "locust": "locust FastHttpUser, closed loop, wait 0",
            },
            "target_judged_on": top["generator"],
            "setup": {k: v for k, v in prep.items()},
            "server_startup_s": round(startup_s, 1),
            "rounds": args.rounds,
            "summary": summary,
            "results": results,
            "target_p99_ms": TARGET_P99_MS,
            "target_met": met,
            "server_log_lines": len(logged),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
