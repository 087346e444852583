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
(``analyzer.common.bundle``: NumPy arrays and JSON with a manifest of sha256 digests; never a pickle).

Feedback: ``record_correction`` stores a (redacted) text with its right label; ``retrain`` fits a
new Tagger on the history plus the stored corrections, which weigh more than a history row.

``ZeroShotTagger`` lives in ``analyzer.tagging.zero_shot``, and what both share (calibration and precision
measures, the review threshold, time-aware splits, prediction rows) in ``analyzer.tagging.measures``;
both are re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from analyzer.common.bundle import load_bundle, save_bundle
from analyzer.common.params import Params
from analyzer.errors import InputError, ModelBundleError
from analyzer.tagging.label_prior import choose_weight, name_vectors, prior_scores
from analyzer.tagging.linear import OneVsRestSVC
from analyzer.tagging.measures import (
    NEVER_ACCEPT,
    PRECISION_BOUNDS,
    TAGGER_KIND,
    ZERO_SHOT_KIND,
    Extra,
    as_texts,
    base_model_id,
    check_embeddings,
    choose_threshold,
    class_centroids,
    detailed_rows,
    embed_texts,
    expected_calibration_error,
    fit_temperature,
    precision_lower_bound,
    rows_to_accept,
    softmax,
    time_ordered_folds,
    time_split,
    training_data_hash,
)
from analyzer.tagging.tfidf import FastTfidf
from analyzer.tagging.zero_shot import ZeroShotTagger

__all__ = [
    "NEVER_ACCEPT",
    "Tagger",
    "ZeroShotTagger",
    "choose_threshold",
    "class_centroids",
    "expected_calibration_error",
    "load_tagger",
    "precision_lower_bound",
    "time_ordered_folds",
    "time_split",
    "training_data_hash",
]

log = logging.getLogger(__name__)

# -- supervised tagger -------------------------------------------------------------------------


class Tagger(Params):
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
    time_folds, time_window, time_per_label:
        With ``fit(..., times=...)`` validation is time-ordered instead (``time_ordered_folds``):
        ``time_folds`` models, each trained on the past and scored on the next ``time_window``
        share of the requests (of every label's history with ``time_per_label``, for histories
        joined from per-service extracts of different years). Shuffled folds validate on rows
        from the same years the model trained on, and a threshold chosen there lets precision
        fall on later requests.
    class_weight:
        LinearSVC's class weights; "balanced" weighs each category by the inverse of its
        frequency, so that rare categories are predicted at all (macro-F1 +0.02 to +0.04 in four
        of five cities of ``benchmarks.cities``, the same in Boston); None: every row alike.
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
        Which embedder (see ``analyzer.embedding.embedder.get_embedder``); "" is the packaged MiniLM.
    extra_weight:
        Scale of the one-hot block for extra categorical fields (channel, area...).
    label_prior, label_prior_k:
        Weight of the category names as a prior (``analyzer.tagging.label_prior``: the cosine
        between a request and the name, times ``k / (k + the category's rows)``); None chooses
        it on the validation rows (0, 0.5 or 1).

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
        time_per_label: bool = False,
        class_weight: str | None = "balanced",
        target_precision: float = 0.95,
        precision_bound: str = "clopper-pearson",
        bound_confidence: float = 0.95,
        novelty_quantile: float = 0.99,
        embed_model: str = "",
        embed_backend: str = "torch",
        extra_weight: float = 0.5,
        label_prior: float | None = None,
        label_prior_k: float = 5.0,
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
        self.time_per_label = time_per_label
        self.class_weight = class_weight
        self.target_precision = target_precision
        self.precision_bound = precision_bound
        self.bound_confidence = bound_confidence
        self.novelty_quantile = novelty_quantile
        self.embed_model = embed_model
        self.embed_backend = embed_backend
        self.extra_weight = extra_weight
        self.label_prior = label_prior
        self.label_prior_k = label_prior_k
        self.random_state = random_state

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
        emb = check_embeddings(embeddings, len(texts))
        if emb is not None:
            if not hasattr(self, "embedding_model_id_"):
                # Given embeddings are taken to come from the configured embedder; record which,
                # without loading its weights (the Embedder loads lazily).
                from analyzer.embedding.embedder import get_embedder

                embedder = get_embedder(self.embed_model or None, backend=self.embed_backend)
                self.embedding_model_id_ = embedder.model_id
                self.embedding_sha256_ = embedder.weights_sha256_
            return emb
        emb, embedder = embed_texts(texts, self.embed_model, self.embed_backend)
        expected = getattr(self, "embedding_model_id_", None)
        if expected and base_model_id(embedder.model_id) != base_model_id(expected):
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
        texts = as_texts(texts)
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
            scores, past_counts = self._out_of_fold_scores(X, y, weight)
            how = f"{self._n_folds(counts)}-fold stratified out-of-fold"
        else:
            rows, scores, how, past_counts = validated
        y_val, w_val = y[rows], weight[rows]
        scores = scores + self._fit_label_prior(emb, rows, scores, y_val, past_counts, counts)
        self.temperature_ = fit_temperature(scores, y_val, w_val)
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
            "label_prior": self.label_prior_,
        }
        if self.threshold_ >= NEVER_ACCEPT:
            # nothing reaches the target yet: how much validated history would, if any
            need = rows_to_accept(
                conf,
                correct,
                self.target_precision,
                bound=self.precision_bound,
                confidence_level=self.bound_confidence,
            )
            self.metrics_["validation_rows_to_accept"] = need
            more = None if need is None else int(np.ceil(max(need - len(rows), 0) * n / len(rows)))
            # beyond 20 times today's history the estimate is an extrapolation, not a promise
            self.metrics_["more_labelled_rows_to_accept"] = (
                more if more is not None and more <= 20 * n else None
            )

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

    def _new_svc(self) -> OneVsRestSVC:
        return OneVsRestSVC(
            C=self.C, class_weight=self.class_weight, random_state=self.random_state
        )

    def _fit_label_prior(
        self,
        emb: np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        y_val: np.ndarray,
        past_counts: np.ndarray,
        counts: np.ndarray,
    ) -> np.ndarray | float:
        """Set ``label_vectors_``, ``class_counts_`` and ``label_prior_`` (the weight, chosen on the
        validation rows unless given) and return the prior's part of the validation scores."""
        self.class_counts_ = counts.astype(np.float32)
        self.label_vectors_ = None
        self.label_prior_ = 0.0
        if self.label_prior == 0:
            return 0.0
        self.label_vectors_ = name_vectors(
            self.classes_, self.embed_model, self.embed_backend, emb.shape[1]
        )
        if self.label_vectors_ is None:
            return 0.0
        prior = prior_scores(emb[rows], self.label_vectors_, past_counts, self.label_prior_k)
        if self.label_prior is None:
            self.label_prior_ = choose_weight(scores, prior, y_val)
        else:
            self.label_prior_ = float(self.label_prior)
        return self.label_prior_ * prior

    def _time_ordered_scores(
        self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray, times: Sequence[Any] | pd.Series
    ) -> tuple[np.ndarray, np.ndarray, str, np.ndarray] | None:
        """(validated rows, their scores, description, each validated row's fold's rows per
        label), or None when the history is too short.

        Each fold's model learns the labels with two rows or more in its past and needs two such
        labels; a fold without them is left out, and with under 50 validated rows there is nothing
        to choose a threshold on.
        """
        labels = self.classes_[y]
        rows, parts, seen = [], [], []
        folds = time_ordered_folds(
            labels, times, self.time_folds, self.time_window, per_label=self.time_per_label
        )
        for past, nxt in folds:
            # a label with one row in a fold's past is not learnt there (its later rows count
            # as errors, as a category the model has barely seen does after deployment)
            present, counts = np.unique(y[past], return_counts=True)
            past = past & np.isin(y, present[counts >= 2])
            present = present[counts >= 2]
            if len(present) < 2 or not nxt.any():
                continue
            model = self._new_svc().fit(X[past], y[past], sample_weight=w[past])
            idx = np.flatnonzero(nxt)
            rows.append(idx)
            parts.append(self._scores_of(model, X[idx], present=present))
            past_counts = np.bincount(y[past], minlength=len(self.classes_))
            seen.append(np.broadcast_to(past_counts, (len(idx), len(past_counts))))
        if not rows or sum(map(len, rows)) < 50:
            return None
        how = (
            f"time-ordered: {len(rows)} fold(s), each trained on the past and validated on the "
            f"next {self.time_window:.0%} of "
            + ("every label's history" if self.time_per_label else "the requests, as they came")
        )
        return np.concatenate(rows), np.vstack(parts), how, np.vstack(seen)

    def _out_of_fold_scores(
        self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold scores, and each row's training folds' rows per label."""
        folds = StratifiedKFold(
            self._n_folds(np.bincount(y)), shuffle=True, random_state=self.random_state
        )
        oof = np.zeros((X.shape[0], len(self.classes_)), dtype=np.float64)
        seen = np.zeros_like(oof)
        for tr, va in folds.split(X, y):
            model = self._new_svc().fit(X[tr], y[tr], sample_weight=w[tr])
            oof[va] = self._scores_of(model, X[va], present=np.unique(y[tr]))
            seen[va] = np.bincount(y[tr], minlength=len(self.classes_))
        return oof, seen

    def _scores_of(self, model: OneVsRestSVC, X: sp.csr_matrix, present: np.ndarray) -> np.ndarray:
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
        texts = as_texts(texts)
        emb = self._embeddings_for(texts, embeddings)
        return self._decision(texts, extra, emb)

    def _decision(self, texts: list[str], extra: Extra, emb: np.ndarray) -> np.ndarray:
        X = self._features(texts, extra, emb)
        scores = np.asarray(X @ self.coef_.T) + self.intercept_
        names = getattr(self, "label_vectors_", None)
        if names is not None and self.label_prior_ > 0:
            prior = prior_scores(emb, names, self.class_counts_, self.label_prior_k)
            scores = scores + np.float32(self.label_prior_) * prior.astype(np.float32)
        return scores

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
        texts = as_texts(texts)
        emb = self._embeddings_for(texts, embeddings)
        proba = softmax(self._decision(texts, extra, emb) / self.temperature_)
        novel = self.novelty_distance(emb) > self.novelty_threshold_
        blank = np.array([not t.strip() for t in texts], dtype=bool)
        return detailed_rows(
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
            "class_counts": self.class_counts_,
        }
        if self.label_vectors_ is not None:
            arrays["label_vectors"] = self.label_vectors_
        documents = {
            "params": self.get_params(),
            "state": {
                "classes": [str(c) for c in self.classes_],
                "temperature": self.temperature_,
                "review_threshold": self.threshold_,
                "novelty_threshold": self.novelty_threshold_,
                "label_prior": self.label_prior_,
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
            # bundles from before the label prior have none
            tagger.label_prior_ = float(state.get("label_prior", 0.0))
            tagger.label_vectors_ = (
                bundle.array("label_vectors").astype(np.float32)
                if tagger.label_prior_ > 0
                else None
            )
            tagger.class_counts_ = (
                bundle.array("class_counts").astype(np.float32)
                if tagger.label_prior_ > 0
                else np.zeros(len(tagger.classes_), dtype=np.float32)
            )
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


def load_tagger(folder: str | Path, *, embed_backend: str | None = None) -> Tagger | ZeroShotTagger:
    """Load whichever tagger a bundle holds."""
    kind = load_bundle(folder).manifest.get("kind")
    if kind == ZERO_SHOT_KIND:
        return ZeroShotTagger.load(folder, embed_backend=embed_backend)
    return Tagger.load(folder, embed_backend=embed_backend)
