"""Tagging: service categories for incoming requests, and their probable duplicates.

- ``supervised``: ``Tagger`` (labelled history) and its bundles;
- ``corrections``: a person's right labels, stored, and ``retrain`` with them;
- ``zero_shot``: ``ZeroShotTagger`` (category names and descriptions, no history);
- ``inputs``: which rows of a labelled file a tagger learns from (no boilerplate, no label
  with a single example);
- ``measures``: what both taggers share (calibration, precision bounds, the review threshold,
  time-aware splits, prediction rows);
- ``tfidf``: ``FastTfidf``, a fitted ``TfidfVectorizer``'s transform, faster;
- ``duplicates``: open requests that a new one probably repeats.
"""

from __future__ import annotations

from analyzer.tagging.corrections import load_corrections, record_correction, retrain
from analyzer.tagging.duplicates import (
    DEFAULT_MIN_SIMILARITY,
    duplicate_candidates,
    duplicates_in_store,
    find_duplicates,
    haversine_m,
)
from analyzer.tagging.inputs import MIN_EXAMPLES, TrainingRows, training_rows
from analyzer.tagging.measures import (
    NEVER_ACCEPT,
    PRECISION_BOUNDS,
    TAGGER_KIND,
    ZERO_SHOT_KIND,
    choose_threshold,
    class_centroids,
    expected_calibration_error,
    precision_lower_bound,
    time_ordered_folds,
    time_position,
    time_split,
    training_data_hash,
)
from analyzer.tagging.supervised import (
    Tagger,
    load_tagger,
)
from analyzer.tagging.tfidf import FastTfidf
from analyzer.tagging.zero_shot import ZeroShotTagger

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "MIN_EXAMPLES",
    "NEVER_ACCEPT",
    "PRECISION_BOUNDS",
    "TAGGER_KIND",
    "ZERO_SHOT_KIND",
    "FastTfidf",
    "Tagger",
    "TrainingRows",
    "ZeroShotTagger",
    "choose_threshold",
    "class_centroids",
    "duplicate_candidates",
    "duplicates_in_store",
    "expected_calibration_error",
    "find_duplicates",
    "haversine_m",
    "load_corrections",
    "load_tagger",
    "precision_lower_bound",
    "record_correction",
    "retrain",
    "time_ordered_folds",
    "time_position",
    "time_split",
    "training_data_hash",
    "training_rows",
]
