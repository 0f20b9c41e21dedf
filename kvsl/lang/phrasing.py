"""How the checker words a finding: error and warning constructors, "did you mean",
quoted word lists, paths and long values as shown in messages.

Messages follow the house style (lowercase, no trailing period, names in backticks);
the pieces here keep that wording the same in every module of the checker.

>>> joined(["random", "nearest"])
'`random` or `nearest`'
>>> suggestion("pairz", ["pairs", "shots"])
'did you mean `pairs`?'
"""

from __future__ import annotations

import os
from difflib import get_close_matches
from functools import lru_cache

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.source import Span


def error(
    code: str, message: str, span: Span, help: str | None = None, labels: tuple[Label, ...] = ()
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)


def warning(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, help=help)


def suggestion(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """`did you mean `x`?` for the closest candidate, None when none is close."""
    close = closest(word, candidates)
    return f"did you mean `{close}`?" if close is not None else None


def closest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate `word` is most likely a misspelling of, None when none is close."""
    return _closest(word, tuple(candidates))


@lru_cache(maxsize=1024)  # a file with the same unknown key 30,000 times costs one lookup
def _closest(word: str, candidates: tuple[str, ...]) -> str | None:
    close = get_close_matches(word, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def joined(words: list[str] | tuple[str, ...]) -> str:
    quoted = [f"`{w}`" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def shown(path: str) -> str:
    """A path as shown in messages: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith(os.pardir) else relative


def relative_help(spec: str, path: str, whose: str = "the spec") -> str:
    """Where a relative path written in the spec `spec` led: the spec's folder, or the
    current folder for a spec read from standard input (which has none).

    >>> relative_help("<stdin>", "/nowhere/t.j2")
    'the path is relative to the current folder (the spec is on standard input): /nowhere/t.j2'
    """
    from kvsl.lang.reading import STDIN_NAME

    if spec == STDIN_NAME:
        return f"the path is relative to the current folder (the spec is on standard input): {shown(path)}"
    return f"the path is relative to {whose}: {shown(path)}"


def shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
