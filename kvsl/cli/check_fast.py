"""`kvsl check` without Typer: the body of the command, and a fast path for `main()`.

`kvsl check -` reads one spec from standard input (`git show :x.kvs | kvsl check -`).

`kvsl check` runs on every commit in CI, so its start-up time matters. Typer (with
pydantic, which it imports to coerce parameters) costs about as much as checking a
hundred specs; `kvsl.cli.main` therefore hands a plain `kvsl check [PATH...] [--format F]
[--warnings-as-errors]` command line to `fast_check` before building the Typer app.
Anything else (`--help`, an unknown option, a bad format) falls through to Typer, which
owns the usage messages. Both paths call `run_check`, so their output is the same.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from kvsl.lang.reading import SourceRead

FORMATS = ("human", "json", "github", "sarif")


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def run_check(paths: list[str], format: str, warnings_as_errors: bool) -> int:
    """Check `paths`, print the report to stdout, return the exit status.

    >>> run_check(["/nonexistent.kvs"], "github", False)  # doctest: +ELLIPSIS
    ::error file=/nonexistent.kvs,...
    2
    """
    from kvsl.cli.output import write
    from kvsl.lang import check_paths, exit_code_for, spec_files
    from kvsl.lang.render import render_diagnostics, summary

    targets = paths or ["."]
    stdin, sources = stdin_spec(targets)
    diagnostics = check_paths(targets, stdin)
    stream = sys.stdout
    if diagnostics or format in ("json", "sarif"):
        color = use_color(stream)
        write(render_diagnostics(diagnostics, format=format, color=color, sources=sources))
    if format == "human":
        files, _ = spec_files(targets)
        if diagnostics:
            write("")
        write(summary(diagnostics, len(files)))
    return int(exit_code_for(diagnostics, warnings_as_errors))


def stdin_spec(paths: list[str]) -> tuple[SourceRead | None, dict[str, str]]:
    """The spec on standard input when `paths` has `-` (read once, here), and its text by
    name (`{"<stdin>": text}`) for the snippets of its diagnostics; (None, {}) without `-`."""
    from kvsl.base.interrupt import stop_on_interrupt
    from kvsl.lang.reading import STDIN_NAME, STDIN_PATH, read_stdin, standard_input

    if STDIN_PATH not in paths:
        return None, {}
    with stop_on_interrupt(None):  # Ctrl-C while it waits on a terminal: exit 130, no traceback
        read = read_stdin(standard_input())
    source = read[0]
    return read, ({STDIN_NAME: source.text} if source is not None else {})


def fast_check(argv: list[str]) -> int | None:
    """Run `kvsl check` for a simple command line, or None to let Typer handle it."""
    paths: list[str] = []
    format = "human"
    warnings_as_errors = False
    args = iter(argv)
    only_paths = False
    for arg in args:
        if only_paths or not arg.startswith("-") or arg == "-":
            paths.append(arg)
        elif arg == "--":
            only_paths = True
        elif arg == "--warnings-as-errors":
            warnings_as_errors = True
        elif arg in ("--format", "-f"):
            format = next(args, "")
        elif arg.startswith("--format="):
            format = arg.split("=", 1)[1]
        else:
            return None
        if format not in FORMATS:
            return None
    return run_check(paths, format, warnings_as_errors)
