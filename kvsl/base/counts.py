"""Counts written by someone else: a header's Content-Length, a flag's value, a file name's pid.

`str.isdigit()` is the wrong gate for `int()`: it is true for `"²"` and `"٣"` (which `int()`
refuses or reads as another digit), and `int()` refuses more than 4,300 digits with a plain
ValueError. Both reached users as tracebacks (`kvsl explain ²`, `kvsl lsp --debounce-ms ²`,
an LSP header `Content-Length: 999…9` that ended the language server). `decimal_count` is
the one way kvsl reads such a count.
"""

from __future__ import annotations

import re

# Larger than any limit kvsl sets (bytes, milliseconds, codes, pids): a count with more
# significant digits reads as this, so "over the limit" is reported without converting it.
OVER = 10**18

_DIGITS = re.compile(rb"[0-9]+")


def decimal_count(text: str | bytes) -> int | None:
    """A count written in ASCII digits, or None for anything else.

    Signs, spaces, non-ASCII digits and the empty string are None; a count of more than
    18 significant digits reads as `OVER` (never converted, so never refused by `int`).

    >>> decimal_count("0042"), decimal_count(b"7"), decimal_count("9" * 5000) == OVER
    (42, 7, True)
    >>> decimal_count("²"), decimal_count("٣"), decimal_count("+1"), decimal_count("")
    (None, None, None, None)
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if not _DIGITS.fullmatch(raw):
        return None
    significant = raw.lstrip(b"0")
    return OVER if len(significant) > 18 else int(raw)
