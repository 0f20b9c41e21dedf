"""A SIGTERM sent as soon as `kvsl serve` says it is listening stops it cleanly (exit 0).

The listening line was printed before uvicorn installed its signal handlers, so a signal in
between (a supervisor or a test that stops the server at once) met Python's default
action and the process ended with -15, skipping the graceful stop. Now the handler that
asks uvicorn to stop is installed before the line is printed.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest
from serve_support import ServerProcess, tiny_workspace

from kvsl.serve.server import run_server


async def _app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_the_listening_line_is_a_clean_stop(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    sock = socket.create_server(("127.0.0.1", 0))
    # Delivered while the line is printed, before uvicorn runs: it was the default action.
    run_server(_app, sock, shutdown_timeout=1, request_timeout=1,
               announce=lambda: os.kill(os.getpid(), sig))
    assert signal.getsignal(sig) == before  # the process's own handlers are back
    assert sock.fileno() == -1  # closed


def test_sigterm_right_after_the_listening_line_exits_0(tmp_path) -> None:
    root = tiny_workspace(tmp_path)
    server = ServerProcess(root, str(root / "alpha.kvs"))  # returns at the listening line
    code, log = server.stop(timeout=60)  # SIGTERM at once
    assert code == 0, log
    assert "kvsl serve: stopped" in log and "Traceback" not in log
