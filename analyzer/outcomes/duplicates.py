"""Duplicate detectors measured against the city's own duplicates.

Boston's staff close a repeated request with "Duplicate of Existing Case" and often name the case
it repeats ("... inspection requested 101002195083"). Those named pairs are real duplicates that
nobody here labelled; the requests closed as duplicates (named or not) are the city's own verdict.
A detector is run as it would have been at intake: for each request, on the requests filed before
it that were still open then, and measured by

- pair recall: of the named pairs, the share whose earlier request the detector proposes for the
  later one;
- request precision and recall: of the requests the detector flags, the share the city closed as
  duplicates, and of those the city closed as duplicates, the share flagged. (The city does not
  mark every duplicate, so precision is a lower bound.)

:class:`~analyzer.tagging.duplicates.DuplicateRule` (the one rule, also used at intake) is the
family of rules compared: place and time (the plain rule: same category, 150 m, 7 days),
optionally text similarity (cosine of the two requests' embeddings), and a tighter radius where
the text says little.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.tagging.duplicates import DuplicateRule, haversine_m

__all__ = [
    "DuplicateEvaluation",
    "candidate_pairs",
    "evaluate_detector",
    "named_duplicate_pairs",
    "order_pairs",
]

# a long case number in a note: 9 to 15 digits (Boston's are 12: 101001234567)
CASE_NUMBER = r"(?<![0-9])[0-9]{9,15}(?![0-9])"
DAY_NS = 86_400 * 10**9


def named_duplicate_pairs(
    ids: pd.Series, notes: pd.Series, is_duplicate: np.ndarray
) -> pd.DataFrame:
    """(duplicate, named) id pairs from the notes of requests closed as duplicates, where the
    number a note names is another request among ``ids`` (matched on its digits: a store id such
    as ``boston:101001234567`` is named as 101001234567). Columns ``dup_id``, ``named_id``."""
    ids = ids.astype(str).reset_index(drop=True)
    digits = ids.str.replace(r"^.*?([0-9]+)$", r"\1", regex=True)
    by_digits = dict(zip(digits.where(digits.str.fullmatch(r"[0-9]+")), ids, strict=True))
    rows = []
    dup = np.asarray(is_duplicate, dtype=bool)
    for own, note in zip(ids[dup], notes.reset_index(drop=True)[dup], strict=True):
        for number in re.findall(CASE_NUMBER, str(note or "")):
            other = by_digits.get(number)
            if other is not None and other != own:
                rows.append((own, other))
    return pd.DataFrame(rows, columns=["dup_id", "named_id"]).drop_duplicates()


def candidate_pairs(
    requests: pd.DataFrame,
    rule: DuplicateRule,
    *,
    new_ids: set[str] | None = None,
    vectors: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every (new, candidate) pair the rule accepts: the candidate was filed at most ``max_days``
    before the new request, was still open when it came (``closed_at`` later, or never), lies
    within ``max_meters`` and, per the rule, shares its category and words.

    ``requests``: ``id``, ``created_at``, ``closed_at`` (NaT: still open), ``lat``, ``lon``,
    ``category``; ``vectors``: unit-norm embeddings in the same row order (needed when the rule
    uses text). Only requests in ``new_ids`` (default: all) are taken as new. Returns ``new_id``,
    ``candidate_id``, ``meters``, ``days``, ``similarity`` (NaN without vectors).
    """
    if rule.uses_text and vectors is None:
        raise ValueError("this rule compares texts: pass the requests' vectors")
    # another category is kept for now only when similar enough text may admit it
    early_category = rule.same_category and rule.cross_category_similarity is None
    df = requests.reset_index(drop=True)
    located = df["lat"].notna().to_numpy() & df["lon"].notna().to_numpy()
    created = _ns(df["created_at"])
    closed = _ns(df["closed_at"])
    closed = np.where(closed == np.iinfo(np.int64).min, np.iinfo(np.int64).max, closed)
    order = np.argsort(created, kind="stable")
    t_sorted = created[order]
    lat = df["lat"].to_numpy(float)
    lon = df["lon"].to_numpy(float)
    cat = df["category"].fillna("").astype(str).to_numpy()
    ids = df["id"].astype(str).to_numpy()
    window = int(rule.max_days * DAY_NS)
    rows: list[tuple[int, int, float, float]] = []
    for i in np.flatnonzero(located):
        if new_ids is not None and ids[i] not in new_ids:
            continue
        t = created[i]
        lo = np.searchsorted(t_sorted, t - window, side="left")
        hi = np.searchsorted(t_sorted, t, side="right")
        cand = order[lo:hi]
        cand = cand[(cand != i) & located[cand] & (closed[cand] > t) & (created[cand] <= t)]
        if early_category:
            cand = cand[(cat[cand] == cat[i]) | (cat[cand] == "") | (cat[i] == "")]
        if len(cand) == 0:
            continue
        meters = haversine_m(lat[i], lon[i], lat[cand], lon[cand])
        near = meters <= rule.max_meters
        for j, m in zip(cand[near], meters[near], strict=True):
            rows.append((i, int(j), float(m), (t - created[j]) / DAY_NS))
    out = pd.DataFrame(rows, columns=["new", "cand", "meters", "days"])
    if vectors is not None and len(out):
        a = vectors[out["new"].to_numpy()]
        b = vectors[out["cand"].to_numpy()]
        out["similarity"] = np.einsum("ij,ij->i", a, b)
    else:
        out["similarity"] = np.nan
    if len(out):
        a_cat, b_cat = cat[out["new"].to_numpy()], cat[out["cand"].to_numpy()]
        same = (a_cat == b_cat) | (a_cat == "") | (b_cat == "")
        out = out[rule.accepts(out["meters"].to_numpy(), out["similarity"].to_numpy(), same)]
    out["new_id"] = ids[out["new"].to_numpy()] if len(out) else []
    out["candidate_id"] = ids[out["cand"].to_numpy()] if len(out) else []
    return out[["new_id", "candidate_id", "meters", "days", "similarity"]].reset_index(drop=True)


def order_pairs(named: pd.DataFrame, created: pd.Series) -> pd.DataFrame:
    """Named pairs as (``later_id``, ``earlier_id``) by filing time (``created``: id -> time),
    where both times are known: a detector meets a pair at its later request."""
    t = pd.to_datetime(created, utc=True, errors="coerce")
    a = t.reindex(named["dup_id"]).to_numpy()
    b = t.reindex(named["named_id"]).to_numpy()
    known = ~pd.isna(a) & ~pd.isna(b)
    later = np.where(a >= b, named["dup_id"], named["named_id"])
    earlier = np.where(a >= b, named["named_id"], named["dup_id"])
    out = pd.DataFrame({"later_id": later[known], "earlier_id": earlier[known]})
    return out.drop_duplicates().reset_index(drop=True)


@dataclass(frozen=True)
class DuplicateEvaluation:
    pair_recall: float | None
    pairs: int
    pairs_found: int
    request_precision: float | None
    request_recall: float | None
    flagged: int
    city_duplicates: int
    flagged_city_duplicates: int
    proposals: int


def evaluate_detector(
    proposed: pd.DataFrame,
    pairs: pd.DataFrame,
    city_duplicates: set[str],
    population: set[str],
) -> DuplicateEvaluation:
    """Score ``proposed`` (``new_id``, ``candidate_id``) against the city's duplicates, over the
    requests in ``population`` taken as new; ``pairs`` are the named pairs as
    :func:`order_pairs` gives them (a pair is met at its later request)."""
    proposed = proposed[proposed["new_id"].isin(population)]
    found = set(zip(proposed["new_id"], proposed["candidate_id"], strict=True))
    ordered = {
        (a, b)
        for a, b in zip(pairs["later_id"], pairs["earlier_id"], strict=True)
        if a in population
    }
    hit = len(ordered & found)
    flagged = set(proposed["new_id"])
    dups = city_duplicates & population
    both = len(flagged & dups)
    return DuplicateEvaluation(
        pair_recall=hit / len(ordered) if ordered else None,
        pairs=len(ordered),
        pairs_found=hit,
        request_precision=both / len(flagged) if flagged else None,
        request_recall=both / len(dups) if dups else None,
        flagged=len(flagged),
        city_duplicates=len(dups),
        flagged_city_duplicates=both,
        proposals=len(proposed),
    )


def _ns(values: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(values, utc=True, errors="coerce")
    return ts.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").astype(np.int64)
