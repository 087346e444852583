"""Find open requests that a new request probably repeats: same place, same days, similar words.

:class:`DuplicateRule` is the one rule for "this request repeats that one", used at intake
(``POST /v1/tag``: :func:`duplicates_in_store`) and measured against the city's own duplicates
(``analyzer.outcomes.duplicates``, ``python -m benchmarks.outcomes --part duplicates``). A
candidate must be open, filed at most ``max_days`` before the new request (and not after it),
within ``max_meters`` (great-circle distance), and pass :meth:`DuplicateRule.accepts` on text
similarity and category. Place and time are checked first because they are cheap and cut the
candidates to a handful; only those are compared by text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyzer.common.params import Params
from analyzer.common.vectors import normalise_rows
from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.embedding.embedder import Embedder
    from analyzer.store.database import Store

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "INTAKE_RULE",
    "PLAIN_RULE",
    "DuplicateRule",
    "duplicate_candidates",
    "duplicates_in_store",
    "find_duplicates",
    "haversine_m",
]

EARTH_RADIUS_M = 6_371_008.8
# Chosen on Boston's "Other" requests that staff closed as duplicates (benchmarks/tagging.py).
DEFAULT_MIN_SIMILARITY = 0.6
CLOSED = {"closed"}


@dataclass(frozen=True)
class DuplicateRule(Params):
    """Which earlier, still open requests a new request probably repeats.

    ``max_meters`` and ``max_days``: place and time window; ``same_category``: the city's category
    must match (where both requests have one); ``min_similarity``: cosine of the two texts'
    embeddings (None: text not used); ``near_meters``: a candidate this close passes without the
    text test (a repeated report of the same spot often words it differently);
    ``cross_category_similarity``: with ``same_category``, a candidate of another category still
    passes when the texts are at least this similar (residents file the same problem under
    different categories)."""

    max_meters: float = 150.0
    max_days: float = 7.0
    same_category: bool = True
    min_similarity: float | None = None
    near_meters: float | None = None
    cross_category_similarity: float | None = None

    @property
    def uses_text(self) -> bool:
        return self.min_similarity is not None or self.cross_category_similarity is not None

    def accepts(
        self, meters: np.ndarray, similarity: np.ndarray, same_category: np.ndarray
    ) -> np.ndarray:
        """The test a (new, candidate) pair inside the time window must pass, as a mask over
        pairs: ``meters`` apart, text ``similarity`` (NaN: unknown), ``same_category`` (True
        where the categories match or either is unknown)."""
        meters = np.asarray(meters, dtype=np.float64)
        sim = np.asarray(similarity, dtype=np.float64)
        ok = meters <= self.max_meters
        if self.min_similarity is not None:
            text_ok = sim >= self.min_similarity
            if self.near_meters is not None:
                text_ok |= meters <= self.near_meters
            ok &= text_ok
        if self.same_category:
            cat_ok = np.asarray(same_category, dtype=bool).copy()
            if self.cross_category_similarity is not None:
                cat_ok |= sim >= self.cross_category_similarity
            ok &= cat_ok
        return ok


# the plain rule cities use: same category, 150 m, 7 days
PLAIN_RULE = DuplicateRule()
# what POST /v1/tag proposes: 150 m, 7 days, similar words, any category
INTAKE_RULE = DuplicateRule(same_category=False, min_similarity=DEFAULT_MIN_SIMILARITY)


def haversine_m(
    lat1: float | np.ndarray, lon1: float | np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres (inputs in degrees, broadcast)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what} lacks the columns {missing}")


def _vectors(df: pd.DataFrame, what: str, embedder: Embedder | None) -> np.ndarray:
    """Unit-norm embeddings from an ``embedding`` column, or by embedding a ``text`` column."""
    if "embedding" in df.columns:
        if len(df) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        mat = np.vstack([np.asarray(v, dtype=np.float32) for v in df["embedding"]])
    elif "text" in df.columns:
        if embedder is None:
            from analyzer.embedding.embedder import get_embedder

            embedder = get_embedder()
        mat = embedder.embed(df["text"].fillna("").astype(str).tolist())
    else:
        raise InputError(f"{what} needs an 'embedding' or a 'text' column")
    return normalise_rows(mat)


def _categories(df: pd.DataFrame) -> list[str | None]:
    """Each row's category, None where the frame has none or the row's is empty."""
    if "category" not in df.columns:
        return [None] * len(df)
    return [
        str(c).strip() if isinstance(c, str) and c.strip() else None
        for c in df["category"].tolist()
    ]


def _utc(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (NaT stays NaT -> int64 min)."""
    ts = pd.to_datetime(values, utc=True, errors="coerce")
    return ts.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").astype(np.int64)


def duplicate_candidates(
    new: pd.DataFrame,
    candidates: pd.DataFrame,
    rule: DuplicateRule = INTAKE_RULE,
    *,
    embedder: Embedder | None = None,
) -> pd.DataFrame:
    """Every (new row, candidate) pair the rule accepts, with its distance, age and similarity.

    ``new``: ``text`` or ``embedding``, ``lat``, ``lon``, ``created_at`` (and ``id``: skip itself;
    ``category``: optional). ``candidates``: ``id``, ``embedding`` or ``text``, ``lat``, ``lon``,
    ``created_at``, ``status`` (optional; missing means open), ``category`` (optional). Returns
    columns new_index (position in ``new``), candidate_id, meters, days, similarity, sorted by
    new_index, then similarity (highest first), then meters.
    """
    max_meters, max_days = rule.max_meters, rule.max_days
    _require(new, ["lat", "lon", "created_at"], "new requests")
    _require(candidates, ["id", "lat", "lon", "created_at"], "candidates")
    columns = ["new_index", "candidate_id", "meters", "days", "similarity"]
    cand = candidates
    if "status" in cand.columns:
        status = cand["status"].fillna("").astype(str).str.strip().str.lower()
        cand = cand[~status.isin(CLOSED)]
    cand = cand[cand["lat"].notna() & cand["lon"].notna()]
    cand_t = _utc(cand["created_at"])
    known = cand_t != np.iinfo(np.int64).min  # a candidate without a date cannot be placed in time
    cand = cand[known]
    cand_t = cand_t[known]
    if len(new) == 0 or len(cand) == 0:
        return pd.DataFrame(columns=columns)

    order = np.argsort(cand_t, kind="stable")
    cand = cand.iloc[order].reset_index(drop=True)
    cand_t = cand_t[order]
    cand_lat = cand["lat"].to_numpy(dtype=np.float64)
    cand_lon = cand["lon"].to_numpy(dtype=np.float64)
    cand_ids = cand["id"].astype(str).to_numpy()
    new_t = _utc(new["created_at"])
    new_ids = new["id"].astype(str).to_numpy() if "id" in new.columns else None
    window = int(max_days * 86_400 * 1e9)

    # Place and time first, per new request, on the time-sorted candidates.
    pairs: list[tuple[int, int, float, float]] = []
    for i, (lat, lon, t) in enumerate(
        zip(new["lat"].to_numpy(float), new["lon"].to_numpy(float), new_t, strict=True)
    ):
        if np.isnan(lat) or np.isnan(lon) or t == np.iinfo(np.int64).min:
            continue
        lo = np.searchsorted(cand_t, t - window, side="left")
        hi = np.searchsorted(cand_t, t, side="right")
        if hi <= lo:
            continue
        meters = haversine_m(lat, lon, cand_lat[lo:hi], cand_lon[lo:hi])
        for j in np.flatnonzero(meters <= max_meters):
            k = lo + int(j)
            if new_ids is not None and cand_ids[k] == new_ids[i]:
                continue
            pairs.append((i, k, float(meters[j]), (t - cand_t[k]) / 86_400e9))
    if not pairs:
        return pd.DataFrame(columns=columns)

    # Text only for the pairs that survived: embed just the rows involved.
    new_rows = sorted({p[0] for p in pairs})
    cand_rows = sorted({p[1] for p in pairs})
    if rule.uses_text:
        new_vec = dict(
            zip(new_rows, _vectors(new.iloc[new_rows], "new requests", embedder), strict=True)
        )
        cand_vec = dict(
            zip(cand_rows, _vectors(cand.iloc[cand_rows], "candidates", embedder), strict=True)
        )
        sims = np.array([float(new_vec[i] @ cand_vec[k]) for i, k, _, _ in pairs])
    else:
        sims = np.full(len(pairs), np.nan)
    new_cat = _categories(new)
    cand_cat = _categories(cand)
    same = np.array(
        [
            new_cat[i] is None or cand_cat[k] is None or new_cat[i] == cand_cat[k]
            for i, k, _, _ in pairs
        ],
        dtype=bool,
    )
    out = pd.DataFrame(
        {
            "new_index": [p[0] for p in pairs],
            "candidate_id": [cand_ids[p[1]] for p in pairs],
            "meters": [p[2] for p in pairs],
            "days": [p[3] for p in pairs],
            "similarity": sims,
        }
    )
    out = out[rule.accepts(out["meters"].to_numpy(), sims, same)]
    # Most similar first; among equally similar ones, the nearest.
    out = out.sort_values(
        ["new_index", "similarity", "meters"], ascending=[True, False, True], kind="stable"
    )
    return out.reset_index(drop=True)


def find_duplicates(
    new: pd.DataFrame,
    candidates: pd.DataFrame,
    rule: DuplicateRule = INTAKE_RULE,
    *,
    embedder: Embedder | None = None,
) -> list[list[str]]:
    """Per row of ``new``: ids of the open candidates it probably repeats, most similar first."""
    pairs = duplicate_candidates(new, candidates, rule, embedder=embedder)
    out: list[list[str]] = [[] for _ in range(len(new))]
    for i, cid in zip(pairs["new_index"], pairs["candidate_id"], strict=True):
        out[int(i)].append(str(cid))
    return out


def duplicates_in_store(
    store: Store,
    text: str,
    *,
    lat: float,
    lon: float,
    created_at: object,
    category: str | None = None,
    rule: DuplicateRule = INTAKE_RULE,
    embedder: Embedder | None = None,
) -> list[dict[str, object]]:
    """Open records in the store that one new request probably repeats.

    Returns dicts (id, meters, days, similarity), most similar first. Candidate embeddings come from
    the store's cache when there; the others are embedded now and not written (this is a read).
    """
    from analyzer.common.hashing import text_hash
    from analyzer.embedding.embedder import get_embedder

    max_meters, max_days = rule.max_meters, rule.max_days
    when = pd.Timestamp(created_at)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    # A bounding box in degrees narrows the SQL scan; the exact distance is checked afterwards.
    dlat = max_meters / 111_000.0
    dlon = dlat / max(np.cos(np.radians(lat)), 1e-6)
    rows = store.query_df(
        "SELECT id, text, text_hash, created_at, status, lat, lon, category FROM records "
        "WHERE created_at BETWEEN ? AND ? AND lower(coalesce(status, '')) <> 'closed' "
        "AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?",
        [
            (when - pd.Timedelta(days=max_days)).to_pydatetime(),
            when.to_pydatetime(),
            lat - dlat,
            lat + dlat,
            lon - dlon,
            lon + dlon,
        ],
    )
    if rows.empty:
        return []
    embedder = embedder or get_embedder()
    cached = store.cached_embeddings(embedder.model_id, rows["text_hash"].tolist())
    missing = [t for t, h in zip(rows["text"], rows["text_hash"], strict=True) if h not in cached]
    if missing:
        fresh = embedder.embed(missing)
        cached.update(zip((text_hash(t) for t in missing), fresh, strict=True))
    rows["embedding"] = [
        cached.get(h, cached.get(text_hash(t)))
        for h, t in zip(rows["text_hash"], rows["text"], strict=True)
    ]
    new = pd.DataFrame(
        {
            "embedding": [embedder.embed([text])[0]],
            "lat": [lat],
            "lon": [lon],
            "created_at": [when],
            "category": [category],
        }
    )
    pairs = duplicate_candidates(new, rows.drop(columns=["text"]), rule)
    return [
        {
            "id": str(r.candidate_id),
            "meters": round(float(r.meters), 1),
            "days": round(float(r.days), 2),
            "similarity": round(float(r.similarity), 4),
        }
        for r in pairs.itertuples()
    ]
