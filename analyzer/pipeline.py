"""``civicpulse analyze``: embed what is new, update themes, sentiment and emerging needs, incrementally.

Steps (DESIGN.md data flow): records -> embeddings (cache) -> sentiment (new records only) -> themes
(re-fitted per source when enough is new, else new records join the nearest existing sub-theme) ->
emerging needs. Every run writes a manifest (input hash, model ids, parameters, seed, code version,
timings) to the ``runs`` table. Results are written in one transaction: a crash leaves the previous
analysis in place.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyzer import __version__
from analyzer.config import Settings
from analyzer.embed import EMBED_DIM, get_embedder
from analyzer.store import Store, decode_vectors, encode_vector
from analyzer.store import _drain as drain

log = logging.getLogger("civicpulse.pipeline")

# Re-fit a source's themes when at least this share of its records is new since the last fit.
REFIT_SHARE = 0.05
# Below this many records a source gets no themes (too few to say anything useful).
MIN_RECORDS_FOR_THEMES = 30
EXAMPLES_PER_ALERT = 5

ProgressFn = Callable[[str, float], None]


@dataclass
class StageTimer:
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if out.returncode == 0:
            return f"{__version__}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def _input_hash(store: Store) -> str:
    return store.scalar(
        "SELECT coalesce(md5(string_agg(id || ':' || text_hash, ',' ORDER BY id)), '') FROM records"
    )


def _load_records(store: Store, sentiment_model_id: str) -> pd.DataFrame:
    """Every record, with whether it already has a theme assignment and a score from the given
    sentiment model (one query, so the flags match the rows even while records arrive)."""
    return store.query_df(
        "SELECT r.id, r.source, r.text, r.text_hash, r.created_at, r.area, r.category, "
        "a.record_id IS NOT NULL AS has_assignment, s.record_id IS NOT NULL AS has_sentiment "
        "FROM records r LEFT JOIN assignments a ON a.record_id = r.id "
        "LEFT JOIN sentiment s ON s.record_id = r.id AND s.model_id = ? ORDER BY r.id",
        [sentiment_model_id],
    )


def run_analysis(
    store: Store,
    settings: Settings,
    *,
    run_id: str | None = None,
    refit: bool = False,
    progress: bool | ProgressFn = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    ray_cpus: int | None = None,
) -> dict[str, Any]:
    """Run the whole analysis on the store; returns the run manifest (also stored in ``runs``).

    ``engine="ray"`` runs embedding and sentiment as Ray Data jobs (``analyzer.distributed``) on
    the cluster at ``address``, or on a local Ray with ``ray_cpus`` CPUs; ``workers`` actors.
    """
    from analyzer.distributed import check_engine

    check_engine(engine)
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    report = progress if callable(progress) else None
    show_bars = progress is True
    timer = StageTimer()
    t_start = time.perf_counter()
    embedder = get_embedder(
        settings.embed_model or None, settings.embed_backend, settings.embed_batch_size
    )
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "code_version": code_version(),
        "seed": settings.seed,
        "parameters": {"refit_share": REFIT_SHARE, "refit": refit, "period": "W"},
        "models": {"embedding": embedder.model_id, "embedding_sha256": embedder.weights_sha256_},
        "engine": {"name": engine},
    }
    if not _run_exists(store, run_id):
        store.start_run(run_id, "analyze", manifest)

    def step(name: str, share: float) -> None:
        store.update_run(run_id, progress=share, message=name)
        if report:
            report(name, share)
        log.info("analysis step", extra={"run_id": run_id, "step": name})

    try:
        step("loading records", 0.02)
        manifest["input_hash"] = _input_hash(store)
        from analyzer.sentiment import load_default

        sentiment_model = load_default()
        records = timer.run(
            "load", lambda: _load_records(store, getattr(sentiment_model, "model_id", "sentiment"))
        )
        if records.empty:
            raise_empty()
        step("embedding", 0.05)
        n_cached_before = store.scalar(
            "SELECT count(*) FROM embeddings WHERE model_id = ?", [embedder.model_id]
        )
        plan = timer.run("plan", lambda: _plan(store, records, refit, sentiment_model))
        if engine == "ray":
            from analyzer.distributed import DEFAULT_LOCAL_CPUS, RayOptions, analyze_records

            options = RayOptions(
                address=address, workers=workers, local_cpus=ray_cpus or DEFAULT_LOCAL_CPUS
            )
            # one Ray job embeds and scores sentiment; its time is the "embed" stage
            on_ray = timer.run(
                "embed",
                lambda: analyze_records(store, records, embedder, options, progress=show_bars),
            )
            vectors, manifest["engine"] = on_ray.vectors, on_ray.engine
        else:
            vectors = timer.run(
                "embed",
                lambda: _embed_needed(embedder, records, plan.needs_vectors, store, show_bars),
            )
        n_cached_after = store.scalar(
            "SELECT count(*) FROM embeddings WHERE model_id = ?", [embedder.model_id]
        )
        step("sentiment", 0.45)
        if engine == "ray":
            sentiment_rows, sentiment_id = on_ray.sentiment_rows, on_ray.sentiment_model
        else:
            sentiment_rows, sentiment_id = timer.run(
                "sentiment", lambda: _sentiment_for_new(records, vectors, plan)
            )
        manifest["models"]["sentiment"] = sentiment_id
        step("themes", 0.55)
        theme_result = timer.run(
            "themes",
            lambda: _themes(store, records, vectors, settings, run_id, plan),
        )
        step("emerging needs", 0.85)
        alerts = timer.run("emerging", lambda: _emerging(store, records, theme_result, run_id))
        step("writing results", 0.95)

        def write() -> None:
            with store.transaction() as con:
                _write_sentiment(con, sentiment_rows)
                _write_themes(con, theme_result, run_id)
                _write_alerts(con, alerts)

        timer.run("write", write)
        timer.timings["total"] = round(time.perf_counter() - t_start, 3)
        manifest["timings_s"] = timer.timings
        manifest["counts"] = {
            "records": len(records),
            "embedded_new": int(n_cached_after - n_cached_before),
            "sentiment_new": len(sentiment_rows),
            "themes": int(sum(r["n_top"] for r in theme_result["per_source"].values())),
            "subthemes": int(sum(r["n_sub"] for r in theme_result["per_source"].values())),
            "alerts": len(alerts),
        }
        manifest["themes"] = theme_result["per_source"]
        store.update_run(run_id, status="done", progress=1.0, message="done", manifest=manifest)
        return manifest
    except BaseException as exc:
        store.update_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:300])
        raise


@dataclass
class Plan:
    """What this run must (re)compute, decided before embedding so that a small increment loads
    only the vectors it uses (the next day's 300 requests, not the store's 300,000)."""

    refit_sources: set[str]
    previous: pd.DataFrame  # active themes of the last run
    assigned: np.ndarray  # bool per record: has an assignment from an earlier run
    sentiment_model: Any
    sentiment_todo: np.ndarray  # bool per record: no score from this sentiment model yet
    needs_vectors: np.ndarray  # bool per record


def _plan(store: Store, records: pd.DataFrame, refit: bool, sentiment_model: Any) -> Plan:
    """``records`` as ``_load_records`` gives them (with their assignment and sentiment flags)."""
    previous = store.query_df("SELECT * FROM themes WHERE status = 'active'")
    assigned = records["has_assignment"].to_numpy(dtype=bool)
    refit_sources: set[str] = set()
    needs = ~assigned
    for source, idx in records.groupby("source").indices.items():
        prefix = _source_prefix(str(source))
        has_themes = previous["theme_id"].str.match(rf"^{prefix}\d").any()
        new_share = 1.0 - assigned[idx].sum() / max(len(idx), 1)
        if refit or not has_themes or new_share >= REFIT_SHARE:
            refit_sources.add(str(source))
            needs[idx] = True
    todo = ~records["has_sentiment"].to_numpy(dtype=bool)
    return Plan(refit_sources, previous, assigned, sentiment_model, todo, needs | todo)


def _embed_needed(
    embedder: Any, records: pd.DataFrame, needed: np.ndarray, store: Store, progress: bool
) -> np.ndarray:
    """Vectors for the records that need one (embedded or read from the cache); the other rows
    stay zero and no step reads them."""
    if needed.all():
        return embedder.embed(records["text"].tolist(), store=store, progress=progress)
    rows = np.flatnonzero(needed)
    part = embedder.embed(records["text"].iloc[rows].tolist(), store=store, progress=progress)
    # np.zeros maps untouched pages lazily: the unused rows cost no memory
    out = np.zeros((len(records), part.shape[1] if len(part) else EMBED_DIM), dtype=np.float32)
    out[rows] = part
    return out


def _run_exists(store: Store, run_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))


def raise_empty() -> None:
    from analyzer.errors import InputError

    raise InputError("the store has no records; run `civicpulse ingest FILE` first")


# -- sentiment ---------------------------------------------------------------------------------


def _sentiment_for_new(
    records: pd.DataFrame, vectors: np.ndarray, plan: Plan
) -> tuple[pd.DataFrame, str]:
    from analyzer.sentiment import analyze_sentiment

    model = plan.sentiment_model
    model_id = getattr(model, "model_id", "sentiment")
    mask = plan.sentiment_todo
    if not mask.any():
        return pd.DataFrame(columns=["record_id", "model_id", "label", "score"]), model_id
    texts = records.loc[mask, "text"].tolist()
    result = analyze_sentiment(texts, embeddings=vectors[mask], model=model)
    rows = pd.DataFrame(
        {
            "record_id": records.loc[mask, "id"].to_numpy(),
            "model_id": model_id,
            "label": result["sentiment"].to_numpy(),
            "score": result["sentiment_score"].astype(float).to_numpy(),
        }
    )
    return rows, model_id


def _write_sentiment(con: Any, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    con.register("_sent", rows)
    try:
        drain(
            con.execute(
                "INSERT OR REPLACE INTO sentiment SELECT record_id, model_id, label, score FROM _sent"
            )
        )
    finally:
        con.unregister("_sent")


# -- themes ------------------------------------------------------------------------------------


# Theme ids are letters + number ("REQ0007", sub-theme "REQ0007.03"): one letter prefix per source.
SOURCE_PREFIXES = {"311": "REQ", "survey": "SRV", "engagement": "ENG"}


def _source_prefix(source: str) -> str:
    if source in SOURCE_PREFIXES:
        return SOURCE_PREFIXES[source]
    letters = "".join(ch for ch in source.upper() if "A" <= ch <= "Z")
    return (letters[:3] or "SRC") + "X"


def _themes(
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
        prefix = _source_prefix(str(source))
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
            from analyzer.themes import ThemeModel, match_themes

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
    from analyzer.themes import Theme

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


THEME_COLUMNS = (
    "theme_id",
    "parent_id",
    "level",
    "label",
    "keywords",
    "size",
    "examples",
    "breakdown",
    "sentiment",
    "centroid",
    "status",
    "run_id",
)


def _write_themes(con: Any, result: dict[str, Any], run_id: str) -> None:
    themes = pd.DataFrame(result["themes"], columns=list(THEME_COLUMNS))
    assignments = (
        pd.concat(result["assignments"], ignore_index=True)
        if result["assignments"]
        else pd.DataFrame()
    )
    if themes.empty:
        return
    themes["first_seen_run"] = run_id
    con.register("_themes", themes)
    con.register("_assign", assignments)
    try:
        # Themes that disappeared in a re-fit are kept, marked retired, so their ids are never reused.
        drain(
            con.execute(
                "UPDATE themes SET status = 'retired' WHERE theme_id NOT IN (SELECT theme_id FROM _themes) "
                "AND split_part(theme_id, '-', 1) IN (SELECT DISTINCT split_part(theme_id, '-', 1) FROM _themes)"
            )
        )
        drain(
            con.execute(
                "INSERT INTO themes SELECT theme_id, parent_id, level, label, keywords, size, examples, "
                "breakdown, sentiment, centroid, status, run_id, first_seen_run FROM _themes "
                "ON CONFLICT (theme_id) DO UPDATE SET parent_id = excluded.parent_id, level = excluded.level, "
                "label = excluded.label, keywords = excluded.keywords, size = excluded.size, "
                "examples = excluded.examples, breakdown = excluded.breakdown, sentiment = excluded.sentiment, "
                "centroid = excluded.centroid, status = 'active', run_id = excluded.run_id"
            )
        )
        if not assignments.empty:
            # Incremental rows carry no projection; keep the map position of the nearest neighbours' theme.
            drain(
                con.execute(
                    "INSERT INTO assignments SELECT record_id, theme_id, subtheme_id, x, y, run_id FROM _assign "
                    "ON CONFLICT (record_id) DO UPDATE SET theme_id = excluded.theme_id, "
                    "subtheme_id = excluded.subtheme_id, x = coalesce(excluded.x, assignments.x), "
                    "y = coalesce(excluded.y, assignments.y), run_id = excluded.run_id"
                )
            )
        if result["lineage"]:
            lin = pd.DataFrame(result["lineage"])
            con.register("_lin", lin)
            drain(
                con.execute(
                    "INSERT INTO theme_lineage SELECT run_id, theme_id, event, related FROM _lin"
                )
            )
            con.unregister("_lin")
    finally:
        con.unregister("_themes")
        con.unregister("_assign")


# -- emerging needs ----------------------------------------------------------------------------


def _emerging(
    store: Store, records: pd.DataFrame, theme_result: dict[str, Any], run_id: str
) -> pd.DataFrame:
    from analyzer.trends import EmergingDetector

    assignments = (
        pd.concat(theme_result["assignments"], ignore_index=True)
        if theme_result["assignments"]
        else pd.DataFrame(columns=["record_id", "theme_id"])
    )
    # each record's theme: this run's assignment where it made one, else the stored one (a join
    # in DuckDB: pandas' concat/dedupe/merge on 300,000 string ids took seconds)
    df = store.query_with(
        "SELECT r.id AS record_id, r.source, r.created_at, r.area, r.text, "
        "CASE WHEN n.record_id IS NOT NULL THEN n.theme_id ELSE a.theme_id END AS theme_id "
        "FROM _rec r LEFT JOIN _new n ON n.record_id = r.id "
        "LEFT JOIN assignments a ON a.record_id = r.id "
        "WHERE r.created_at IS NOT NULL "
        "AND (CASE WHEN n.record_id IS NOT NULL THEN n.theme_id ELSE a.theme_id END) IS NOT NULL "
        "ORDER BY r.id",
        {
            "_rec": records[["id", "source", "created_at", "area", "text"]],
            "_new": assignments[["record_id", "theme_id"]].astype({"theme_id": object}),
        },
    )
    if df.empty:
        return pd.DataFrame()
    labels = {t["theme_id"]: t["label"] for t in theme_result["themes"]}
    labels.update(
        {
            k: v
            for k, v in store.query_df("SELECT theme_id, label FROM themes").itertuples(index=False)
            if k not in labels
        }
    )
    frames = []
    for _source, part in df.groupby("source"):
        # the last 4 weeks, not just the last one: a need that began rising 2-3 weeks ago has
        # already lifted its own recent baseline, so the last week alone would hide it
        detector = EmergingDetector(period="W", windows=4)
        frame = part[["record_id", "theme_id", "created_at", "area", "text"]]
        alerts = detector.fit(frame).detect(frame, theme_labels=labels)
        if not alerts.empty:
            frames.append(alerts)
    if not frames:
        return pd.DataFrame()
    alerts = pd.concat(frames, ignore_index=True)
    alerts["run_id"] = run_id
    return alerts


def _emerging_columns() -> tuple[str, ...]:
    from analyzer.trends import ALERT_COLUMNS

    return ("run_id", *ALERT_COLUMNS)


def _write_alerts(con: Any, alerts: pd.DataFrame) -> None:
    if alerts.empty:
        return
    frame = alerts.reindex(columns=list(_emerging_columns())).copy()
    frame["examples"] = frame["examples"].map(
        lambda xs: json.dumps(list(xs) if xs is not None else [])
    )
    con.register("_alerts", frame)
    try:
        drain(con.execute("INSERT INTO emerging SELECT * FROM _alerts"))
    finally:
        con.unregister("_alerts")
