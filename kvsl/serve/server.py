"""Running the app: a socket bound here (so a busy port is a diagnostic), uvicorn, SIGTERM.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections, lets requests in flight finish
(up to `shutdown_timeout` seconds, then cancels them), and the app's lifespan stops the
batcher; the process then exits 0.
"""

from __future__ import annotations

import signal
import socket
import sys
from typing import Any

from kvsl.lang.diagnostics import COMMAND_LINE, ExitCode, KvslError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); KVS803 if it cannot be had. Port 0: any free one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        raise KvslError.one(
            "KVS803",
            f"cannot listen on {host}:{port}: {err.strerror or err}",
            COMMAND_LINE,
            help="pick another `--port` (0 takes any free one) or stop the process using it",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    return sock


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


def run_server(app: Any, sock: socket.socket, *, shutdown_timeout: float = 30.0) -> None:
    """Serve `app` on `sock` until SIGTERM or SIGINT; returns normally after a clean stop."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # request lines would be noise; headers (the API key) are never logged
        timeout_graceful_shutdown=max(1, round(shutdown_timeout)),
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it caught once it has shut down, to "exit as killed". A
    # graceful stop is a clean exit here: the handlers it restores, and re-raises into, are no-ops.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if not server.started:
        print("kvsl serve: the server did not start", file=sys.stderr)
        raise SystemExit(int(ExitCode.ENVIRONMENT))
