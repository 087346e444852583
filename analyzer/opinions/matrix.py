"""The vote matrix: participants × statements, agree 1, disagree -1, pass 0, unseen NaN.

Built from long-format votes (one row per vote; the latest vote of a participant on a statement
counts, as in Polis) or from a Polis ``participants-votes.csv`` frame. Ids stay as the export
wrote them (integers when every id is an integer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

AGREE, DISAGREE, PASS = 1, -1, 0


def natural_ids(values: Sequence[object] | pd.Series) -> np.ndarray:
    """Ids as integers when every one is an integer (Polis ids), else as strings, in sorted order."""
    raw = pd.Series(list(values), dtype=object).astype(str).str.strip()
    unique = pd.unique(raw)
    as_int = pd.to_numeric(pd.Series(unique), errors="coerce")
    if len(unique) and as_int.notna().all() and (as_int == as_int.round()).all():
        return np.sort(as_int.astype(np.int64).to_numpy())
    return np.array(sorted(unique), dtype=object)


def id_keys(ids: np.ndarray) -> list[str]:
    """The string form of ids, for matching against raw strings."""
    return [str(i) for i in ids.tolist()]


@dataclass(frozen=True)
class VoteMatrix:
    """Votes of one conversation as a dense matrix (conversations are at most a few thousand
    participants by a few thousand statements; 2,000 × 1,000 float64 is 16 MB)."""

    participant_ids: np.ndarray
    statement_ids: np.ndarray
    votes: np.ndarray  # float64 (participants, statements): 1, -1, 0 or NaN (not seen)
    moderated_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # the export's own opinion group per participant (-1: none); None when the export has none
    source_groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_p, n_s = self.votes.shape
        if len(self.participant_ids) != n_p or len(self.statement_ids) != n_s:
            raise ValueError("ids do not match the vote matrix shape")
        if len(self.moderated_out) != n_s:
            object.__setattr__(self, "moderated_out", np.zeros(n_s, dtype=bool))
        if self.source_groups is not None and len(self.source_groups) != n_p:
            raise ValueError("source_groups must have one entry per participant")

    @property
    def shape(self) -> tuple[int, int]:
        return self.votes.shape  # type: ignore[return-value]

    @property
    def n_votes(self) -> int:
        return int(np.isfinite(self.votes).sum())

    def seen(self) -> np.ndarray:
        return np.isfinite(self.votes)

    def take_participants(self, index: np.ndarray) -> VoteMatrix:
        """The matrix restricted to some participants (rows), e.g. a resample."""
        groups = None if self.source_groups is None else self.source_groups[index]
        return VoteMatrix(
            self.participant_ids[index],
            self.statement_ids,
            self.votes[index],
            self.moderated_out,
            groups,
        )

    def with_moderated_out(self, statement_ids: Sequence[object]) -> VoteMatrix:
        keys = {str(s) for s in statement_ids}
        mask = np.array([k in keys for k in id_keys(self.statement_ids)], dtype=bool)
        return VoteMatrix(
            self.participant_ids, self.statement_ids, self.votes, mask, self.source_groups
        )

    # -- builders ---------------------------------------------------------------------------
    @classmethod
    def from_long(
        cls,
        votes: pd.DataFrame,
        *,
        statement_ids: Sequence[object] | None = None,
        groups: pd.DataFrame | None = None,
    ) -> VoteMatrix:
        """From columns ``participant_id``, ``statement_id``, ``vote`` and optionally
        ``voted_at`` (the latest vote counts; without times, the last row does).

        ``statement_ids`` adds statements nobody voted on; ``groups`` (``participant_id``,
        ``source_group``) carries the export's own opinion groups.
        """
        frame = votes.loc[:, ["participant_id", "statement_id", "vote"]].copy()
        frame["participant_id"] = frame["participant_id"].astype(str).str.strip()
        frame["statement_id"] = frame["statement_id"].astype(str).str.strip()
        frame["_order"] = np.arange(len(frame))
        if "voted_at" in votes.columns:
            frame["_time"] = pd.to_datetime(votes["voted_at"], utc=True, errors="coerce").values
            frame = frame.sort_values(["_time", "_order"], na_position="first", kind="stable")
        frame = frame.drop_duplicates(["participant_id", "statement_id"], keep="last")
        people = frame["participant_id"]
        if groups is not None and len(groups):
            people = pd.concat([people, groups["participant_id"].astype(str).str.strip()])
        pids = natural_ids(pd.unique(people))
        statements = pd.concat(
            [
                frame["statement_id"],
                pd.Series(
                    [str(s) for s in (statement_ids if statement_ids is not None else [])],
                    dtype=str,
                ),
            ]
        )
        sids = natural_ids(pd.unique(statements.str.strip()))
        p_index = pd.Index(id_keys(pids))
        s_index = pd.Index(id_keys(sids))
        rows = p_index.get_indexer(frame["participant_id"])
        cols = s_index.get_indexer(frame["statement_id"])
        mat = np.full((len(pids), len(sids)), np.nan)
        mat[rows, cols] = pd.to_numeric(frame["vote"]).to_numpy(dtype=float)
        source = None
        if groups is not None and len(groups):
            source = np.full(len(pids), -1, dtype=np.int64)
            g = groups.dropna(subset=["source_group"])
            idx = p_index.get_indexer(g["participant_id"].astype(str).str.strip())
            source[idx[idx >= 0]] = g["source_group"].astype(np.int64).to_numpy()[idx >= 0]
        return cls(pids, sids, mat, np.zeros(len(sids), dtype=bool), source)
