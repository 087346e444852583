"""The closing-note classifier: what a note says happened, read past its closing code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analyzer.outcomes import OUTCOMES, ClosingNoteClassifier, NoteRules

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "benchmarks" / "data" / "boston_closing_notes.csv"


@pytest.fixture(scope="module")
def clf() -> ClosingNoteClassifier:
    return ClosingNoteClassifier().fit()


@pytest.mark.parametrize(
    ("note", "outcome"),
    [
        # the closing code says "resolved"; the words say nothing was there
        ("Case Resolved. vehicle not at location.", "no_violation"),
        ("Case Closed. NOVIO: No Violation Found/No Cause.", "no_violation"),
        ("Case Resolved. clear.", "no_violation"),
        ("Case Closed. Case Resolved. Vehicle ticketed.", "resolved"),
        ("Case Closed. TICKET: Ticket Issued.", "resolved"),
        ("Duplicate of Existing Case. inspection requested 101002195083.", "duplicate"),
        ("Duplicate of Existing Case. vehicle has left the officer said.", "duplicate"),
        ("Case Closed. ROA: Refer to Other Agency/Division.", "referred"),
        ("Case Noted. these are private parking lot lights, owner need to repair.", "referred"),
        ("Case Closed. ADCLSD: Administratively Closed.", "administrative"),
        ("Case Invalid. Please resubmit with vehicle plate, make and color.", "administrative"),
        ("Case Noted", "unknown"),
        ("Case Closed. Case Closed in AVRS.", "unknown"),
        # negations: a "no citation" is not a citation, "not towed" is not a tow
        ("Case Noted. No citation issued at this time. Bricks have been removed.", "no_violation"),
        ("Case Resolved. cars were tagged but not towed.", "resolved"),
        ("Case Closed. Case Resolved. sidewalk not shoveled.", "unknown"),
        # an action on other vehicles does not resolve the reported one
        (
            "Case Noted. No citation issued to [ADDRESS], sidewalk clear. Multiple citations "
            "issued to other properties.",
            "no_violation",
        ),
        # "we do not cite on private property" points elsewhere; "private property, no violation
        # found" is a finding
        ("Case Noted. cep does not cite for parking spaces on private property.", "referred"),
        ("Case Noted. Private property no violation found at this time.", "no_violation"),
        # a courtesy line is not a referral; a conditional "call 911 if" is not either
        ("Case Resolved. tent is gone but please call 911 if it comes back.", "no_violation"),
        ("Case Noted. BPD has been notified.", "referred"),
        ("Case Resolved. no.violation at this time.", "no_violation"),
    ],
)
def test_reads_the_words_after_the_closing_code(
    clf: ClosingNoteClassifier, note: str, outcome: str
) -> None:
    assert clf.predict([note])[0] == outcome, clf.explain(note)


def test_empty_notes_are_unknown_and_identical_notes_agree(clf: ClosingNoteClassifier) -> None:
    notes = [None, "", "   ", "Case Resolved. towed 12/8.", "Case Resolved. towed 12/8."]
    labels, reasons = clf.explain(notes)
    assert list(labels) == ["unknown", "unknown", "unknown", "resolved", "resolved"]
    assert reasons[0] == "empty" and reasons[3] == "action"
    assert len(clf.predict([])) == 0
    assert set(clf.predict(["Case Noted. clear", "Duplicate"])) <= set(OUTCOMES)


def test_statuses_alone_name_only_referrals_and_duplicates(clf: ClosingNoteClassifier) -> None:
    got = clf.predict_statuses(["Referred to Another Agency", "Archived", "Closed", None, "Dup"])
    assert list(got) == ["referred", "unknown", "unknown", "unknown", "duplicate"]


def test_every_cue_group_is_plain_re2() -> None:
    """The classifier runs each group in Arrow's RE2 engine: a look-around or back-reference would
    fail there (and only there), so every group is compiled by it here."""
    arr = pa.array(["case resolved. vehicle not at location"])
    for name, pattern in NoteRules().groups().items():
        pc.match_substring_regex(arr, pattern)  # raises on syntax RE2 lacks
        assert "(?<" not in pattern and "(?=" not in pattern and "(?!" not in pattern, name


def test_rules_are_parameters(clf: ClosingNoteClassifier) -> None:
    assert isinstance(clf.get_params()["rules"], NoteRules)
    # a city's own wording is data: a new cue changes the outcome without code
    rules = NoteRules(administrative=(*NoteRules().administrative, r"\bbulk item automation\b"))
    custom = ClosingNoteClassifier(rules)
    assert clf.predict(["Bulk Item Automation"])[0] == "unknown"
    assert custom.predict(["Bulk Item Automation"])[0] == "administrative"


def test_labelled_set_is_what_the_guideline_describes() -> None:
    """The committed labelled set (labelled by an AI coding agent): at least 500 notes, the five
    services, every outcome, and redacted (no phone number or e-mail left in a note)."""
    df = pd.read_csv(LABELLED, dtype=str, keep_default_na=False)
    assert len(df) >= 500 and df["service_request_id"].is_unique
    assert df["service"].nunique() == 5
    assert set(df["label"]) == set(OUTCOMES)
    assert not df["status_notes"].str.contains(r"\d{3}[-. ]\d{3}[-. ]\d{4}", regex=True).any()
    assert not df["status_notes"].str.contains(r"[\w.]+@[\w.]+\.\w+", regex=True).any()
