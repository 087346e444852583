"""Duplicate detection: place, time, open status and text similarity, on constructed cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.tagging.duplicates import (
    INTAKE_RULE,
    DuplicateRule,
    duplicate_candidates,
    find_duplicates,
    haversine_m,
)

LAT, LON = 42.3601, -71.0589  # Boston City Hall
NOW = pd.Timestamp("2019-06-10T12:00:00Z")


def _north(meters: float) -> float:
    """Latitude ``meters`` north of LAT (one degree of latitude is ~111.2 km)."""
    return LAT + meters / 111_195.0


def _unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


SAME = _unit(1, 0, 0)
CLOSE = _unit(1, 0.3, 0)  # cosine ~0.96 with SAME
FAR = _unit(0, 1, 0)  # cosine 0 with SAME


def _new(**kw: object) -> pd.DataFrame:
    row = {"embedding": SAME, "lat": LAT, "lon": LON, "created_at": NOW}
    row.update(kw)
    return pd.DataFrame([row])


def _cands(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"embedding": SAME, "lat": LAT, "lon": LON, "created_at": NOW, "status": "open"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_haversine_known_distance() -> None:
    # Boston City Hall to the State House: about 400 m (measured on a map: 0.39-0.41 km).
    d = haversine_m(42.3601, -71.0589, np.array([42.3588]), np.array([-71.0638]))
    assert 380 < d[0] < 440
    assert haversine_m(LAT, LON, np.array([_north(100)]), np.array([LON]))[0] == pytest.approx(
        100, rel=1e-3
    )


def test_distance_limit() -> None:
    cands = _cands(
        [
            {"id": "near", "lat": _north(100)},
            {"id": "edge", "lat": _north(149)},
            {"id": "far", "lat": _north(160)},
        ]
    )
    assert find_duplicates(_new(), cands) == [["near", "edge"]]  # nearest first on a tie
    assert find_duplicates(_new(), cands, replace(INTAKE_RULE, max_meters=120)) == [["near"]]
    assert find_duplicates(_new(), cands, replace(INTAKE_RULE, max_meters=50)) == [[]]


def test_time_window_only_earlier_requests_within_max_days() -> None:
    cands = _cands(
        [
            {"id": "yesterday", "created_at": NOW - pd.Timedelta(days=1)},
            {"id": "last_month", "created_at": NOW - pd.Timedelta(days=30)},
            {"id": "tomorrow", "created_at": NOW + pd.Timedelta(days=1)},
            {"id": "six_days", "created_at": NOW - pd.Timedelta(days=6, hours=23)},
        ]
    )
    [ids] = find_duplicates(_new(), cands)
    assert sorted(ids) == ["six_days", "yesterday"]
    [ids] = find_duplicates(_new(), cands, replace(INTAKE_RULE, max_days=2))
    assert ids == ["yesterday"]


def test_only_open_candidates() -> None:
    cands = _cands(
        [
            {"id": "open", "status": "open"},
            {"id": "closed", "status": "closed"},
            {"id": "closed_caps", "status": " Closed "},
            {"id": "unknown", "status": None},  # no status is treated as open
        ]
    )
    [ids] = find_duplicates(_new(), cands)
    assert sorted(ids) == ["open", "unknown"]


def test_similarity_threshold_and_order() -> None:
    cands = _cands(
        [
            {"id": "close", "embedding": CLOSE},
            {"id": "unrelated", "embedding": FAR},
            {"id": "same", "embedding": SAME},
        ]
    )
    assert find_duplicates(_new(), cands, replace(INTAKE_RULE, min_similarity=0.9)) == [
        ["same", "close"]
    ]
    assert find_duplicates(_new(), cands, replace(INTAKE_RULE, min_similarity=0.99)) == [["same"]]
    pairs = duplicate_candidates(_new(), cands, replace(INTAKE_RULE, min_similarity=-1))
    assert list(pairs["candidate_id"]) == ["same", "close", "unrelated"]
    assert pairs["similarity"].iloc[-1] == pytest.approx(0.0, abs=1e-6)


def test_several_new_requests_and_self_match_skipped() -> None:
    new = pd.DataFrame(
        [
            {"id": "a", "embedding": SAME, "lat": LAT, "lon": LON, "created_at": NOW},
            {"id": "b", "embedding": SAME, "lat": LAT + 0.05, "lon": LON, "created_at": NOW},
        ]
    )
    cands = _cands([{"id": "a"}, {"id": "old", "created_at": NOW - pd.Timedelta(hours=3)}])
    assert find_duplicates(new, cands) == [["old"], []]


def test_missing_columns_are_input_errors() -> None:
    with pytest.raises(InputError, match="created_at"):
        find_duplicates(_new().drop(columns=["created_at"]), _cands([{"id": "x"}]))
    with pytest.raises(InputError, match="embedding"):
        find_duplicates(_new().drop(columns=["embedding"]), _cands([{"id": "x"}]))
    assert find_duplicates(
        _new(), _cands([]).reindex(columns=["id", "lat", "lon", "created_at"])
    ) == [[]]


def test_text_similarity_with_the_real_embedder(embedder) -> None:
    """Paraphrases of the same problem pass the default threshold; a different problem does not."""
    new = pd.DataFrame(
        [
            {
                "text": "Car parked blocking my driveway, can't get out",
                "lat": LAT,
                "lon": LON,
                "created_at": NOW,
            }
        ]
    )
    cands = _cands(
        [
            {
                "id": "same_problem",
                "text": "A vehicle is blocking the driveway, I cannot get my car out",
            },
            {"id": "other_problem", "text": "Large pothole in the road near the school crossing"},
        ]
    ).drop(columns=["embedding"])
    assert find_duplicates(new, cands, embedder=embedder) == [["same_problem"]]


def test_duplicates_in_store(tmp_store, embedder) -> None:
    from analyzer.common.hashing import text_hash
    from analyzer.tagging.duplicates import duplicates_in_store

    rows = [
        (
            "r1",
            "Car blocking my driveway for two hours",
            "open",
            LAT,
            LON,
            NOW - pd.Timedelta(days=1),
        ),
        (
            "r2",
            "Car blocking my driveway for two hours",
            "closed",
            LAT,
            LON,
            NOW - pd.Timedelta(days=1),
        ),
        ("r3", "Car blocking my driveway for two hours", "open", _north(500), LON, NOW),
        ("r4", "Streetlight out on the corner", "open", LAT, LON, NOW - pd.Timedelta(days=2)),
    ]
    for rid, text, status, lat, lon, when in rows:
        tmp_store.execute(
            "INSERT INTO records (id, source, text, created_at, status, lat, lon, text_hash) "
            "VALUES (?, 'test', ?, ?, ?, ?, ?, ?)",
            [rid, text, when.to_pydatetime(), status, lat, lon, text_hash(text)],
        )
    found = duplicates_in_store(
        tmp_store,
        "A car is blocking the driveway",
        lat=LAT,
        lon=LON,
        created_at=NOW,
        embedder=embedder,
    )
    assert [f["id"] for f in found] == ["r1"]
    assert found[0]["meters"] < 1 and 0.9 < found[0]["days"] < 1.1


def test_one_rule_for_category_and_text() -> None:
    """``DuplicateRule.accepts`` is the rule both intake and the outcomes benchmark apply."""
    rule = DuplicateRule(same_category=True, cross_category_similarity=0.9)
    cands = _cands(
        [
            {"id": "same_cat", "category": "Pothole", "embedding": FAR},
            {"id": "other_cat", "category": "Graffiti", "embedding": FAR},
            {"id": "other_cat_same_words", "category": "Graffiti", "embedding": SAME},
            {"id": "no_cat", "category": None, "embedding": FAR},
        ]
    )
    [ids] = find_duplicates(_new(category="Pothole"), cands, rule)
    assert sorted(ids) == ["no_cat", "other_cat_same_words", "same_cat"]
    # intake proposes by place, time and words, whatever the category
    [ids] = find_duplicates(_new(category="Pothole"), cands)
    assert ids == ["other_cat_same_words"]
    plain = DuplicateRule()  # same category, no text: never needs an embedding
    [ids] = find_duplicates(_new(category="Pothole").drop(columns=["embedding"]), cands, plain)
    assert sorted(ids) == ["no_cat", "same_cat"]
