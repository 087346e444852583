"""Where each request stands: closed or open, when it closed, how long it took or has waited, and
whether it met its target.

Whether a request is closed is ``analyzer.common.status``'s rule (a status that says closed, in
English, Spanish, Portuguese or French; or a stored close time where the status does not say
open), the one the store's filters and the Open311 front door follow too. The close time is ``updated_at`` (Open311's
``updated_datetime``, or the column ingest was told holds the close time). An open request is
*censored* at its source's latest stored time (the moment the export was taken, as near as the
data tells): it has waited at least that long, which Kaplan-Meier counts without pretending it
closed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.common.status import CLOSED_WORDS, OPEN_WORDS, says_closed

__all__ = [
    "CLOSED_WORDS",
    "OPEN_WORDS",
    "close_states",
    "on_time",
]

DAY = np.timedelta64(86_400, "s")


def close_states(requests: pd.DataFrame) -> pd.DataFrame:
    """Columns ``closed``, ``timed`` (a close or censoring time is known and not before the request
    was made), ``days`` (to close, or waited so far) and ``event`` (closed: True; censored: False).

    ``requests`` needs ``status``, ``created_at``, ``updated_at`` (UTC) and ``as_of`` (the
    censoring time of the request's source). Rows are neither dropped nor reordered.
    """
    closed = pd.Series(
        says_closed(requests["status"], requests["updated_at"].notna()), index=requests.index
    )
    created = _utc(requests["created_at"])
    end = _utc(requests["updated_at"]).where(closed, _utc(requests["as_of"]))
    seconds = (end - created).dt.total_seconds()
    # a close time before the request was made cannot be a duration: left out of the times
    timed = seconds.notna() & (seconds >= 0)
    return pd.DataFrame(
        {
            "closed": closed.to_numpy(dtype=bool),
            "timed": timed.to_numpy(dtype=bool),
            "days": (seconds / 86_400.0).where(timed).to_numpy(dtype=float),
            "event": (closed & timed).to_numpy(dtype=bool),
        },
        index=requests.index,
    )


def on_time(days: np.ndarray, closed: np.ndarray, target_days: np.ndarray) -> np.ndarray:
    """Per request: 1.0 closed within its target, 0.0 closed later or still open past it, NaN
    where it cannot be told yet (open and not yet due), or there is no target or no time."""
    days = np.asarray(days, dtype=float)
    target = np.asarray(target_days, dtype=float)
    closed = np.asarray(closed, dtype=bool)
    out = np.full(len(days), np.nan)
    known = ~np.isnan(days) & ~np.isnan(target)
    out[known & closed] = (days[known & closed] <= target[known & closed]).astype(float)
    late_open = known & ~closed & (days > target)
    out[late_open] = 0.0
    return out


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")
