"""Which column of a table holds what residents wrote, when no one named it: found by its name
(description, details, comments, problem, summary; descripción, observaciones, comentarios,
asunto, motivo; descrição; commentaire) and checked by its values (mostly filled, words rather
than codes, most values different). Among those that pass, the longest values win, so a
request's description is chosen over its title or summary."""

from __future__ import annotations

import re

import pandas as pd

from analyzer.ingest.profiles.base import column_key

# names that say a column holds free text, in the languages cities write in
_TEXT_NAME = re.compile(
    r"(descr|detail|detalle|comment|comentar|observ|narrative|complaint|queja|reclamo|relato"
    r"|message|mensaje|mensagem|^text|_text|texto|^body|^notes?$|request_notes|resident_notes"
    r"|problem|issue|asunto|motivo|summary|resumen|subject|title|titulo)"
)
# ... unless the name says it is something else: a code, a type, a date, a status, an id
_NOT_TEXT = re.compile(r"(date|fecha|time|code|codigo|type|tipo|categ|status|estado|_id$|^id_)")

MIN_FILLED = 0.5  # at least half the rows have a value
MIN_MEAN_CHARS = 12  # words, not codes ("PT", "Y", "12")
MIN_DISTINCT = 0.3  # most values differ: not a pick list


def text_column_candidates(columns: list[str]) -> list[str]:
    """Columns whose names say they hold free text, in the file's order."""
    return [
        str(c)
        for c in columns
        if _TEXT_NAME.search(column_key(c)) and not _NOT_TEXT.search(column_key(c))
    ]


def find_text_column(frame: pd.DataFrame) -> str | None:
    """Among ``text_column_candidates``, the one with the longest values that is mostly filled,
    written in words and not a pick list (judged on ``frame``, the file's first rows); ``None``
    when none is."""
    best, best_len = None, 0.0
    for col in text_column_candidates([str(c) for c in frame.columns]):
        values = frame[col].astype(str).str.strip()
        filled = values[values != ""]
        if len(values) == 0 or len(filled) < MIN_FILLED * len(values):
            continue
        mean_len = float(filled.str.len().mean())
        if mean_len < MIN_MEAN_CHARS or filled.nunique() < MIN_DISTINCT * len(filled):
            continue
        if mean_len > best_len:
            best, best_len = col, mean_len
    return best


__all__ = ["find_text_column", "text_column_candidates"]
