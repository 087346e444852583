"""Boilerplate (placeholders, texts repeated across a file) and the rows a tagger learns from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.ingest.boilerplate import find_boilerplate, is_placeholder, repeated_threshold
from analyzer.tagging.inputs import training_rows

NYC = "This request was submitted to NYC 311 without a description."


def test_known_placeholders_whatever_the_case_and_punctuation() -> None:
    got = is_placeholder(pd.Series([NYC, NYC.upper().rstrip("."), "No Answer Given", "N/A", "x"]))
    assert got.tolist() == [True, True, True, True, False]


def test_a_text_shared_by_a_large_share_of_rows_is_flagged() -> None:
    texts = [f"pothole on street {i}" for i in range(170)] + ["Submitted from the mobile app"] * 30
    found = find_boilerplate(texts)
    assert found.count == 30 and found.texts == [("Submitted from the mobile app", 30)]
    assert find_boilerplate(texts, repeated=False).count == 0


def test_common_real_complaints_are_not_boilerplate() -> None:
    # Honolulu's most repeated text covers 1.1% of its rows: far under the threshold
    texts = [f"report {i}" for i in range(985)] + ["Light out"] * 15
    assert find_boilerplate(texts).count == 0
    assert repeated_threshold(1000) == 50 and repeated_threshold(100) == 25


def test_empty_texts_are_never_flagged() -> None:
    assert find_boilerplate([""] * 50 + ["a"]).count == 0


def test_training_rows_leave_out_placeholders_and_single_example_labels() -> None:
    texts = ["pothole deep"] * 3 + ["light out"] * 3 + [NYC] * 4 + ["storm drain blocked"]
    labels = ["Pothole"] * 3 + ["Light"] * 3 + ["Pothole", "Light", "Light", "Light"] + ["Drain"]
    rows = training_rows(texts, labels)
    assert rows.keep.tolist() == [True] * 6 + [False] * 5
    assert rows.n_boilerplate == 4 and rows.rare == {"Drain": 1}
    notes = " ".join(rows.notes())
    assert "boilerplate" in notes and "'Drain' (1)" in notes
    kept = training_rows(texts, labels, keep_boilerplate=True)
    assert kept.keep[6:10].all()


def test_training_rows_refuse_when_fewer_than_two_labels_are_left() -> None:
    with pytest.raises(InputError, match="two or more labels"):
        training_rows(["a", "b", "c"], ["X", "X", "Y"])


def test_training_rows_skip_empty_texts_and_labels() -> None:
    rows = training_rows(["a", "", "c", "d", "e", "f"], ["X", "X", "", "Y", "Y", "X"])
    assert rows.empty == 2
    assert np.array_equal(rows.keep, [True, False, False, True, True, True])


def test_rare_categories_fold_into_other_with_a_warning() -> None:
    texts = [f"text {i}" for i in range(12)]
    labels = ["Pothole"] * 5 + ["Graffiti"] * 4 + ["Storm Drain", "Bench", "Other"]
    rows = training_rows(texts, labels, min_examples=2)
    assert rows.keep.all() and rows.other == "Other"
    assert list(rows.labels[-3:]) == ["Other", "Other", "Other"]  # the city's own "Other" joins
    assert any("folded 2 labels" in n and "'Storm Drain' (1)" in n for n in rows.notes())
    dropped = training_rows(texts, labels, min_examples=2, other=None)
    assert dropped.keep.sum() == 9 and any("left out 3 labels" in n for n in dropped.notes())
    # a folded group still too small is left out, and said so
    small = training_rows(texts[:10], labels[:10], min_examples=2)
    assert small.keep.sum() == 9 and small.other is None
    assert any("left out 1 labels" in n for n in small.notes())


def test_a_photo_only_report_is_a_placeholder_but_a_photo_of_something_is_not() -> None:
    from analyzer.ingest.boilerplate import find_boilerplate

    texts = ["See photo", "See pic.", "see the attached pictures!", "Photo attached",
             "Photo of the pothole on Elm", "photo", "pothole, see photo"]  # fmt: skip
    assert find_boilerplate(texts, repeated=False).mask.tolist() == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip


def test_placeholders_in_the_languages_cities_write_in() -> None:
    from analyzer.ingest.boilerplate import find_boilerplate

    texts = ["Sin descripción", "NINGUNO.", "Ver foto", "Sem descrição", "Aucune description",
             "Sin luz en la calle", "ver foto del bache en la esquina"]  # fmt: skip
    assert find_boilerplate(texts, repeated=False).mask.tolist() == [
        True, True, True, True, True, False, False,
    ]  # fmt: skip
