"""CivicPulse core: ingest, privacy, embeddings, themes, sentiment, trends and tagging.

The core imports no web framework; the API and the explorer call it.
"""

__version__ = "0.1.0"
