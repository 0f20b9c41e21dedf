"""The `*.kvs` files of a folder named to `kvsl check` or `kvsl fmt`: a bounded walk.

A folder walk finds the specs the user keeps in that folder, and nothing else:

- hidden folders (`.git`, `.venv`), `node_modules`, `__pycache__`, `site-packages` and
  virtual environments (a folder with a `pyvenv.cfg`) are skipped, as are folders that
  cannot be read. Other file systems mounted below it are walked: a `specs/` folder
  mounted into a container is where the specs are, and skipping it would let a CI check
  pass on nothing; the folder cap bounds a walk into a large one;
- links are not followed out of it: a linked folder is not entered (`os.walk`'s
  default), and for `kvsl fmt` a linked `.kvs` file whose target lies outside the folder
  is left out, so it never rewrites a file outside what was named (`kvsl check` reads
  such a file; a file named directly is always taken, link or not);
- the file system's root is not walked at all, and past `MAX_WALK_FOLDERS` folders a walk
  stops; both are KVS023 and list none of that folder's files, so `kvsl fmt /` by mistake
  (every checkout on the machine, test fixtures included) changes nothing. The home folder
  is walked like any other, within the cap: a test or a container often makes a project
  folder the home (HOME=tmp), and a real home with checkouts in it passes the cap.

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


def walk_specs(folder: str, *, writing: bool = False) -> tuple[list[str], list[Diagnostic]]:
    """The `*.kvs` files under `folder` (sorted), or none and KVS023 past the cap.

    `writing` (`kvsl fmt`) leaves out linked files whose target is outside `folder`;
    reading them (`kvsl check`) changes nothing, so a check still covers them.
    """
    if not os.path.isdir(folder):
        return [], []
    real = os.path.realpath(folder)
    if real == os.path.realpath(os.sep):
        return [], [_too_large(folder, "the file system's root")]
    inside = os.path.join(real, "")
    found: list[str] = []
    for count, (root, dirs, names) in enumerate(os.walk(folder), start=1):
        if count > MAX_WALK_FOLDERS:
            return [], [_too_large(folder)]
        dirs[:] = sorted(d for d in dirs if _enters(os.path.join(root, d), d))
        for name in names:
            path = os.path.join(root, name)
            if name.endswith(".kvs") and (not writing or _stays_inside(path, inside)):
                found.append(path)
    return sorted(found), []


def _enters(path: str, name: str) -> bool:
    """Whether the walk goes into the folder `path` (called `name`)."""
    if name.startswith(".") or name in SKIPPED_FOLDERS:
        return False
    return not os.path.exists(os.path.join(path, "pyvenv.cfg"))  # a virtual environment


def _stays_inside(path: str, inside: str) -> bool:
    """A plain file, or a link whose target lies under the walked folder (`inside`)."""
    return not os.path.islink(path) or os.path.realpath(path).startswith(inside)


def _too_large(folder: str, whole: str | None = None) -> Diagnostic:
    says = (
        f"is {whole}: not searched for specs"
        if whole
        else f"holds more than {MAX_WALK_FOLDERS:,} folders: stopped looking for specs"
    )
    return Diagnostic(
        "KVS023",
        Severity.ERROR,
        f"`{folder}` {says}",
        Span.whole_file(folder),
        help="name the folder that holds your specs (`kvsl check specs/`), or the files",
    )
