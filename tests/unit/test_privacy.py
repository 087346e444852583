"""analyzer.ingest.privacy.redact: planted PII, hard negatives, batching, idempotence, fixture recall."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analyzer.ingest.privacy.redact import Finding, Redaction, redact, redact_address, redact_many

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pii" / "boston_pii.jsonl"


def kinds_of(text: str) -> dict[str, list[str]]:
    """{kind: [original substrings]} of what redact() found in text."""
    out: dict[str, list[str]] = {}
    for f in redact(text).findings:
        out.setdefault(f.kind, []).append(text[f.start : f.end])
    return out


@pytest.fixture(scope="module")
def records() -> list[dict]:
    with open(FIXTURE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def batch(records: list[dict]) -> list[Redaction]:
    return redact_many([r["text"] for r in records])


# ------------------------------------------------------------------ planted PII, one kind at a time


@pytest.mark.parametrize(
    "text, value",
    [
        ("Call me at (617) 555-0131 please", "(617) 555-0131"),
        ("my cell 617.555.0142", "617.555.0142"),
        ("call me 6175550147 if you don't know", "6175550147"),
        ("Their phone number is +1 508-555-0186.", "+1 508-555-0186"),
        ("landlord 617-555-0150 ext. 226 never answers", "617-555-0150 ext. 226"),
        ("office 617 555 0100 x114]", "617 555 0100 x114"),
        ("the landlord who is 1-617-555-0142", "1-617-555-0142"),
        ("Please call with any questions 617/555-0182", "617/555-0182"),
        ("please call 555-0101 after 5", "555-0101"),
    ],
)
def test_phone_formats(text: str, value: str) -> None:
    assert kinds_of(text).get("PHONE") == [value]
    assert "[PHONE]" in redact(text).text


@pytest.mark.parametrize(
    "text, value",
    [
        ("Contact Dennis.Roe@Example.Org to discuss further.", "Dennis.Roe@Example.Org"),
        ("email me: j_q.public+311@mail.example.org, thanks", "j_q.public+311@mail.example.org"),
    ],
)
def test_email(text: str, value: str) -> None:
    assert kinds_of(text).get("EMAIL") == [value]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Car with plate 1ABC23 blocking the hydrant", "1ABC23"),
        ("Red Toyota MA plate# 4XY 567 in the bus stop", "4XY 567"),
        ("license plate: 8HT 921, silver sedan", "8HT 921"),
        ("drug dealing from a van lic#2NW337 grand ponic", "2NW337"),
        ("Vehicle License Plate Registration: 3WK467 | Vehicle License Plate State: MA", "3WK467"),
        (
            "License Plate number if available: N42 516 | License Plate State if available: MA",
            "N42 516",
        ),
        ("White Honda MA 9YL 415 parked in the crosswalk", "9YL 415"),
        ("Illegally Parked Car with no Resident Permit Parking. Porsche 6NE332", "6NE332"),
        ("Blue SUV illegally -- Illinois plates KP7 4163", "KP7 4163"),
        ("R73-416 MA license plate blocking bike lane", "R73-416"),
        # no cue but a vehicle: the commonest shapes, in any case (Honolulu's abandoned cars)
        ("Ford van rce 076", "rce 076"),
        ("white toyota camry KGB-123 parked for weeks", "KGB-123"),
        ("abandoned car 482 HTR on the shoulder", "482 HTR"),
        ("2nd vehicle saab lp 136wkb grey 2dr", "136wkb"),
        ("Car parked for 2+ weeks. NY plate, possibly JWL2407.", "JWL2407"),
    ],
)
def test_plate(text: str, value: str) -> None:
    assert kinds_of(text).get("PLATE") == [value]


def test_plate_list_after_one_cue() -> None:
    text = "license plates MA3KD519, NH4710253, MA2TR174, MA57263"
    assert kinds_of(text)["PLATE"] == ["MA3KD519", "NH4710253", "MA2TR174", "MA57263"]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Bus billowing smoke at 374 Baker St West Roxbury", "374 Baker St"),
        ("Car hasn't moved, 45 Birch St, 1, Roslindale", "45 Birch St, 1"),
        ("The user entered the address: 21-25 Kinross Road, Boston", "21-25 Kinross Road"),
        ("parked in front of 516 E 4th St in South Boston", "516 E 4th St"),
        ("Ryan,\n512 E. Broadway, South Boston", "512 E. Broadway"),
        ("Hi my name is Ann, I live at 412 Quincy st and", "412 Quincy st"),
    ],
)
def test_address(text: str, value: str) -> None:
    assert kinds_of(text).get("ADDRESS") == [value]


@pytest.mark.parametrize(
    "number", ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117"]
)
def test_card_luhn_valid(number: str) -> None:
    text = f"I paid with my credit card {number} and still got a ticket"
    assert kinds_of(text).get("CARD") == [number]
    assert redact(text).text == "I paid with my credit card [CARD] and still got a ticket"


def test_card_needs_luhn_and_card_prefix() -> None:
    assert "CARD" not in kinds_of("card 4111 1111 1111 1112 declined")  # fails Luhn
    # Case numbers: 12-13 digits starting with 1, some of them pass Luhn by chance.
    for case in ("1010022002230", "1010018504334", "1011002119114", "101001965068"):
        assert kinds_of(f"see case {case} please") == {}


@pytest.mark.parametrize(
    "text, value",
    [
        ("Hi my name is Judith Fairbanks my phone is: 617-555-0160", "Judith Fairbanks"),
        ("Hi my name is maureen Doyle I live at 412 Quincy st", "maureen Doyle"),
        ("Mr Stanley Horowitz called this morning re: sidewalks", "Stanley Horowitz"),
        ("Officer Kelleher 4271 Boston Police cited us", "Kelleher"),
        ("Any chance of Mr. Ferraro clearing his sidewalk?", "Ferraro"),
        ("Constituent Maria Lopez reports a blocked driveway", "Maria Lopez"),
        ("Please call Nadia Ruiz with any question 617 555 0187", "Nadia Ruiz"),
        ("Thank you, \r\nEmily Strand", "Emily Strand"),
        ("Call Gloria Pratt 617-555-0130", "Gloria Pratt"),
        (
            "Details: Caller would like a call back. Robert Keane - 617 555 0108. | Make: Ford",
            "Robert Keane",
        ),
        (
            "please do not hesitate to contact me. Martin Sorel. Senior Civil Engineer. "
            "Construction Management Division. Boston Public Works.",
            "Martin Sorel",
        ),
    ],
)
def test_names(text: str, value: str) -> None:
    assert value in kinds_of(text).get("NAME", [])
    assert "[NAME]" in redact(text).text


# ------------------------------------------------------------------ hard negatives


@pytest.mark.parametrize(
    "text",
    [
        "Pothole on Washington St near the Boston Public Works yard, reported to BTD and ISD.",
        "Make of the abandoned car: CHEVY | Model of the abandoned car: VAN | "
        "Color of the abandoned car: BLUE",
        "How is the car parked illegally? Other | Make: Toyota | Model: 4DR | Color: GreySilver",
        "TOYOTA CAMRY parked on Dot Ave for 3 weeks, see case 101001965068",
        "Car is parked facing the wrong way on a 2 Way St.",
        "Dr. Loesch Park. swing chain link broken.",
        "The user entered the address: Dr Paul Dudley White Bike Path, Boston, MA 02134, USA",
        "Expired sticker, not enforced on Paul Sullivan Way Boston MA  02118.",
        "Grass not cut at Doherty Playground along Medford St. since 4/16/2019 at 5:30pm.",
        "City of Boston owned land Parcel ID 2011577000",
        "Scam flyer asking $500.00 for a license, 2 hours on 2 hour parking, 26,000 lbs truck",
        "Exit doors operating in violation of Boston Fire Section 11.06 (a) since 2018",
        "Space savers on Sonoma Street, Maple Street and Elm Hill in Roxbury.",
        "Ford 4 dr grey F150 and a Mercedes ML350 with a 4X4 badge, 2ND floor",
    ],
)
def test_hard_negatives_are_left_alone(text: str) -> None:
    red = redact(text)
    assert red.findings == (), [text[f.start : f.end] for f in red.findings]
    assert red.text == text


@pytest.mark.parametrize(
    "text",
    ["car parked at apt 204 for days", "truck on hwy 101 again", "bmw 330 abandoned here",
     "Bus 123 stop sign is down", "the car has sat there for 100 days", "pothole abc 123",
     "Dodge Ram 1500 conversion van", "box truck - greater than 20,000 GVW",
     "Via Twitter, @BOS311 a blue suv is parked", "cars drive very fast. BOS 311, please help"],
)  # fmt: skip
def test_letters_and_digits_beside_a_vehicle_that_are_not_a_plate(text: str) -> None:
    assert "PLATE" not in kinds_of(text)


def test_dates_times_and_case_numbers_next_to_cues_are_not_plates() -> None:
    text = "registration sticker on license plate 02-19 expired 2019; case# 1011002119114 at 10pm"
    assert "PLATE" not in kinds_of(text)


# ------------------------------------------------------------------ contract


def test_offsets_point_into_the_original_text() -> None:
    text = "My name is Judith Fairbanks, 83 devon st, 617-555-0160, jf@example.org"
    red = redact(text)
    got = {f.kind: text[f.start : f.end] for f in red.findings}
    assert got == {
        "NAME": "Judith Fairbanks",
        "ADDRESS": "83 devon st",
        "PHONE": "617-555-0160",
        "EMAIL": "jf@example.org",
    }
    assert red.text == "My name is [NAME], [ADDRESS], [PHONE], [EMAIL]"
    assert all(isinstance(f, Finding) for f in red.findings)


def test_empty_and_non_string_inputs() -> None:
    assert redact("") == Redaction("", ())
    out = redact_many(["", None, "call 617-555-0131"])  # type: ignore[list-item]
    assert [r.text for r in out] == ["", "", "call [PHONE]"]


def test_redact_equals_redact_many(records: list[dict], batch: list[Redaction]) -> None:
    texts = [r["text"] for r in records]
    one_by_one = [redact(t) for t in texts[::7]]
    assert one_by_one == batch[::7]
    # Duplicates and order are preserved.
    assert redact_many(texts[:5] + texts[:5], batch_size=3) == batch[:5] + batch[:5]


def test_idempotent(batch: list[Redaction]) -> None:
    again = redact_many([r.text for r in batch])
    for first, second in zip(batch, again, strict=True):
        assert second.text == first.text
        assert second.findings == ()


def test_placeholders_are_not_redacted() -> None:
    text = "My name is [NAME], plate [PLATE], call [PHONE] at [ADDRESS] or [EMAIL] with [CARD]"
    assert redact(text) == Redaction(text, ())


# ------------------------------------------------------------------ the hand-annotated fixture


def test_fixture_is_well_formed_and_holds_only_fake_values(records: list[dict]) -> None:
    assert len(records) >= 200
    assert sum(1 for r in records if not r["spans"]) >= 60
    kinds = {s["kind"] for r in records for s in r["spans"]}
    assert kinds == {"NAME", "PHONE", "EMAIL", "PLATE", "ADDRESS", "CARD"}
    for r in records:
        for s in r["spans"]:
            value = r["text"][s["start"] : s["end"]]
            assert value.strip() == value and value, r["source_id"]
            if s["kind"] == "PHONE":  # every phone is a 555-01xx fake
                assert re.search(r"555\D?01\d\d", value), value
            if s["kind"] == "EMAIL":
                assert value.lower().rsplit("@", 1)[1] in {"example.org", "exmaple.org"}, value


def test_fixture_recall(records: list[dict], batch: list[Redaction]) -> None:
    from benchmarks.privacy import score

    result = score(records, [[(f.start, f.end, f.kind) for f in r.findings] for r in batch])
    recall = {k: m["recall"] for k, m in result["per_kind"].items()}
    assert recall["PHONE"] >= 0.95
    assert recall["EMAIL"] >= 0.95
    assert recall["NAME"] >= 0.85
    assert recall["PLATE"] >= 0.85
    assert recall["CARD"] == 1.0
    assert recall["ADDRESS"] >= 0.85
    assert result["false_redactions"] <= 5
    assert result["per_kind"]["NAME"]["precision"] >= 0.8


# ------------------------------------------------------------------ the address column


@pytest.mark.parametrize(
    "address, expected",
    [
        ("259 Shawmut Ave, Boston", "Shawmut Ave, Boston"),
        ("45 Birch St, 1, Roslindale", "Birch St, Roslindale"),
        ("374 Baker St West Roxbury, MA 02132", "Baker St West Roxbury, MA 02132"),
        ("18 Greenwich St, Dorchester, MA, 02122", "Greenwich St, Dorchester, MA, 02122"),
        ("9 11 Thornton St, Roxbury", "Thornton St, Roxbury"),
        ("1-57 W 1st St, Boston, MA 02127, USA", "W 1st St, Boston, MA 02127, USA"),
        ("25C Grantley St, 7, Hyde Park, MA, 02136", "Grantley St, Hyde Park, MA, 02136"),
        ("295 North St, Apt 1, Boston", "North St, Boston"),
        (
            "Intersection Of Vining St & Francis St, Boston",
            "Intersection Of Vining St & Francis St, Boston",
        ),
        ("W 1st St, Boston", "W 1st St, Boston"),
        ("", ""),
        (None, None),
    ],
)
def test_redact_address(address: str | None, expected: str | None) -> None:
    assert redact_address(address) == expected


# ------------------------------------------------------------------ speed (real data, slow)


@pytest.mark.slow
@pytest.mark.shared
def test_throughput_on_real_boston_descriptions() -> None:
    import time

    from benchmarks.privacy import boston_sample

    texts = boston_sample(5_000, seed=1)
    if texts is None:
        pytest.skip("../shared/data_raw is absent")
    redact_many(texts[:50])  # load the model outside the timing
    t0 = time.process_time()
    redact_many(texts)
    per_cpu_s = len(texts) / (time.process_time() - t0)
    assert per_cpu_s >= 3_000
