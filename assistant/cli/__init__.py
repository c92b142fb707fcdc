"""Command-line interface: thin commands over the Assistant."""

from __future__ import annotations

# importing a module registers its commands; this order is the order of `assistant --help`
# isort: off
from . import commands, chat, serve, evaluate, corpus_cmd  # noqa: F401

# isort: on
import sys

from .app import app

# options whose value may be left out, and the value they then take (`index --ray [ADDRESS]`);
# Typer has no optional option values, so the command line is completed before it parses it
OPTIONAL_VALUES = {"--ray": "local"}


def complete_optional_values(args: list[str]) -> list[str]:
    """`args` with the implied value after an OPTIONAL_VALUES option given without one."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg in OPTIONAL_VALUES and "--" not in args[:i]:
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or following.startswith("-"):
                out.append(OPTIONAL_VALUES[arg])
    return out


def main() -> None:
    """Entry point of the `assistant` console script."""
    app(args=complete_optional_values(sys.argv[1:]))
