"""Tagging benchmark: the Tagger against TF-IDF + LinearSVC and embeddings + logistic regression.

Real Boston 311 data, time-based split. Run: ``nice python -m benchmarks.tagging``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import BOSTON_FILES, ROOT, boston_service

COLUMNS = [
    "service_request_id",
    "requested_datetime",
    "status",
    "service_name",
    "description",
    "lat",
    "long",
]
SAMPLE_FILE = ROOT / "data_samples" / "boston_311_sample.csv"


def shipped_sample_ids(path: Path = SAMPLE_FILE) -> set[str]:
    """Ids of the rows in data_samples/boston_311_sample.csv, kept out of every training set.

    The tests tag that sample with the shipped bundle; training on the same rows would flatter it.
    """
    if not path.is_file():
        return set()
    df = pd.read_csv(path, dtype=str)
    for col in ("service_request_id", "id", "record_id", "source_id"):
        if col in df.columns:
            ids = df[col].dropna().astype(str)
            # Boston's API has two id forms ("H123-101..." and "101..."); match either.
            return set(ids) | {i.split("-", 1)[-1] for i in ids}
    return set()


def boston_history(per_class: int, *, seed: int = 0, exclude: set[str] | None = None) -> pd.DataFrame:
    """Up to ``per_class`` described requests per service, drawn uniformly over each service's history.

    Sorted by requested_datetime. Rows whose id is in ``exclude`` are never drawn.
    """
    exclude = exclude or set()
    parts = []
    for service in BOSTON_FILES:
        df = boston_service(service, usecols=COLUMNS)
        df = df[df["description"].fillna("").str.strip() != ""]
        if exclude:
            ids = df["service_request_id"].astype(str)
            bare = ids.str.split("-", n=1).str[-1]
            df = df[~(ids.isin(exclude) | bare.isin(exclude))]
        if len(df) > per_class:
            df = df.sample(n=per_class, random_state=seed)
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    out["requested_datetime"] = pd.to_datetime(out["requested_datetime"], utc=True)
    return out.sort_values(["requested_datetime", "service_request_id"]).reset_index(drop=True)


def per_class_time_split(
    df: pd.DataFrame, *, label_col: str, time_col: str, quantile: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test): within each class, rows before its ``quantile`` of time train.

    Why per class: Boston's services do not cover the same years ("Other" has a gap from 2019-04 to
    2020-03, "Unsafe Dangerous Conditions" exists only from 2019-10 to 2020-02), so any single cut
    date leaves some class with no test rows or no training rows. Cutting each class at its own
    80th percentile of time keeps the test period strictly later than the training period *for that
    class*, which is the drift a deployed tagger meets (new templates, new wording).
    """
    times = pd.to_datetime(df[time_col], utc=True)
    train = np.zeros(len(df), dtype=bool)
    for _, idx in df.groupby(label_col).groups.items():
        t = times.loc[idx]
        cut = t.quantile(quantile)
        train[np.asarray(idx)[np.asarray(t < cut)]] = True
    return train, ~train
