"""Appending to JSON-lines files so that a kill loses nothing and tears at most one line.

Trace files, the teacher's skip log and the eval's per-example cache all grow one line per
record while a long run may be killed at any moment. `append_jsonl` is the one way kvsl
appends to them; each file's reader skips (or reports) a torn line. `loads` is the one way
kvsl parses JSON that someone else wrote.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from kvsl.base.exclusive import flock


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
    data = "".join(line + "\n" for line in batch).encode("utf-8")
    with locked_file(target, "ab") as out:
        needs_newline = False
        if os.fstat(out.fileno()).st_size > 0:
            with target.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                needs_newline = existing.read(1) != b"\n"
        out.write((b"\n" if needs_newline else b"") + data)
        out.flush()
        os.fsync(out.fileno())


@contextlib.contextmanager
def locked_file(path: str | os.PathLike[str], mode: str) -> Iterator[IO[bytes]]:
    """`path` opened in binary `mode` under an exclusive advisory lock (`flock`), held on
    the file that is at `path` now, until the block ends.

    `append_jsonl` appends under it, and a rewrite of a whole file (the eval cache dropping
    its torn lines) reads and replaces it under it: an appender that opened the file
    before it was replaced finds, once it holds the lock, that the name points at a new
    file, and opens that one, so no appended line goes to the replaced file and is lost.
    """
    target = Path(path)
    for _ in range(100):
        handle = target.open(mode)
        try:
            _lock(handle)
            if _still_at(handle, target):
                yield handle
                return
        finally:
            handle.close()  # also releases the lock
    raise OSError(errno.EAGAIN, "the file kept being replaced while waiting for it", str(target))


def _lock(handle: IO[Any]) -> None:
    flock(handle)  # False without locks (Windows, some network mounts): written unlocked


def _still_at(handle: IO[Any], path: Path) -> bool:
    """Whether `handle` is the file that `path` names now (not one replaced since)."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def dumps(value: Any, **options: Any) -> str:
    r"""`json.dumps(value, ensure_ascii=False, ...)`, always valid Unicode text.

    A path holding bytes that are not UTF-8 reaches Python as surrogate escapes, and a
    string holding one made every UTF-8 writer (a trace file, a report, an artifact's
    manifest) raise UnicodeEncodeError. Such a character is written as its `\uXXXX`
    escape instead, which `loads` reads back as the same string; all other text is
    written exactly as before.

    >>> dumps({"path": "d\udcff/x.kvs", "arrow": "→"})
    '{"path": "d\\udcff/x.kvs", "arrow": "→"}'
    >>> loads(dumps(["d\udcff"]), unicode_only=False) == ["d\udcff"]
    True
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    # Outside its strings JSON text is ASCII, so only a string's own surrogates are escaped.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_lines(text: str) -> list[str]:
    r"""The lines of a JSON-lines text: split at "\n" only (a "\r" before it dropped).

    Not `str.splitlines`, which also splits at U+2028, U+2029, U+0085, \v, \f and \x1c-\x1e:
    `json.dumps(..., ensure_ascii=False)` writes those raw inside a string, so a valid
    record holding one was cut in two invalid lines (and line numbers drifted from the
    editor's).

    >>> text_lines('{"a": "x\u2028y"}\r\n{"b": 1}') == ['{"a": "x\u2028y"}', '{"b": 1}']
    True
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def loads(
    text: str | bytes,
    *,
    unicode_only: bool = True,
    paths: frozenset[str] = frozenset(),
    **options: Any,
) -> Any:
    """`json.loads` for what a user or a client wrote: every refusal is a JSONDecodeError.

    The standard decoder recurses once per `[` or `{` and raises RecursionError past
    Python's limit (about a thousand levels): `[[[[...]]]]` in a trace line, a question
    pool, a request body or an LSP message got past every `except ValueError` and ended
    the command with a traceback (or the language server). So did an integer of more than
    4,300 digits (Python's int-from-string limit raises a plain ValueError). Both are
    refused here as the invalid JSON they are, so each reader's own diagnostic reports them.

    `unicode_only` also refuses a string with a lone surrogate (`"\\ud800"`: valid JSON
    syntax, but no Unicode text): it reached a tokenizer as a TypeError (a 500 from
    `kvsl serve`, a traceback from `kvsl build`) or a UTF-8 writer as UnicodeEncodeError.
    The language server passes False: an editor's text is checked, never tokenized. A
    string under one of the keys `paths` is a file path and may hold one: a name with
    bytes that are not UTF-8 is kept as surrogate escapes (as `dumps` writes it).

    >>> loads("[" * 100_000 + "]" * 100_000)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: nested too deeply: line 1 column 1 (char 0)
    >>> loads('{"answer": ' + "7" * 5000 + "}")
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: a number with too many digits: line 1 column 12 (char 11)
    >>> loads('["ok \\\\ud83d\\\\ude00", "lone \\\\udcff"]')
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: a string with a lone surrogate (not Unicode text): line 1 column 27 (char 26)
    """
    try:
        found = json.loads(text, **options)
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
    if unicode_only:
        _refuse_lone_surrogates(found, text, paths)
    return found


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_HIGH_THEN_LOW = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(found: Any, text: str | bytes, paths: frozenset[str]) -> None:
    """A JSONDecodeError if a string in `found` holds a lone surrogate (pairs are joined by
    the decoder, so any surrogate left is lone), except a string under a key in `paths`;
    only walked when the text escapes one."""
    shown = _shown(text)
    if not _SURROGATE_ESCAPE.search(shown):
        return
    stack = [found]
    while stack:  # iterative: the document may be nested up to the decoder's limit
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(v for k, v in item.items() if not (k in paths and isinstance(v, str)))
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and any("\ud800" <= ch <= "\udfff" for ch in item):
            paired = {m.start() for m in _HIGH_THEN_LOW.finditer(shown)}
            paired |= {at + 6 for at in paired}
            at = next(
                (m.start() for m in _SURROGATE_ESCAPE.finditer(shown) if m.start() not in paired), 0
            )
            raise json.JSONDecodeError("a string with a lone surrogate (not Unicode text)", shown, at)


_LONG_DIGITS = re.compile(r"\d{4000,}")


def _shown(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("utf-8", errors="replace")
