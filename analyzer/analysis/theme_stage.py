"""The themes stage of ``civicpulse analyze``, per source: re-fit (ids matched to the previous
run's, lineage recorded) or place new records with the existing themes (``ThemeModel.transform``
over the stored themes); rows for ``analyzer.store.writers.write_themes``.

Every theme row carries its source: the previous themes of a source are those stored with it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analyzer.common.vectors import decode_vectors, encode_vector
from analyzer.config import Settings
from analyzer.store.database import Store
from analyzer.store.writers import THEME_COLUMNS
from analyzer.themes.ids import kind_prefix

if TYPE_CHECKING:
    from analyzer.analysis.plan import Plan
    from analyzer.themes.model import Theme, ThemeModel

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
    for key, idx in records.groupby("source").indices.items():
        source = str(key)
        if len(idx) < MIN_RECORDS_FOR_THEMES:
            continue
        sub = records.iloc[idx].reset_index(drop=True)
        prev_src = previous[previous["source"] == source]
        if source not in plan.refit_sources:
            new = ~plan.assigned[idx]
            # only the new records' vectors: copying all of a source's rows cost a second
            res = _assign_incrementally(sub, new, vectors[idx[new]], prev_src, run_id, source)
            out["per_source"][source] = {"mode": "incremental", **res["summary"]}
        else:
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
            model = ThemeModel(**theme_params(settings), id_prefix=_prefix(sub, source))
            model.fit(emb, sub["text"].tolist(), meta=meta)
            res = _fitted_to_rows(model, sub, emb, source, prev_src, prev_assign, run_id, store)
            out["per_source"][source] = {"mode": "refit", **res["summary"]}
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
    model: ThemeModel,
    sub: pd.DataFrame,
    emb: np.ndarray,
    source: str,
    prev_src: pd.DataFrame,
    prev_assign: pd.DataFrame,
    run_id: str,
    store: Store,
) -> dict[str, Any]:
    from analyzer.themes.lineage import match_themes, members_by_theme

    current = list(model.themes_)
    top_ids = [None if v is None else str(v) for v in model.labels_]
    sub_ids = [None if v is None else str(v) for v in model.sublabels_]
    # Members per theme, by record id, for matching against the previous run.
    cur_members = members_by_theme(sub["id"], top_ids, sub_ids)
    prev_members = members_by_theme(
        prev_assign["record_id"], prev_assign["theme_id"], prev_assign["subtheme_id"]
    )
    id_map, lineage = match_themes(
        [_theme_from_row(r) for r in prev_src.itertuples(index=False)],
        current,
        prev_members,
        cur_members,
        used_ids=_used_ids(store, source, _prefix(sub, source)),
        prefix=_prefix(sub, source),
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
                "source": source,
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
            "source": source,
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


def _prefix(sub: pd.DataFrame, source: str) -> str:
    """A source's theme id letters come from what its records are (their kind; the most common
    one should a source hold several), not from its name (``analyzer.themes.ids``)."""
    kinds = sub["kind"].dropna() if "kind" in sub.columns else pd.Series(dtype=object)
    kind = str(kinds.mode().iloc[0]) if len(kinds) else None
    return kind_prefix(kind, source)


def _used_ids(store: Store, source: str, prefix: str) -> list[str]:
    """Every id ever issued to this source or under its letters (retired ones included, any
    source of the same kind too), so that none is reused."""
    pattern = f"^{prefix}[0-9]"
    return store.query_df(
        "SELECT theme_id FROM themes WHERE source = ? OR regexp_matches(theme_id, ?) UNION "
        "SELECT theme_id FROM theme_lineage WHERE source = ? OR regexp_matches(theme_id, ?)",
        [source, pattern, source, pattern],
    )["theme_id"].tolist()


def _theme_from_row(r: Any) -> Theme:
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


def _assign_incrementally(
    sub: pd.DataFrame,
    new_mask: np.ndarray,
    new_emb: np.ndarray,
    prev_src: pd.DataFrame,
    run_id: str,
    source: str,
) -> dict[str, Any]:
    """New records (``new_mask``; their vectors ``new_emb``) are placed with the source's stored
    (active) themes by ``ThemeModel.transform``; themes keep their ids."""
    from analyzer.themes.model import ThemeModel

    model = ThemeModel.from_themes(_theme_from_row(r) for r in prev_src.itertuples(index=False))
    top_ids, sub_ids = model.transform(new_emb)
    assignments = pd.DataFrame(
        {
            "record_id": sub.loc[new_mask, "id"].to_numpy(),
            "theme_id": top_ids,
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
        row["source"] = source
        themes.append({k: row[k] for k in THEME_COLUMNS})
    summary = {
        "n_records": len(sub),
        "n_new": int(new_mask.sum()),
        "n_top": int((prev_src["level"] == 1).sum()),
        "n_sub": int((prev_src["level"] == 2).sum()),
        "unassigned_share_new": round(
            float(np.mean([s is None for s in sub_ids])) if len(sub_ids) else 0.0, 4
        ),
    }
    return {
        "themes": themes,
        "assignments": assignments,
        "lineage": [],
        "summary": summary,
        "incremental": True,
    }


def theme_params(settings: Settings) -> dict[str, Any]:
    """The ThemeModel parameters every source is fitted with (also written to the run manifest);
    the id prefix is per source and set where the model is made."""
    from analyzer.themes.model import ThemeModel

    params = ThemeModel(seed=settings.seed).get_params()
    params.pop("id_prefix")
    return params
