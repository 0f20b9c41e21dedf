"""Literal values: the one conversion of a number or string token into its value.

Both never raise, whatever the text: an integer beyond 64 bits (KVS020) and an invalid
escape (KVS015) are diagnostics appended to the list the caller passes, the only syntax
errors found after a file has parsed.

>>> problems = []
>>> number_literal("12", Span.whole_file("s.kvs"), problems).value, problems
(12, [])
>>> string_literal("STRING", '"a\\\\tb"', 0, 6, SourceFile("s.kvs", '"a\\\\tb"'), problems).value
'a\\tb'
"""

from __future__ import annotations

import re

from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import Number, String

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "0": "\0", "/": "/"}
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Integers are 64-bit signed, like the tensors' and the seeds' integers downstream;
# checking the digit count first means no huge literal is ever converted.
MAX_INTEGER = 2**63 - 1
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def number_literal(text: str, span: Span, problems: list[Diagnostic]) -> Number:
    """A number token's value (int unless it has a dot or an exponent).

    An integer beyond 64 bits is a KVS020 error (its value is clamped, so that no
    other error follows from it); a decimal too large for a float becomes inf,
    which the checker reports as not finite (KVS111).
    """
    if len(text) < 19 and text.isdigit():  # the common case: a small non-negative integer
        return Number(int(text), text, span)
    if not _INTEGER.fullmatch(text):
        return Number(float(text), text, span)  # float() of any digit string is safe
    digits = text.lstrip("+-").lstrip("0")
    value = int(text) if len(digits) <= 19 else MAX_INTEGER + 1
    if abs(value) > MAX_INTEGER:
        shown = text if len(text) <= 24 else text[:20] + "..."
        problems.append(
            Diagnostic(
                "KVS020",
                Severity.ERROR,
                f"integer `{shown}` is out of range"
                + (f" ({len(digits):,} digits)" if shown != text else ""),
                span,
                help=f"integers are 64-bit: at most {MAX_INTEGER:,} in size; "
                "write a large decimal as a float such as `1e30`",
            )
        )
        value = -MAX_INTEGER if text.startswith("-") else MAX_INTEGER
    return Number(value, text, span)


def string_literal(
    kind: str, raw: str, start: int, end: int, source: SourceFile, problems: list[Diagnostic]
) -> String:
    """A string token's value: `\"\"\"...\"\"\"` verbatim, `"..."` with its escapes decoded."""
    if kind == "LONG_STRING":
        return String(raw[3:-3], True, source.span(start, end))
    body = raw[1:-1]
    if "\\" not in body:
        return String(body, False, source.span(start, end))
    base = start + 1

    def decode(match: re.Match[str]) -> str:
        esc = match.group(1)
        if len(esc) > 1:  # \uXXXX or \UXXXXXXXX (a bare `\u` falls through to the error)
            code = int(esc[1:], 16)
            if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code)
        elif esc in _ESCAPES:
            return _ESCAPES[esc]
        problems.append(
            Diagnostic(
                "KVS015",
                Severity.ERROR,
                f"invalid escape `\\{esc}` in string",
                source.span(base + match.start(), base + match.end()),
                help=f"write `\\\\{esc[0]}` for a literal backslash; valid escapes are "
                '\\n \\t \\r \\0 \\\\ \\" \\/ \\uXXXX \\UXXXXXXXX',
            )
        )
        return match.group(0)

    return String(_ESCAPE.sub(decode, body), False, source.span(start, end))
