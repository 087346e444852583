"""Ingest: files -> canonical, redacted records in the store (see DESIGN.md, data flow).

- formats (``analyzer.ingest.formats``): CSV with delimiter/encoding detection, JSON arrays and
  JSON lines, Parquet, any of them gzip-compressed, and Excel workbooks; streamed in chunks.
- profiles (``analyzer.ingest.profiles``): open311, boston, socrata-311, polis, survey, csv.
- validation (``analyzer.ingest.validate``): dates, coordinates, empty text, HTML, size caps;
  bad rows go to the ``rejects`` table with a reason, never silently dropped.
- loading (``analyzer.ingest.load``): one transaction per file; upsert by id, latest update wins.
"""

from __future__ import annotations

from analyzer.ingest.options import IngestOptions, IngestReport
from analyzer.ingest.pipeline import ingest_file, read_table, suggest_columns
from analyzer.ingest.profiles import PROFILES, detect_profile

__all__ = [
    "PROFILES",
    "IngestOptions",
    "IngestReport",
    "detect_profile",
    "ingest_file",
    "read_table",
    "suggest_columns",
]
