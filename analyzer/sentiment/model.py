"""Sentiment of resident text: a label (negative / neutral / positive) and a score in [-1, 1].

Model
    A multinomial logistic regression (``class_weight="balanced"``) over two blocks of features:

    - the text's MiniLM embedding (the same L2-normalised 384-d vectors the rest of the pipeline
      uses, so ``civicpulse analyze`` embeds nothing twice), and
    - 28 lexicon features from three lexicons: VADER's neg / neu / pos / compound, counts and
      sums of VADER-lexicon valences, the strongest positive and negative word, negations, "!"
      and "?", the valences of words within three words after a negation, and VADER's compound of
      the clause after the last "but" / "however" / "though"; AFINN-165's sum, counts and
      extremes of word and phrase valences (the ``afinn`` package's word lists); and the pattern
      lexicon's polarity and subjectivity through TextBlob. They are standardised and
      down-weighted (``lexicon_weight``) so that the embedding block still carries most of the
      decision.

    ``score = P(positive) - P(negative)``; the label is the most probable class, so a positive
    label always has a score >= 0 and a negative one a score <= 0. Balanced class weights matter
    because the benchmark metric (macro-averaged recall) rewards equal recall per class, and class
    shares differ a lot between data sets (TweetEval val is 41% positive, test 19%).

    Choices measured by cross-validation on the 2,000 TweetEval validation tweets only (macro
    recall; the test split is never used to choose). 5 x 5-fold repeated CV, same splits:
    embeddings alone 0.62; + the first 15 lexicon features 0.665; decoding ``\\uXXXX`` escapes,
    HTML entities and curly quotes before VADER 0.667; + the negation-scope and last-clause
    features 0.6695; + AFINN and pattern (TextBlob) features 0.6770 (spread over repeats
    0.004: the shipped model; AFINN alone 0.674, pattern alone 0.673; a home-made lookup of the
    pattern lexicon without TextBlob's negation and intensifier rules gained nothing). Tried and
    not used, as they gained nothing: per-class bias offsets tuned by nested CV (0.665),
    blending a char-n-gram TF-IDF model (0.666), word / char TF-IDF alone (0.48 / 0.52),
    standardised embeddings (0.653), shrinkage LDA (0.647), the mean of MiniLM's static
    input-word vectors beside the sentence vector (0.665), valences propagated to every word
    piece by a ridge on those static vectors (+0.0015), VADER lexicon words as extra training
    examples, an RBF SVM (0.649), gradient boosting on the lexicon block. ``C`` = 0.5 and
    ``lexicon_weight`` = 0.07 held up in a grid (0.667-0.6695 around them with 18 features;
    0.672-0.678 with 28, C in 0.3-1, weight 0.05-0.1: the choice matters little).

Text preparation and the lexicon features: ``analyzer.sentiment.lexicon``.

Training (reproducible and deterministic; needs ../shared/data_raw/tweeteval_sentiment; about a
minute on 2 idle cores, most of it embedding the 2,000 tweets and a 5 x 5-fold CV)::

    python -m analyzer.sentiment.model train --out models/sentiment
    # optional: --data-raw DIR (default $CIVICPULSE_DATA_RAW or ../shared/data_raw),
    #           --embeddings FILE.npy (precomputed embeddings of the 2,000 validation tweets)

The bundle (analyzer.common.bundle, no pickles, every file sha256-checked on load) holds the weights, the
scaler of the lexicon block, the parameters and the cross-validated metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.bundle import load_bundle, save_bundle
from analyzer.common.params import Params
from analyzer.sentiment.lexicon import LEXICON_FEATURES, lexicon_features

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
BUNDLE_KIND = "sentiment"
DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "sentiment"


def _is_blank(text: str) -> bool:
    return not any(c.isalnum() for c in text)


def _embed(texts: Sequence[str]) -> np.ndarray:
    from analyzer.embedding.embedder import get_embedder

    return get_embedder().embed(list(texts))


class SentimentModel(Params):
    """Three-class sentiment classifier over MiniLM embeddings plus VADER/lexicon features.

    Parameters
    ----------
    C : inverse L2 regularisation strength of the logistic regression.
    lexicon_weight : multiplier on the standardised lexicon block (relative to the unit-norm
        embedding); larger lets VADER's view dominate.
    max_iter : lbfgs iterations.

    Learned attributes: ``classes_`` (``LABELS``), ``coef_`` (3, 384 + 28), ``intercept_`` (3,),
    ``lex_mean_`` / ``lex_scale_`` (28,), ``embedding_dim_``, ``metadata_`` (manifest extras).
    """

    def __init__(self, C: float = 0.5, lexicon_weight: float = 0.07, max_iter: int = 3000) -> None:
        self.C = C
        self.lexicon_weight = lexicon_weight
        self.max_iter = max_iter

    # -- features ------------------------------------------------------------------------------
    def _design(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            embeddings = _embed(texts)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f"embeddings shape {emb.shape} does not match {len(texts)} texts")
        if hasattr(self, "embedding_dim_") and emb.shape[1] != self.embedding_dim_:
            raise ValueError(
                f"embeddings have {emb.shape[1]} dimensions; the model was trained on "
                f"{self.embedding_dim_}"
            )
        lex = (lexicon_features(texts) - self.lex_mean_) / self.lex_scale_
        return np.hstack([emb, lex * self.lexicon_weight]).astype(np.float64)

    # -- estimator API -------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        y: Sequence[str] | np.ndarray,
        embeddings: np.ndarray | None = None,
    ) -> SentimentModel:
        """Fit on texts and labels (strings from ``LABELS`` or ints 0 neg, 1 neu, 2 pos)."""
        from sklearn.linear_model import LogisticRegression

        texts = list(texts)
        y_idx = _label_indices(y)
        if len(y_idx) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(y_idx)} labels")
        if set(np.unique(y_idx)) != {0, 1, 2}:
            raise ValueError("training labels must contain all three classes")
        self.__dict__.pop("embedding_dim_", None)  # a refit may change the embedding model
        lex = lexicon_features(texts)
        self.lex_mean_ = lex.mean(axis=0)
        scale = lex.std(axis=0)
        self.lex_scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        X = self._design(texts, embeddings)
        clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter)
        clf.fit(X, y_idx)
        self.classes_ = np.array(LABELS)
        self.coef_ = clf.coef_.astype(np.float64)
        self.intercept_ = clf.intercept_.astype(np.float64)
        self.embedding_dim_ = X.shape[1] - len(LEXICON_FEATURES)
        self.metadata_: dict[str, Any] = {}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("SentimentModel is not fitted; call fit() or load()")

    def predict_proba(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Class probabilities ``(n, 3)`` in ``classes_`` order (negative, neutral, positive).

        Text with no letters or digits carries no sentiment: it gets neutral with probability 1.
        """
        self._check_fitted()
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(LABELS)))
        logits = self._design(texts, embeddings) @ self.coef_.T + self.intercept_
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        blank = np.array([_is_blank(t) for t in texts])
        proba[blank] = (0.0, 1.0, 0.0)
        return proba

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Labels (``"negative"``, ``"neutral"``, ``"positive"``), one per text."""
        return self.classes_[self.predict_proba(texts, embeddings).argmax(axis=1)]

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Sentiment score ``P(positive) - P(negative)`` in [-1, 1].

        Note: this is a sentiment score, not scikit-learn's ``score(X, y)`` accuracy.
        """
        proba = self.predict_proba(texts, embeddings)
        return np.clip(proba[:, 2] - proba[:, 0], -1.0, 1.0)

    def predict_with_score(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and scores from one pass (embeddings and lexicon features computed once)."""
        proba = self.predict_proba(texts, embeddings)
        return self.classes_[proba.argmax(axis=1)], np.clip(proba[:, 2] - proba[:, 0], -1.0, 1.0)

    # -- persistence ---------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """Short id recorded beside each stored sentiment (``store.sentiment.model_id``)."""
        self._check_fitted()
        digest = hashlib.sha256(self.coef_.tobytes() + self.intercept_.tobytes()).hexdigest()
        return f"sentiment-lr@{digest[:12]}"

    def save(self, folder: str | Path, *, manifest: dict[str, Any] | None = None) -> Path:
        """Write a verified bundle (numpy arrays + JSON + manifest with sha256 per file)."""
        self._check_fitted()
        from analyzer.embedding import PACKAGED_MODEL_ID, PACKAGED_MODEL_SHA256

        extra = {
            "model_id": self.model_id,
            "labels": list(LABELS),
            "embedding_model_id": PACKAGED_MODEL_ID,
            "embedding_model_sha256": PACKAGED_MODEL_SHA256,
            **self.metadata_,
            **(manifest or {}),
        }
        return save_bundle(
            folder,
            kind=BUNDLE_KIND,
            arrays={
                "coef": self.coef_,
                "intercept": self.intercept_,
                "lex_mean": self.lex_mean_,
                "lex_scale": self.lex_scale_,
            },
            documents={
                "params": {
                    **self.get_params(),
                    "embedding_dim": int(self.embedding_dim_),
                    "lexicon_features": list(LEXICON_FEATURES),
                    "classes": list(LABELS),
                }
            },
            manifest=extra,
        )

    @classmethod
    def load(cls, folder: str | Path) -> SentimentModel:
        """Load a bundle written by ``save``; raises ModelBundleError if any file was altered."""
        from analyzer.errors import ModelBundleError

        bundle = load_bundle(folder, kind=BUNDLE_KIND)
        try:
            params = bundle.document("params")
            model = cls(
                C=float(params["C"]),
                lexicon_weight=float(params["lexicon_weight"]),
                max_iter=int(params["max_iter"]),
            )
            if list(params["lexicon_features"]) != list(LEXICON_FEATURES):
                raise ModelBundleError(
                    "bundle was trained with different lexicon features", file=str(folder)
                )
            model.classes_ = np.array(params["classes"])
            model.coef_ = bundle.array("coef").astype(np.float64)
            model.intercept_ = bundle.array("intercept").astype(np.float64)
            model.lex_mean_ = bundle.array("lex_mean")
            model.lex_scale_ = bundle.array("lex_scale")
            model.embedding_dim_ = int(params["embedding_dim"])
        except KeyError as exc:
            raise ModelBundleError(f"bundle lacks {exc}", file=str(folder)) from None
        n_features = model.embedding_dim_ + len(LEXICON_FEATURES)
        if model.coef_.shape != (len(LABELS), n_features) or tuple(model.classes_) != LABELS:
            raise ModelBundleError("bundle weights have unexpected shapes", file=str(folder))
        model.metadata_ = {
            k: v for k, v in bundle.manifest.items() if k in ("metrics", "training_data")
        }
        return model


def _label_indices(y: Sequence[str] | np.ndarray) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 2):
            raise ValueError("integer labels must be 0 (negative), 1 (neutral) or 2 (positive)")
        return arr.astype(int)
    index = {name: i for i, name in enumerate(LABELS)}
    try:
        return np.array([index[str(v)] for v in arr], dtype=int)
    except KeyError as exc:
        raise ValueError(f"unknown sentiment label {exc}; expected one of {LABELS}") from None


def default_bundle_path() -> Path:
    """models/sentiment beside the package, else ``$CIVICPULSE_MODELS_DIR/sentiment``."""
    if DEFAULT_BUNDLE.is_dir():
        return DEFAULT_BUNDLE
    from analyzer.config import load_settings, resolve_model_path

    return resolve_model_path(Path(load_settings().models_dir) / "sentiment")


@lru_cache(maxsize=1)
def load_default() -> SentimentModel:
    """The shipped, verified model (loaded once per process)."""
    return SentimentModel.load(default_bundle_path())


def analyze_sentiment(
    texts: Sequence[str],
    embeddings: np.ndarray | None = None,
    model: SentimentModel | None = None,
) -> pd.DataFrame:
    """``sentiment`` and ``sentiment_score`` per text, in input order (index 0..n-1).

    Pass ``embeddings`` (rows aligned with ``texts``) to reuse vectors already computed by the
    pipeline; otherwise the texts are embedded here.
    """
    model = model or load_default()
    texts = ["" if t is None else str(t) for t in texts]
    labels, scores = model.predict_with_score(texts, embeddings)
    return pd.DataFrame({"sentiment": labels.astype(str), "sentiment_score": scores.astype(float)})


def aggregate_sentiment(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of ``by`` (e.g. theme, area, week): ``n``, ``mean_score``, share of each label.

    ``df`` needs ``sentiment`` and ``sentiment_score`` columns; rows with no label are ignored.
    Missing group keys form their own group. With ``by=[]`` there is one overall row.
    """
    needed = ["sentiment", "sentiment_score", *by]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"aggregate_sentiment: missing columns {missing}")
    data = df[needed][df["sentiment"].notna()].copy()
    for label in LABELS:
        data[f"share_{label}"] = (data["sentiment"] == label).astype(float)
    data["sentiment_score"] = data["sentiment_score"].astype(float)
    aggs = {
        "n": ("sentiment", "size"),
        "mean_score": ("sentiment_score", "mean"),
        **{f"share_{label}": (f"share_{label}", "mean") for label in LABELS},
    }
    if not by:
        row = {
            "n": len(data),
            "mean_score": data["sentiment_score"].mean() if len(data) else np.nan,
            **{
                f"share_{lab}": data[f"share_{lab}"].mean() if len(data) else np.nan
                for lab in LABELS
            },
        }
        return pd.DataFrame([row])
    out = data.groupby(by, dropna=False, sort=True, observed=True).agg(**aggs).reset_index()
    out["n"] = out["n"].astype(int)
    return out


# -- training --------------------------------------------------------------------------------------
def read_tweeteval(folder: str | Path, split: str) -> tuple[list[str], np.ndarray]:
    """TweetEval sentiment split: (texts, int labels 0 neg / 1 neu / 2 pos), one tweet per line."""
    folder = Path(folder)
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = [
        x for x in (folder / f"{split}_labels.txt").read_text("utf-8").split("\n") if x.strip()
    ]
    if len(texts) > len(labels):  # trailing newline
        texts = [t for t in texts if t != ""]
    if len(texts) < len(labels):
        raise ValueError(f"{folder}: {split} has {len(texts)} texts but {len(labels)} labels")
    return texts[: len(labels)], np.array([int(x) for x in labels])


def macro_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(y_true, y_pred, average="macro"))


def cross_validate(
    texts: Sequence[str],
    y: np.ndarray,
    embeddings: np.ndarray,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    **params: Any,
) -> dict[str, float]:
    """Stratified k-fold macro recall / macro-F1 / accuracy of a SentimentModel with ``params``.

    With ``repeats`` > 1 the k-fold split is redrawn (seeds ``seed .. seed + repeats - 1``) and the
    figures are means over repeats; ``macro_recall_std`` is their spread.
    """
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    texts = list(texts)
    y_idx = _label_indices(y)
    runs: list[tuple[float, float, float]] = []
    for rep in range(repeats):
        pred = np.empty(len(texts), dtype=int)
        split = StratifiedKFold(folds, shuffle=True, random_state=seed + rep)
        for tr, te in split.split(texts, y_idx):
            model = SentimentModel(**params).fit([texts[i] for i in tr], y_idx[tr], embeddings[tr])
            pred[te] = model.predict_proba([texts[i] for i in te], embeddings[te]).argmax(axis=1)
        runs.append((
            macro_recall(y_idx, pred),
            float(f1_score(y_idx, pred, average="macro")),
            float(accuracy_score(y_idx, pred)),
        ))  # fmt: skip
    arr = np.array(runs)
    return {
        "macro_recall": float(arr[:, 0].mean()),
        "macro_recall_std": float(arr[:, 0].std()),
        "macro_f1": float(arr[:, 1].mean()),
        "accuracy": float(arr[:, 2].mean()),
        "folds": folds,
        "repeats": repeats,
    }


def _data_raw(data_raw: str | Path | None) -> Path:
    if data_raw:
        return Path(data_raw)
    env = os.environ.get("CIVICPULSE_DATA_RAW")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data_raw"


def train_default_bundle(
    out: str | Path = DEFAULT_BUNDLE,
    *,
    data_raw: str | Path | None = None,
    embeddings: np.ndarray | None = None,
) -> SentimentModel:
    """Train the shipped model on the TweetEval validation split (2,000 tweets) and save it.

    The test split is never read here: it is only for benchmarks/sentiment.py.
    """
    folder = _data_raw(data_raw) / "tweeteval_sentiment"
    texts, y = read_tweeteval(folder, "val")
    t0 = time.perf_counter()
    if embeddings is None:
        embeddings = _embed(texts)
    if embeddings.shape[0] != len(texts):
        raise ValueError(f"embeddings have {embeddings.shape[0]} rows for {len(texts)} texts")
    params = {"C": 0.5, "lexicon_weight": 0.07}
    cv = cross_validate(texts, y, embeddings, repeats=5, **params)
    log.info("5 x 5-fold CV on TweetEval val: macro recall %.4f", cv["macro_recall"])
    model = SentimentModel(**params).fit(texts, y, embeddings)
    data_hash = hashlib.sha256(
        "\x1f".join(texts).encode("utf-8") + y.astype(np.int64).tobytes()
    ).hexdigest()
    model.metadata_ = {
        "metrics": {"cv_tweeteval_val": cv},
        "training_data": {
            "source": "cardiffnlp/tweeteval sentiment, validation split",
            "rows": len(texts),
            "class_counts": {lab: int((y == i).sum()) for i, lab in enumerate(LABELS)},
            "sha256": data_hash,
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    model.save(out)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.sentiment.model")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the default bundle on TweetEval val")
    train.add_argument("--out", type=Path, default=DEFAULT_BUNDLE)
    train.add_argument("--data-raw", type=Path, default=None)
    train.add_argument("--embeddings", type=Path, default=None, help=".npy of the val embeddings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    emb = np.load(args.embeddings, allow_pickle=False) if args.embeddings else None
    model = train_default_bundle(args.out, data_raw=args.data_raw, embeddings=emb)
    cv = model.metadata_["metrics"]["cv_tweeteval_val"]
    print(
        f"saved {args.out} ({model.model_id}); 5 x 5-fold CV on TweetEval val: "
        f"macro recall {cv['macro_recall']:.4f}, macro-F1 {cv['macro_f1']:.4f}, "
        f"accuracy {cv['accuracy']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
