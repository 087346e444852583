"""Opinions joined with CivicPulse's themes: per theme, how much is common ground, how much
divides, and what each group says about it (statements quoted, already redacted).

Themes come from the store's analysis (the top-level theme of each statement's record) or, in
the stateless command, from clustering the statement texts with ``analyzer.themes`` as
``civicpulse cluster`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

QUOTES_PER_GROUP = 2
QUOTE_CHARS = 300
COMMON_SHARE = 0.5  # a theme is "common ground" when at least half its rated statements are
DIVIDED_SHARE = 0.25  # "divided" when at least a quarter are divisive (and less is common ground)


def cluster_statement_themes(
    texts: Sequence[str], embeddings: np.ndarray, seed: int = 42
) -> pd.DataFrame:
    """``theme_id``, ``theme_label`` per statement: the top-level themes of ``cluster_texts``
    (the finest level is too fine for a few hundred statements). Unassigned: empty id."""
    from analyzer.themes.model import cluster_texts

    found = cluster_texts(list(texts), embeddings, seed=seed)
    ids = found["parent_theme_id"].fillna("").astype(str)
    labels = found["parent_theme_label"].fillna("").astype(str)
    return pd.DataFrame({"theme_id": ids.where(ids != "", None), "theme_label": labels})


def quote(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def theme_summaries(
    statements: list[dict[str, Any]], group_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """One entry per theme, largest first, from the report's statement rows (each with
    ``theme_id``, ``theme_label``, ``flags``, ``agree_by_group``, ``rated``)."""
    by_theme: dict[str, list[dict[str, Any]]] = {}
    for st in statements:
        if st.get("theme_id") and not st.get("moderated"):
            by_theme.setdefault(str(st["theme_id"]), []).append(st)
    out = []
    for theme_id, rows in by_theme.items():
        rated = [r for r in rows if r.get("rated")]
        n = len(rated)
        common = [r for r in rated if "common_ground" in r["flags"]]
        divisive = [r for r in rated if "divisive" in r["flags"]]
        uncertain = [r for r in rated if "uncertain" in r["flags"]]
        common_share = len(common) / n if n else 0.0
        divisive_share = len(divisive) / n if n else 0.0
        if not n:
            verdict = "too few votes"
        elif common_share >= COMMON_SHARE:
            verdict = "common ground"
        elif divisive_share >= DIVIDED_SHARE:
            verdict = "divided"
        else:
            verdict = "mixed"
        groups = []
        for gid in group_ids:
            key = str(gid)
            probs = [r["agree_by_group"][key] for r in rated if key in r["agree_by_group"]]
            groups.append(
                {
                    "group_id": int(gid),
                    "mean_agree_probability": round(float(np.mean(probs)), 4) if probs else None,
                    "says": _group_says(rated, key),
                }
            )
        out.append(
            {
                "theme_id": theme_id,
                "theme_label": rows[0].get("theme_label") or "",
                "statements": len(rows),
                "rated_statements": n,
                "common_ground": len(common),
                "divisive": len(divisive),
                "uncertain": len(uncertain),
                "common_ground_share": round(common_share, 4),
                "divisive_share": round(divisive_share, 4),
                "verdict": verdict,
                "common_ground_examples": [_quote_row(r) for r in _top(common, "gic")],
                "divisive_examples": [
                    _quote_row(r) for r in _top(divisive, "max_group_difference")
                ],
                "groups": groups,
            }
        )
    out.sort(key=lambda t: (-t["statements"], t["theme_id"]))
    return out


def _top(rows: list[dict[str, Any]], key: str, n: int = 2) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-(r.get(key) or 0.0), str(r["statement_id"])))[:n]


def _quote_row(row: dict[str, Any], group: str | None = None) -> dict[str, Any]:
    item = {"statement_id": row["statement_id"], "text": quote(row.get("text") or "")}
    if group is not None:
        item["agree_probability"] = row["agree_by_group"][group]
    return item


def _group_says(rated: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    """What sets this group apart on the theme: the statements it agrees with most beyond the
    others, then the one it rejects most against the others."""
    scored = []
    for r in rated:
        mine = r["agree_by_group"].get(group)
        others = [v for k, v in r["agree_by_group"].items() if k != group]
        if mine is None:
            continue
        rest = float(np.mean(others)) if others else 0.5
        scored.append((mine - rest, mine, r))
    agrees = sorted(
        (s for s in scored if s[1] >= 0.5), key=lambda s: (-s[0], str(s[2]["statement_id"]))
    )
    rejects = sorted(
        (s for s in scored if s[1] < 0.5), key=lambda s: (s[0], str(s[2]["statement_id"]))
    )
    says = [{**_quote_row(r, group), "stance": "agrees"} for _, _, r in agrees[:QUOTES_PER_GROUP]]
    says += [{**_quote_row(r, group), "stance": "disagrees"} for _, _, r in rejects[:1]]
    return says
