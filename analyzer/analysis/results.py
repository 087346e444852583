"""Typed results of the stages of an analysis run, shared by the engines and the run itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The columns of the store's ``sentiment`` table, in order.
SENTIMENT_COLUMNS = ("record_id", "model_id", "label", "score")


@dataclass
class RecordResults:
    """The per-record work of a run, whichever engine did it: every record's vector (rows the run
    does not use stay zero), the sentiment rows of records that had no score from the current
    model, that model's id, and the engine's facts for the run manifest."""

    vectors: np.ndarray
    sentiment_rows: pd.DataFrame
    sentiment_model: str
    engine: dict[str, Any]
