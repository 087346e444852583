"""Opinions: opinion groups, representative statements and consensus from votes on statements
(Polis and similar), joined with CivicPulse's themes.

- ``matrix``: the participants × statements vote matrix (``VoteMatrix``);
- ``projection``: Polis's PCA and sparsity-aware participant positions;
- ``clustering``: opinion groups (Polis's base clusters, or k-means on participants with restarts);
- ``consensus``: counts per group, representativeness, group-informed consensus, flags;
- ``model``: ``OpinionModel``, the estimator that runs them;
- ``conversation``: a conversation to analyse, read from a Polis export folder or a votes file;
- ``themes`` and ``report``: the theme × group summary and the JSON result;
- ``stored``: conversations on the store, and their analysis kept with its run manifest.
"""

from __future__ import annotations

from analyzer.opinions.consensus import (
    FlagRules,
    GroupCounts,
    group_counts,
    group_informed_consensus,
    repness_table,
    select_representative,
    statement_stats,
)
from analyzer.opinions.conversation import Conversation, read_comments, read_export
from analyzer.opinions.matrix import VoteMatrix
from analyzer.opinions.model import METHODS, OpinionModel
from analyzer.opinions.projection import Projection, fit_projection, project
from analyzer.opinions.report import build_report
from analyzer.opinions.stored import (
    ConversationNotFoundError,
    conversation_opinions,
    list_conversations,
    load_conversation,
)
from analyzer.opinions.themes import cluster_statement_themes, theme_summaries

__all__ = [
    "METHODS",
    "Conversation",
    "ConversationNotFoundError",
    "FlagRules",
    "GroupCounts",
    "OpinionModel",
    "Projection",
    "VoteMatrix",
    "build_report",
    "cluster_statement_themes",
    "conversation_opinions",
    "fit_projection",
    "group_counts",
    "group_informed_consensus",
    "list_conversations",
    "load_conversation",
    "project",
    "read_comments",
    "read_export",
    "repness_table",
    "select_representative",
    "statement_stats",
    "theme_summaries",
]
