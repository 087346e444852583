"""Opinion groups from participant positions.

Two recipes:

- ``polis``: Polis's two stages: k-means into up to 100 base clusters, then k-means over the base
  centres weighted by their sizes for k = 2 … min(max_k, 2 + n_base // 12), k chosen by the
  silhouette of the base centres;
- ``direct`` (CivicPulse's default): k-means on the participants themselves, each k restarted
  ``n_init`` times from k-means++ seeds, and k chosen by the silhouette of the participants (the
  fewest groups within a tolerance of the best silhouette). The
  base stage was Polis's way to keep an incremental JVM service fast; without it, groups depend
  less on how 100 base centres happened to fall (see benchmarks/opinions.py for the stability
  figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

SILHOUETTE_SAMPLE = 3000


@dataclass(frozen=True)
class Grouping:
    labels: np.ndarray  # one group per point, 0 … k-1
    k: int
    silhouettes: dict[int, float] = field(default_factory=dict)
    n_base: int | None = None


def k_candidates(n_units: int, max_groups: int) -> list[int]:
    """k = 2 … min(max_groups, 2 + n_units // 12), Polis's rule, and never more than n_units."""
    top = min(max_groups, 2 + n_units // 12, n_units)
    return list(range(2, top + 1))


def _kmeans(
    points: np.ndarray,
    k: int,
    seed: int,
    n_init: int,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=300)
    labels = model.fit_predict(points, sample_weight=weights)
    return labels.astype(np.int64), model.cluster_centers_


def _silhouette(points: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if len(np.unique(labels)) < 2 or len(points) <= len(np.unique(labels)):
        return -1.0
    sample = SILHOUETTE_SAMPLE if len(points) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(points, labels, sample_size=sample, random_state=seed))


def _distinct(points: np.ndarray) -> int:
    return len(np.unique(np.round(points, 12), axis=0))


def group_direct(
    points: np.ndarray, max_groups: int, seed: int, n_init: int, k_tolerance: float = 0.0
) -> Grouping:
    """k-means on the points for each candidate k; the fewest groups whose silhouette is within
    ``k_tolerance`` of the best wins (a flat silhouette curve is no reason for more groups)."""
    n = _distinct(points)
    ks = k_candidates(n, max_groups)
    if not ks:
        return Grouping(np.zeros(len(points), dtype=np.int64), 1 if len(points) else 0)
    fits: dict[int, np.ndarray] = {}
    scores: dict[int, float] = {}
    for k in ks:
        labels, _ = _kmeans(points, k, seed, n_init)
        fits[k] = labels
        scores[k] = round(_silhouette(points, labels, seed), 6)
    best = max(scores.values())
    k = min(k for k in ks if scores[k] >= best - k_tolerance - 1e-12)
    return Grouping(fits[k], k, scores)


def group_polis(
    points: np.ndarray, max_groups: int, seed: int, n_init: int, base_k: int = 100
) -> Grouping:
    """Polis's base clusters, then weighted k-means over their centres."""
    n = _distinct(points)
    if n < 2:
        return Grouping(np.zeros(len(points), dtype=np.int64), 1 if len(points) else 0)
    n_base = min(base_k, n)
    base_labels, centres = _kmeans(points, n_base, seed, 1)
    sizes = np.bincount(base_labels, minlength=n_base).astype(float)
    keep = sizes > 0
    centres, sizes = centres[keep], sizes[keep]
    remap = np.cumsum(keep) - 1
    base_labels = remap[base_labels]
    ks = k_candidates(len(centres), max_groups)
    if not ks:
        return Grouping(np.zeros(len(points), dtype=np.int64), 1, n_base=len(centres))
    best: tuple[float, int, np.ndarray] | None = None
    scores: dict[int, float] = {}
    for k in ks:
        labels, _ = _kmeans(centres, k, seed, n_init, weights=sizes)
        score = _silhouette(centres, labels, seed)
        scores[k] = round(score, 6)
        if best is None or score > best[0] + 1e-12:
            best = (score, k, labels)
    assert best is not None
    return Grouping(best[2][base_labels], best[1], scores, n_base=len(centres))


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Groups renumbered 0, 1, … from the largest (ties: the lower old label), -1 kept."""
    valid = labels[labels >= 0]
    if not len(valid):
        return labels.copy()
    old, counts = np.unique(valid, return_counts=True)
    order = sorted(range(len(old)), key=lambda i: (-counts[i], old[i]))
    mapping = {int(old[i]): new for new, i in enumerate(order)}
    return np.array([mapping.get(int(x), -1) for x in labels], dtype=np.int64)
