"""Per group and statement: vote counts, agree probabilities, Polis's representativeness and
group-informed consensus, and Jigsaw's common-ground / divisive / uncertain flags.

Counts are over the members of each group (participants in no group are left out, as in Polis).
``S`` (seen) counts agrees, disagrees and passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Z_90 = 1.2816  # one-sided 90 % (Polis's z-sig-90?)


@dataclass(frozen=True)
class GroupCounts:
    group_ids: np.ndarray  # (k,)
    agree: np.ndarray  # (k, statements)
    disagree: np.ndarray
    seen: np.ndarray

    @property
    def passes(self) -> np.ndarray:
        return self.seen - self.agree - self.disagree


def group_counts(votes: np.ndarray, labels: np.ndarray, group_ids: np.ndarray) -> GroupCounts:
    """A, D and S per group and statement (one matrix product each)."""
    member = (labels[:, None] == group_ids[None, :]).astype(float)  # (participants, k)
    seen = np.isfinite(votes)
    agree = (votes == 1).astype(float)
    disagree = (votes == -1).astype(float)
    return GroupCounts(
        group_ids,
        member.T @ agree,
        member.T @ disagree,
        member.T @ seen.astype(float),
    )


def agree_probability(agree: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(A + 1) / (S + 2): the agree probability with a uniform prior."""
    return (agree + 1.0) / (seen + 2.0)


def group_informed_consensus(counts: GroupCounts) -> np.ndarray:
    """GIC(c) = Π over groups (A_g + 1) / (S_g + 2) (Polis's group-aware consensus)."""
    if not len(counts.group_ids):
        return np.full(counts.agree.shape[1], np.nan)
    return np.prod(agree_probability(counts.agree, counts.seen), axis=0)


def prop_test(success: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Polis's one-sample test of a proportion against 0.5 (with +1 pseudo-counts)."""
    s, m = success + 1.0, n + 1.0
    return 2.0 * np.sqrt(m) * (s / m - 0.5)


def two_prop_test(
    success_in: np.ndarray, success_out: np.ndarray, n_in: np.ndarray, n_out: np.ndarray
) -> np.ndarray:
    """Polis's two-proportion z-test of a group against the rest (with +1 pseudo-counts)."""
    s1, s2, n1, n2 = success_in + 1.0, success_out + 1.0, n_in + 1.0, n_out + 1.0
    p1, p2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    denom = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / denom
    return np.where((pooled >= 1.0) | (denom <= 0), 0.0, z)


REPNESS_COLUMNS = (
    "group",
    "statement",
    "repful_for",
    "n_success",
    "n_trials",
    "p_success",
    "p_test",
    "repness",
    "repness_test",
    "metric",
)


def repness_table(counts: GroupCounts) -> pd.DataFrame:
    """Every (group, statement) with its agree and disagree repness, finalised as Polis does:
    the direction whose two-proportion test is larger."""
    a, d, s = counts.agree, counts.disagree, counts.seen
    a_rest = a.sum(axis=0)[None, :] - a
    d_rest = d.sum(axis=0)[None, :] - d
    s_rest = s.sum(axis=0)[None, :] - s
    pa, pd_ = (a + 1) / (s + 2), (d + 1) / (s + 2)
    pat, pdt = prop_test(a, s), prop_test(d, s)
    ra = pa / ((a_rest + 1) / (s_rest + 2))
    rd = pd_ / ((d_rest + 1) / (s_rest + 2))
    rat, rdt = two_prop_test(a, a_rest, s, s_rest), two_prop_test(d, d_rest, s, s_rest)
    agree_side = rat > rdt
    k, n = a.shape
    frame = pd.DataFrame(
        {
            "group": np.repeat(counts.group_ids, n),
            "statement": np.tile(np.arange(n), k),
            "repful_for": np.where(agree_side, "agree", "disagree").ravel(),
            "n_success": np.where(agree_side, a, d).ravel(),
            "n_trials": s.ravel(),
            "p_success": np.where(agree_side, pa, pd_).ravel(),
            "p_test": np.where(agree_side, pat, pdt).ravel(),
            "repness": np.where(agree_side, ra, rd).ravel(),
            "repness_test": np.where(agree_side, rat, rdt).ravel(),
            "_sufficient": (((rat > Z_90) & (pat > Z_90)) | ((rdt > Z_90) & (pdt > Z_90))).ravel(),
            "_best_z": np.maximum(rat, rdt).ravel(),
            "_voted": ((a + d) > 0).ravel(),
        }
    )
    frame["metric"] = (
        frame["repness"] * frame["repness_test"] * frame["p_success"] * frame["p_test"]
    )
    return frame


def select_representative(
    table: pd.DataFrame, excluded: np.ndarray, top: int = 5
) -> dict[int, pd.DataFrame]:
    """Per group, up to ``top`` statements that pass both tests (z > 1.2816), ranked by
    repness × test × p × test, agrees before disagrees; a group with none gets its single best
    statement by test, so that every group says something."""
    out: dict[int, pd.DataFrame] = {}
    usable = table[~excluded[table["statement"].to_numpy()] & table["_voted"]]
    for gid, rows in usable.groupby("group", sort=True):
        passing = rows[rows["_sufficient"]]
        if len(passing):
            chosen = passing.sort_values(["metric", "statement"], ascending=[False, True]).head(top)
            chosen = pd.concat(
                [chosen[chosen["repful_for"] == "agree"], chosen[chosen["repful_for"] != "agree"]]
            )
        else:
            chosen = rows.sort_values(["_best_z", "statement"], ascending=[False, True]).head(1)
        out[int(gid)] = chosen.loc[:, list(REPNESS_COLUMNS)].reset_index(drop=True)
    return out


@dataclass(frozen=True)
class FlagRules:
    """Jigsaw's thresholds: at least ``min_votes`` votes; common ground when every group's agree
    probability is ≥ ``common_ground``; divisive when some group's agree probability differs
    from the rest's by ≥ ``divisive``; uncertain when the pass rate is ≥ max(``uncertain``, the
    ``uncertain_quantile`` of pass rates)."""

    min_votes: int = 20
    common_ground: float = 0.6
    divisive: float = 0.3
    uncertain: float = 0.2
    uncertain_quantile: float = 0.75


def statement_stats(counts: GroupCounts, excluded: np.ndarray, rules: FlagRules) -> pd.DataFrame:
    """One row per statement: votes, agree / disagree / pass counts and rates, the smallest group
    agree probability, the largest group-vs-rest difference, and the flags."""
    a, d, s = counts.agree, counts.disagree, counts.seen
    total_a, total_d, total_s = a.sum(axis=0), d.sum(axis=0), s.sum(axis=0)
    total_p = total_s - total_a - total_d
    if len(counts.group_ids):
        p_group = agree_probability(a, s)
        p_rest = agree_probability(total_a[None, :] - a, total_s[None, :] - s)
        min_agree = p_group.min(axis=0)
        difference = np.abs(p_group - p_rest).max(axis=0) if len(a) > 1 else np.zeros(a.shape[1])
    else:
        min_agree = np.full(a.shape[1], np.nan)
        difference = np.zeros(a.shape[1])
    pass_rate = np.divide(total_p, total_s, out=np.zeros_like(total_p), where=total_s > 0)
    enough = (total_s >= rules.min_votes) & ~excluded
    rated = pass_rate[enough]
    cut = max(
        rules.uncertain, float(np.quantile(rated, rules.uncertain_quantile)) if len(rated) else 1.0
    )
    common = enough & (min_agree >= rules.common_ground)
    divisive = enough & ~common & (difference >= rules.divisive)
    uncertain = enough & (pass_rate >= cut)
    flags = [
        [name for name, on in (("common_ground", c), ("divisive", v), ("uncertain", u)) if on]
        for c, v, u in zip(common, divisive, uncertain, strict=True)
    ]
    return pd.DataFrame(
        {
            "n_votes": total_s.astype(np.int64),
            "n_agree": total_a.astype(np.int64),
            "n_disagree": total_d.astype(np.int64),
            "n_pass": total_p.astype(np.int64),
            "pass_rate": pass_rate,
            "min_group_agree": min_agree,
            "max_group_difference": difference,
            "flags": flags,
        }
    ).assign(uncertain_cut=cut)
