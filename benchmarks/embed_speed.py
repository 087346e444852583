"""Embedding speed: sentence-transformers ``encode`` (fp32, batch 64) against the fast backends.

The fast backends: OpenVINO bfloat16, OpenVINO with int8 weights and dynamically quantised
activations, and OpenVINO with int8 weights and activations at scales calibrated at build time
(the default; ``analyzer.embedding.openvino_backend``), and ONNX Runtime float32 and dynamic int8
(``analyzer.embedding.onnx_backend``).

One process, the same texts, the variants interleaved run by run (so a noisy neighbour slows
all of them alike); the figure is the median of the runs. Texts: real Boston 311 descriptions,
an equal share of each of the five services (all 473 "Unsafe Dangerous Conditions" ones; the
rest spread over the other four), fixed seed.

Per variant: texts/s (wall clock), texts per CPU-second of this process (robust to other jobs
on the machine), the ratio to the baseline, peak RSS of a fresh process that loads only that
backend and embeds the first 2,000 of the texts (psutil RSS sampled every 20 ms), cosine
to the fp32 baseline per text (mean, 1st percentile, min), on the timed texts and on 1,500
engagement comments (Polis conversations, none of them in data_samples/, which the static int8
model is calibrated on). Quality, on the Boston stratified
2,000 with service_name as labels: macro-F1 of a logistic regression (5-fold stratified CV) and
NMI of KMeans k=5 (mean of 5 seeds) and of ``analyzer.themes.model.cluster_texts`` top-level themes
(mean of 3 seeds).

    nice python -m benchmarks.embed_speed            # 5,000 texts, 3 runs
    python -m benchmarks.embed_speed --corpus natural   # a random draw of all requests
    python -m benchmarks.embed_speed --n 1000 --runs 1 --no-memory   # quick look

Exits 0 with a "skipped" line when ../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (
    BOSTON_FILES,
    ROOT,
    boston_service,
    boston_stratified,
    require_data_raw,
    write_result,
)

BASELINE = "st-fp32"
# name -> (backend, quant, bucketing); the baseline first.
VARIANTS: dict[str, tuple[str, str | None, bool]] = {
    BASELINE: ("torch", None, True),
    "openvino-bf16": ("openvino", None, True),
    "openvino-int8": ("openvino", "int8", True),
    "openvino-int8-static": ("openvino", "int8-static", True),
    "onnx-fp32": ("onnx", "fp32", True),
    "onnx-int8": ("onnx", "int8", True),
}
# Ablation (--ablation): the int8 model in batches of 64 in input order (a plain export's loop).
ABLATION = {"onnx-int8-batch64-unsorted": ("onnx", "int8", False)}
MEMORY_TEXTS = 2000
COMMENTS = 1500
Encoder = Callable[[list[str]], np.ndarray]


def natural_texts(n: int, seed: int = 0) -> list[str]:
    """n described requests drawn at random from all Boston requests (the real length mix)."""
    pool = pd.concat(
        boston_service(s, usecols=["description"])["description"] for s in BOSTON_FILES
    )
    pool = pool.dropna().astype(str)
    pool = pool[pool.str.strip() != ""]
    return pool.sample(n=min(n, len(pool)), random_state=seed).tolist()


def polis_comments(n: int, seed: int = 0) -> list[str]:
    """n engagement comments from the Polis conversations that data_samples/ does not hold."""
    folder = require_data_raw("embed_speed") / "polis_opendata"
    files = [f for f in sorted(folder.glob("*/comments.csv")) if "bowling-green" not in str(f)]
    pool = pd.concat(pd.read_csv(f, usecols=["comment-body"])["comment-body"] for f in files)
    pool = pool.dropna().astype(str)
    pool = pool[pool.str.strip() != ""]
    return pool.sample(n=min(n, len(pool)), random_state=seed).tolist()


def speed_texts(n: int, seed: int = 0) -> list[str]:
    """n described requests, an equal share per service where the service has enough."""
    pools = {}
    for service in BOSTON_FILES:
        df = boston_service(service, usecols=["description"])
        desc = df["description"].dropna().astype(str)
        pools[service] = desc[desc.str.strip() != ""].reset_index(drop=True)
    quota = {s: n // len(pools) for s in pools}
    short = {s: quota[s] - len(p) for s, p in pools.items() if len(p) < quota[s]}
    rich = [s for s in pools if s not in short]
    for s, missing in short.items():
        quota[s] = len(pools[s])
        for i, r in enumerate(rich):  # hand the shortfall to the services that have plenty
            quota[r] += missing // len(rich) + (1 if i < missing % len(rich) else 0)
    quota[rich[0]] += n - sum(quota.values())
    parts = [pools[s].sample(n=quota[s], random_state=seed) for s in pools]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).tolist()


def make_encoder(backend: str, quant: str | None, bucketing: bool) -> Encoder:
    from analyzer.embedding.model_files import packaged_model_path
    from analyzer.embedding.torch_backend import torch_encoder

    path = packaged_model_path()
    if backend == "torch":
        return torch_encoder(str(path), "cpu", 64)
    if backend == "openvino":
        from analyzer.embedding.openvino_backend import openvino_encoder

        return openvino_encoder(path, 64, weights=quant or "full")
    from analyzer.embedding.onnx_backend import onnx_encoder

    enc = onnx_encoder(path, 64, quant=quant)
    if not bucketing and quant == "int8":
        # The ablation the shipped int8 path replaced: batches of 64 in input order.
        enc.batch_size, enc.max_batch_tokens = 64, 64 * 256
    if not bucketing:
        # Input order, fixed batches of 64: what a plain ONNX export does.
        def in_order(lengths: np.ndarray) -> list[np.ndarray]:
            return [np.arange(i, min(i + 64, len(lengths))) for i in range(0, len(lengths), 64)]

        enc.batches = in_order  # type: ignore[method-assign]
    return enc


def cosine_stats(x: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    cos = (x * ref).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(ref, axis=1))
    return {
        "cos_mean": float(cos.mean()),
        "cos_p1": float(np.percentile(cos, 1)),
        "cos_min": float(cos.min()),
    }


# -- memory: a fresh process per variant, so one backend's weights don't count against another --


def _memory_child(variant: str, texts_file: str) -> None:
    import psutil

    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    enc = make_encoder(*{**VARIANTS, **ABLATION}[variant])
    loaded = proc.memory_info().rss
    enc(texts)
    done.set()
    sampler.join()
    # psutil samples only: the kernel's ru_maxrss is inherited from the parent through fork+exec
    # on Linux, so it would report this benchmark's own peak (pandas reading the CSVs).
    print(json.dumps({"loaded_mb": loaded / 2**20, "peak_mb": peak[0] / 2**20}))


def peak_memory(variant: str, texts: list[str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(texts, fh)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.embed_speed", "--memory-child", variant, fh.name],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        os.unlink(fh.name)


# -- quality ----------------------------------------------------------------------------------


def quality(emb: np.ndarray, labels: np.ndarray, texts: list[str]) -> dict[str, float | None]:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, normalized_mutual_info_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pred = cross_val_predict(LogisticRegression(max_iter=2000), emb, labels, cv=folds)

    k = len(set(labels))
    # KMeans NMI moves a point or more between seeds; the mean over five is what is compared.
    nmis = [
        normalized_mutual_info_score(
            labels, KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(emb)
        )
        for seed in range(5)
    ]
    themes_nmis: list[float] = []
    try:
        from analyzer.themes.model import cluster_texts

        # Theme NMI moves with the seed too; three seeds show how much.
        for seed in (42, 0, 1):
            try:
                themes = cluster_texts(texts, emb, seed=seed, label=False)
            except TypeError:
                themes = cluster_texts(texts, emb, seed=seed)
            themes_nmis.append(
                float(normalized_mutual_info_score(labels, themes["parent_theme_id"]))
            )
    except Exception as exc:  # another engineer's module: report, don't fail
        print(f"  (analyzer.themes.model.cluster_texts unavailable: {type(exc).__name__}: {exc})")
    return {
        "tagging_macro_f1": float(f1_score(labels, pred, average="macro")),
        "kmeans_nmi": float(np.mean(nmis)),
        "themes_nmi": float(np.mean(themes_nmis)) if themes_nmis else None,
        "themes_nmi_seeds": themes_nmis,
        "kmeans_nmi_seeds": [float(x) for x in nmis],
    }


# -- main -------------------------------------------------------------------------------------


def run(n: int, runs: int, memory: bool, corpus: str, ablation: bool) -> dict[str, Any]:
    texts = natural_texts(n) if corpus == "natural" else speed_texts(n)
    from analyzer.embedding import openvino_backend as ov_embed
    from analyzer.embedding.batching import default_threads
    from analyzer.embedding.onnx_backend import ensure_model

    for quant in ("fp32", "int8"):
        built = ensure_model(None, quant)  # build outside the timings
        print(f"onnx {quant}: {built.path}")
    for weights in ov_embed.WEIGHTS:
        built_ir = ov_embed.ensure_model(weights=weights)
        print(f"openvino {weights}: {built_ir.path} ({ov_embed.inference_precision()})")
    variants = {**VARIANTS, **(ABLATION if ablation else {})}
    encoders = {name: make_encoder(*spec) for name, spec in variants.items()}
    for enc in encoders.values():
        enc(texts[:64])  # warm-up: first-call allocations and lazy initialisation
    wall: dict[str, list[float]] = {k: [] for k in encoders}
    cpu: dict[str, list[float]] = {k: [] for k in encoders}
    outputs: dict[str, np.ndarray] = {}
    for r in range(runs):
        for name, enc in encoders.items():
            c0, t0 = time.process_time(), time.perf_counter()
            outputs[name] = enc(texts)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            print(f"  run {r + 1}/{runs} {name:22s} {len(texts) / wall[name][-1]:8.1f} texts/s")

    comments = polis_comments(COMMENTS)
    ref_comments = encoders[BASELINE](comments)
    strat = boston_stratified()
    q_texts = strat["description"].astype(str).tolist()
    labels = strat["service_name"].to_numpy()
    rows = []
    base_wall = statistics.median(wall[BASELINE])
    for name, enc in encoders.items():
        med = statistics.median(wall[name])
        row: dict[str, Any] = {
            "variant": name,
            "texts_per_s": len(texts) / med,
            "ratio_vs_baseline": base_wall / med,
            "texts_per_cpu_s": len(texts) / statistics.median(cpu[name]),
            "wall_s_runs": [round(x, 3) for x in wall[name]],
            "cpu_s_runs": [round(x, 3) for x in cpu[name]],
            **cosine_stats(outputs[name], outputs[BASELINE]),
            "comments": cosine_stats(enc(comments), ref_comments),
        }
        if memory:
            # Peak memory is set by the model and the largest batch, not by n: 2,000 texts
            # show it at a fraction of the time.
            row.update(peak_memory(name, texts[:MEMORY_TEXTS]))
        print(f"  quality {name} ...")
        row.update(quality(enc(q_texts), labels, q_texts))
        rows.append(row)

    lens = [len(t) for t in texts]
    return {
        "corpus": corpus,
        "n_texts": len(texts),
        "mean_chars": float(np.mean(lens)),
        "runs": runs,
        "memory_texts": min(MEMORY_TEXTS, len(texts)) if memory else 0,
        "threads": default_threads(),
        "load_average": os.getloadavg(),
        "quality_data": f"boston stratified {len(q_texts)} (service_name, 5 classes)",
        "variants": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['n_texts']} Boston texts ({result['corpus']}, mean "
        f"{result['mean_chars']:.0f} chars), "
        f"{result['threads']} threads, median of {result['runs']} interleaved runs; "
        f"load average {result['load_average'][0]:.1f}"
    )
    head = (
        f"{'variant':22s} {'texts/s':>8s} {'ratio':>6s} {'/cpu-s':>7s} {'peakMB':>7s} "
        f"{'cos':>6s} {'cos p1':>6s} {'c.cos':>6s} {'c.p1':>6s} "
        f"{'F1':>6s} {'NMI-km':>6s} {'NMI-th':>6s}"
    )
    print(head)
    print("-" * len(head))
    for r in result["variants"]:
        peak = f"{r['peak_mb']:7.0f}" if "peak_mb" in r else f"{'-':>7s}"
        th = f"{r['themes_nmi']:6.3f}" if r["themes_nmi"] is not None else f"{'-':>6s}"
        print(
            f"{r['variant']:22s} {r['texts_per_s']:8.1f} {r['ratio_vs_baseline']:6.2f} "
            f"{r['texts_per_cpu_s']:7.1f} {peak} {r['cos_mean']:6.4f} {r['cos_p1']:6.4f} "
            f"{r['comments']['cos_mean']:6.4f} {r['comments']['cos_p1']:6.4f} "
            f"{r['tagging_macro_f1']:6.3f} {r['kmeans_nmi']:6.3f} {th}"
        )
    print("cos: the timed texts; c.cos: engagement comments (Polis); both to the baseline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embed_speed")
    parser.add_argument("--n", type=int, default=5000, help="texts timed (default 5000)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument(
        "--corpus",
        choices=["balanced", "natural"],
        default="balanced",
        help="balanced: an equal share per service (longer texts, the harder case); natural: a "
        "random draw from all Boston requests",
    )
    parser.add_argument("--ablation", action="store_true", help="also time unsorted int8 batches")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(*args.memory_child)
        return 0
    require_data_raw("embed_speed")
    result = run(args.n, args.runs, not args.no_memory, args.corpus, args.ablation)
    print_table(result)
    suffix = "" if args.corpus == "balanced" else f"_{args.corpus}"
    write_result(f"embed_speed{suffix}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
