"""LinearSVC's one-vs-rest, one category per task on threads.

scikit-learn's ``LinearSVC`` trains its one-vs-rest problems one after the other on one core.
liblinear releases the GIL while it trains, so the same binary problems run side by side on
threads: a city with 140 categories trains in about half the time on 2 cores
(``python -m benchmarks.cities``, training speed). Each problem is liblinear's own: the category's
rows against all others, the category's rows weighted by its class weight and the others by 1 (as
liblinear weighs them inside ``LinearSVC`` with ``class_weight``), so the weights equal
``LinearSVC``'s up to the solver's tolerance.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sklearn.svm import LinearSVC


def default_threads() -> int:
    """Threads for one fit: the machine's cores, at most 8 (``CIVICPULSE_TRAIN_THREADS``)."""
    env = os.environ.get("CIVICPULSE_TRAIN_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(os.cpu_count() or 1, 8))


class OneVsRestSVC:
    """``LinearSVC(C, class_weight)`` for several classes, its binary problems on threads.

    ``classes_``, ``coef_`` (classes x features), ``intercept_`` and ``decision_function`` as
    ``LinearSVC`` has them; with two classes it is ``LinearSVC`` itself.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        class_weight: str | None = None,
        random_state: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state
        self.threads = threads

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> OneVsRestSVC:
        y = np.asarray(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k <= 2:
            svc = LinearSVC(
                C=self.C, class_weight=self.class_weight, random_state=self.random_state
            ).fit(X, y, sample_weight=sample_weight)
            self.coef_, self.intercept_ = svc.coef_, svc.intercept_
            return self
        counts = np.bincount(codes, minlength=k).astype(np.float64)
        if self.class_weight == "balanced":
            weights = len(y) / (k * counts)
        elif self.class_weight is None:
            weights = np.ones(k)
        else:
            raise ValueError(f"class_weight must be 'balanced' or None, not {self.class_weight!r}")

        def one(c: int) -> tuple[np.ndarray, float]:
            svc = LinearSVC(
                C=self.C,
                class_weight={0: 1.0, 1: float(weights[c])},
                random_state=self.random_state,
            ).fit(X, (codes == c).astype(np.int64), sample_weight=sample_weight)
            return svc.coef_[0], float(svc.intercept_[0])

        threads = self.threads or default_threads()
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                parts = list(pool.map(one, range(k)))
        else:
            parts = [one(c) for c in range(k)]
        self.coef_ = np.vstack([p[0] for p in parts])
        self.intercept_ = np.array([p[1] for p in parts])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        scores = np.asarray(X @ self.coef_.T) + self.intercept_
        return scores.ravel() if self.coef_.shape[0] == 1 else scores
