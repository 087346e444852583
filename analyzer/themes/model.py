"""Themes: two-level clustering of text embeddings, readable labels, ids that persist across runs.

How a fit works (each step measured in benchmarks/themes.py):

1. The clustering space: the embeddings beside (``lexical_weight``) a 100-dimension LSA of the
   texts' TF-IDF, since the words residents use ("fly tipping", "graffiti") separate categories the
   sentence embedding blurs; then PCA to ``n_components`` dimensions (fitted on a seeded sample),
   rows re-normalised so that Euclidean k-means on them behaves like cosine clustering. Centroids,
   placing new texts and examples stay in the embedding space.
2. Over-cluster into many small "fine" clusters with k-means (about 2 sqrt(n), at most
   ``max_top_themes`` x ``max_subthemes``, at least 25 texts each on average). Every text
   belongs to one: nothing is thrown away as noise here (BERTopic's HDBSCAN leaves about a third
   of 311 texts as outliers).
3. Merge fine clusters into top-level themes by weighted Ward merging of their centres until there
   are at most ``max_top_themes`` themes and each holds at least ``min_topic_share`` of the texts
   (and ``min_theme_size`` texts). By default the count is the most stable of 0.3-0.6 sqrt(n)
   over three seeds for up to 5,000 texts (``analyzer.themes.granularity``: a 700-request city
   gets 8 to 16, as its texts support), else about sqrt(n) / 2, at most 40. Silhouette was
   tried and rejected: on these embeddings its curve is flat and its maximum jumped between 4
   and 29 themes from one seed to the next. Then near-duplicate themes merge (``merge_near_duplicates``:
   complete linkage, mean embeddings at least ``merge_cosine`` alike and among the corpus's 5%
   most alike pairs, ``near_duplicate_cosine``), since Ward's size balance otherwise leaves
   "pothole" beside "large crack".
4. Inside each theme its fine clusters are merged the same way into at most ``max_subthemes``
   sub-themes of at least ``min_subtheme_share`` of the theme (a theme made of one fine cluster is
   split in two), and near-duplicate sub-themes merge as the themes did.
5. A text is unassigned only when it lies far from its fine cluster's centre compared with the
   rest of that cluster (beyond median + ``outlier_mads`` robust deviations), and never more than
   ``max_unassigned`` of the texts.
6. Labels and keywords come from ``analyzer.themes.labels`` (c-TF-IDF over spaCy noun chunks) on the
   texts nearest each centre; five examples are picked by maximal marginal relevance
   (``analyzer.themes.examples``).

New texts join themes by one rule, :meth:`ThemeModel.transform`: the sub-theme whose centroid is
nearest (cosine), and its parent, when that cosine is at least ``min_cosine``. The incremental
analysis applies it to the stored themes through :meth:`ThemeModel.from_themes`.

``analyzer.themes.lineage.match_themes`` carries ids from one run to the next (Hungarian
assignment on centroid similarity and member overlap) and records the lineage: same, merged, split,
new, retired.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.params import Params
from analyzer.common.vectors import normalise_rows
from analyzer.themes.examples import representative_texts
from analyzer.themes.granularity import (
    STABILITY_RUNS,
    STABLE_TOP_MAX_TEXTS,
    default_top_count,
    most_stable,
    top_count_candidates,
)
from analyzer.themes.grouping import merge_near_duplicates, near_duplicate_cosine, ward_groups
from analyzer.themes.ids import subtheme_id, theme_id

# scikit-learn and the labeller (SciPy, spaCy) load when a fit needs them: placing new texts with
# stored themes (the incremental analysis) does without them.

log = logging.getLogger(__name__)

UNASSIGNED_LABEL = "unassigned"
BREAKDOWN_COLUMNS = ("source", "area", "category")
# A new text joins an existing sub-theme only if it is at least this similar to its centroid;
# farther ones stay unassigned until the next re-fit.
MIN_CENTROID_COSINE = 0.35
# Fine clusters (step 2) hold at least this many texts on average.
FINE_CLUSTER_TEXTS = 25


@dataclass
class Theme:
    """One theme (level 1) or sub-theme (level 2)."""

    theme_id: str
    parent_id: str | None
    level: int
    label: str
    keywords: list[str]
    size: int
    examples: list[str]
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    sentiment: float | None = None
    centroid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)


@dataclass(frozen=True)
class LineageEvent:
    """What happened to a theme id between two runs; ``related`` are the ids on the other side."""

    theme_id: str
    event: str  # "same" | "merged" | "split" | "new" | "retired"
    related: tuple[str, ...] = ()
    level: int = 1


class ThemeModel(Params):
    """Two-level themes over L2-normalised text embeddings (scikit-learn style).

    Parameters are stored as given; learned state ends in ``_``:

    - ``labels_``: top-level theme id per row (``None`` when unassigned); ``sublabels_`` likewise.
    - ``themes_``: list of :class:`Theme`, level-1 themes first (largest first), then sub-themes.
    - ``unassigned_share_``, ``n_themes_``, ``n_subthemes_``, ``timings_`` (seconds per step).

    :meth:`transform` places new texts with the themes' centroids (see there);
    :meth:`from_themes` rebuilds a model that does so from stored themes, without a fit.
    """

    def __init__(
        self,
        *,
        min_topic_share: float = 0.01,
        min_theme_size: int = 10,
        min_subtheme_share: float = 0.03,
        max_top_themes: int | None = None,
        max_subthemes: int = 10,
        max_unassigned: float = 0.10,
        outlier_mads: float = 3.0,
        n_components: int = 50,
        n_fine: int | None = None,
        label_docs: int = 100,
        label_max_docs: int = 2500,
        n_examples: int = 5,
        id_prefix: str = "T",
        seed: int = 42,
        label: bool = True,
        min_cosine: float = MIN_CENTROID_COSINE,
        lexical_weight: float = 0.5,
        lexical_components: int = 100,
        merge_cosine: float = 0.8,
    ) -> None:
        self.min_topic_share = min_topic_share
        self.min_theme_size = min_theme_size
        self.min_subtheme_share = min_subtheme_share
        self.max_top_themes = max_top_themes
        self.max_subthemes = max_subthemes
        self.max_unassigned = max_unassigned
        self.outlier_mads = outlier_mads
        self.n_components = n_components
        self.n_fine = n_fine
        self.label_docs = label_docs
        self.label_max_docs = label_max_docs
        self.n_examples = n_examples
        self.id_prefix = id_prefix
        self.seed = seed
        self.label = label
        self.min_cosine = min_cosine
        self.lexical_weight = lexical_weight
        self.lexical_components = lexical_components
        self.merge_cosine = merge_cosine

    @classmethod
    def from_themes(cls, themes: Iterable[Theme], **params: Any) -> ThemeModel:
        """A model over already issued themes (e.g. the store's active ones) that places new texts
        with :meth:`transform`, without fitting. Sub-themes need their ``centroid`` and
        ``parent_id``; ``params`` are the constructor's (``min_cosine``)."""
        model = cls(**params)
        model.themes_ = list(themes)
        model.n_themes_ = sum(1 for th in model.themes_ if th.level == 1)
        model.n_subthemes_ = sum(1 for th in model.themes_ if th.level == 2)
        return model

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        embeddings: np.ndarray,
        texts: Sequence[str],
        *,
        meta: pd.DataFrame | None = None,
    ) -> ThemeModel:
        """Learn themes from ``embeddings`` (one row per text) and describe them with ``texts``."""
        x = normalise_rows(embeddings)
        n = x.shape[0]
        if len(texts) != n:
            raise ValueError(f"{len(texts)} texts for {n} embeddings")
        if meta is not None and len(meta) != n:
            raise ValueError(f"meta has {len(meta)} rows for {n} embeddings")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if n == 0:
            self._fit_empty(x)
            return self
        rng = np.random.default_rng(self.seed)

        # the stop words of the corpus's language when it is not English, decided once for the
        # lexical block and the labels
        from analyzer.common.language import foreign_stop_words

        other_stops = foreign_stop_words(texts)

        # 1. reduce (the clustering space: embeddings beside the texts' own words)
        z = self._fit_reduce(self._clustering_space(x, texts, rng, other_stops), rng)
        timings["reduce"] = time.perf_counter() - t0

        # 2. fine clusters
        t = time.perf_counter()
        fine, centers = self._fine_clusters(z)
        timings["fine"] = time.perf_counter() - t

        # 3. top level: how many themes (analyzer.themes.granularity), then Ward and near duplicates
        t = time.perf_counter()
        self.top_count_ = self._top_count(x, texts, other_stops, fine, centers)
        top_of_fine, self.merge_cosine_ = self._merged_top(x, fine, centers, self.top_count_)
        timings["top"] = time.perf_counter() - t

        # 4. sub-themes (may split fine clusters, so centres and labels can change)
        t = time.perf_counter()
        fine, centers, top_of_fine, sub_of_fine = self._sub_level(z, fine, centers, top_of_fine)
        fine, dist = _nearest(z, centers)
        for top in np.unique(top_of_fine):
            inside = np.flatnonzero(top_of_fine == top)
            sub_of_fine[inside] = merge_near_duplicates(
                x, fine, sub_of_fine, self.merge_cosine_, among=inside
            )[inside]
        timings["sub"] = time.perf_counter() - t

        # 5. unassigned
        t = time.perf_counter()
        outlier = dist > self._thresholds(fine, dist, len(centers))[fine]
        self.unassigned_share_ = float(outlier.mean())
        timings["unassigned"] = time.perf_counter() - t

        # ids: themes ranked by size (largest first) so that ids are deterministic and readable
        top_codes = top_of_fine[fine]
        sub_codes = sub_of_fine[fine]
        top_order = self._rank(top_codes[~outlier], n_codes=int(top_of_fine.max()) + 1)
        top_ids = {code: theme_id(rank + 1, self.id_prefix) for rank, code in enumerate(top_order)}
        sub_ids: dict[int, str] = {}
        for code in top_order:
            members = ~outlier & (top_codes == code)
            subs = self._rank(sub_codes[members], n_codes=int(sub_of_fine.max()) + 1)
            for rank, sub in enumerate(subs):
                sub_ids[sub] = subtheme_id(top_ids[code], rank + 1)
        fine_top = np.array([top_ids.get(int(c)) for c in top_of_fine], dtype=object)
        fine_sub = np.array([sub_ids.get(int(c)) for c in sub_of_fine], dtype=object)
        # a fine cluster whose sub-theme lost every member to the outliers leads nowhere
        fine_top[np.equal(fine_sub, None)] = None
        labels = fine_top[fine].copy()
        sublabels = fine_sub[fine].copy()
        labels[outlier] = None
        sublabels[outlier] = None
        self.labels_ = labels
        self.sublabels_ = sublabels

        # 6. describe
        t = time.perf_counter()
        self.themes_ = self._describe(x, texts, meta, other_stops)
        timings["describe"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        self.n_themes_ = sum(1 for th in self.themes_ if th.level == 1)
        self.n_subthemes_ = sum(1 for th in self.themes_ if th.level == 2)
        self.timings_ = timings
        log.info(
            "themes: %d rows, %d themes, %d sub-themes, %.1f%% unassigned, %.1fs",
            n,
            self.n_themes_,
            self.n_subthemes_,
            100 * self.unassigned_share_,
            timings["total"],
        )
        return self

    def _fit_empty(self, x: np.ndarray) -> None:
        dim = x.shape[1] if x.ndim == 2 else 0
        self.mean_ = np.zeros(dim, dtype=np.float32)
        self.components_ = np.eye(dim, dtype=np.float32)
        self.labels_ = np.zeros(0, dtype=object)
        self.sublabels_ = np.zeros(0, dtype=object)
        self.themes_ = []
        self.unassigned_share_ = 0.0
        self.n_themes_ = self.n_subthemes_ = 0
        self.timings_ = {"total": 0.0}

    def _clustering_space(
        self,
        x: np.ndarray,
        texts: Sequence[str],
        rng: np.random.Generator,
        other_stops: frozenset[str] = frozenset(),
    ) -> np.ndarray:
        """The embeddings, beside (``lexical_weight``) an LSA of the texts' TF-IDF: residents name
        what they report ("fly tipping", "graffiti"), and those words separate categories that
        the sentence embedding blurs (NMI +0.01 to +0.05 across the five cities of
        ``benchmarks.cities``). Only the clustering uses it; centroids, placing new texts and
        examples stay in the embedding space."""
        n = len(x)
        k = min(self.lexical_components, n - 1)
        if self.lexical_weight <= 0 or k < 2:
            return x
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

        fit_rows = self._sample(n, 20_000, rng)
        # English stop words, and a Spanish (Portuguese, French...) city's own
        stops: str | list[str] = (
            sorted(ENGLISH_STOP_WORDS | other_stops) if other_stops else "english"
        )
        vec = TfidfVectorizer(min_df=2, sublinear_tf=True, stop_words=stops, dtype=np.float32)
        try:
            words = vec.fit([str(texts[i]) for i in fit_rows]).transform([str(t) for t in texts])
        except ValueError:  # no word kept (tiny or empty corpus)
            return x
        k = min(k, words.shape[1] - 1)
        if k < 2:
            return x
        svd = TruncatedSVD(n_components=k, random_state=self.seed).fit(words[fit_rows])
        lsa = normalise_rows(svd.transform(words).astype(np.float32))
        return np.hstack([x, np.float32(self.lexical_weight) * lsa])

    def _max_top(self, n: int) -> int:
        """``max_top_themes``, or about sqrt(n) / 2, 8 to 40: the top count beyond
        ``STABLE_TOP_MAX_TEXTS`` texts, and what the fine-cluster count is sized against."""
        if self.max_top_themes is not None:
            return int(self.max_top_themes)
        return default_top_count(n)

    @staticmethod
    def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
        if n <= size:
            return np.arange(n)
        return np.sort(rng.choice(n, size=size, replace=False))

    def _fit_reduce(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, dim = x.shape
        k = min(self.n_components, dim, max(n - 1, 1))
        if k >= dim or n < 3:
            self.mean_ = np.zeros(dim, dtype=np.float32)
            self.components_ = np.eye(dim, dtype=np.float32)
        else:
            from sklearn.decomposition import PCA

            # PCA on at most 20k rows: the principal directions are stable long before that
            fit_rows = x[self._sample(n, 20_000, rng)]
            pca = PCA(n_components=k, svd_solver="randomized", random_state=self.seed).fit(fit_rows)
            self.mean_ = pca.mean_.astype(np.float32)
            self.components_ = pca.components_.astype(np.float32)
        return self._reduce(x)

    def _reduce(self, x: np.ndarray) -> np.ndarray:
        return normalise_rows((x - self.mean_) @ self.components_.T)

    def _fine_count(self, n_distinct: int) -> int:
        if self.n_fine is not None:
            k = self.n_fine
        else:
            # about 2 sqrt(n): 110 for 3,000 texts, 400 (the cap) for 40,000 and more; enough that
            # a theme is several fine clusters, few enough that each has tens of texts: at least
            # FINE_CLUSTER_TEXTS on average in a small history (28 for 700 texts, where 2 sqrt(n)
            # = 53 clusters of 13 texts drew junk clusters: NMI +0.02 at 700 and 1,500 texts
            # across the five cities of ``benchmarks.cities``), never fewer than the top themes
            k = min(round(2 * np.sqrt(n_distinct)), n_distinct // FINE_CLUSTER_TEXTS)
            k = max(k, self._max_top(n_distinct))
            k = min(k, self._max_top(n_distinct) * self.max_subthemes)
        return int(max(1, min(k, n_distinct)))

    def _fine_clusters(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_distinct = len(np.unique(np.round(z, 5), axis=0)) if len(z) <= 5000 else len(z)
        k = self._fine_count(n_distinct)
        if k == 1:
            return np.zeros(len(z), dtype=np.int64), normalise_rows(z.mean(axis=0, keepdims=True))
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=self.seed).fit(z)
        centers = normalise_rows(km.cluster_centers_)
        labels = np.argmax(z @ centers.T, axis=1)
        return labels, centers

    def _top_count(
        self,
        x: np.ndarray,
        texts: Sequence[str],
        other_stops: frozenset[str],
        fine: np.ndarray,
        centers: np.ndarray,
    ) -> int:
        """``max_top_themes``; or for a small history the most stable of a few counts (this fit's
        fine clusters beside two fits with the next seeds); or ``default_top_count``."""
        n = len(x)
        self.top_stability_: dict[int, float] = {}
        if self.max_top_themes is not None or n > STABLE_TOP_MAX_TEXTS:
            return self._max_top(n)
        counts = top_count_candidates(n)
        if len(counts) < 2:
            return counts[0]
        runs = [(fine, centers)]
        for step in range(1, STABILITY_RUNS):
            twin = copy.copy(self)
            twin.seed = self.seed + step
            rng = np.random.default_rng(twin.seed)
            z = twin._fit_reduce(twin._clustering_space(x, texts, rng, other_stops), rng)
            runs.append(twin._fine_clusters(z))
        partitions = {k: [self._merged_top(x, f, c, k)[0][f] for f, c in runs] for k in counts}
        best, self.top_stability_ = most_stable(partitions)
        return best

    def _merged_top(
        self, x: np.ndarray, fine: np.ndarray, centers: np.ndarray, count: int
    ) -> tuple[np.ndarray, float]:
        """The top theme of each fine cluster (Ward to at most ``count``, then near duplicates
        merged: at least merge_cosine alike, and among the 5% most alike pairs), and the cosine
        that counted as a near duplicate."""
        n = len(fine)
        weights = np.bincount(fine, minlength=len(centers)).astype(np.float64)
        min_size = max(self.min_topic_share * n, self.min_theme_size, 1.0)
        top = ward_groups(centers, weights, count, min_size)
        cosine = near_duplicate_cosine(x, fine, top, self.merge_cosine)
        return merge_near_duplicates(x, fine, top, cosine), cosine

    def _sub_level(
        self,
        z: np.ndarray,
        fine: np.ndarray,
        centers: np.ndarray,
        top_of_fine: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.cluster import KMeans

        centers = centers.copy()
        top_of_fine = top_of_fine.copy()
        fine = fine.copy()
        # a theme made of a single fine cluster is split in two so that every theme has sub-themes
        for top in np.unique(top_of_fine):
            members_fine = np.flatnonzero(top_of_fine == top)
            if len(members_fine) != 1:
                continue
            f = int(members_fine[0])
            rows = np.flatnonzero(fine == f)
            if len(rows) < 4 or len(np.unique(np.round(z[rows], 5), axis=0)) < 2:
                continue
            km = KMeans(n_clusters=2, n_init=1, random_state=self.seed).fit(z[rows])
            two = normalise_rows(km.cluster_centers_)
            side = np.argmax(z[rows] @ two.T, axis=1)
            if len(np.unique(side)) < 2:
                continue
            centers[f] = two[0]
            centers = np.vstack([centers, two[1:2]])
            top_of_fine = np.append(top_of_fine, top)
            fine[rows[side == 1]] = len(centers) - 1
        sub_of_fine = np.zeros(len(centers), dtype=np.int64)
        weights = np.bincount(fine, minlength=len(centers)).astype(np.float64)
        next_code = 0
        for top in np.unique(top_of_fine):
            members_fine = np.flatnonzero(top_of_fine == top)
            min_size = max(self.min_subtheme_share * weights[members_fine].sum(), 2.0)
            groups = ward_groups(
                centers[members_fine], weights[members_fine], self.max_subthemes, min_size
            )
            sub_of_fine[members_fine] = groups + next_code
            next_code += int(groups.max()) + 1
        return fine, centers, top_of_fine, sub_of_fine

    def _thresholds(self, fine: np.ndarray, dist: np.ndarray, n_fine: int) -> np.ndarray:
        """Per fine cluster: distance beyond which a text is an outlier of that cluster."""
        thr = np.full(n_fine, np.inf)
        for f in range(n_fine):
            d = dist[fine == f]
            if len(d) < 5:
                continue
            med = float(np.median(d))
            mad = 1.4826 * float(np.median(np.abs(d - med)))
            thr[f] = med + self.outlier_mads * max(mad, 1e-6)
        over = dist - thr[fine]
        cap = int(np.floor(self.max_unassigned * len(dist)))
        if int((over > 0).sum()) > cap:
            # keep only the ``cap`` farthest (relative to their cluster's threshold): raise every
            # threshold by the same margin
            margin = float(np.sort(over)[::-1][cap]) if cap < len(over) else 0.0
            thr = thr + max(margin, 0.0)
        return thr

    @staticmethod
    def _rank(codes: np.ndarray, n_codes: int) -> list[int]:
        counts = np.bincount(codes, minlength=n_codes) if len(codes) else np.zeros(n_codes, int)
        order = sorted((c for c in range(n_codes) if counts[c] > 0), key=lambda c: (-counts[c], c))
        return order

    # -- describing ------------------------------------------------------------------------
    def _describe(
        self,
        x: np.ndarray,
        texts: Sequence[str],
        meta: pd.DataFrame | None,
        other_stops: frozenset[str] = frozenset(),
    ) -> list[Theme]:
        from analyzer.themes.labels import ThemeLabel, describe_classes, extract_terms, make_unique

        rows_top = _rows_by_id(self.labels_)
        rows_sub = _rows_by_id(self.sublabels_)
        top_ids, sub_ids = sorted(rows_top), sorted(rows_sub)
        parent = {s: s.rsplit(".", 1)[0] for s in sub_ids}
        centroid = {
            k: normalise_rows(x[r].mean(0, keepdims=True))[0]
            for k, r in {**rows_top, **rows_sub}.items()
        }

        # texts for the labeller: those nearest each sub-theme's centre, split by size within a
        # theme; a theme's sample is the union of its sub-themes' (spaCy runs once per text)
        per_top = max(10, min(self.label_docs, self.label_max_docs // max(len(top_ids), 1)))
        label_rows: dict[str, np.ndarray] = {}
        for s in sub_ids:
            r = rows_sub[s]
            share = len(r) / len(rows_top[parent[s]])
            want = int(min(len(r), max(5, round(per_top * share))))
            order = np.argsort(-(x[r] @ centroid[s]), kind="stable")
            label_rows[s] = r[order[:want]]
        labels: dict[str, ThemeLabel] = {}
        if self.label and sub_ids:
            used = np.unique(np.concatenate([label_rows[s] for s in sub_ids]))
            pos = {int(r): i for i, r in enumerate(used)}
            table = extract_terms([texts[int(r)] for r in used], other_stops=other_stops)
            top_classes = [
                [pos[int(r)] for s in sub_ids if parent[s] == t for r in label_rows[s]]
                for t in top_ids
            ]
            sub_classes = [[pos[int(r)] for r in label_rows[s]] for s in sub_ids]
            top_labels = describe_classes(table, top_classes)
            sub_labels = describe_classes(table, sub_classes, use_template_keys=False)
            labels.update(dict(zip(top_ids, top_labels, strict=True)))
            labels.update(dict(zip(sub_ids, sub_labels, strict=True)))
            for tid, name in zip(top_ids, make_unique(top_labels), strict=True):
                labels[tid] = replace(labels[tid], label=name)
            for t in top_ids:
                kids = [s for s in sub_ids if parent[s] == t]
                names = make_unique([labels[s] for s in kids])
                for s, name in zip(kids, names, strict=True):
                    labels[s] = replace(labels[s], label=name)

        themes: list[Theme] = []
        for tid in [*top_ids, *sub_ids]:
            rows = rows_top.get(tid, rows_sub.get(tid))
            lab = labels.get(tid, ThemeLabel(label=tid, keywords=[]))
            themes.append(
                Theme(
                    theme_id=tid,
                    parent_id=parent.get(tid),
                    level=2 if tid in parent else 1,
                    label=lab.label,
                    keywords=list(lab.keywords),
                    size=len(rows),
                    examples=representative_texts(
                        x[rows], centroid[tid], [texts[i] for i in rows], self.n_examples
                    ),
                    breakdown=_breakdown(meta, rows),
                    sentiment=_mean_sentiment(meta, rows),
                    centroid=centroid[tid].astype(np.float32),
                )
            )
        return themes

    # -- placing new texts -----------------------------------------------------------------
    def transform(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(theme ids, sub-theme ids) for new rows: each joins the sub-theme whose centroid is
        nearest (cosine), and that sub-theme's parent, when the cosine is at least
        ``min_cosine``; ``None`` for both where no sub-theme is that close.

        The one rule by which texts join existing themes, for a fitted model and for one rebuilt
        by :meth:`from_themes` alike (a fit's own rows were placed by the fit: ``labels_``).
        """
        x = normalise_rows(embeddings)
        n = len(x)
        top = np.full(n, None, dtype=object)
        sub = np.full(n, None, dtype=object)
        subs = [th for th in self.themes_ if th.level == 2]
        if n == 0 or not subs:
            return top, sub
        centroids = normalise_rows(np.stack([th.centroid for th in subs]))
        sims = x @ centroids.T
        best = np.argmax(sims, axis=1)
        near = sims[np.arange(n), best] >= self.min_cosine
        sub_ids = np.array([th.theme_id for th in subs], dtype=object)
        parent_ids = np.array([th.parent_id for th in subs], dtype=object)
        sub[near] = sub_ids[best[near]]
        top[near] = parent_ids[best[near]]
        return top, sub

    def theme(self, theme_id: str) -> Theme:
        for th in self.themes_:
            if th.theme_id == theme_id:
                return th
        raise KeyError(theme_id)


def _nearest(z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre per row and the cosine distance to it (rows and centres unit length)."""
    sims = z @ centers.T
    idx = np.argmax(sims, axis=1)
    return idx, 1.0 - sims[np.arange(len(z)), idx]


def _rows_by_id(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices per id (``None`` rows left out), in one pass."""
    arr = np.asarray(ids, dtype=object)
    rows = np.flatnonzero(pd.notna(arr))
    if len(rows) == 0:
        return {}
    positions = pd.Series(rows).groupby(arr[rows].astype(str)).indices
    return {str(k): rows[np.asarray(v, dtype=np.int64)] for k, v in positions.items()}


def _breakdown(
    meta: pd.DataFrame | None, rows: np.ndarray, top: int = 10
) -> dict[str, dict[str, int]]:
    if meta is None:
        return {}
    out: dict[str, dict[str, int]] = {}
    for col in BREAKDOWN_COLUMNS:
        if col not in meta.columns:
            continue
        counts = meta[col].iloc[rows].fillna("(none)").astype(str).value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        head = {str(k): int(v) for k, v in counts.head(top).items()}
        rest = int(counts.iloc[top:].sum())
        if rest:
            head["(other)"] = rest
        out[col] = head
    return out


def _mean_sentiment(meta: pd.DataFrame | None, rows: np.ndarray) -> float | None:
    if meta is None:
        return None
    for col in ("sentiment_score", "sentiment"):
        if col in meta.columns and pd.api.types.is_numeric_dtype(meta[col]):
            vals = meta[col].iloc[rows].dropna()
            return float(vals.mean()) if len(vals) else None
    return None


# -- the stateless `civicpulse cluster` contract ---------------------------------------------
def cluster_texts(
    texts: Sequence[str],
    embeddings: np.ndarray,
    seed: int = 42,
    leave_out: np.ndarray | None = None,
    **params: Any,
) -> pd.DataFrame:
    """theme_id, theme_label (the sub-theme), parent_theme_id, parent_theme_label per input row.

    Unassigned rows, and the ``leave_out`` rows (empty texts, boilerplate: not fitted on), get
    theme_id "" and theme_label "unassigned" (parent columns "" and "unassigned").
    """
    n = len(texts)
    keep = np.ones(n, dtype=bool) if leave_out is None else ~np.asarray(leave_out, dtype=bool)
    sub, top = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    names: dict[str, str] = {}
    if keep.any():
        model = ThemeModel(seed=seed, **params).fit(
            embeddings[keep], [t for t, k in zip(texts, keep, strict=True) if k]
        )
        names = {th.theme_id: th.label for th in model.themes_}
        sub[keep] = ["" if s is None else s for s in model.sublabels_]
        top[keep] = ["" if t is None else t for t in model.labels_]
    return pd.DataFrame(
        {
            "theme_id": sub,
            "theme_label": [names[s] if s else UNASSIGNED_LABEL for s in sub],
            "parent_theme_id": top,
            "parent_theme_label": [names[t] if t else UNASSIGNED_LABEL for t in top],
        }
    )
