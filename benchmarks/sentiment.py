"""Sentiment benchmark: the shipped model against VADER and embeddings + logistic regression.

TweetEval sentiment (SemEval-2017 4A), official metric macro-averaged recall on the 12,284-tweet
test split. Everything trained here or shipped was trained on the 2,000-tweet validation split
only; the test split is read for scoring and nothing else. In one process, on the same texts and
the same cached MiniLM embeddings:

- VADER 3.3.2 with its standard rule (compound >= 0.05 positive, <= -0.05 negative);
- logistic regression on the embeddings alone (class_weight="balanced"), trained on val;
- ``analyzer.sentiment.model.load_default()``: the shipped models/sentiment bundle.

The same shipped model is also scored on the test tweets embedded by the onnx and openvino
backends (the pipeline's faster embedders), so the figure holds for whichever backend is configured.

Then 160 hand-labelled resident texts (benchmarks/data/civic_sentiment_check.csv, labelling rules in
benchmarks/data/README.md): macro recall of the shipped model beside VADER on city text.

Then the shipped model on the Austin community survey comments (data_samples), to show it is
sensible on city text: label shares, VADER's shares with and without lower-casing ALL-CAPS
comments, and three random examples per label.

    nice python -m benchmarks.sentiment   # prints, writes benchmarks/results/sentiment.json

texts/s counts the classifier given embeddings (the pipeline embeds once for every step); the
embedding throughput is measured separately on 512 test tweets so the end-to-end rate can be read.
Exits 0 with a "skipped" line when ../shared/data_raw is absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from analyzer.sentiment.lexicon import lower_if_mostly_caps, preprocess, vader_labels
from analyzer.sentiment.model import LABELS, load_default
from benchmarks.common import ROOT, cached_embeddings, data_raw, tweeteval, write_result

OTHER_BACKENDS = ("onnx", "openvino", "openvino-int8", "openvino-int8-static")
CIVIC_CHECK = ROOT / "benchmarks" / "data" / "civic_sentiment_check.csv"


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    per_class = recall_score(y_true, y_pred, labels=list(LABELS), average=None)
    return {
        "macro_recall": float(recall_score(y_true, y_pred, average="macro")),
        "macro_recall_ci95": macro_recall_ci(y_true, y_pred),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "recall_per_class": {lab: float(r) for lab, r in zip(LABELS, per_class, strict=True)},
    }


def macro_recall_ci(
    y_true: np.ndarray, y_pred: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of macro recall over tweets (how much the test split alone wobbles)."""
    rng = np.random.default_rng(seed)
    t = np.searchsorted(LABELS, y_true)  # LABELS is sorted, so this maps names to 0..2
    p = np.searchsorted(LABELS, y_pred)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        conf = np.bincount(t[idx] * 3 + p[idx], minlength=9).reshape(3, 3)
        stats[b] = np.mean(np.diag(conf) / np.maximum(conf.sum(axis=1), 1))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def timed(fn: Callable[[], np.ndarray], n: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, n / max(time.perf_counter() - t0, 1e-9)


def tweeteval_section() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    val_texts, val_y = tweeteval("val")
    test_texts, test_y = tweeteval("test")
    val_emb = cached_embeddings("tweeteval-val", val_texts)
    test_emb = cached_embeddings("tweeteval-test", test_texts)
    names = np.array(LABELS)
    y_true = names[test_y]
    n = len(test_texts)

    results: dict[str, dict[str, Any]] = {}
    pred, rate = timed(lambda: vader_labels(test_texts), n)
    results["VADER (compound ±0.05)"] = {**metrics(y_true, pred), "texts_per_s": rate}

    # Balanced class weights: the fair baseline for a macro-recall metric (without them: 0.615).
    baseline = LogisticRegression(class_weight="balanced", max_iter=3000).fit(val_emb, val_y)
    pred, rate = timed(lambda: names[baseline.predict(test_emb)], n)
    results["LR on MiniLM embeddings (val, balanced)"] = {
        **metrics(y_true, pred),
        "texts_per_s": rate,
    }

    model = load_default()
    pred, rate = timed(lambda: model.predict(test_texts, test_emb), n)
    results[f"CivicPulse {model.model_id}"] = {**metrics(y_true, pred), "texts_per_s": rate}

    # The model was trained on the reference (torch) vectors; the pipeline may embed with a faster
    # backend (analyzer.embedding.embedder BACKENDS), whose vectors differ slightly: score the same model on them.
    for backend in OTHER_BACKENDS:
        try:
            emb = cached_embeddings("tweeteval-test", test_texts, backend=backend)
        except Exception as exc:  # a backend that cannot load here is reported, not fatal
            print(f"[sentiment] {backend} embeddings skipped: {type(exc).__name__}: {exc}")
            continue
        pred, rate = timed(lambda e=emb: model.predict(test_texts, e), n)
        results[f"CivicPulse, {backend} embeddings"] = {
            **metrics(y_true, pred),
            "texts_per_s": rate,
        }

    from analyzer.embedding.embedder import get_embedder

    sample = [preprocess(t) for t in test_texts[:512]]
    embedder = get_embedder()
    embedder.encode_unique(sample[:8])  # load the weights outside the timing
    _, embed_rate = timed(lambda: embedder.encode_unique(sample), len(sample))

    print(f"\nTweetEval sentiment test: {n:,} tweets (trained on val: {len(val_texts):,})")
    header = f"{'system':<42} {'macroR':>7} {'95% CI':>13} {'macroF1':>7} {'acc':>6}  {'R neg':>6} "
    header += f"{'R neu':>6} "
    print(header + f"{'R pos':>6} {'texts/s':>9}")
    for name, r in results.items():
        pc = r["recall_per_class"]
        print(
            f"{name:<42} {r['macro_recall']:7.4f} "
            f"{'{:.3f}-{:.3f}'.format(*r['macro_recall_ci95']):>13} "
            f"{r['macro_f1']:7.4f} {r['accuracy']:6.4f}  "
            f"{pc['negative']:6.3f} {pc['neutral']:6.3f} {pc['positive']:6.3f} "
            f"{r['texts_per_s']:9.0f}"
        )
    print(f"(MiniLM embedding itself: {embed_rate:.0f} texts/s on this machine, 512 tweets)")
    return {
        "test_rows": n,
        "train_rows": len(val_texts),
        "systems": results,
        "embedding_texts_per_s": embed_rate,
        "model_manifest_metrics": model.metadata_.get("metrics"),
    }


def civic_section() -> dict[str, Any]:
    """Macro recall on 160 hand-labelled resident texts (benchmarks/data/README.md), beside VADER."""
    df = pd.read_csv(CIVIC_CHECK, dtype=str)
    texts = df["text"].tolist()
    y_true = df["label"].to_numpy()
    model = load_default()
    emb = cached_embeddings("civic-check", texts)
    systems = {
        "VADER (compound ±0.05)": vader_labels(texts),
        "VADER, ALL-CAPS lower-cased": vader_labels(texts, uncap=True),
        f"CivicPulse {model.model_id}": model.predict(texts, emb),
    }
    out: dict[str, Any] = {
        "file": str(CIVIC_CHECK.relative_to(ROOT)),
        "rows": len(texts),
        "label_counts": {lab: int((y_true == lab).sum()) for lab in LABELS},
        "systems": {},
    }
    print(f"\nHand-labelled civic texts ({out['file']}: {len(texts)} texts, "
          + ", ".join(f"{v} {k}" for k, v in out["label_counts"].items()) + ")")  # fmt: skip
    print(f"{'system':<42} {'macroR':>7} {'95% CI':>13} {'acc':>6}  {'R neg':>6} {'R neu':>6} "
          f"{'R pos':>6}")  # fmt: skip
    for name, pred in systems.items():
        r = metrics(y_true, pred)
        r["by_source"] = {
            src: float(
                np.mean(pred[(df["source"] == src).to_numpy()] == y_true[df["source"] == src])
            )
            for src in sorted(df["source"].unique())
        }  # accuracy per source
        out["systems"][name] = r
        pc = r["recall_per_class"]
        print(
            f"{name:<42} {r['macro_recall']:7.4f} "
            f"{'{:.3f}-{:.3f}'.format(*r['macro_recall_ci95']):>13} {r['accuracy']:6.4f}  "
            f"{pc['negative']:6.3f} {pc['neutral']:6.3f} {pc['positive']:6.3f}"
        )
    return out


def austin_section(examples: int = 3, seed: int = 0) -> dict[str, Any]:
    path = ROOT / "data_samples" / "austin_survey_comments.csv"
    if not path.is_file():
        raw = data_raw()
        if raw is None:
            print("[austin] skipped: no survey comments found")
            return {}
        path = raw / "austin_community_survey" / "austin_community_survey_comments_2016_2017.csv"
    df = pd.read_csv(path)
    texts = df["comment"].fillna("").astype(str).tolist()
    emb = cached_embeddings("austin-survey", texts)
    model = load_default()
    labels, scores = model.predict_with_score(texts, emb)
    caps = np.array([lower_if_mostly_caps(t) != t for t in texts])
    vader_raw = vader_labels(texts)
    vader_low = vader_labels(texts, uncap=True)

    def shares(lab: np.ndarray) -> dict[str, float]:
        return {k: float(np.mean(lab == k)) if len(lab) else 0.0 for k in LABELS}

    out: dict[str, Any] = {
        "file": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name),
        "rows": len(texts),
        "all_caps_share": float(caps.mean()),
        "model_shares": shares(labels),
        "model_shares_all_caps": shares(labels[caps]),
        "model_shares_other": shares(labels[~caps]),
        "vader_shares": shares(vader_raw),
        "vader_lowercased_caps_shares": shares(vader_low),
        "vader_changed_by_lowercasing_caps": int((vader_raw != vader_low).sum()),
        "agreement_with_vader": float(np.mean(labels == vader_raw)),
        "mean_score": float(scores.mean()),
        "examples": {},
    }
    print(f"\nAustin survey comments ({out['file']}, {len(texts):,} rows, "
          f"{out['all_caps_share']:.0%} mostly upper case)")  # fmt: skip
    print(f"{'':<34} {'negative':>9} {'neutral':>9} {'positive':>9}")
    for name, key in (
        ("CivicPulse", "model_shares"),
        ("CivicPulse, ALL-CAPS comments", "model_shares_all_caps"),
        ("CivicPulse, other comments", "model_shares_other"),
        ("VADER as written", "vader_shares"),
        ("VADER, ALL-CAPS lower-cased", "vader_lowercased_caps_shares"),
    ):
        s = out[key]
        print(f"{name:<34} {s['negative']:9.1%} {s['neutral']:9.1%} {s['positive']:9.1%}")
    print(
        f"lower-casing ALL-CAPS comments changes VADER's label on "
        f"{out['vader_changed_by_lowercasing_caps']} comments; "
        f"CivicPulse agrees with VADER on {out['agreement_with_vader']:.1%}"
    )
    rng = np.random.default_rng(seed)
    for lab in LABELS:
        idx = np.flatnonzero(labels == lab)
        pick = rng.choice(idx, size=min(examples, len(idx)), replace=False) if len(idx) else []
        out["examples"][lab] = []
        print(f"\n  {lab}:")
        for i in sorted(pick):
            text = " ".join(texts[i].split())
            short = text if len(text) <= 160 else text[:157] + "..."
            out["examples"][lab].append({"row": int(i), "score": float(scores[i]), "text": short})
            print(f"   {scores[i]:+.2f}  {short}")
    return out


def main() -> int:
    if data_raw() is None:
        print("[sentiment] skipped: ../shared/data_raw is absent")
        return 0
    payload = {
        "tweeteval": tweeteval_section(),
        "civic_check": civic_section(),
        "austin_survey": austin_section(),
    }
    write_result("sentiment", payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
