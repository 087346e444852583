"""The city's own duplicates as ground truth, and the detectors measured against them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzer.outcomes import (
    candidate_pairs,
    evaluate_detector,
    named_duplicate_pairs,
    order_pairs,
)
from analyzer.tagging.duplicates import DuplicateRule

T0 = pd.Timestamp("2019-05-01 08:00", tz="UTC")


def test_named_pairs_come_from_duplicate_notes_that_name_a_known_case() -> None:
    ids = pd.Series(["boston:101000000001", "boston:101000000002", "boston:101000000003"])
    notes = pd.Series(
        [
            "Case Resolved. towed.",
            "Duplicate of Existing Case. inspection requested 101000000001.",
            # an ISD number (7 digits) and a case that is not in the data are not pairs
            "Duplicate of Existing Case. case entered in ISD for inspection 1580619. 101099999999",
        ]
    )
    pairs = named_duplicate_pairs(ids, notes, np.array([False, True, True]))
    assert pairs.to_dict("records") == [
        {"dup_id": "boston:101000000002", "named_id": "boston:101000000001"}
    ]
    created = pd.Series([T0, T0 - pd.Timedelta(days=1), T0], index=ids)
    ordered = order_pairs(pairs, created)
    # the named case came later: the detector meets the pair at the named case
    assert ordered.to_dict("records") == [
        {"later_id": "boston:101000000001", "earlier_id": "boston:101000000002"}
    ]


@pytest.fixture()
def requests() -> pd.DataFrame:
    # a: the original; b: repeats it 2 days later 20 m away; c: same spot, other category;
    # d: 400 m away; e: 10 days later; f: after a was closed
    return pd.DataFrame(
        {
            "id": list("abcdef"),
            "created_at": [T0 + pd.Timedelta(days=d) for d in (0, 2, 2, 2, 10, 30)],
            "closed_at": [T0 + pd.Timedelta(days=20)] + [pd.NaT] * 5,
            "lat": [42.3, 42.30018, 42.3, 42.3036, 42.3, 42.3],
            "lon": [-71.0] * 6,
            "category": ["Other", "Other", "Illegal Parking", "Other", "Other", "Other"],
        }
    )


def test_candidates_are_earlier_open_near_and_of_the_same_category(
    requests: pd.DataFrame,
) -> None:
    pairs = candidate_pairs(requests, DuplicateRule())
    assert set(zip(pairs["new_id"], pairs["candidate_id"], strict=True)) == {("b", "a")}
    row = pairs.iloc[0]
    assert row["meters"] == pytest.approx(20, abs=1) and row["days"] == pytest.approx(2)
    wider = candidate_pairs(requests, DuplicateRule(same_category=False, max_days=14))
    assert {("b", "a"), ("c", "a"), ("c", "b"), ("e", "a"), ("e", "b")} <= set(
        zip(wider["new_id"], wider["candidate_id"], strict=True)
    )
    assert "f" not in set(wider["new_id"])  # a was closed by then


def test_text_similarity_filters_unless_the_spot_is_the_same(requests: pd.DataFrame) -> None:
    vectors = np.eye(6, dtype=np.float32)  # no two texts alike
    strict = candidate_pairs(requests, DuplicateRule(min_similarity=0.5), vectors=vectors)
    assert strict.empty
    near = candidate_pairs(
        requests, DuplicateRule(min_similarity=0.5, near_meters=30), vectors=vectors
    )
    assert list(near["new_id"]) == ["b"] and near["similarity"].iloc[0] == 0


def test_precision_and_recall_against_the_city() -> None:
    proposed = pd.DataFrame({"new_id": ["b", "c", "x"], "candidate_id": ["a", "a", "y"]})
    pairs = pd.DataFrame({"later_id": ["b", "e"], "earlier_id": ["a", "d"]})
    ev = evaluate_detector(proposed, pairs, city_duplicates={"b", "e"}, population={"b", "c", "e"})
    assert ev.pairs == 2 and ev.pairs_found == 1 and ev.pair_recall == 0.5
    assert ev.flagged == 2 and ev.request_precision == 0.5 and ev.request_recall == 0.5


def test_another_category_passes_only_with_similar_text(requests: pd.DataFrame) -> None:
    """c repeats a at the same spot under another category: the plain rule misses it; with
    ``cross_category_similarity`` it is found when the two texts say the same thing."""
    vectors = np.eye(6, dtype=np.float32)
    vectors[2] = vectors[0]  # c's text is a's
    rule = DuplicateRule(cross_category_similarity=0.8)
    found = candidate_pairs(requests, rule, vectors=vectors)
    assert set(zip(found["new_id"], found["candidate_id"], strict=True)) == {("b", "a"), ("c", "a")}
    vectors[2] = vectors[3]  # c's text unlike a's and b's: another category stays out
    found = candidate_pairs(requests, rule, vectors=vectors)
    assert set(zip(found["new_id"], found["candidate_id"], strict=True)) == {("b", "a")}
    with pytest.raises(ValueError, match="vectors"):
        candidate_pairs(requests, rule)
