"""The tokens of a `.kvs` file: one scanner for the parser, its error recovery and the
editor server's highlighting.

`tokenize` never fails. Text that starts no token (a stray `:`, an unterminated string)
becomes an `$ERROR` token carrying its KVS011/KVS012 diagnostic, and scanning goes on
after it, so that error recovery sees every token the file has. The terminals are those
of `grammar.lark` (the language's definition), as one regular expression in the same
order of preference: a long string before a string, a number before a name.

>>> tokens = tokenize(SourceFile("s.kvs", 'pairs = 4  # four'))
>>> tokens.kinds, tokens.values[2], tokens.begin_at[2]
(['NAME', '=', 'NUMBER', '$END'], '4', (1, 9))
>>> tokens.comments[0].text
'# four'
"""

from __future__ import annotations

import re

from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import Comment

# Token kinds: these five names, the punctuation itself (`=` `{` `}` `[` `]` `,` `..`),
# `$ERROR` (text that starts no token) and `$END` (always the last token).
NAME, NUMBER, STRING, LONG_STRING = "NAME", "NUMBER", "STRING", "LONG_STRING"
ERROR, END = "$ERROR", "$END"

# Each match is one token with the whitespace before it (group WS), which halves the
# Python-level loop; a match of whitespace alone ends the file.
_SCANNER = re.compile(
    r"(?P<WS>[ \t\r\n\f\ufeff]*)(?:"
    r"(?P<COMMENT>#[^\n]*)"
    r'|(?P<LONG_STRING>"""(?:[^"]|"(?!""))*""")'
    r'|(?P<STRING>"(?:[^"\\\n]|\\[^\n])*")'
    r"|(?P<NUMBER>[+-]?(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|[0-9]+))"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<DOTDOT>\.\.)"
    r"|(?P<PUNCT>[{}\[\]=,])"
    r"|\Z)"
)
_LEADING_SPACE = re.compile(r"[ \t\r\n\f\ufeff]*")


class Tokens:
    """The tokens of one file as parallel lists (index i is token i), ending with `$END`.

    `begin_at`/`end_at` are the 1-based (line, column) of each token's first character
    and of the position just after it; `errors` maps the index of each `$ERROR` token
    to its diagnostic. Comments are not tokens: they are in `comments`, in order.
    """

    __slots__ = (
        "source",
        "kinds",
        "values",
        "starts",
        "ends",
        "begin_at",
        "end_at",
        "comments",
        "errors",
        "whole",
    )

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.kinds: list[str] = []
        self.values: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.begin_at: list[tuple[int, int]] = []
        self.end_at: list[tuple[int, int]] = []
        self.comments: list[Comment] = []
        self.errors: dict[int, Diagnostic] = {}
        self.whole = Span(source.path, 0, 0, 1, 1, 1, 1)

    def span(self, first: int, last: int) -> Span:
        """The span from the start of token `first` to the end of token `last`."""
        return Span(
            self.source.path,
            self.starts[first],
            self.ends[last],
            *self.begin_at[first],
            *self.end_at[last],
        )

    def first_on_line(self) -> list[bool]:
        """Whether each token starts a line (no token ends on the line it starts on)."""
        flags = []
        last_line = 0
        for (line, _), (end_line, _) in zip(self.begin_at, self.end_at, strict=True):
            flags.append(line > last_line)
            last_line = end_line
        if flags:
            flags[-1] = True  # the end of the file ends every line
        return flags


def tokenize(source: SourceFile) -> Tokens:
    """Every token of `source`, never failing (see the module doc)."""
    tokens = Tokens(source)
    text = source.text
    position, line, line_start = 0, 1, 0
    while True:
        position, line, line_start = _scan(tokens, position, line, line_start)
        if position >= len(text):
            break
        # whitespace, then a character that starts no token (whitespace alone would
        # have matched the scanner's end of file)
        start = _LEADING_SPACE.match(text, position).end()  # type: ignore[union-attr]
        newlines = text.count("\n", position, start)
        if newlines:
            line += newlines
            line_start = text.rindex("\n", position, start) + 1
        diagnostic = character_diagnostic(source, start)
        end = diagnostic.span.end if text[start] == '"' else start + 1
        tokens.errors[len(tokens.kinds)] = diagnostic
        _append(tokens, ERROR, text[start:end], start, end, (line, start - line_start + 1))
        tokens.end_at[-1] = (line, end - line_start + 1)
        position = end
    end = len(text)
    _append(tokens, END, "", end, end, (line, end - line_start + 1))
    tokens.whole = Span(source.path, 0, end, 1, 1, line, end - line_start + 1)
    return tokens


def _append(
    tokens: Tokens, kind: str, value: str, start: int, end: int, at: tuple[int, int]
) -> None:
    tokens.kinds.append(kind)
    tokens.values.append(value)
    tokens.starts.append(start)
    tokens.ends.append(end)
    tokens.begin_at.append(at)
    tokens.end_at.append(at)


def _scan(tokens: Tokens, position: int, line: int, line_start: int) -> tuple[int, int, int]:
    """Scan tokens from `position` up to the end of the file or the first text that
    starts no token; returns (position, line, line start) where scanning stopped."""
    text = tokens.source.text
    path = tokens.source.path
    kinds, values = tokens.kinds, tokens.values
    starts, ends = tokens.starts, tokens.ends
    begin_at, end_at = tokens.begin_at, tokens.end_at
    comments = tokens.comments
    for match in _SCANNER.finditer(text, position):
        if match.start() != position:  # the text in between matched nothing
            return position, line, line_start
        start = match.end(1)
        if start != position and text.find("\n", position, start) >= 0:
            line += text.count("\n", position, start)
            line_start = text.rindex("\n", position, start) + 1
        position = match.end()
        kind = match.lastgroup
        if kind == "WS":  # only whitespace left: the end of the file
            return position, line, line_start
        value = text[start:position]
        begin = (line, start - line_start + 1)
        if kind == "LONG_STRING" and "\n" in value:
            line += value.count("\n")
            line_start = start + value.rindex("\n") + 1
        finish = (line, position - line_start + 1)
        if kind == "COMMENT":
            comments.append(Comment(value, Span(path, start, position, *begin, *finish)))
            continue
        kinds.append(value if kind == "PUNCT" or kind == "DOTDOT" else kind)  # type: ignore[arg-type]
        values.append(value)
        starts.append(start)
        ends.append(position)
        begin_at.append(begin)
        end_at.append(finish)
    return position, line, line_start


def character_diagnostic(source: SourceFile, offset: int) -> Diagnostic:
    """KVS011/KVS012 for text at `offset` that starts no token."""
    text = source.text
    char = text[offset] if offset < len(text) else ""
    if char == '"':
        end = text.find("\n", offset)
        end = len(text) if end < 0 else end
        return Diagnostic(
            "KVS012",
            Severity.ERROR,
            "unterminated string",
            source.span(offset, end),
            help='close the string with `"` on the same line, or use `"""` for text '
            "that spans lines",
        )
    help = None
    if char == ":":
        help = "kvsl uses `=` between a key and its value: `pairs = 40`"
    elif char == ";":
        help = "items need no separator: put each `key = value` on its own line"
    shown = char if char.isprintable() else repr(char)[1:-1]
    return Diagnostic(
        "KVS011",
        Severity.ERROR,
        f"unexpected character `{shown}`",
        source.span(offset, offset + 1),
        help=help,
    )
