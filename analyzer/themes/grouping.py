"""How fine clusters become themes: weighted Ward merging of their centres, then near-duplicate
groups merged (steps 3 and 4 of ``analyzer.themes.model``)."""

from __future__ import annotations

import numpy as np

from analyzer.common.vectors import normalise_rows

# Near-duplicate themes are also among this top share of the corpus's most alike pairs.
NEAR_DUPLICATE_QUANTILE = 0.95


def ward_groups(
    centers: np.ndarray, weights: np.ndarray, max_groups: int, min_size: float
) -> np.ndarray:
    """Group rows of ``centers`` (cluster centres with ``weights`` = sizes) by weighted Ward
    merging.

    Merging stops at the first point where there are at most ``max_groups`` groups and none is
    smaller than ``min_size`` (then the smallest group is merged with its cheapest partner). Ward's
    cost, w_a w_b / (w_a + w_b) ||mu_a - mu_b||^2, merges small and close groups first, which keeps
    themes of comparable size instead of one catch-all theme. Returns a group index per row (0..k-1,
    numbered by first appearance). Deterministic: ties go to the lowest indices.
    """
    m = len(centers)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    mu = np.asarray(centers, dtype=np.float64).copy()
    w = np.asarray(weights, dtype=np.float64).copy()
    w = np.maximum(w, 1e-9)
    owner = np.arange(m)
    active = np.ones(m, dtype=bool)

    def cost_row(a: int) -> np.ndarray:
        d2 = ((mu - mu[a]) ** 2).sum(axis=1)
        row = (w * w[a]) / (w + w[a]) * d2
        row[~active] = np.inf
        row[a] = np.inf
        return row

    cost = np.full((m, m), np.inf)
    for a in range(m):
        cost[a] = cost_row(a)
    k = m
    while k > 1:
        if k > max_groups:
            flat = int(np.argmin(cost))
            a, b = divmod(flat, m)
        else:
            live = np.flatnonzero(active)
            small = live[np.argmin(w[live])]
            if w[small] >= min_size:
                break
            a, b = int(small), int(np.argmin(cost[small]))
        a, b = min(a, b), max(a, b)
        mu[a] = (w[a] * mu[a] + w[b] * mu[b]) / (w[a] + w[b])
        w[a] += w[b]
        active[b] = False
        owner[owner == b] = a
        cost[b, :] = np.inf
        cost[:, b] = np.inf
        cost[a] = cost_row(a)
        cost[:, a] = cost[a]
        k -= 1
    _, groups = np.unique(owner, return_inverse=True)
    return groups.astype(np.int64)


def _group_means(
    x: np.ndarray, fine: np.ndarray, group_of_fine: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unit mean embedding of each group in ``codes``, and whether it has rows."""
    rows_group = np.asarray(group_of_fine)[fine]
    cents = np.zeros((len(codes), x.shape[1]), dtype=np.float64)
    alive = np.zeros(len(codes), dtype=bool)
    for i, code in enumerate(codes):
        rows = np.flatnonzero(rows_group == code)
        if len(rows):
            cents[i] = x[rows].mean(axis=0)
            alive[i] = True
    return normalise_rows(cents), alive


def near_duplicate_cosine(
    x: np.ndarray, fine: np.ndarray, group_of_fine: np.ndarray, min_cosine: float
) -> float:
    """The cosine at which two groups count as near duplicates in this corpus: ``min_cosine``, or
    the 95th percentile of the cosines between all the groups' mean embeddings when that is
    higher. In the five English cities of ``benchmarks.cities`` that percentile is 0.58-0.79 and
    ``min_cosine`` (0.8) decides; on Spanish proposals, which the English embedding model puts
    close together (median cosine 0.80), 0.8 merged half the pairs into a few catch-all themes."""
    codes = np.unique(group_of_fine)
    cents, alive = _group_means(x, fine, group_of_fine, codes)
    cents = cents[alive]
    if len(cents) < 3:
        return float(min_cosine)
    sims = (cents @ cents.T)[np.triu_indices(len(cents), 1)]
    return float(max(min_cosine, np.quantile(sims, NEAR_DUPLICATE_QUANTILE)))


def merge_near_duplicates(
    x: np.ndarray,
    fine: np.ndarray,
    group_of_fine: np.ndarray,
    min_cosine: float,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """Merge groups (of fine clusters) whose texts say the same thing: complete linkage on the
    cosine of the groups' mean embeddings, so that every two groups merged are at least
    ``min_cosine`` alike ("pothole" / "large crack", "trash cans" / "recycle bins" sat side by
    side before). ``among``: only the groups of these fine clusters (one theme's sub-themes).
    Returns ``group_of_fine`` with merged groups sharing the lowest code; ``min_cosine`` >= 1
    merges nothing."""
    out = np.asarray(group_of_fine).copy()
    fines = np.arange(len(out)) if among is None else np.asarray(among)
    codes = np.unique(out[fines])
    if len(codes) < 2 or min_cosine >= 1.0:
        return out
    cents, alive = _group_means(x, fine, out, codes)
    if alive.sum() < 2:
        return out
    from scipy.cluster.hierarchy import fcluster, linkage

    live = codes[alive]
    tree = linkage(cents[alive], method="complete", metric="cosine")
    groups = fcluster(tree, t=1.0 - min_cosine, criterion="distance")
    for g in np.unique(groups):
        members = live[groups == g]
        if len(members) > 1:
            keep = members.min()
            target = np.isin(out, members)
            if among is not None:
                mask = np.zeros(len(out), dtype=bool)
                mask[fines] = True
                target &= mask
            out[target] = keep
    return out


__all__ = [
    "NEAR_DUPLICATE_QUANTILE",
    "merge_near_duplicates",
    "near_duplicate_cosine",
    "ward_groups",
]
