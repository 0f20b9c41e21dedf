"""A scripted chat-completions server on 127.0.0.1 for the teacher's tests.

It speaks the part of the OpenAI protocol the teacher uses (`POST /v1/chat/completions`)
over real HTTP, in a thread. By default it answers every prompt correctly: the tests'
templates end with `Correct answer: X`, and the stub replies with two `<step>` tags and
`<answer>X</answer>`. Tests script exceptions per question with `script(key, *replies)`
(or set `responder` for every question: `html_page`, `wrong_shape_reply` are broken
servers' answers): the next requests whose prompt contains `key` get those replies in order (then the
default again). Every request is recorded, so tests count retries exactly.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response. `content` is the assistant message of a 200 reply."""

    status: int = 200
    content: str | None = None
    body: object = None  # a raw JSON body (overrides `content`)
    raw: bytes | None = None  # bytes sent as they are (overrides `body`): a broken server
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds to wait before answering (beyond a client timeout: "slow")
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    )
    finish_reason: str = "stop"


def trace_reply(answer: str, steps: tuple[str, ...] = ("First, read the question.", "Then solve it.")) -> Reply:
    """A well-formed teacher reply ending in `answer`."""
    tagged = "\n".join(f"<step>{s}</step>" for s in steps)
    return Reply(content=f"{tagged}\n<answer>{answer}</answer>")


def html_page(status: int = 200) -> Reply:
    """A 200 that is not JSON at all: a proxy's login or error page, say."""
    page = b"<!doctype html><html><body><h1>Sign in to continue</h1></body></html>"
    return Reply(status=status, raw=page, content_type="text/html; charset=utf-8")


def wrong_shape_reply() -> Reply:
    """A 200 with JSON that is not a chat completion (another API's answer)."""
    return Reply(body={"status": "ok", "result": {"text": "<step>a</step><answer>2</answer>"}})


def error_reply(status: int, message: str = "scripted failure", *, retry_after: str | None = None,
                delay: float = 0.0) -> Reply:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(status=status, body={"error": {"message": message, "type": "stub"}},
                 headers=headers, delay=delay)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict
    time: float

    @property
    def prompt(self) -> str:
        return str(self.body.get("messages", [{}])[-1].get("content", ""))


_CORRECT = re.compile(r"Correct answer:\s*(.+?)\s*$", re.MULTILINE)


def default_responder(prompt: str) -> Reply:
    """Answer correctly: echo the `Correct answer:` line of the prompt inside tags."""
    match = _CORRECT.search(prompt)
    return trace_reply(match.group(1) if match else "unknown")


class StubServer:
    """The scripted server; `url` is a base URL for the openai client (ends in /v1)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responder: Callable[[str], Reply] = default_responder
        self.require_key: str | None = None  # 401 for any other key (echoing it, as some do)
        self.models: set[str] | None = None  # 404 for any other model
        self.fail_after: int | None = None  # after K good answers, every request is a 500
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests the server held at once
        self._scripts: list[tuple[str, list[Reply]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, key: str, *replies: Reply) -> None:
        """The next requests whose prompt contains `key` get `replies`, in order."""
        with self._lock:
            self._scripts.append((key, list(replies)))

    def count(self, key: str | None = None) -> int:
        """How many chat-completions requests arrived (for prompts containing `key`)."""
        with self._lock:
            return sum(1 for r in self.requests if key is None or key in r.prompt)

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            auth = recorded.headers.get("authorization", "")
            if self.require_key is not None and auth != f"Bearer {self.require_key}":
                given = auth.removeprefix("Bearer ")
                return error_reply(401, f"Incorrect API key provided: {given}.")
            model = recorded.body.get("model")
            if self.models is not None and model not in self.models:
                return error_reply(404, f"The model `{model}` does not exist")
            if self.fail_after is not None and self.answered >= self.fail_after:
                return error_reply(500, "the server fell over", retry_after="0.05")
            for index, (key, replies) in enumerate(self._scripts):
                if key in recorded.prompt and replies:
                    reply = replies.pop(0)
                    if not replies:
                        del self._scripts[index]
                    break
            else:
                reply = self.responder(recorded.prompt)
            if reply.status == 200:
                self.answered += 1
            return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep pytest quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                recorded = Recorded(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                )
                if not self.path.endswith("/chat/completions"):
                    self._send(error_reply(404, f"no route {self.path}"), body)
                    return
                with stub._lock:
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    self._send(stub._next_reply(recorded), body)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            def _send(self, reply: Reply, request: dict) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    payload = reply.body
                else:
                    payload = {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", "stub"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                    }
                    if reply.usage is not None:
                        payload["usage"] = reply.usage
                data = reply.raw if reply.raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before this slow reply

        return Handler
