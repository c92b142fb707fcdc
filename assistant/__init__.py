"""Retrieval-backed assistant for liver metastases of GEP neuroendocrine tumours."""

from .assistant import Assistant
from .errors import AssistantError
from .settings import Settings, load_settings
from .types import Answer, Chunk, Document, Filters, Passage

__all__ = [
    "Answer",
    "Assistant",
    "AssistantError",
    "Chunk",
    "Document",
    "Filters",
    "Passage",
    "Settings",
    "load_settings",
]
__version__ = "0.1.0"
