"""The Typer application object every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="assistant",
    help=(
        "Literature assistant for liver metastases of gastro-entero-pancreatic neuroendocrine "
        "tumours. It retrieves and cites passages; it does not replace clinical judgement."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
