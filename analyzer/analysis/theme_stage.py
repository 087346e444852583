"""The themes stage of ``civicpulse analyze``, per source: re-fit (ids matched to the previous
run's, lineage recorded) or assign new records to the nearest existing sub-theme; and writing the
themes, assignments and lineage."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analyzer.common.vectors import decode_vectors, encode_vector
from analyzer.config import Settings
from analyzer.store.database import Store
from analyzer.store.writers import THEME_COLUMNS
from analyzer.themes.ids import source_prefix

if TYPE_CHECKING:
    from analyzer.analysis.plan import Plan

# Below this many records a source gets no themes (too few to say anything useful).
MIN_RECORDS_FOR_THEMES = 30


def run_themes(
    store: Store,
    records: pd.DataFrame,
    vectors: np.ndarray,
    settings: Settings,
    run_id: str,
    plan: Plan,
) -> dict[str, Any]:
    """Per source: re-fit (and match ids to the previous run) or assign new records incrementally,
    as ``plan`` decided."""
    previous = plan.previous
    prev_assign: pd.DataFrame | None = None
    sentiment: pd.DataFrame | None = None
    out: dict[str, Any] = {"themes": [], "assignments": [], "lineage": [], "per_source": {}}
    for source, idx in records.groupby("source").indices.items():
        prefix = source_prefix(str(source))
        if len(idx) < MIN_RECORDS_FOR_THEMES:
            continue
        sub = records.iloc[idx].reset_index(drop=True)
        prev_src = previous[previous["theme_id"].str.match(rf"^{prefix}\d")]
        if str(source) not in plan.refit_sources:
            new = ~plan.assigned[idx]
            # only the new records' vectors: copying all of a source's rows cost a second
            res = _assign_incrementally(sub, new, vectors[idx[new]], prev_src, run_id)
            out["per_source"][str(source)] = {"mode": "incremental", **res["summary"]}
        else:
            from analyzer.themes.lineage import match_themes
            from analyzer.themes.model import ThemeModel

            emb = vectors[idx]
            if prev_assign is None:
                prev_assign = store.query_df(
                    "SELECT record_id, theme_id, subtheme_id FROM assignments"
                )
                sentiment = store.query_df("SELECT record_id, score FROM sentiment")
            assert sentiment is not None
            meta = sub[["source", "area", "category"]].copy()
            meta["sentiment"] = sub["id"].map(
                dict(zip(sentiment["record_id"], sentiment["score"], strict=True))
            )
            model = ThemeModel(seed=settings.seed, id_prefix=prefix)
            model.fit(emb, sub["text"].tolist(), meta=meta)
            res = _fitted_to_rows(
                model, sub, emb, prefix, prev_src, prev_assign, run_id, match_themes, store
            )
            out["per_source"][str(source)] = {"mode": "refit", **res["summary"]}
        out["themes"].extend(res["themes"])
        out["assignments"].append(res["assignments"])
        out["lineage"].extend(res["lineage"])
    return out


def _projection(emb: np.ndarray, seed: int) -> np.ndarray:
    """2-D map of the texts, computed once per run (the explorer reads it, never recomputes)."""
    from sklearn.decomposition import PCA

    if len(emb) < 3:
        return np.zeros((len(emb), 2), dtype=np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(emb).astype(np.float32)


def _fitted_to_rows(
    model: Any,
    sub: pd.DataFrame,
    emb: np.ndarray,
    prefix: str,
    prev_src: pd.DataFrame,
    prev_assign: pd.DataFrame,
    run_id: str,
    match_themes: Callable[..., Any],
    store: Store,
) -> dict[str, Any]:
    current = list(model.themes_)
    top_ids = [None if v is None else str(v) for v in model.labels_]
    sub_ids = [None if v is None else str(v) for v in model.sublabels_]
    # Members per theme, by record id, for matching against the previous run.
    cur_members: dict[str, set[str]] = {}
    for rid, t, s in zip(sub["id"], top_ids, sub_ids, strict=True):
        if t:
            cur_members.setdefault(t, set()).add(rid)
        if s:
            cur_members.setdefault(s, set()).add(rid)
    prev_themes = [_theme_from_row(r) for r in prev_src.itertuples(index=False)]
    prev_members: dict[str, set[str]] = {}
    for r in prev_assign.itertuples(index=False):
        if r.theme_id:
            prev_members.setdefault(r.theme_id, set()).add(r.record_id)
        if r.subtheme_id:
            prev_members.setdefault(r.subtheme_id, set()).add(r.record_id)
    id_map, lineage = match_themes(
        prev_themes,
        current,
        prev_members,
        cur_members,
        used_ids=_used_ids(store, prefix),
        prefix=prefix,
    )
    themes = []
    for th in current:
        tid = id_map[th.theme_id]
        pid = id_map.get(th.parent_id) if th.parent_id else None
        themes.append(
            {
                "theme_id": tid,
                "parent_id": pid,
                "level": th.level,
                "label": th.label,
                "keywords": json.dumps(list(th.keywords)),
                "size": int(th.size),
                "examples": json.dumps(list(th.examples)),
                "breakdown": json.dumps(th.breakdown or {}, default=str),
                "sentiment": None if th.sentiment is None else float(th.sentiment),
                "centroid": encode_vector(th.centroid),
                "status": "active",
                "run_id": run_id,
            }
        )
    xy = _projection(emb, 0)
    assignments = pd.DataFrame(
        {
            "record_id": sub["id"].to_numpy(),
            "theme_id": [id_map.get(t) if t else None for t in top_ids],
            "subtheme_id": [id_map.get(s) if s else None for s in sub_ids],
            "x": xy[:, 0],
            "y": xy[:, 1],
            "run_id": run_id,
        }
    )
    lin = [
        {
            "run_id": run_id,
            "theme_id": ev.theme_id,
            "event": ev.event,
            "related": json.dumps(list(ev.related)),
        }
        for ev in lineage
    ]
    n_top = sum(1 for t in themes if t["level"] == 1)
    summary = {
        "n_records": len(sub),
        "n_top": n_top,
        "n_sub": len(themes) - n_top,
        "unassigned_share": round(float(np.mean([t is None for t in top_ids])), 4),
        "lineage": pd.Series([e.event for e in lineage]).value_counts().to_dict()
        if lineage
        else {},
    }
    return {"themes": themes, "assignments": assignments, "lineage": lin, "summary": summary}


def _used_ids(store: Store, prefix: str) -> list[str]:
    """Every id ever issued for this source (retired ones included), so none is reused."""
    return store.query_df(
        "SELECT theme_id FROM themes WHERE regexp_matches(theme_id, ?) UNION "
        "SELECT theme_id FROM theme_lineage WHERE regexp_matches(theme_id, ?)",
        [f"^{prefix}[0-9]", f"^{prefix}[0-9]"],
    )["theme_id"].tolist()


def _theme_from_row(r: Any) -> Any:
    from analyzer.themes.model import Theme

    return Theme(
        theme_id=r.theme_id,
        parent_id=r.parent_id,
        level=int(r.level),
        label=r.label,
        keywords=list(json.loads(r.keywords or "[]")),
        size=int(r.size),
        examples=list(json.loads(r.examples or "[]")),
        breakdown=json.loads(r.breakdown or "{}"),
        sentiment=r.sentiment,
        centroid=decode_vectors([r.centroid])[0],
    )


# A new text joins an existing sub-theme only if it is at least this similar to its centroid;
# farther ones stay unassigned until the next re-fit.
MIN_CENTROID_COSINE = 0.35


def assign_to_centroids(
    embeddings: np.ndarray, centroids: np.ndarray, min_cosine: float = MIN_CENTROID_COSINE
) -> np.ndarray:
    """Index of the nearest centroid (cosine) per row, -1 where none is close enough."""
    if len(embeddings) == 0 or len(centroids) == 0:
        return np.full(len(embeddings), -1, dtype=int)
    c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sims = embeddings @ c.T
    best = sims.argmax(axis=1)
    best[sims[np.arange(len(best)), best] < min_cosine] = -1
    return best


def _assign_incrementally(
    sub: pd.DataFrame,
    new_mask: np.ndarray,
    new_emb: np.ndarray,
    prev_src: pd.DataFrame,
    run_id: str,
) -> dict[str, Any]:
    """New records (``new_mask``; their vectors ``new_emb``) join the nearest existing sub-theme
    (and its parent); themes keep their ids."""
    subs = prev_src[prev_src["level"] == 2].reset_index(drop=True)
    parent_of = dict(zip(subs["theme_id"], subs["parent_id"], strict=True))
    centroids = decode_vectors(subs["centroid"].tolist())
    nearest = assign_to_centroids(new_emb, centroids)
    sub_ids = [subs["theme_id"][i] if i >= 0 else None for i in nearest]
    assignments = pd.DataFrame(
        {
            "record_id": sub.loc[new_mask, "id"].to_numpy(),
            "theme_id": [parent_of.get(s) if s else None for s in sub_ids],
            "subtheme_id": sub_ids,
            "x": np.nan,
            "y": np.nan,
            "run_id": run_id,
        }
    )
    added_sub = assignments["subtheme_id"].value_counts().to_dict()
    added_top = assignments["theme_id"].value_counts().to_dict()
    themes = []
    for r in prev_src.itertuples(index=False):
        extra = int((added_sub if r.level == 2 else added_top).get(r.theme_id, 0))
        row = r._asdict()
        row["size"] = int(r.size) + extra
        row["run_id"] = run_id
        themes.append({k: row[k] for k in THEME_COLUMNS})
    summary = {
        "n_records": len(sub),
        "n_new": int(new_mask.sum()),
        "n_top": int((prev_src["level"] == 1).sum()),
        "n_sub": int((prev_src["level"] == 2).sum()),
        "unassigned_share_new": round(
            float(np.mean([s is None for s in sub_ids])) if sub_ids else 0.0, 4
        ),
    }
    return {
        "themes": themes,
        "assignments": assignments,
        "lineage": [],
        "summary": summary,
        "incremental": True,
    }
