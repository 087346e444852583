"""A corpus's language from its stop words (analyzer.common.language), and labels of a Spanish
city that carry no Spanish stop word."""

from __future__ import annotations

import pytest

from analyzer.common.language import detect_language, foreign_stop_words, stop_words
from analyzer.themes.labels import describe_classes, extract_terms

SPANISH_DOGS = [
    "Los perros sueltos en el parque son un peligro para los niños.",
    "Hay muchos perros sin correa en la zona de juegos.",
    "Pedimos un área para perros en el parque del barrio.",
    "Los dueños de los perros no recogen los excrementos.",
]
SPANISH_BUSES = [
    "La parada del autobús no tiene marquesina y hay que esperar bajo la lluvia.",
    "El autobús de la línea 27 pasa cada media hora, es muy poco.",
    "Pedimos más frecuencia en la línea de autobús que va al hospital.",
    "La parada del autobús está muy lejos de las casas del barrio.",
]


@pytest.mark.parametrize(
    ("texts", "lang"),
    [
        (["The street light is out again on the corner of my block."], "en"),
        (SPANISH_DOGS, "es"),
        (["A rua está cheia de buracos e ninguém faz nada para consertar."], "pt"),
        (["Les poubelles ne sont pas ramassées depuis une semaine dans notre rue."], "fr"),
        ([], "en"),
        (["12345 !!"], "en"),
    ],
)
def test_language_from_stop_words(texts: list[str], lang: str) -> None:
    assert detect_language(texts) == lang


def test_english_corpus_adds_no_stop_words() -> None:
    assert foreign_stop_words(["Missed trash pickup this morning on my street."]) == frozenset()
    assert {"los", "son", "hay", "para"} <= foreign_stop_words(SPANISH_DOGS)


def test_spanish_labels_and_keywords_have_no_spanish_stop_word() -> None:
    table = extract_terms(SPANISH_DOGS + SPANISH_BUSES)
    out = describe_classes(table, [[0, 1, 2, 3], [4, 5, 6, 7]])
    spanish = stop_words("es")
    assert "perros" in out[0].label and "autobús" in out[1].label
    for described in out:
        words = described.label.replace("(", " ").replace(")", " ").split()
        words += [w for k in described.keywords for w in k.split()]
        assert not [w for w in words if w in spanish], (described.label, described.keywords)


def test_analyze_tells_each_source_s_language() -> None:
    """What `analyze` warns about: a source that is not English gets sentiment from a model
    measured on English only."""
    import pandas as pd

    from analyzer.analysis.pipeline import _languages

    records = pd.DataFrame(
        {
            "source": ["madrid"] * 3 + ["boston"] * 3,
            "text": [
                "hay un bache muy grande en la calle de la escuela",
                "la farola no funciona desde hace una semana y es peligroso",
                "los contenedores están llenos en la plaza",
                "there is a pothole in the middle of the road",
                "the street light has been out for a week",
                "trash has not been picked up on our street",
            ],
        }
    )
    assert _languages(records) == {"boston": "en", "madrid": "es"}
