"""Ctrl-C stops a long job with exit 130 (`kvsl.base.interrupt.stop_on_interrupt`), for the
commands and every script that generates, also when the job inherited an ignored SIGINT
(started with `&` by a shell script: `kill -INT` used to do nothing).

Real processes, real signals. `scripts/dev_accuracy.py` on a tiny model is in
tests/eval/test_dev_accuracy.py; `kvsl eval` in tests/eval/test_interrupt.py.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from interrupting import interrupt_when_ready

from kvsl.base.interrupt import INTERRUPTED, TERMINATED, stop_on_interrupt

ROOT = Path(__file__).resolve().parents[2]

JOB = """
import sys, time
from kvsl.base.interrupt import stop_on_interrupt
saved = sys.argv[1] or None
with stop_on_interrupt(saved):
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        print("unwound", flush=True)  # `with` blocks and `finally` run before the exit
print("not reached", flush=True)
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell does for `job &` in a script


@pytest.mark.parametrize("inherited", ["default", "ignored"])
@pytest.mark.parametrize("saved", ["out/results.jsonl", ""])
def test_sigint_ends_the_job_with_exit_130_whatever_sigint_it_inherited(
    inherited: str, saved: str
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", JOB, saved],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        preexec_fn=_ignore_sigint if inherited == "ignored" else None,
    )  # fmt: skip
    assert process.stdout is not None
    out, err, stopped_in = interrupt_when_ready(
        process, lambda: process.stdout.readline() == b"ready\n", wait=60
    )
    assert process.returncode == INTERRUPTED == 130, err.decode()
    assert out == b"unwound\n" and stopped_in < 10
    message = err.decode()
    assert "Traceback" not in message and message.startswith("interrupted")
    assert ("saved in out/results.jsonl" in message) == bool(saved)


def test_the_previous_sigint_handling_is_put_back() -> None:
    # The handling this process started with is whatever launched it gave (a suite run as a
    # background job of a shell script inherits SIGINT ignored), so the test sets its own.
    original = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with stop_on_interrupt(None):
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

        def handler(*_: object) -> None:
            return None

        signal.signal(signal.SIGINT, handler)
        with stop_on_interrupt(None):  # a handler already set (pytest's, Python's) is kept
            assert signal.getsignal(signal.SIGINT) is handler
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, original)


# What a long job does: generate, evaluate, tune or extract.
_LONG_WORK = re.compile(
    r"generate_texts|Generator\(|evaluate\(|run_eval|run_tune|generate_batch|decode_queue"
    r"|\.generate\(|extract_vectors|build\("
)


def test_every_script_that_generates_stops_on_interrupt() -> None:
    scripts = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("bench/*.py")])
    long_jobs = [p for p in scripts if _LONG_WORK.search(p.read_text(encoding="utf-8"))]
    assert len(long_jobs) >= 8  # the pattern still finds them
    missing = [
        str(p.relative_to(ROOT))
        for p in long_jobs
        if "stop_on_interrupt(" not in p.read_text(encoding="utf-8")
    ]
    assert missing == []


def test_sigterm_ends_the_job_as_ctrl_c_does_with_exit_143() -> None:
    """A SIGTERM (a job scheduler's stop) unwinds the job as Ctrl-C does and exits 143;
    by default it ended the process at once with -15: no `finally`, no line."""
    process = subprocess.Popen(
        [sys.executable, "-c", JOB, "out/results.jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == TERMINATED == 143, err.decode()
    assert out == b"unwound\n"
    assert err.decode() == (
        "interrupted (SIGTERM): answers so far are saved in out/results.jsonl; "
        "run again to resume\n"
    )


def test_the_previous_sigterm_handling_is_put_back() -> None:
    original = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with stop_on_interrupt(None):
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)
