"""One `kvsl teach` per trace file: a second run stops at once with KVS528.

Two runs on one trace file (a double launch, two CI jobs) each read the file, each found
the same questions missing, each asked the teacher all of them (paying twice) and each
appended a trace per question, leaving two for every one. The lock (`kvsl.base.exclusive`)
is a `flock` on a file in the user cache, so the kernel drops it when its holder dies,
however it dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from teacher_support import FAKE_KEY, demo_spec
from typer.testing import CliRunner

from kvsl.base.exclusive import Busy, exclusive, lock_file_for
from kvsl.cli import app
from kvsl.formats.traces import load_traces

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVSL_CACHE_DIR", str(tmp_path / "cache"))


def _teach(spec: Path, *extra: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, ["teach", str(spec), "--max-retries", "0", "--timeout", "5", *extra],
        env={"OPENAI_API_KEY": FAKE_KEY, "KVSL_CACHE_DIR": os.environ["KVSL_CACHE_DIR"]},
    )


def test_a_second_writer_is_refused_and_every_spelling_shares_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    with exclusive(target):
        for spelling in (target, tmp_path / "sub" / ".." / "t.jsonl"):
            (tmp_path / "sub").mkdir(exist_ok=True)
            with pytest.raises(Busy) as busy, exclusive(spelling):
                pass
            assert busy.value.holder == os.getpid()
        with exclusive(tmp_path / "other.jsonl"):  # another file: its own lock
            pass
    with exclusive(target):  # released when the block ended
        pass
    assert not (tmp_path / "t.jsonl").exists()  # the lock lives in the cache, not here
    assert lock_file_for(target).parent == tmp_path / "cache" / "locks"


def test_teach_stops_before_any_request_while_another_run_writes(tmp_path: Path, stub) -> None:
    spec, traces = demo_spec(tmp_path, stub.url)
    with exclusive(traces):
        refused = _teach(spec)
    assert refused.exit_code == 3, refused.output
    assert "error[KVS528]" in refused.stderr and f"process {os.getpid()}" in refused.stderr
    assert stub.answered == 0 and not traces.exists()
    done = _teach(spec)  # the holder is gone: the run goes ahead
    assert done.exit_code == 0, done.output
    assert sorted(t.id for t in load_traces(traces)) == ["q1", "q2", "q3"]
    assert _teach(spec, "--dry-run").exit_code == 0  # a dry run writes nothing: never locked


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom kvsl.base.exclusive import exclusive\n"
         f"with exclusive({str(target)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(Busy) as busy, exclusive(target):
            pass
        assert busy.value.holder == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # the kernel releases the lock with the process
        try:
            with exclusive(target):
                break
        except Busy:
            assert time.monotonic() < deadline, "the lock outlived its killed holder"
            time.sleep(0.05)


def test_no_writable_cache_means_no_lock_not_no_run(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("KVSL_CACHE_DIR", str(blocker))
    with exclusive(tmp_path / "t.jsonl"), exclusive(tmp_path / "t.jsonl"):
        pass  # unlocked, as every run was before


def test_a_file_system_without_locks_means_no_lock_not_no_run(tmp_path: Path, monkeypatch) -> None:
    import errno

    import kvsl.base.exclusive as exclusive_module

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(exclusive_module.fcntl, "flock", no_locks)
    with exclusive(tmp_path / "t.jsonl"), exclusive(tmp_path / "t.jsonl"):
        pass
