"""Sentiment of resident text: a label (negative / neutral / positive) and a score in [-1, 1].

- ``model``: ``SentimentModel`` (logistic regression over embeddings and lexicon features), the
  packaged bundle, ``analyze_sentiment`` and the training command;
- ``lexicon``: text preparation and the lexicon features (VADER, AFINN, pattern).
"""

from __future__ import annotations

from analyzer.sentiment.lexicon import (
    LEXICON_FEATURES,
    lexicon_features,
    preprocess,
    resident_words,
    vader_labels,
)
from analyzer.sentiment.model import (
    BUNDLE_KIND,
    DEFAULT_BUNDLE,
    LABELS,
    SentimentModel,
    aggregate_sentiment,
    analyze_sentiment,
    cross_validate,
    default_bundle_path,
    load_default,
    macro_recall,
    read_tweeteval,
    train_default_bundle,
)

__all__ = [
    "BUNDLE_KIND",
    "DEFAULT_BUNDLE",
    "LABELS",
    "LEXICON_FEATURES",
    "SentimentModel",
    "aggregate_sentiment",
    "analyze_sentiment",
    "cross_validate",
    "default_bundle_path",
    "lexicon_features",
    "load_default",
    "macro_recall",
    "preprocess",
    "read_tweeteval",
    "resident_words",
    "train_default_bundle",
    "vader_labels",
]
