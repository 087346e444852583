"""End to end: all 320,770 Boston requests from the raw CSVs to themes, sentiment and emerging needs.

    nice python -m benchmarks.end_to_end                  # everything (about 15-20 minutes here)
    python -m benchmarks.end_to_end --rows 20000          # the first 20,000 rows of each file

What a city runs, through the real command line, into a fresh DuckDB store:

1. ``civicpulse ingest`` the five CSVs without their latest 300 requests (parse, validate,
   redact, store);
2. ``civicpulse analyze`` (embed what is new, identical texts once; sentiment; themes; emerging
   needs), with the embedding backend in force (``CIVICPULSE_EMBED_BACKEND``, default
   openvino-int8-static);
3. the next day: ``civicpulse ingest`` the held-out latest 300 requests (about one day at the
   data's 2019 pace) and ``civicpulse analyze`` again, incrementally.

Each command runs in its own process; its wall and CPU seconds and its peak memory (RSS of the
process tree, sampled every 50 ms with psutil) are recorded, and the analysis stages come from
the run manifest. The baseline beside it: the same run's embedding stage at the measured speed of
sentence-transformers' ``encode`` (fp32, batch 64), timed in this run on 2,000 of the texts.
Targets (issue 7): 15 minutes and 6 GB for 1-2, 10 s for the next day's re-analysis.

Prints a stage-by-stage table and writes benchmarks/results/end_to_end.json. Skips (exit 0)
when ../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil

from analyzer.config import load_settings
from benchmarks.common import BOSTON_FILES, ROOT, require_data_raw, write_result

TARGET_TOTAL_S = 15 * 60
TARGET_PEAK_MB = 6 * 1024
TARGET_NEXT_DAY_S = 10.0
HOLD_OUT = 300  # the latest requests, ingested the "next day"


def civicpulse() -> list[str]:
    exe = Path(sys.executable).with_name("civicpulse")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "analyzer.cli"]


def run_step(name: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one CLI command; wall and CPU seconds, peak RSS of its process tree."""
    print(f"==> {name}: civicpulse {' '.join(args[:1])} ...", flush=True)
    t0 = time.perf_counter()
    proc = psutil.Popen([*civicpulse(), *args], env=env, cwd=ROOT)
    peak, cpu = 0, 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, cpu
        while not done.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                cpu = max(cpu, sum(sum(p.cpu_times()[:2]) for p in tree))
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"{name}: civicpulse {args[0]} exited {code}")
    print(f"    {wall:7.1f} s wall, {cpu:7.1f} s cpu, peak {peak / 2**20:7.0f} MB", flush=True)
    return {"step": name, "seconds": wall, "cpu_seconds": cpu, "peak_rss_mb": peak / 2**20}


def split_inputs(raw: Path, out: Path, rows: int | None) -> tuple[list[Path], Path, int]:
    """The five CSVs minus the latest HOLD_OUT requests, and those requests as one CSV."""
    con = duckdb.connect()
    files = [raw / BOSTON_FILES[s] for s in BOSTON_FILES]
    parts = []
    for i, path in enumerate(files):
        limit = f"LIMIT {rows}" if rows else ""
        con.execute(
            f"CREATE TABLE f{i} AS SELECT * FROM read_csv(?, all_varchar = true, header = true) "
            f"{limit}",
            [str(path)],
        )
        parts.append(f"SELECT service_request_id, requested_datetime FROM f{i}")
    con.execute(
        "CREATE TABLE held AS SELECT service_request_id FROM ("
        + " UNION ALL ".join(parts)
        + f") ORDER BY requested_datetime DESC, service_request_id LIMIT {HOLD_OUT}"
    )
    history = []
    for i, path in enumerate(files):
        target = out / path.name
        con.execute(
            f"COPY (SELECT * FROM f{i} WHERE service_request_id NOT IN "
            f"(SELECT service_request_id FROM held)) TO '{target}' (HEADER, DELIMITER ',')"
        )
        history.append(target)
    day = out / "boston_open311_next_day.csv"
    union = " UNION ALL BY NAME ".join(
        f"SELECT * FROM f{i} WHERE service_request_id IN (SELECT service_request_id FROM held)"
        for i in range(len(files))
    )
    con.execute(f"COPY ({union}) TO '{day}' (HEADER, DELIMITER ',')")
    total = sum(con.execute(f"SELECT count(*) FROM f{i}").fetchone()[0] for i in range(len(files)))
    con.close()
    return history, day, total


def last_manifest(store: Path) -> dict[str, Any]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        row = con.execute(
            "SELECT manifest FROM runs WHERE kind = 'analyze' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return json.loads(row[0])


def baseline_embed_rate(backend: str, texts_n: int = 2000) -> dict[str, float]:
    """sentence-transformers fp32 encode on 2,000 real texts, and the fast backend beside it."""
    from analyzer.embedding.embedder import Embedder
    from benchmarks.embed_speed import natural_texts

    texts = natural_texts(texts_n, seed=11)
    out = {}
    for name in ("torch", backend):
        emb = Embedder(backend=name)
        emb.encode_unique(texts[:64])
        t0 = time.perf_counter()
        emb.encode_unique(texts)
        out[name] = texts_n / (time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.end_to_end")
    parser.add_argument("--rows", type=int, default=None, help="only the first N rows per file")
    parser.add_argument("--keep", type=Path, default=None, help="keep the store in this folder")
    args = parser.parse_args(argv)
    raw = require_data_raw("end_to_end") / "boston_open311"

    with tempfile.TemporaryDirectory(prefix="civicpulse-e2e-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        store = work / "store.duckdb"
        if store.exists():
            raise SystemExit(f"{store} exists: give --keep an empty folder")
        history, day, total_rows = split_inputs(raw, work, args.rows)
        env = {**os.environ, "CIVICPULSE_STORE_PATH": str(store)}
        # the embedding model is converted once per machine, not per analysis: do it first
        backend = load_settings().embed_backend
        if backend != "torch":
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "analyzer.cli",
                    "models",
                    "build",
                    "--backend",
                    backend,
                ],
                check=True,
                cwd=ROOT,
                env=env,
            )
        steps = [run_step("ingest history", ["ingest", *map(str, history)], env)]
        steps.append(run_step("analyze history", ["analyze"], env))
        first = last_manifest(store)
        steps.append(run_step("ingest next day", ["ingest", str(day)], env))
        steps.append(run_step("analyze next day", ["analyze"], env))
        second = last_manifest(store)

    rates = baseline_embed_rate(backend)
    embedded = first["counts"]["embedded_new"]
    full = steps[0]["seconds"] + steps[1]["seconds"]
    baseline_embed_s = embedded / rates["torch"]
    result: dict[str, Any] = {
        "rows": total_rows,
        "rows_per_file_limit": args.rows,
        "embed_backend": backend,
        "steps": steps,
        "history_analysis": {
            "timings_s": first["timings_s"],
            "counts": first["counts"],
            "models": first["models"],
        },
        "next_day_analysis": {"timings_s": second["timings_s"], "counts": second["counts"]},
        "full_seconds": full,
        "full_peak_rss_mb": max(steps[0]["peak_rss_mb"], steps[1]["peak_rss_mb"]),
        "next_day_seconds": steps[2]["seconds"] + steps[3]["seconds"],
        "next_day_analyze_seconds": steps[3]["seconds"],
        "baseline": {
            "what": "the same run with the embedding stage at sentence-transformers fp32 speed",
            "embed_texts_per_s": rates["torch"],
            "ours_embed_texts_per_s_same_texts": rates[backend],
            "embed_seconds": baseline_embed_s,
            "full_seconds": full - first["timings_s"]["embed"] + baseline_embed_s,
        },
        "targets": {
            "full_seconds": TARGET_TOTAL_S,
            "peak_rss_mb": TARGET_PEAK_MB,
            "next_day_seconds": TARGET_NEXT_DAY_S,
        },
        "load_average": os.getloadavg(),
    }
    print_table(result)
    if not args.rows:
        write_result("end_to_end", result)
    return 0


def print_table(r: dict[str, Any]) -> None:
    print(f"\n{r['rows']:,} Boston requests, embedding backend {r['embed_backend']}")
    print(f"{'step':22s} {'wall s':>8s} {'cpu s':>8s} {'peak MB':>8s}")
    for s in r["steps"]:
        print(
            f"{s['step']:22s} {s['seconds']:8.1f} {s['cpu_seconds']:8.1f} {s['peak_rss_mb']:8.0f}"
        )
    print(
        "\nanalysis stages (history run, s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["history_analysis"]["timings_s"].items())
    )
    print(
        "analysis stages (next day, s):    "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["next_day_analysis"]["timings_s"].items())
    )
    c = r["history_analysis"]["counts"]
    print(f"records {c['records']:,}, newly embedded {c['embedded_new']:,} (identical texts once)")
    b, t = r["baseline"], r["targets"]
    print(
        f"\nraw CSVs -> themes, sentiment, emerging: {r['full_seconds']:.0f} s "
        f"(target {t['full_seconds']:.0f}); peak {r['full_peak_rss_mb']:.0f} MB "
        f"(target {t['peak_rss_mb']}); next day {r['next_day_seconds']:.1f} s "
        f"(analyze {r['next_day_analyze_seconds']:.1f} s; target {t['next_day_seconds']:.0f})"
    )
    print(
        f"baseline (embedding at sentence-transformers fp32, {b['embed_texts_per_s']:.0f} texts/s "
        f"vs {b['ours_embed_texts_per_s_same_texts']:.0f} here): {b['full_seconds']:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
