"""Style markers: the one validator of the regular expressions in `markers = [...]`.

The checker reports what this refuses (with a code), and the adherence scorer in
`kvsl.styles` skips what it refuses, so both always agree. Python's `re` fails on
hostile patterns in ways other than `re.error` (a repeat count of 2**32 overflows, 2,000
nested groups exhaust the recursion limit), and a huge repeat compiles into a huge
program; so bounds are checked on the text before anything is compiled.

>>> marker_problem(r"^\\s*\\d+\\.") is None
True
>>> marker_problem("a{4294967296}")
('KVS142', 'repeat count 4294967296 is over the limit of 1,000')
"""

from __future__ import annotations

import re

# A marker is a short phrase or line pattern ("^\s*\d+\.", "(?i)\bfirst\b"); these are
# far beyond any real one and keep compiling and searching cheap.
MAX_MARKER_CHARS = 500
MAX_MARKER_REPEAT = 1_000  # largest {m,n} count
MAX_MARKER_GROUPS_DEPTH = 20  # nested `(`

_REPEAT = re.compile(r"(?<!\\)\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")


def _group_depth(pattern: str) -> int:
    """Deepest nesting of unescaped `(` outside character classes."""
    depth = deepest = 0
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth = max(depth - 1, 0)
    return deepest


def marker_problem(pattern: str) -> tuple[str, str] | None:
    """(code, reason) why `pattern` cannot be a marker, or None if it can.

    KVS142: beyond the size, repeat or nesting limits. KVS126: not a valid regular
    expression. KVS141: it matches the empty text, so it would match every generation.
    """
    if len(pattern) > MAX_MARKER_CHARS:
        return "KVS142", f"{len(pattern):,} characters, over the limit of {MAX_MARKER_CHARS:,}"
    for match in _REPEAT.finditer(pattern):
        for count in match.groups():
            if count and (len(count) > 6 or int(count) > MAX_MARKER_REPEAT):
                shown = count if len(count) <= 12 else count[:10] + "..."
                return "KVS142", f"repeat count {shown} is over the limit of {MAX_MARKER_REPEAT:,}"
    if _group_depth(pattern) > MAX_MARKER_GROUPS_DEPTH:
        return "KVS142", f"groups nest more than {MAX_MARKER_GROUPS_DEPTH} deep"
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as err:
        return "KVS126", f"invalid regex: {err}"
    except (RecursionError, OverflowError, ValueError, MemoryError) as err:  # a last guard
        return "KVS142", f"too complex to compile ({type(err).__name__})"
    if compiled.search("") is not None:
        return "KVS141", "matches the empty text, so every generation would match it"
    return None


def validate_marker(pattern: str) -> str | None:
    """Why `pattern` cannot serve as an adherence marker, or None if it can.

    Markers are Python regexes searched with `re.MULTILINE` (so `^` matches at every
    line start). A pattern is refused when it does not compile, when it is beyond the
    limits above, or when it matches the empty text, since then every generation would
    match it and the score would mean nothing.

    >>> validate_marker(r"^\\s*\\d+\\.") is None
    True
    >>> validate_marker("(unclosed")
    'invalid regex: missing ), unterminated subpattern at position 0'
    >>> validate_marker("a*")
    'matches the empty text, so every generation would match it'
    """
    problem = marker_problem(pattern)
    return None if problem is None else problem[1]
