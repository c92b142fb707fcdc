"""Command-line interface: thin commands over the Assistant."""

from __future__ import annotations

# importing a module registers its commands; this order is the order of `assistant --help`
# isort: off
from . import commands, chat, serve, evaluate, corpus_cmd  # noqa: F401

# isort: on
from .app import app


def main() -> None:
    """Entry point of the `assistant` console script."""
    app()
