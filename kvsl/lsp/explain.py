"""`kvsl explain` text for editors: Markdown, and a file link for a diagnostic's code.

LSP links a diagnostic's code to a URI (`codeDescription.href`). kvsl has no web page per
code, so the explanation is written once per code into kvsl's cache folder
(`$KVSL_CACHE_DIR/explain/KVS104.md`, by default `~/.cache/kvsl/explain/`) and linked as a
`file://` URI, which every editor can open. The text is the registry's, as `kvsl explain`
prints it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from kvsl.lang.codes import CODES


def explain_markdown(code: str) -> str | None:
    """The registry's explanation of `code` as Markdown, or None for an unknown code.

    >>> explain_markdown("KVS104").splitlines()[0]
    '# KVS104: unknown key (error)'
    """
    entry = CODES.get(code)
    if entry is None:
        return None
    return (
        f"# {entry.code}: {entry.title} ({entry.severity.value})\n\n"
        f"{entry.explanation}\n\n"
        f"Example that triggers it:\n\n```kvs\n{entry.bad}\n```\n\n"
        f"Fixed:\n\n```kvs\n{entry.good}\n```\n"
    )


def explain_dir() -> Path:
    """$KVSL_CACHE_DIR/explain (`kvsl.base.locations`, the one home of the cache root)."""
    from kvsl.base.locations import cache_dir

    return cache_dir("explain")


@cache
def explain_uri(code: str) -> str | None:
    """A `file://` URI of the code's explanation, written on first use; None if it cannot be."""
    from kvsl.base.atomic import atomic_path

    text = explain_markdown(code)
    if text is None:
        return None
    path = explain_dir() / f"{code}.md"
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as temporary:
                temporary.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return Path(os.path.realpath(path)).as_uri()  # realpath: no RuntimeError on a link loop
