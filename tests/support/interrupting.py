"""Send a real SIGINT to a child process once it is ready, and time how fast it stops."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def interrupt_when_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    wait: float,
    stop: float = 30,
) -> tuple[bytes, bytes, float]:
    """Poll `ready()` for up to `wait` seconds (AssertionError if the child ends first or
    it never holds), send SIGINT, and return (stdout, stderr, seconds it took to stop).

    The child is killed on the way out if it is still running, whatever happened."""
    try:
        deadline = time.monotonic() + wait
        while not ready():
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"the child was not ready within {wait:g} s (or ended)")
            time.sleep(0.02)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=stop)
        return out or b"", err or b"", time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
