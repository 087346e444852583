"""What an analysis run must (re)compute, decided before embedding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analyzer.ingest.forget import stale_sources
from analyzer.store.database import Store

# Re-fit a source's themes when at least this share of its records is new since the last fit.
REFIT_SHARE = 0.05


@dataclass
class Plan:
    """What this run must (re)compute, decided before embedding so that a small increment loads
    only the vectors it uses (the next day's 300 requests, not the store's 300,000)."""

    refit_sources: set[str]
    previous: pd.DataFrame  # active themes of the last run (a ``source`` column says whose)
    assigned: np.ndarray  # bool per record: has an assignment from an earlier run
    sentiment_model: Any
    sentiment_todo: np.ndarray  # bool per record: no score from this sentiment model yet
    needs_vectors: np.ndarray  # bool per record


def make_plan(store: Store, records: pd.DataFrame, refit: bool, sentiment_model: Any) -> Plan:
    """``records`` as ``pipeline.load_records`` gives them (with their assignment and sentiment flags)."""
    previous = store.query_df("SELECT * FROM themes WHERE status = 'active' ORDER BY theme_id")
    assigned = records["has_assignment"].to_numpy(dtype=bool)
    refit_sources: set[str] = set()
    needs = ~assigned
    with_themes = set(previous["source"].dropna().astype(str))
    # sources that lost records (``civicpulse forget``, a file read again) since the last run:
    # their themes were fitted with texts that are gone
    stale = stale_sources(store)
    for source, idx in records.groupby("source").indices.items():
        has_themes = str(source) in with_themes
        new_share = 1.0 - assigned[idx].sum() / max(len(idx), 1)
        if refit or not has_themes or new_share >= REFIT_SHARE or str(source) in stale:
            refit_sources.add(str(source))
            needs[idx] = True
    todo = ~records["has_sentiment"].to_numpy(dtype=bool)
    return Plan(refit_sources, previous, assigned, sentiment_model, todo, needs | todo)
