"""Ctrl-C (SIGINT) stops a long job at once, with exit 130, losing nothing already saved.

`kvsl eval`, `kvsl tune` and the long scripts (`scripts/dev_accuracy.py`, ...) save every
finished answer as it comes (an appended, fsynced results cache), so an interrupt needs no
clean-up beyond closing what is open. Shared here, below every part of kvsl, so that the
commands and the scripts stop the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["INTERRUPTED", "stop_on_interrupt"]

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job ended by Ctrl-C


@contextmanager
def stop_on_interrupt(saved: str | None) -> Iterator[None]:
    """Ctrl-C (SIGINT) ends a long job at once, with exit 130 and a line on stderr.

    Every finished answer is already on disk (`saved` says where: the results cache is
    appended and fsynced per answer; None for a job that keeps nothing, such as a
    benchmark), so nothing is lost by not unwinding further: the
    process ends with `os._exit` right after the interrupt has unwound the work (`with`
    blocks closed, the progress bar stopped), skipping the interpreter's teardown of the
    model and torch's thread pools, which took seconds on a loaded machine.

    A job started in the background by a shell script (`python job.py &`) inherits an
    ignored SIGINT, which Python keeps ignored: `kill -INT` did nothing and only SIGTERM
    (losing the finishing touches) stopped it. Inside this block SIGINT interrupts again
    (the previous handling is put back on the way out).
    """
    previous = _arm_sigint()
    try:
        yield
    except KeyboardInterrupt:
        try:
            resume = f": answers so far are saved in {saved}; run again to resume" if saved else ""
            print(f"interrupted{resume}", file=sys.stderr)
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            os._exit(INTERRUPTED)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _arm_sigint() -> signal.Handlers | None:
    """Make SIGINT raise KeyboardInterrupt when it is ignored; the handling it replaced.

    Only the main thread may set handlers (a job run from a worker thread keeps its own).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return None
    return signal.signal(signal.SIGINT, signal.default_int_handler)  # type: ignore[return-value]
