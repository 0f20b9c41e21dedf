"""Appending to JSON-lines files so that a kill loses nothing and tears at most one line.

Trace files, the teacher's skip log and the eval's per-example cache all grow one line per
record while a long run may be killed at any moment. `append_jsonl` is the one way kvsl
appends to them; each file's reader skips (or reports) a torn line. `loads` is the one way
kvsl parses JSON that someone else wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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


def loads(text: str | bytes, **options: Any) -> Any:
    """`json.loads` for what a user or a client wrote: nesting too deep is a JSONDecodeError.

    The standard decoder recurses once per `[` or `{` and raises RecursionError past
    Python's limit (about a thousand levels): `[[[[...]]]]` in a trace line, a question
    pool, a request body or an LSP message got past every `except ValueError` and ended
    the command with a traceback (or the language server). Refused here as the invalid
    JSON it is, at the document's start, so each reader's own diagnostic reports it.

    >>> loads("[" * 100_000 + "]" * 100_000)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: nested too deeply: line 1 column 1 (char 0)
    """
    try:
        return json.loads(text, **options)
    except RecursionError:
        shown = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
        raise json.JSONDecodeError("nested too deeply", shown, 0) from None
