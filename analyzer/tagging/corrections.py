"""Corrections: a person's right label for a request, stored (redacted) and used by the next
training with more weight than a history row."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analyzer.errors import InputError
from analyzer.tagging.measures import Extra, as_texts, check_embeddings, embed_texts
from analyzer.tagging.supervised import Tagger

if TYPE_CHECKING:
    from analyzer.store.database import Store

log = logging.getLogger(__name__)


def record_correction(store: Store, text: str, label: str, record_id: str | None = None) -> str:
    """Store a correction (the text is redacted first) and return its id."""
    label = str(label).strip()
    if not label:
        raise InputError("a correction needs a label")
    if not str(text).strip():
        raise InputError("a correction needs a text")
    from analyzer.ingest.privacy.redact import redact

    clean = redact(str(text)).text
    cid = uuid.uuid4().hex
    store.execute(
        "INSERT INTO corrections (id, text, label, record_id) VALUES (?, ?, ?, ?)",
        [cid, clean, label, record_id],
    )
    log.info("correction %s stored (label set, %d chars)", cid, len(clean))
    return cid


def load_corrections(store: Store) -> pd.DataFrame:
    """Stored corrections, latest per record (or per text when no record id), oldest first."""
    df = store.query_df(
        "SELECT id, text, label, record_id, created_at FROM corrections ORDER BY created_at, id"
    )
    if df.empty:
        return df
    key = df["record_id"].where(df["record_id"].notna(), "text:" + df["text"])
    # A later correction of the same record or text replaces the earlier one.
    return df.loc[~key.duplicated(keep="last")].reset_index(drop=True)


def retrain(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    store: Store | None = None,
    corrections: pd.DataFrame | None = None,
    correction_weight: float = 5.0,
    tagger: Tagger | None = None,
    embeddings: np.ndarray | None = None,
    extra: Extra = None,
) -> Tagger:
    """Fit a new Tagger (``tagger``'s parameters, or the defaults) on history plus corrections.

    Corrections come from ``corrections`` or, when it is None, from ``store``. A correction
    outweighs a history row (``correction_weight``) because a person looked at it; a history row
    with the same text is dropped so the old label does not fight the corrected one.
    """
    if corrections is None and store is not None:
        corrections = load_corrections(store)
    texts = as_texts(texts)
    labels = [str(x) for x in labels]
    weight = [1.0] * len(texts)
    emb = check_embeddings(embeddings, len(texts))
    if corrections is not None and not corrections.empty:
        if extra is not None:
            raise InputError("retraining with extra fields and corrections is not supported")
        fixed = set(corrections["text"].astype(str))
        keep = [i for i, t in enumerate(texts) if t not in fixed]
        texts = [texts[i] for i in keep]
        labels = [labels[i] for i in keep]
        weight = [1.0] * len(keep)
        new_texts = corrections["text"].astype(str).tolist()
        texts += new_texts
        labels += corrections["label"].astype(str).tolist()
        weight += [correction_weight] * len(new_texts)
        if emb is not None:
            base = tagger or Tagger()
            new_emb, _ = embed_texts(new_texts, base.embed_model, base.embed_backend)
            emb = np.vstack([emb[keep], new_emb])
        log.info("retraining with %d corrections", len(new_texts))
    params = tagger.get_params() if tagger is not None else {}
    if "char_ngram_range" in params:
        params["char_ngram_range"] = tuple(params["char_ngram_range"])
    return Tagger(**params).fit(texts, labels, extra=extra, embeddings=emb, sample_weight=weight)


__all__ = ["load_corrections", "record_correction", "retrain"]
