"""The opinions result as one JSON-ready dict (the contract of ``civicpulse opinions`` and
``GET /v1/conversations/{id}/opinions``): groups with representative statements, statements with
GIC, agree probability per group, flags and theme, participants with map positions, and the
theme × group summary. Ids are as in the export; texts are redacted before they get here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analyzer.opinions.conversation import Conversation
from analyzer.opinions.model import OpinionModel
from analyzer.opinions.themes import quote, theme_summaries

LIST_SIZE = 12  # statements in each of the common-ground / divisive / uncertain lists


def _id(value: Any) -> Any:
    return int(value) if isinstance(value, np.integer) else value


def _num(value: float, digits: int = 6) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def build_report(
    model: OpinionModel,
    conversation: Conversation,
    themes: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The result of a fitted ``model`` on ``conversation``. ``themes``: ``theme_id`` and
    ``theme_label`` per statement row of ``conversation.statements`` (or None)."""
    matrix = conversation.matrix
    sids = [_id(s) for s in matrix.statement_ids.tolist()]
    texts = conversation.statements["text"].fillna("").astype(str).tolist()
    group_ids = [int(g) for g in model.group_ids_]
    stats = model.statements_
    probs = model.agree_probability_
    seen = np.isfinite(matrix.votes)
    statements: list[dict[str, Any]] = []
    for j, sid in enumerate(sids):
        row = stats.iloc[j]
        rated = bool(row["n_votes"] >= model.min_statement_votes) and not matrix.moderated_out[j]
        statements.append(
            {
                "statement_id": sid,
                "text": texts[j],
                "moderated": bool(matrix.moderated_out[j]),
                "n_votes": int(seen[:, j].sum()),
                "n_agree": int((matrix.votes[:, j] == 1).sum()),
                "n_disagree": int((matrix.votes[:, j] == -1).sum()),
                "n_pass": int((matrix.votes[:, j] == 0).sum()),
                "pass_rate": _num(row["pass_rate"], 4),
                "gic": None if math.isnan(model.gic_[j]) else float(model.gic_[j]),
                "agree_by_group": {
                    str(g): round(float(probs[i, j]), 6) for i, g in enumerate(group_ids)
                },
                "max_group_difference": _num(row["max_group_difference"], 4),
                "rated": rated,
                "flags": list(row["flags"]),
                "theme_id": None,
                "theme_label": None,
            }
        )
    if themes is not None and len(themes) == len(statements):
        for st, tid, label in zip(
            statements, themes["theme_id"], themes["theme_label"], strict=True
        ):
            has = tid is not None and not (isinstance(tid, float) and math.isnan(tid)) and tid != ""
            st["theme_id"] = str(tid) if has else None
            st["theme_label"] = str(label) if has else None
    groups = []
    sizes = model.group_sizes()
    for gid in group_ids:
        chosen = model.representative_.get(gid)
        reps = []
        if chosen is not None:
            g_index = group_ids.index(gid)
            for r in chosen.itertuples(index=False):
                j = int(r.statement)
                reps.append(
                    {
                        "statement_id": sids[j],
                        "text": quote(texts[j]),
                        "agree_probability": round(float(probs[g_index, j]), 6),
                        "repness": round(float(r.repness), 6),
                        "repness_test": round(float(r.repness_test), 4),
                        "repful_for": r.repful_for,
                        "n_agree": int(model.counts_.agree[g_index, j]),
                        "n_disagree": int(model.counts_.disagree[g_index, j]),
                        "n_seen": int(model.counts_.seen[g_index, j]),
                    }
                )
        groups.append({"group_id": gid, "size": sizes[gid], "representative": reps})
    positions = model.positions_
    n_votes = seen.sum(axis=1)
    participants = [
        {
            "participant_id": _id(pid),
            "group_id": int(g) if g >= 0 else None,
            "x": round(float(x), 5),
            "y": round(float(y), 5),
            "n_votes": int(n),
            "uniform_voter": bool(u),
        }
        for pid, g, x, y, n, u in zip(
            matrix.participant_ids.tolist(),
            model.labels_,
            positions[:, 0],
            positions[:, 1],
            n_votes,
            model.uniform_,
            strict=True,
        )
    ]
    return {
        "conversation": {
            "conversation_id": conversation.conversation_id,
            "title": conversation.title,
            "participants": int(matrix.shape[0]),
            "statements": int(matrix.shape[1]),
            "votes": int(seen.sum()),
            "moderated_out": int(matrix.moderated_out.sum()),
            "clustered_participants": int((model.labels_ >= 0).sum()),
        },
        "method": {
            **model.get_params(),
            "groups_from": "export" if model.use_source_groups else "votes",
            "silhouettes": {str(k): v for k, v in model.silhouettes_.items()},
            "uncertain_pass_rate": _num(float(stats["uncertain_cut"].iloc[0]), 4)
            if len(stats)
            else None,
        },
        "groups": groups,
        "statements": statements,
        "participants": participants,
        "common_ground": _ranked(statements, "common_ground", "gic"),
        "divisive": _ranked(statements, "divisive", "max_group_difference"),
        "uncertain": _ranked(statements, "uncertain", "pass_rate"),
        "themes": theme_summaries(statements, group_ids) if themes is not None else [],
    }


def _ranked(statements: list[dict[str, Any]], flag: str, key: str) -> list[Any]:
    rows = [s for s in statements if flag in s["flags"]]
    rows.sort(key=lambda s: (-(s.get(key) or 0.0), str(s["statement_id"])))
    return [s["statement_id"] for s in rows[:LIST_SIZE]]
