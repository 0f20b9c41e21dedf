"""LSP's base protocol framing, read so that one broken message costs that message only.

A message is a header block (`Name: value` lines, then an empty line) whose
`Content-Length` gives the body's length in bytes. pygls's reader (2.1) trusts every
frame: a header block without `Content-Length` makes it read the body as header lines,
where the body (JSON ends without a newline) swallows the next message's header, and so
on for every later message: the server goes deaf for the rest of the session, silently.
A lower-case `content-length` (header names are case-insensitive, as in HTTP) is lost
the same way, and a `Content-Length` of a terabyte waits for ever.

`FrameReader.next` returns each body, or a `Garbled` that the server answers with
JSON-RPC's parse error (-32700, id null), and then finds the next message: a header glued
to the end of a lost body (`...}Content-Length: 52`) is where the stream starts again.
Bytes skipped after a `Garbled` are part of the same loss and are not reported again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from kvsl.base.counts import OVER, decimal_count

MAX_BODY = 1 << 28  # bytes; a 256 MiB message is not an edit of a spec
MAX_LINE = 1 << 16  # bytes of a header line kept while looking for its end
_GLUE = 64  # bytes kept of an over-long line: a glued `Content-Length: N` fits in them
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*\r?\n")
_LENGTH_AT_END = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n\Z", re.IGNORECASE)
_NAME = b"content-length"
_LENGTH_LINE = re.compile(rb"content-length[ \t]*:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)


@dataclass(frozen=True)
class Garbled:
    """Bytes that are not a message; `reason` says why (for the parse error's text)."""

    reason: str


class FrameReader:
    """Message bodies from a byte stream (stdin), resynchronising after broken frames."""

    def __init__(self, stream: BinaryIO, max_body: int = MAX_BODY) -> None:
        self._stream = stream
        self._max_body = max_body
        self._buffer = bytearray()
        self._eof = False
        self._lost = False  # skipping the rest of a message already reported as Garbled

    def next(self) -> bytes | Garbled | None:
        """The next body, a Garbled for a broken message, or None at the end of the stream."""
        length: int | None = None
        problem: str | None = None
        in_headers = False
        while True:
            line = self._readline()
            if line is None:
                return None
            if not line.strip(b"\r\n"):  # the empty line: the header block ends (or none began)
                if not in_headers:
                    continue  # blank lines between messages cost nothing
                if problem is None and length is None:
                    problem = "a message without a Content-Length header"
                elif problem is None and length is not None and length > self._max_body:
                    shown = f"{length}" if length < OVER else "of more than 18 digits"
                    problem = f"Content-Length {shown} is over the limit of {self._max_body} bytes"
                if problem is not None:
                    return self._garbled(problem)
                assert length is not None
                body = self._read(length)
                if body is None:
                    return None
                self._lost = False
                return body
            glued = _LENGTH_AT_END.search(line)
            header = _HEADER.fullmatch(line) if glued is None or glued.start() == 0 else None
            if header is not None:
                in_headers = True
                if header[1].lower() == b"content-length":
                    length = decimal_count(header[2])
                    if length is None:
                        problem = f"Content-Length {header[2][:40]!r} is not a number of bytes"
                continue
            # Not a header line: the body of a broken message, perhaps with the next
            # message's header glued to its end (a body ends without a newline).
            if glued is not None and glued.start() > 0:
                self._buffer[:0] = line[glued.start() :]
            length, problem, in_headers = None, None, False
            if not self._lost:
                return self._garbled("bytes that are not a message (no header before them)")

    def resync(self, body: bytes) -> None:
        """`body` (the last `next` gave) was not a message: skip the rest of it.

        A Content-Length longer than its body took in the next message's header, or the
        start of it: read on from that header, so the next message is not lost too. What
        follows a body cut short (a client that counted characters, not bytes) is skipped
        without a second report.
        """
        self._lost = True
        glued = _LENGTH_LINE.search(body, 1)
        if glued is not None:
            self._buffer[:0] = body[glued.start() :]
            return
        # the body may end inside the next header's name (`...}Content-Le`)
        tail = body[-len(_NAME) :].lower()
        for start in range(len(tail)):
            if _NAME.startswith(tail[start:]):
                self._buffer[:0] = body[len(body) - len(tail) + start :]
                return

    def _garbled(self, reason: str) -> Garbled:
        self._lost = True
        return Garbled(reason)

    def _fill(self) -> bool:
        """Read what the stream has (at least one byte); False at its end."""
        if self._eof:
            return False
        read1 = getattr(self._stream, "read1", None)
        chunk = read1(1 << 16) if read1 is not None else self._stream.read(1)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _readline(self) -> bytes | None:
        """One line with its newline; the head of an over-long one; None at the end."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > MAX_LINE:
                head = bytes(self._buffer[:-_GLUE])
                del self._buffer[:-_GLUE]
                return head
            if not self._fill():
                if not self._buffer:
                    return None
                rest = bytes(self._buffer)
                self._buffer.clear()
                return rest

    def _read(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            if not self._fill():
                return None
        body = bytes(self._buffer[:n])
        del self._buffer[:n]
        return body
