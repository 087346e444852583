"""What a closing note says happened to a request: resolved, nothing found, duplicate, referred,
administratively closed, or unknown.

Staff notes open with a closing code ("Case Resolved.", "Case Noted.") that says little: "Case
Resolved. vehicle not at location" means nothing was found. The classifier therefore drops the
codes and reads the words after them, in a fixed order of precedence (the labelling guideline of
benchmarks/data/boston_closing_notes.md), each step a group of cues in :class:`NoteRules`:

1. the request repeats another case (``duplicate``), or staff closed it with a referral code;
2. an action on this request: cited, ticketed, towed, repaired, picked up... (``resolved``), unless
   the note says it was only done to *other* vehicles or properties than the one reported;
3. the matter was handed to whoever handles it: referred, forwarded, police, 911 (``referred``);
4. an explicit finding of nothing: no violation, clear, gone, not at location (``no_violation``);
5. not the city's: private property, the owner's responsibility (``referred``);
6. a weaker action: "will be enforced", "will monitor", "removed" (``resolved``);
7. a weaker finding: "area checked" (``no_violation``);
8. procedural closure: invalid, administratively closed, not enough information (``administrative``);
9. anything else (``unknown``).

Rules rather than a trained model: they need no labels from a new city, a note's outcome is
explained by the cue that decided it, and run over Arrow's RE2 engine, all of a city's distinct
notes at once, they classify Boston's 103,000 distinct notes (273,000 closed requests) in about
a second. ``python -m benchmarks.outcomes`` scores them beside a keyword baseline on the labelled
notes of benchmarks/data/boston_closing_notes.csv (labelled by an AI coding agent: see its .md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.common.params import Params
from analyzer.outcomes.note_rules import NoteRules

__all__ = [
    "OUTCOMES",
    "WITHOUT_ACTION",
    "ClosingNoteClassifier",
    "NoteRules",
]

OUTCOMES = ("resolved", "no_violation", "duplicate", "referred", "administrative", "unknown")
# "Closed without action": nothing found, passed elsewhere, or closed for procedural reasons.
# Duplicates are left out of that measure's denominator: the case they repeat carries the outcome.
WITHOUT_ACTION = frozenset({"no_violation", "referred", "administrative"})

_TRIM = " .;,-:"
# runs of whitespace other than a single space (replacing every single space costs 10x more)
_SPACES = r"[ \t\n\r\f\v]{2,}|[\t\n\r\f\v]"


class ClosingNoteClassifier(Params):
    """Outcome of each closing note by rules (``fit`` only records the classes).

    ``predict`` takes notes (``None`` or empty: ``unknown``) and returns one outcome per note;
    ``explain`` returns the outcomes with the cue group that decided each. Identical notes are
    classified once.
    """

    def __init__(self, rules: NoteRules | None = None) -> None:
        self.rules = rules if rules is not None else NoteRules()

    @cached_property
    def _groups(self) -> dict[str, str]:
        return self.rules.groups()

    @cached_property
    def _python(self) -> dict[str, re.Pattern[str]]:
        # the few checks made sentence by sentence, on the rare notes that need them
        return {g: re.compile(self._groups[g]) for g in ("action", "others")}

    def fit(self, notes: object = None, y: object = None) -> ClosingNoteClassifier:
        """Nothing to learn: the rules are the model. Kept for the estimator interface."""
        self.classes_ = np.array(OUTCOMES, dtype=object)
        return self

    def predict(self, notes: Sequence[str | None]) -> np.ndarray:
        """One outcome per note, as an object array of strings from :data:`OUTCOMES`."""
        return self.explain(notes)[0]

    def predict_statuses(self, statuses: Sequence[str | None]) -> np.ndarray:
        """Outcome from a status word alone ("Referred to Another Agency", "Duplicate"): only the
        outcomes a status can name without a note; ``unknown`` otherwise ("Closed", "Archived")."""
        labels = self.predict(statuses)
        keep = np.isin(labels, list(self.rules.status_outcomes))
        return np.where(keep, labels, "unknown").astype(object)

    def explain(self, notes: Sequence[str | None] | str | None) -> tuple[np.ndarray, np.ndarray]:
        """(outcomes, deciding cue group) per note; one note may be passed as a string."""
        if notes is None or isinstance(notes, str):
            notes = [notes]
        values = pa.array(list(notes), type=pa.large_string(), from_pandas=True)
        encoded = pc.fill_null(values, "").dictionary_encode()
        labels, reasons = self._decide(encoded.dictionary)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        return labels[codes], reasons[codes]

    # -- the rules over all distinct notes at once ------------------------------------------

    def _decide(self, notes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """The order of precedence as a cascade: each step reads only the notes that no earlier
        step decided, so the costly cue groups run over a shrinking remainder."""
        labels = np.full(len(notes), "unknown", dtype=object)
        reasons = np.full(len(notes), "no cue", dtype=object)
        if len(notes) == 0:
            return labels, reasons
        g = self._groups

        def has(arr: pa.Array, group: str) -> np.ndarray:
            return pc.match_substring_regex(arr, g[group]).to_numpy(zero_copy_only=False)

        def mask(arr: pa.Array, *groups: str) -> pa.Array:
            for group in groups:
                arr = pc.replace_substring_regex(arr, g[group], " ~ ")
            return arr

        text = self._normalise(pc.cast(notes, pa.large_string()))
        todo = np.flatnonzero(pc.greater(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False))
        reasons[np.setdiff1d(np.arange(len(notes)), todo)] = "empty"

        def decide(hit: np.ndarray, outcome: str, why: str) -> None:
            nonlocal todo
            labels[todo[hit]] = outcome
            reasons[todo[hit]] = why
            todo = todo[~hit]

        def view(arr: pa.Array, rows: np.ndarray) -> pa.Array:
            return arr.take(pa.array(rows, type=pa.int64()))

        t = view(text, todo)
        decide(has(t, "duplicate"), "duplicate", "duplicate")
        t = view(text, todo)
        decide(has(t, "referral_code"), "referred", "referral_code")

        # findings are read with negated verbs masked ("not shoveled" is not "shoveled"), actions
        # with every negation masked ("no violation found", "no citation issued", "not towed")
        t = view(text, todo)
        negated = mask(t, "negation")
        nothing = has(negated, "nothing_found")
        masked = mask(negated, "no_sanction", "no_violation")
        action_text = mask(masked, "not_removed")
        action = has(action_text, "action")
        # beside a finding of nothing, "removed" is not an action ("tarp has been removed"), and
        # an action only on other vehicles or properties does not resolve this request
        both = np.flatnonzero(action & nothing)
        if len(both):
            sub = pc.replace_substring_regex(view(action_text, both), r"\bremoved\b", " ~ ")
            still = has(sub, "action")
            for j in np.flatnonzero(still & has(sub, "others")):
                still[j] = not self._only_others(str(sub[int(j)].as_py()))
            action[both] = still
        decide(action, "resolved", "action")
        keep = ~action
        nothing, masked, action_text = nothing[keep], view(masked, np.flatnonzero(keep)), None

        handed = has(masked, "handed_over")
        if handed.any():
            rows = np.flatnonzero(handed)
            handed[rows] = has(mask(view(masked, rows), "courtesy"), "handed_over")
        decide(handed, "referred", "handed_over")
        nothing = nothing[~handed]

        t = view(text, todo)
        not_ours = has(t, "not_ours")
        # "we do not cite on private property" is a referral; "private property, no violation
        # found" is not: a finding counts beside a not-ours cue only if no negation made it
        rows = np.flatnonzero(nothing & not_ours)
        if len(rows):
            sub = mask(view(t, rows), "negation", "no_sanction")
            nothing[rows] = has(sub, "nothing_found")
        decide(nothing, "no_violation", "nothing_found")
        decide(not_ours[~nothing], "referred", "not_ours")

        for group, outcome in (
            ("weak_action", "resolved"),
            ("weak_nothing", "no_violation"),
            ("administrative", "administrative"),
        ):
            if len(todo) == 0:
                break
            t = view(text, todo)
            source = mask(t, "negation", "no_sanction", "no_violation", "not_removed")
            decide(has(source if group == "weak_action" else t, group), outcome, group)
        return labels, reasons

    def _normalise(self, arr: pa.Array) -> pa.Array:
        """Lower case, one space; closing codes, stamps and courtesy lines removed."""
        text = pc.utf8_lower(arr)
        text = pc.replace_substring_regex(text, r"\.([a-z])", r" \1")  # "no.violation"
        text = pc.replace_substring_regex(text, _SPACES, " ")
        text = pc.replace_substring_regex(text, r"\bcase resolved by\b", "resolved by")
        text = pc.replace_substring_regex(text, self._groups["boilerplate"], " ")
        return pc.utf8_trim(pc.replace_substring_regex(text, _SPACES, " "), _TRIM)

    def _only_others(self, text: str) -> bool:
        """The actions in ``text`` are all in sentences about other vehicles or properties."""
        action, others = self._python["action"], self._python["others"]
        sentences = [s for s in re.split(r"[.;]\s*", text) if action.search(s)]
        return bool(sentences) and all(others.search(s) for s in sentences)
