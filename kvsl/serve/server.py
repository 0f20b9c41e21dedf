"""Running the app: a socket bound here (so a busy port is a diagnostic), the model thread,
uvicorn, SIGTERM.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and lets requests in flight
finish; after `shutdown_timeout` seconds (or at once on a second signal) the app ends those
left with whole answers (503 `shutting_down`, or that error event and `[DONE]` in a stream),
and the app's lifespan stops the batcher; the process then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import json
import math
import signal
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); KVS803 if it cannot be had. Port 0: any free one."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        if sock is not None:
            sock.close()
        raise KvslError.one(
            "KVS803",
            f"cannot listen on {host}:{port}: {err.strerror or err}",
            COMMAND_LINE,
            help=_bind_help(err),
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    return sock


def _bind_help(err: OSError) -> str:
    """What to change, by why the address could not be had."""
    if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
        return "`--host` must be an address of this machine, such as 127.0.0.1 (the default)"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "ports below 1024 need privileges: pick a `--port` from 1024 up (0 takes any free one)"
    return "pick another `--port` (0 takes any free one) or stop the process using it"


def model_thread() -> ThreadPoolExecutor:
    """The server's model thread (one worker): `kvsl serve` loads the model on it, then the
    batcher runs every prefill and decoding step on it; the event loop runs no torch kernels.

    Why one thread for all of torch's work: torch's CPU kernels run on GNU OpenMP, which keeps a
    team of helper threads for every thread that has run a parallel region. With the model
    loaded on the main thread and decoded on this one, the process had two teams: more
    OpenMP threads than the 2 cores, and libgomp then stops spinning at its barriers
    ("throttled" waiting), so each of the ~900 parallel regions of a decoding step slept and
    woke through the kernel (about 900 context switches per step against 13, measured with
    SmolLM2-135M; one request took 1.66x a direct run). One thread, one team: the server
    decodes as `kvsl run` does.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvsl-model")


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def head_deadline_protocol(timeout: float) -> type:
    """uvicorn's HTTP/1.1 protocol (h11) with a deadline on every request's head.

    uvicorn's only timer is its keep-alive one, and any byte received cancels it: a client that
    opens a connection and sends nothing, or sends a request line and then one header line a
    minute (slowloris), held its connection (and a file descriptor) for ever. Here a
    connection waiting for a request head (a new one, or after a response) gets `timeout`
    seconds to send it whole; then it is answered 408 (if it sent anything) and closed.
    The body has its own deadline, in the app (`kvsl.serve.app._read_body`).

    Requests h11 cannot parse (broken framing, a TLS hello on the plain port) are answered
    400 with an OpenAI error body, as every other refusal is, instead of uvicorn's plain text.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self.head_timer = self.loop.call_later(timeout, self._head_late)

        def _disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            self._arm()  # before the base class parses a pipelined request (which disarms)
            super().on_response_complete()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # a whole head arrived (or the end)
                self._disarm()

        def _head_late(self) -> None:
            self.head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            started = bool(self.conn.trailing_data[0])
            if started and self.conn.our_state is h11.IDLE:
                self._send_error(408, "the request head did not arrive in time", "request_timeout")
            self.transport.close()

        def send_400_response(self, msg: str) -> None:  # uvicorn's, for what h11 cannot parse
            self._send_error(400, "the request is not valid HTTP/1.1", "invalid_http")
            self.transport.close()

        def _send_error(self, status: int, message: str, code: str) -> None:
            body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                         "param": None, "code": code}}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                       (b"content-length", str(len(body)).encode())]
            reason = http.HTTPStatus(status).phrase.encode()
            with contextlib.suppress(h11.LocalProtocolError):
                self.transport.write(self.conn.send(h11.Response(
                    status_code=status, headers=headers, reason=reason)))
                self.transport.write(self.conn.send(h11.Data(data=body)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))

    return HeadDeadline


def run_server(
    app: Any,
    sock: socket.socket,
    *,
    shutdown_timeout: float = 30.0,
    request_timeout: float = 30.0,
    announce: Callable[[], None] = lambda: None,
    drain: Callable[[float], None] | None = None,
    ignore_after: bool = False,
) -> None:
    """Serve `app` on `sock` until SIGTERM or SIGINT; returns normally after a clean stop.

    `request_timeout`: seconds a connection gets to send a request's head (see
    `head_deadline_protocol`); the app gives the body as long again. `announce` prints the
    listening line, once a SIGTERM or SIGINT already means a clean stop. `drain(seconds)`
    (the app's `_Server.drain`) is told when the stop begins, and again with 0 on a second
    signal: the app itself ends what is still in flight after `shutdown_timeout` seconds,
    with whole answers, before uvicorn's own deadline (a few seconds later) would cancel it
    mid-answer. `ignore_after`: SIGTERM and SIGINT are ignored once the server has stopped
    (`kvsl serve`, on its way out: a signal repeated then ended the process with -15 or a
    traceback instead of exit 0), instead of getting their previous handling back.
    """
    import uvicorn

    backstop = math.ceil(shutdown_timeout) + (_BACKSTOP_S if drain is not None else 0)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if drain is not None:
                drain(shutdown_timeout)
            await super().shutdown(sockets=sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and drain is not None:
                # A second signal: end the requests in flight now, with whole answers.
                # (uvicorn's "force exit" on a second Ctrl-C skipped the app's shutdown:
                # the model thread never stopped and the process never ended.)
                drain(0)
                return
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        http=head_deadline_protocol(request_timeout),
        log_level="warning",
        access_log=False,  # request lines would be noise; headers (the API key) are never logged
        timeout_graceful_shutdown=max(1, backstop),
        lifespan="on",
    )
    server = Server(config)
    # uvicorn's own handlers are installed only once it runs: a SIGTERM sent as soon as the
    # listening line appeared (a supervisor, a test) found Python's default and ended the
    # process with -15. Its handler, installed before the line, asks it to stop: it starts,
    # sees that, and shuts down cleanly. uvicorn also re-raises the signal it caught once it
    # has shut down, to "exit as killed"; into this handler, that is a no-op.
    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in handled}
    try:
        announce()
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if ignore_after else handler)
        sock.close()
    if not server.started:
        print("kvsl serve: the server did not start", file=sys.stderr)
        raise SystemExit(int(ExitCode.ENVIRONMENT))


# Seconds uvicorn waits past `--shutdown-timeout` before it cancels what is left: the app
# has ended every request by then; only a client that stopped reading can still be there.
_BACKSTOP_S = 3
