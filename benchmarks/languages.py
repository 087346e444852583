"""Theme labels of a city that does not write in English: Decide Madrid's proposals (Spanish).

    nice python -m benchmarks.languages

The export has no category column, so there is no NMI to score; what can be scored is what
#19 asks of every label: no stop word. ``ThemeModel`` with its defaults, fitted twice in one run
on the same MiniLM vectors:

- ours: the corpus's language told by its stop words (``analyzer.common.language``), whose stop
  words are dropped from labels, keywords and the lexical block beside English's;
- baseline: English stop words only (spaCy's ``is_stop`` and scikit-learn's list), as before.

Printed per run: the detected language, the top-level themes with their labels, and the share of
labels and of keywords holding a stop word of that language (spaCy's list). Texts: title and
description (HTML tags removed, first 1,000 characters), test and probe entries left out as the
export's SOURCE.md advises. Writes benchmarks/results/languages.json; skips (exit 0) when
../shared/data_raw is absent.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import cached_embeddings, require_data_raw, write_result  # noqa: E402

EXPORT = "decide_madrid_proposals/decide_madrid_proposals_2024_2025.csv"
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[^\W\d_]+")


def load_texts() -> list[str]:
    root = require_data_raw("languages")
    df = pd.read_csv(root / EXPORT, sep=";", dtype=str, keep_default_na=False)
    df = df[~df["title"].str.contains(r"(?i)\bSSRF\b|\btest\b", regex=True)]
    text = df["title"].str.strip() + ". " + df["description"].str.replace(_TAG, " ", regex=True)
    text = text.str.replace(r"\s+", " ", regex=True).str.strip().str.slice(0, 1000)
    return [t for t in text if t.strip(". ")]


def run(texts: list[str], emb: Any, lang: str, english_only: bool) -> dict[str, Any]:
    from analyzer.common.language import stop_words
    from analyzer.themes.model import ThemeModel

    patches = []
    if english_only:
        # the baseline: no stop words but English ones (ThemeModel.fit decides them once, for
        # the labeller and the lexical block)
        patches = [
            mock.patch("analyzer.common.language.foreign_stop_words", lambda _t: frozenset()),
        ]
    for p in patches:
        p.start()
    try:
        model = ThemeModel().fit(emb, texts)
    finally:
        for p in patches:
            p.stop()
    stops = stop_words(lang)
    tops = [th for th in model.themes_ if th.level == 1]

    def has_stop(phrase: str) -> bool:
        return any(w in stops for w in _WORD.findall(phrase.lower()))

    keywords = [k for th in tops for k in th.keywords]
    return {
        "themes": [(th.label, th.size, th.keywords[:6]) for th in tops],
        "labels_with_stop_word": sum(has_stop(th.label) for th in tops) / max(len(tops), 1),
        "keywords_with_stop_word": sum(map(has_stop, keywords)) / max(len(keywords), 1),
        "examples": [th.label for th in tops if has_stop(th.label)][:6],
    }


def main() -> int:
    from analyzer.common.language import detect_language

    texts = load_texts()
    lang = detect_language(texts)
    emb = cached_embeddings("madrid-proposals", texts)
    print(f"Decide Madrid: {len(texts):,} proposals, language told by stop words: {lang}")
    out: dict[str, Any] = {"texts": len(texts), "language": lang}
    for name, english_only in (("ours", False), ("english_stop_words_only", True)):
        r = run(texts, emb, lang, english_only)
        out[name] = r
        print(
            f"\n== {name}: {len(r['themes'])} themes; labels with a stop word "
            f"{r['labels_with_stop_word']:.0%}, keywords {r['keywords_with_stop_word']:.0%}"
        )
        for label, size, keywords in r["themes"]:
            print(f"  {size:>5}  {label:<32} {', '.join(keywords)}")
    write_result("languages", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
