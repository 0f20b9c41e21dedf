"""SIGKILL a child right before its N-th file operation under a folder, for every N.

A kill by the clock lands wherever the scheduler puts it; a write of a few milliseconds at
the end of a long command (a report, a spec rewritten by `kvsl tune --write`) is almost
never hit. Here the child counts its own file operations inside one folder through an
audit hook (PEP 578: `open`, `os.rename` (also raised by `os.replace`), `os.remove`,
`os.chmod`, `os.mkdir`, `tempfile.mkstemp`, ...) and kills itself with SIGKILL just before
the N-th, so no handler and no `finally` runs, as with a real `kill -9`. Running the same
command for N = 1, 2, ... until it finishes visits every moment between two operations.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# Runs in the child: argv is [N, FOLDER, EVENTS, "-m", MODULE, ARGS...] or [..., "-c", CODE];
# EVENTS is `*` (all of _EVENTS) or a comma-separated few of them.
_BOOT = r"""
import os, runpy, signal, sys

_n, _under = int(sys.argv[1]), os.path.realpath(sys.argv[2])
_seen = 0
_EVENTS = {"open", "os.rename", "os.remove", "os.chmod", "os.mkdir", "os.rmdir",
           "os.truncate", "tempfile.mkstemp", "shutil.move", "shutil.rmtree", "os.link",
           "os.symlink", "os.utime"}
if sys.argv[3] != "*":
    _EVENTS = set(sys.argv[3].split(","))
del sys.argv[3]


def _inside(path):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        return False  # a descriptor
    full = os.path.realpath(os.path.join(os.getcwd(), os.fspath(path)))
    return full == _under or full.startswith(_under + os.sep)


def _hook(event, args):
    global _seen
    if event not in _EVENTS or not args:
        return
    paths = args[:2] if event in ("os.rename", "shutil.move", "os.link") else args[:1]
    if not any(_inside(p) for p in paths):
        return
    _seen += 1
    if _seen == _n:
        os.kill(os.getpid(), getattr(signal, os.environ.get("KVSL_TEST_SIGNAL", "SIGKILL")))


sys.addaudithook(_hook)
if sys.argv[3] == "-m":
    sys.argv = [sys.argv[4], *sys.argv[5:]]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    code = sys.argv[4]
    sys.argv = ["-c", *sys.argv[5:]]
    exec(compile(code, "<child>", "exec"), {"__name__": "__main__"})
"""


def killed_before_operation(
    n: int,
    folder: Path,
    args: list[str],
    *,
    cwd: Path,
    events: tuple[str, ...] = (),
    timeout: float = 300,
    sig: str = "SIGKILL",
) -> subprocess.CompletedProcess[bytes]:
    """Run `python ARGS` (`-m kvsl ...` or `-c CODE`), killed before its n-th file operation
    under `folder` (only `events` count when given: `("os.rename",)` kills before the n-th
    rename); the return code is -9 when the kill happened, the child's own otherwise.

    `sig` sends another signal instead (`"SIGINT"`: a Ctrl-C at that very moment, with
    SIGINT's default handling restored even when this test runs in the background)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root), "KVSL_TEST_SIGNAL": sig}
    return subprocess.run(
        [sys.executable, "-c", _BOOT, str(n), str(folder), ",".join(events) or "*", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
        # a job a shell starts in the background inherits SIGINT ignored: put Ctrl-C back
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        if sig == "SIGINT"
        else None,
    )


def every_kill(
    folder: Path,
    args: list[str],
    *,
    cwd: Path,
    before: Callable[[], None] = lambda: None,
    most: int = 60,
    events: tuple[str, ...] = (),
) -> Iterator[int]:
    """Yield n after each run killed before its n-th operation under `folder` (`before()`
    resets the files first; only `events` count when given); ends after the first run
    that finishes (exit 0, checked).

    AssertionError if the command still had operations left after `most` kills.
    """
    for n in range(1, most + 1):
        before()
        done = killed_before_operation(n, folder, args, cwd=cwd, events=events)
        if done.returncode == -9:
            yield n
            continue
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert n > 1, "the command touched no file under the folder: nothing was tested"
        return
    raise AssertionError(f"still writing after {most} kills")
