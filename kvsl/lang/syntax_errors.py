"""Syntax errors as diagnostics: what the parser expected where it stopped, in words.

The parser (`kvsl.lang.parser`) stops at the first token that cannot continue the file
and names the place it was in, one of the contexts below. Each context knows what could
have come there; three of them are common mistakes with their own code and help
(`pairs 40`: KVS014, `[1 2]`: KVS016, `x = }`: KVS017). The end of the file inside a
block or list is KVS013, pointing at the bracket never closed.

>>> from kvsl.lang.parser import parse_text
>>> parse_text('style "a" { x = 1 = 2 }')[1][0].message
'unexpected `=`, expected `}` or a name'
"""

from __future__ import annotations

import re

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.lexer import END, Tokens
from kvsl.lang.source import SourceFile

# Specs nest three levels (style > steer > at) plus lists; the limit keeps the parser
# (and everything that walks the tree) far from Python's recursion limit.
MAX_NESTING = 32

# Where the parser was when it stopped: the start of an item inside a block or at the
# top level, after an item's name, after a block's header, after `=`, after `key = word`,
# where a list element may come (after `[` or `,`), after a list element, after `..`.
ITEM, TOP, AFTER_NAME, AFTER_HEADER, AFTER_EQUAL, AFTER_WORD = range(6)
ELEMENT, AFTER_ELEMENT, AFTER_DOTDOT = range(6, 9)

# What each context accepts, in words (sorted as they are shown).
_EXPECTED = {
    ITEM: ["`}`", "a name"],
    AFTER_WORD: ["`}`", "a name"],  # at the top level: TOP's
    TOP: ["a name", "end of file"],
    AFTER_HEADER: ["`{`"],
    ELEMENT: ["`[`", "`]`", "a name", "a number", "a string"],
    AFTER_DOTDOT: ["`,`", "`]`", "a number"],
}


def _error(
    code: str, message: str, span: object, help: str | None = None, labels: tuple = ()
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)  # type: ignore[arg-type]


def unexpected(
    tokens: Tokens, index: int, context: int, top_level: bool, unclosed: list[int]
) -> Diagnostic:
    """The diagnostic for token `index`, which cannot come in `context`.

    `top_level`: the item being parsed is not inside a block. `unclosed`: offsets of the
    brackets the file never closes (`scan_brackets`), for the end of the file and a
    stray `}`.
    """
    source = tokens.source
    kind = tokens.kinds[index]
    span = tokens.span(index, index)
    found = describe_token(kind, tokens.values[index])
    if kind == END:
        return _end_of_file(source, unclosed)
    if context == AFTER_NAME:
        key = tokens.values[index - 1]
        return _error(
            "KVS014",
            f"expected `=` after `{key}`, found {found}",
            span,
            help=f"write `{key} = {tokens.values[index]}`",
        )
    if context == AFTER_EQUAL or (context == AFTER_WORD and kind == "="):
        # `x =` then, on the next line, `y = 1`: the value of `x` was taken to be `y`
        return _error(
            "KVS017",
            f"expected a value after `=`, found {found}",
            span,
            help="every key needs a value: a string, a number, a name or a list",
        )
    if context == AFTER_ELEMENT:
        return _error(
            "KVS016",
            f"expected `,` or `]` in list, found {found}",
            span,
            help="separate list items with commas: `[1, 2]`",
        )
    if context in (ITEM, AFTER_WORD) and top_level:
        context = TOP
    expected = _EXPECTED[context]
    message = f"unexpected {found}, expected " + (
        expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
    )
    help = "this `}` has no matching `{`" if kind == "}" and not unclosed else None
    return _error("KVS010", message, span, help)


def _end_of_file(source: SourceFile, unclosed: list[int]) -> Diagnostic:
    text = source.text
    end = len(text)
    labels: tuple[Label, ...] = ()
    what = "`}`"
    if unclosed:
        opener = unclosed[-1]
        what = "`}`" if text[opener] == "{" else "`]`"
        labels = (Label(source.span(opener, opener + 1), f"this `{text[opener]}` is never closed"),)
    return _error(
        "KVS013",
        f"unexpected end of file: expected {what}",
        source.span(end, end),
        labels=labels,
        help=f"add the missing {what}",
    )


def describe_token(kind: str, value: str) -> str:
    """A token as shown in a message: its text in backticks (shortened), or end of file."""
    if kind == END:
        return "end of file"
    if len(value) > 30:
        value = value[:27] + "..."
    value = value.replace("\n", "\\n")
    return f"`{value}`"


def too_deep(source: SourceFile, offset: int) -> Diagnostic:
    """KVS007 at the first bracket nested deeper than MAX_NESTING."""
    return _error(
        "KVS007",
        f"nesting is too deep (more than {MAX_NESTING} levels of `{{` and `[`)",
        source.span(offset, offset + 1),
        help="a spec nests blocks three levels deep: style > steer > at",
    )


def scan_brackets(text: str) -> tuple[int | None, list[int]]:
    """(offset of the first bracket nested too deep or None, offsets of unclosed openers).

    Skips strings and comments. Linear, and runs only for a file that did not parse, so
    that 10,000 nested braces are one KVS007 rather than 10,000 errors.
    """
    stack: list[int] = []
    for match in _BRACKET_TOKEN.finditer(text):
        i = match.start()
        ch = text[i]
        if ch in "{[":
            stack.append(i)
            if len(stack) > MAX_NESTING:
                return i, stack
        elif ch in "}]" and stack:
            stack.pop()
    return None, stack


# strings and comments (skipped whole, so brackets inside them do not count), or a bracket
_BRACKET_TOKEN = re.compile(
    r'"""(?:[^"]|"(?!""))*(?:"""|$)|"(?:[^"\\\n]|\\[^\n])*"?|#[^\n]*|[{}\[\]]'
)
