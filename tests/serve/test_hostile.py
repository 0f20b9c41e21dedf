"""`kvsl serve` against hostile clients: raw sockets on 127.0.0.1 that stall, lie about their
body, break HTTP framing, send JSON of the wrong shape, or open streams and walk away.

After each attack the server must still answer the next client; every refusal is a 4xx with
an OpenAI error body. The server has a 1-second `--request-timeout` and a 2,000-byte body
limit so the timeouts and limits are reached in a test's time.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from serve_support import MODEL_ID, ServerProcess, raw, tiny_workspace

TIMEOUT = 1.0  # --request-timeout
LIMIT = 2000  # --max-body-bytes
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tiny_workspace(tmp_path_factory.mktemp("serve-hostile"))
    process = ServerProcess(
        root, "alpha.kvs", "--request-timeout", str(TIMEOUT), "--max-body-bytes", str(LIMIT),
        "--max-batch", "2", "--max-queue", "8", "--max-new-tokens", "400", "--gather-ms", "0",
    )
    yield process
    code, log = process.stop()
    assert code == 0, log
    assert "Traceback" not in log, log


def _connect(server, data: bytes = b"", timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> tuple[bytes, float]:
    """Everything until the server closes (bounded by the socket's timeout), and how long."""
    started, out = time.monotonic(), b""
    with sock:
        while chunk := sock.recv(65536):
            out += chunk
    return out, time.monotonic() - started


def _request(body: bytes, path: str = "/v1/chat/completions") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _status_and_error(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def _serves(server) -> None:
    """The server still answers a plain generation at once."""
    body = json.dumps({"model": MODEL_ID, "messages": MESSAGES, "max_tokens": 2})
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", body, timeout=30)
    assert status == 200, text


# --- the request head and body ----------------------------------------------------------------


def test_unfinished_request_heads_get_408_and_do_not_block_others(server):
    slow = [_connect(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(8)]
    started = time.monotonic()
    assert raw(server.port, "GET", "/health", timeout=5)[0] == 200
    assert time.monotonic() - started < TIMEOUT
    for sock in slow:
        reply, waited = _read_all(sock)
        status, error = _status_and_error(reply)
        assert status == 408 and error["code"] == "request_timeout"
        assert b"connection: close" in reply.lower()
        assert waited < TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed(server):
    reply, waited = _read_all(_connect(server))
    assert reply == b"" and waited < TIMEOUT + 3


def test_a_head_trickled_byte_by_byte_is_cut_at_the_deadline(server):
    sock = _connect(server)
    started = time.monotonic()
    with pytest.raises(OSError):  # the server closes while the client keeps sending
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: a\r\n" * 100:
            sock.send(bytes([byte]))
            time.sleep(0.05)
            assert time.monotonic() - started < TIMEOUT + 5
    sock.close()


def test_a_body_shorter_than_its_content_length_gets_408(server):
    sock = _connect(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 100\r\n\r\n{\"model\"")
    reply, waited = _read_all(sock)
    status, error = _status_and_error(reply)
    assert status == 408 and error["code"] == "request_timeout"
    assert TIMEOUT * 0.9 < waited < TIMEOUT + 3
    _serves(server)


def test_a_body_declared_too_large_is_refused_before_it_is_sent(server):
    sock = _connect(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 99999999999\r\n\r\n{")
    reply, waited = _read_all(sock)  # answered and closed at once, not after a timeout
    status, error = _status_and_error(reply)
    assert status == 413 and error["code"] == "request_too_large" and waited < TIMEOUT


def test_a_chunked_body_past_the_limit_is_refused_without_reading_it_all(server):
    sock = _connect(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
    sent = 0
    with pytest.raises(OSError):  # the server answers and closes long before 100 MB
        while sent < 100_000_000:
            sock.sendall(b"4000\r\n" + b"a" * 0x4000 + b"\r\n")
            sent += 0x4000
    assert sent < 50_000_000
    sock.close()
    _serves(server)


@pytest.mark.parametrize("framing", [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n0\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-\xff: a\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # a TLS hello
])
def test_broken_http_framing_is_a_400_and_the_server_stays_up(server, framing):
    reply, _ = _read_all(_connect(server, framing))
    status, error = _status_and_error(reply)  # an OpenAI error body, not uvicorn's plain text
    assert status == 400 and error["code"] == "invalid_http", reply
    assert error["type"] == "invalid_request_error" and b"text/plain" not in reply
    _serves(server)


@pytest.mark.parametrize("request_bytes", [
    b"GET /health HTTP/1.0\r\n\r\n",  # HTTP/1.0: answered, then closed
    b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n",  # bare LF line endings
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9 \xff\r\nConnection: close\r\n\r\n",
])
def test_lenient_http_is_served(server, request_bytes):
    reply, _ = _read_all(_connect(server, request_bytes))
    assert reply.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in reply


def test_pipelined_requests_are_answered_in_order(server):
    body = json.dumps({"model": MODEL_ID, "messages": MESSAGES, "max_tokens": 2}).encode()
    pipelined = (_request(body) + b"GET /v1/models/nope HTTP/1.1\r\nHost: x\r\n\r\n"
                 + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply, _ = _read_all(_connect(server, pipelined))
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", reply) == [b"200", b"404", b"200"]


# --- JSON of the wrong shape --------------------------------------------------------------

_WRONG = {
    "messages is an object": {"messages": {"role": "user", "content": "hi"}},
    "a message is a list": {"messages": [["user", "hi"]]},
    "role missing": {"messages": [{"content": "hi"}]},
    "role unknown, long": {"messages": [{"role": "x" * 100_0, "content": "hi"}]},
    "content part of unknown type": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    "content part without text": {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
    "content null": {"messages": [{"role": "user", "content": None}]},
    "content a number": {"messages": [{"role": "user", "content": 7}]},
    "n too large": {"n": 1000},
    "n zero": {"n": 0},
    "stop: 100 strings": {"stop": ["a"] * 100},
    "stop: a long string": {"stop": "a" * 1500},
    "stop: an empty string": {"stop": [""]},
    "stop: a number": {"stop": 3},
    "max_tokens 0": {"max_tokens": 0},
    "max_tokens negative": {"max_tokens": -5},
    "max_tokens huge": {"max_tokens": 10**40},
    "max_tokens a float": {"max_tokens": 3.5},
    "stream a string": {"stream": "true"},
    "stream_options a list": {"stream": True, "stream_options": [True]},
    "temperature a string": {"temperature": "0.5"},
    "temperature NaN-like": {"temperature": 1e400},
    "seed negative": {"seed": -1},
    "kvsl a list": {"kvsl": ["alpha"]},
    "kvsl unknown field": {"model": f"{MODEL_ID}:alpha", "kvsl": {"strength": 2}},
    "kvsl layers counting down": {"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": "1..0"}},
    "kvsl layers a huge start": {"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": "99999999999999999999..1"}},
    "kvsl layers past the end": {"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": [5]}},
    "kvsl layers of booleans": {"model": f"{MODEL_ID}:alpha", "kvsl": {"layers": [True]}},
    "model a list": {"model": [MODEL_ID]},
    "model empty": {"model": ""},
    "logprobs": {"logprobs": True},
    "tools": {"tools": [{"type": "function"}]},
}


@pytest.mark.parametrize("change", _WRONG.values(), ids=list(_WRONG))
def test_a_body_of_the_wrong_shape_is_a_400(server, change):
    body = {"model": MODEL_ID, "messages": MESSAGES, "max_tokens": 2, **change}
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", json.dumps(body), timeout=30)
    assert status == 400, text
    error = json.loads(text)["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert len(text) < 1000  # nothing the client sent is echoed back whole


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b'"x"', b"{", b'{"model": "\xff"}',
                                  b"[" * 100_0 + b"]" * 100_0])
def test_a_body_that_is_not_a_json_object_is_a_400(server, body):
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", body, timeout=30)
    assert status == 400 and json.loads(text)["error"]["code"] == "invalid_json"


def test_duplicate_keys_take_the_last_and_unknown_fields_are_ignored(server):
    body = (b'{"model": "nope", "model": "%s", "messages": [{"role": "user", "content": "hi"}],'
            b' "max_tokens": 2, "frobnicate": {"deep": [1, 2]}, "user": "u"}' % MODEL_ID.encode())
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", body, timeout=30)
    assert status == 200, text
    assert json.loads(text)["model"] == MODEL_ID


# --- model names ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", [
    "gpt-4o", f"{MODEL_ID}:nope", f"{MODEL_ID}:../alpha", f"{MODEL_ID}:../../etc/passwd",
    f"{MODEL_ID}:alpha/../alpha", f"../{MODEL_ID}", f"{MODEL_ID}:", "x" * 1500, f"{MODEL_ID}:alpha:alpha",
    f"{MODEL_ID}:ALPHA", f"{MODEL_ID}\x00:alpha",
])
def test_an_unknown_model_is_a_404_with_a_short_error(server, model):
    body = json.dumps({"model": model, "messages": MESSAGES, "max_tokens": 2})
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", body, timeout=30)
    if model == f"{MODEL_ID}:":  # an empty style names the plain model
        assert status == 200, text
        return
    assert status == 404, text
    error = json.loads(text)["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert len(text) < 1000


@pytest.mark.parametrize("style", ["../alpha", "alpha/..", "x" * 1500, ""])
def test_an_unknown_kvsl_style_is_a_404(server, style):
    body = json.dumps({"model": MODEL_ID, "messages": MESSAGES, "max_tokens": 2, "kvsl": {"style": style}})
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", body, timeout=30)
    assert status == 404 and json.loads(text)["error"]["code"] == "style_not_found"
    assert len(text) < 1000


@pytest.mark.parametrize("path", ["/v1/models/" + "x" * 3000, "/v1/models/../../etc/passwd",
                                  "/v1/models/%2e%2e%2fetc", f"/v1/models/{MODEL_ID}:..%2Falpha"])
def test_an_unknown_model_path_is_a_404(server, path):
    status, _, text = raw(server.port, "GET", path, timeout=30)
    assert status == 404 and "error" in json.loads(text)
    assert len(text) < 1000


# --- streams --------------------------------------------------------------------------------

def _stream_request(max_tokens: int = 400) -> bytes:
    return _request(json.dumps({"model": MODEL_ID, "messages": MESSAGES, "max_tokens": max_tokens,
                                "stream": True}).encode())


def test_a_client_that_never_reads_its_stream_does_not_stall_others(server):
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # back-pressure at once
    slow.settimeout(10)
    with slow:
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(_stream_request())
        time.sleep(0.3)
        for _ in range(3):
            started = time.monotonic()
            _serves(server)
            assert time.monotonic() - started < 10
    health = server.wait_idle(timeout=20)  # closing it frees its slot
    assert health["in_flight"] == 0 and health["running_rows"] == 0


def test_a_half_closed_client_frees_its_slot(server):
    sock = _connect(server, _stream_request())
    sock.shutdown(socket.SHUT_WR)
    _read_all(sock)  # the server treats the half-close as the client leaving
    health = server.wait_idle(timeout=20)
    assert health["in_flight"] == 0 and health["running_rows"] == 0
    _serves(server)


def test_many_streams_opened_and_abandoned_free_every_slot(server):
    socks = [_connect(server, _stream_request()) for _ in range(12)]  # past batch + queue
    replies = [sock.recv(64) for sock in socks]
    assert all(r.startswith(b"HTTP/1.1 200") or r.startswith(b"HTTP/1.1 429") for r in replies)
    assert any(r.startswith(b"HTTP/1.1 429") for r in replies)
    for sock in socks:
        sock.close()
    health = server.wait_idle(timeout=20)
    assert health["in_flight"] == 0 and health["running_rows"] == 0 and health["queued"] == 0
    _serves(server)


def test_a_stream_whose_client_stops_reading_is_ended_at_the_send_deadline():
    """A client that keeps its socket open but takes no more bytes blocked the stream's send
    for ever (uvicorn has no write timeout): past `--request-timeout` it counts as gone, and
    its slot is freed. (Loopback buffers absorb the tiny model's whole answer, so this drives
    the ASGI response directly with a send that never completes.)"""
    import asyncio

    from kvsl.serve.app import _EventStream

    async def events():
        for i in range(1000):
            yield f"data: {i}\n\n"

    async def receive():
        await asyncio.sleep(3600)  # the client never leaves

    sent: list[dict] = []

    async def send(message):
        sent.append(message)
        if message.get("type") == "http.response.body" and len(sent) > 2:
            await asyncio.sleep(3600)  # its window is full from the second chunk on

    closed: list[bool] = []
    stream = _EventStream(events(), on_close=lambda: closed.append(True), send_timeout=0.2)
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(stream({"type": "http"}, receive, send), 10))
    assert closed == [True] and time.monotonic() - started < 2
    assert len(sent) == 3  # the head, one chunk, then the one that never went


@pytest.mark.parametrize("prompt", [["a", "b"], [1, 2, 3], [[1, 2]], "", [], {"text": "hi"}, None, 7, [""]])
def test_a_completion_prompt_of_the_wrong_shape_is_a_400(server, prompt):
    body = json.dumps({"model": MODEL_ID, "prompt": prompt, "max_tokens": 2})
    status, _, text = raw(server.port, "POST", "/v1/completions", body, timeout=30)
    assert status == 400, text
    assert json.loads(text)["error"]["param"] == "prompt"
