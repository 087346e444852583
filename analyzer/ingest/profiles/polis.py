"""Polis conversation exports (``comments.csv`` of compdemocracy/openData)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyzer.ingest.profiles.base import ColumnMap, Profile, slug

MODERATION = {"1": "accepted", "-1": "rejected", "0": "unmoderated"}


@dataclass(frozen=True)
class PolisProfile(Profile):
    def default_dataset(self, path: Path) -> str:
        # openData keeps one conversation per folder, each with a comments.csv
        if path.name.lower().startswith("comments.") and path.parent.name:
            return slug(path.parent.name)
        return super().default_dataset(path)

    def derive(self, frame: pd.DataFrame, out: pd.DataFrame, cmap: ColumnMap) -> None:
        if "moderated" in frame.columns and cmap.status is None:
            out["status"] = frame["moderated"].str.strip().map(MODERATION).fillna("")


POLIS = PolisProfile(
    name="polis",
    source="engagement",
    default_kind="engagement",
    id_prefix="polis",
    description="Polis comments.csv: comment-body, ms timestamps; votes and moderation kept",
    text=("comment-body",),
    id=("comment-id",),
    created=("timestamp",),
    safe=(
        "datetime",
        "author-id",
        "agrees",
        "disagrees",
        "moderated",
        "is-meta",
        "is-seed",
        "group-informed-consensus",
    ),
    signature=("comment-id", "comment-body"),
    dataset_in_id=True,
    priority=30,
)
