"""The Ray engine on a local 2-CPU Ray: same themes, sentiment and (near-)same vectors as local.

The tests that start Ray are marked slow (`make test-slow`); the checks of bad engine options,
which stop before Ray starts, run with the fast suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")

from analyzer.analysis.pipeline import run_analysis
from analyzer.cli import main
from analyzer.common.vectors import decode_vectors
from analyzer.config import load_settings
from analyzer.ingest import ingest_file
from analyzer.store.database import Store

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "boston_311_sample.csv"


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = pd.read_csv(SAMPLE, dtype=str)
    df = df[df["description"].fillna("").str.len() > 20].sample(n=300, random_state=7)
    path = tmp_path_factory.mktemp("samples") / "boston_300.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def both_engines(sample_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same sample analysed by the local engine and by Ray (a local Ray with 2 CPUs)."""
    folder = tmp_path_factory.mktemp("stores")
    stores, manifests = {}, {}
    for engine in ("local", "ray"):
        path = folder / f"{engine}.duckdb"
        settings = load_settings().with_overrides(store_path=path)
        store = Store(path)
        ingest_file(store, sample_csv, profile="boston", progress=False)
        kwargs = {"workers": 2, "ray_cpus": 2} if engine == "ray" else {}
        manifests[engine] = run_analysis(store, settings, engine=engine, **kwargs)
        stores[engine] = store
    yield stores, manifests, folder
    for store in stores.values():
        store.close()


def _vectors(store: Store) -> dict[str, np.ndarray]:
    df = store.query_df("SELECT text_hash, vector FROM embeddings")
    return dict(zip(df["text_hash"], decode_vectors(df["vector"]), strict=True))


@pytest.mark.slow
def test_ray_run_is_recorded_in_the_manifest(both_engines) -> None:
    stores, manifests, _ = both_engines
    engine = manifests["ray"]["engine"]
    assert manifests["local"]["engine"] == {"name": "local"}
    # 300 texts are one chunk of the local engine, so one actor embeds them all
    assert engine["name"] == "ray" and engine["cluster_cpus"] == 2 and engine["workers"] == 1
    assert engine["texts_sent"] == manifests["ray"]["counts"]["embedded_new"]
    stored = stores["ray"].query_df(
        "SELECT manifest FROM runs WHERE run_id = ?", [manifests["ray"]["run_id"]]
    )
    assert json.loads(stored["manifest"][0])["engine"]["name"] == "ray"
    for key in ("records", "embedded_new", "sentiment_new", "themes", "subthemes"):
        assert manifests["ray"]["counts"][key] == manifests["local"]["counts"][key], key


@pytest.mark.slow
def test_same_embeddings_and_cache(both_engines) -> None:
    stores, manifests, _ = both_engines
    local, ray = _vectors(stores["local"]), _vectors(stores["ray"])
    assert set(local) == set(ray) and len(local) == manifests["local"]["counts"]["embedded_new"]
    keys = sorted(local)
    a = np.vstack([local[k] for k in keys])
    b = np.vstack([ray[k] for k in keys])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= 0.9999
    # the same chunks as the local engine: the same vectors, bit for bit
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_small_chunks_spread_over_two_workers(sample_csv: Path) -> None:
    """Chunks smaller than the local engine's: 2 actors, vectors and labels as the local ones."""
    from analyzer.analysis.ray_engine import RayOptions, process_texts
    from analyzer.embedding.embedder import get_embedder
    from analyzer.sentiment.model import analyze_sentiment
    from analyzer.tagging.supervised import load_tagger

    settings = load_settings()
    embedder = get_embedder(settings.embed_model or None, settings.embed_backend)
    texts = pd.read_csv(sample_csv, dtype=str)["description"].tolist()[:200]
    texts += texts[:20]  # identical texts go to Ray once
    bundle = Path(__file__).resolve().parents[2] / "models" / "boston-311"
    cols, engine = process_texts(
        texts,
        embedder,
        RayOptions(local_cpus=2, chunk_rows=50),
        sentiment=True,
        tagger_path=str(bundle),
    )
    assert engine["workers"] == 2 and engine["texts_sent"] == 200
    local = embedder.embed(texts)
    assert cols["embedding"].shape == local.shape
    assert (
        (cols["embedding"] * local).sum(1) / np.linalg.norm(cols["embedding"], axis=1)
    ).min() >= 0.9999
    sentiment = analyze_sentiment(texts, embeddings=local)
    assert (cols["sentiment"] == sentiment["sentiment"].to_numpy()).mean() >= 0.98
    tags = load_tagger(bundle, embed_backend=settings.embed_backend).predict_detailed(
        texts, embeddings=local
    )
    assert (cols["predicted_label"] == [r["predicted_label"] for r in tags]).mean() >= 0.98


@pytest.mark.slow
def test_same_sentiment_and_themes(both_engines) -> None:
    stores, _, _ = both_engines
    q_sent = "SELECT record_id, model_id, label, score FROM sentiment ORDER BY record_id"
    local, ray = stores["local"].query_df(q_sent), stores["ray"].query_df(q_sent)
    assert len(local) == 300
    pd.testing.assert_frame_equal(
        local.drop(columns="score"), ray.drop(columns="score"), check_dtype=False
    )
    assert np.abs(local["score"] - ray["score"]).max() < 1e-3
    q_themes = "SELECT theme_id, parent_id, level, label, size FROM themes ORDER BY theme_id"
    pd.testing.assert_frame_equal(
        stores["local"].query_df(q_themes), stores["ray"].query_df(q_themes)
    )
    q_assign = "SELECT record_id, theme_id, subtheme_id FROM assignments ORDER BY record_id"
    pd.testing.assert_frame_equal(
        stores["local"].query_df(q_assign), stores["ray"].query_df(q_assign)
    )


@pytest.mark.slow
def test_nothing_new_starts_no_ray(both_engines, tmp_path: Path, copy_store) -> None:
    stores, _, folder = both_engines
    # a run of its own on a copy: the shared stores stay as the two engines left them
    stores["ray"].execute("CHECKPOINT")
    path = copy_store(folder / "ray.duckdb", tmp_path)
    settings = load_settings().with_overrides(store_path=path)
    with Store(path) as store:
        again = run_analysis(store, settings, engine="ray", address="127.0.0.1:1")
    # the unreachable address is never contacted: everything was cached
    assert again["counts"]["embedded_new"] == 0 and again["engine"]["workers"] == 0


@pytest.fixture(scope="module")
def tiny_store(sample_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five records never analysed: every bad option is caught before or instead of Ray."""
    folder = tmp_path_factory.mktemp("tiny")
    pd.read_csv(sample_csv, dtype=str).head(5).to_csv(folder / "five.csv", index=False)
    with Store(folder / "s.duckdb") as st:
        ingest_file(st, folder / "five.csv", profile="boston", progress=False)
    return folder / "s.duckdb"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "ray", "--address", "127.0.0.1:1"], "no Ray cluster answers"),
        (["--engine", "ray", "--address", "head-node"], "not HOST:PORT"),
        (["--engine", "spark"], "unknown engine"),
        (["--address", "127.0.0.1:6379"], "need --engine ray"),
        (["--engine", "ray", "--workers", "0"], "at least 1"),
    ],
)
def test_bad_engine_options_exit_2(tiny_store: Path, capsys, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--store", str(tiny_store), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
