"""A fitted scikit-learn ``TfidfVectorizer``'s ``transform``, the same matrix, several times faster.

The tagger's features include TF-IDF of word 1-2-grams and of character 1-4-grams within word
boundaries (``analyzer="char_wb"``). scikit-learn builds every character n-gram as a Python
string and looks it up in a dict: about 0.3 ms per 150-character request here, plus ~0.4 ms per
call of input checks, which in the API's micro-batches cost as much time as a fifth of the
embedding model. ``FastTfidf`` reads a fitted vectorizer (vocabulary, idf, options) and
transforms with the same rules:

- ``char_wb``: every whitespace-separated word of the lower-cased text, padded with one space on
  each side, gives all its n-grams of each length in the range up to the padded word's length
  (scikit-learn's ``_char_wb_ngrams``). Here each text's characters become small integers
  (the vocabulary's alphabet; any other character can match no feature), the n-grams of a whole
  batch are packed into 64-bit codes with numpy and found in the sorted vocabulary codes with
  ``searchsorted``: no Python object per n-gram.
- ``word``: the token pattern's matches and their n-grams, looked up in the vocabulary dict in
  one pass (the analysis scikit-learn does, without its per-call overhead).

Then the same weighting: counts, ``1 + log(tf)`` when ``sublinear_tf``, times ``idf_``, rows
L2-normalised, float32. Options outside what this reproduces exactly (a custom analyzer,
preprocessor or tokenizer, accent stripping, stop words, binary counts, other norms, or
``ngram_range`` beyond 4 characters) make ``FastTfidf.supports`` false, and callers keep
scikit-learn's ``transform``. tests/test_tfidf_fast.py checks equality with scikit-learn on
real requests and on edge cases (accents, emoji, empty and whitespace-only texts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["FastTfidf"]

# Per character, the index in the vocabulary's alphabet (1..); 0: a character no feature has.
_CHAR_BITS = 15
_MAX_CHAR_N = 4  # 4 x 15 bits and the n-gram's length fit in 64
_WHITESPACE_RUNS = re.compile(r"\s\s+")  # scikit-learn's _white_spaces


class FastTfidf:
    """``transform`` of a fitted ``TfidfVectorizer`` (word or char_wb analyzer)."""

    def __init__(self, vectorizer: Any) -> None:
        if not self.supports(vectorizer):
            raise ValueError("this vectorizer's options are not reproduced by FastTfidf")
        self.analyzer: str = vectorizer.analyzer
        self.ngram_range: tuple[int, int] = tuple(vectorizer.ngram_range)
        self.lowercase = bool(vectorizer.lowercase)
        self.sublinear_tf = bool(vectorizer.sublinear_tf)
        self.norm = vectorizer.norm
        self.vectorizer = vectorizer  # for texts this cannot take (a NUL character)
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.n_features = len(vocabulary)
        self.idf = (
            np.asarray(vectorizer.idf_, dtype=np.float64)
            if vectorizer.use_idf
            else np.ones(self.n_features)
        )
        if self.analyzer == "word":
            self.vocabulary = vocabulary
            self.token_pattern = re.compile(vectorizer.token_pattern)
        else:
            alphabet = sorted({ch for term in vocabulary for ch in term})
            if len(alphabet) >= 2**_CHAR_BITS:
                raise ValueError("the vocabulary's alphabet is too large for FastTfidf")
            self.char_index = {ch: i + 1 for i, ch in enumerate(alphabet)}
            codes = np.array([self._term_code(t) for t in vocabulary], dtype=np.uint64)
            columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))
            order = np.argsort(codes)
            self.codes, self.columns = codes[order], columns[order]
            # a lookup table for the first 64k code points; the rest go through the dict
            self.table = np.zeros(65536, dtype=np.uint64)
            for ch, i in self.char_index.items():
                if ord(ch) < 65536:
                    self.table[ord(ch)] = i

    @staticmethod
    def supports(vectorizer: Any) -> bool:
        """Whether ``vectorizer`` (a fitted ``TfidfVectorizer``) is reproduced exactly."""
        try:
            low, high = vectorizer.ngram_range
            plain = (
                callable(getattr(vectorizer, "transform", None))
                and hasattr(vectorizer, "vocabulary_")
                and vectorizer.preprocessor is None
                and vectorizer.tokenizer is None
                and vectorizer.strip_accents is None
                and vectorizer.stop_words is None
                and not vectorizer.binary
                and vectorizer.norm in ("l2", None)
                and vectorizer.input == "content"
                and 1 <= low <= high
                and (not vectorizer.use_idf or hasattr(vectorizer, "idf_"))
            )
        except (AttributeError, TypeError, ValueError):
            return False
        if not plain:
            return False
        if vectorizer.analyzer == "word":
            return isinstance(vectorizer.token_pattern, str)
        # char_wb from 1 character up: a word shorter than the smallest n is then never a case
        return vectorizer.analyzer == "char_wb" and low == 1 and high <= _MAX_CHAR_N

    # -- codes -----------------------------------------------------------------------------------
    def _term_code(self, term: str) -> int:
        code = len(term)
        for ch in term:
            code = (code << _CHAR_BITS) | self.char_index[ch]
        # left-aligned like the n-gram codes below: length in the top bits, then the characters
        return code << (_CHAR_BITS * (_MAX_CHAR_N - len(term)))

    # -- analysis --------------------------------------------------------------------------------
    def _char_wb_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every character n-gram found in the vocabulary."""
        padded = []
        for text in texts:
            text = text.lower() if self.lowercase else text
            # each word padded with a space on both sides, words and texts separated by NUL
            padded.append("\0".join(f" {w} " for w in _WHITESPACE_RUNS.sub(" ", text).split()))
        joined = "\0".join(padded) + "\0"
        points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        if int(points.max()) < self.table.size:
            ids = self.table[points]
        else:  # characters beyond the table: the dict, one by one
            ids = np.array([self.char_index.get(ch, 0) for ch in joined], dtype=np.uint64)
        n_chars = ids.size
        text_of = np.repeat(np.arange(len(texts)), [len(t) + 1 for t in padded])
        # room[i]: characters from i to the next separator; an n-gram starting at i needs n
        separators = np.flatnonzero(points == 0)
        next_sep = np.full(n_chars, n_chars, dtype=np.int64)
        next_sep[separators] = separators
        room = np.minimum.accumulate(next_sep[::-1])[::-1] - np.arange(n_chars)
        high = self.ngram_range[1]  # from 1 character up (``supports``)
        rows_out: list[np.ndarray] = []
        codes_out: list[np.ndarray] = []
        code = ids.copy()  # the n-gram starting at each position, n characters packed
        for n in range(1, high + 1):
            if n > 1:
                m = n_chars - n + 1
                code[:m] = (code[:m] << np.uint64(_CHAR_BITS)) | ids[n - 1 :]
            starts = np.flatnonzero(room[: n_chars - n + 1] >= n)
            if starts.size == 0:
                continue
            shift = np.uint64(_CHAR_BITS * (_MAX_CHAR_N - n))
            length = np.uint64(n) << np.uint64(_CHAR_BITS * _MAX_CHAR_N)
            codes_out.append(length | (code[starts] << shift))
            rows_out.append(text_of[starts])
        if not codes_out:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        rows = np.concatenate(rows_out)
        codes = np.concatenate(codes_out)
        at = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        found = self.codes[at] == codes
        return rows[found], self.columns[at[found]]

    def _word_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        vocabulary = self.vocabulary
        low, high = self.ngram_range
        rows: list[int] = []
        cols: list[int] = []
        for r, text in enumerate(texts):
            tokens = self.token_pattern.findall(text.lower() if self.lowercase else text)
            for n in range(low, min(high, len(tokens)) + 1):
                grams = (
                    tokens
                    if n == 1
                    else [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
                )
                for gram in grams:
                    j = vocabulary.get(gram)
                    if j is not None:
                        rows.append(r)
                        cols.append(j)
        return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)

    # -- weighting -------------------------------------------------------------------------------
    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The TF-IDF matrix (float32 CSR, sorted indices), as ``vectorizer.transform(texts)``."""
        n = len(texts)
        if n == 0:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32)
        if self.analyzer == "char_wb" and any("\0" in t for t in texts):
            return self.vectorizer.transform(texts)  # NUL is the separator here
        if self.analyzer == "word":
            rows, cols = self._word_counts(texts)
        else:
            rows, cols = self._char_wb_counts(texts)
        key = rows * self.n_features + cols
        uniq, counts = np.unique(key, return_counts=True)  # sorted: by row, then column
        r, c = np.divmod(uniq, self.n_features)
        tf = counts.astype(np.float64)
        if self.sublinear_tf:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[c]
        if self.norm == "l2":
            norms = np.sqrt(np.bincount(r, weights=values**2, minlength=n))
            norms[norms == 0] = 1.0
            values = values / norms[r]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
        return sp.csr_matrix(
            (values.astype(np.float32), c.astype(np.int32), indptr.astype(np.int32)),
            shape=(n, self.n_features),
        )
