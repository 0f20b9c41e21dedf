"""Semantic tokens: what each token of a spec is, from the parser's own lexer.

An editor colours a `.kvs` file by these (LSP `textDocument/semanticTokens/full`), on top
of or instead of the TextMate grammar in editors/vscode: the same scanner that the parser
uses, so a colour never disagrees with what kvsl reads. A name is a block's name when an
item starts with it and a `=` does not follow (`style`, `steer`, `at`), a key when a `=`
follows, and a bare word (`random`, `greedy`) in a value; a style's name is the string
after `style`. Text that starts no token (a stray `:`) gets no colour.

>>> [(t.line, t.start, t.length, t.kind) for t in semantic_tokens('style "s" {\\n  pairs = 4 # n\\n}')]
[(0, 0, 5, 'keyword'), (0, 6, 3, 'type'), (1, 2, 5, 'property'), (1, 8, 1, 'operator'), (1, 10, 1, 'number'), (1, 12, 3, 'comment')]
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from kvsl.lang.lexer import END, ERROR, LONG_STRING, NAME, NUMBER, STRING, tokenize
from kvsl.lang.reading import MAX_SPEC_BYTES
from kvsl.lang.source import SourceFile
from kvsl.lsp.positions import LineIndex, Units, utf16_units

# The legend the server announces; a token's kind is an index into TOKEN_TYPES.
TOKEN_TYPES = [
    "keyword",
    "property",
    "string",
    "number",
    "comment",
    "type",
    "enumMember",
    "operator",
]
TOKEN_MODIFIERS = ["declaration"]
_TYPE_INDEX = {name: index for index, name in enumerate(TOKEN_TYPES)}


class SemanticToken(NamedTuple):
    """One coloured piece of one line: 0-based line, start and length in code units.

    A named tuple rather than a dataclass: a 2,000-line spec has 8,000 of them, made on
    every request."""

    line: int
    start: int
    length: int
    kind: str
    declaration: bool = False


def semantic_tokens(text: str, units: Units = utf16_units) -> list[SemanticToken]:
    """The semantic tokens of a spec's text, in order; none for a text too large to be
    a spec. Never raises (the lexer never fails)."""
    if len(text) > MAX_SPEC_BYTES:
        return []
    tokens = tokenize(SourceFile("<editor>", text))
    kinds, values = tokens.kinds, tokens.values
    pieces: list[tuple[int, int, str, bool]] = []  # (start offset, end offset, kind, decl)
    for i, kind in enumerate(kinds):
        if kind in (END, ERROR):
            continue
        previous = kinds[i - 1] if i else None
        following = kinds[i + 1]
        declaration = False
        if kind == NAME:
            if previous in ("=", "[", ","):
                what = "enumMember"
            else:
                what = "property" if following == "=" else "keyword"
        elif kind in (STRING, LONG_STRING):
            what = "string"
            if previous == NAME and values[i - 1] == "style" and following == "{":
                what, declaration = "type", True
        elif kind == NUMBER:
            what = "number"
        elif kind in ("=", ".."):
            what = "operator"
        else:
            continue  # brackets and commas: the editor's own bracket colours
        pieces.append((tokens.starts[i], tokens.ends[i], what, declaration))
    pieces.extend((c.span.start, c.span.end, "comment", False) for c in tokens.comments)
    pieces.sort()
    if text.isascii():  # every encoding counts one unit per character: no line scans
        starts = tokens.line_starts

        def position(offset: int) -> tuple[int, int]:
            line = bisect_right(starts, offset) - 1
            return line, offset - starts[line]

    else:
        position = LineIndex(text, units).position
    line_text = LineIndex(text, units).line_text
    found: list[SemanticToken] = []
    for start, end, what, declaration in pieces:
        line, column = position(start)
        end_line, end_column = position(end)
        while line < end_line:  # a token over several lines: one piece per line
            length = units(line_text(line)) - column
            if length > 0:
                found.append(SemanticToken(line, column, length, what, declaration))
            line, column = line + 1, 0
        if end_column > column:
            found.append(SemanticToken(line, column, end_column - column, what, declaration))
    return found


def encode(found: list[SemanticToken]) -> list[int]:
    """LSP's relative encoding: five integers per token (line delta, start delta from
    the previous token on the same line, length, type index, modifier bits)."""
    data: list[int] = []
    last_line = last_start = 0
    for token in found:
        delta_line = token.line - last_line
        delta_start = token.start - last_start if delta_line == 0 else token.start
        data += [
            delta_line,
            delta_start,
            token.length,
            _TYPE_INDEX[token.kind],
            int(token.declaration),
        ]
        last_line, last_start = token.line, token.start
    return data
