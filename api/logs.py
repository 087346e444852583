"""JSON logs for the API: one object per line, never a request body or a resident's text.

Only fields named in ``SAFE_FIELDS`` are copied from a record's ``extra``, so a careless
``log.info(..., extra={"text": ...})`` elsewhere cannot leak text into the API's log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

SAFE_FIELDS = (
    "event",
    "method",
    "path",
    "status",
    "ms",
    "key_id",
    "client",
    "error",
    "run_id",
    "count",
    "step",
    "bytes",  # a published snapshot's size and write generation (analyzer.store.replica)
    "generation",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in SAFE_FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    """Send ``civicpulse.*`` and uvicorn's own logs to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("civicpulse", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # The access log would print query strings (which can hold search text); ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
