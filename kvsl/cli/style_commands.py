"""`kvsl styles`: the built-in styles, by name, with their spec files (registered on kvsl.cli.app).

The names it prints are what `kvsl build`, `run`, `eval` and `plan` accept in place of a
spec path (see `kvsl.builtin.resolve_target`). Imports nothing heavier than `kvsl.styles`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kvsl.cli import app


@app.command("styles")
def styles_command(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print name, description and spec path as JSON.")
    ] = False,
) -> None:
    """List the built-in styles: the names `kvsl build`, `run`, `eval` and `plan` accept."""
    from dataclasses import asdict

    from kvsl.builtin import builtin_evidence, builtin_specs_dir, builtin_styles

    styles = builtin_styles()
    evidence = builtin_evidence()
    if json_output:
        import json

        rows = [
            {"name": s.name, "description": s.description, "spec": str(s.spec_path)}
            | ({"held_out": asdict(evidence[s.name])} if s.name in evidence else {})
            for s in styles
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max(len(s.name) for s in styles) + 2
    print(f"built-in styles (specs in {builtin_specs_dir()}):\n")
    for style in styles:
        print(f"  {style.name:<{width}}{style.description}")
        print(f"  {'':<{width}}{style.spec_path}")
        if style.name in evidence:
            print(f"  {'':<{width}}{evidence[style.name].line()}")
    print(
        "\nuse a name where a spec goes, e.g. `kvsl run step-by-step --prompt ...`; "
        "copy a spec to change it"
        + ("; held-out figures: docs/style_evidence.md" if evidence else "")
    )
