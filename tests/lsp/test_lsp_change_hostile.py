"""Hostile `textDocument/didChange` notifications to the real `kvsl lsp`, written by hand.

A notification gets no answer, so a change the server cannot apply must cost nothing but
itself: ranges reversed, negative, past the end or past 2^31, a range cut in the middle
of a surrogate pair, changes that are not a list or not objects, text that is not a
string, lone UTF-16 surrogates in the text, changes to a document never opened. After
each, every request on the document is still answered, no internal error is logged, and
a full replacement of the text is analysed as usual (checked in one session: bounded).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_lsp_protocol_hostile import OPEN_URI, RawClient, raw_session

TEXT = 'style "s" {\n  description = "d"\n}\n'
NEVER_OPENED = "file:///kvsl-test/never-opened.kvs"


def _range(a: int, b: int, c: int, d: Any) -> dict[str, Any]:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


CHANGES: dict[str, Any] = {
    "reversed": [{"range": _range(1, 10, 0, 2), "text": "X"}],
    "negative": [{"range": _range(-1, -5, 0, 1), "text": "X"}],
    "line past 2^40": [{"range": _range(2**40, 0, 2**40, 5), "text": "X"}],
    "character past 2^31": [{"range": _range(0, 2**31, 0, 2**31), "text": "X"}],
    "past the end": [{"range": _range(10, 0, 12, 0), "text": "tail"}],
    "range without end": [{"range": {"start": {"line": 0, "character": 0}}, "text": "X"}],
    "range null": [{"range": None, "text": "Z"}],
    "float positions": [{"range": _range(0, 1, 0, 2.5), "text": "X"}],
    "rangeLength that lies": [{"range": _range(0, 0, 0, 1), "rangeLength": 99999, "text": "X"}],
    "text not a string": [{"range": _range(0, 0, 0, 1), "text": 5}],
    "changes not a list": {"text": "X"},
    "changes of numbers": [1, 2],
    "no changes": [],
    "inside a surrogate pair": [{"text": 'style "😀😀" {\n}\n'}, {"range": _range(0, 8, 0, 9), "text": "Y"}],
    "lone surrogates": [{"text": 'style "\ud800" {\n  description = "\udc00d"\n}\n'}],
    "a pair made by two edits": [{"text": 'style "\ud83d" {}\n'}, {"range": _range(0, 8, 0, 8), "text": "\ude00"}],
}
REQUESTS = ("textDocument/documentSymbol", "textDocument/semanticTokens/full",
            "textDocument/formatting", "textDocument/hover", "textDocument/completion",
            "textDocument/definition", "textDocument/codeAction")  # fmt: skip


def _change(client: RawClient, uri: str, version: int, changes: Any) -> None:
    client.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": version}, "contentChanges": changes}})  # fmt: skip


def _params(method: str, uri: str) -> dict[str, Any]:
    at = {"line": 0, "character": 8}
    params = {"textDocument": {"uri": uri}, "position": at, "range": {"start": at, "end": at},
              "options": {"tabSize": 2, "insertSpaces": True}}
    if method == "textDocument/codeAction":
        params["context"] = {"diagnostics": []}
    return params


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    with raw_session() as session:
        yield session
        internal = [log for log in session.logs() if "internal error" in log.lower()]
        assert not internal, internal[0]


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_that_cannot_apply_costs_only_itself(client: RawClient, kind: str) -> None:
    version = 2 * (list(CHANGES).index(kind) + 1)
    _change(client, OPEN_URI, version, CHANGES[kind])
    _change(client, NEVER_OPENED, version, CHANGES[kind])
    for method in REQUESTS:
        answer = client.request(method, _params(method, OPEN_URI))
        assert "error" not in answer, (method, answer)
    _change(client, OPEN_URI, version + 1, [{"text": TEXT}])
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": OPEN_URI}})
    assert [s["name"] for s in symbols["result"]] == ["style"], symbols
    tokens = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": OPEN_URI}})
    assert tokens["result"]["data"], tokens
    assert not [m for m in client.seen if m.get("method") == "window/showMessage"]
