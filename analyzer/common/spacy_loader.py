"""Loading the spaCy pipeline without importing every package that advertises a spaCy component.

spaCy looks up third-party component factories through the ``spacy_factories`` entry point group
and imports every package listed there when it builds a pipeline. Presidio (the privacy
benchmark's baseline) registers one, and importing it took 4.3 of the 7.5 s that
``civicpulse ingest`` spent on a day's 300 requests. The packaged en_core_web_sm uses only
spaCy's built-in components, so the lookup is skipped; a pipeline that does need a third-party
component (a city's own model) is loaded again with the lookup on.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_pipeline"]


def load_pipeline(name: str, **kwargs: Any) -> Any:
    """``spacy.load(name, **kwargs)``, importing third-party component packages only if needed."""
    import spacy
    from spacy.util import registry

    factories = registry._entry_point_factories
    previous = factories.entry_points
    factories.entry_points = False
    try:
        return spacy.load(name, **kwargs)
    except ValueError:  # E002 "can't find factory": the pipeline needs a third-party component
        factories.entry_points = previous
        return spacy.load(name, **kwargs)
    finally:
        factories.entry_points = previous
