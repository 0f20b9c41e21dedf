"""Reading a file a user named: regular files only, with a size cap, never a hang.

Every path the front end reads comes from a user (a command line, `extends =`,
`template =`, `traces =`), so it may name anything: a FIFO (opening it blocks until a
writer comes, forever), a device (`/dev/zero` has size 0 and never ends), a directory,
or a path with a NUL byte (`"\\0"` is a valid escape in a spec string). One reader
handles them all, so that each caller only turns a `FileProblem` into its own code.

>>> read_regular_file("/dev/zero", 100)
Traceback (most recent call last):
...
kvsl.lang.files.FileProblem: is not a regular file (a character device)
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# The largest data file kvsl reads whole (benchmarks, question pools, traces, prompt files):
# far above any real one, and a bound on what a wrong path can make kvsl read into memory.
MAX_DATA_BYTES = 1 << 30


@dataclass
class FileProblem(Exception):
    """Why a path cannot be read; `reason` completes "`path` ..." in a message."""

    reason: str
    kind: str  # "missing", "directory", "special", "too-large", "unreadable", "bad-name"
    size: int = 0
    detail: str = ""  # for "unreadable": the system's reason, lowercase ("permission denied")

    def __str__(self) -> str:
        return self.reason


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _unreadable(err: Exception) -> FileProblem:
    detail = (getattr(err, "strerror", None) or type(err).__name__).lower()
    return FileProblem(f"cannot be read ({detail})", "unreadable", detail=detail)


def _open_regular(path: str) -> tuple[int, int]:
    """(file descriptor, size) of a regular file, or FileProblem. The caller closes it."""
    if "\0" in path:
        raise FileProblem("has a NUL character in its name", "bad-name")
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not block; the fstat below then
        # refuses it. It has no effect on reading a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileProblem("does not exist", "missing") from None
    except IsADirectoryError:
        raise FileProblem("is a directory", "directory") from None
    except (OSError, ValueError) as err:
        raise _unreadable(err) from None
    try:
        info = os.fstat(fd)
    except OSError as err:
        os.close(fd)
        raise _unreadable(err) from None
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise FileProblem("is a directory", "directory")
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        what = next((name for test, name in _SPECIAL if test(info.st_mode)), "a special file")
        raise FileProblem(f"is not a regular file ({what})", "special")
    return fd, info.st_size


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or FileProblem.

    The size is checked twice: from `fstat` before reading, and by reading at most
    `limit + 1` bytes (a file that grows while it is read is still refused).
    """
    fd, size = _open_regular(path)
    try:
        if size > limit:
            raise FileProblem(
                f"is too large ({size:,} bytes, the limit is {limit:,})", "too-large", size
            )
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as err:
        raise _unreadable(err) from None
    finally:
        os.close(fd)
    if total > limit:
        raise FileProblem(f"is too large (over {limit:,} bytes)", "too-large", total)
    return b"".join(chunks)


def regular_file_problem(path: str) -> FileProblem | None:
    """Why `path` is not a readable regular file, or None (nothing is read)."""
    try:
        fd, _ = _open_regular(path)
    except FileProblem as problem:
        return problem
    os.close(fd)
    return None


def regular_file_sha256(path: str, limit: int) -> str:
    """Hex sha256 of a regular file's bytes (streamed); "" when it cannot be read.

    Hashing stops with "" past `limit` bytes, so a huge or endless file costs at most
    that much reading.
    """
    try:
        fd, size = _open_regular(path)
    except FileProblem:
        return ""
    digest = hashlib.sha256()
    total = 0
    try:
        if size > limit:
            return ""
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                return ""
            digest.update(chunk)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return digest.hexdigest()


def decode_data_text(data: bytes) -> str:
    """The text of a UTF-8 data file (JSON lines), without a leading byte-order mark.

    Windows editors save UTF-8 with a BOM first; JSON does not allow one, so the file's
    first record was refused as invalid JSON. An editor shows no column for it, so a
    diagnostic's columns on line 1 match what the user sees. UnicodeDecodeError as
    `bytes.decode` raises it.

    >>> decode_data_text(b'\\xef\\xbb\\xbf{"a": 1}\\n')
    '{"a": 1}\\n'
    """
    return data.decode("utf-8-sig")


def output_folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Create the output folder `path` (and its parents) now; why it cannot be, or None.

    For the folders commands fill at the end of long work (`kvsl build --out`, `kvsl eval
    --out`, `kvsl tune --out`): a file given there used to end the run in a mkdir traceback
    after minutes of extraction or generation, not before.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> output_folder_problem(root / "new" / "deeper") is None
    True
    >>> _ = (root / "notes.md").write_text("x")
    >>> output_folder_problem(root / "notes.md")
    'it is a file, not a folder'
    >>> output_folder_problem(root / "notes.md" / "sub")
    '`notes.md` on its path is a file, not a folder'
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if _not_a_folder(folder):
            return "it is a file, not a folder"
        for parent in folder.parents:
            if _not_a_folder(parent):
                return f"`{parent.name}` on its path is a file, not a folder"
        return err.strerror or str(err)
    return None


def _not_a_folder(path: Path) -> bool:
    """Whether something other than a folder is at `path`; False where it cannot be looked
    at (a name too long, a folder without search permission): mkdir's own error then says why."""
    try:
        return path.exists() and not path.is_dir()
    except OSError:
        return False
