"""Participant positions: Polis's PCA of the vote matrix.

Unseen votes are filled with the statement's mean vote, the matrix is centred, and its first two
principal components are taken (an exact SVD here, where Polis runs power iteration). A
participant is projected from the votes they cast only, and the projection is scaled by
``sqrt(n_statements / n_votes)`` so that people who voted little are not all piled in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    center: np.ndarray  # (statements,) mean vote per statement
    components: np.ndarray  # (n_components, statements), unit rows
    explained_variance: np.ndarray  # (n_components,)


def filled_matrix(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(votes with NaN replaced by the column mean, the column means); a column nobody saw is 0."""
    seen = np.isfinite(votes)
    counts = seen.sum(axis=0)
    sums = np.where(seen, votes, 0.0).sum(axis=0)
    means = np.divide(sums, counts, out=np.zeros(votes.shape[1]), where=counts > 0)
    filled = np.where(seen, votes, means[None, :])
    return filled, means


def fit_projection(votes: np.ndarray, n_components: int = 2) -> Projection:
    """PCA on the mean-filled, centred matrix. Component signs are fixed (largest loading
    positive) so the same data always gives the same map."""
    filled, means = filled_matrix(votes)
    centred = filled - means[None, :]
    n_comp = max(1, min(n_components, *centred.shape))
    if centred.shape[0] < 2 or not np.any(centred):
        comps = np.zeros((n_components, votes.shape[1]))
        return Projection(means, comps, np.zeros(n_components))
    comps, var = _top_components(centred, n_comp)
    for i in range(comps.shape[0]):
        j = int(np.argmax(np.abs(comps[i])))
        if comps[i, j] < 0:
            comps[i] = -comps[i]
    if comps.shape[0] < n_components:
        pad = np.zeros((n_components - comps.shape[0], votes.shape[1]))
        comps = np.vstack([comps, pad])
        var = np.concatenate([var, np.zeros(n_components - len(var))])
    return Projection(means, comps, var / max(centred.shape[0] - 1, 1))


def _top_components(centred: np.ndarray, n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``n_comp`` eigenvectors of the smaller Gram matrix (statements × statements or
    participants × participants), by Lanczos iteration from a fixed start (deterministic), or
    a full eigendecomposition when the matrix is tiny."""
    from scipy.sparse.linalg import ArpackError, eigsh

    wide = centred.shape[1] > centred.shape[0]
    gram = centred @ centred.T if wide else centred.T @ centred
    vals = vecs = None
    if gram.shape[0] > n_comp + 1:
        try:
            vals, vecs = eigsh(gram, k=n_comp, which="LA", v0=np.ones(gram.shape[0]))
        except ArpackError:
            vals = vecs = None
    if vals is None or vecs is None:
        vals, vecs = np.linalg.eigh(gram)
    order = np.argsort(vals)[::-1][:n_comp]
    var = np.clip(vals[order], 0, None)
    vecs = vecs[:, order]
    if not wide:
        return vecs.T, var
    comps = (centred.T @ vecs).T
    norms = np.linalg.norm(comps, axis=1, keepdims=True)
    return np.divide(comps, norms, out=np.zeros_like(comps), where=norms > 0), var


def project(votes: np.ndarray, projection: Projection) -> np.ndarray:
    """Sparsity-aware positions (participants, n_components): votes cast only, scaled up by
    ``sqrt(n_statements / n_votes)``."""
    seen = np.isfinite(votes)
    deviations = np.where(seen, votes - projection.center[None, :], 0.0)
    raw = deviations @ projection.components.T
    n_votes = np.maximum(seen.sum(axis=1), 1)
    scale = np.sqrt(votes.shape[1] / n_votes)
    return raw * scale[:, None]
