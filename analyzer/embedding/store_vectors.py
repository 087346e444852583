"""Whether a store's vectors come from the model in force: checked before an analysis embeds.

The store caches vectors by model id, and the model id names the build
(``analyzer.embedding.build_id``), so vectors of two builds never share a key. What was derived
from the vectors (themes, their centroids, sentiment) does not carry the key, though: a run that
embedded only the new records with a new build would place them among themes fitted on the old
build's vectors. So a run compares the model id of the store's last analysis with the one in force
(``model_change``); when they differ it says so in one line and re-embeds every record, re-fits the
themes and re-scores sentiment, or, asked to keep the vectors, refuses (``ModelChange.refusal``).
A store written before build ids existed recorded an id without one: its vectors count as another
build's and are re-embedded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from analyzer.embedding.build_id import split_model_id

if TYPE_CHECKING:
    from analyzer.embedding.embedder import Embedder
    from analyzer.store.database import Store


@dataclass(frozen=True)
class ModelChange:
    """The store's last analysis embedded with ``previous``; this run embeds with ``current``.

    ``texts``: the run's distinct texts without a vector from ``current`` (what it re-embeds),
    once counted (``counted``).
    """

    previous: str
    current: str
    texts: int | None = None

    def counted(self, store: Store, text_hashes: Iterable[str]) -> ModelChange:
        """This change with ``texts`` counted over the run's records' text hashes."""
        return replace(self, texts=texts_without_vectors(store, self.current, text_hashes))

    @property
    def kind(self) -> str:
        """Which change: "rebuilt" (same model and backend, another build), "unversioned" (the
        previous id predates build ids) or "changed" (another model, backend or precision)."""
        prev_family, prev_build = split_model_id(self.previous)
        family, _ = split_model_id(self.current)
        if prev_family != family:
            return "changed"
        return "unversioned" if prev_build is None else "rebuilt"

    def line(self) -> str:
        """What ``civicpulse analyze`` prints (one line)."""
        _, old = split_model_id(self.previous)
        _, new = split_model_id(self.current)
        if self.texts is None:
            embed = "re-embedding every text"
        elif self.texts:
            embed = f"re-embedding {self.texts:,} texts"
        else:
            embed = "every text already re-embedded (by an interrupted run)"
        redo = f"{embed}, re-fitting themes and re-scoring sentiment"
        if self.kind == "rebuilt":
            return f"embedding model rebuilt since the last analysis (build {old} -> {new}): {redo}"
        if self.kind == "unversioned":
            return (
                f"the last analysis embedded with {self.previous}, from before build ids were "
                f"recorded; this run embeds with build {new}: {redo}"
            )
        return (
            f"embedding model changed since the last analysis ({self.previous} -> "
            f"{self.current}): {redo}"
        )

    def refusal(self) -> str:
        """Why a run asked to keep the store's vectors stops (one line)."""
        return (
            f"the store's vectors are from {self.previous}, but the model in force is "
            f"{self.current}; --keep-vectors never mixes the two: bring back that build "
            "(`civicpulse models verify` prints the one in force; README: Embedding backends) "
            "or run without --keep-vectors to re-embed"
        )

    def as_manifest(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "previous": self.previous,
            "current": self.current,
            "texts": self.texts,
        }


def last_analysis_model(store: Store) -> str | None:
    """The embedding model id of the store's latest finished analysis (its manifest's
    ``models.embedding``), or None before the first."""
    found = store.scalar(
        "SELECT model_id FROM (SELECT started_at, finished_at, run_id, CASE WHEN "
        "json_valid(manifest) THEN json_extract_string(manifest, '$.models.embedding') END "
        "AS model_id FROM runs WHERE status = 'done' AND kind = 'analyze') "
        "WHERE model_id IS NOT NULL "
        "ORDER BY finished_at DESC NULLS LAST, started_at DESC NULLS LAST, run_id DESC LIMIT 1"
    )
    return None if found is None else str(found)


def texts_without_vectors(store: Store, model_id: str, text_hashes: Iterable[str]) -> int:
    """How many of these distinct text hashes have no vector from ``model_id`` in the cache."""
    import pandas as pd

    wanted = pd.DataFrame({"text_hash": pd.unique(pd.Series(list(text_hashes), dtype=object))})
    if wanted.empty:
        return 0
    found = store.query_with(
        "SELECT count(*) AS n FROM _hashes h WHERE NOT EXISTS (SELECT 1 FROM embeddings e "
        "WHERE e.model_id = ? AND e.text_hash = h.text_hash)",
        {"_hashes": wanted},
        [model_id],
    )
    return int(found["n"].iloc[0])


def model_change(store: Store, embedder: Embedder) -> ModelChange | None:
    """How the model in force differs from the store's last analysis's, or None (the same, or no
    analysis yet). Builds (or verifies) the embedder's model: its id names the build."""
    previous = last_analysis_model(store)
    current = embedder.model_id
    if previous is None or previous == current:
        return None
    return ModelChange(previous, current)
