"""The opinion estimator on small vote matrices whose answers can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from analyzer.opinions import OpinionModel, VoteMatrix, build_report, theme_summaries
from analyzer.opinions.consensus import prop_test, two_prop_test
from analyzer.opinions.conversation import Conversation, statements_frame
from analyzer.opinions.model import clusterable, uniform_voters
from analyzer.opinions.projection import fit_projection, project

NAN = np.nan


def camps(n_per_camp: int = 30, seed: int = 0) -> tuple[VoteMatrix, np.ndarray]:
    """Two camps of voters: statements 0-3 camp A agrees and B disagrees, 4-7 the reverse,
    8 everyone agrees (common ground), 9 nearly everyone passes (uncertain); 10 % of the votes
    flipped and 10 % unseen, so nothing is perfectly clean."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_camp
    truth = np.repeat([0, 1], n_per_camp)
    votes = np.zeros((n, 10))
    for i, camp in enumerate(truth):
        sign = 1 if camp == 0 else -1
        votes[i, :4] = sign
        votes[i, 4:8] = -sign
        votes[i, 8] = 1
        votes[i, 9] = 0 if rng.random() < 0.9 else 1
    flip = rng.random((n, 8)) < 0.1
    votes[:, :8][flip] *= -1
    votes[rng.random((n, 10)) < 0.1] = NAN
    return VoteMatrix(np.arange(n), np.arange(10), votes), truth


def test_two_camps_are_found_by_both_methods_with_their_statements() -> None:
    matrix, truth = camps()
    for method in ("civicpulse", "polis"):
        model = OpinionModel(method=method, seed=3).fit(matrix)
        assert model.n_groups_ == 2, method
        grouped = model.labels_ >= 0
        assert adjusted_rand_score(truth[grouped], model.labels_[grouped]) == 1.0, method
        for gid, reps in model.representative_.items():
            members = truth[model.labels_ == gid]
            camp = int(np.bincount(members).argmax())
            agreed = set(reps.loc[reps["repful_for"] == "agree", "statement"])
            # a camp's representative agrees are its own statements, never the common ground
            assert agreed and agreed <= ({0, 1, 2, 3} if camp == 0 else {4, 5, 6, 7}), method
        flags = model.statements_["flags"]
        assert "common_ground" in flags[8] and "divisive" not in flags[8]
        assert all("divisive" in flags[j] for j in range(8))
        assert "uncertain" in flags[9]


def test_gic_is_the_product_of_smoothed_agree_rates_over_the_given_groups() -> None:
    votes = np.array(
        [
            [1, 1, NAN],
            [1, -1, 0],
            [0, 1, 1],
            [-1, NAN, 1],
            [1, 1, -1],
        ],
        dtype=float,
    )
    groups = np.array([0, 0, 1, 1, -1])  # the last participant is in no group: not counted
    matrix = VoteMatrix(np.arange(5), np.array([10, 11, 12]), votes, source_groups=groups)
    model = OpinionModel(use_source_groups=True).fit(matrix)
    # statement 10: group 0 A=2 S=2, group 1 A=0 S=2 (a pass counts as seen)
    assert model.gic_[0] == pytest.approx((3 / 4) * (1 / 4), abs=1e-15)
    # statement 11: group 0 A=1 S=2; group 1 A=1 S=1
    assert model.gic_[1] == pytest.approx((2 / 4) * (2 / 3), abs=1e-15)
    # statement 12: group 0 A=0 S=1; group 1 A=2 S=2
    assert model.gic_[2] == pytest.approx((1 / 3) * (3 / 4), abs=1e-15)
    assert list(model.group_ids_) == [0, 1]


def test_polis_tests_match_hand_computed_values() -> None:
    # prop-test: 2 sqrt(n+1) ((s+1)/(n+1) - 1/2); 9 agrees of 10
    assert prop_test(np.array(9.0), np.array(10.0)) == pytest.approx(
        2 * math.sqrt(11) * (10 / 11 - 0.5)
    )
    # two-prop-test with +1 on every count
    p1, p2 = 9 / 11, 3 / 21
    pooled = 12 / 32
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 11 + 1 / 21))
    got = two_prop_test(np.array(8.0), np.array(2.0), np.array(10.0), np.array(20.0))
    assert got == pytest.approx(z)
    assert two_prop_test(np.array(5.0), np.array(5.0), np.array(5.0), np.array(5.0)) == 0.0


def test_clustered_participants_follow_polis_vote_minimum_and_top_up() -> None:
    counts = np.array([10, 7, 6, 0, 3, 8])
    assert clusterable(counts, 20, 7, 0).tolist() == [True, True, False, False, False, True]
    # fewer than greedy_n: topped up by most votes, never with someone who cast none
    assert clusterable(counts, 20, 7, 5).tolist() == [True, True, True, False, True, True]
    # fewer statements than the minimum: all of them is enough
    assert clusterable(np.array([3, 2]), 3, 7, 0).tolist() == [True, False]


def test_positions_are_scaled_up_for_participants_who_voted_on_fewer_statements() -> None:
    votes = np.array([[1, -1, 1, -1], [1, NAN, 1, NAN], [-1, 1, -1, 1], [-1, 1, NAN, NAN]])
    proj = fit_projection(votes)
    raw_only = np.where(np.isfinite(votes), votes - proj.center, 0.0) @ proj.components.T
    pos = project(votes, proj)
    assert pos[0] == pytest.approx(raw_only[0])
    assert pos[1] == pytest.approx(raw_only[1] * math.sqrt(2))


def test_agree_to_everything_participants_are_left_out_of_groups_in_our_method_only() -> None:
    matrix, _ = camps()
    yes = np.ones((3, 10))
    votes = np.vstack([matrix.votes, yes])
    bigger = VoteMatrix(np.arange(len(votes)), matrix.statement_ids, votes)
    assert uniform_voters(votes, 10, 0.95)[-3:].all()
    ours = OpinionModel(seed=1).fit(bigger)
    assert (ours.labels_[-3:] == -1).all() and ours.uniform_[-3:].all()
    polis = OpinionModel(method="polis", seed=1).fit(bigger)
    assert (polis.labels_[-3:] >= 0).all()


def test_same_seed_same_groups_and_params_are_the_constructor_arguments() -> None:
    matrix, _ = camps(seed=5)
    a = OpinionModel(seed=7).fit(matrix)
    b = OpinionModel(seed=7).fit(matrix)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.allclose(a.positions_, b.positions_)
    params = OpinionModel(method="polis", max_groups=4).get_params()
    assert params["method"] == "polis" and params["max_groups"] == 4 and params["seed"] == 42
    with pytest.raises(ValueError):
        OpinionModel(method="nope").fit(matrix)


def test_latest_vote_counts_when_a_participant_changes_their_vote() -> None:
    votes = pd.DataFrame(
        {
            "participant_id": ["1", "1", "2"],
            "statement_id": ["5", "5", "5"],
            "vote": [1, -1, 0],
            "voted_at": ["2024-01-02", "2024-01-01", "2024-01-01"],
        }
    )
    matrix = VoteMatrix.from_long(votes, statement_ids=["6"])
    assert matrix.participant_ids.tolist() == [1, 2]
    assert matrix.statement_ids.tolist() == [5, 6]
    assert matrix.votes[0, 0] == 1 and matrix.votes[1, 0] == 0
    assert np.isnan(matrix.votes[:, 1]).all()


def test_report_follows_the_output_contract() -> None:
    matrix, _ = camps()
    matrix = matrix.with_moderated_out([9])
    texts = {str(i): f"statement {i}" for i in range(10)}
    conv = Conversation("c1", "t", matrix, statements_frame(matrix, texts, {"9"}))
    themes = pd.DataFrame(
        {
            "theme_id": ["T1"] * 4 + ["T2"] * 4 + ["T3", None],
            "theme_label": ["parks"] * 4 + ["bikes"] * 4 + ["all", None],
        }
    )
    model = OpinionModel(seed=2).fit(matrix)
    report = build_report(model, conv, themes)
    group = report["groups"][0]
    assert {"group_id", "size", "representative"} <= set(group)
    assert {"statement_id", "text", "agree_probability", "repness"} <= set(
        group["representative"][0]
    )
    st = report["statements"][0]
    assert {
        "statement_id",
        "text",
        "gic",
        "agree_by_group",
        "flags",
        "theme_id",
        "theme_label",
    } <= set(st)
    assert isinstance(st["statement_id"], int) and st["theme_id"] == "T1"
    assert set(st["agree_by_group"]) == {"0", "1"}
    moderated = report["statements"][9]
    assert moderated["moderated"] and moderated["flags"] == []
    part = report["participants"][0]
    assert {"participant_id", "group_id", "x", "y"} <= set(part)
    verdicts = {t["theme_label"]: t["verdict"] for t in report["themes"]}
    assert verdicts == {"parks": "divided", "bikes": "divided", "all": "common ground"}
    bikes = next(t for t in report["themes"] if t["theme_label"] == "bikes")
    stances = {g["group_id"]: {q["stance"] for q in g["says"]} for g in bikes["groups"]}
    assert stances[0] and stances[1]


def test_theme_without_rated_statements_says_so() -> None:
    rows = [
        {
            "statement_id": 1,
            "text": "x",
            "theme_id": "T",
            "theme_label": "t",
            "flags": [],
            "agree_by_group": {"0": 0.5},
            "rated": False,
            "moderated": False,
        }
    ]
    assert theme_summaries(rows, [0])[0]["verdict"] == "too few votes"
