"""Any table, with the columns named on the command line (``--text-col`` is required)."""

from __future__ import annotations

from analyzer.ingest.profiles.base import Profile

PLAIN_CSV = Profile(
    name="csv",
    source="other",
    id_prefix="csv",
    description="any table: --text-col (required), --id-col, --time-col, --label-col, ...",
    text=(),
    dataset_in_id=True,
    priority=-10,
)
