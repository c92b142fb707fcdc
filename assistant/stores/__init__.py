"""Stores: where an index's chunks are searched (local files by default, or Milvus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Ranked, Store, recorded_kind
from .local import LocalStore

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["LocalStore", "Ranked", "Store", "open_store", "recorded_kind"]


def open_store(settings: Settings) -> Store:
    """The store the settings select (`store`); Milvus is imported only when selected."""
    if settings.store == "milvus":
        from .milvus import MilvusStore

        return MilvusStore(settings)
    return LocalStore()
