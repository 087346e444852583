"""``civicpulse analyze``: embed what is new, update themes, sentiment and emerging needs, incrementally.

Steps (DESIGN.md data flow): records -> embeddings (cache) -> sentiment (new records only) -> themes
(re-fitted per source when enough is new, else new records join the nearest existing sub-theme) ->
emerging needs. Every run writes a manifest (input hash, model ids, parameters, seed, code version,
timings) to the ``runs`` table. Results are written in one transaction: a crash leaves the previous
analysis in place.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analyzer import __version__
from analyzer.analysis.plan import REFIT_SHARE, make_plan
from analyzer.analysis.theme_stage import run_themes, theme_params
from analyzer.common.clock import new_run_id
from analyzer.config import Settings
from analyzer.embedding.embedder import get_embedder
from analyzer.embedding.store_vectors import model_change
from analyzer.store.database import Store
from analyzer.store.writers import write_alerts, write_sentiment, write_themes

if TYPE_CHECKING:
    from analyzer.trends.detector import EmergingDetector

log = logging.getLogger("civicpulse.pipeline")

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


def load_records(store: Store, sentiment_model_id: str) -> pd.DataFrame:
    """Every record to analyse, with whether it already has a theme assignment and a score from
    the given sentiment model (one query, so the flags match the rows even while records arrive).
    Boilerplate (placeholders, texts repeated across a file: ``analyzer.ingest.boilerplate``) is
    kept in the store but left out of themes, sentiment and emerging needs."""
    return store.query_df(
        "SELECT r.id, r.source, r.kind, r.text, r.text_hash, r.created_at, r.area, r.category, "
        "a.record_id IS NOT NULL AS has_assignment, s.record_id IS NOT NULL AS has_sentiment "
        "FROM records r LEFT JOIN assignments a ON a.record_id = r.id "
        "LEFT JOIN sentiment s ON s.record_id = r.id AND s.model_id = ? "
        "WHERE NOT coalesce(r.boilerplate, false) ORDER BY r.id",
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
    keep_vectors: bool = False,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the whole analysis on the store; returns the run manifest (also stored in ``runs``).

    ``engine="ray"`` runs embedding and sentiment as Ray Data jobs (``analyzer.analysis.ray_engine``) on
    the cluster at ``address``, or on a local Ray with ``ray_cpus`` CPUs; ``workers`` actors.

    When the embedding model (or its build) differs from the store's last analysis's, the run says
    so in one line (``notify``, else the log), re-embeds every record, re-fits the themes and
    re-scores sentiment, so nothing mixes two models' vectors; ``keep_vectors`` refuses instead
    (InputError). See ``analyzer.embedding.store_vectors``.
    """
    from analyzer.analysis.engines import make_engine

    runner = make_engine(engine, address=address, workers=workers, local_cpus=ray_cpus)
    run_id = run_id or new_run_id()
    report = progress if callable(progress) else None
    show_bars = progress is True
    timer = StageTimer()
    t_start = time.perf_counter()
    embedder = get_embedder(
        settings.embed_model or None, settings.embed_backend, settings.embed_batch_size
    )
    change = model_change(store, embedder)
    if change is not None:
        if keep_vectors:
            from analyzer.errors import InputError

            raise InputError(change.refusal())
        refit = True
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "code_version": code_version(),
        "seed": settings.seed,
        "parameters": {
            "refit_share": REFIT_SHARE,
            "refit": refit,
            "period": "W",
            "emerging": _emerging_detector().get_params(),
            "themes": theme_params(settings),
        },
        "models": {
            "embedding": embedder.model_id,
            "embedding_sha256": embedder.weights_sha256_,
            "embedding_build": embedder.build_record(),
        },
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
        from analyzer.sentiment.model import load_default

        sentiment_model = load_default()
        records = timer.run(
            "load", lambda: load_records(store, getattr(sentiment_model, "model_id", "sentiment"))
        )
        if records.empty:
            raise_empty()
        languages = _languages(records)
        manifest["languages"] = languages
        for source, lang in languages.items():
            if lang != "en":
                (notify or log.warning)(
                    f"source {source!r} reads as {lang!r}, not English: its themes are labelled "
                    "in its own words, but sentiment comes from a model trained and measured on "
                    "English only (read it as a rough signal)"
                )
        if change is not None:  # said once, before embedding; scored again, as re-embedded
            change = change.counted(store, records["text_hash"])
            manifest["embedding_change"] = change.as_manifest()
            (notify or log.warning)(change.line())
            records["has_sentiment"] = False
        step("embedding", 0.05)
        n_cached_before = store.scalar(
            "SELECT count(*) FROM embeddings WHERE model_id = ?", [embedder.model_id]
        )
        plan = timer.run("plan", lambda: make_plan(store, records, refit, sentiment_model))
        done = runner.analyze_records(
            store, records, embedder, plan, timed=timer.run, step=step, progress=show_bars
        )
        vectors, sentiment_rows, sentiment_id = (
            done.vectors,
            done.sentiment_rows,
            done.sentiment_model,
        )
        manifest["engine"] = done.engine
        n_cached_after = store.scalar(
            "SELECT count(*) FROM embeddings WHERE model_id = ?", [embedder.model_id]
        )
        manifest["models"]["sentiment"] = sentiment_id
        step("themes", 0.55)
        theme_result = timer.run(
            "themes",
            lambda: run_themes(store, records, vectors, settings, run_id, plan),
        )
        step("emerging needs", 0.85)
        alerts = timer.run("emerging", lambda: _emerging(store, records, theme_result, run_id))
        step("writing results", 0.95)

        def write() -> None:
            with store.transaction() as con:
                write_sentiment(con, sentiment_rows)
                write_themes(con, theme_result, run_id)
                write_alerts(con, alerts)

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


def _languages(records: pd.DataFrame) -> dict[str, str]:
    """Each source's language, told by its stop words (``analyzer.common.language``)."""
    from analyzer.common.language import detect_language

    return {
        str(source): detect_language(group["text"].astype(str).tolist())
        for source, group in records.groupby("source", sort=True)
    }


def _run_exists(store: Store, run_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))


def raise_empty() -> None:
    from analyzer.errors import InputError

    raise InputError("the store has no records; run `civicpulse ingest FILE` first")


# -- emerging needs ----------------------------------------------------------------------------


def _emerging_detector() -> EmergingDetector:
    """The detector every analysis run uses (its parameters go into the run manifest)."""
    from analyzer.trends.detector import EmergingDetector

    # the last 4 weeks, not just the last one: a need that began rising 2-3 weeks ago has already
    # lifted its own recent baseline, so the last week alone would hide it
    return EmergingDetector(period="W", windows=4)


def _emerging(
    store: Store, records: pd.DataFrame, theme_result: dict[str, Any], run_id: str
) -> pd.DataFrame:
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
        detector = _emerging_detector()
        frame = part[["record_id", "theme_id", "created_at", "area", "text"]]
        alerts = detector.fit(frame).detect(frame, theme_labels=labels)
        if not alerts.empty:
            frames.append(alerts)
    if not frames:
        return pd.DataFrame()
    alerts = pd.concat(frames, ignore_index=True)
    alerts["run_id"] = run_id
    return alerts
