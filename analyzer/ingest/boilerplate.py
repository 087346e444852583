"""Texts that are not a resident's words: platform placeholders and text shared by a large share
of a file's rows.

6,921 of 8,002 NYC 311 rows read "This request was submitted to NYC 311 without a description.";
taken as resident text, that sentence became the largest theme and taught the tagger to map every
placeholder to one arbitrary category. Such records are flagged at ingest (``records.boilerplate``),
kept (nothing is lost, ``--keep-boilerplate`` turns the flag off), listed in the ingest summary
and ``civicpulse status``, and left out of themes, sentiment, emerging counts and tagger training.

Two rules:

- a known placeholder of a common platform (compared without case, spaces or end punctuation);
- a text shared by at least :data:`REPEATED_SHARE` of a file's rows and :data:`REPEATED_MIN_ROWS`
  rows. Real resident text never comes close: the most repeated text in each export in
  ../shared/data_raw covers at most 1.1% of its rows (Honolulu's "Salt lake area"; Boston,
  Gainesville, Detroit and Lewisham stay under 0.6%), the NYC placeholder 86%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# A text this common in one file is a template, a default or a placeholder, not a report.
REPEATED_SHARE = 0.05
REPEATED_MIN_ROWS = 25

# Placeholders written by platforms (or by their forms when a field is skipped), normalised as
# :func:`normalise` does. Only texts that can never be a resident's own report belong here.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "this request was submitted to nyc 311 without a description",  # NYC 311 (Socrata)
        "no answer given",  # SeeClickFix form answers left empty
        "content blocked by rejections",  # SeeClickFix: the text was withheld by moderation
        "no description",
        "no description provided",
        "no description given",
        "no description entered",
        "no description available",
        "description not provided",
        "no details provided",
        "no comments",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "-",
        "--",
        ".",
        "?",
    }
    # the text of a report that is all in its photo ("See photo", "See pic", "see attached
    # picture"; about 70 in Detroit's, Lewisham's and Honolulu's exports): nothing a theme or a
    # tagger can read
    | {
        f"{see}{the}{attached}{what}"
        for see in ("see ", "")
        for the in ("the ", "")
        for attached in ("attached ", "")
        for what in (
            "photo",
            "photos",
            "picture",
            "pictures",
            "pic",
            "pics",
            "image",
            "images",
            "attachment",
            "attachments",
        )
        if see or attached  # never a bare "photo": that word alone stays a resident's text
    }
    | {"see attached", "photo attached", "photos attached", "picture attached", "pictures attached"}
    # the same in the other languages cities write in (Spanish, Portuguese, French)
    | {
        "sin descripción",
        "sin descripcion",
        "sin comentarios",
        "sin observaciones",
        "sin datos",
        "s/d",
        "no aplica",
        "ninguno",
        "ninguna",
        "ver foto",
        "ver fotos",
        "ver imagen",
        "ver adjunto",
        "ver archivo adjunto",
        "sem descrição",
        "sem descricao",
        "sem comentários",
        "sem comentarios",
        "nenhum",
        "nenhuma",
        "não se aplica",
        "ver anexo",
        "sans description",
        "aucune description",
        "aucun commentaire",
        "voir photo",
        "voir pièce jointe",
    }
)


def normalise(texts: pd.Series) -> pd.Series:
    """Lower case, single spaces, no surrounding punctuation or quotes (for comparing texts)."""
    s = texts.fillna("").astype(str).str.lower()
    s = s.str.replace(r"[ \t\r\n]+", " ", regex=True).str.strip()
    stripped = s.str.strip(" .!\"'“”‘’()[]")
    # a text made only of punctuation ("-", "?") keeps it
    return stripped.where(stripped != "", s)


def is_placeholder(texts: pd.Series) -> pd.Series:
    """True where the text is a known platform placeholder."""
    return normalise(texts).isin(KNOWN_PLACEHOLDERS)


def repeated_threshold(total_rows: int) -> int:
    """The number of rows a text must be shared by to count as boilerplate in a file."""
    return max(REPEATED_MIN_ROWS, int(np.ceil(REPEATED_SHARE * max(total_rows, 0))))


@dataclass
class BoilerplateFinding:
    """Which rows are boilerplate, and the texts behind them with their counts (most first)."""

    mask: np.ndarray
    texts: list[tuple[str, int]]

    @property
    def count(self) -> int:
        return int(self.mask.sum())


def find_boilerplate(
    texts: Sequence[str] | pd.Series, *, repeated: bool = True
) -> BoilerplateFinding:
    """Flag the placeholders and (with ``repeated``) the texts shared by a large share of
    ``texts`` (one file's rows, or a training set). Empty texts are never flagged."""
    s = pd.Series(
        list(texts) if not isinstance(texts, pd.Series) else texts.to_numpy(), dtype=object
    )
    s = s.fillna("").astype(str)
    key = normalise(s)
    mask = np.array(key.isin(KNOWN_PLACEHOLDERS), dtype=bool)
    if repeated and len(s):
        counts = key[key != ""].value_counts()
        common = counts[counts >= repeated_threshold(len(s))]
        if len(common):
            mask |= key.isin(set(common.index)).to_numpy()
    mask &= (s.str.strip() != "").to_numpy()
    flagged = s[mask]
    listed = flagged.groupby(key[mask]).agg(["first", "size"]).sort_values("size", ascending=False)
    found = [(str(t), int(n)) for t, n in zip(listed["first"], listed["size"], strict=True)]
    return BoilerplateFinding(mask=mask, texts=found)
