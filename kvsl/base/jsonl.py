"""Appending to JSON-lines files so that a kill loses nothing and tears at most one line.

Trace files, the teacher's skip log and the eval's per-example cache all grow one line per
record while a long run may be killed at any moment. `append_jsonl` is the one way kvsl
appends to them; each file's reader skips (or reports) a torn line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def append_jsonl(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """Append each of `lines` (one JSON document each, no newline) as a full line, fsynced.

    The folder is created if needed. A file whose last line was cut short (a kill in the
    middle of a write) gets a newline first, so the torn line stays one bad line instead
    of swallowing the first new record. Nothing is written when `lines` is empty.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = target.write_text('{"a": 1}\\n{"b"')          # torn by a kill
    >>> append_jsonl(target, ['{"c": 3}'])
    >>> target.read_text().splitlines()
    ['{"a": 1}', '{"b"', '{"c": 3}']
    """
    batch = list(lines)
    if not batch:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    needs_newline = False
    if target.exists() and target.stat().st_size > 0:
        with target.open("rb") as existing:
            existing.seek(-1, os.SEEK_END)
            needs_newline = existing.read(1) != b"\n"
    with target.open("a", encoding="utf-8") as out:
        out.write(("\n" if needs_newline else "") + "".join(line + "\n" for line in batch))
        out.flush()
        os.fsync(out.fileno())
