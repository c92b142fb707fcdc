"""Command-line interface: thin commands over the Assistant."""

from __future__ import annotations

from . import commands  # noqa: F401  (registers commands)
from .app import app


def _register_optional() -> None:
    """Command modules of other capabilities register themselves when present."""
    import importlib

    for name in ("chat", "serve", "evaluate", "corpus_cmd"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_register_optional()


def main() -> None:
    """Entry point of the `assistant` console script."""
    app()
