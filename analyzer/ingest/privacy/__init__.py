"""Privacy: residents' personal data redacted from free text before it is stored or shown.

- ``redact``: the redactor (``redact``, ``redact_many``, ``redact_address``) and its findings;
- ``patterns``: the word lists and precompiled patterns it looks for.

The function ``redact`` is deliberately not re-exported here: the package attribute ``redact`` is
the module ``analyzer.ingest.privacy.redact`` (``import analyzer.ingest.privacy.redact as m`` and
``from analyzer.ingest.privacy import redact`` both give the module, which the benchmarks wrap and
inspect). Call it as ``analyzer.ingest.privacy.redact.redact``.
"""

from __future__ import annotations

from analyzer.ingest.privacy.redact import (
    KINDS,
    Finding,
    Redaction,
    redact_address,
    redact_many,
)

__all__ = ["KINDS", "Finding", "Redaction", "redact_address", "redact_many"]
