"""What the checker hands on about a value besides the value: whether it failed, and where
a path value points.

The checker (`kvsl.lang.check`) keeps a key whose value failed its check, so that the key
still counts as present (no "missing key" on top of the real error), but with `INVALID`
as its value, which every later step (cross-checks, lowering) skips. Path values are
relative to the file that wrote them (also through `extends`); `resolve_path` is the one
rule for turning them into paths, shared by the checker and lowering.
"""

from __future__ import annotations

import os
from typing import Any

INVALID: Any = object()
"""The value of a field whose value failed its check (compare with `is`)."""


def resolve_path(value: str, directory: str) -> str:
    """`value` (`~` expanded) relative to `directory`, the folder of the file that wrote it.

    >>> resolve_path("traces/x.jsonl", "specs")
    'specs/traces/x.jsonl'
    >>> resolve_path("/abs/x.jsonl", "specs")
    '/abs/x.jsonl'
    """
    expanded = os.path.expanduser(value)
    return os.path.normpath(os.path.join(directory, expanded))
