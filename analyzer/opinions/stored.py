"""Opinions on the store: conversations, their votes and statements, and the analysis of one
conversation, kept with its run manifest and recomputed only when its input or settings change.

Statements are the conversation's records (their text redacted at ingest); a statement's theme
is its record's top-level theme from the last ``civicpulse analyze`` (renames and merges made in
the explorer applied).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from analyzer.common.clock import new_run_id, utc_stamp
from analyzer.ingest.votes import statement_prefix
from analyzer.opinions.conversation import Conversation, statements_frame
from analyzer.opinions.matrix import VoteMatrix, id_keys
from analyzer.opinions.model import OpinionModel
from analyzer.opinions.report import build_report
from analyzer.store.database import Store

TABLES = ("conversations", "votes", "conversation_participants", "opinions")


class ConversationNotFoundError(LookupError):
    """No conversation with this id in the store."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(f"no conversation {conversation_id!r}")


def has_opinion_tables(store: Store) -> bool:
    """False on a read-only store written before votes existed."""
    return all(store.columns(t) for t in TABLES)


def list_conversations(store: Store) -> list[dict[str, Any]]:
    """Every conversation with its counts, newest first."""
    if not has_opinion_tables(store):
        return []
    df = store.query_df(
        "SELECT c.conversation_id, c.title, c.description, c.statement_prefix, "
        "strftime(c.updated_at, '%Y-%m-%dT%H:%M:%SZ') AS updated_at, "
        "count(v.vote) AS votes, count(DISTINCT v.participant_id) AS participants, "
        "count(DISTINCT v.statement_id) AS voted_statements, "
        "(SELECT count(*) FROM conversation_participants p WHERE p.conversation_id = "
        "c.conversation_id AND p.source_group IS NOT NULL) AS with_source_group "
        "FROM conversations c LEFT JOIN votes v USING (conversation_id) "
        "GROUP BY ALL ORDER BY updated_at DESC, c.conversation_id"
    )
    out = []
    for r in df.itertuples(index=False):
        prefix = _prefix(store, str(r.conversation_id), r.statement_prefix)
        n_text = store.scalar("SELECT count(*) FROM records WHERE starts_with(id, ?)", [prefix])
        out.append(
            {
                "conversation_id": str(r.conversation_id),
                "title": str(r.title or r.conversation_id),
                "description": None if pd.isna(r.description) else str(r.description),
                "participants": int(r.participants),
                "statements": max(int(r.voted_statements), int(n_text or 0)),
                "statements_with_text": int(n_text or 0),
                "votes": int(r.votes),
                "has_source_groups": int(r.with_source_group) > 0,
                "updated_at": None if pd.isna(r.updated_at) else str(r.updated_at),
            }
        )
    return out


def _prefix(store: Store, conversation_id: str, stored: Any) -> str:
    """The stored statement prefix, or, when none of its records is there (the comments came
    after the votes), the one the records now show."""
    if isinstance(stored, str) and stored:
        n = store.scalar("SELECT count(*) FROM records WHERE starts_with(id, ?) LIMIT 1", [stored])
        if n:
            return stored
    return statement_prefix(store, conversation_id)[0]


def load_conversation(store: Store, conversation_id: str) -> Conversation:
    """Votes, source groups and statements of one stored conversation."""
    if not has_opinion_tables(store):
        raise ConversationNotFoundError(conversation_id)
    head = store.query_df(
        "SELECT title, description, statement_prefix FROM conversations WHERE conversation_id = ?",
        [conversation_id],
    )
    if head.empty:
        raise ConversationNotFoundError(conversation_id)
    prefix = _prefix(store, conversation_id, head.loc[0, "statement_prefix"])
    votes = store.query_df(
        "SELECT participant_id, statement_id, vote, voted_at FROM votes "
        "WHERE conversation_id = ? ORDER BY participant_id, statement_id",
        [conversation_id],
    )
    groups = store.query_df(
        "SELECT participant_id, source_group FROM conversation_participants "
        "WHERE conversation_id = ?",
        [conversation_id],
    )
    records = store.query_df(
        "SELECT substr(id, length(?) + 1) AS statement_id, text, status FROM records "
        "WHERE starts_with(id, ?)",
        [prefix, prefix],
    )
    matrix = VoteMatrix.from_long(
        votes,
        statement_ids=records["statement_id"].tolist(),
        groups=groups if groups["source_group"].notna().any() else None,
    )
    moderated = set(records.loc[records["status"].fillna("") == "rejected", "statement_id"])
    matrix = matrix.with_moderated_out(sorted(moderated))
    texts = dict(zip(records["statement_id"], records["text"], strict=True))
    return Conversation(
        conversation_id=conversation_id,
        title=str(head.loc[0, "title"] or conversation_id),
        matrix=matrix,
        statements=statements_frame(matrix, texts, moderated),
        redacted=True,
        description=None
        if pd.isna(head.loc[0, "description"])
        else str(head.loc[0, "description"]),
    )


def stored_themes(store: Store, conversation: Conversation, prefix: str) -> pd.DataFrame:
    """The top-level theme of each statement's record (None where it has none)."""
    ids = [prefix + k for k in conversation.statements["statement_id"]]
    found = store.query_with(
        "SELECT w.id, a.theme_id, t.label FROM _wanted w "
        "LEFT JOIN assignments a ON a.record_id = w.id "
        "LEFT JOIN themes t ON t.theme_id = a.theme_id",
        {"_wanted": pd.DataFrame({"id": ids})},
    )
    overrides = store.query_df("SELECT theme_id, label, merged_into FROM theme_overrides")
    labels = dict(zip(found["theme_id"], found["label"], strict=True))
    renamed = {r.theme_id: r.label for r in overrides.itertuples() if isinstance(r.label, str)}
    merged = {
        r.theme_id: r.merged_into for r in overrides.itertuples() if isinstance(r.merged_into, str)
    }
    if merged:
        more = store.query_df(
            "SELECT theme_id, label FROM themes WHERE theme_id IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(set(merged.values()))],
        )
        labels.update(zip(more["theme_id"], more["label"], strict=True))
    by_id = dict(zip(found["id"], found["theme_id"], strict=True))
    out_ids, out_labels = [], []
    for rid in ids:
        tid = by_id.get(rid)
        for _ in range(5):  # follow merges (a theme merged into one later merged again)
            if tid in merged:
                tid = merged[tid]
        if tid is None or (isinstance(tid, float) and np.isnan(tid)):
            out_ids.append(None)
            out_labels.append(None)
        else:
            out_ids.append(str(tid))
            out_labels.append(str(renamed.get(tid) or labels.get(tid) or tid))
    return pd.DataFrame({"theme_id": out_ids, "theme_label": out_labels})


def input_hash(conversation: Conversation, themes: pd.DataFrame) -> str:
    """What the result depends on: votes, source groups, statements, moderation and themes."""
    m = conversation.matrix
    h = hashlib.sha256()
    h.update("\x1f".join(id_keys(m.participant_ids)).encode())
    h.update("\x1f".join(id_keys(m.statement_ids)).encode())
    h.update(np.nan_to_num(m.votes, nan=9.0).astype(np.int8).tobytes())
    h.update(m.moderated_out.tobytes())
    if m.source_groups is not None:
        h.update(m.source_groups.astype(np.int64).tobytes())
    h.update("\x1f".join(conversation.statements["text"].astype(str)).encode())
    h.update(themes.fillna("").to_csv(index=False).encode())
    return h.hexdigest()


def settings_key(model: OpinionModel) -> str:
    return json.dumps(model.get_params(), sort_keys=True)


def conversation_opinions(
    store: Store,
    conversation_id: str,
    model: OpinionModel | None = None,
    *,
    save: bool = True,
) -> dict[str, Any]:
    """The opinion analysis of a stored conversation: the kept result when votes, statements,
    themes and settings are unchanged, else a new fit, kept (with a run manifest in ``runs``)
    when the store is writable and ``save``."""
    model = model if model is not None else OpinionModel()
    started = time.perf_counter()
    conversation = load_conversation(store, conversation_id)
    if model.use_source_groups and not conversation.has_source_groups:
        from analyzer.errors import InputError

        raise InputError(
            f"conversation {conversation_id!r} has no groups of its own (its export had no "
            "group-id column)"
        )
    head_prefix = store.scalar(
        "SELECT statement_prefix FROM conversations WHERE conversation_id = ?", [conversation_id]
    )
    prefix = _prefix(store, conversation_id, head_prefix)
    themes = stored_themes(store, conversation, prefix)
    key, digest = settings_key(model), input_hash(conversation, themes)
    kept = store.query_df(
        "SELECT run_id, result::VARCHAR AS result FROM opinions WHERE conversation_id = ? "
        "AND settings_key = ? AND input_hash = ?",
        [conversation_id, key, digest],
    )
    if len(kept):
        result = json.loads(str(kept.loc[0, "result"]))
        result["run"]["cached"] = True
        return result
    t0 = time.perf_counter()
    model.fit(conversation.matrix)
    fit_s = time.perf_counter() - t0
    result = build_report(model, conversation, themes)
    run_id = new_run_id()
    result["run"] = {"run_id": run_id, "computed_at": utc_stamp(), "cached": False}
    if save and not store.read_only:
        from analyzer.analysis.pipeline import code_version

        manifest = {
            "run_id": run_id,
            "kind": "opinions",
            "conversation_id": conversation_id,
            "code_version": code_version(),
            "seed": model.seed,
            "parameters": model.get_params(),
            "input_hash": digest,
            "counts": model.summary(),
            "timings_s": {"fit": round(fit_s, 3), "total": round(time.perf_counter() - started, 3)},
        }
        store.start_run(run_id, "opinions", manifest)
        with store.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO opinions (conversation_id, settings_key, input_hash, "
                "run_id, result) VALUES (?, ?, ?, ?, ?)",
                [conversation_id, key, digest, run_id, json.dumps(result)],
            )
        store.update_run(run_id, status="done", progress=1.0, message="opinions")
    return result
