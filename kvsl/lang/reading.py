"""Reading a spec: path → bytes → text, or a coded diagnostic saying why it cannot be one.

Every failure a user can cause (missing, a directory, unreadable, too large, binary, not
UTF-8) comes back as a KVS00x diagnostic with a location; nothing here raises for bad
input. The editor server sends an open buffer through `decode_source` too, so a buffer
is refused for the reasons a file would be.

>>> source, diagnostics = decode_source("s.kvs", b"pairs = 4")
>>> source.text, diagnostics
('pairs = 4', [])
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.source import SourceFile, Span

# A spec is a page of settings (the largest bundled one, with an inline template, is
# under 5 KB); anything bigger is a mistake (a trace file or a model passed by accident).
# The cap also bounds the parser: a file at the cap of the densest kind (a list of
# 128,000 numbers) parses in about a second and 100 MB.
MAX_SPEC_BYTES = 256_000

# `kvsl check -`, `kvsl fmt -` and `kvsl plan -` read a spec from standard input
# (`git show :x.kvs | kvsl check -` in CI); its diagnostics name it STDIN_NAME, as
# Python's own messages do.
STDIN_PATH = "-"
STDIN_NAME = "<stdin>"

# What reading a spec gives: its text, or None and the diagnostics that say why not.
SourceRead = tuple[SourceFile | None, list[Diagnostic]]


def _error(
    code: str,
    message: str,
    span: Span,
    help: str | None = None,
    labels: tuple[Label, ...] = (),
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)


def missing_file(name: str) -> Diagnostic:
    """KVS008 for a spec path that does not exist, with the closest `.kvs` name beside it.

    >>> missing_file("/nonexistent/x.kvs").help
    'check the path: a spec is a `.kvs` file (`kvsl styles` lists the built-in ones)'
    """
    return _error(
        "KVS008",
        f"no such file: `{name}`",
        Span.whole_file(name),
        help=close_file_hint(name, (".kvs",))
        + "check the path: a spec is a `.kvs` file (`kvsl styles` lists the built-in ones)",
    )


def close_file_hint(name: str, suffixes: tuple[str, ...]) -> str:
    """"did you mean `DIR/X`? " for the file beside a missing `name` closest to it, or "".

    Only files ending in one of `suffixes` are offered (`step-by-step.kvs` →
    `step_by_step.kvs`); a missing or unreadable folder offers nothing.
    """
    from difflib import get_close_matches

    folder, base = os.path.split(name)
    try:
        nearby = [n for n in os.listdir(folder or ".") if n.endswith(suffixes)]
    except OSError:
        return ""
    close = get_close_matches(base, nearby, n=1)
    return f"did you mean `{os.path.join(folder, close[0])}`? " if close else ""


# kvsl's binary (or large) files of other kinds, named where a spec goes: say which
# command reads them instead of only "is this the right file?".
_OTHER_KINDS = {
    ".safetensors": "this is a steering-vector artifact: `kvsl inspect` shows it and "
    "`kvsl run` runs it; pass its `.kvs` spec here",
    ".gguf": "this is a model file: name it in a spec's `model = \"...\"`; pass a `.kvs` spec here",
}


def _other_kind(path: str) -> str | None:
    return _OTHER_KINDS.get(os.path.splitext(path)[1].lower())


def load_source(path: str | os.PathLike[str]) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Read a spec file as text, or explain why it cannot be a spec.

    >>> load_source("/nonexistent.kvs")[1][0].code
    'KVS008'
    """
    from kvsl.lang.files import FileProblem, read_regular_file

    name = os.fspath(path)
    whole = Span.whole_file(name)
    try:
        data = read_regular_file(name, MAX_SPEC_BYTES)
    except FileProblem as problem:
        if problem.kind == "missing":
            return None, [missing_file(name)]
        if problem.kind == "directory":
            return None, [
                _error(
                    "KVS002",
                    f"`{name}` is a directory, not a spec file",
                    whole,
                    help="pass a `.kvs` file (`kvsl check` also accepts directories)",
                )
            ]
        if problem.kind == "too-large":
            return None, [
                _error(
                    "KVS005",
                    f"file is too large for a spec ({problem.size:,} bytes, the limit is "
                    f"{MAX_SPEC_BYTES:,})",
                    whole,
                    help=_other_kind(name) or "a spec is a page of settings: is this the right file?",
                )
            ]
        if problem.kind == "unreadable":
            return None, [_error("KVS001", f"cannot read `{name}`: {problem.detail}", whole)]
        return None, [_error("KVS001", f"cannot read `{name}`: it {problem.reason}", whole)]
    return decode_source(name, data)


def standard_input() -> BinaryIO | None:
    """This process's standard input as bytes, or None when it has none (fd 0 closed)."""
    return getattr(sys.stdin, "buffer", None)


def read_stdin(stream: BinaryIO | None) -> SourceRead:
    """A spec read from `stream` (standard input), named `<stdin>`, or why it is none.

    Bounded like a file (KVS005 past `MAX_SPEC_BYTES`, without reading the rest), checked
    for NUL bytes and UTF-8 like a file; nothing at all is KVS022 (the command before the
    `|` usually failed, as `git show` does for a path it does not know).

    >>> import io
    >>> read_stdin(io.BytesIO(b""))[1][0].code, read_stdin(io.BytesIO(b"\\xff"))[1][0].code
    ('KVS022', 'KVS003')
    """
    whole = Span.whole_file(STDIN_NAME)
    try:
        data = stream.read(MAX_SPEC_BYTES + 1) if stream is not None else None
    except (OSError, ValueError) as err:  # ValueError: a closed stream
        detail = (getattr(err, "strerror", None) or str(err) or type(err).__name__).lower()
        return None, [_error("KVS001", f"cannot read standard input: {detail}", whole)]
    if data is None:  # no stream, or a non-blocking one with nothing ready
        return None, [_error("KVS001", "cannot read standard input: there is none to read", whole)]
    if not data:
        return None, [
            _error(
                "KVS022",
                "standard input is empty: no spec to read",
                whole,
                help="`-` reads a spec from a pipe (`git show :specs/x.kvs | kvsl check -`): "
                "did the command before the `|` fail?",
            )
        ]
    if len(data) > MAX_SPEC_BYTES:
        return None, [
            _error(
                "KVS005",
                f"standard input is too large for a spec (over {MAX_SPEC_BYTES:,} bytes)",
                whole,
                help="a spec is a page of settings: is this the right input?",
            )
        ]
    return decode_source(STDIN_NAME, data)


def decode_source(path: str, data: bytes) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Bytes → SourceFile, rejecting binary data and invalid UTF-8 at their position."""
    nul = data.find(b"\0")
    if nul >= 0:
        prefix = SourceFile(path, data[:nul].decode("utf-8", errors="replace"))
        offset = len(prefix.text)
        return None, [
            _error(
                "KVS004",
                "binary file: found a NUL byte",
                prefix.span(offset, offset),
                help=_other_kind(path) or "a spec is UTF-8 text; is this the right file?",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # the text before the bad byte, and the byte itself as one character (so that the
        # span's end is on its line, not clamped back to its start)
        before = data[: err.start].decode("utf-8", errors="replace")
        prefix = SourceFile(path, before + "\ufffd")
        offset = len(before)
        return None, [
            _error(
                "KVS003",
                f"file is not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}",
                prefix.span(offset, offset + 1),
                help="save the file as UTF-8",
            )
        ]
    return SourceFile(path, text), []
