"""What 1,000 texts/s would take on this CPU: a roofline for the embedding model (issue #7).

embed_speed times the backends; this benchmark measures what bounds them, so the gap to the
target can be read off numbers instead of argued.

1. The work. Tokens per text with the model's own tokenizer (no padding), on the two Boston
   corpora of embed_speed (balanced: an equal share per service; natural: a random draw), and the
   multiply-adds per token of the linear layers, from the model's config: per layer the Q, K, V
   and output projections (4 h^2) and the feed-forward pair (2 h i).
2. The rate. Each OpenVINO model (bfloat16, int8 with dynamically quantised activations, int8
   with static activation scales: the default) profiled node by node (OpenVINO's ``PERF_COUNT``)
   on the packed calls its encoder makes of the balanced texts, one stream on one core, the
   models' passes interleaved and the median pass reported:
   operations per second per core in the linear layers, and time per token in everything else
   (attention, LayerNorm, GELU, embeddings, reorders).
   Beside it, each backend's own encoder is timed on the same texts as the pipeline runs it
   (one stream per core, tokenising and pooling included), so the ceiling can be compared with
   what is reached.
3. The ceilings this implies on ``cores`` cores: texts/s = cores x tokens/s per core / tokens
   per text, (a) at the measured cost per token (perfect scaling, no Python, no tokenising),
   (b) if the linear layers were the only cost; and the linear-layer rate per core that
   1,000 texts/s would need with nothing else to do.

    python -m benchmarks.embed_ceiling            # 2,000 texts per corpus, 3 passes
    python -m benchmarks.embed_ceiling --n 500 --rounds 1   # quick look

Exits 0 with a "skipped" line when ../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import require_data_raw, write_result
from benchmarks.embed_speed import natural_texts, speed_texts

TARGET = 1000.0  # texts/s, issue #7
# OpenVINO backend -> weights; each model is profiled on the same packed calls
MODELS = {"openvino": "full", "openvino-int8": "int8", "openvino-int8-static": "int8-static"}
LINEAR_NODES = ("FullyConnected", "FullyConnectedCompressed", "FullyConnectedQuantizedLegacy")


def linear_macs_per_token(model_path: Path) -> int:
    """Multiply-adds per token in the transformer's linear layers, from its config.json."""
    cfg = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    return int(layers * (4 * h * h + 2 * h * i))


def tokens_per_text(texts: list[str], model_path: Path, max_len: int = 256) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return np.array([len(e.ids) for e in tok.encode_batch(texts)])


def compiled_for_profile(weights: str, texts: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """A single-stream, single-thread, profiling infer request of one model, and the packed
    calls its encoder makes of ``texts`` (the same rows as a bulk run), kernels compiled."""
    import openvino as ov

    from analyzer.embedding.model_files import packaged_model_path
    from analyzer.embedding.openvino_backend import (
        OpenVinoEncoder,
        compile_config,
        ensure_model,
        inference_precision,
    )

    model_file = ensure_model(weights=weights).path
    encoder = OpenVinoEncoder(model_file, packaged_model_path() / "tokenizer.json", workers=1)
    feeds = encoder.feeds(texts)
    config = compile_config(weights, precision=inference_precision(), streams=1, threads=1)
    config["PERF_COUNT"] = "YES"
    core = ov.Core()
    request = core.compile_model(core.read_model(str(model_file)), "CPU", config)
    request = request.create_infer_request()
    for feed in feeds:
        request.infer(feed)  # kernels compile per shape: keep that out of the profile
    return request, feeds


def profile(request: Any, feeds: list[dict[str, Any]], macs: int) -> dict[str, Any]:
    """Per-node time of one pass over ``feeds``: linear layers against everything else."""
    times: collections.Counter[str] = collections.Counter()
    kernels: set[str] = set()
    real = padded = 0
    for feed in feeds:
        request.infer(feed)
        for node in request.profiling_info:
            seconds = node.real_time.total_seconds()
            linear = node.node_type in LINEAR_NODES
            times["linear" if linear else "other"] += seconds
            if linear and seconds > 0:
                kernels.add(node.exec_type)
        real += int((feed["segments"] > 0).sum())
        padded += int(feed["segments"].size)
    total = times["linear"] + times["other"]
    return {
        "real_tokens": real,
        "padded_tokens": padded,
        "linear_s": times["linear"],
        "other_s": times["other"],
        "linear_share": times["linear"] / total,
        "linear_gops_per_core": 2 * macs * padded / times["linear"] / 1e9,
        "other_us_per_token": times["other"] / real * 1e6,
        "tokens_per_s_per_core": real / total,
        "linear_kernels": sorted(kernels),
    }


def ceilings(prof: dict[str, Any], tokens: float, macs: int, cores: int) -> dict[str, float]:
    """texts/s on ``cores`` cores: (a) at the measured cost, (b) linear layers only."""
    padded_per_text = tokens * prof["padded_tokens"] / prof["real_tokens"]
    return {
        "measured_cost": cores * prof["tokens_per_s_per_core"] / tokens,
        "linear_only": cores * prof["linear_gops_per_core"] * 1e9 / (2 * macs * padded_per_text),
    }


def run(n: int, rounds: int) -> dict[str, Any]:
    from analyzer.embedding.batching import default_threads
    from analyzer.embedding.model_files import packaged_model_path
    from analyzer.embedding.openvino_backend import openvino_encoder

    model_path = packaged_model_path()
    macs = linear_macs_per_token(model_path)
    cores = default_threads()
    corpora = {"balanced": speed_texts(n), "natural": natural_texts(n)}
    work = {}
    for name, texts in corpora.items():
        tokens = float(tokens_per_text(texts, model_path).mean())
        work[name] = {
            "mean_chars": float(np.mean([len(t) for t in texts])),
            "tokens_per_text": tokens,
            "linear_gop_per_text": 2 * macs * tokens / 1e9,
            "needed_linear_gops_per_core": TARGET * 2 * macs * tokens / cores / 1e9,
        }
    prepared = {}
    for backend, weights in MODELS.items():
        print(f"compiling {backend} for profiling ...", flush=True)
        prepared[backend] = compiled_for_profile(weights, corpora["balanced"])
    encoders = {
        backend: openvino_encoder(model_path, 64, weights=weights)
        for backend, weights in MODELS.items()
    }
    texts = corpora["balanced"]
    passes: dict[str, list[dict[str, Any]]] = {backend: [] for backend in MODELS}
    timed: dict[str, list[float]] = {backend: [] for backend in MODELS}
    for r in range(rounds):  # interleaved, so a slow spell on the machine hits every model
        for backend, (request, feeds) in prepared.items():
            passes[backend].append(profile(request, feeds, macs))
            encoders[backend](texts[:64])
            started = time.perf_counter()
            encoders[backend](texts)  # as the pipeline runs it: one stream per core
            timed[backend].append(len(texts) / (time.perf_counter() - started))
            print(
                f"  round {r + 1}/{rounds} {backend:22s} "
                f"{passes[backend][-1]['linear_gops_per_core']:6.0f} linear GOP/s per core"
            )
    profiles = {}
    for backend, runs in passes.items():
        # the median pass by total time
        prof = sorted(runs, key=lambda p: p["linear_s"] + p["other_s"])[len(runs) // 2]
        prof["linear_gops_per_core_rounds"] = [round(p["linear_gops_per_core"], 1) for p in runs]
        prof["encoder_texts_per_s"] = statistics.median(timed[backend])
        prof["ceiling"] = {
            corpus: ceilings(prof, w["tokens_per_text"], macs, cores) for corpus, w in work.items()
        }
        profiles[backend] = prof
    return {
        "cores": cores,
        "target_texts_per_s": TARGET,
        "n_texts": n,
        "rounds": rounds,
        "linear_macs_per_token": macs,
        "work": work,
        "profiles": profiles,
    }


def print_report(result: dict[str, Any]) -> None:
    cores, target = result["cores"], result["target_texts_per_s"]
    print(f"\nlinear layers: {result['linear_macs_per_token'] / 1e6:.2f} M multiply-adds per token")
    print(f"{'corpus':9s} {'chars':>6s} {'tokens':>7s} {'GOP/text':>9s} {'needed':>7s}")
    for corpus, w in result["work"].items():
        print(
            f"{corpus:9s} {w['mean_chars']:6.0f} {w['tokens_per_text']:7.1f} "
            f"{w['linear_gop_per_text']:9.3f} {w['needed_linear_gops_per_core']:7.0f}"
        )
    print(
        f"  needed: linear GOP/s per core for {target:,.0f} texts/s on {cores} cores, nothing else"
    )
    print(
        f"\nprofiled on the balanced texts, one stream per core, median of {result['rounds']} "
        f"passes; ceilings on {cores} cores:"
        f"\n{'model':22s} {'linear':>6s} {'GOP/s':>6s} {'other':>7s} {'balanced':>17s} "
        f"{'natural':>17s} {'encoder':>8s}\n{'':22s} {'share':>6s} {'/core':>6s} {'us/tok':>7s} "
        f"{'(a)':>8s} {'(b)':>8s} {'(a)':>8s} {'(b)':>8s} {'balanced':>8s}"
    )
    for name, p in result["profiles"].items():
        b, nat = p["ceiling"]["balanced"], p["ceiling"]["natural"]
        print(
            f"{name:22s} {p['linear_share']:6.0%} {p['linear_gops_per_core']:6.0f} "
            f"{p['other_us_per_token']:7.1f} {b['measured_cost']:8.0f} {b['linear_only']:8.0f} "
            f"{nat['measured_cost']:8.0f} {nat['linear_only']:8.0f} "
            f"{p['encoder_texts_per_s']:8.0f}"
        )
    print(
        "  (a) texts/s at the measured cost per token; (b) if only the linear layers cost "
        "anything\n  linear kernels: "
        + "; ".join(f"{n} {', '.join(p['linear_kernels'])}" for n, p in result["profiles"].items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embed_ceiling")
    parser.add_argument("--n", type=int, default=2000, help="texts per corpus (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="profiled passes (default 3)")
    args = parser.parse_args(argv)
    require_data_raw("embed_ceiling")
    result = run(args.n, args.rounds)
    print_report(result)
    write_result("embed_ceiling", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
