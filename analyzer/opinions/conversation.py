"""A conversation to analyse: its vote matrix and its statements (text, moderation), read from a
Polis export folder or a votes file (stateless), or from the store (``analyzer.opinions.stored``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.pipeline import read_table
from analyzer.ingest.profiles.base import find_column
from analyzer.ingest.votes import (
    PROFILE_WIDE,
    conversation_for,
    export_files,
    read_summary,
    read_votes,
)
from analyzer.opinions.matrix import VoteMatrix, id_keys

REJECTED = {"-1", "rejected"}


@dataclass
class Conversation:
    """``statements``: ``statement_id`` (as in the matrix, string form), ``text`` (redacted or
    raw, see ``redacted``), ``moderated_out``; one row per statement of the matrix."""

    conversation_id: str
    title: str
    matrix: VoteMatrix
    statements: pd.DataFrame
    redacted: bool = False
    description: str | None = None
    rejects: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: list[str] = field(default_factory=list)

    @property
    def has_source_groups(self) -> bool:
        g = self.matrix.source_groups
        return g is not None and bool((g >= 0).any())


def statements_frame(
    matrix: VoteMatrix, texts: dict[str, str], moderated_out: set[str]
) -> pd.DataFrame:
    keys = id_keys(matrix.statement_ids)
    return pd.DataFrame(
        {
            "statement_id": keys,
            "text": [texts.get(k, "") for k in keys],
            "moderated_out": [k in moderated_out for k in keys],
        }
    )


def read_comments(path: Path) -> tuple[dict[str, str], set[str]]:
    """Texts by comment id and the ids moderated out, from a Polis ``comments.csv``."""
    frame = read_table(path)
    cols = [str(c) for c in frame.columns]
    id_col = find_column(cols, ("comment-id", "statement_id", "comment_id", "id"))
    text_col = find_column(cols, ("comment-body", "text", "statement", "comment"))
    if id_col is None or text_col is None:
        raise InputError(
            f"needs comment-id and comment-body columns; columns found: {', '.join(cols)}",
            file=str(path),
        )
    mod_col = find_column(cols, ("moderated",))
    ids = frame[id_col].astype(str).str.strip()
    texts = dict(zip(ids, frame[text_col].astype(str), strict=True))
    out: set[str] = set()
    if mod_col is not None:
        out = set(ids[frame[mod_col].astype(str).str.strip().str.lower().isin(REJECTED)])
    return texts, out


def read_export(path: str | Path) -> Conversation:
    """A Polis export folder (comments.csv + participants-votes.csv and/or votes.csv) or a votes
    file on its own (statements then have no text)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", file=str(p))
    texts: dict[str, str] = {}
    moderated: set[str] = set()
    summary: dict[str, str] = {}
    if p.is_dir():
        files = export_files(p)
        votes_file = files.participants_votes or files.votes
        if votes_file is None:
            raise InputError(
                "not a Polis export: no participants-votes.csv or votes.csv", file=str(p)
            )
        if files.comments is not None:
            texts, moderated = read_comments(files.comments)
        summary = read_summary(files.summary)
        used = [str(f) for f in (files.comments, votes_file) if f is not None]
    else:
        votes_file = p
        used = [str(p)]
    read = read_votes(votes_file)
    latest, _ = read.latest()
    groups = read.participants if read.kind == PROFILE_WIDE else None
    matrix = VoteMatrix.from_long(
        latest, statement_ids=read.statement_ids or list(texts), groups=groups
    )
    if not matrix.shape[0]:
        raise InputError("no valid votes", file=str(votes_file))
    matrix = matrix.with_moderated_out(sorted(moderated))
    rejects = read.rejects.assign(file=str(votes_file)) if len(read.rejects) else read.rejects
    conv = conversation_for(p)
    return Conversation(
        conversation_id=conv,
        title=summary.get("topic") or conv,
        matrix=matrix,
        statements=statements_frame(matrix, texts, moderated),
        redacted=False,
        description=summary.get("conversation-description"),
        rejects=rejects,
        files=used,
    )
