"""A rebuilt embedding model gets a new build id: the next analysis says so and re-embeds (or, asked
to keep the vectors, refuses); a Ray worker with another build refuses to join.

Each test runs on its own copy of the built OpenVINO models in a temporary ``$CIVICPULSE_CACHE``
(the user's cache is never rebuilt here) and its own small store of real Boston requests. The test
that really recalibrates and rebuilds the static int8 model (~30 s on 2 cores), and the one that
starts Ray, are marked slow.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.analysis.pipeline import run_analysis
from analyzer.common.vectors import decode_vectors
from analyzer.config import load_settings
from analyzer.embedding import clear_shared_embedders
from analyzer.embedding.build_id import BUILD_ENV, build_id_of, split_model_id
from analyzer.embedding.embedder import Embedder
from analyzer.embedding.model_files import CACHE_ENV, MANIFEST_FILE
from analyzer.embedding.openvino_backend import ensure_model
from analyzer.embedding.quantize import CALIBRATION, CALIBRATION_ENV, SAMPLES_DIR, calibration_texts
from analyzer.errors import ModelBundleError
from analyzer.ingest import ingest_file
from analyzer.store.database import Store
from tests.integration.test_fast_embed import cosine_rows, run_cli

SAMPLE = SAMPLES_DIR / "boston_311_sample.csv"
BACKEND = "openvino-int8-static"  # the default, and the one calibrated on texts


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache holding copies of the user's built full and static int8 models (built
    there first if needed), so that a test may rebuild or edit them."""
    monkeypatch.delenv(BUILD_ENV, raising=False)
    monkeypatch.setenv("CIVICPULSE_EMBED_BACKEND", BACKEND)
    folder = tmp_path / "cache"
    for weights in ("full", "int8-static"):
        built = ensure_model(weights=weights)
        shutil.copytree(built.path.parent, folder / "openvino" / built.path.parent.name)
    monkeypatch.setenv(CACHE_ENV, str(folder))
    clear_shared_embedders()
    yield folder
    clear_shared_embedders()


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    """120 real Boston requests, ingested, never analysed."""
    df = pd.read_csv(SAMPLE, dtype=str)
    df = df[df["description"].fillna("").str.len() > 20].sample(n=120, random_state=11)
    csv = tmp_path / "boston_120.csv"
    df.to_csv(csv, index=False)
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        ingest_file(store, csv, profile="boston", progress=False)
    return path


def static_folder(cache: Path) -> Path:
    (folder,) = (cache / "openvino").glob("*-ir-int8-static-v*")
    return folder


def stand_in_for_a_rebuild(folder: Path, nncf: str) -> None:
    """The static build's manifest as if NNCF ``nncf`` had made it (its files verify as before):
    what a node with another quantiser would hold."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["versions"]["nncf"] = nncf
    manifest["build_id"] = build_id_of(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def analyze_cli(store: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``civicpulse analyze`` in a fresh process's state: exit code and stderr."""
    clear_shared_embedders()
    code = run_cli("analyze", "--store", str(store), *args)
    return code, capsys.readouterr().err


def vectors(store: Store, model_id: str) -> dict[str, np.ndarray]:
    df = store.query_df("SELECT text_hash, vector FROM embeddings WHERE model_id = ?", [model_id])
    return dict(zip(df["text_hash"], decode_vectors(df["vector"]), strict=True))


def last_manifest(store: Store) -> dict:
    df = store.query_df("SELECT manifest FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
    return json.loads(df["manifest"].iloc[0])


def analysed_texts(manifest: dict) -> int:
    """The distinct texts a store's first analysis embedded: the ones every analysis uses."""
    return int(manifest["counts"]["embedded_new"])


def test_a_new_build_is_re_embedded_never_mixed(
    cache: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = analyze_cli(store_path, capsys)
    assert code == 0, err
    with Store(store_path, read_only=True) as store:
        first = last_manifest(store)
        old_id = first["models"]["embedding"]
        family, old_build = split_model_id(old_id)
        assert family.endswith(f"+{BACKEND}-bf16") or family.endswith(f"+{BACKEND}-f32")
        assert first["models"]["embedding_build"]["id"] == old_build
        # what the id is derived from is in the manifest too
        build = first["models"]["embedding_build"]
        assert build["quantization"]["calibration"]["sha256"] and build["versions"]["nncf"]
        old_vectors = vectors(store, old_id)
        n_texts = analysed_texts(first)
        runs_before = int(store.scalar("SELECT count(*) FROM runs"))
    assert len(old_vectors) == n_texts and "rebuilt" not in err

    stand_in_for_a_rebuild(static_folder(cache), nncf="3.4.0+another")

    # asked to keep the vectors: refuses in one line, changes nothing
    code, err = analyze_cli(store_path, capsys, "--keep-vectors")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--keep-vectors" in err and old_id in err and "Traceback" not in err
    with Store(store_path, read_only=True) as store:
        assert int(store.scalar("SELECT count(*) FROM runs")) == runs_before
        assert int(store.scalar("SELECT count(DISTINCT model_id) FROM embeddings")) == 1

    # otherwise: one line says so, and every text is embedded again by the new build
    code, err = analyze_cli(store_path, capsys)
    assert code == 0, err
    said = [line for line in err.splitlines() if "rebuilt since the last analysis" in line]
    assert len(said) == 1 and f"re-embedding {n_texts:,} texts" in said[0], err
    assert f"{n_texts} newly embedded" in err
    with Store(store_path, read_only=True) as store:
        second = last_manifest(store)
        new_id = second["models"]["embedding"]
        assert split_model_id(new_id)[0] == family and new_id != old_id
        assert second["embedding_change"]["kind"] == "rebuilt"
        assert second["counts"]["embedded_new"] == n_texts
        assert second["parameters"]["refit"] is True  # themes from the new vectors only
        assert second["counts"]["sentiment_new"] == second["counts"]["records"]
        assert len(vectors(store, new_id)) == n_texts
        # the old build's vectors are left as they were, under their own id
        kept = vectors(store, old_id)
        assert kept.keys() == old_vectors.keys()
        assert all(np.array_equal(kept[h], old_vectors[h]) for h in kept)

    # the next run has nothing to say and nothing to embed
    code, err = analyze_cli(store_path, capsys)
    assert code == 0 and "since the last analysis" not in err and " 0 newly embedded" in err


def test_a_store_from_before_build_ids_is_re_embedded(
    cache: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings().with_overrides(store_path=store_path)
    with Store(store_path) as store:
        first = run_analysis(store, settings)
        model_id = first["models"]["embedding"]
        legacy, _ = split_model_id(model_id)
        # what a store written before build ids holds: vectors and manifests without the build
        store.execute("UPDATE embeddings SET model_id = ?", [legacy])
        first["models"]["embedding"] = legacy
        store.update_run(first["run_id"], manifest=first)
        n_texts = analysed_texts(first)
        notes: list[str] = []
        clear_shared_embedders()

        def interrupt(step: str, share: float) -> None:
            if step == "themes":
                raise KeyboardInterrupt

        # interrupted once the vectors are written: the next run resumes from them, and still
        # re-fits the themes (the last finished analysis is the old model's)
        with pytest.raises(KeyboardInterrupt):
            run_analysis(store, settings, notify=notes.append, progress=interrupt)
        assert len(notes) == 1 and "before build ids" in notes[0]
        assert f"re-embedding {n_texts:,} texts" in notes[0]
        assert len(vectors(store, model_id)) == n_texts
        second = run_analysis(store, settings, notify=notes.append)
        assert len(notes) == 2 and "already re-embedded" in notes[1]
        assert second["counts"]["embedded_new"] == 0
        assert second["embedding_change"]["kind"] == "unversioned"
        assert second["parameters"]["refit"] is True
        assert second["counts"]["sentiment_new"] == second["counts"]["records"]


def test_a_worker_with_another_build_refuses_to_start(cache: Path) -> None:
    """The check every Ray actor runs in its constructor (``RecordWorker``), here in-process."""
    from analyzer.analysis.ray_engine import RecordWorker

    driver = Embedder(backend=BACKEND)
    kwargs = {
        "embed_model": "",
        "embed_backend": BACKEND,
        "embed_batch_size": driver.batch_size,
        "expected_model_id": driver.model_id,
        "threads": 1,
        "sentiment": False,
        "tagger_path": None,
        "vector_dtype": "float32",
    }
    RecordWorker(**kwargs, expected_build_id=driver.build_id)  # the same build joins
    stand_in_for_a_rebuild(static_folder(cache), nncf="3.4.0+another")
    clear_shared_embedders()
    with pytest.raises(RuntimeError, match=f"build .*the driver's build {driver.build_id}"):
        RecordWorker(**kwargs, expected_build_id=driver.build_id)


def test_a_pinned_build_is_never_rebuilt_or_replaced(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = Embedder(backend=BACKEND).build_id
    monkeypatch.setenv(BUILD_ENV, pinned)
    assert Embedder(backend=BACKEND).build_id == pinned
    assert run_cli("models", "verify", "--backend", BACKEND) == 0
    out = capsys.readouterr().out
    assert f"build id {pinned}" in out and f"#{pinned}" in out
    stand_in_for_a_rebuild(static_folder(cache), nncf="3.4.0+another")
    with pytest.raises(ModelBundleError, match=f"pins embedding build {pinned}"):
        _ = Embedder(backend=BACKEND).build_id
    assert run_cli("models", "verify", "--backend", BACKEND) == 1
    assert f"not the build {BUILD_ENV} pins ({pinned})" in capsys.readouterr().out
    # the pinned build is used as it is, even where the calibration texts differ
    stand_in_for_a_rebuild(static_folder(cache), nncf="3.4.0")  # back to the pinned build
    assert Embedder(backend=BACKEND).build_id == pinned
    texts = cache.parent / "calibration"
    texts.mkdir()
    for name in CALIBRATION:
        shutil.copy(SAMPLES_DIR / name, texts / name)
    name, (column, _) = next(iter(CALIBRATION.items()))
    frame = pd.read_csv(texts / name, dtype=str, keep_default_na=False)
    frame.loc[frame[column] == calibration_texts()[0], column] = "edited"
    frame.to_csv(texts / name, index=False)
    monkeypatch.setenv(CALIBRATION_ENV, str(texts))
    assert Embedder(backend=BACKEND).build_id == pinned
    monkeypatch.delenv(BUILD_ENV)
    assert run_cli("models", "verify", "--backend", BACKEND) == 1  # unpinned: stale
    assert "calibrated on other texts" in capsys.readouterr().out
    monkeypatch.setenv(BUILD_ENV, pinned)
    # no pinned build here at all: refused, nothing built
    shutil.rmtree(static_folder(cache))
    with pytest.raises(ModelBundleError, match="not built"):
        _ = Embedder(backend=BACKEND).build_id
    assert not list((cache / "openvino").glob("*-ir-int8-static-v*"))


@pytest.mark.slow
def test_one_changed_calibration_text_rebuilds_and_re_embeds(
    cache: Path,
    store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts = tmp_path / "calibration"
    texts.mkdir()
    for name in CALIBRATION:
        shutil.copy(SAMPLES_DIR / name, texts / name)
    monkeypatch.setenv(CALIBRATION_ENV, str(texts))
    # the same texts as data_samples/: the copied build verifies and is used as it is
    assert run_cli("models", "verify", "--backend", BACKEND) == 0
    capsys.readouterr()
    code, err = analyze_cli(store_path, capsys)
    assert code == 0, err
    with Store(store_path, read_only=True) as store:
        first = last_manifest(store)
        old_id = first["models"]["embedding"]
        old_vectors = vectors(store, old_id)
        n_texts = analysed_texts(first)

    # one calibration text edited
    name = next(iter(CALIBRATION))
    column = CALIBRATION[name][0]
    original = calibration_texts()
    frame = pd.read_csv(texts / name, dtype=str, keep_default_na=False)
    frame.loc[frame[column] == original[0], column] = original[0] + " Reported again today."
    frame.to_csv(texts / name, index=False)
    assert sum(a != b for a, b in zip(original, calibration_texts(), strict=True)) == 1

    # the build no longer verifies; building recalibrates it, under a new build id
    assert run_cli("models", "verify", "--backend", BACKEND) == 1
    assert "calibrated on other texts" in capsys.readouterr().out
    assert run_cli("models", "build", "--backend", BACKEND) == 0
    out = capsys.readouterr().out
    assert f"{BACKEND}: built" in out
    new_build = out.split("build id ")[1].split()[0]
    assert new_build != split_model_id(old_id)[1]

    code, err = analyze_cli(store_path, capsys)
    assert code == 0, err
    said = [line for line in err.splitlines() if "rebuilt since the last analysis" in line]
    assert len(said) == 1 and f"-> {new_build}" in said[0], err
    with Store(store_path, read_only=True) as store:
        manifest = last_manifest(store)
        assert manifest["counts"]["embedded_new"] == n_texts
        new_id = manifest["models"]["embedding"]
        assert split_model_id(new_id)[1] == new_build
        new_vectors = vectors(store, new_id)
    keys = sorted(old_vectors)
    assert sorted(new_vectors) == keys
    a = np.vstack([old_vectors[k] for k in keys])
    b = np.vstack([new_vectors[k] for k in keys])
    cos = cosine_rows(a, b)
    # other weights (not the old vectors under a new name), of the same model
    assert not np.array_equal(a, b) and cos.min() > 0.98


@pytest.mark.slow
def test_a_ray_worker_with_another_build_refuses_to_join(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ray workers start with this process's environment: pointed at a cache whose build differs
    from the driver's, they refuse, and the job fails with their one line."""
    pytest.importorskip("ray.data")
    from analyzer.analysis.ray_engine import RayOptions, process_texts

    driver = Embedder(backend=BACKEND)
    assert driver.build_id
    node = cache.parent / "node-cache"
    shutil.copytree(cache, node)
    stand_in_for_a_rebuild(static_folder(node), nncf="3.4.0+another")
    monkeypatch.setenv(CACHE_ENV, str(node))
    texts = pd.read_csv(SAMPLE, dtype=str)["description"].dropna().head(20).tolist()
    with pytest.raises(RuntimeError, match=f"the driver's build {driver.build_id}"):
        process_texts(texts, driver, RayOptions(local_cpus=1))
    assert "Traceback" not in capfd.readouterr().err  # the one line says it all
