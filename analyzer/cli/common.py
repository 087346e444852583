"""Helpers shared by the CLI command modules: settings, the store, CSV in / CSV out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from analyzer.config import Settings, load_settings
from analyzer.errors import InputError
from analyzer.store.database import Store

# Status and error lines on stderr, as plain text: never wrapped or cropped at the terminal's width
# (a line is one line however narrow the terminal or however long a path in it), and never read
# as Rich markup (a path or a theme label may hold square brackets).
console = Console(stderr=True, soft_wrap=True, markup=False)


def settings(store: Path | None = None) -> Settings:
    s = load_settings()
    return s.with_overrides(store_path=store) if store else s


def open_store(store: Path | None = None, *, read_only: bool = False) -> Store:
    path = settings(store).store_path
    if read_only and not Path(path).exists():
        raise InputError("no store yet; run `civicpulse ingest FILE` first", file=str(path))
    return Store(path, read_only=read_only)


def read_input_table(path: Path, text_col: str) -> pd.DataFrame:
    """Read a CSV for the stateless commands (cluster, embed, sentiment, tag predict).

    Every column is kept as a string so the output reproduces the input; the text column must exist.
    """
    from analyzer.ingest import read_table

    df = read_table(path)
    resolve_column(df, text_col, path)
    return df


def resolve_column(df: pd.DataFrame, name: str, path: Path | str | None = None) -> str:
    """The column ``name`` names, compared as ``ingest`` does ("Description", "description" and
    "DESCRIPTION" are one column); an :class:`InputError` listing the columns when none is."""
    from analyzer.ingest.profiles import find_column

    found = find_column([str(c) for c in df.columns], [name])
    if found is None:
        cols = ", ".join(map(str, df.columns)) or "(none)"
        raise InputError(
            f"no column {name!r}; columns found: {cols}", file=str(path) if path else None
        )
    return found


def texts_of(df: pd.DataFrame, text_col: str) -> list[str]:
    return df[resolve_column(df, text_col)].fillna("").astype(str).tolist()


def write_output_table(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
