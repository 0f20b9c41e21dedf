"""`kvsl lsp`: the language server for editors (see docs/editors.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from kvsl.cli import app
from kvsl.cli.lsp_fast import DEFAULT_DEBOUNCE_MS, MAX_DEBOUNCE_MS, run_lsp


@app.command("lsp")
def lsp_command(
    stdio: Annotated[
        bool,
        typer.Option(
            "--stdio",
            help="Talk over stdin/stdout (the only transport; accepted for editors that pass it).",
        ),
    ] = True,
    debounce_ms: Annotated[
        int,
        typer.Option("--debounce-ms", min=0, max=MAX_DEBOUNCE_MS, help="Wait this long after an edit before checking."),
    ] = DEFAULT_DEBOUNCE_MS,
) -> None:
    """Run the language server over stdio: diagnostics, hover, completion, formatting."""
    raise typer.Exit(run_lsp(debounce_ms))
