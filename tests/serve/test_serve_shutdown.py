"""SIGTERM and SIGINT while requests are in flight, on a real `kvsl serve` subprocess.

Each request asks for far more tokens than `--shutdown-timeout` lets it generate. After the
signal: new connections are refused; past the timeout (or at once on a second signal) the
app ends each request itself, a non-streaming one with a 503 `shutting_down` body, a stream
with that error event and `data: [DONE]` in a well-formed chunked body; the server exits 0
without a traceback. Before, uvicorn cancelled the requests at the timeout: the stream
stopped mid-body (no last chunk), the other client got a plain-text 500, and the log had
an "Exception in ASGI application" traceback; a second SIGTERM during the exit ended the
process with -15.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from typing import Any

import pytest
from serve_support import MODEL_ID, ServerProcess, tiny_workspace

TOKENS = 2000  # the tiny model never ends a reply early; seconds of decoding


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("serve-shutdown"))


def _ask(port: int, stream: bool, into: dict[str, Any]) -> None:
    """POST a long chat request; keeps the status, the whole body, and when it ended."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"model": f"{MODEL_ID}:alpha", "max_tokens": TOKENS, "stream": stream,
            "messages": [{"role": "user", "content": "Why is the sky blue?"}]}  # fmt: skip
    try:
        connection.request("POST", "/v1/chat/completions", json.dumps(body),
                           {"Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        into["status"] = response.status
        into["body"] = response.read().decode()  # IncompleteRead for a torn chunked body
    except Exception as err:  # reported by the test (IncompleteRead: a torn stream)
        into["error"] = repr(err)
    finally:
        into["ended"] = time.monotonic()
        connection.close()


def _refused(port: int) -> bool:
    """Whether a connection to `port` is refused now (one the kernel queued just before the
    listening socket closed may still connect, or time out)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    except TimeoutError:
        pass
    time.sleep(0.02)
    return False


@pytest.mark.parametrize(
    ("signals", "timeout"),
    [(["SIGTERM"], 1.5), (["SIGINT"], 1.5), (["SIGTERM", "SIGTERM"], 60)],
    ids=["sigterm", "sigint", "sigterm-twice"],
)
def test_in_flight_requests_end_whole_and_the_server_exits_0(
    root, signals: list[str], timeout: float
) -> None:
    server = ServerProcess(root, "alpha.kvs", "--max-new-tokens", str(TOKENS), "--gather-ms", "0",
                           "--shutdown-timeout", str(timeout))  # fmt: skip
    try:
        streamed: dict[str, Any] = {}
        plain: dict[str, Any] = {}
        clients = [threading.Thread(target=_ask, args=(server.port, True, streamed)),
                   threading.Thread(target=_ask, args=(server.port, False, plain))]  # fmt: skip
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while server.health()["running_rows"] < 2:
            assert time.monotonic() < deadline, "the requests never ran"
            time.sleep(0.02)
        sent = time.monotonic()
        server.process.send_signal(getattr(signal, signals[0]))
        refused = False
        while not refused and time.monotonic() < sent + 5:
            refused = _refused(server.port)
        still_running = "ended" not in streamed and "ended" not in plain
        for name in signals[1:]:
            server.process.send_signal(getattr(signal, name))
        for client in clients:
            client.join(timeout=60)
    finally:
        code, log = server.stop(timeout=60)  # a further SIGTERM on its way out is ignored
    assert code == 0, log
    assert "kvsl serve: stopped" in log and "Traceback" not in log and "ERROR" not in log
    assert refused and still_running  # no new connection while the old ones were answered
    # The second signal ended the requests at once, not after the 60 s allowed.
    assert max(streamed["ended"], plain["ended"]) - sent < min(timeout, 10) + 5

    assert "error" not in plain and plain["status"] == 503, plain
    assert json.loads(plain["body"])["error"]["code"] == "shutting_down"
    assert "error" not in streamed and streamed["status"] == 200, streamed
    events = [line[len("data: "):] for line in streamed["body"].split("\n\n") if line]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "shutting_down"
    assert all("choices" in json.loads(e) for e in events[:-2])  # the deltas before it
