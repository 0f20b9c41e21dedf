"""The `kvsl` command line: thin Typer commands that compose the library's functions.

Each command group lives in its own module and registers itself on `app`. Modules that
need torch, transformers or openai import them inside the command body, so `kvsl check`
and `kvsl --help` never pay for them.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kvsl",
    help="KV-cache steering as a language: check, build and run `.kvs` style specs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Registration order is the order of `kvsl --help`.
from kvsl.cli import lang_commands as _lang_commands  # noqa: E402,F401
from kvsl.cli import build_commands as _build_commands  # noqa: E402,F401
from kvsl.cli import run_commands as _run_commands  # noqa: E402,F401
from kvsl.cli import teach_commands as _teach_commands  # noqa: E402,F401
from kvsl.cli import eval_commands as _eval_commands  # noqa: E402,F401


def main() -> None:
    app()
