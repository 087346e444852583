"""Issue #22, finding 5: redaction of names written with an initial, honorifics and US social
security numbers, without redacting the 311 shapes that look like them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.ingest.privacy.redact import redact, redact_many

CASES = Path(__file__).parents[1] / "fixtures" / "pii" / "initials_ssn.jsonl"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Contact J. Smith about the pothole.", "Contact [NAME] about the pothole."),
        (
            "**Notified R Celestin, J Smith (VM), ISD OC S Cavaleri",
            "**Notified [NAME], [NAME] (VM), ISD OC [NAME]",
        ),
        ("Spoke with Smith, J. about the pickup", "Spoke with [NAME]. about the pickup"),
        ("Called Dillon H. at the office", "Called [NAME]. at the office"),
        ("Mr. Smith said the trash was left", "Mr. [NAME] said the trash was left"),
        ("Dr. Patel reported the tree", "Dr. [NAME] reported the tree"),
        ("Mr. J. Fontaine complained", "Mr. [NAME] complained"),
        ("Resident Maria K. Alvarez called", "Resident [NAME] called"),
        ("My SSN is 078-05-1120 please remove", "My SSN is [SSN] please remove"),
        ("ssn: 078051120 on the letter", "ssn: [SSN] on the letter"),
    ],
)
def test_initials_honorifics_and_ssns_are_redacted(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Car parked on N Main St near I 93 on ramp",
        "Route 9 E is blocked at Centre St",
        "Pothole on E Broadway and W Fourth St",
        "A Street needs paving from D St to E St",
        "Truck parked at M St Park every weekend",
        "John A. Andrew Street sidewalk not shoveled",
        "Comm Ave Mall between Mass Ave and Charlesgate E.",
        "In front of Ashmont T. needs enforcement",
        "Plan B was to tow it but nobody came",
        "Tattered U.S. Flag needs to be retired",
        "at 331 K. They were put out Thursday",
        "Sidewalk from Forest Hills T Stop to the school",
        "Case 101001367152 was closed",
        "Permit 123-45-67890 is posted",
        "invalid 000-12-3456 and 666-12-3456 and 078-00-1120",
    ],
)
def test_look_alikes_in_311_text_are_kept(text: str) -> None:
    assert redact(text).text == text


def test_ssn_placeholder_is_not_redacted_again() -> None:
    once = redact("SSN 078-05-1120, J. Smith").text
    assert once == "SSN [SSN], [NAME]"
    assert redact(once).findings == ()


def test_benchmark_cases_recall_and_false_redactions() -> None:
    """The benchmark's own cases (benchmarks/privacy.py): every name and SSN found, nothing
    redacted in the 40 PII-free look-alikes."""
    from benchmarks.privacy import score

    records = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]
    found = redact_many([r["text"] for r in records])
    result = score(records, [[(f.start, f.end, f.kind) for f in r.findings] for r in found])
    assert result["per_kind"]["NAME"]["recall"] >= 0.95
    assert result["per_kind"]["SSN"]["recall"] == 1.0
    assert result["false_redactions"] == 0


def test_initial_and_surname_after_an_offices_slash() -> None:
    """The bundled sample served "ONS/C. Newman, ISD OC/S. Cavaleri" unredacted."""
    from analyzer.ingest.privacy.redact import redact_many

    text = "I notified ONS/C. Newman, ISD OC/S. Cavaleri and J. Smith VM"
    out = redact_many([text])[0].text
    assert "Newman" not in out and "Cavaleri" not in out and "Smith" not in out
    for kept in ("Parking on the N/S. Main side", "BTD/T. Station is closed"):
        assert redact_many([kept])[0].text == kept
