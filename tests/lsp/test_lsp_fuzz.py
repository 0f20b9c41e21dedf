"""Fuzzing the language server: byte streams to its framing, and edits and requests to a
real `kvsl lsp` over stdio.

- `FrameReader` never raises on any bytes, ends, and returns well-framed bodies exactly;
- a real server gets documents (damaged specs, any text) and every document request at
  any position, and JSON-RPC of any shape: it answers each request (a result, or one of
  JSON-RPC's errors for a malformed one), logs no internal error, and still answers a
  valid request after each. `KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_settings import fuzz
from hostile_data import json_values, mutated
from hypothesis import given
from hypothesis import strategies as st
from test_lsp_protocol_hostile import DOCUMENT_REQUESTS, OPEN_URI, RawClient, raw_session

from kvsl.lsp.framing import FrameReader, Garbled

ROOT = Path(__file__).resolve().parents[2]
SPECS = [p.read_bytes()[:3000] for p in sorted((ROOT / "specs").glob("*.kvs"))]
JSON_RPC_ERRORS = {-32700, -32600, -32601, -32602, -32603, -32800, -32002}


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


bodies = st.binary(max_size=60).filter(lambda b: not b.startswith(b"Content-Length"))
junk = st.one_of(
    st.binary(max_size=30),
    st.sampled_from([b"Content-Length: \xb2\r\n\r\n", b"Content-Length: -1\r\n\r\n",
                     b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", b"\r\n\r\n",
                     b"Content-Type: x\r\n", b"Content-Length: 5\r\n\r\n{}"]),
)  # fmt: skip


@fuzz(100)
@given(st.lists(st.one_of(bodies.map(_frame), junk), max_size=6), st.integers(1, 50))
def test_the_framing_never_raises_and_ends(parts: list[bytes], max_body: int) -> None:
    reader = FrameReader(io.BytesIO(b"".join(parts)), max_body=max_body)
    for _ in range(10_000):  # bounded: each call consumes input or ends
        frame = reader.next()
        if frame is None:
            return
        assert isinstance(frame, bytes | Garbled)
        if isinstance(frame, bytes):
            reader.resync(frame)  # as the server does for a body it cannot read
    raise AssertionError("the reader did not end")


@fuzz(60)
@given(st.lists(bodies, max_size=6))
def test_well_framed_bodies_come_back_exactly(parts: list[bytes]) -> None:
    reader = FrameReader(io.BytesIO(b"".join(_frame(p) for p in parts)))
    assert [reader.next() for _ in parts] == parts
    assert reader.next() is None


@pytest.fixture(scope="module")
def client() -> Iterator[RawClient]:
    with raw_session() as session:
        yield session
        internal = [log for log in session.logs() if "internal error" in log]
        assert not internal, internal[0]


texts = st.one_of(
    st.sampled_from(SPECS).flatmap(mutated).map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
)
positions = st.fixed_dictionaries({
    "line": st.one_of(st.integers(0, 40), st.sampled_from([-1, 2**31, 2**31 - 1])),
    "character": st.one_of(st.integers(0, 120), st.sampled_from([-1, 2**31 - 1])),
})  # fmt: skip


def _params(method: str, uri: str, position: dict[str, int], end: dict[str, int]) -> dict:
    params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": position,
                              "range": {"start": position, "end": end},
                              "options": {"tabSize": 2, "insertSpaces": True}}  # fmt: skip
    if method == "textDocument/codeAction":
        params["context"] = {"diagnostics": []}
    return params


def _answered(client: RawClient, answer: dict[str, Any]) -> None:
    error = answer.get("error")
    assert error is None or error.get("code") in JSON_RPC_ERRORS, answer
    alive = client.request("textDocument/documentSymbol", {"textDocument": {"uri": OPEN_URI}})
    assert alive.get("result"), alive


@fuzz(25)
@given(texts, st.sampled_from(DOCUMENT_REQUESTS), positions, positions, st.booleans())
def test_every_request_on_any_document_is_answered(
    client: RawClient, text: str, method: str, at: dict, end: dict, change: bool
) -> None:
    uri = "file:///kvsl-fuzz/doc.kvs"
    if change:
        client.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": text}]}})  # fmt: skip
    else:
        client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "kvsl", "version": 1, "text": text}}})  # fmt: skip
    _answered(client, client.request(method, _params(method, uri, at, end)))


@fuzz(25)
@given(
    st.sampled_from([*DOCUMENT_REQUESTS, "initialize", "shutdown", "workspace/executeCommand",
                     "$/cancelRequest", "no/such", ""]),
    json_values(8),
    # Not a count: the client numbers its own requests 1001, 1002, ... and takes the first
    # answer with that id, which an earlier example's answer must not be.
    st.one_of(st.integers(max_value=-1), st.text(max_size=5),
              json_values(2).filter(lambda v: not (isinstance(v, int) and v >= 0))),
)  # fmt: skip
def test_json_rpc_of_any_shape_is_answered_and_the_server_goes_on(
    client: RawClient, method: str, params: Any, request_id: Any
) -> None:
    if method == "shutdown":
        method = "shutdown/not"  # the real one ends the session the other examples share
    client.send(body=json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                 "params": params}).encode("utf-8", "surrogatepass"))  # fmt: skip
    _answered(client, {})
