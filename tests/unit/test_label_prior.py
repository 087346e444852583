"""Category names as the tagger's prior (analyzer.tagging.label_prior), with the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzer.tagging.label_prior import choose_weight, name_text, prior_scores
from analyzer.tagging.supervised import Tagger


def test_name_text_reads_names_as_words() -> None:
    assert name_text("Roads/Highways") == "Roads Highways"
    assert name_text("SIGN_DAMAGE") == "sign damage"
    assert name_text("Fly-Posting") == "Fly Posting"
    assert name_text("Graffiti (Offensive)") == "Graffiti (Offensive)"


def test_prior_fades_as_a_category_gets_rows() -> None:
    names = np.eye(3, dtype=np.float32)
    emb = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    few = prior_scores(emb, names, np.array([0, 0, 0]), k=5.0)
    many = prior_scores(emb, names, np.array([95, 0, 0]), k=5.0)
    assert few[0, 0] == pytest.approx(1.0)
    assert many[0, 0] == pytest.approx(5 / 100)
    # per-row counts (each validation fold's own past) broadcast the same way
    rows = prior_scores(np.vstack([emb, emb]), names, np.array([[0, 0, 0], [5, 0, 0]]), k=5.0)
    assert rows[:, 0] == pytest.approx([1.0, 0.5])


def test_weight_is_chosen_on_validation_and_is_zero_for_names_that_say_nothing() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=400)
    scores = rng.normal(size=(400, 4))
    scores[np.arange(400), y] += 0.6  # a model that is right about half the time
    useful = np.eye(4)[y] * 2.0  # names that point at the right category
    noise = rng.normal(size=(400, 4)) * 3.0  # names that point anywhere
    assert choose_weight(scores, useful, y) > 0
    assert choose_weight(scores, noise, y) == 0.0


@pytest.fixture(scope="module")
def rare_category() -> dict[str, object]:
    """Three categories; "Graffiti" has two rows in the history, and later requests about it use
    other words than those two rows."""
    from analyzer.embedding.embedder import get_embedder

    pothole = [f"pothole on {s} street, deep hole in the road" for s in "abcdefghijklmnop"]
    light = [f"street light out at the corner of {s} avenue, very dark" for s in "abcdefghijklmnop"]
    graffiti = ["someone sprayed graffiti on the wall", "graffiti tag on the bus shelter"]
    texts = pothole + light + graffiti
    labels = ["Pothole"] * len(pothole) + ["Street Light Out"] * len(light) + ["Graffiti"] * 2
    later = ["vandals painted their initials all over the school fence in spray paint"]
    embedder = get_embedder()
    return {
        "texts": texts,
        "labels": labels,
        "emb": embedder.embed(texts),
        "later": later,
        "later_emb": embedder.embed(later),
    }


def test_names_carry_a_category_with_two_rows(rare_category, tmp_path: Path) -> None:
    d = rare_category
    with_names = Tagger(label_prior=1.0).fit(d["texts"], d["labels"], embeddings=d["emb"])
    without = Tagger(label_prior=0.0).fit(d["texts"], d["labels"], embeddings=d["emb"])
    p_with = with_names.predict_proba(d["later"], embeddings=d["later_emb"])[0]
    p_without = without.predict_proba(d["later"], embeddings=d["later_emb"])[0]
    g = list(with_names.classes_).index("Graffiti")
    assert p_with[g] > p_without[g]
    assert with_names.predict(d["later"], embeddings=d["later_emb"])[0] == "Graffiti"
    assert with_names.metrics_["label_prior"] == 1.0 and without.label_vectors_ is None
    # the prior travels with the bundle: same probabilities after a round trip
    loaded = Tagger.load(with_names.save(tmp_path / "m"))
    np.testing.assert_allclose(
        loaded.predict_proba(d["later"], embeddings=d["later_emb"]), [p_with], rtol=1e-5
    )
    assert Tagger.load(without.save(tmp_path / "n")).label_vectors_ is None


def test_vectors_of_another_size_turn_the_prior_off(rare_category) -> None:
    d = rare_category
    other = np.random.default_rng(0).normal(size=(len(d["texts"]), 16)).astype(np.float32)
    tagger = Tagger(label_prior=1.0).fit(d["texts"], d["labels"], embeddings=other)
    assert tagger.label_vectors_ is None and tagger.label_prior_ == 0.0
