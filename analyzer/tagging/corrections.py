"""Corrections: a person's right label for a request, stored (redacted) and used by the next
training with more weight than a history row."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Merged:
    """A history with the corrections in it: what the next training fits on."""

    texts: list[str]
    labels: list[str]
    weight: list[float]
    embeddings: np.ndarray | None
    times: pd.Series | None


def merge_corrections(
    texts: Sequence[str],
    labels: Sequence[str],
    corrections: pd.DataFrame,
    *,
    correction_weight: float = 5.0,
    embeddings: np.ndarray | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    times: pd.Series | None = None,
) -> Merged:
    """The one rule for training with corrections (``retrain`` and ``tag train
    --with-corrections``): a history row whose text was corrected is dropped, so the old label
    does not fight the new one; each correction joins with ``correction_weight`` (a person looked
    at it), embedded with ``embed`` when the history comes with ``embeddings``, and as the newest
    row when the history has ``times``."""
    texts, labels = list(texts), [str(x) for x in labels]
    if corrections.empty:
        return Merged(texts, labels, [1.0] * len(texts), embeddings, times)
    fixed = set(corrections["text"].astype(str))
    keep = [i for i, t in enumerate(texts) if t not in fixed]
    new_texts = corrections["text"].astype(str).tolist()
    emb = embeddings
    if embeddings is not None:
        if embed is None:
            raise ValueError("embeddings given without a way to embed the corrections")
        emb = np.vstack([embeddings[keep], embed(new_texts)])
    merged_times = times
    if times is not None:
        now = max(times.max(), pd.Timestamp.now(tz="UTC"))
        merged_times = pd.concat(
            [times.iloc[keep], pd.Series([now] * len(new_texts))], ignore_index=True
        )
    log.info("training with %d corrections", len(new_texts))
    return Merged(
        [texts[i] for i in keep] + new_texts,
        [labels[i] for i in keep] + corrections["label"].astype(str).tolist(),
        [1.0] * len(keep) + [correction_weight] * len(new_texts),
        emb,
        merged_times,
    )


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
    emb = check_embeddings(embeddings, len(texts))
    has_corrections = corrections is not None and not corrections.empty
    if has_corrections and extra is not None:
        raise InputError("retraining with extra fields and corrections is not supported")
    base = tagger or Tagger()
    merged = merge_corrections(
        texts,
        labels,
        corrections if has_corrections else pd.DataFrame(),
        correction_weight=correction_weight,
        embeddings=emb,
        embed=lambda new: embed_texts(new, base.embed_model, base.embed_backend)[0],
    )
    params = tagger.get_params() if tagger is not None else {}
    if "char_ngram_range" in params:
        params["char_ngram_range"] = tuple(params["char_ngram_range"])
    return Tagger(**params).fit(
        merged.texts,
        merged.labels,
        extra=extra,
        embeddings=merged.embeddings,
        sample_weight=merged.weight,
    )


__all__ = ["Merged", "load_corrections", "merge_corrections", "record_correction", "retrain"]
