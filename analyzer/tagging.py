"""Tag incoming requests with the city's service categories, say how sure, route the unsure ones.

Two taggers with the same output:

- ``Tagger``: supervised, for a city with labelled history. One linear model (LinearSVC) over word
  TF-IDF, character TF-IDF and sentence embeddings side by side, its scores turned into
  probabilities by a temperature fitted on out-of-fold predictions.
- ``ZeroShotTagger``: for a city with no history. Categories are names and descriptions (an Open311
  services list, say), matched to requests by embedding similarity.

Both give ``predict_detailed`` rows: predicted_label, confidence, needs_review, alternatives (top
three labels with probabilities), possible_new_category. ``needs_review`` is set when the confidence
(the similarity margin for zero-shot) is below a threshold chosen on validation data so that
auto-accepted tags reach a target precision. Both save to and load from model bundles
(``analyzer.bundle``: NumPy arrays and JSON with a manifest of sha256 digests; never a pickle).

Feedback: ``record_correction`` stores a (redacted) text with its right label; ``retrain`` fits a
new Tagger on the history plus the stored corrections, which weigh more than a history row.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from analyzer.bundle import load_bundle, save_bundle
from analyzer.errors import InputError, ModelBundleError
from analyzer.tfidf_fast import FastTfidf

if TYPE_CHECKING:
    from analyzer.embed import Embedder
    from analyzer.store import Store

__all__ = [
    "Tagger",
    "ZeroShotTagger",
    "choose_threshold",
    "class_centroids",
    "expected_calibration_error",
    "load_corrections",
    "load_tagger",
    "precision_lower_bound",
    "record_correction",
    "retrain",
    "time_ordered_folds",
    "time_split",
    "training_data_hash",
]

log = logging.getLogger(__name__)

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
    labels: Sequence[str], times: Sequence[Any] | pd.Series, quantile: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (past, later): within each label, rows before its ``quantile`` of time are past.

    Why per label: services do not cover the same years (in Boston "Other" has a gap from 2019-04 to
    2020-03 and "Unsafe Dangerous Conditions" exists only from 2019-10 to 2020-02), so one cut date
    for all leaves some label with no later rows or no past rows. Cutting each label at its own
    quantile keeps every label on both sides, and the later rows strictly later than that label's
    past: the drift (new templates, new wording) a deployed tagger meets.
    """
    t = pd.to_datetime(pd.Series(list(times)), utc=True)
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
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin validation: (past, next) masks, each next window later than its past.

    Fold k (1..n_folds) trains on each label's rows before its ``1 - k * window`` time quantile and
    validates on the ``window`` that follows, so every validated row is later than everything its
    model saw, as a deployed tagger's requests are. Latest window first.
    """
    pos = time_position(labels, times)
    folds = []
    for k in range(1, n_folds + 1):
        cut = 1.0 - k * window
        if cut <= 0:
            break
        folds.append((pos < cut, (pos >= cut) & (pos < cut + window)))
    return folds


def _fit_temperature(scores: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Temperature T minimising the log loss of softmax(scores / T); a scalar keeps the ranking."""
    idx = np.arange(len(y))
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)

    def nll(log_t: float) -> float:
        p = softmax(scores / math.exp(log_t))
        return float(-(w * np.log(np.clip(p[idx, y], 1e-12, None))).sum() / w.sum())

    res = minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded")
    return float(math.exp(res.x))


def _as_texts(texts: Sequence[str] | pd.Series) -> list[str]:
    return ["" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t) for t in texts]


def _embed(texts: list[str], model: str | None, backend: str) -> tuple[np.ndarray, Embedder]:
    from analyzer.embed import get_embedder

    embedder = get_embedder(model or None, backend=backend)
    return embedder.embed(texts), embedder


def _check_embeddings(embeddings: np.ndarray | None, n: int) -> np.ndarray | None:
    if embeddings is None:
        return None
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(f"embeddings have shape {emb.shape}; expected ({n}, dim)")
    return emb


def _base_model_id(model_id: str) -> str:
    # "…@53aa5117+onnx" and "…@53aa5117" are the same weights run by different backends.
    return model_id.split("+", 1)[0]


def _detailed_rows(
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


# -- supervised tagger -------------------------------------------------------------------------


class Tagger:
    """Supervised tagger: word + char TF-IDF + embeddings in one calibrated linear model.

    Parameters
    ----------
    word_max_features, char_max_features:
        Vocabulary caps; they also bound the bundle's size (weights are classes x features).
    char_ngram_range:
        Character n-grams (within word boundaries) catch misspellings and templated fields.
    embedding_weight:
        Scale of the (unit-norm) embedding block against the (unit-norm) TF-IDF blocks.
    C:
        LinearSVC regularisation.
    calibration_folds:
        Folds for the out-of-fold scores that fit the temperature, the review threshold and the
        reported cross-validated metrics when ``fit`` is given no times.
    time_folds, time_window:
        With ``fit(..., times=...)`` validation is time-ordered instead (``time_ordered_folds``):
        ``time_folds`` models, each trained on the past and scored on the next ``time_window``
        share of every label's history. Shuffled folds validate on rows from the same years the
        model trained on, and a threshold chosen there lets precision fall on later requests.
    target_precision:
        Precision that auto-accepted tags must reach on validation data.
    precision_bound, bound_confidence:
        The review threshold is the lowest whose validation precision has a one-sided
        ``bound_confidence`` lower bound ("clopper-pearson", "wilson"; "none": the point
        estimate) of at least ``target_precision`` (``choose_threshold``).
    novelty_quantile:
        Share of training rows that must stay inside the "known categories" region; a request whose
        cosine distance to the nearest class centroid exceeds that quantile is flagged.
    embed_model, embed_backend:
        Which embedder (see ``analyzer.embed.get_embedder``); "" is the packaged MiniLM.
    extra_weight:
        Scale of the one-hot block for extra categorical fields (channel, area...).

    Defaults were chosen on the training period of the Boston time split (benchmarks/tagging.py).
    """

    def __init__(
        self,
        *,
        word_max_features: int = 30_000,
        char_max_features: int = 30_000,
        char_ngram_range: tuple[int, int] = (1, 4),
        embedding_weight: float = 0.8,
        C: float = 0.3,
        calibration_folds: int = 5,
        time_folds: int = 2,
        time_window: float = 0.2,
        target_precision: float = 0.95,
        precision_bound: str = "clopper-pearson",
        bound_confidence: float = 0.95,
        novelty_quantile: float = 0.99,
        embed_model: str = "",
        embed_backend: str = "torch",
        extra_weight: float = 0.5,
        random_state: int = 42,
    ) -> None:
        self.word_max_features = word_max_features
        self.char_max_features = char_max_features
        self.char_ngram_range = tuple(char_ngram_range)
        self.embedding_weight = embedding_weight
        self.C = C
        self.calibration_folds = calibration_folds
        self.time_folds = time_folds
        self.time_window = time_window
        self.target_precision = target_precision
        self.precision_bound = precision_bound
        self.bound_confidence = bound_confidence
        self.novelty_quantile = novelty_quantile
        self.embed_model = embed_model
        self.embed_backend = embed_backend
        self.extra_weight = extra_weight
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "word_max_features": self.word_max_features,
            "char_max_features": self.char_max_features,
            "char_ngram_range": list(self.char_ngram_range),
            "embedding_weight": self.embedding_weight,
            "C": self.C,
            "calibration_folds": self.calibration_folds,
            "time_folds": self.time_folds,
            "time_window": self.time_window,
            "target_precision": self.target_precision,
            "precision_bound": self.precision_bound,
            "bound_confidence": self.bound_confidence,
            "novelty_quantile": self.novelty_quantile,
            "embed_model": self.embed_model,
            "embed_backend": self.embed_backend,
            "extra_weight": self.extra_weight,
            "random_state": self.random_state,
        }

    def _new_vectorizers(self) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        word = TfidfVectorizer(
            ngram_range=(1, 2),
            min_df=2,
            sublinear_tf=True,
            max_features=self.word_max_features,
            dtype=np.float32,
        )
        char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.char_ngram_range,
            min_df=2,
            sublinear_tf=True,
            max_features=self.char_max_features,
            dtype=np.float32,
        )
        return word, char

    # -- features ------------------------------------------------------------------------------
    def _extra_tokens(self, extra: Extra, n: int) -> list[list[str]]:
        if extra is None:
            return [[] for _ in range(n)]
        frame = extra if isinstance(extra, pd.DataFrame) else pd.DataFrame(dict(extra))
        if len(frame) != n:
            raise ValueError(f"extra has {len(frame)} rows; expected {n}")
        cols = list(frame.columns)
        values = frame.astype("string").fillna("").to_numpy()
        return [[f"{c}={v}" for c, v in zip(cols, row, strict=True) if v != ""] for row in values]

    def _extra_matrix(self, extra: Extra, n: int) -> sp.csr_matrix:
        index = self.extra_index_
        if not index:
            return sp.csr_matrix((n, 0), dtype=np.float32)
        if extra is None:
            raise InputError(
                "this model was trained with extra fields "
                f"{self.extra_columns_}; pass them (missing: all)"
            )
        frame = extra if isinstance(extra, pd.DataFrame) else pd.DataFrame(dict(extra))
        missing = [c for c in self.extra_columns_ if c not in frame.columns]
        if missing:
            raise InputError(f"this model needs the extra fields {missing}")
        tokens = self._extra_tokens(frame[self.extra_columns_], n)
        rows, cols = [], []
        for i, toks in enumerate(tokens):
            for t in toks:
                j = index.get(t)
                if j is not None:  # values unseen in training carry no weight
                    rows.append(i)
                    cols.append(j)
        scale = self.extra_weight / math.sqrt(max(len(self.extra_columns_), 1))
        data = np.full(len(rows), scale, dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(n, len(index)))

    def _tfidf(self, vectorizer: Any, texts: list[str]) -> sp.csr_matrix:
        """``vectorizer.transform(texts)``, by ``FastTfidf`` where it reproduces the vectorizer
        (the same matrix, 2-3x faster on micro-batches); built once per fitted vectorizer."""
        cache = self.__dict__.setdefault("_fast_tfidf", {})  # analyzer -> (vectorizer, fast)
        entry = cache.get(vectorizer.analyzer)
        if entry is None or entry[0] is not vectorizer:  # first use, or re-fitted since
            fast = FastTfidf(vectorizer) if FastTfidf.supports(vectorizer) else None
            cache[vectorizer.analyzer] = entry = (vectorizer, fast)
        return entry[1].transform(texts) if entry[1] is not None else vectorizer.transform(texts)

    def _features(self, texts: list[str], extra: Extra, embeddings: np.ndarray) -> sp.csr_matrix:
        blocks = [
            self._tfidf(self.word_vectorizer_, texts),
            self._tfidf(self.char_vectorizer_, texts),
            sp.csr_matrix(embeddings * np.float32(self.embedding_weight)),
            self._extra_matrix(extra, len(texts)),
        ]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def _embeddings_for(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        emb = _check_embeddings(embeddings, len(texts))
        if emb is not None:
            if not hasattr(self, "embedding_model_id_"):
                # Given embeddings are taken to come from the configured embedder; record which,
                # without loading its weights (the Embedder loads lazily).
                from analyzer.embed import get_embedder

                embedder = get_embedder(self.embed_model or None, backend=self.embed_backend)
                self.embedding_model_id_ = embedder.model_id
                self.embedding_sha256_ = embedder.weights_sha256_
            return emb
        emb, embedder = _embed(texts, self.embed_model, self.embed_backend)
        expected = getattr(self, "embedding_model_id_", None)
        if expected and _base_model_id(embedder.model_id) != _base_model_id(expected):
            raise ModelBundleError(
                f"model trained on embeddings from {expected}, but this run embeds with "
                f"{embedder.model_id}"
            )
        self.embedding_model_id_ = embedder.model_id
        self.embedding_sha256_ = embedder.weights_sha256_
        return emb

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        extra: Extra = None,
        embeddings: np.ndarray | None = None,
        sample_weight: Sequence[float] | None = None,
        times: Sequence[Any] | pd.Series | None = None,
    ) -> Tagger:
        """Fit on labelled history. ``embeddings`` (rows aligned with texts) skip embedding.

        ``times`` (when each row was filed) makes the validation that sets the temperature and the
        review threshold time-ordered (see ``time_folds``); without them it is shuffled k-fold.
        """
        texts = _as_texts(texts)
        labels_arr = np.asarray([str(x) for x in labels], dtype=object)
        n = len(texts)
        if n != len(labels_arr):
            raise InputError(f"{n} texts but {len(labels_arr)} labels")
        if times is not None and len(times) != n:
            raise InputError(f"{n} texts but {len(times)} times")
        if self.precision_bound not in PRECISION_BOUNDS:
            raise ValueError(f"precision_bound must be one of {PRECISION_BOUNDS}")
        weight = (
            np.ones(n, dtype=np.float64)
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        self.classes_, y = np.unique(labels_arr, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError("training needs at least two different labels")
        counts = np.bincount(y)
        if counts.min() < 2:
            rare = self.classes_[counts.argmin()]
            raise InputError(f"label {rare!r} has only one example; each label needs two or more")
        emb = self._embeddings_for(texts, embeddings)

        # Vectorizers and the extra-field vocabulary are fitted once on all texts: they see no
        # labels, so the out-of-fold scores below stay honest about the classifier.
        self.word_vectorizer_, self.char_vectorizer_ = self._new_vectorizers()
        self.word_vectorizer_.fit(texts)
        self.char_vectorizer_.fit(texts)
        if extra is not None:
            frame = extra if isinstance(extra, pd.DataFrame) else pd.DataFrame(dict(extra))
            self.extra_columns_ = [str(c) for c in frame.columns]
            vocab = sorted({t for toks in self._extra_tokens(frame, n) for t in toks})
            self.extra_index_ = {t: i for i, t in enumerate(vocab)}
        else:
            self.extra_columns_, self.extra_index_ = [], {}
        X = self._features(texts, extra, emb)

        validated = None if times is None else self._time_ordered_scores(X, y, weight, times)
        if validated is None:
            if times is not None:
                log.info("time-ordered validation impossible here; shuffled folds instead")
            rows = np.arange(n)
            scores = self._out_of_fold_scores(X, y, weight)
            how = f"{self._n_folds(counts)}-fold stratified out-of-fold"
        else:
            rows, scores, how = validated
        y_val, w_val = y[rows], weight[rows]
        self.temperature_ = _fit_temperature(scores, y_val, w_val)
        proba_before = softmax(scores)
        proba = softmax(scores / self.temperature_)
        conf = proba.max(axis=1)
        pred = proba.argmax(axis=1)
        correct = pred == y_val
        self.threshold_ = choose_threshold(
            conf,
            correct,
            self.target_precision,
            bound=self.precision_bound,
            confidence_level=self.bound_confidence,
        )
        accepted = conf >= self.threshold_
        n_acc = int(accepted.sum())
        self.metrics_ = {
            "validation": how,
            "macro_f1": float(f1_score(y_val, pred, average="macro")),
            "accuracy": float(accuracy_score(y_val, pred)),
            "ece_before": expected_calibration_error(proba_before, y_val),
            "ece_after": expected_calibration_error(proba, y_val),
            "temperature": self.temperature_,
            "review_threshold": self.threshold_,
            "target_precision": self.target_precision,
            "precision_bound": f"{self.precision_bound}, one-sided {self.bound_confidence:g}",
            "auto_accept_share": float(accepted.mean()),
            "auto_accept_precision": float(correct[accepted].mean()) if n_acc else None,
            "auto_accept_precision_lower_bound": float(
                precision_lower_bound(
                    int(correct[accepted].sum()),
                    n_acc,
                    method=self.precision_bound,
                    confidence_level=self.bound_confidence,
                )
            )
            if n_acc
            else None,
            "n_rows": n,
            "n_validation_rows": len(rows),
        }

        self._fit_linear(X, y, weight)
        self.centroids_ = class_centroids(emb, y, len(self.classes_))
        dist = 1.0 - (emb @ self.centroids_.T).max(axis=1)
        self.novelty_threshold_ = float(np.quantile(dist, self.novelty_quantile))
        self.n_features_ = X.shape[1]
        log.info(
            "tagger fitted: %d rows, %d classes, %d features, T=%.3f, review threshold %.3f",
            n,
            len(self.classes_),
            X.shape[1],
            self.temperature_,
            self.threshold_,
        )
        return self

    def _n_folds(self, counts: np.ndarray) -> int:
        return int(max(2, min(self.calibration_folds, counts.min())))

    def _new_svc(self) -> LinearSVC:
        return LinearSVC(C=self.C, random_state=self.random_state)

    def _time_ordered_scores(
        self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray, times: Sequence[Any] | pd.Series
    ) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(validated rows, their scores, description), or None when the history is too short.

        Each fold's model needs two labels with two rows in its past; a fold without them is left
        out, and with under 50 validated rows there is nothing to choose a threshold on.
        """
        labels = self.classes_[y]
        rows, parts = [], []
        for past, nxt in time_ordered_folds(labels, times, self.time_folds, self.time_window):
            present, counts = np.unique(y[past], return_counts=True)
            if len(present) < 2 or counts.min() < 2 or not nxt.any():
                continue
            model = self._new_svc().fit(X[past], y[past], sample_weight=w[past])
            idx = np.flatnonzero(nxt)
            rows.append(idx)
            parts.append(self._scores_of(model, X[idx], present=present))
        if not rows or sum(map(len, rows)) < 50:
            return None
        how = (
            f"time-ordered: {len(rows)} fold(s), each trained on the past and validated on the "
            f"next {self.time_window:.0%} of every label's history"
        )
        return np.concatenate(rows), np.vstack(parts), how

    def _out_of_fold_scores(self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        folds = StratifiedKFold(
            self._n_folds(np.bincount(y)), shuffle=True, random_state=self.random_state
        )
        oof = np.zeros((X.shape[0], len(self.classes_)), dtype=np.float64)
        for tr, va in folds.split(X, y):
            model = self._new_svc().fit(X[tr], y[tr], sample_weight=w[tr])
            oof[va] = self._scores_of(model, X[va], present=np.unique(y[tr]))
        return oof

    def _scores_of(self, model: LinearSVC, X: sp.csr_matrix, present: np.ndarray) -> np.ndarray:
        s = model.decision_function(X)
        if s.ndim == 1:  # binary LinearSVC returns one column: the positive class's margin
            s = np.c_[-s / 2, s / 2]
        out = np.full((X.shape[0], len(self.classes_)), -1e3)
        out[:, present] = s
        return out

    def _fit_linear(self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray) -> None:
        model = self._new_svc().fit(X, y, sample_weight=w)
        coef = np.asarray(model.coef_, dtype=np.float32)
        intercept = np.asarray(model.intercept_, dtype=np.float32)
        if coef.shape[0] == 1:  # store binary models as two rows so scoring is one matrix product
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.r_[-intercept / 2, intercept / 2]
        self.coef_ = coef
        self.intercept_ = intercept

    # -- prediction ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("Tagger is not fitted; call fit() or Tagger.load()")

    def decision_function(
        self, texts: Sequence[str], *, extra: Extra = None, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        self._check_fitted()
        texts = _as_texts(texts)
        emb = self._embeddings_for(texts, embeddings)
        return self._decision(texts, extra, emb)

    def _decision(self, texts: list[str], extra: Extra, emb: np.ndarray) -> np.ndarray:
        X = self._features(texts, extra, emb)
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        extra: Extra = None,
        embeddings: np.ndarray | None = None,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (``calibrated=False``: T = 1)."""
        scores = self.decision_function(texts, extra=extra, embeddings=embeddings)
        return softmax(scores / (self.temperature_ if calibrated else 1.0))

    def predict(
        self, texts: Sequence[str], *, extra: Extra = None, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        scores = self.decision_function(texts, extra=extra, embeddings=embeddings)
        return self.classes_[scores.argmax(axis=1)]

    def novelty_distance(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine distance from each embedding to the nearest class centroid."""
        return 1.0 - (np.asarray(embeddings, dtype=np.float32) @ self.centroids_.T).max(axis=1)

    def predict_detailed(
        self,
        texts: Sequence[str],
        *,
        extra: Extra = None,
        embeddings: np.ndarray | None = None,
        top_k: int = 3,
    ) -> list[dict[str, Any]]:
        """Per text: predicted_label, confidence, needs_review, alternatives, possible_new_category.

        ``alternatives`` lists the ``top_k`` most probable labels (the prediction first) with their
        calibrated probabilities.
        """
        self._check_fitted()
        texts = _as_texts(texts)
        emb = self._embeddings_for(texts, embeddings)
        proba = softmax(self._decision(texts, extra, emb) / self.temperature_)
        novel = self.novelty_distance(emb) > self.novelty_threshold_
        blank = np.array([not t.strip() for t in texts], dtype=bool)
        return _detailed_rows(
            proba, self.classes_, proba.max(axis=1), self.threshold_, novel, top_k, blank
        )

    # -- bundles -------------------------------------------------------------------------------
    def save(
        self,
        folder: str | Path,
        *,
        metrics: Mapping[str, Any] | None = None,
        training_data_hash: str | None = None,
        notes: str = "",
    ) -> Path:
        """Write a bundle: weights as .npy, vocabularies and parameters as JSON, and a manifest."""
        self._check_fitted()
        word_vocab = _vocab_list(self.word_vectorizer_)
        char_vocab = _vocab_list(self.char_vectorizer_)
        arrays = {
            "coef": self.coef_,
            "intercept": self.intercept_,
            "centroids": self.centroids_,
            "word_idf": self.word_vectorizer_.idf_.astype(np.float32),
            "char_idf": self.char_vectorizer_.idf_.astype(np.float32),
        }
        documents = {
            "params": self.get_params(),
            "state": {
                "classes": [str(c) for c in self.classes_],
                "temperature": self.temperature_,
                "review_threshold": self.threshold_,
                "novelty_threshold": self.novelty_threshold_,
                "extra_columns": self.extra_columns_,
                "extra_vocabulary": sorted(self.extra_index_, key=self.extra_index_.__getitem__),
                "n_features": int(self.n_features_),
            },
            "vocabulary": {"word": word_vocab, "char": char_vocab},
        }
        manifest = {
            "labels": [str(c) for c in self.classes_],
            "metrics": {"cross_validated": self.metrics_, **dict(metrics or {})},
            "training_data_hash": training_data_hash,
            "embedding_model_id": getattr(self, "embedding_model_id_", None),
            "embedding_sha256": getattr(self, "embedding_sha256_", None),
            "notes": notes,
        }
        return save_bundle(
            folder, kind=TAGGER_KIND, arrays=arrays, documents=documents, manifest=manifest
        )

    @classmethod
    def load(cls, folder: str | Path, *, embed_backend: str | None = None) -> Tagger:
        """Load a verified bundle; ``embed_backend`` overrides the backend (same weights)."""
        bundle = load_bundle(folder, kind=TAGGER_KIND)
        try:
            params = dict(bundle.document("params"))
            state = bundle.document("state")
            vocab = bundle.document("vocabulary")
            params["char_ngram_range"] = tuple(params["char_ngram_range"])
            if embed_backend:
                params["embed_backend"] = embed_backend
            tagger = cls(**params)
            tagger.classes_ = np.asarray(state["classes"], dtype=object)
            tagger.temperature_ = float(state["temperature"])
            tagger.threshold_ = float(state["review_threshold"])
            tagger.novelty_threshold_ = float(state["novelty_threshold"])
            tagger.extra_columns_ = list(state["extra_columns"])
            tagger.extra_index_ = {t: i for i, t in enumerate(state["extra_vocabulary"])}
            tagger.n_features_ = int(state["n_features"])
            word, char = tagger._new_vectorizers()
            tagger.word_vectorizer_ = _restore_vectorizer(
                word, vocab["word"], bundle.array("word_idf")
            )
            tagger.char_vectorizer_ = _restore_vectorizer(
                char, vocab["char"], bundle.array("char_idf")
            )
            tagger.coef_ = bundle.array("coef").astype(np.float32)
            tagger.intercept_ = bundle.array("intercept").astype(np.float32)
            tagger.centroids_ = bundle.array("centroids").astype(np.float32)
            tagger.metrics_ = bundle.manifest.get("metrics", {}).get("cross_validated", {})
            tagger.embedding_model_id_ = bundle.manifest.get("embedding_model_id")
            tagger.embedding_sha256_ = bundle.manifest.get("embedding_sha256")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelBundleError(f"incomplete tagger bundle: {exc}", file=str(folder)) from None
        expected = len(word.vocabulary) + len(char.vocabulary) + len(tagger.extra_index_)
        expected += tagger.centroids_.shape[1]
        if tagger.coef_.shape != (len(tagger.classes_), expected):
            raise ModelBundleError(
                f"weights have shape {tagger.coef_.shape}; "
                f"expected ({len(tagger.classes_)}, {expected})",
                file=str(folder),
            )
        return tagger


def _vocab_list(vec: TfidfVectorizer) -> list[str]:
    terms = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        terms[i] = term
    return terms


def _restore_vectorizer(vec: TfidfVectorizer, terms: list[str], idf: np.ndarray) -> TfidfVectorizer:
    # A fixed vocabulary plus the stored idf rebuild the fitted transform without pickling it.
    vec.set_params(vocabulary={t: i for i, t in enumerate(terms)}, max_features=None)
    vec.idf_ = np.asarray(idf, dtype=np.float64)
    return vec


# -- zero-shot tagger --------------------------------------------------------------------------


class ZeroShotTagger:
    """Tag by embedding similarity to category descriptions, for a city with no labelled history.

    ``categories``: dicts with ``name`` (or Open311's ``service_name``), ``description`` and
    optionally ``keywords`` (a string or list) and ``examples`` (texts whose embeddings join the
    description's).
    Probabilities are a softmax over cosine similarities divided by ``temperature``. A tag needs
    review when the margin between the two most similar categories is below ``margin_threshold``;
    a request whose best similarity is below ``min_similarity`` is a possible new category.
    ``calibrate`` sets all three from a few labelled requests, if a city has them.

    The default margin (0.2) is deliberately cautious: calibrated on Boston's training period for
    95% precision it came out at 0.21 with the point estimate and 0.25 with the lower confidence
    bound ``calibrate`` now uses (benchmarks/tagging.py); with no labels it is better to send a
    request to a person than to guess.
    """

    def __init__(
        self,
        categories: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.02,
        margin_threshold: float = 0.2,
        min_similarity: float = 0.15,
        target_precision: float = 0.95,
        embed_model: str = "",
        embed_backend: str = "torch",
    ) -> None:
        self.categories = categories
        self.temperature = temperature
        self.margin_threshold = margin_threshold
        self.min_similarity = min_similarity
        self.target_precision = target_precision
        self.embed_model = embed_model
        self.embed_backend = embed_backend

    @staticmethod
    def category_text(category: Mapping[str, Any]) -> str:
        name = str(category.get("name") or category.get("service_name") or "").strip()
        desc = str(category.get("description") or "").strip()
        keywords = category.get("keywords") or ""
        if isinstance(keywords, (list, tuple)):
            keywords = ", ".join(map(str, keywords))
        text = f"{name}: {desc}" if desc else name
        return f"{text} ({keywords})" if keywords else text

    def fit(
        self, texts: Sequence[str] | None = None, labels: Sequence[str] | None = None
    ) -> ZeroShotTagger:
        """Embed the category descriptions; with ``texts`` and ``labels``, also ``calibrate``."""
        names = [str(c.get("name") or c.get("service_name") or "").strip() for c in self.categories]
        if len(names) < 2 or any(not n for n in names) or len(set(names)) != len(names):
            raise InputError("zero-shot tagging needs two or more categories with distinct names")
        from analyzer.embed import get_embedder

        embedder = get_embedder(self.embed_model or None, backend=self.embed_backend)
        desc = embedder.embed([self.category_text(c) for c in self.categories])
        protos = []
        for c, d in zip(self.categories, desc, strict=True):
            examples = [str(e) for e in (c.get("examples") or [])]
            vec = d if not examples else (d + embedder.embed(examples).mean(axis=0)) / 2
            protos.append(vec / (np.linalg.norm(vec) or 1.0))
        self.classes_ = np.asarray(names, dtype=object)
        self.prototypes_ = np.vstack(protos).astype(np.float32)
        self.temperature_ = float(self.temperature)
        self.margin_threshold_ = float(self.margin_threshold)
        self.min_similarity_ = float(self.min_similarity)
        self.embedding_model_id_ = embedder.model_id
        self.embedding_sha256_ = embedder.weights_sha256_
        if texts is not None and labels is not None:
            self.calibrate(texts, labels)
        return self

    def _ensure_fitted(self) -> None:
        if not hasattr(self, "prototypes_"):
            self.fit()

    def similarities(
        self, texts: Sequence[str], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        self._ensure_fitted()
        texts = _as_texts(texts)
        emb = _check_embeddings(embeddings, len(texts))
        if emb is None:
            emb, _ = _embed(texts, self.embed_model, self.embed_backend)
        return emb @ self.prototypes_.T

    def calibrate(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        embeddings: np.ndarray | None = None,
        novelty_quantile: float = 0.01,
    ) -> ZeroShotTagger:
        """Fit the temperature, the margin threshold (target precision) and the novelty floor."""
        sims = self.similarities(texts, embeddings=embeddings)
        index = {c: i for i, c in enumerate(self.classes_)}
        labels = [str(x) for x in labels]
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise InputError(f"labels not among the categories: {unknown[:5]}")
        y = np.asarray([index[x] for x in labels])
        self.temperature_ = _fit_temperature(sims, y)
        pred = sims.argmax(axis=1)
        self.margin_threshold_ = choose_threshold(_margin(sims), pred == y, self.target_precision)
        self.min_similarity_ = float(np.quantile(sims.max(axis=1), novelty_quantile))
        return self

    def predict_proba(
        self, texts: Sequence[str], *, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        return softmax(self.similarities(texts, embeddings=embeddings) / self.temperature_)

    def predict(self, texts: Sequence[str], *, embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.classes_[self.similarities(texts, embeddings=embeddings).argmax(axis=1)]

    def predict_detailed(
        self,
        texts: Sequence[str],
        *,
        embeddings: np.ndarray | None = None,
        top_k: int = 3,
        extra: Extra = None,
    ) -> list[dict[str, Any]]:
        """Same rows as ``Tagger.predict_detailed``; review is decided on the similarity margin."""
        texts = _as_texts(texts)
        sims = self.similarities(texts, embeddings=embeddings)
        proba = softmax(sims / self.temperature_)
        novel = sims.max(axis=1) < self.min_similarity_
        blank = np.array([not t.strip() for t in texts], dtype=bool)
        return _detailed_rows(
            proba, self.classes_, _margin(sims), self.margin_threshold_, novel, top_k, blank
        )

    def save(self, folder: str | Path, *, metrics: Mapping[str, Any] | None = None) -> Path:
        self._ensure_fitted()
        documents = {
            "categories": [dict(c) for c in self.categories],
            "state": {
                "classes": [str(c) for c in self.classes_],
                "temperature": self.temperature_,
                "margin_threshold": self.margin_threshold_,
                "min_similarity": self.min_similarity_,
                "target_precision": self.target_precision,
                "embed_model": self.embed_model,
                "embed_backend": self.embed_backend,
            },
        }
        manifest = {
            "labels": [str(c) for c in self.classes_],
            "metrics": dict(metrics or {}),
            "training_data_hash": None,
            "embedding_model_id": self.embedding_model_id_,
            "embedding_sha256": self.embedding_sha256_,
        }
        return save_bundle(
            folder,
            kind=ZERO_SHOT_KIND,
            arrays={"prototypes": self.prototypes_},
            documents=documents,
            manifest=manifest,
        )

    @classmethod
    def load(cls, folder: str | Path, *, embed_backend: str | None = None) -> ZeroShotTagger:
        bundle = load_bundle(folder, kind=ZERO_SHOT_KIND)
        try:
            state = bundle.document("state")
            tagger = cls(
                bundle.document("categories"),
                target_precision=float(state["target_precision"]),
                embed_model=state["embed_model"],
                embed_backend=embed_backend or state["embed_backend"],
            )
            tagger.classes_ = np.asarray(state["classes"], dtype=object)
            tagger.prototypes_ = bundle.array("prototypes").astype(np.float32)
            tagger.temperature_ = float(state["temperature"])
            tagger.margin_threshold_ = float(state["margin_threshold"])
            tagger.min_similarity_ = float(state["min_similarity"])
            tagger.embedding_model_id_ = bundle.manifest.get("embedding_model_id")
            tagger.embedding_sha256_ = bundle.manifest.get("embedding_sha256")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelBundleError(
                f"incomplete zero-shot bundle: {exc}", file=str(folder)
            ) from None
        return tagger


def _margin(sims: np.ndarray) -> np.ndarray:
    top2 = np.sort(sims, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def load_tagger(folder: str | Path, *, embed_backend: str | None = None) -> Tagger | ZeroShotTagger:
    """Load whichever tagger a bundle holds."""
    kind = load_bundle(folder).manifest.get("kind")
    if kind == ZERO_SHOT_KIND:
        return ZeroShotTagger.load(folder, embed_backend=embed_backend)
    return Tagger.load(folder, embed_backend=embed_backend)


# -- feedback ----------------------------------------------------------------------------------


def record_correction(store: Store, text: str, label: str, record_id: str | None = None) -> str:
    """Store a correction (the text is redacted first) and return its id."""
    label = str(label).strip()
    if not label:
        raise InputError("a correction needs a label")
    if not str(text).strip():
        raise InputError("a correction needs a text")
    from analyzer.privacy import redact

    clean = redact(str(text)).text
    cid = uuid.uuid4().hex
    store.execute(
        "INSERT INTO corrections (id, text, label, record_id) VALUES (?, ?, ?, ?)",
        [cid, clean, label, record_id],
    )
    log.info("correction %s stored (label set, %d chars)", cid, len(clean))
    return cid


def load_corrections(store: Store) -> pd.DataFrame:
    """Stored corrections, latest per record (or per text when no record id), oldest first."""
    df = store.query_df(
        "SELECT id, text, label, record_id, created_at FROM corrections ORDER BY created_at, id"
    )
    if df.empty:
        return df
    key = df["record_id"].where(df["record_id"].notna(), "text:" + df["text"])
    # A later correction of the same record or text replaces the earlier one.
    return df.loc[~key.duplicated(keep="last")].reset_index(drop=True)


def retrain(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    store: Store | None = None,
    corrections: pd.DataFrame | None = None,
    correction_weight: float = 5.0,
    tagger: Tagger | None = None,
    embeddings: np.ndarray | None = None,
    extra: Extra = None,
) -> Tagger:
    """Fit a new Tagger (``tagger``'s parameters, or the defaults) on history plus corrections.

    Corrections come from ``corrections`` or, when it is None, from ``store``. A correction
    outweighs a history row (``correction_weight``) because a person looked at it; a history row
    with the same text is dropped so the old label does not fight the corrected one.
    """
    if corrections is None and store is not None:
        corrections = load_corrections(store)
    texts = _as_texts(texts)
    labels = [str(x) for x in labels]
    weight = [1.0] * len(texts)
    emb = _check_embeddings(embeddings, len(texts))
    if corrections is not None and not corrections.empty:
        if extra is not None:
            raise InputError("retraining with extra fields and corrections is not supported")
        fixed = set(corrections["text"].astype(str))
        keep = [i for i, t in enumerate(texts) if t not in fixed]
        texts = [texts[i] for i in keep]
        labels = [labels[i] for i in keep]
        weight = [1.0] * len(keep)
        new_texts = corrections["text"].astype(str).tolist()
        texts += new_texts
        labels += corrections["label"].astype(str).tolist()
        weight += [correction_weight] * len(new_texts)
        if emb is not None:
            base = tagger or Tagger()
            new_emb, _ = _embed(new_texts, base.embed_model, base.embed_backend)
            emb = np.vstack([emb[keep], new_emb])
        log.info("retraining with %d corrections", len(new_texts))
    params = tagger.get_params() if tagger is not None else {}
    if "char_ngram_range" in params:
        params["char_ngram_range"] = tuple(params["char_ngram_range"])
    return Tagger(**params).fit(texts, labels, extra=extra, embeddings=emb, sample_weight=weight)
