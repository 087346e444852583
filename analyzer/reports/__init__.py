"""Reports: what leaves the system as a file.

- ``colors``: one colour per theme, everywhere;
- ``export``: spreadsheet-safe CSV (the formula-injection guard and a streaming writer);
- ``report``: a theme's records as CSV and its one-page HTML report.
"""

from __future__ import annotations

from analyzer.reports.colors import PALETTE, UNASSIGNED_COLOR, theme_color
from analyzer.reports.export import (
    FORMULA_PREFIXES,
    GuardedCsvWriter,
    csv_cell,
    iter_csv,
    neutralise_formula,
    safe_filename,
)
from analyzer.reports.report import (
    RECORD_CSV_COLUMNS,
    theme_records_csv,
    theme_report_html,
    write_theme_records_csv,
)

__all__ = [
    "FORMULA_PREFIXES",
    "PALETTE",
    "RECORD_CSV_COLUMNS",
    "UNASSIGNED_COLOR",
    "GuardedCsvWriter",
    "csv_cell",
    "iter_csv",
    "neutralise_formula",
    "safe_filename",
    "theme_color",
    "theme_records_csv",
    "theme_report_html",
    "write_theme_records_csv",
]
