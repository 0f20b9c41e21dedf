"""Turning user errors into rendered diagnostics and exit codes (never a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from kvsl.lang.diagnostics import KvslError
from kvsl.lang.render import render_diagnostics


@contextmanager
def reported_errors(format: str = "human") -> Iterator[None]:
    """Wrap a command body: a KvslError is printed as diagnostics and exits with its code.

    Anything built before the error stays on disk: commands write artifacts atomically.
    """
    try:
        yield
    except KvslError as err:
        text = render_diagnostics(err.diagnostics, format=format, color=sys.stderr.isatty())
        print(text, file=sys.stderr)
        raise typer.Exit(int(err.exit_code)) from None
