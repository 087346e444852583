"""What both taggers (``analyzer.tagging.supervised``) share: calibration and precision measures, the
threshold that routes unsure tags to review, time-aware splits, embedding helpers and the rows
``predict_detailed`` returns."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.embedding.embedder import Embedder


TAGGER_KIND = "tagger"
ZERO_SHOT_KIND = "zero-shot-tagger"
# A threshold above every possible confidence: nothing is auto-accepted. Kept finite so the bundle's
# JSON stays standard.
NEVER_ACCEPT = 1.000001

Extra = pd.DataFrame | Mapping[str, Sequence[Any]] | None


# -- shared measures ---------------------------------------------------------------------------


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: sum over equal-width bins of |accuracy - confidence| x share.

    ``y_true`` holds class indices into the columns of ``proba``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true)
    # Right-closed bins so that a confidence of exactly 1.0 falls in the last bin.
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


PRECISION_BOUNDS = ("clopper-pearson", "wilson", "none")


def precision_lower_bound(
    n_correct: np.ndarray | int,
    n: np.ndarray | int,
    *,
    method: str = "clopper-pearson",
    confidence_level: float = 0.95,
) -> np.ndarray:
    """One-sided lower confidence bound on a precision measured as ``n_correct`` of ``n``.

    ``method``: "clopper-pearson" (exact binomial, never below its level), "wilson" (score
    interval, a little less conservative) or "none" (the point estimate ``n_correct / n``).
    """
    k = np.asarray(n_correct, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = np.where(n_arr > 0, k / np.maximum(n_arr, 1), 0.0)
    if method == "none":
        return point
    alpha = 1.0 - confidence_level
    if method == "clopper-pearson":
        from scipy.stats import beta

        lb = beta.ppf(alpha, np.maximum(k, 1e-12), n_arr - k + 1)
        return np.where((k > 0) & (n_arr > 0), lb, 0.0)
    if method == "wilson":
        from scipy.stats import norm

        z = float(norm.ppf(confidence_level))
        n_safe = np.maximum(n_arr, 1)
        centre = point + z * z / (2 * n_safe)
        spread = z * np.sqrt(point * (1 - point) / n_safe + z * z / (4 * n_safe * n_safe))
        return np.where(n_arr > 0, (centre - spread) / (1 + z * z / n_safe), 0.0)
    raise ValueError(f"unknown precision bound {method!r} (one of {', '.join(PRECISION_BOUNDS)})")


def choose_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    target_precision: float = 0.95,
    *,
    bound: str = "clopper-pearson",
    confidence_level: float = 0.95,
) -> float:
    """The lowest confidence threshold whose auto-accepted set (confidence >= t) reaches the target.

    Rows are accepted from the most confident down; the threshold keeps the largest such set whose
    precision, or with ``bound`` its one-sided lower confidence bound at ``confidence_level``
    (see ``precision_lower_bound``), is at least ``target_precision``. The bound is what makes the
    choice carry to later data: a point estimate of exactly the target on a few hundred validation
    rows is below it about half the time. Returns ``NEVER_ACCEPT`` when no set reaches it.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        return NEVER_ACCEPT
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    n_correct = np.cumsum(correct[order])
    lower = precision_lower_bound(
        n_correct,
        np.arange(1, len(order) + 1),
        method=bound,
        confidence_level=confidence_level,
    )
    # A threshold can only sit at the end of a run of tied confidences: ties are accepted together.
    last_of_tie = np.r_[conf_sorted[1:] < conf_sorted[:-1], True]
    # Scores are rounded to float precision first, so a bound of exactly the target is not lost.
    ok = np.flatnonzero(last_of_tie & (lower >= target_precision - 1e-12))
    if len(ok) == 0:
        return NEVER_ACCEPT
    return float(conf_sorted[ok[-1]])


def rows_to_accept(
    confidence: np.ndarray,
    correct: np.ndarray,
    target_precision: float = 0.95,
    *,
    bound: str = "clopper-pearson",
    confidence_level: float = 0.95,
    min_rows: int = 10,
) -> int | None:
    """When ``choose_threshold`` can accept nothing: about how many validated rows would let it.

    For each top-confidence share of the rows (the most confident 10, 20, ... rows) whose observed
    precision is above the target, the smallest set at that precision whose lower bound reaches
    the target gives the validated rows needed (that set divided by the share); the least of them
    is returned. ``None`` when no such share is above the target: then more history of the same
    kind is not enough (the model's most confident answers are not right often enough).
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    n = len(confidence)
    if n < min_rows:
        return None
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    best: int | None = None
    for k in np.unique(np.geomspace(min_rows, n, 40).astype(int)):
        p = hits[k - 1] / k
        if p <= target_precision:
            continue
        share = k / n
        # the smallest m whose lower bound at precision p reaches the target (doubling, then bisect)
        lo, hi = k, k
        while (
            precision_lower_bound(
                np.floor(p * hi), hi, method=bound, confidence_level=confidence_level
            )
            < target_precision
        ):
            lo, hi = hi, hi * 2
            if hi > 10_000_000:
                break
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                ok = precision_lower_bound(
                    np.floor(p * mid), mid, method=bound, confidence_level=confidence_level
                )
                if ok >= target_precision:
                    hi = mid
                else:
                    lo = mid + 1
            need = int(np.ceil(hi / share))
            best = need if best is None else min(best, need)
    return best


def training_data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the (text, label) pairs in order: which data a bundle was trained on."""
    h = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        h.update(str(text).encode("utf-8"))
        h.update(b"\x1f")
        h.update(str(label).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def time_split(
    labels: Sequence[str],
    times: Sequence[Any] | pd.Series,
    quantile: float = 0.8,
    *,
    per_label: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (past, later): within each label, rows before its ``quantile`` of time are past
    (``per_label=False``: rows before the ``quantile`` of all the times, as requests came).

    Why per label for histories joined from per-service extracts: services do not cover the same years (in Boston "Other" has a gap from 2019-04 to
    2020-03 and "Unsafe Dangerous Conditions" exists only from 2019-10 to 2020-02), so one cut date
    for all leaves some label with no later rows or no past rows. Cutting each label at its own
    quantile keeps every label on both sides, and the later rows strictly later than that label's
    past: the drift (new templates, new wording) a deployed tagger meets.
    """
    t = pd.to_datetime(pd.Series(list(times)), utc=True)
    if not per_label:
        past = (t < t.quantile(quantile)).to_numpy().copy()
        return past, ~past
    lab = pd.Series([str(x) for x in labels])
    past = np.zeros(len(lab), dtype=bool)
    for _, idx in lab.groupby(lab).groups.items():
        ti = t.loc[idx]
        past[np.asarray(idx)[np.asarray(ti < ti.quantile(quantile))]] = True
    return past, ~past


def time_position(labels: Sequence[str], times: Sequence[Any] | pd.Series) -> np.ndarray:
    """Each row's place in its own label's time order, in [0, 1): the share of that label's rows
    filed before it (per label for the reason ``time_split`` gives)."""
    t = pd.to_datetime(pd.Series(list(times)), utc=True)
    if t.isna().any():
        raise InputError(f"time is missing or not a date/time in row {int(t.isna().argmax()) + 1}")
    lab = pd.Series([str(x) for x in labels])
    rank = t.groupby(lab).rank(method="first").to_numpy() - 1.0
    count = lab.map(lab.value_counts()).to_numpy(dtype=np.float64)
    return rank / count


def time_ordered_folds(
    labels: Sequence[str],
    times: Sequence[Any] | pd.Series,
    n_folds: int = 2,
    window: float = 0.2,
    *,
    per_label: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin validation: (past, next) masks, each next window later than its past.

    Fold k (1..n_folds) trains on the rows before the ``1 - k * window`` time quantile and
    validates on the ``window`` that follows, so every validated row is later than everything its
    model saw, as a deployed tagger's requests are. Latest window first.

    By default the quantiles are over all rows, in the order requests arrived: a category the city
    renamed or opened in the validation window counts against the model there, as it will after
    deployment (on Gainesville's export, windows cut per label let the review threshold promise
    0.95 and deliver 0.82 on the later requests; ``benchmarks.cities``). ``per_label=True`` cuts
    each label's rows at its own quantiles (``time_position``), for histories assembled from
    separate per-service extracts that cover different years.
    """
    if per_label:
        pos = time_position(labels, times)
    else:
        t = pd.to_datetime(pd.Series(list(times)), utc=True)
        if t.isna().any():
            raise InputError(
                f"time is missing or not a date/time in row {int(t.isna().argmax()) + 1}"
            )
        pos = (t.rank(method="first").to_numpy() - 1.0) / max(len(t), 1)
    folds = []
    for k in range(1, n_folds + 1):
        cut = 1.0 - k * window
        if cut <= 0:
            break
        folds.append((pos < cut, (pos >= cut) & (pos < cut + window)))
    return folds


def fit_temperature(scores: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Temperature T minimising the log loss of softmax(scores / T); a scalar keeps the ranking."""
    idx = np.arange(len(y))
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)

    def nll(log_t: float) -> float:
        p = softmax(scores / math.exp(log_t))
        return float(-(w * np.log(np.clip(p[idx, y], 1e-12, None))).sum() / w.sum())

    res = minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded")
    return float(math.exp(res.x))


def as_texts(texts: Sequence[str] | pd.Series) -> list[str]:
    return ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t) for t in texts]


def embed_texts(texts: list[str], model: str | None, backend: str) -> tuple[np.ndarray, Embedder]:
    from analyzer.embedding.embedder import get_embedder

    embedder = get_embedder(model or None, backend=backend)
    return embedder.embed(texts), embedder


def check_embeddings(embeddings: np.ndarray | None, n: int) -> np.ndarray | None:
    if embeddings is None:
        return None
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(f"embeddings have shape {emb.shape}; expected ({n}, dim)")
    return emb


def base_model_id(model_id: str) -> str:
    # "…@53aa5117+onnx" and "…@53aa5117" are the same weights run by different backends.
    return model_id.split("+", 1)[0]


def detailed_rows(
    proba: np.ndarray,
    classes: np.ndarray,
    review_score: np.ndarray,
    threshold: float,
    novel: np.ndarray,
    top_k: int,
    blank: np.ndarray,
) -> list[dict[str, Any]]:
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    rows = []
    for i in range(len(proba)):
        best = order[i, 0]
        rows.append(
            {
                "predicted_label": str(classes[best]),
                "confidence": float(proba[i, best]),
                # An empty text says nothing: a person decides, whatever the scores are.
                "needs_review": bool(review_score[i] < threshold or blank[i]),
                "alternatives": [
                    {"label": str(classes[j]), "probability": round(float(proba[i, j]), 4)}
                    for j in order[i]
                ],
                "possible_new_category": bool(novel[i]),
            }
        )
    return rows


def class_centroids(emb: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    cents = np.zeros((n_classes, emb.shape[1]), dtype=np.float32)
    for k in range(n_classes):
        c = emb[y == k].mean(axis=0)
        cents[k] = c / (np.linalg.norm(c) or 1.0)
    return cents
