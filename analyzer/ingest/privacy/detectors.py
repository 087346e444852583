"""Detectors for the personal data that the cue patterns of ``redact`` do not see: names written
with an initial and US social security numbers (issue #22).

- Initial + surname, as city staff sign and copy each other in Boston's notes: "J. Smith",
  "J Smith (VM)", "R Celestin", "ISD OC S Cavaleri", "Maria K. Alvarez", "D.Stevenson"; and
  surname + initial: "Smith, J.", "Dillon H.". 311 text is full of the same shapes that are not
  names, so a candidate is dropped when the word is an ordinary one ("I Called", "B Line",
  "Plan B"), a street or place ("N Main", "E Broadway", "M St", "L Street", "W Roxbury",
  "Charlesgate E.", "Ashmont T."), a vehicle or an agency ("A Jeep", "U Mass"); ``redact`` then
  applies its own place checks (a street, school or business word after it: "John A. Andrew
  Street", "Richard J Murphy School"). Single letters that are also words are initials only with
  a dot ("A. Smith", not "A Street"), and compass letters before a known street are streets.
- SSNs: ``AAA-GG-SSSS`` (dashes or spaces) with the Social Security Administration's rules
  (area not 000, 666 or 9xx; group not 00; serial not 0000), and nine digits in a row only after
  a cue ("SSN", "social security").

Both return candidate (start, end) spans; ``redact`` turns them into findings and resolves
overlaps with everything else it found.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

from analyzer.ingest.privacy.patterns import (
    AGENCIES,
    BUSINESS_WORDS,
    CAR_WORDS,
    COMPASS,
    PLACE_NAMES,
    PLACE_WORDS,
    STREET_SUFFIXES,
    SURNAME_PLACE_WORDS,
    THING_WORDS,
    TITLES,
    common_words,
    not_name_words,
    street_names,
    word_set,
)

__all__ = ["initial_name_spans", "ssn_spans"]

# A surname: "Smith", "O'Brien", "McDevitt", "MacGuiness", "Peeples-Mbengue".
_SURNAME = r"[A-Z][a-z]*(?:['’]?[A-Z])?[a-z]+(?:-[A-Z][a-z]+)?"
_FIRST = r"[A-Z][a-z]+(?:['’-][A-Za-z]+)*"
# [First] I[.] [I.] Surname: "J. Smith", "J Smith", "J.P. Smith", "Maria K. Alvarez", "D.Stevenson".
INITIAL_SURNAME = re.compile(
    rf"(?<![\w'’.&/@#-])(?:({_FIRST})[ \t]+)?"
    r"([A-Z])(\.[ \t]*|[ \t]+)(?:([A-Z])(?:\.[ \t]*|[ \t]+))?"
    rf"({_SURNAME})(?![\w'’-])"
)
# An office's abbreviation, a slash, an initial with its dot and a surname: "ONS/C. Newman",
# "ISD OC/S. Cavaleri" (how staff list who they notified); the name is the part after the slash.
AFTER_OFFICE = re.compile(rf"(?<=[A-Z]{{2}}/)([A-Z])\.[ \t]?({_SURNAME})(?![\w'’-])")
# Surname, I. / Surname I.: "Smith, J.", "Dillon H. at", "Ramirez, L. (VM)"; without the dot only
# before a bracket or another name: "Dillon H (VM)", "Dillon H, Smith J".
SURNAME_INITIAL = re.compile(
    rf"(?<![\w'’.&/@#-])({_SURNAME})(,?[ \t]+)([A-Z])"
    r"(?:\.(?![ \t]*[A-Za-z]\.)(?![\w'’-])|(?=[ \t]*(?:\(|[,;][ \t]*[A-Z])))"
    r"(?![ \t]+[A-Z])"
)
# Words before a letter that is a road, a line or a block, not an initial: "the T", "the B Line".
_LETTER_AS_WORD_AFTER = word_set("the")
# Capitalised words the lexicon does not call common that are no surname after an initial.
_NOT_SURNAMES = word_set(
    """plate plates tow caller resident residents crosswalk please thanks multiple everyone
    trucking carpentry landscaping lanscaping painting plumbing roofing electric electrical
    electrician contracting contractor contractors construction masonry paving towing moving
    movers cleaning builders excavation demolition heating hvac son sons bros brothers mart bay"""
)
# Compass letters, and the T (Boston's subway: "Ashmont T."), before or after a street's name.
_STREET_LETTERS = frozenset("NSEWT")
_SIGNOFF_FIRST = frozenset({"thankyou", "thanks", "thank", "regards", "sincerely", "cheers"})

SSN = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])")
SSN_CUED = re.compile(
    r"(?i:\b(?:ssn|ss\s?#|soc(?:ial)?\.?\s+sec(?:urity)?\.?(?:\s+(?:number|no\.?|#))?))"
    r"[\s:#.-]{0,4}(\d{9})(?!\d)"
)


def _ordinary(word: str) -> bool:
    """A word that is not a surname here: common, a street/place/business word (but "Hill",
    "Banks", "Ford" are surnames too), a trade, a car, an agency, a title or a town."""
    low = word.lower()
    return (
        low in common_words()
        or low in _NOT_SURNAMES
        or low in STREET_SUFFIXES
        or (low in PLACE_WORDS and low not in SURNAME_PLACE_WORDS)
        or low in CAR_WORDS
        or low in AGENCIES
        or low in TITLES
        or low in PLACE_NAMES
    )


def _street(*words: str) -> bool:
    key = " ".join(words).lower().replace(".", "").replace("’", "'")
    return key in street_names()


@lru_cache(maxsize=1)
def _sorted_streets() -> tuple[str, ...]:
    return tuple(sorted(street_names()))


@lru_cache(maxsize=4096)
def _near_street(word: str) -> bool:
    """A street's name, its start ("W Rox", "S Hunt") or one edit from it ("E Berkley",
    "E Broaway", "W Eigth", "S Breman"): 311 callers misspell streets, not the staff's names."""
    low = word.lower()
    if low in street_names():
        return True
    streets = _sorted_streets()
    i = bisect.bisect_left(streets, low)
    if len(low) >= 3 and i < len(streets) and streets[i].startswith(low):
        return True
    edits = {low[:k] + low[k + 1 :] for k in range(len(low))}  # one letter dropped
    edits |= {low[:k] + low[k + 1] + low[k] + low[k + 2 :] for k in range(len(low) - 1)}
    return any(
        s in edits or low in {s[:k] + s[k + 1 :] for k in range(len(s))} or _one_sub(s, low)
        for s in streets
        if abs(len(s) - len(low)) <= 1 and s[:1] == low[:1]
    ) or bool(edits & street_names())


def _one_sub(a: str, b: str) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def _street_like(letter: str, word: str, *, letter_first: bool) -> bool:
    """A letter beside a street's name: "E Broadway", "W. Canton", "E Berkley" (the lexicon
    keeps compass streets with their letter, so "E Maxwell" stays a name), "Charlesgate E",
    "Ashmont T"."""
    if letter not in _STREET_LETTERS or word in not_name_words():
        return letter in _STREET_LETTERS
    if letter_first:
        return letter.lower() in COMPASS and _near_street(f"{letter} {word}")
    return _near_street(word) or _street(word, letter)


def _word_before(text: str, start: int) -> str:
    m = re.search(r"(\S+)[ \t]*$", text[max(0, start - 30) : start])
    return m.group(1) if m else ""


def _initial_a(text: str, m: re.Match[str]) -> bool:
    """ "A" (never "I") as an initial without a dot: after a code in capitals or a comma, and
    before a word that is not a brand or a place ("OC A MacGuiness", not "A Verizon truck")."""
    before = _word_before(text, m.start(2))
    return (
        m.group(2) == "A"
        and bool(re.fullmatch(r"[A-Z]{2,}|.*[,&]", before))
        and m.group(5) not in not_name_words()
    )


def _trade_follows(text: str, end: int) -> bool:
    """ "J Flannery Contracting", "M. Foley Electrician", "J Marchese and Son": a business."""
    m = re.match(r"[ \t]*(?:&|and)?[ \t]*([A-Za-z]+)", text[end : end + 30])
    return bool(m) and m.group(1).lower() in _NOT_SURNAMES | BUSINESS_WORDS | THING_WORDS


def initial_name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of names written with an initial (see the module's docstring)."""
    if not re.search(r"(?<![A-Za-z])[A-Z](?![A-Za-z])", text):
        return []
    out: list[tuple[int, int]] = []
    for m in INITIAL_SURNAME.finditer(text):
        first, letter, sep, surname = m.group(1), m.group(2), m.group(3), m.group(5)
        dotted = "." in sep
        if first and (
            _ordinary(first) or first.lower() in _SIGNOFF_FIRST or first in not_name_words()
        ):
            first = None
        start = m.start(1) if first else m.start(2)
        before = _word_before(text, start)
        if before.lower() in _LETTER_AS_WORD_AFTER or before.endswith("&"):
            continue  # "the T Station", "A & M Landscaping"
        # A letter may end a sentence or a list item, or be a line of the T ("at 331 K. They
        # were", "A. Your complaints", "Forest Hills T Stop"): a common word is never a surname.
        if _ordinary(surname) or len(surname) < 2:
            continue
        if letter == "I" and not first:
            continue  # "I Called", "I. The"
        if letter in "AU" and not dotted and not first and not _initial_a(text, m):
            continue  # "A Street", "A Jeep", "U Turn"; but "ISD OC A MacGuiness"
        if not first and _street_like(letter, surname, letter_first=True):
            continue  # "E Broadway", "W. Canton", "S Huntington", "E Berkley"
        if not first and not dotted and surname in not_name_words() and letter == "O":
            continue  # "O Street"
        if _trade_follows(text, m.end()) or _street(
            *text[start : m.end()].replace(".", " ").split()
        ):
            continue  # "J Flannery Contracting"; "George R. Visconti" is a street
        out.append((start, m.end()))
    for m in AFTER_OFFICE.finditer(text):
        if not (_ordinary(m.group(2)) or _street_like(m.group(1), m.group(2), letter_first=True)):
            out.append((m.start(1), m.end()))
    for m in SURNAME_INITIAL.finditer(text):
        surname, letter = m.group(1), m.group(3)
        if (
            _ordinary(surname)
            or surname in not_name_words()
            or _street_like(letter, surname, letter_first=False)
        ):
            continue  # "Plan B", "Terminal E", "Harvard U.", "Charlesgate E.", "Ashmont T."
        if letter in "AI" and not m.group().endswith("."):
            continue
        out.append((m.start(1), m.end()))
    return out


def _ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ssn_spans(text: str) -> list[tuple[int, int]]:
    """Spans of US social security numbers (see the module's docstring)."""
    out: list[tuple[int, int]] = []
    for m in SSN.finditer(text):
        if _ssn_valid(m.group(1), m.group(3), m.group(4)):
            out.append((m.start(), m.end()))
    for m in SSN_CUED.finditer(text):
        digits = m.group(1)
        if _ssn_valid(digits[:3], digits[3:5], digits[5:]):
            out.append((m.start(1), m.end(1)))
    return out
