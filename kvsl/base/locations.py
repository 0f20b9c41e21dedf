"""Where kvsl keeps files of its own: the user cache, and the package data it never writes.

`KVSL_CACHE_DIR` has one meaning: the root of kvsl's user cache (default
`~/.cache/kvsl`). Each kind of cached file has a folder under it, named by `cache_dir`:

    $KVSL_CACHE_DIR/models/      converted GGUF models (kvsl.engine.models)
    $KVSL_CACHE_DIR/artifacts/   artifacts of specs whose own folder kvsl must not write

(Before this was settled, the model cache used `$KVSL_CACHE_DIR` itself as its folder;
`kvsl.engine.models` still reuses a conversion it finds there, so nothing is converted
twice.)

The built-in specs of an installed wheel are package data under `kvsl/_builtin/`
(`PACKAGED_DIR`); `is_packaged` tells a caller never to write beside such a file.
Read `PACKAGED_DIR` through this module (`locations.PACKAGED_DIR`), not by importing
the name, so that a test can point it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "KVSL_CACHE_DIR"

# Package data of an installed wheel: kvsl/_builtin/{specs,templates} (see setup.py).
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "_builtin"


def cache_root() -> Path:
    """`$KVSL_CACHE_DIR` (`~` expanded), else `~/.cache/kvsl`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "kvsl"


def cache_dir(name: str) -> Path:
    """The user-cache folder for one kind of file: `cache_root() / name` (not created).

    >>> cache_dir("artifacts") == cache_root() / "artifacts"
    True
    """
    return cache_root() / name


def is_packaged(path: str | os.PathLike[str]) -> bool:
    """Whether `path` lies in the installed package's data (never a place to write).

    >>> is_packaged(PACKAGED_DIR / "specs" / "step_by_step.kvs")
    True
    >>> is_packaged("specs/step_by_step.kvs")
    False
    """
    # os.path.realpath, not Path.resolve(): that raises RuntimeError on a link loop
    return Path(os.path.realpath(path)).is_relative_to(PACKAGED_DIR)
