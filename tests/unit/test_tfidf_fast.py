"""FastTfidf gives scikit-learn's TF-IDF matrix, entry for entry, for the tagger's two vectorizers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from analyzer.tagging.tfidf import FastTfidf
from tests.conftest import SAMPLES

EDGE = [
    "",
    "   ",
    "a",
    "I",
    "Ünïcödé Straße café",
    "emoji 🚗🚗 car in the 🚗 lane",
    "tab\tseparated\nnew line  double  space",
    "x" * 300,
    "12 34 5",
    "ΑΒΓ δεζ",
    "MIXED case Words words WORDS",
    "no-hyphen's punctuation!!! (kept) [as] {chars}",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    df = pd.read_csv(SAMPLES / "boston_311_sample.csv", usecols=["description"])
    return df["description"].dropna().astype(str).tolist()[:600]


def _vectorizers(texts: list[str]) -> dict[str, TfidfVectorizer]:
    # the tagger's settings (analyzer.tagging.supervised.Tagger._new_vectorizers)
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True, dtype=np.float32
    )
    return {"word": word.fit(texts[:400]), "char_wb": char.fit(texts[:400])}


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    assert a.shape == b.shape and b.dtype == np.float32 and b.has_sorted_indices
    assert ((a != 0) != (b != 0)).nnz == 0  # the same features present
    assert abs(a - b).max() < 1e-6 if a.nnz else b.nnz == 0


@pytest.mark.parametrize("analyzer", ["word", "char_wb"])
def test_same_matrix_as_scikit_learn(texts: list[str], analyzer: str) -> None:
    vec = _vectorizers(texts)[analyzer]
    fast = FastTfidf(vec)
    for batch in (texts[400:], texts[:1], EDGE, EDGE[:1], [texts[0]] * 3):
        _same(vec.transform(batch), fast.transform(batch))
    empty = fast.transform([])
    assert empty.shape == (0, len(vec.vocabulary_))


def test_characters_outside_the_vocabulary_and_nul_fall_back_safely(texts: list[str]) -> None:
    vec = _vectorizers(texts)["char_wb"]
    fast = FastTfidf(vec)
    odd = ["pot\x00hole", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 pothole", "pothole"]
    _same(vec.transform(odd), fast.transform(odd))


def test_options_it_cannot_reproduce_are_refused(texts: list[str]) -> None:
    assert FastTfidf.supports(_vectorizers(texts)["char_wb"])
    for kwargs in (
        {"analyzer": "char_wb", "ngram_range": (2, 4)},
        {"analyzer": "char", "ngram_range": (1, 3)},
        {"analyzer": "char_wb", "ngram_range": (1, 5)},
        {"strip_accents": "unicode"},
        {"stop_words": "english"},
        {"binary": True},
        {"norm": "l1"},
        {"analyzer": lambda s: s.split()},
    ):
        vec = TfidfVectorizer(**kwargs).fit(texts[:50])  # type: ignore[arg-type]
        assert not FastTfidf.supports(vec), kwargs
    with pytest.raises(ValueError, match="not reproduced"):
        FastTfidf(TfidfVectorizer(binary=True).fit(texts[:50]))
    assert not FastTfidf.supports(TfidfVectorizer())  # not fitted


def test_tagger_features_use_it_and_predict_the_same(texts: list[str]) -> None:
    from analyzer.tagging.supervised import Tagger

    df = pd.read_csv(SAMPLES / "boston_311_sample.csv", usecols=["description", "service_name"])
    df = df.dropna().head(300)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(df), 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    docs = df["description"].astype(str).tolist()
    tagger = Tagger(random_state=0).fit(docs, df["service_name"].tolist(), embeddings=emb)
    fast_scores = tagger.decision_function(docs[:50], embeddings=emb[:50])
    cache = tagger.__dict__["_fast_tfidf"]
    assert all(isinstance(fast, FastTfidf) for _, fast in cache.values())
    cache.clear()
    cache.update(
        {v.analyzer: (v, None) for v in (tagger.word_vectorizer_, tagger.char_vectorizer_)}
    )
    slow_scores = tagger.decision_function(docs[:50], embeddings=emb[:50])
    assert np.allclose(fast_scores, slow_scores, atol=1e-5)
