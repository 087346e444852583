"""Which texts show what a theme is about: one selector, used when a theme is fitted
(``ThemeModel``) and when the read layer picks examples under filters (``analyzer.queries``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# How many of the texts nearest the centre are considered, and how much a candidate's likeness to
# the examples already chosen counts against it (maximal marginal relevance).
EXAMPLE_POOL = 50
EXAMPLE_DIVERSITY = 0.3


def representative_rows(
    vectors: np.ndarray,
    center: np.ndarray,
    texts: Sequence[str],
    k: int = 5,
    *,
    pool: int = EXAMPLE_POOL,
    diversity: float = EXAMPLE_DIVERSITY,
) -> list[int]:
    """Row indices of ``k`` texts that are central and not alike: maximal marginal relevance over
    the ``pool`` texts nearest ``center``. ``vectors`` (one row per text) and ``center`` are unit
    length. Identical texts (after case and whitespace) count once; empty texts never count."""
    if len(texts) == 0 or k <= 0:
        return []
    sims = vectors @ center
    order = np.argsort(-sims, kind="stable")
    cand: list[int] = []
    seen: set[str] = set()
    for i in order:
        key = " ".join(str(texts[i]).lower().split())
        if key in seen or not key:
            continue
        seen.add(key)
        cand.append(int(i))
        if len(cand) >= pool:
            break
    chosen: list[int] = []
    while cand and len(chosen) < k:
        if not chosen:
            best = cand[0]
        else:
            redund = (vectors[cand] @ vectors[chosen].T).max(axis=1)
            score = (1 - diversity) * sims[cand] - diversity * redund
            best = cand[int(np.argmax(score))]
        chosen.append(best)
        cand.remove(best)
    return chosen


def representative_texts(
    vectors: np.ndarray,
    center: np.ndarray,
    texts: Sequence[str],
    k: int = 5,
    *,
    pool: int = EXAMPLE_POOL,
    diversity: float = EXAMPLE_DIVERSITY,
) -> list[str]:
    """The texts of :func:`representative_rows`, in the order chosen."""
    rows = representative_rows(vectors, center, texts, k, pool=pool, diversity=diversity)
    return [str(texts[i]) for i in rows]
