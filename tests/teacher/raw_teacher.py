"""A teacher server on 127.0.0.1 that breaks HTTP itself, on raw sockets.

`teacher_stub.StubServer` speaks correct HTTP with scripted bodies; this one does what
`http.server` will not: close the connection halfway through a body, answer with bytes
that are not HTTP, dribble its headers or body a byte at a time, send an endless chunked
body, redirect forever. Each behaviour is a function `(connection, request_index) -> None`
that writes to the connection; the server reads one request per connection and closes it.

Bounded: every dribble and stream stops when the server is stopped (`stopping` is set) or
after a fixed count, so a test that fails leaves no thread writing forever.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Behaviour = Callable[["Connection", int], None]


class Connection:
    """One accepted connection; `sent` counts the bytes written to it."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self.stopping = stopping
        self.sent = 0
        self.prompt = ""

    def send(self, data: bytes) -> bool:
        """Write `data`; False once the client has gone (or the server is stopping)."""
        if self.stopping.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def reply(self, status: str, body: bytes, *headers: str) -> None:
        head = [f"HTTP/1.1 {status}", "Connection: close", "Content-Type: application/json",
                f"Content-Length: {len(body)}", *headers]
        self.send(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def dribble(self, data: bytes, every: float, limit: int = 400) -> None:
        """Send `data` one byte at a time, `every` seconds apart (at most `limit` bytes)."""
        for byte in data[:limit]:
            if not self.send(bytes([byte])) or self.stopping.wait(every):
                return


def completion(content: str) -> bytes:
    """A well-formed chat-completion body with `content` as the assistant's message."""
    return json.dumps({
        "id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }).encode()


def correct(conn: Connection, index: int) -> None:
    """Answer like a good teacher: the plain questions' answer is twice their number."""
    number = int(conn.prompt.split("[q")[1].split("]")[0]) if "[q" in conn.prompt else 0
    conn.reply("200 OK", completion(f"<step>Add.</step><answer>{2 * number}</answer>"))


class RawServer:
    """Serves `behaviour` for every request; `requests` counts them, `sent` sums bytes."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.sent = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(sock, self.stopping)
        try:
            if not _read_request(conn):
                return
            with self._lock:
                index = self.requests
                self.requests += 1
            self.behaviour(conn, index)
        finally:
            with self._lock:
                self.sent += conn.sent
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def start(self) -> RawServer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


def _read_request(conn: Connection) -> bool:
    """Read one request (head and a Content-Length body); keep the prompt it carries."""
    conn.sock.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = conn.sock.recv(65536)
            if not chunk:
                return False
            body += chunk
    except OSError:
        return False
    try:
        conn.prompt = json.loads(body)["messages"][-1]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        conn.prompt = ""
    return True


@contextmanager
def raw_teacher(behaviour: Behaviour) -> Iterator[RawServer]:
    server = RawServer(behaviour).start()
    try:
        yield server
    finally:
        server.stop()


def elapsed(start: float) -> float:
    return time.monotonic() - start
