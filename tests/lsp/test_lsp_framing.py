"""LSP's base-protocol framing (kvsl/lsp/framing.py): one broken frame costs that frame only.

pygls's reader lost every later message after a header block without `Content-Length`
(the body swallowed the next header, and so on) and after a lower-case header name. The
class of defect: any corruption of one frame must leave every later valid frame readable,
in order, with one `Garbled` (answered -32700 by the server) for the corruption. Checked
over every corruption kind at every position of a short stream, with the server's own
rule (a body that is not JSON makes the reader `resync`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from kvsl.lsp.framing import MAX_BODY, FrameReader, Garbled


def _body(i: int) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": i, "method": "x/é", "params": {"t": "ü" * i}}
    ).encode()


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


Corruption = Callable[[bytes], bytes]
CORRUPTIONS: dict[str, Corruption] = {
    "no header at all": lambda body: body,
    "a header block without Content-Length": lambda body: b"Content-Type: x\r\n\r\n" + body,
    "a pretty-printed body without a header": lambda body: json.dumps(
        json.loads(body), indent=2
    ).encode(),
    "Content-Length not a number": lambda body: b"Content-Length: ten\r\n\r\n" + body,
    "Content-Length over the limit": lambda body: (
        b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1) + body
    ),
    "Content-Length counted short": lambda body: (
        b"Content-Length: %d\r\n\r\n" % (len(body) - 7) + body
    ),
    "Content-Length counted short (characters, not bytes)": lambda body: (
        b"Content-Length: %d\r\n\r\n" % len(body.decode("unicode_escape"))
        + body.decode("unicode_escape").encode()
    ),
    "Content-Length long by 9 (into the next header)": lambda body: (
        b"Content-Length: %d\r\n\r\n" % (len(body) + 9) + body
    ),
    "Content-Length long by 30 (past the next header)": lambda body: (
        b"Content-Length: %d\r\n\r\n" % (len(body) + 30) + body
    ),
    "a junk line": lambda body: b"hello\r\n",
    "a NUL and binary junk": lambda body: b"\x00\xff\xfe\x00garbage",
    "a header line without its end": lambda body: b"Content-Len",
}


def _read_all(data: bytes) -> list[bytes | Garbled]:
    """Every outcome of the reader, as the server drives it (resync after a non-JSON body)."""
    reader = FrameReader(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    found: list[bytes | Garbled] = []
    for _ in range(100):  # bounded
        frame = reader.next()
        if frame is None:
            return found
        found.append(frame)
        if isinstance(frame, bytes):
            try:
                json.loads(frame)
            except ValueError:
                reader.resync(frame)
    raise AssertionError("the reader did not reach the end of a short stream")


def test_valid_frames_come_through_with_header_names_in_any_case_and_blank_lines_between() -> None:
    bodies = [_body(i) for i in range(4)]
    data = (
        _frame(bodies[0])
        + b"content-length: %d\r\n\r\n" % len(bodies[1]) + bodies[1]
        + b"\r\n"  # a stray blank line between messages
        + b"CONTENT-LENGTH:%d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
        % len(bodies[2]) + bodies[2]
        + b"Content-Length: %d\n\n" % len(bodies[3]) + bodies[3]  # bare newlines
    )  # fmt: skip
    assert _read_all(data) == bodies


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        (kind, where)
        for kind in sorted(CORRUPTIONS)
        for where in (0, 1, 3)
        if not (where == 3 and "long" in kind)  # a last frame counted long waits for ever
    ],
)
def test_one_corrupt_frame_costs_that_frame_only(kind: str, where: int) -> None:
    bodies = [_body(i) for i in range(4)]
    frames = [_frame(b) for b in bodies]
    frames[where] = CORRUPTIONS[kind](bodies[where])
    found = _read_all(b"".join(frames))
    valid = [f for f in found if isinstance(f, bytes) and f in bodies]
    assert valid == [b for i, b in enumerate(bodies) if i != where], (kind, found)
    lost = [f for f in found if f not in bodies]
    # one report of the loss: a Garbled from the reader or a body that is not JSON
    assert len(lost) == 1, (kind, lost)


def test_a_huge_content_length_is_refused_at_once_without_reading_it() -> None:
    reader = FrameReader(io.BufferedReader(io.BytesIO(b"Content-Length: 99999999999999\r\n\r\n")))  # type: ignore[arg-type]
    found = reader.next()
    assert isinstance(found, Garbled) and "over the limit" in found.reason
    assert reader.next() is None


def test_an_endless_line_without_a_newline_is_read_in_bounded_pieces() -> None:
    junk = b"x" * (3 << 16)
    body = _body(1)
    found = _read_all(junk + _frame(body))
    assert found[-1] == body and sum(isinstance(f, Garbled) for f in found) == 1
