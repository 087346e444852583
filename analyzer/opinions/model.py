"""``OpinionModel``: opinion groups, positions, representative statements and consensus from a
vote matrix, as a scikit-learn style estimator (parameters in ``__init__``, learned state in
attributes ending in ``_``).

``method="polis"`` reproduces the Polis pipeline (base clusters, at most 5 groups, every
participant with enough votes clustered); the default ``"civicpulse"`` clusters participants
directly with restarts, lets the data choose up to ``max_groups`` groups (the fewest whose
silhouette is within ``k_tolerance`` of the best), and leaves out of the
groups the participants who agree (or disagree) with nearly everything (Polis #2025), who then
show on the map without a group. ``use_source_groups`` takes the export's own groups instead.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analyzer.common.params import Params
from analyzer.opinions.clustering import group_direct, group_polis, relabel_by_size
from analyzer.opinions.consensus import (
    FlagRules,
    GroupCounts,
    agree_probability,
    group_counts,
    group_informed_consensus,
    repness_table,
    select_representative,
    statement_stats,
)
from analyzer.opinions.matrix import VoteMatrix
from analyzer.opinions.projection import Projection, fit_projection, project

METHODS = ("civicpulse", "polis")


def clusterable(
    seen_counts: np.ndarray, n_statements: int, min_votes: int, greedy_n: int
) -> np.ndarray:
    """Polis's "in conversation": at least min(min_votes, n_statements) votes, topped up to
    ``greedy_n`` participants by most votes."""
    keep = seen_counts >= min(min_votes, n_statements)
    if keep.sum() < greedy_n:
        order = np.lexsort((np.arange(len(seen_counts)), -seen_counts))
        extra = [i for i in order if not keep[i] and seen_counts[i] > 0][: greedy_n - keep.sum()]
        keep[extra] = True
    return keep


def uniform_voters(votes: np.ndarray, min_votes: int, share: float) -> np.ndarray:
    """Participants with at least ``min_votes`` votes of which ≥ ``share`` are agrees (or are
    disagrees): they say nothing about what divides people."""
    seen = np.isfinite(votes).sum(axis=1)
    agree = (votes == 1).sum(axis=1)
    disagree = (votes == -1).sum(axis=1)
    top = np.maximum(agree, disagree)
    return (seen >= min_votes) & (top >= share * np.maximum(seen, 1))


class OpinionModel(Params):
    """Fit on a :class:`VoteMatrix`; read the ``*_`` attributes or :meth:`summary`."""

    def __init__(
        self,
        method: str = "civicpulse",
        max_groups: int | None = None,
        min_votes: int = 7,
        greedy_n: int = 15,
        base_clusters: int = 100,
        n_init: int = 10,
        k_tolerance: float = 0.02,
        exclude_uniform: bool | None = None,
        uniform_min_votes: int = 10,
        uniform_share: float = 0.95,
        use_source_groups: bool = False,
        top_representative: int = 5,
        min_statement_votes: int = 20,
        common_ground: float = 0.6,
        divisive: float = 0.3,
        uncertain: float = 0.2,
        seed: int = 42,
    ) -> None:
        self.method = method
        self.max_groups = max_groups
        self.min_votes = min_votes
        self.greedy_n = greedy_n
        self.base_clusters = base_clusters
        self.n_init = n_init
        self.k_tolerance = k_tolerance
        self.exclude_uniform = exclude_uniform
        self.uniform_min_votes = uniform_min_votes
        self.uniform_share = uniform_share
        self.use_source_groups = use_source_groups
        self.top_representative = top_representative
        self.min_statement_votes = min_statement_votes
        self.common_ground = common_ground
        self.divisive = divisive
        self.uncertain = uncertain
        self.seed = seed

    # -- resolved settings ------------------------------------------------------------------
    def _max_groups(self) -> int:
        if self.max_groups is not None:
            return int(self.max_groups)
        return 5 if self.method == "polis" else 8

    def _exclude_uniform(self) -> bool:
        if self.exclude_uniform is not None:
            return bool(self.exclude_uniform)
        return self.method != "polis"

    def rules(self) -> FlagRules:
        return FlagRules(
            min_votes=self.min_statement_votes,
            common_ground=self.common_ground,
            divisive=self.divisive,
            uncertain=self.uncertain,
        )

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, matrix: VoteMatrix) -> Self:
        # these matrices are small: BLAS / OpenMP threads only contend (4-10x slower on a busy
        # machine), so the fit runs on one thread
        with threadpool_limits(limits=1):
            return self._fit(matrix)

    def _fit(self, matrix: VoteMatrix) -> Self:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.use_source_groups and matrix.source_groups is None:
            raise ValueError("the export has no group-id column to use")
        raw = matrix.votes
        n_p, n_s = raw.shape
        # moderated-out statements are zeroed for the positions (Polis), kept for the counts
        zeroed = raw.copy()
        zeroed[:, matrix.moderated_out] = 0.0
        seen_counts = np.isfinite(raw).sum(axis=1)
        in_conv = clusterable(seen_counts, n_s, self.min_votes, self.greedy_n)
        uniform = (
            uniform_voters(raw, self.uniform_min_votes, self.uniform_share)
            if self._exclude_uniform()
            else np.zeros(n_p, dtype=bool)
        )
        fit_rows = in_conv & ~uniform if (in_conv & ~uniform).sum() >= 2 else in_conv
        self.projection_: Projection = fit_projection(
            zeroed[fit_rows] if fit_rows.any() else zeroed
        )
        self.positions_ = project(zeroed, self.projection_)
        labels = np.full(n_p, -1, dtype=np.int64)
        self.silhouettes_: dict[int, float] = {}
        self.n_base_: int | None = None
        if self.use_source_groups:
            assert matrix.source_groups is not None
            labels = matrix.source_groups.astype(np.int64).copy()
            self.group_ids_ = np.unique(labels[labels >= 0])
        else:
            cluster_rows = np.flatnonzero(fit_rows)
            if len(cluster_rows):
                points = self.positions_[cluster_rows]
                if self.method == "polis":
                    grouping = group_polis(
                        points, self._max_groups(), self.seed, 1, self.base_clusters
                    )
                else:
                    grouping = group_direct(
                        points, self._max_groups(), self.seed, self.n_init, self.k_tolerance
                    )
                labels[cluster_rows] = grouping.labels
                self.silhouettes_ = grouping.silhouettes
                self.n_base_ = grouping.n_base
            labels = relabel_by_size(labels)
            self.group_ids_ = np.unique(labels[labels >= 0])
        self.labels_ = labels
        self.in_conv_ = in_conv
        self.uniform_ = uniform
        self.n_groups_ = len(self.group_ids_)
        self.counts_: GroupCounts = group_counts(raw, labels, self.group_ids_)
        self.agree_probability_ = agree_probability(self.counts_.agree, self.counts_.seen)
        self.gic_ = group_informed_consensus(self.counts_)
        excluded = matrix.moderated_out
        self.repness_ = repness_table(self.counts_)
        self.representative_ = select_representative(
            self.repness_, excluded, self.top_representative
        )
        self.statements_ = statement_stats(self.counts_, excluded, self.rules())
        self.statement_ids_ = matrix.statement_ids
        self.participant_ids_ = matrix.participant_ids
        self.moderated_out_ = matrix.moderated_out
        return self

    def fit_predict(self, matrix: VoteMatrix) -> np.ndarray:
        return self.fit(matrix).labels_

    # -- reading ----------------------------------------------------------------------------
    def group_sizes(self) -> dict[int, int]:
        return {int(g): int((self.labels_ == g).sum()) for g in self.group_ids_}

    def participants_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "participant_id": self.participant_ids_,
                "group_id": self.labels_,
                "x": self.positions_[:, 0],
                "y": self.positions_[:, 1],
                "in_conversation": self.in_conv_,
                "uniform_voter": self.uniform_,
            }
        )

    def summary(self) -> dict[str, Any]:
        """The fit in numbers, for the run manifest."""
        return {
            "participants": len(self.labels_),
            "statements": len(self.statement_ids_),
            "clustered": int((self.labels_ >= 0).sum()),
            "uniform_voters_left_out": int((self.uniform_ & (self.labels_ < 0)).sum()),
            "groups": self.group_sizes(),
            "silhouettes": {str(k): v for k, v in self.silhouettes_.items()},
            "base_clusters": self.n_base_,
        }
