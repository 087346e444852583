"""Attribute names that later steps read: what ingest keeps under these names (an export's
"Status Notes", "RESOLUTION_DESCRIPTION" or "Expected Date" is stored as ``status_notes``,
``resolution_description``, ``expected_date``) and outcomes look for, in this order."""

from __future__ import annotations

__all__ = ["EXPECTED_FIELDS", "NOTE_FIELDS", "READ_FIELDS"]

# the staff's closing note
NOTE_FIELDS = (
    "status_notes",
    "resolution_description",
    "resolution_notes",
    "resolution",
    "closing_notes",
    "closure_notes",
    "close_notes",
    "closed_notes",
)
# the city's own expected close time
EXPECTED_FIELDS = ("expected_datetime", "expected_date", "due_date", "target_date")
READ_FIELDS = frozenset(NOTE_FIELDS + EXPECTED_FIELDS)
