"""`kvsl traces ...`: trace-file tools (registered on kvsl.cli.app). No torch here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kvsl.base.plurals import counted
from kvsl.cli import app
from kvsl.cli.errors import reported_errors

traces_app = typer.Typer(
    help="Trace files: import the paper's released traces.", no_args_is_help=True
)
app.add_typer(traces_app, name="traces")


@traces_app.command("import")
def import_command(
    sources: Annotated[
        list[Path],
        typer.Argument(help="The paper's JSONL trace files (`query`, `steps`, `solution`)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The kvsl trace file to write.")],
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Keep the first N traces.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace `--out` if it exists.")] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Leave bad records out (one warning) instead of failing.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count; write nothing.")
    ] = False,
) -> None:
    """Validate trace files in the paper's format and write them as one kvsl trace file.

    `kvsl traces import gsm8k_oai.jsonl --out specs/traces/gsm8k.jsonl --limit 400`.
    Specs may also name the paper's files directly as `traces`; importing gives them kvsl
    ids and drops repeated questions.
    """
    with reported_errors():
        from rich.console import Console

        from kvsl.formats.trace_import import import_traces
        from kvsl.lang.render import render_diagnostics

        result = import_traces(
            sources, out, limit=limit, force=force, skip_bad=skip_bad, dry_run=dry_run
        )
        console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
        if result.warnings:
            console.print(render_diagnostics(result.warnings, format="human", color=False))
        verb = "would write" if dry_run else "wrote"
        console.print(f"{verb} {counted(result.written, 'trace')} to {result.out}")
        if not dry_run:
            print(result.out)
