"""The Ray engine's speed against the local engine, and its scaling model (texts/s per worker core).

One process, the same N real Boston 311 descriptions (distinct texts, a random draw over the five
services, fixed seed), the configured embedding model and backend (``embed_backend``, OpenVINO by
default). Per round, interleaved so a noisy neighbour slows all alike:

- ``local``: the local engine, ``Embedder.encode_unique`` in this process on every core (the
  baseline: what ``civicpulse analyze`` does without ``--engine ray``);
- ``ray-1`` / ``ray-2``: a fresh local Ray with 1 or 2 CPUs, one 1-CPU actor per CPU, the same
  Ray Data job ``civicpulse analyze --engine ray`` runs (embedding only here).

Per variant, the median over rounds of: end-to-end texts/s (Ray start, actor start and model
load included), steady texts/s (from the first result batch to the last: what a long job
approaches) and steady texts/s per worker core; the ratio to local; the Ray start and the
first-batch latency (the fixed cost of a job); the lowest cosine between the Ray and the local
vectors. The scaling model: job seconds ~= fixed + N / (workers x per-core rate).

    flock /tmp/civicpulse-bench.lock python -m benchmarks.distributed            # 2,000 texts, 3 rounds
    python -m benchmarks.distributed --n 500 --rounds 1                           # quick look

Exits 0 with a "skipped" line when ../shared/data_raw or ray is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import BOSTON_FILES, boston_service, require_data_raw, write_result

BASELINE = "local"


def boston_texts(n: int, seed: int = 0) -> list[str]:
    """n distinct described requests drawn at random from all five Boston services."""
    pool = pd.concat(
        boston_service(s, usecols=["description"])["description"] for s in BOSTON_FILES
    )
    pool = pool.dropna().astype(str).str.strip()
    pool = pool[pool != ""].drop_duplicates()
    return pool.sample(n=min(n, len(pool)), random_state=seed).tolist()


def run_local(embedder: Any, texts: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    vectors = embedder.encode_unique(texts)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "texts_per_s": len(texts) / seconds, "vectors": vectors}


def run_ray(embedder: Any, texts: list[str], cpus: int, chunk_rows: int) -> dict[str, Any]:
    from analyzer.analysis.ray_engine import RayOptions, map_records, ray_session

    options = RayOptions(local_cpus=cpus, workers=cpus, chunk_rows=chunk_rows)
    keys = [f"{i:08d}" for i in range(len(texts))]
    t0 = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    vectors = np.empty((len(texts), 0), dtype=np.float32)
    parts: dict[int, np.ndarray] = {}
    with ray_session(options) as cluster_cpus:
        t_started = time.perf_counter()
        for batch in map_records(keys, texts, embedder, options, cluster_cpus, sentiment=False):
            arrivals.append((time.perf_counter(), len(batch["key"])))
            for k, v in zip(batch["key"], batch["embedding"], strict=True):
                parts[int(k)] = v
        t_done = time.perf_counter()
    vectors = np.vstack([parts[i] for i in range(len(texts))]).astype(np.float32)
    first_t, first_n = arrivals[0]
    steady_s = arrivals[-1][0] - first_t
    steady = (len(texts) - first_n) / steady_s if steady_s > 0 else float("nan")
    return {
        "seconds": t_done - t0,
        "texts_per_s": len(texts) / (t_done - t0),
        "steady_texts_per_s": steady,
        "steady_texts_per_s_per_core": steady / cpus,
        "ray_start_s": t_started - t0,
        "first_batch_s": first_t - t_started,
        "vectors": vectors,
    }


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts to embed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=250,
        help="texts per Ray block (the engine's default, 4,096, keeps vectors bit-identical to "
        "the local engine's; smaller blocks let a benchmark-sized job use every worker)",
    )
    args = parser.parse_args(argv)

    require_data_raw("distributed")
    try:
        import ray  # noqa: F401
    except ImportError:
        print("[distributed] skipped: ray is not installed (pip install '.[distributed]')")
        return 0
    from analyzer.config import load_settings
    from analyzer.embedding.embedder import get_embedder

    settings = load_settings()
    embedder = get_embedder(
        settings.embed_model or None, settings.embed_backend, settings.embed_batch_size
    )
    texts = boston_texts(args.n)
    embedder.encode_unique(texts[:64])  # load and compile the local model outside the timing
    variants = {BASELINE: None, "ray-1": 1, "ray-2": 2}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    reference: np.ndarray | None = None
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for name, cpus in variants.items():
            if cpus is None:
                result = run_local(embedder, texts)
                reference = result["vectors"]
            else:
                result = run_ray(embedder, texts, cpus, args.chunk_rows)
            vectors = result.pop("vectors")
            if reference is not None:
                cos = (vectors * reference).sum(1) / (
                    np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
                )
                result["min_cosine_to_local"] = float(cos.min())
            runs[name].append(result)
            print(
                f"round {r + 1} {name:6s} {result['texts_per_s']:7.1f} texts/s end to end"
                + (
                    f", {result['steady_texts_per_s']:7.1f} steady"
                    if "steady_texts_per_s" in result
                    else ""
                )
                + f" ({result['seconds']:.1f} s)"
            )
    load_after = os.getloadavg()

    local_rate = _median(runs[BASELINE], "texts_per_s")
    summary: dict[str, Any] = {}
    for name, cpus in variants.items():
        rows = runs[name]
        entry: dict[str, Any] = {
            "worker_cores": cpus or os.cpu_count(),
            "texts_per_s": round(_median(rows, "texts_per_s"), 2),
            "ratio_to_local": round(_median(rows, "texts_per_s") / local_rate, 3),
            "seconds": round(_median(rows, "seconds"), 2),
            "min_cosine_to_local": round(min(r["min_cosine_to_local"] for r in rows), 6),
        }
        if cpus is not None:
            steady = _median(rows, "steady_texts_per_s")
            entry.update(
                {
                    "steady_texts_per_s": round(steady, 2),
                    "steady_ratio_to_local": round(steady / local_rate, 3),
                    "steady_texts_per_s_per_core": round(steady / cpus, 2),
                    "ray_start_s": round(_median(rows, "ray_start_s"), 2),
                    "first_batch_s": round(_median(rows, "first_batch_s"), 2),
                }
            )
        summary[name] = entry
    per_core = [summary[n]["steady_texts_per_s_per_core"] for n in ("ray-1", "ray-2")]
    fixed = statistics.median(
        summary[n]["ray_start_s"] + summary[n]["first_batch_s"] for n in ("ray-1", "ray-2")
    )
    model = {
        "per_core_texts_per_s": round(float(np.mean(per_core)), 2),
        "fixed_seconds": round(float(fixed), 1),
        "scaling_efficiency_2_vs_1": round(
            summary["ray-2"]["steady_texts_per_s"] / (2 * summary["ray-1"]["steady_texts_per_s"]),
            3,
        ),
        "formula": "job seconds ~= fixed_seconds + texts / (worker cores x per_core_texts_per_s)",
    }

    print(f"\n{args.n} Boston texts, {settings.embed_backend} backend, {args.rounds} rounds")
    print(f"{'variant':8s} {'texts/s':>9s} {'x local':>8s} {'steady':>9s} {'/core':>7s}")
    for name, e in summary.items():
        print(
            f"{name:8s} {e['texts_per_s']:9.1f} {e['ratio_to_local']:8.2f} "
            f"{e.get('steady_texts_per_s', float('nan')):9.1f} "
            f"{e.get('steady_texts_per_s_per_core', float('nan')):7.1f}"
        )
    print(
        f"scaling model: {model['fixed_seconds']} s fixed + texts / (cores x "
        f"{model['per_core_texts_per_s']} texts/s); 2 cores vs 1: "
        f"{model['scaling_efficiency_2_vs_1']:.0%} efficient"
    )
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    write_result(
        "distributed",
        {
            "texts": len(texts),
            "rounds": args.rounds,
            "embed_backend": settings.embed_backend,
            "embedding_model": embedder.model_id,
            "chunk_rows": args.chunk_rows,
            "baseline": BASELINE,
            "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "results": summary,
            "scaling_model": model,
            "runs": {
                name: [{k: round(v, 3) for k, v in row.items()} for row in rows]
                for name, rows in runs.items()
            },
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
