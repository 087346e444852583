"""Lexicon features of the sentiment model (``analyzer.sentiment.model``), and VADER's own labels.

Three lexicons, each read from its installed package: VADER (``vaderSentiment``), AFINN-165 (the
``afinn`` package's word lists) and the pattern adjective lexicon (through TextBlob).

Text preparation: literal ``\\uXXXX`` escapes and HTML entities are decoded and typographic
quotes made plain; ``@handles`` become ``@user`` and URLs ``http`` (as in TweetEval). The field
names of intake-form records are dropped (``resident_words``). Text that is mostly upper case
(many survey comments were transcribed in ALL CAPS) is lower-cased, so that capitals carry
VADER's emphasis only where a writer chose them (the embedding model is uncased, so capitals do
not change the embedding). Emoji are scored by VADER's own emoji table (TweetEval's tweets carry
none).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_USER = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S+|www\.\S+")
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z']+|[:;=][\-o']?[)(dp/\\|]|<3")
_NEGATIONS = frozenset((
    "not", "no", "never", "nobody", "nothing", "none", "cant", "can't", "dont", "don't", "won't",
    "isn't", "wasn't", "aren't", "doesn't", "didn't", "without", "cannot", "nor", "neither",
    "hardly", "ain't", "aint", "wont", "didnt", "isnt",
))  # fmt: skip
LEXICON_FEATURES: tuple[str, ...] = (
    "vader_neg", "vader_neu", "vader_pos", "vader_compound",
    "n_pos_words", "n_neg_words", "sum_pos_valence", "sum_neg_valence",
    "max_valence", "min_valence", "share_pos_words", "share_neg_words",
    "has_exclamation", "has_question", "n_negations",
    "negated_pos_valence", "negated_neg_valence", "last_clause_compound",
    "afinn_sum", "afinn_n_pos", "afinn_n_neg", "afinn_sum_pos", "afinn_sum_neg",
    "afinn_max", "afinn_min",
    "pattern_polarity", "pattern_subjectivity", "pattern_polarity_x_subjectivity",
)  # fmt: skip
_AFINN_FILES = ("AFINN-en-165.txt", "AFINN-emoticon-8.txt")
_AFINN_MAX_WORDS = 3  # the longest AFINN phrase ("does not work", "no fun" ...)
_NEGATION_SCOPE = 3  # words after a negation whose lexicon valence counts as negated
_CONTRAST = re.compile(r"\b(?:but|however|though|although|yet)\b")
_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})"
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"'})


def preprocess(text: str) -> str:
    """Normalisation before the lexicon features.

    Literal ``\\uXXXX`` escapes and HTML entities (``&amp;``, ``&gt;``: about one TweetEval tweet
    in seven, and common in exported city data) are decoded and typographic quotes made plain, so
    that VADER sees "don't" and not "don\\u2019t" (its negation rules match the ASCII apostrophe);
    then
    TweetEval-style: @handles -> @user, URLs -> http, whitespace collapsed.
    """
    if "\\u" in text:
        text = _ESCAPE.sub(_unescape, text)
    if "&" in text:
        text = html.unescape(text)
    text = _URL.sub("http", _USER.sub("@user", text.translate(_QUOTES)))
    return _SPACE.sub(" ", text).strip()


def _unescape(m: re.Match[str]) -> str:
    if m.group(1):  # a surrogate pair: one character outside the basic plane (an emoji)
        high, low = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    code = int(m.group(3), 16)
    return "" if 0xD800 <= code <= 0xDFFF else chr(code)  # a lone surrogate is not text


def resident_words(text: str) -> str:
    """An intake-form record without its field names; other text unchanged.

    Phone-intake records are ``"Key: value | Key? value"`` (``analyzer.themes.labels.split_fields``):
    "Model of the abandoned car: 2DR | How is the car parked illegally? Blocking hydrant". The
    questions are the city's form, not the resident's tone ("abandoned", "illegally" and
    "available" are negative or positive in every lexicon), so the lexicon features read only
    the values. A text counts as a form when it has at least two "|"-separated fields with a key.
    """
    if "|" not in text:
        return text
    from analyzer.themes.labels import split_fields

    fields = split_fields(text)
    if sum(key is not None for key, _ in fields) < 2:
        return text
    return " ".join(value for _, value in fields if value)


def _is_negation(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


def lower_if_mostly_caps(text: str) -> str:
    # Mostly-capitals text is shouting by transcription, not by choice: lower-case it so VADER's
    # "ALL CAPS word among lower-case words" emphasis rule only fires where a writer used it.
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        return text.lower()
    return text


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _afinn() -> dict[str, float]:
    """AFINN-165 and its emoticon list, word or phrase -> valence in [-5, 5].

    The word lists (ODbL 1.0) come with the ``afinn`` package; only its data files are read,
    its code (GPL) is not imported, and its regex matcher would be 3x slower than VADER anyway.
    Each line is ``word-or-phrase<TAB>valence``.
    """
    from importlib.metadata import distribution

    dist = distribution("afinn")
    words: dict[str, float] = {}
    for name in _AFINN_FILES:
        path = Path(str(dist.locate_file(f"afinn/data/{name}")))
        for line in path.read_text(encoding="utf-8").splitlines():
            word, _, value = line.rpartition("\t")
            if word:
                words[word.strip()] = float(value)
    return words


def _afinn_scores(tokens: list[str], words: dict[str, float]) -> list[float]:
    """Valences of the AFINN entries in ``tokens``, longest phrase first at each position."""
    scores: list[float] = []
    i = 0
    while i < len(tokens):
        for n in range(min(_AFINN_MAX_WORDS, len(tokens) - i), 0, -1):
            value = words.get(" ".join(tokens[i : i + n]))
            if value is not None:
                scores.append(value)
                i += n
                break
        else:
            i += 1
    return scores


@lru_cache(maxsize=1)
def _pattern() -> Any:
    """TextBlob's pattern analyser, imported on first use (TextBlob imports NLTK: about a second).

    Called on a text it gives (polarity, subjectivity) from the adjective lexicon of De Smedt &
    Daelemans, with pattern's own negation and intensifier rules.
    """
    from textblob.en import sentiment

    return sentiment


def lexicon_features(texts: Sequence[str]) -> np.ndarray:
    """The lexicon features (``LEXICON_FEATURES``) per text, float32 ``(n, 28)``.

    Beside VADER's own scores: valences of lexicon words within three words after a negation
    ("not great", "never clean"), summed apart because the plain counts treat them as unnegated,
    and VADER's compound of the last clause after a contrast word ("the park is nice but the
    playground is dangerous"), where the writer's point usually lies. Then two more lexicons
    with views VADER lacks: AFINN-165 (Nielsen; sums, counts and extremes of word and phrase
    valences) and the pattern lexicon through TextBlob, whose subjectivity score separates
    opinion from report ("the light is out" vs "the light is awful"): the neutral class is
    where the embedding alone errs most.
    """
    vader = _vader()
    lexicon: dict[str, float] = vader.lexicon
    afinn = _afinn()
    pattern = _pattern()
    out = np.zeros((len(texts), len(LEXICON_FEATURES)), dtype=np.float32)
    for i, raw in enumerate(texts):
        text = lower_if_mostly_caps(resident_words(preprocess(raw)))
        s = vader.polarity_scores(text)
        tokens = _TOKEN.findall(text.lower())
        vals = [lexicon[w] for w in tokens if w in lexicon]
        pos = [v for v in vals if v > 0]
        neg = [v for v in vals if v < 0]
        n = max(len(tokens), 1)
        # VADER valences lie in [-4, 4]; dividing by 4 keeps the raw features on a similar scale.
        negated_pos = negated_neg = 0.0
        scope = 0
        for w in tokens:
            v = lexicon.get(w, 0.0)
            if scope > 0 and v > 0:
                negated_pos += v / 4
            elif scope > 0 and v < 0:
                negated_neg += v / 4
            scope = _NEGATION_SCOPE if _is_negation(w) else scope - 1
        clauses = _CONTRAST.split(text.lower())
        last = vader.polarity_scores(clauses[-1])["compound"] if len(clauses) > 1 else s["compound"]
        # AFINN valences lie in [-5, 5]
        af = _afinn_scores(tokens, afinn)
        af_pos = [v for v in af if v > 0]
        af_neg = [v for v in af if v < 0]
        polarity, subjectivity = pattern(text)
        out[i] = (
            s["neg"], s["neu"], s["pos"], s["compound"],
            len(pos), len(neg), sum(pos) / 4, sum(neg) / 4,
            max(vals, default=0.0) / 4, min(vals, default=0.0) / 4, len(pos) / n, len(neg) / n,
            "!" in text, "?" in text, sum(_is_negation(w) for w in tokens),
            negated_pos, negated_neg, last,
            sum(af) / 5, len(af_pos), len(af_neg), sum(af_pos) / 5, sum(af_neg) / 5,
            max(af, default=0.0) / 5, min(af, default=0.0) / 5,
            polarity, subjectivity, polarity * subjectivity,
        )  # fmt: skip
    return out


def vader_labels(
    texts: Sequence[str], *, uncap: bool = False, threshold: float = 0.05
) -> np.ndarray:
    """VADER's standard rule: compound >= +0.05 positive, <= -0.05 negative, else neutral."""
    vader = _vader()
    comp = np.array(
        [vader.polarity_scores(lower_if_mostly_caps(t) if uncap else t)["compound"] for t in texts],
        dtype=float,
    )
    return np.where(
        comp >= threshold, "positive", np.where(comp <= -threshold, "negative", "neutral")
    )
