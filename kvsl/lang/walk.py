"""The `*.kvs` files of a folder named to `kvsl check` or `kvsl fmt`: a bounded walk.

A folder walk finds the specs the user keeps in that folder, and nothing else:

- hidden folders (`.git`, `.venv`), `node_modules`, `__pycache__`, `site-packages` and
  virtual environments (a folder with a `pyvenv.cfg`) are skipped, as are folders that
  cannot be read and other file systems mounted below it (`/proc` under `/`), as
  `find -xdev` does;
- links are not followed out of it: a linked folder is not entered (`os.walk`'s
  default) and a linked `.kvs` file whose target lies outside the folder is left out,
  so `kvsl fmt FOLDER` never rewrites a file outside what was named (a file named
  directly is always taken, link or not);
- past `MAX_WALK_FOLDERS` folders the walk stops with KVS023 and lists none of that
  folder's files, so `kvsl fmt /` neither runs for hours nor formats half a disk.

>>> walk_specs("/nonexistent")
([], [])
"""

from __future__ import annotations

import os

from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.source import Span

# A project with specs has tens of folders; a home directory tens of thousands. The cap
# bounds `kvsl fmt ~` to a second or two of walking before it says "name a smaller folder".
MAX_WALK_FOLDERS = 20_000

SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "dist-packages"})


def walk_specs(folder: str) -> tuple[list[str], list[Diagnostic]]:
    """The `*.kvs` files under `folder` (sorted), or none and KVS023 past the cap."""
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return [], []
    inside = os.path.join(os.path.realpath(folder), "")
    found: list[str] = []
    for count, (root, dirs, names) in enumerate(os.walk(folder), start=1):
        if count > MAX_WALK_FOLDERS:
            return [], [_too_large(folder)]
        dirs[:] = sorted(d for d in dirs if _enters(os.path.join(root, d), d, device))
        for name in names:
            path = os.path.join(root, name)
            if name.endswith(".kvs") and _stays_inside(path, inside):
                found.append(path)
    return sorted(found), []


def _enters(path: str, name: str, device: int) -> bool:
    """Whether the walk goes into the folder `path` (called `name`)."""
    if name.startswith(".") or name in SKIPPED_FOLDERS:
        return False
    try:
        if os.lstat(path).st_dev != device:  # another file system mounted here
            return False
    except OSError:
        return False
    return not os.path.exists(os.path.join(path, "pyvenv.cfg"))  # a virtual environment


def _stays_inside(path: str, inside: str) -> bool:
    """A plain file, or a link whose target lies under the walked folder (`inside`)."""
    return not os.path.islink(path) or os.path.realpath(path).startswith(inside)


def _too_large(folder: str) -> Diagnostic:
    return Diagnostic(
        "KVS023",
        Severity.ERROR,
        f"`{folder}` holds more than {MAX_WALK_FOLDERS:,} folders: stopped looking for specs",
        Span.whole_file(folder),
        help="name the folder that holds your specs (`kvsl check specs/`), or the files",
    )
