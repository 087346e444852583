"""Zero-shot tagging: requests matched to category names and descriptions by embedding similarity,
for a city with no labelled history (see ``analyzer.tagging.supervised``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.common.bundle import load_bundle, save_bundle
from analyzer.common.params import Params
from analyzer.errors import InputError, ModelBundleError
from analyzer.tagging.measures import (
    ZERO_SHOT_KIND,
    Extra,
    as_texts,
    check_embeddings,
    choose_threshold,
    detailed_rows,
    embed_texts,
    fit_temperature,
    softmax,
)


class ZeroShotTagger(Params):
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
        from analyzer.embedding.embedder import get_embedder

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
        texts = as_texts(texts)
        emb = check_embeddings(embeddings, len(texts))
        if emb is None:
            emb, _ = embed_texts(texts, self.embed_model, self.embed_backend)
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
        self.temperature_ = fit_temperature(sims, y)
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
        texts = as_texts(texts)
        sims = self.similarities(texts, embeddings=embeddings)
        proba = softmax(sims / self.temperature_)
        novel = sims.max(axis=1) < self.min_similarity_
        blank = np.array([not t.strip() for t in texts], dtype=bool)
        return detailed_rows(
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
