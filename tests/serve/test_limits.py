"""Slots, queueing, API key, disconnects and SIGTERM, on a real server with one row at a time.

The server decodes one row at a time (`--max-batch 1`) and queues one more (`--max-queue 1`),
so a long generation (a few hundred tokens of the tiny model, about a second or more) keeps it busy.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import openai
import pytest
from serve_support import MODEL_ID, ServerProcess, environment, raw, tiny_workspace

KEY = "test-key-7f3a9c"
LONG = 250  # tokens: long enough to be cancelled mid-way (the tiny model never hits EOS here)
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_workspace(tmp_path_factory.mktemp("serve-limits"))


@pytest.fixture(scope="module")
def server(root):
    process = ServerProcess(
        root, "alpha.kvs", "--max-batch", "1", "--max-queue", "1", "--gather-ms", "0",
        "--max-new-tokens", str(LONG), env=environment(root, KVSL_API_KEY=KEY),
    )
    yield process
    code, log = process.stop()
    assert code == 0, log
    assert KEY not in log  # the key is never logged


def _client(server, **kwargs):
    return server.client(api_key=KEY, **kwargs)


def _auth():
    return {"Authorization": f"Bearer {KEY}"}


def test_the_api_key_is_required_and_checked(server):
    with pytest.raises(openai.AuthenticationError) as err:
        server.client(api_key="wrong").models.list()
    assert err.value.status_code == 401
    status, _, text = raw(server.port, "POST", "/v1/chat/completions", "{}")
    assert status == 401 and json.loads(text)["error"]["code"] == "invalid_api_key"
    assert [m.id for m in _client(server).models.list().data] == [MODEL_ID, f"{MODEL_ID}:alpha"]
    assert raw(server.port, "GET", "/health")[0] == 200  # health needs no key


def _open_stream(server, max_tokens=LONG):
    stream = _client(server).chat.completions.create(
        model=f"{MODEL_ID}:alpha", messages=MESSAGES, max_tokens=max_tokens, stream=True
    )
    chunks = iter(stream)
    next(chunks)  # the role chunk: the request is running
    next(chunks)
    return stream


def test_a_client_that_disconnects_mid_stream_frees_its_slot(server):
    stream = _open_stream(server)
    assert server.health()["in_flight"] == 1
    started = time.monotonic()
    stream.close()
    health = server.wait_idle(timeout=20)
    cancelled_in = time.monotonic() - started
    assert health["in_flight"] == 0 and health["running_rows"] == 0
    # The row was cancelled, not run to its end: that would take as long as a full generation.
    started = time.monotonic()
    _client(server).chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=LONG)
    assert cancelled_in < (time.monotonic() - started) / 2
    assert "kvsl_client_disconnects_total 1.0" in raw(server.port, "GET", "/metrics", headers=_auth())[2]


def _disconnects(server) -> float:
    metrics = raw(server.port, "GET", "/metrics", headers=_auth())[2]
    line = next(x for x in metrics.splitlines() if x.startswith("kvsl_client_disconnects_total"))
    return float(line.split()[-1])


def test_a_non_streaming_client_that_leaves_frees_its_slot(server):
    # The client leaves as soon as its request is in flight: no race with how fast the tiny
    # model decodes (a timed-out read would only leave if decoding outlasted the timeout).
    before = _disconnects(server)
    body = json.dumps({"model": MODEL_ID, "messages": MESSAGES, "max_tokens": LONG}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as client:
        client.sendall(head + body)
        deadline = time.monotonic() + 20
        while server.health()["in_flight"] < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
    health = server.wait_idle(timeout=20)
    assert health["in_flight"] == 0 and health["running_rows"] == 0
    assert _disconnects(server) == before + 1


def test_a_full_queue_answers_429_with_retry_after(server):
    stream = _open_stream(server)  # running: the one batch slot
    queued: list[object] = []
    waiter = threading.Thread(target=lambda: queued.append(_client(server).chat.completions.create(
        model=MODEL_ID, messages=MESSAGES, max_tokens=3)))
    waiter.start()
    deadline = time.monotonic() + 20
    while server.health()["queued"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(openai.RateLimitError) as err:
        _client(server).chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=3)
    assert err.value.status_code == 429
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert err.value.body["code"] == "server_busy"
    stream.close()  # frees the running slot: the queued request runs next
    waiter.join(timeout=60)
    assert len(queued) == 1
    assert server.wait_idle()["in_flight"] == 0


def test_many_concurrent_clients_are_all_answered_or_refused_and_no_slot_leaks(server):
    results: list[str] = []

    def one(i: int) -> None:
        try:
            _client(server).chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=4)
            results.append("ok")
        except openai.RateLimitError:
            results.append("429")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8 and "ok" in results
    assert set(results) <= {"ok", "429"}
    assert server.wait_idle()["in_flight"] == 0


def test_sigterm_lets_the_stream_in_flight_finish_then_exits_0(root):
    process = ServerProcess(root, "--model", str(root / MODEL_ID), "--gather-ms", "0")
    stream = process.client().chat.completions.create(
        model=MODEL_ID, messages=MESSAGES, max_tokens=60, stream=True
    )
    chunks = iter(stream)
    next(chunks)
    process.process.send_signal(15)
    rest = list(chunks)
    assert rest[-1].usage.completion_tokens == 60
    assert [c.choices[0].finish_reason for c in rest if c.choices][-1] == "length"
    code, log = process.stop()
    assert code == 0, log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", process.port), timeout=1).close()
