"""Ingest papers into the corpus: PDF, PubMed and PMC/JATS XML, Markdown and plain text.

Each format has its reader module; `store` normalises what they read into notes in our format
under `<corpus>/added/`, with provenance, and refuses duplicates and unusable files one by one.
"""

from .base import IngestError, Record
from .files import read_file
from .pubmed import PubMedClient, client_from_settings
from .store import AddReport, CorpusStore, Overrides

__all__ = [
    "AddReport",
    "CorpusStore",
    "IngestError",
    "Overrides",
    "PubMedClient",
    "Record",
    "client_from_settings",
    "read_file",
]
