"""Category names as a prior for the supervised tagger, strongest where a category has few rows.

A city's category names say what they hold ("Street Light Out", "Overgrown Grass"). With a small
history a linear model has seen a rare category two or three times; the cosine between a request's
embedding and the embedding of the category's name is then evidence the rows alone cannot give.
The prior adds, to each category's score,

    weight x cos(request, name) x k / (k + rows of that category in the history)

so it fades as the category's history grows (at ``k`` = 5 rows it counts half, at 95 rows a
twentieth). ``weight`` is chosen on the tagger's own validation rows (time-ordered when the history
has times) from ``WEIGHTS``, 0 included: names that say nothing (codes such as "SR-114") get no
weight. Measured in ``benchmarks.cities`` (README there).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

from analyzer.common.vectors import normalise_rows

log = logging.getLogger(__name__)

# Candidate weights, on the scale of the linear model's margins (about -1 to 1).
WEIGHTS = (0.0, 0.5, 1.0)
_SEPARATORS = re.compile(r"[\s_\-/\\|:;]+")


def name_text(category: str) -> str:
    """A category name as words ("Roads/Highways" -> "Roads Highways", "SIGN_DAMAGE" -> "sign
    damage"; all-capital names are lower-cased, since they read as shouting to the encoder)."""
    text = _SEPARATORS.sub(" ", str(category)).strip()
    return text.lower() if text.isupper() else text


def name_vectors(
    classes: Sequence[str], embed_model: str, embed_backend: str, dim: int
) -> np.ndarray | None:
    """Unit embeddings of the category names, or None when the embedder's vectors are not the
    ``dim``-dimensional ones the tagger was given (then no prior)."""
    from analyzer.tagging.measures import embed_texts

    vectors, _ = embed_texts([name_text(c) for c in classes], embed_model, embed_backend)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        log.info("label prior off: name vectors of %s dimensions, texts of %d", vectors.shape, dim)
        return None
    return normalise_rows(np.asarray(vectors, dtype=np.float32))


def prior_scores(
    embeddings: np.ndarray, names: np.ndarray, counts: np.ndarray, k: float
) -> np.ndarray:
    """cos(request, name) x k / (k + rows): one row per request, one column per category.
    ``counts`` is per category, or per request and category (each fold's own past)."""
    cos = normalise_rows(np.asarray(embeddings, dtype=np.float32)) @ names.T
    return cos * (k / (k + np.asarray(counts, dtype=np.float64)))


def choose_weight(
    scores: np.ndarray,
    prior: np.ndarray,
    y: np.ndarray,
    weights: Sequence[float] = WEIGHTS,
) -> float:
    """The weight of ``weights`` whose validation macro-F1 (``scores + w x prior``) is highest;
    on a tie the smaller one."""
    best_w, best_f1 = 0.0, -1.0
    for w in sorted(weights):
        pred = np.argmax(scores + w * prior, axis=1)
        f1 = f1_score(y, pred, average="macro")
        if f1 > best_f1 + 1e-9:
            best_w, best_f1 = float(w), float(f1)
    return best_w
