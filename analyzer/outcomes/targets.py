"""Per-category targets for closing a request ("on time" means closed within the target).

A targets file is a CSV with a ``category`` column (the city's category as stored) and either
``target_days`` or ``target_hours``; an optional ``source`` column limits a row to one source.
Without a file, a request's own Open311 ``expected_datetime`` is its target where the city sent
one. Without either there is no target, and the on-time share is not computed: it is not invented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analyzer.common.hashing import sha256_file
from analyzer.errors import InputError

__all__ = ["Targets", "read_targets"]


@dataclass(frozen=True)
class Targets:
    """Target days per (source or None, category); ``name`` says where they came from."""

    days: dict[tuple[str | None, str], float] = field(default_factory=dict)
    name: str = ""
    digest: str = ""

    def for_requests(self, sources: pd.Series, categories: pd.Series) -> np.ndarray:
        """Target days per request (NaN where its category has none)."""
        out = np.full(len(categories), np.nan)
        if not self.days:
            return out
        cats = categories.fillna("").astype(str).to_numpy()
        srcs = sources.fillna("").astype(str).to_numpy()
        for i, (src, cat) in enumerate(zip(srcs, cats, strict=True)):
            value = self.days.get((src, cat), self.days.get((None, cat)))
            if value is not None:
                out[i] = value
        return out


def read_targets(path: str | Path) -> Targets:
    """Read a targets CSV; a malformed file or row raises :class:`InputError` naming the file, row
    and column (rows are numbered as in the file, the header being row 1)."""
    file = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("no such file", file=file) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV ({type(exc).__name__})", file=file) from None
    columns = {str(c).strip().lower(): c for c in df.columns}
    unit = next((u for u in ("target_days", "target_hours") if u in columns), None)
    if "category" not in columns or unit is None:
        found = ", ".join(map(str, df.columns)) or "(none)"
        raise InputError(
            f"a targets file needs the columns 'category' and 'target_days' (or 'target_hours'); "
            f"columns found: {found}",
            file=file,
        )
    scale = 1.0 if unit == "target_days" else 1 / 24
    days: dict[tuple[str | None, str], float] = {}
    source_col = columns.get("source")
    for i, record in enumerate(df.to_dict("records"), start=2):
        category = str(record[columns["category"]]).strip()
        raw = str(record[columns[unit]]).strip()
        if not category:
            raise InputError("empty category", file=file, row=i, column=columns["category"])
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise InputError(
                f"{raw!r} is not a positive number", file=file, row=i, column=columns[unit]
            )
        source = (str(record[source_col]).strip() or None) if source_col else None
        key = (source, category)
        if key in days:
            raise InputError(
                f"category {category!r} is listed twice", file=file, row=i, column=columns[unit]
            )
        days[key] = value * scale
    return Targets(days=days, name=Path(path).name, digest=sha256_file(path)[:16])
