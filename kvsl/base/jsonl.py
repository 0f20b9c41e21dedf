"""Appending to JSON-lines files so that a kill loses nothing and tears at most one line.

Trace files, the teacher's skip log and the eval's per-example cache all grow one line per
record while a long run may be killed at any moment. `append_jsonl` is the one way kvsl
appends to them; each file's reader skips (or reports) a torn line. `loads` is the one way
kvsl parses JSON that someone else wrote.
"""

from __future__ import annotations

import json
import os
import re
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
    """`json.loads` for what a user or a client wrote: every refusal is a JSONDecodeError.

    The standard decoder recurses once per `[` or `{` and raises RecursionError past
    Python's limit (about a thousand levels): `[[[[...]]]]` in a trace line, a question
    pool, a request body or an LSP message got past every `except ValueError` and ended
    the command with a traceback (or the language server). So did an integer of more than
    4,300 digits (Python's int-from-string limit raises a plain ValueError). Both are
    refused here as the invalid JSON they are, so each reader's own diagnostic reports them.

    >>> loads("[" * 100_000 + "]" * 100_000)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: nested too deeply: line 1 column 1 (char 0)
    >>> loads('{"answer": ' + "7" * 5000 + "}")
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: a number with too many digits: line 1 column 12 (char 11)
    """
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", _shown(text), 0) from None
    except ValueError as err:
        # Python refuses to convert an integer of more than 4,300 digits (a ValueError
        # that is not a JSONDecodeError, so it escaped the same readers)
        shown = _shown(text)
        if "integer string conversion" not in str(err):
            raise
        found = _LONG_DIGITS.search(shown)
        at = found.start() if found else 0
        raise json.JSONDecodeError("a number with too many digits", shown, at) from None


_LONG_DIGITS = re.compile(r"\d{4000,}")


def _shown(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("utf-8", errors="replace")
