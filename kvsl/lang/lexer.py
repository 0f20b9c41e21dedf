"""The tokens of a `.kvs` file: one scanner for the parser, its error recovery and the
editor server's highlighting.

`tokenize` never fails. Text that starts no token (a stray `:`, an unterminated string)
becomes an `$ERROR` token carrying its KVS011/KVS012 diagnostic, and scanning goes on
after it, so that error recovery sees every token the file has. The terminals are those
of `grammar.lark` (the language's definition), as one regular expression in the same
order of preference: a long string before a string, a number before a name.

>>> tokens = tokenize(SourceFile("s.kvs", 'pairs = 4  # four'))
>>> tokens.kinds, tokens.values[2], tokens.span(2, 2).column
(['NAME', '=', 'NUMBER', '$END'], '4', 9)
>>> tokens.comments[0].text
'# four'
"""

from __future__ import annotations

import re
from bisect import bisect_right

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
_new = object.__new__


class Tokens:
    """The tokens of one file as parallel lists (index i is token i), ending with `$END`.

    `errors` maps the index of each `$ERROR` token to its diagnostic. Comments are not
    tokens: they are in `comments`, in order. Lines and columns are found when a span
    is made (a binary search in `line_starts`), not per token while scanning.
    """

    __slots__ = ("comments", "ends", "errors", "kinds", "line_starts", "source", "starts", "values")

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.kinds: list[str] = []
        self.values: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.comments: list[Comment] = []
        self.errors: dict[int, Diagnostic] = {}
        text = source.text
        starts = [0]
        at = text.find("\n")
        while at >= 0:
            starts.append(at + 1)
            at = text.find("\n", at + 1)
        self.line_starts = starts  # offset of the first character of each line

    def span(self, first: int, last: int) -> Span:
        """The span from the start of token `first` to the end of token `last`."""
        return self.offset_span(self.starts[first], self.ends[last])

    def offset_span(self, start: int, end: int) -> Span:
        """The span of the characters [start, end)."""
        starts = self.line_starts
        line, end_line = bisect_right(starts, start), bisect_right(starts, end)
        # Span is a frozen dataclass, whose __init__ sets each of its 7 fields through
        # object.__setattr__; the parser makes one per token, and filling the instance's
        # dict directly makes the same object in a third of the time (a 2,000-line spec
        # has 11,000 spans). tests/lang/test_lang_parser.py compares with Span(...).
        span = _new(Span)
        fields = span.__dict__
        fields["path"] = self.source.path
        fields["start"] = start
        fields["end"] = end
        fields["line"] = line
        fields["column"] = start - starts[line - 1] + 1
        fields["end_line"] = end_line
        fields["end_column"] = end - starts[end_line - 1] + 1
        return span

    @property
    def whole(self) -> Span:
        """The span of the whole file."""
        return self.offset_span(0, len(self.source.text))

    def lines(self) -> list[int]:
        """The 1-based line of each token's first character."""
        starts = self.line_starts
        return [bisect_right(starts, start) for start in self.starts]

    def first_on_line(self) -> list[bool]:
        """Whether each token starts a line (no token ends on the line it starts on)."""
        starts = self.line_starts
        flags = []
        last_line = 0
        for start, end in zip(self.starts, self.ends, strict=True):
            flags.append(bisect_right(starts, start) > last_line)
            last_line = bisect_right(starts, end)
        if flags:
            flags[-1] = True  # the end of the file ends every line
        return flags


def tokenize(source: SourceFile) -> Tokens:
    """Every token of `source`, never failing (see the module doc)."""
    tokens = Tokens(source)
    text = source.text
    position = 0
    while True:
        position = _scan(tokens, position)
        if position >= len(text):
            break
        # whitespace, then a character that starts no token (whitespace alone would
        # have matched the scanner's end of file)
        start = _LEADING_SPACE.match(text, position).end()  # type: ignore[union-attr]
        diagnostic = character_diagnostic(source, start)
        end = diagnostic.span.end if text[start] == '"' else start + 1
        tokens.errors[len(tokens.kinds)] = diagnostic
        _append(tokens, ERROR, text[start:end], start, end)
        position = end
    end = len(text)
    _append(tokens, END, "", end, end)
    return tokens


def _append(tokens: Tokens, kind: str, value: str, start: int, end: int) -> None:
    tokens.kinds.append(kind)
    tokens.values.append(value)
    tokens.starts.append(start)
    tokens.ends.append(end)


def _scan(tokens: Tokens, position: int) -> int:
    """Scan tokens from `position` up to the end of the file or the first text that
    starts no token; returns the position where scanning stopped."""
    text = tokens.source.text
    kinds, values = tokens.kinds, tokens.values
    starts, ends = tokens.starts, tokens.ends
    comments: list[tuple[int, int]] = []
    for match in _SCANNER.finditer(text, position):
        if match.start() != position:  # the text in between matched nothing
            break
        kind = match.lastgroup
        position = match.end()
        if kind == "WS":  # only whitespace left: the end of the file
            break
        start = match.end(1)
        if kind == "COMMENT":
            comments.append((start, position))
            continue
        value = text[start:position]
        kinds.append(value if kind == "PUNCT" or kind == "DOTDOT" else kind)  # type: ignore[arg-type]
        values.append(value)
        starts.append(start)
        ends.append(position)
    tokens.comments.extend(
        Comment(text[start:end], tokens.offset_span(start, end)) for start, end in comments
    )
    return position


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
