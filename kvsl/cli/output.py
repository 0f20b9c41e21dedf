"""Writing a command's report: a closed pipe ends quietly, a full disk is KVS019.

`kvsl check --format json specs | head -1` closes the pipe after one line, and
`kvsl plan spec.kvs > /dev/full` cannot write at all. Both used to end in a traceback
(and a full disk in exit 1, as if the spec had errors). Every front-end command prints
through `write`, and `main()` runs the command inside `guarded`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import TextIO

from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import ExitCode, KvslError
from kvsl.lang.source import Span

OUTPUT = Span.whole_file("<output>")
# Errors of a write that cannot succeed: no space, over quota, file too large, I/O error.
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


class OutputClosed(Exception):
    """The reader of our standard output went away (a closed pipe)."""


def write(text: str, stream: TextIO | None = None, end: str = "\n") -> None:
    """Print `text` and `end` to `stream` (stdout) and flush it now, so that a
    failure is seen here (as OutputClosed or KVS019) and not at interpreter exit."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream, end=end)
        stream.flush()
    except BrokenPipeError:
        raise OutputClosed from None
    except OSError as err:
        raise output_error(err) from None


def output_error(err: OSError, where: str = "the output") -> KvslError:
    """KVS019: a report or a file could not be written (a full disk, an I/O error)."""
    reason = (err.strerror or type(err).__name__).lower()
    return KvslError.one(
        "KVS019",
        f"cannot write {where}: {reason}",
        OUTPUT if where == "the output" else Span.whole_file(where.strip("`")),
        help="free some space or write somewhere else; nothing was lost",
        exit_code=ExitCode.ENVIRONMENT,
    )


def path_error(err: OSError) -> KvslError:
    """KVS319: the operating system refused the path `err` names; a name too long for the
    file system is the user's to shorten (exit 2), anything else is the environment's (3)."""
    name = os.fsdecode(err.filename)
    shown = name if len(name) <= 80 else f"{name[:48]}…{name[-24:]} ({counted(len(name), 'character')})"
    reason = (err.strerror or type(err).__name__).lower()
    too_long = err.errno == errno.ENAMETOOLONG
    return KvslError.one(
        "KVS319",
        f"cannot use `{shown}`: {reason}",
        Span.whole_file(shown),
        help="use a shorter path" if too_long else "check the path and its folders' permissions",
        exit_code=ExitCode.USAGE if too_long else ExitCode.ENVIRONMENT,
    )


def _silence(stream: TextIO) -> None:
    """Point `stream`'s descriptor at /dev/null, so the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def escape_undecodable() -> None:
    """Print what the output's encoding cannot hold backslash-escaped instead of failing.

    A file name with bytes that are not UTF-8 reaches Python as surrogate escapes
    (`bad\\udcff.kvs`), and a C locale's ASCII output cannot hold "…": printing either to a
    strict stream raised UnicodeEncodeError, a traceback after the work was done (`kvsl
    fmt DIR` had already rewritten the file it was naming)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:  # replaced by a caller (a test runner's capture)
            continue
        with contextlib.suppress(OSError, ValueError):  # a closed or detached stream
            reconfigure(errors="backslashreplace")


def guarded(command: Callable[[], int | None]) -> int:
    """Run `command` (which returns an exit status) with the output failures handled.

    A closed pipe exits 3 (the report did not reach its reader) without a word; a write
    error prints KVS019 on stderr and exits 3.
    """
    try:
        code = command()
    except (OutputClosed, BrokenPipeError):
        _silence(sys.stdout)
        return int(ExitCode.ENVIRONMENT)
    except OSError as err:
        if err.errno not in UNWRITABLE:
            if err.filename is None:
                raise
            # The system refused a path a user named (a name too long for the file system,
            # a folder without search permission) wherever a command first touched it.
            refused = path_error(err)
            _report(refused)
            return int(refused.exit_code)
        # A report printed without `write` (a rich table, `print`) to a full disk: the same
        # KVS019 as through `write`, naming the file when the error names one.
        where = f"`{err.filename}`" if isinstance(err.filename, str) else "the output"
        _silence(sys.stdout)
        _report(output_error(err, where))
        return int(ExitCode.ENVIRONMENT)
    except KvslError as err:
        if any(d.code == "KVS019" for d in err.diagnostics):
            _silence(sys.stdout)
        _report(err)
        return int(err.exit_code)
    try:
        if not sys.stdout.closed:  # a command that served over stdout (`kvsl lsp`) closed it
            sys.stdout.flush()
    except BrokenPipeError:
        _silence(sys.stdout)
        return int(ExitCode.ENVIRONMENT)
    except OSError as err:
        _silence(sys.stdout)
        _report(output_error(err))
        return int(ExitCode.ENVIRONMENT)
    return int(code or 0)


def _report(err: KvslError) -> None:
    from kvsl.lang.render import render_diagnostics

    try:
        print(render_diagnostics(err.diagnostics), file=sys.stderr)
        sys.stderr.flush()
    except OSError:
        _silence(sys.stderr)
