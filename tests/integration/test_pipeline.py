"""`civicpulse analyze` on a real sample: incremental embedding, stable theme ids, manifest, atomicity."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.analysis.pipeline import run_analysis
from analyzer.config import load_settings
from analyzer.ingest import ingest_file
from analyzer.store.database import Store
from analyzer.trends.detector import EmergingDetector

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "boston_311_sample.csv"


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two slices of the Boston sample: an older 'history' and a later 'day' of new requests."""
    df = pd.read_csv(SAMPLE, dtype=str)
    df = df[df["description"].fillna("").str.len() > 20].sort_values("requested_datetime")
    history = df.iloc[:-20].sample(n=560, random_state=0).sort_values("requested_datetime")
    newest = df.iloc[-20:]
    folder = tmp_path_factory.mktemp("samples")
    history.to_csv(folder / "history.csv", index=False)
    newest.to_csv(folder / "newest.csv", index=False)
    return folder / "history.csv", folder / "newest.csv"


@dataclass(frozen=True)
class Analyzed:
    """The store after two runs (the history, then the newest day), closed: each test opens its own
    copy, so what one test writes (a third run, a re-fit, a failed run) no other test sees."""

    path: Path
    first: dict
    second: dict
    themes_before: pd.DataFrame  # after the first run


@pytest.fixture(scope="module")
def analyzed_file(
    small_sample: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Analyzed:
    path = tmp_path_factory.mktemp("store") / "s.duckdb"
    settings = load_settings().with_overrides(store_path=path)
    with Store(path) as store:
        ingest_file(store, small_sample[0], profile="boston", progress=False)
        first = run_analysis(store, settings)
        themes_before = store.query_df(
            "SELECT theme_id, label, level FROM themes ORDER BY theme_id"
        )
        ingest_file(store, small_sample[1], profile="boston", progress=False)
        second = run_analysis(store, settings)
    return Analyzed(path, first, second, themes_before)


@pytest.fixture()
def analyzed(analyzed_file: Analyzed, tmp_path: Path, copy_store):
    """A private copy of the analysed store, open, with its settings and the two runs' manifests."""
    path = copy_store(analyzed_file.path, tmp_path)
    settings = load_settings().with_overrides(store_path=path)
    with Store(path) as store:
        yield (
            store,
            settings,
            copy.deepcopy(analyzed_file.first),
            copy.deepcopy(analyzed_file.second),
            analyzed_file.themes_before.copy(),
        )


def test_first_run_fills_every_table(analyzed) -> None:
    store, _, first, _, _ = analyzed
    n = store.scalar("SELECT count(*) FROM records")
    assert first["counts"]["records"] == 560 and n == 580
    assert first["counts"]["embedded_new"] >= 0.9 * 560  # near-identical texts are embedded once
    assert store.scalar("SELECT count(*) FROM sentiment") == n
    assert store.scalar("SELECT count(*) FROM assignments") == n
    top = store.query_df("SELECT * FROM themes WHERE level = 1")
    assert 2 <= len(top) <= 40
    assert top["label"].str.len().min() > 0
    assert not top["label"].str.contains(r"\[(?:NAME|PHONE|ADDRESS)\]").any()
    for col in ("input_hash", "code_version", "seed", "models", "timings_s"):
        assert col in first
    run = store.query_df("SELECT status, manifest FROM runs WHERE run_id = ?", [first["run_id"]])
    assert run["status"][0] == "done"
    manifest = json.loads(run["manifest"][0])
    assert manifest["models"]["embedding"].startswith("sentence-transformers/")
    # the emerging detector's settings, so a run's alerts can be reproduced
    emerging = manifest["parameters"]["emerging"]
    assert emerging["fdr"] == EmergingDetector().fdr and emerging["windows"] == 4


def test_second_run_is_incremental_and_keeps_ids(analyzed) -> None:
    store, _, first, second, themes_before = analyzed
    # only the 20 new requests (at most) are embedded; the cache serves the rest
    assert second["counts"]["embedded_new"] <= 20
    assert second["counts"]["sentiment_new"] == 20
    assert second["themes"]["311"]["mode"] == "incremental"
    after = store.query_df("SELECT theme_id, label FROM themes WHERE status = 'active'")
    assert set(themes_before["theme_id"]) <= set(after["theme_id"])
    assert store.scalar("SELECT count(*) FROM assignments") == second["counts"]["records"]
    assert second["input_hash"] != first["input_hash"]


def test_increment_reads_only_the_new_vectors(analyzed) -> None:
    """The incremental run embeds (or reads from the cache) only its new records, and they join
    the sub-theme their own vector is nearest to."""
    from analyzer.common.vectors import decode_vectors
    from analyzer.embedding.embedder import get_embedder
    from analyzer.themes.model import MIN_CENTROID_COSINE

    store, settings, _, second, _ = analyzed
    new = store.query_df(
        "SELECT r.id, r.text, a.subtheme_id FROM records r JOIN assignments a ON a.record_id = r.id "
        "WHERE a.run_id = ? ORDER BY r.id",
        [second["run_id"]],
    )
    assert len(new) == 20
    subs = store.query_df(
        "SELECT theme_id, centroid FROM themes WHERE level = 2 AND status = 'active' "
        "AND source = '311' ORDER BY theme_id"
    )
    embedder = get_embedder(None, settings.embed_backend, settings.embed_batch_size)
    vectors = embedder.embed(new["text"].tolist(), store=store)
    centroids = decode_vectors(subs["centroid"].tolist())
    sims = vectors @ (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).T
    want = [
        subs["theme_id"][i] if sims[row, i] >= MIN_CENTROID_COSINE else None
        for row, i in enumerate(sims.argmax(axis=1))
    ]
    got = [s if isinstance(s, str) else None for s in new["subtheme_id"]]
    assert got == want and any(want)


def test_run_with_nothing_new_embeds_nothing(analyzed, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer.embedding.embedder import Embedder

    store, settings, _, second, _ = analyzed
    seen: list[int] = []
    real = Embedder.embed

    def spy(self, texts, **kw):
        seen.append(len(texts))
        return real(self, texts, **kw)

    monkeypatch.setattr(Embedder, "embed", spy)
    third = run_analysis(store, settings)
    assert seen == [0] and third["counts"]["embedded_new"] == 0
    assert third["themes"]["311"]["mode"] == "incremental"
    assert store.scalar("SELECT count(*) FROM assignments") == second["counts"]["records"]


def test_refit_keeps_most_ids(analyzed) -> None:
    store, settings, _, _, themes_before = analyzed
    run_analysis(store, settings, refit=True)
    after = store.query_df("SELECT theme_id FROM themes WHERE status = 'active' AND level = 1")
    before_top = set(themes_before.loc[themes_before["level"] == 1, "theme_id"])
    kept = len(before_top & set(after["theme_id"])) / len(before_top)
    assert kept >= 0.6
    events = store.query_df("SELECT DISTINCT event FROM theme_lineage")["event"]
    assert "same" in set(events)


def test_failed_analysis_leaves_previous_results(analyzed, monkeypatch: pytest.MonkeyPatch) -> None:
    store, settings, *_ = analyzed
    before = store.query_df("SELECT theme_id, size FROM themes ORDER BY theme_id")
    alerts_before = store.scalar("SELECT count(*) FROM emerging")

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash in the emerging step")

    monkeypatch.setattr("analyzer.analysis.pipeline._emerging", boom)
    with pytest.raises(RuntimeError):
        run_analysis(store, settings, refit=True)
    pd.testing.assert_frame_equal(
        before, store.query_df("SELECT theme_id, size FROM themes ORDER BY theme_id")
    )
    assert store.scalar("SELECT count(*) FROM emerging") == alerts_before
    last = store.query_df("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1")
    assert last["status"][0] == "failed"
