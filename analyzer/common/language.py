"""Which language a corpus is written in, told by its stop words, and the stop words to drop.

Theme labels and the themes' lexical block leave stop words out, but the packaged spaCy pipeline
and scikit-learn know English ones only: on Decide Madrid's proposals the labels read "son" and
"los peatones". The corpus's language is the one of ``LANGUAGES`` whose stop words (spaCy's
lists, which need no model) make the largest share of its words; its stop words are dropped
beside English's, since residents mix in English words ("parking") and English stays the default.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from functools import cache

# The languages of the cities the product is meant for (the Americas and Europe).
LANGUAGES = ("en", "es", "pt", "fr", "it", "de", "nl")
_WORD = re.compile(r"[^\W\d_]+")


@cache
def stop_words(lang: str) -> frozenset[str]:
    """spaCy's stop words of ``lang`` (lower case)."""
    module = importlib.import_module(f"spacy.lang.{lang}.stop_words")
    return frozenset(w.lower() for w in module.STOP_WORDS)


def detect_language(texts: Sequence[str], sample: int = 2000) -> str:
    """The ``LANGUAGES`` code whose stop words are the largest share of the words of (an evenly
    spaced sample of) ``texts``; "en" when there are no words or on a tie."""
    step = max(1, len(texts) // sample)
    words = [w for t in list(texts)[::step] for w in _WORD.findall(str(t).lower())]
    if not words:
        return "en"
    best, best_share = "en", -1.0
    for lang in LANGUAGES:
        stops = stop_words(lang)
        share = sum(w in stops for w in words) / len(words)
        if share > best_share:
            best, best_share = lang, share
    return best


def foreign_stop_words(texts: Sequence[str]) -> frozenset[str]:
    """The stop words of the corpus's language when it is not English, else none (English ones
    are dropped already, by spaCy's ``is_stop`` and scikit-learn's "english" list)."""
    lang = detect_language(texts)
    return frozenset() if lang == "en" else stop_words(lang)
