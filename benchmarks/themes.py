"""Themes: ThemeModel beside BERTopic (its defaults) on the same embeddings of real Boston 311
texts.

    python -m benchmarks.themes            # (a) stratified 2,000 and (b) 50,000 "Other"
    python -m benchmarks.themes --mix      # also (c) 50,000 stratified over the five services
    python -m benchmarks.themes --quick    # (a) only

(a) Boston's stratified sample (2,000 texts, 400 per service): NMI and ARI of the top-level themes
    against ``service_name``. Unassigned texts (BERTopic: its outlier topic -1) count as one more
    cluster, so a model cannot raise its score by leaving hard texts out.
(b) 50,000 Boston "Other" requests (one category, so no NMI): unassigned share, number of themes,
    seconds, and the 15 largest themes' labels of each model.
(c) with ``--mix``: 10,000 of each of the five services (all 473 of "Unsafe Dangerous Conditions"),
    NMI and ARI as in (a). Needs their embeddings; the first run computes and caches them (slow).

Embeddings come from benchmarks.common.cached_embeddings (the packaged all-MiniLM-L6-v2); both
models get the very same matrix. Seconds are fitting only, labels included. BERTopic is
``BERTopic(embedding_model=None, umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0,
metric="cosine", random_state=42))``: its default UMAP settings plus a seed, because unseeded UMAP
gives a different answer every run; everything else (HDBSCAN min_cluster_size=10, CountVectorizer,
c-TF-IDF) is BERTopic's default. Results go to benchmarks/results/themes.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from benchmarks.common import (
    BOSTON_FILES,
    boston_other_50k,
    boston_service,
    boston_stratified,
    cached_embeddings,
    data_raw,
    write_result,
)

UNASSIGNED = "__unassigned__"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_theme_model(texts: Sequence[str], emb: np.ndarray, seed: int = 42) -> dict[str, Any]:
    from analyzer.themes.model import ThemeModel

    t0, c0 = time.perf_counter(), _cpu()
    model = ThemeModel(seed=seed).fit(emb, list(texts))
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    top = [UNASSIGNED if t is None else t for t in model.labels_]
    sub = [UNASSIGNED if t is None else t for t in model.sublabels_]
    tops = [th for th in model.themes_ if th.level == 1]
    tops.sort(key=lambda th: (-th.size, th.theme_id))
    return {
        "model": "ThemeModel",
        "assign": top,
        "assign_sub": sub,
        "unassigned_share": model.unassigned_share_,
        "n_themes": model.n_themes_,
        "n_subthemes": model.n_subthemes_,
        "seconds": wall,
        "cpu_seconds": cpu,
        "timings": model.timings_,
        "top_labels": [(th.label, th.size) for th in tops[:15]],
    }


def run_bertopic(texts: Sequence[str], emb: np.ndarray, seed: int = 42) -> dict[str, Any]:
    from bertopic import BERTopic
    from umap import UMAP

    t0, c0 = time.perf_counter(), _cpu()
    umap_model = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed
    )
    topic_model = BERTopic(embedding_model=None, umap_model=umap_model)
    topics, _ = topic_model.fit_transform(list(texts), emb)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    topics = np.asarray(topics)
    info = topic_model.get_topic_info()
    info = info[info["Topic"] != -1].sort_values(["Count", "Topic"], ascending=[False, True])
    return {
        "model": "BERTopic (defaults)",
        "assign": [UNASSIGNED if t == -1 else int(t) for t in topics],
        "assign_sub": None,
        "unassigned_share": float((topics == -1).mean()),
        "n_themes": len(set(topics.tolist()) - {-1}),
        "n_subthemes": 0,
        "seconds": wall,
        "cpu_seconds": cpu,
        "top_labels": [(str(r.Name), int(r.Count)) for r in info.head(15).itertuples()],
    }


def scores(result: dict[str, Any], truth: Sequence[str] | None) -> dict[str, Any]:
    row = {
        k: result[k]
        for k in ("model", "unassigned_share", "n_themes", "n_subthemes", "seconds", "cpu_seconds")
    }
    if truth is not None:
        pred = [str(a) for a in result["assign"]]
        row["nmi"] = normalized_mutual_info_score(truth, pred)
        row["ari"] = adjusted_rand_score(truth, pred)
        if result.get("assign_sub") is not None:
            row["nmi_subthemes"] = normalized_mutual_info_score(
                truth, [str(a) for a in result["assign_sub"]]
            )
    return row


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n== {title}")
    head = ["NMI", "ARI", "unassigned", "themes", "sub", "seconds", "cpu s"]
    widths = [6, 6, 10, 7, 5, 8, 7]
    print(f"{'model':<22} " + " ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for r in rows:
        nmi = f"{r['nmi']:.3f}" if "nmi" in r else "-"
        ari = f"{r['ari']:.3f}" if "ari" in r else "-"
        share, secs, cpu = r["unassigned_share"], r["seconds"], r["cpu_seconds"]
        print(
            f"{r['model']:<22} {nmi:>6} {ari:>6} {share:>10.1%} "
            f"{r['n_themes']:>7} {r['n_subthemes']:>5} {secs:>8.1f} {cpu:>7.1f}"
        )


def print_labels(results: list[dict[str, Any]]) -> None:
    for res in results:
        print(f"\n  15 largest themes, {res['model']}:")
        for label, size in res["top_labels"]:
            print(f"    {size:>6}  {label}")


def compare(
    name: str, texts: list[str], emb: np.ndarray, truth: list[str] | None, labels: bool
) -> dict[str, Any]:
    results = [run_theme_model(texts, emb), run_bertopic(texts, emb)]
    rows = [scores(r, truth) for r in results]
    print_table(f"{name}: {len(texts):,} texts", rows)
    if "nmi_subthemes" in rows[0]:
        print(f"  ThemeModel at the sub-theme level: NMI {rows[0]['nmi_subthemes']:.3f}")
    steps = ", ".join(f"{k} {v:.1f}" for k, v in results[0]["timings"].items())
    print(f"  ThemeModel steps (s): {steps}")
    if labels:
        print_labels(results)
    return {"rows": rows, "top_labels": {r["model"]: r["top_labels"] for r in results}}


def boston_mix_50k(seed: int = 0) -> pd.DataFrame:
    """10,000 texts of each Boston service (all of the 473 "Unsafe Dangerous Conditions")."""
    parts = []
    for service in BOSTON_FILES:
        df = boston_service(service, usecols=["service_request_id", "service_name", "description"])
        df = df[df["description"].fillna("").str.strip() != ""]
        parts.append(df.sample(n=min(10_000, len(df)), random_state=seed))
    return pd.concat(parts).sort_values("service_request_id").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="only the stratified 2,000")
    parser.add_argument("--mix", action="store_true", help="also the 50k five-service mix")
    args = parser.parse_args(argv)
    if data_raw() is None:
        print("[themes] skipped: ../shared/data_raw is absent")
        return 0
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out: dict[str, Any] = {}

    df = boston_stratified()
    texts = df["description"].tolist()
    emb = cached_embeddings("boston-strat", texts)
    out["stratified_2000"] = compare(
        "(a) Boston stratified sample", texts, emb, df["service_name"].tolist(), labels=True
    )

    if not args.quick:
        other = boston_other_50k()
        texts = other["description"].tolist()
        emb = cached_embeddings("boston-other-50k", texts)
        out["other_50k"] = compare('(b) Boston "Other"', texts, emb, None, labels=True)
    if args.mix:
        mix = boston_mix_50k()
        texts = mix["description"].tolist()
        emb = cached_embeddings("boston-mix-50k", texts)
        out["mix_50k"] = compare(
            "(c) Boston five-service mix", texts, emb, mix["service_name"].tolist(), labels=False
        )
    print(
        "\nNMI and ARI count unassigned texts (BERTopic's outliers) as one more cluster. "
        "BERTopic's UMAP is seeded (random_state=42) so that runs repeat."
    )
    write_result("themes", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
