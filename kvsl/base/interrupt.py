"""Ctrl-C (SIGINT) or SIGTERM stops a long job at once, losing nothing already saved.

`kvsl eval`, `kvsl tune` and the long scripts (`scripts/dev_accuracy.py`, ...) save every
finished answer as it comes (an appended, fsynced results cache), so an interrupt needs no
clean-up beyond closing what is open. Shared here, below every part of kvsl, so that the
commands and the scripts stop the same way.

A SIGTERM (`kill PID`, a job scheduler's or a container's stop, a time limit) is handled
like Ctrl-C: `Terminated`, a `KeyboardInterrupt`, is raised where Ctrl-C's would be, so
every `with` block and `finally` that Ctrl-C runs (a temporary file removed, a progress bar
stopped) runs too, and the job ends with exit 143 (128 + SIGTERM, what a shell reports for
a job ended by SIGTERM) and the same line saying how to resume. Left to its default, a
SIGTERM ended the process as a SIGKILL does: nothing half-written (every file is replaced
atomically), but a temporary file left beside the spec, exit -15 and not a word. A second
SIGTERM while the first unwinds ends the process at once (the default action).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

__all__ = [
    "INTERRUPTED",
    "TERMINATED",
    "Terminated",
    "exit_code",
    "stop_on_interrupt",
    "stop_on_sigterm",
]

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job ended by Ctrl-C
TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be."""


_received: list[bool] = []  # a SIGTERM arrived in this process (for `exit_code`)


def exit_code(interrupt: BaseException | None = None) -> int:
    """143 for a SIGTERM, else 130: by the interrupt caught, or without one (Typer turned
    it into its exit 130) by whether this process received a SIGTERM."""
    if interrupt is None:
        return TERMINATED if _received else INTERRUPTED
    return TERMINATED if isinstance(interrupt, Terminated) else INTERRUPTED


def _terminated(signum: int, frame: FrameType | None) -> None:
    _received.append(True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM: stop at once
    raise Terminated()


def stop_on_sigterm() -> signal.Handlers | None:
    """From now on a SIGTERM raises `Terminated` in the main thread; the handling it
    replaced, or None where nothing changed (a worker thread, a SIGTERM already handled
    by someone else or ignored on purpose). (`kvsl check` starts here: threading is
    imported only now, when it is not already.)"""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _terminated)  # type: ignore[return-value]


@contextmanager
def stop_on_interrupt(saved: str | None, *, note: str | None = None) -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM ends a long job at once, with exit 130 (143 for SIGTERM)
    and a line on stderr.

    Every finished answer is already on disk (`saved` says where: the results cache is
    appended and fsynced per answer; None for a job that keeps nothing, such as a
    benchmark; `note` replaces the line's ending for a job that keeps something else), so
    nothing is lost by not unwinding further: the
    process ends with `os._exit` right after the interrupt has unwound the work (`with`
    blocks closed, the progress bar stopped), skipping the interpreter's teardown of the
    model and torch's thread pools, which took seconds on a loaded machine.

    A job started in the background by a shell script (`python job.py &`) inherits an
    ignored SIGINT, which Python keeps ignored: `kill -INT` did nothing and only SIGTERM
    (losing the finishing touches) stopped it. Inside this block SIGINT interrupts again
    (the previous handling is put back on the way out), and SIGTERM stops as Ctrl-C does.
    """
    previous = _arm_sigint()
    previous_term = stop_on_sigterm()
    try:
        yield
    except KeyboardInterrupt as interrupt:
        code = exit_code(interrupt)
        try:
            if note is None and saved:
                note = f"answers so far are saved in {saved}; run again to resume"
            how = " (SIGTERM)" if code == TERMINATED else ""
            print(f"interrupted{how}" + (f": {note}" if note else ""), file=sys.stderr)
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            os._exit(code)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None and signal.getsignal(signal.SIGTERM) is _terminated:
            signal.signal(signal.SIGTERM, previous_term)


def _arm_sigint() -> signal.Handlers | None:
    """Make SIGINT raise KeyboardInterrupt when it is ignored; the handling it replaced.

    Only the main thread may set handlers (a job run from a worker thread keeps its own).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return None
    return signal.signal(signal.SIGINT, signal.default_int_handler)  # type: ignore[return-value]
