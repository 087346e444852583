"""Outcomes: how the city responded to each request, and whether an area is served worse than its
mix of requests explains.

- ``notes``: what a closing note says happened (resolved, nothing found, duplicate, referred,
  administratively closed, unknown), by rules (``note_rules``) over all distinct notes at once;
- ``lifecycle``: closed or open, days to close or waited so far, on time against a target;
- ``targets``: per-category targets read from a CSV (or Open311 ``expected_datetime``);
- ``survival``: Kaplan-Meier quantiles with open requests censored, Nelson-Aalen expectations;
- ``standardise``: observed against expected from citywide strata rates, with intervals and
  Benjamini-Hochberg q-values across groups;
- ``table``: the per-group table (``OutcomeTable``, ``OutcomeReport``);
- ``duplicates``: the city's own "duplicate of case N" notes as pairs to measure detectors with;
- ``query``: the read from the store that the CLI, the API and the explorer share.
"""

from analyzer.outcomes.duplicates import (
    DuplicateEvaluation,
    candidate_pairs,
    evaluate_detector,
    named_duplicate_pairs,
    order_pairs,
)
from analyzer.outcomes.lifecycle import CLOSED_WORDS, OPEN_WORDS, close_states, on_time
from analyzer.outcomes.note_rules import NoteRules
from analyzer.outcomes.notes import OUTCOMES, WITHOUT_ACTION, ClosingNoteClassifier
from analyzer.outcomes.query import (
    EXPECTED_FIELDS,
    MAX_EXAMPLES,
    NOTE_FIELDS,
    forget_memo,
    outcome_examples,
    outcomes,
    request_frame,
)
from analyzer.outcomes.standardise import (
    MIN_EXPECTED,
    Spread,
    between_group_spread,
    cluster_dispersion,
    standardise_binary,
    standardise_closures,
)
from analyzer.outcomes.survival import CloseTimes, close_time_quantiles, expected_closures
from analyzer.outcomes.table import (
    BY,
    MEASURES,
    PLURAL,
    OutcomeReport,
    OutcomeTable,
    classify_requests,
    verdict,
)
from analyzer.outcomes.targets import Targets, read_targets

__all__ = [
    "BY",
    "CLOSED_WORDS",
    "EXPECTED_FIELDS",
    "MAX_EXAMPLES",
    "MEASURES",
    "MIN_EXPECTED",
    "NOTE_FIELDS",
    "OPEN_WORDS",
    "OUTCOMES",
    "PLURAL",
    "WITHOUT_ACTION",
    "CloseTimes",
    "ClosingNoteClassifier",
    "DuplicateEvaluation",
    "NoteRules",
    "OutcomeReport",
    "OutcomeTable",
    "Spread",
    "Targets",
    "between_group_spread",
    "candidate_pairs",
    "classify_requests",
    "close_states",
    "close_time_quantiles",
    "cluster_dispersion",
    "evaluate_detector",
    "expected_closures",
    "forget_memo",
    "named_duplicate_pairs",
    "on_time",
    "order_pairs",
    "outcome_examples",
    "outcomes",
    "read_targets",
    "request_frame",
    "standardise_binary",
    "standardise_closures",
    "verdict",
]
