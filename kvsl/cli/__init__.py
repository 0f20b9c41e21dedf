"""The `kvsl` command line: thin Typer commands that compose the library's functions.

Each command group lives in its own module and registers itself on `app`. Modules that
need torch, transformers or openai import them inside the command body, so `kvsl check`
and `kvsl --help` never pay for them.

`app` is built on first access (`from kvsl.cli import app` works as usual), so that
`main()` can serve a plain `kvsl check ...` without importing Typer at all (see
`kvsl.cli.check_fast`: Typer and pydantic cost more than checking a hundred specs).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    app: typer.Typer

# Registration order is the order of `kvsl --help`.
_COMMAND_MODULES = (
    "lang_commands",
    "build_commands",
    "run_commands",
    "teach_commands",
    "traces_commands",
    "eval_commands",
    "tune_commands",
    "style_commands",
    "lsp_commands",
    "serve_commands",
)


def _build_app() -> typer.Typer:
    import typer

    from kvsl.cli.usage import KvslGroup

    built = typer.Typer(
        cls=KvslGroup,  # Click's parse errors as KVS318 diagnostics
        name="kvsl",
        help="KV-cache steering as a language: check, build and run `.kvs` style specs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    globals()["app"] = built  # before the imports: each module does `from kvsl.cli import app`
    for name in _COMMAND_MODULES:
        importlib.import_module(f"kvsl.cli.{name}")
    return built


def __getattr__(name: str) -> object:
    if name == "app":
        return _build_app()
    raise AttributeError(f"module 'kvsl.cli' has no attribute {name!r}")


_LONG_JOBS = frozenset({"build", "eval", "tune", "teach", "run", "serve"})


def main() -> None:
    from kvsl.base.interrupt import INTERRUPTED, exit_code, stop_on_sigterm
    from kvsl.cli.output import escape_undecodable, guarded

    escape_undecodable()
    if sys.argv[1:2] and sys.argv[1] in _LONG_JOBS:
        # SIGTERM (a job scheduler's stop, `kill PID`) stops a long job as Ctrl-C does, from
        # its start (loading the model) on: exit 143 instead of 130, what is written kept,
        # how to resume, no traceback (kvsl.base.interrupt). `kvsl serve` likewise until
        # it listens, then it stops serving cleanly (exit 0, kvsl.serve.server); the quick
        # commands (`check`, `fmt`) keep the default: they write every file atomically
        # and have nothing to resume.
        stop_on_sigterm()
    try:
        code = guarded(_run)
    except KeyboardInterrupt as interrupt:
        # Ctrl-C outside a long job's own handling (`kvsl check` of a large folder runs
        # without Typer, which would have caught it): exit 130 as a shell expects, no
        # traceback. Nothing is half-written: every file kvsl writes is replaced atomically.
        code = exit_code(interrupt)
        print("interrupted" + (" (SIGTERM)" if code != INTERRUPTED else ""), file=sys.stderr)
    if code == INTERRUPTED and exit_code() != INTERRUPTED:
        # Typer turns any KeyboardInterrupt into a silent 130: a SIGTERM too (one that came
        # before a long job's own handling, while the command loaded its model)
        print("interrupted (SIGTERM)", file=sys.stderr)
        code = exit_code()
    sys.exit(code)


def _run() -> int:
    """The command's exit status (a closed pipe or a full disk: see kvsl.cli.output)."""
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        from kvsl.cli.check_fast import fast_check

        code = fast_check(sys.argv[2:])
        if code is not None:
            return code
    if len(sys.argv) > 1 and sys.argv[1] == "lsp":
        from kvsl.cli.lsp_fast import fast_lsp

        code = fast_lsp(sys.argv[2:])
        if code is not None:
            return code
    from kvsl.cli import app as typer_app

    try:
        typer_app()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0
