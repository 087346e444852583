"""Whether a request is closed: the one rule that outcomes, the store's filters and the Open311
front door follow.

Cities name their states differently (Boston "closed"/"open"; Gainesville "Archived", "Closed",
"Referred to Another Agency", "In Process"; Honolulu "Closed", "Referred To Dept", nothing; a
Latin American export "Cerrado", "Atendida", "En proceso"; a Brazilian one "Fechado", "Em
andamento"). A status that says closed closes a request; one that says open leaves it open; any
other status, or none, closes it only when a close time is stored.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["CLOSED_WORDS", "OPEN_WORDS", "closed_sql", "is_closed", "says_closed"]

# matched in the lower-cased status; English, then Spanish, Portuguese and French
CLOSED_WORDS = (
    r"clos|resolv|complet|archiv|done|fixed|cancel|finish|solved|rejected|invalid"
    r"|cerrad|resuelt|solucionad|finalizad|atendid|conclu|terminad|anulad|rechazad"
    r"|fechad|resolvid|encerrad|arquivad|clôtur|cloturé|fermé|résolu|traité|annulé"
)
OPEN_WORDS = (
    r"open|new|submit|receiv|acknowledg|in process|in progress|assigned|pending|reopen|"
    r"investigat|scheduled|waiting|on hold"
    r"|abiert|nuev|en proceso|en trámite|en tramite|pendient|asignad|recibid|en curso"
    r"|en atenci|registrad|abert|novo|em andamento|em análise|em analise|pendente|recebid"
    r"|ouvert|nouveau|en cours|en attente"
)


_CLOSED_RE = re.compile(CLOSED_WORDS)
_OPEN_RE = re.compile(OPEN_WORDS)


def says_closed(status: pd.Series, has_close_time: pd.Series | np.ndarray) -> np.ndarray:
    """Per request: closed by its status, or by a stored close time where the status does not
    say open."""
    s = status.fillna("").astype(str).str.strip().str.lower()
    closed = s.str.contains(_CLOSED_RE).to_numpy(dtype=bool)
    open_ = s.str.contains(_OPEN_RE).to_numpy(dtype=bool)
    return closed | (~open_ & np.asarray(has_close_time, dtype=bool))


def is_closed(status: str | None, has_close_time: bool) -> bool:
    """One request's state, the same rule as :func:`says_closed` without a frame (the Open311
    front door asks it for each of up to 1,000 requests in a page)."""
    s = (status or "").strip().lower()
    return bool(_CLOSED_RE.search(s)) or (has_close_time and not _OPEN_RE.search(s))


def closed_sql(status: str, close_time: str) -> tuple[str, list[str]]:
    """The same rule as a SQL condition over a status and a close-time expression, and its
    parameters (the two patterns)."""
    s = f"lower(trim(coalesce({status}, '')))"
    sql = f"(regexp_matches({s}, ?) OR (NOT regexp_matches({s}, ?) AND {close_time} IS NOT NULL))"
    return sql, [CLOSED_WORDS, OPEN_WORDS]
