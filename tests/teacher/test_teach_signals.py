"""SIGTERM in the middle of `kvsl teach` (a job scheduler's stop, `kill PID`), while a reply
is awaited: stopped as by Ctrl-C, with exit 143, the line saying how to resume and no
traceback; the traces already written stay whole, and a rerun asks only the rest.
(Left to its default, a SIGTERM ended the process with -15 and not a word.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from teacher_stub import trace_reply
from teacher_support import FAKE_KEY, demo_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_while_a_reply_is_awaited_keeps_the_traces_and_the_rerun_asks_the_rest(
    tmp_path: Path, stub
) -> None:
    spec, traces = demo_spec(tmp_path, stub.url)
    stub.script("[q2]", replace(trace_reply("4"), delay=20))  # the rerun gets a prompt one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": FAKE_KEY,
           "KVSL_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    args = ["teach", str(spec), "--max-retries", "0", "--timeout", "60", "--concurrency", "1"]
    process = subprocess.Popen([sys.executable, "-m", "kvsl", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while stub.count("[q2]") < 1:  # q1 answered and written, q2 asked: its reply is slow
            assert process.poll() is None and time.monotonic() < deadline, "q2 was never asked"
            time.sleep(0.02)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    message = err.decode(errors="replace")
    assert process.returncode == 143, message
    assert "Traceback" not in message
    assert "interrupted (SIGTERM): every trace written so far is kept" in message
    assert stopped_in < 10  # not after the 20 s reply
    assert [t.id for t in load_traces(traces)] == ["q1"]

    keep = {k: env[k] for k in ("OPENAI_API_KEY", "KVSL_CACHE_DIR")}
    rerun = CliRunner().invoke(app, args, env=keep)
    assert rerun.exit_code == 0, rerun.output
    assert sorted(t.id for t in load_traces(traces)) == ["q1", "q2", "q3"]
    assert stub.count("[q1]") == 1  # not asked again
