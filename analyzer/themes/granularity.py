"""How many top-level themes a small history gets: the count the corpus gives back most alike.

A city's categories are as coarse or as fine as its forms made them, and no count of themes fits
every city: at 700 requests Boston's five services are matched best by 5-8 themes, Gainesville's
59 request types by 18 or more (``benchmarks.cities``). What the texts themselves say is how
stable a partition is: fitted again with other seeds (another PCA sample, other k-means starts),
a count the data supports comes back nearly the same, while one that cuts through a dense group
comes back cut elsewhere. So for histories of up to ``STABLE_TOP_MAX_TEXTS`` texts the count is
chosen among ``TOP_FRACTIONS`` x sqrt(n) (8 to 40) as the one whose partitions, from
``STABILITY_RUNS`` fits, agree most (mean pairwise adjusted Rand index; a tie goes to the finer
count). Larger stores keep about sqrt(n) / 2 (``default_top_count``), where the choice matters
little (NMI +0.003 to +0.004 at 3,000 texts) and the extra fits would cost most.

Measured over the five cities at 700 texts, three seeds each: top-level NMI with the city's
categories 0.472 -> 0.489 (Boston 0.589 -> 0.641, Gainesville 0.485 -> 0.501, Honolulu 0.565 ->
0.577; the others within 0.005). Counts below 0.3 sqrt(n) are not offered: fewer, larger groups
are stable almost by construction (Lewisham's 28 categories were given 5 themes, NMI 0.37).
"""

from __future__ import annotations

import itertools

import numpy as np

STABLE_TOP_MAX_TEXTS = 5000
TOP_FRACTIONS = (0.3, 0.4, 0.5, 0.6)
STABILITY_RUNS = 3
MIN_TOP, MAX_TOP = 8, 40


def default_top_count(n: int) -> int:
    """Beyond ``STABLE_TOP_MAX_TEXTS`` texts: about sqrt(n) / 2, 8 to 40."""
    return int(np.clip(round(0.5 * np.sqrt(n)), MIN_TOP, MAX_TOP))


def top_count_candidates(n: int) -> list[int]:
    """The counts offered for ``n`` texts: ``TOP_FRACTIONS`` x sqrt(n), 8 to 40."""
    return sorted({int(np.clip(round(f * np.sqrt(n)), MIN_TOP, MAX_TOP)) for f in TOP_FRACTIONS})


def most_stable(partitions: dict[int, list[np.ndarray]]) -> tuple[int, dict[int, float]]:
    """The count whose partitions (one label array per fit, same rows) agree most, and each
    count's mean pairwise adjusted Rand index. Ties (to 3 decimals) go to the larger count."""
    from sklearn.metrics import adjusted_rand_score

    score = {
        k: float(np.mean([adjusted_rand_score(a, b) for a, b in itertools.combinations(parts, 2)]))
        if len(parts) > 1
        else 1.0
        for k, parts in partitions.items()
    }
    best = max(score, key=lambda k: (round(score[k], 3), k))
    return best, score
