"""One writer per output file across processes: a second `kvsl teach` on the same trace
file is told at once, instead of asking the teacher the same (paid) questions again and
appending a second trace for each.

The lock is an advisory `flock` on a small file in kvsl's user cache (`locks/`), named by
a hash of the output's real path, so nothing is left beside the user's files and two
spellings of one path (`./t.jsonl`, a link) share a lock. The kernel drops it when the
process ends however it ends (a kill included), so a stale lock cannot block a later run.
Where no lock can be taken (no writable cache, a file system without `flock`), the run
goes ahead unlocked, as every run did before.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kvsl.base.locations import cache_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs go unlocked
    fcntl = None  # type: ignore[assignment]


class Busy(Exception):
    """Another process holds the lock on `path` (its pid, when it wrote one)."""

    def __init__(self, path: Path, holder: int | None) -> None:
        super().__init__(str(path))
        self.path = path
        self.holder = holder


def lock_file_for(path: str | os.PathLike[str]) -> Path:
    """The lock file standing for output `path` (the same for every spelling of it).

    >>> lock_file_for("a/../t.jsonl") == lock_file_for("t.jsonl")
    True
    """
    real = os.path.realpath(os.fspath(path))
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return cache_dir("locks") / f"{digest}.lock"


# A file system without advisory locks (some network mounts) refuses `flock` with one of
# these: kvsl then writes without the lock, one writer at a time, as it always did there.
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


def flock(handle: Any, *, wait: bool = True) -> bool:
    """Take an exclusive `flock` on the open file `handle` (released when it is closed).

    True when held; False where no lock can be had (no `fcntl`, a file system without
    locks), and the caller goes on unlocked. With `wait=False`, BlockingIOError when
    another open file holds it.
    """
    if fcntl is None:
        return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        raise
    except OSError as err:
        if err.errno in NO_LOCKS:
            return False
        raise
    return True


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the one-writer lock for output `path` for the block; raise Busy if another
    process holds it. Never waits: a second writer should stop, not queue behind the first.
    """
    handle = _open_lock(lock_file_for(path))
    if handle is None:
        yield  # no lock file to be had here: unlocked, as before
        return
    with handle:
        try:
            held = flock(handle, wait=False)
        except BlockingIOError:
            raise Busy(Path(path), _holder(handle)) from None
        if held:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()).encode())
            handle.flush()
        yield


def _open_lock(lock: Path) -> Any:
    if fcntl is None:
        return None
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return lock.open("a+b")
    except OSError:
        return None


def _holder(handle: Any) -> int | None:
    """The pid the holder wrote into the lock file, if it reads as one."""
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        return int(handle.read(32).decode("ascii").strip())
    return None
