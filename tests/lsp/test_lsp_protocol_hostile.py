"""Hostile JSON-RPC to the real `kvsl lsp` over stdio, written byte by byte (a well-behaved
client such as pygls's cannot send these). Two classes:

- a request whose params do not fit its method (none, a list, a negative position, a line
  past 2^31): pygls showed an "Error in server" pop-up and never answered, so the client
  waited for ever; now every one gets JSON-RPC's invalid-params error (-32602);
- a request about a document the client has not opened (a file that does not exist, a URI
  that is not a file): every document request the server offers answered with an internal
  error and a traceback in the client's log; now it answers empty, quietly.

Each is followed by a valid request, which must still be answered. A body that is not
JSON (or not UTF-8) gets JSON-RPC's parse error (-32700, id null), one that is not a
JSON-RPC 2.0 object its invalid-request error (-32600), never an "Error in server" pop-up;
a broken frame (no Content-Length, a wrong one, junk between frames) costs that frame
only (the framing itself: test_lsp_framing.py). Every read has a
deadline, and the server must end with status 0 on `shutdown` and `exit`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kvsl.lsp.server import _FEATURES

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0  # seconds for any one answer (a cold start on a busy machine included)
OPEN_URI = "file:///kvsl-test/open.kvs"


class RawClient:
    """Frames written by hand to a `kvsl lsp` subprocess; messages read with deadlines."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.buffer = b""
        self.seen: list[dict[str, Any]] = []
        self.next_id = 1000

    def send(self, message: dict[str, Any] | None = None, *, body: bytes | None = None) -> None:
        data = json.dumps(message).encode() if body is None else body
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.process.stdin.flush()

    def request(self, method: str, params: Any = None, *, with_params: bool = True) -> dict:
        """Send a request and return its answer (a result or an error), within DEADLINE."""
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if with_params:
            message["params"] = params
        self.send(message)
        return self.answer(self.next_id)

    def answer(self, request_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while True:
            for message in self.seen:
                if message.get("id") == request_id and "method" not in message:
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise AssertionError(f"no answer to request {request_id}")
            self._read(left)

    def _read(self, timeout: float) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], min(timeout, 0.5))
        if ready:
            self.buffer += os.read(self.process.stdout.fileno(), 1 << 16)
        while b"\r\n\r\n" in self.buffer:
            head, rest = self.buffer.split(b"\r\n\r\n", 1)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            if len(rest) < length:
                return
            self.seen.append(json.loads(rest[:length]))
            self.buffer = rest[length:]

    def logs(self) -> list[str]:
        return [
            m["params"]["message"]
            for m in self.seen
            if m.get("method") in ("window/logMessage", "window/showMessage")
        ]


@contextmanager
def raw_session() -> Iterator[RawClient]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kvsl", "lsp"], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = RawClient(process)
    try:
        client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": OPEN_URI, "languageId": "kvsl", "version": 1,
                             "text": 'style "s" {\n  description = "d"\n}\n'}}})  # fmt: skip
        yield client
        client.request("shutdown", with_params=False)
        client.send({"jsonrpc": "2.0", "method": "exit"})
        assert process.wait(timeout=DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()


def _alive(client: RawClient) -> None:
    """A valid request on the open document is still answered with a result."""
    answer = client.request("textDocument/documentSymbol", {"textDocument": {"uri": OPEN_URI}})
    assert answer.get("result"), answer


def _params(method: str, uri: str) -> dict[str, Any]:
    """Valid params of each document request (each reads the fields it needs)."""
    zero = {"line": 0, "character": 0}
    params: dict[str, Any] = {
        "textDocument": {"uri": uri},
        "position": zero,
        "range": {"start": zero, "end": {"line": 9, "character": 0}},
        "options": {"tabSize": 2, "insertSpaces": True},
    }
    if method == "textDocument/codeAction":
        params["context"] = {"diagnostics": []}
    return params


DOCUMENT_REQUESTS = [
    name for name, _, _ in _FEATURES
    if name.startswith("textDocument/") and not name.startswith("textDocument/did")
]  # fmt: skip


def test_every_document_request_is_found() -> None:
    assert {"textDocument/hover", "textDocument/completion", "textDocument/formatting"} <= set(
        DOCUMENT_REQUESTS
    )


BAD_PARAMS = [
    ("textDocument/hover", None, False),  # no params at all
    ("textDocument/hover", [1, 2], True),
    ("textDocument/hover", {"textDocument": {"uri": OPEN_URI},
                            "position": {"line": -1, "character": -5}}, True),
    ("textDocument/completion", {"textDocument": {"uri": OPEN_URI},
                                 "position": {"line": 2**31, "character": 0}}, True),
    ("textDocument/formatting", {"textDocument": {"uri": OPEN_URI}}, True),  # no options
    ("textDocument/definition", {"textDocument": "open.kvs", "position": {}}, True),
]  # fmt: skip


def test_requests_with_params_that_do_not_fit_get_invalid_params_and_the_server_goes_on() -> None:
    with raw_session() as client:
        for method, params, with_params in BAD_PARAMS:
            answer = client.request(method, params, with_params=with_params)
            assert answer.get("error", {}).get("code") == -32602, (method, params, answer)
            _alive(client)
        assert not [log for log in client.logs() if "Error in server" in log], client.logs()


@pytest.mark.parametrize("uri", ["file:///kvsl-test/never-opened.kvs", "http://example.com/a.kvs"])
def test_requests_on_a_document_that_is_not_open_answer_empty_without_an_error(uri: str) -> None:
    with raw_session() as client:
        for method in DOCUMENT_REQUESTS:
            answer = client.request(method, _params(method, uri))
            empty = (None, [], {"data": []})  # no hover, no items, no tokens
            assert "error" not in answer and answer.get("result") in empty, (method, answer)
        for method in ("didChange", "didSave", "didClose"):  # notifications: no answer, no error
            client.send({"jsonrpc": "2.0", "method": f"textDocument/{method}", "params": {
                "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "x"}]}})
        _alive(client)
        assert not [log for log in client.logs() if "error" in log.lower()], client.logs()[:1]


def test_a_document_whose_uri_is_percent_encoded_is_open() -> None:
    """Editors quote a path with spaces (`My%20Specs`); pygls files it unquoted."""
    uri = "file:///kvsl-test/My%20Specs/a%2Bb.kvs"
    with raw_session() as client:
        client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "kvsl", "version": 1,
                             "text": 'style "s" {\n  description = "d"\n}\n'}}})  # fmt: skip
        answer = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
        assert answer.get("result"), answer
        hover = client.request("textDocument/hover", _params("textDocument/hover", uri)
                               | {"position": {"line": 1, "character": 4}})  # fmt: skip
        assert hover.get("result") and "description" in json.dumps(hover["result"]), hover


def _errors(client: RawClient) -> list[dict[str, Any]]:
    return [m for m in client.seen if "error" in m and "method" not in m]


@pytest.mark.parametrize(
    ("body", "code", "msg_id"),
    [
        (b"{not json", -32700, None),
        (b'{"jsonrpc": "2.0", "method": "x", "params": "\xff\xfe"}', -32700, None),  # not UTF-8
        (b"", -32700, None),
        (b"[" * 100_000 + b"]" * 100_000, -32700, None),  # RecursionError ended the server
        (b"[1, 2]", -32600, None),
        (b"7", -32600, None),
        (b'{"id": 5, "method": "shutdown"}', -32600, 5),  # no "jsonrpc"
        (b'{"jsonrpc": "1.0", "id": "a", "method": "shutdown"}', -32600, "a"),
    ],
)
def test_bodies_that_are_not_a_json_rpc_object_are_answered_as_json_rpc_says(
    body: bytes, code: int, msg_id: object
) -> None:
    """pygls showed each in an "Error in server" pop-up and answered nothing."""
    with raw_session() as client:
        client.send(body=body)
        _alive(client)
        assert [(e["error"]["code"], e["id"]) for e in _errors(client)] == [(code, msg_id)]
        assert not [m for m in client.seen if m.get("method") == "window/showMessage"]


REQUEST = b'{"jsonrpc": "2.0", "id": 5, "method": "textDocument/documentSymbol", ' + (
    b'"params": {"textDocument": {"uri": "%s"}}}' % OPEN_URI.encode()
)
BROKEN_FRAMES = {
    # a header block without Content-Length: pygls read the body as header lines, it
    # swallowed the next header, and every later message was lost
    "no Content-Length": b"Content-Type: application/json\r\n\r\n" + REQUEST,
    "no header at all": REQUEST,
    "Content-Length not a number": b"Content-Length: many\r\n\r\n" + REQUEST,
    "Content-Length of a terabyte": b"Content-Length: 1000000000000\r\n\r\n" + REQUEST,
    "Content-Length short": b"Content-Length: 20\r\n\r\n" + REQUEST,
    "junk line": b"hello\r\n",
}


@pytest.mark.parametrize("kind", sorted(BROKEN_FRAMES))
def test_a_broken_frame_gets_one_parse_error_and_the_next_request_its_answer(kind: str) -> None:
    with raw_session() as client:
        assert client.process.stdin is not None
        client.process.stdin.write(BROKEN_FRAMES[kind])
        client.process.stdin.flush()
        _alive(client)
        assert [(e["error"]["code"], e["id"]) for e in _errors(client)] == [(-32700, None)]
        assert not [m for m in client.seen if m.get("id") == 5]  # the broken one is not run
        assert not [m for m in client.seen if m.get("method") == "window/showMessage"]


def test_header_names_are_read_in_any_case() -> None:
    """`content-length` is the same header (names are case-insensitive): pygls lost it."""
    with raw_session() as client:
        assert client.process.stdin is not None
        client.process.stdin.write(b"content-length:%d\r\n\r\n" % len(REQUEST) + REQUEST)
        client.process.stdin.flush()
        assert client.answer(5).get("result"), client.seen
        _alive(client)
