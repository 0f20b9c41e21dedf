"""Atomic file writes: a file kvsl writes is either complete or absent, never half-written.

Used for artifacts, formatted specs, cached CAA directions and eval reports. Standard
library only, so the front end (`kvsl fmt`) can use it too. `private_dir` is the same for
a folder filled before it is renamed into place (a converted model) or thrown away.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kvsl.base.counts import decimal_count


def _mode_for(target: Path) -> int:
    """The permission bits of `target` if it exists, else 0666 less the process umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _writable_target(path: Path) -> Path:
    """The file to replace: a symlink's destination; an OSError for what is not a file.

    A rename replaces whatever has the name: `--out /dev/null` (run as root) turned the
    system's null device into a regular file, `--out a.fifo` a FIFO that a reader waited
    on, and a symlinked spec formatted by `kvsl fmt` lost its link (the new text went
    beside it, the file it pointed at kept the old). Writing goes through the link, and
    a device, FIFO or socket is refused, as an open() for writing would never replace it.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EEXIST, "not a regular file (it is left as it is)", str(path))
    return target


def _prefix(target: Path, pid: int) -> str:
    """`.report.json.<host>-<pid>.`: whose temporary file it is, for `_remove_orphans`."""
    host = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
    return f".{target.name}.{host}-{pid}."


def _remove_orphans(target: Path) -> None:
    """Remove the temporary files (and `private_dir` folders) of `target` left by
    processes of this host that died before they could (SIGKILL, a power cut). A live
    process's, another host's (a shared file system), or one that cannot be removed is
    left alone."""
    mine = _prefix(target, 0)[: -len("0.")]  # `.report.json.<host>-`
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        rest = sibling.name[len(mine) :] if sibling.name.startswith(mine) else ""
        pid = decimal_count(rest.split(".", 1)[0])
        if not rest.endswith(".tmp") or pid is None or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling)
            else:
                sibling.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number that cannot be checked: keep it
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[Path]:
    """A temporary file beside `path` to write; it replaces `path` when the block succeeds.

    On any failure, Ctrl-C included, the temporary file is removed and `path` is untouched;
    one left by a killed process is removed by the next write of `path` on this host.
    `fsync` flushes the bytes to disk before the rename (for files worth a crash's care).
    The temporary file is created in `path`'s folder (the same file system, so the rename
    is atomic); an `OSError` from creating it propagates before the block runs, as does one
    for a `path` that is a folder, a device, a FIFO or a socket (never replaced). A symlink
    is written through: the file it points at is replaced, the link stays.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "report.json"
    >>> with atomic_path(target) as temporary:
    ...     _ = temporary.write_text("{}")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{}', ['report.json'])
    """
    target = _writable_target(Path(path))
    _remove_orphans(target)
    handle, name = tempfile.mkstemp(
        prefix=_prefix(target, os.getpid()), suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp makes the file private (0600); the result should have the permissions the
        # file it replaces had, or a new file's usual ones. Set after the block, not before:
        # a writer may replace the temporary file (safetensors' `save_file` does), and a
        # mode set before would be lost with it.
        os.chmod(temporary, _mode_for(target))
        if fsync:
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def private_dir(path: str | os.PathLike[str]) -> Path:
    """A new, empty folder beside `path` that this process owns, to fill and then rename
    to `path` (or remove); those left by dead processes of this host are removed first.

    A folder is renamed into place whole, as `atomic_path` does a file; but a kill (no
    `finally`, no `atexit`) left its half-filled folder for good: a model conversion
    killed in its 20 s of saving kept half a gigabyte in the model cache, an offload
    folder a model's weights. Named like `atomic_path`'s files (`.<name>.<host>-<pid>.XXXX.tmp`),
    so the next caller for the same `path` recognises a dead writer's and removes it.

    >>> import tempfile, pathlib
    >>> parent = pathlib.Path(tempfile.mkdtemp())
    >>> staging = private_dir(parent / "model")
    >>> staging.is_dir(), staging.parent == parent, staging.name.endswith(".tmp")
    (True, True, True)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    return Path(
        tempfile.mkdtemp(prefix=_prefix(target, os.getpid()), suffix=".tmp", dir=target.parent)
    )


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """`Path(path).write_text(text, encoding="utf-8")`, but complete or not at all; the
    folder is created if needed. For the reports and docs the long scripts write at their
    end, which a kill at that moment left truncated (a tracked doc among them).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "docs" / "results.md"
    >>> write_text_atomically(target, "# Results\\n").read_text()
    '# Results\\n'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return target
