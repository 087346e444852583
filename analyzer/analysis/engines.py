"""Engines: who does the per-record work of a run (embedding, sentiment, tagging).

The run itself (``analysis.pipeline``) and the CLI ask an engine by name and call the same
methods, whichever it is: ``local`` works in this process; ``ray`` sends the work to Ray Data
(``analysis.ray_engine``, imported only when that engine is used). A new engine is one more class
with these methods and one more entry in ``ENGINE_TYPES``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from analyzer.analysis.results import SENTIMENT_COLUMNS, RecordResults
from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.analysis.plan import Plan
    from analyzer.embedding.embedder import Embedder
    from analyzer.store.database import Store

TimedFn = Callable[[str, Callable[[], Any]], Any]
StepFn = Callable[[str, float], None]


class Engine(Protocol):
    name: str

    def analyze_records(
        self,
        store: Store,
        records: pd.DataFrame,
        embedder: Embedder,
        plan: Plan,
        *,
        timed: TimedFn,
        step: StepFn,
        progress: bool,
    ) -> RecordResults:
        """Vectors for the records ``plan`` needs (cache first, new ones written to the store's
        cache) and sentiment rows for those without a score from the plan's sentiment model."""
        ...

    def tag_texts(
        self,
        tagger_path: Path,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        extra: pd.DataFrame | None = None,
        embed_backend: str | None = None,
        tagger: Any | None = None,
    ) -> list[dict[str, Any]]:
        """One prediction row per text (``Tagger.predict_detailed``'s rows), in input order;
        ``tagger`` is the bundle at ``tagger_path`` when the caller has already loaded it."""
        ...


class LocalEngine:
    """Everything in this process, chunk by chunk (the default)."""

    name = "local"

    def analyze_records(
        self,
        store: Store,
        records: pd.DataFrame,
        embedder: Embedder,
        plan: Plan,
        *,
        timed: TimedFn,
        step: StepFn,
        progress: bool,
    ) -> RecordResults:
        vectors = timed(
            "embed", lambda: embed_needed(embedder, records, plan.needs_vectors, store, progress)
        )
        step("sentiment", 0.45)
        rows, model_id = timed("sentiment", lambda: sentiment_for_new(records, vectors, plan))
        return RecordResults(vectors, rows, model_id, {"name": self.name})

    def tag_texts(
        self,
        tagger_path: Path,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        extra: pd.DataFrame | None = None,
        embed_backend: str | None = None,
        tagger: Any | None = None,
    ) -> list[dict[str, Any]]:
        from analyzer.tagging.supervised import ZeroShotTagger, load_tagger

        texts = list(texts)
        if not texts:
            return []
        if tagger is None:
            tagger = load_tagger(tagger_path, embed_backend=embed_backend)
        emb = embedder.embed(texts, progress=True)
        if isinstance(tagger, ZeroShotTagger):
            return tagger.predict_detailed(texts, embeddings=emb)
        return tagger.predict_detailed(texts, extra=extra, embeddings=emb)


class RayEngine:
    """Ray Data batch jobs on a cluster at ``address``, or on a local Ray with ``local_cpus``."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        local_cpus: int | None = None,
    ) -> None:
        self.address = address
        self.workers = workers
        self.local_cpus = local_cpus

    def options(self) -> Any:
        from analyzer.analysis.ray_engine import DEFAULT_LOCAL_CPUS, RayOptions

        return RayOptions(
            address=self.address,
            workers=self.workers,
            local_cpus=self.local_cpus or DEFAULT_LOCAL_CPUS,
        )

    def analyze_records(
        self,
        store: Store,
        records: pd.DataFrame,
        embedder: Embedder,
        plan: Plan,
        *,
        timed: TimedFn,
        step: StepFn,
        progress: bool,
    ) -> RecordResults:
        from analyzer.analysis.ray_engine import analyze_records

        options = self.options()
        # one Ray job embeds and scores sentiment; its time is the "embed" stage
        result = timed(
            "embed", lambda: analyze_records(store, records, embedder, options, progress=progress)
        )
        step("sentiment", 0.45)
        return result

    def tag_texts(
        self,
        tagger_path: Path,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        extra: pd.DataFrame | None = None,
        embed_backend: str | None = None,
        tagger: Any | None = None,
    ) -> list[dict[str, Any]]:
        """Identical texts once; with ``extra`` columns (per row, not per text) the tagging
        itself runs on the driver over the vectors Ray computed."""
        import json

        from analyzer.analysis.ray_engine import process_texts
        from analyzer.tagging.supervised import load_tagger

        texts = list(texts)
        if not texts:
            return []
        on_ray = extra is None
        cols, _ = process_texts(
            texts,
            embedder,
            self.options(),
            tagger_path=str(Path(tagger_path).resolve()) if on_ray else None,
        )
        if not on_ray:
            if tagger is None:
                tagger = load_tagger(tagger_path, embed_backend=embed_backend)
            return tagger.predict_detailed(texts, extra=extra, embeddings=cols["embedding"])
        return [
            {
                "predicted_label": str(label),
                "confidence": float(conf),
                "needs_review": bool(review),
                "alternatives": json.loads(alts),
                "possible_new_category": bool(new),
            }
            for label, conf, review, alts, new in zip(
                cols["predicted_label"],
                cols["confidence"],
                cols["needs_review"],
                cols["alternatives"],
                cols["possible_new_category"],
                strict=True,
            )
        ]


ENGINE_TYPES: dict[str, type] = {"local": LocalEngine, "ray": RayEngine}
ENGINES = tuple(ENGINE_TYPES)


def make_engine(
    name: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    local_cpus: int | None = None,
) -> Engine:
    """The engine called ``name``; Ray's options are refused for the local engine."""
    if name not in ENGINE_TYPES:
        raise InputError(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")
    if name == "local":
        if address or workers or local_cpus:
            raise InputError("--address, --workers and --ray-cpus need --engine ray")
        return LocalEngine()
    return RayEngine(address=address, workers=workers, local_cpus=local_cpus)


# -- the local engine's steps ------------------------------------------------------------------


def embed_needed(
    embedder: Embedder, records: pd.DataFrame, needed: np.ndarray, store: Store, progress: bool
) -> np.ndarray:
    """Vectors for the records that need one, as the store's cache holds them (the other rows
    stay zero and no step reads them).

    What is new is embedded and cached first; then every vector is read back from the cache. A
    vector the cache holds went through its float16 codec and one just embedded would not have:
    without the read-back, a run that found vectors cached by a killed run would feed the themes
    other numbers than an uninterrupted run does, and the themes can turn on such a bit (#22).
    (The embedder caches whole chunks of what is new, in order, so the re-run encodes the rest in
    the same chunks as an uninterrupted run.)
    """
    from analyzer.embedding import EMBED_DIM

    rows = np.arange(len(records)) if needed.all() else np.flatnonzero(needed)
    texts = records["text"].iloc[rows].tolist()
    part = embedder.embed(texts, store=store, progress=progress)  # what is new reaches the cache
    if texts:
        part = embedder.embed(texts, store=store)  # every vector as the cache holds it
    if needed.all():
        return part
    # np.zeros maps untouched pages lazily: the unused rows cost no memory
    out = np.zeros((len(records), part.shape[1] if len(part) else EMBED_DIM), dtype=np.float32)
    out[rows] = part
    return out


def sentiment_for_new(
    records: pd.DataFrame, vectors: np.ndarray, plan: Plan
) -> tuple[pd.DataFrame, str]:
    """Sentiment rows for the records the plan marks as unscored by its sentiment model."""
    from analyzer.sentiment.model import analyze_sentiment

    model = plan.sentiment_model
    model_id = getattr(model, "model_id", "sentiment")
    mask = plan.sentiment_todo
    if not mask.any():
        return pd.DataFrame(columns=list(SENTIMENT_COLUMNS)), model_id
    texts = records.loc[mask, "text"].tolist()
    result = analyze_sentiment(texts, embeddings=vectors[mask], model=model)
    rows = pd.DataFrame(
        {
            "record_id": records.loc[mask, "id"].to_numpy(),
            "model_id": model_id,
            "label": result["sentiment"].to_numpy(),
            "score": result["sentiment_score"].astype(float).to_numpy(),
        }
    )
    return rows, model_id
