"""Where a teaching run writes: the trace file and its skip log, checked before any request.

Every write goes to these two files only. Both are checked before the first request
(KVS525, KVS526: a folder in the file's place, a parent that is a file, a folder that
cannot be written), without writing anything; a write that still fails mid-run is
reported with the same codes (`output_error(..., mid_run=True)`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.source import Span


def output_error(code: str, what: str, path: Path, reason: str, *, mid_run: bool) -> Diagnostic:
    when = "stopped: " if mid_run else ""
    return Diagnostic(
        code,
        Severity.ERROR,
        f"{when}cannot write the {what} `{path}`: {reason}",
        Span.whole_file(str(path)),
        help="fix the path (the spec's teacher `traces`, or `--traces FILE`) or the folder's "
        "permissions, then rerun"
        + ("" if mid_run else "; nothing was sent")
        + (" (the skip log sits beside the trace file)" if code == "KVS526" else ""),
    )


def unwritable_reason(path: Path) -> str | None:
    """Why `path` cannot be appended to (created, with its folders), or None if it can.

    Checked without writing anything: no empty file, no folder is left behind.
    """
    if path.exists() or path.is_symlink():
        if path.is_dir():
            return "a folder is in its place"
        if not path.is_file():
            return "it is not a regular file"
        if not os.access(path, os.W_OK):
            return "the file is read-only"
        return None
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"`{ancestor}` is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the folder `{ancestor}` is not writable"
    return None


def check_outputs(traces_path: Path, skip_path: Path) -> None:
    """KVS525 / KVS526 (exit 3) when the trace file or its skip log cannot be written."""
    problems = []
    for code, what, path in (
        ("KVS525", "trace file", traces_path),
        ("KVS526", "skip log", skip_path),
    ):
        reason = unwritable_reason(path)
        if reason is not None:
            problems.append(output_error(code, what, path, reason, mid_run=False))
    if problems:
        raise KvslError(problems, ExitCode.ENVIRONMENT)


@contextlib.contextmanager
def one_writer(traces_path: Path) -> Iterator[None]:
    """Hold the trace file's one-writer lock for a run (KVS528 when another run holds it).

    Two runs on one trace file would ask the teacher the same questions, paying twice,
    and append two traces for each."""
    from kvsl.base.exclusive import Busy, exclusive

    try:
        with exclusive(traces_path):
            yield
    except Busy as busy:
        who = f" (process {busy.holder})" if busy.holder else ""
        raise KvslError.one(
            "KVS528",
            f"another `kvsl teach`{who} is writing `{traces_path}`",
            Span.whole_file(str(traces_path)),
            help="let it finish (a later run resumes where it stopped), or stop it first; "
            "to fill two trace files at once, give each run its own `--out`",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
