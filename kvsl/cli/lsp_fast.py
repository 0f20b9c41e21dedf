"""`kvsl lsp` without Typer: editors start the server often, so it starts lean.

`kvsl.cli.main` hands a plain `kvsl lsp [--stdio] [--debounce-ms N]` to `fast_lsp` before
building the Typer app (as `kvsl check` does, see `kvsl.cli.check_fast`); anything else
(`--help`, a bad value) falls through to Typer's `lsp` command. Both call `run_lsp`.
"""

from __future__ import annotations

import sys

from kvsl.base.counts import decimal_count
from kvsl.lang.diagnostics import COMMAND_LINE, Diagnostic, ExitCode, Severity
from kvsl.lsp import DEFAULT_DEBOUNCE_MS, MAX_DEBOUNCE_MS


def run_lsp(debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> int:
    """Serve LSP on stdin/stdout until the client exits; KVS900 when pygls is missing."""
    try:
        from kvsl.lsp.server import serve
    except ImportError as err:
        from kvsl.lang.render import render_human

        missing = Diagnostic(
            "KVS900",
            Severity.ERROR,
            f"the language server needs `pygls`, which cannot be imported ({err})",
            COMMAND_LINE,
            help="install it with `pip install 'pygls>=2,<3'` (a dependency of kvsl)",
        )
        print(render_human([missing]), file=sys.stderr)
        return int(ExitCode.ENVIRONMENT)
    return serve(debounce_ms)


def fast_lsp(argv: list[str]) -> int | None:
    """Run `kvsl lsp` for a simple command line, or None to let Typer handle it."""
    debounce = DEFAULT_DEBOUNCE_MS
    args = iter(argv)
    for arg in args:
        if arg == "--stdio":
            continue
        if arg == "--debounce-ms" or arg.startswith("--debounce-ms="):
            value = arg.split("=", 1)[1] if "=" in arg else next(args, "")
            count = decimal_count(value)  # not `isdigit`: "²" is a digit that `int` refuses
            if count is None or count > MAX_DEBOUNCE_MS:
                return None  # Typer's `lsp` command reports it
            debounce = count
            continue
        return None
    return run_lsp(debounce)
