"""Recursive descent over the tokens of a spec: the parser proper.

`Parser` builds the syntax tree (`kvsl.lang.syntax`) from `kvsl.lang.lexer`'s tokens and
stops with `Stop` at the first token it cannot take, naming where it was
(`kvsl.lang.syntax_errors`). Blocks are kept on an explicit stack of frames rather than
in Python's call stack, so that error recovery (`kvsl.lang.recovery`) can resume the
same parser inside any block. The entry points are in `kvsl.lang.parser`.

>>> from kvsl.lang.lexer import tokenize
>>> from kvsl.lang.source import SourceFile
>>> tokens = tokenize(SourceFile("s.kvs", "a = [1..4]"))
>>> Parser(tokens).items(0, [[None, None, None, []]])[0].value.items[0].stop.value
4
"""

from __future__ import annotations

from collections.abc import Callable

from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.lexer import END, LONG_STRING, NAME, NUMBER, STRING, Tokens
from kvsl.lang.literals import number_literal, string_literal
from kvsl.lang.syntax import (
    Assignment,
    Block,
    Ident,
    Item,
    ListValue,
    Number,
    Range,
    String,
    Value,
)
from kvsl.lang.syntax_errors import (
    AFTER_DOTDOT,
    AFTER_ELEMENT,
    AFTER_EQUAL,
    AFTER_HEADER,
    AFTER_NAME,
    AFTER_WORD,
    ELEMENT,
    ITEM,
    MAX_NESTING,
)

# An open block while parsing: [name token, header, `{` token, items so far]. The
# bottom frame is the file (no name, no brace); recovery opens frames without tokens for
# blocks whose `{` it skipped.
Frame = list


class Stop(Exception):
    """The parser cannot go on at token `index`, in the context named by `context`
    (`kvsl.lang.syntax_errors`); `frames` are the blocks open there."""

    def __init__(self, index: int, context: int, frames: list[Frame]) -> None:
        super().__init__(index, context)
        self.index = index
        self.context = context
        self.frames = frames


class TooDeep(Exception):
    """Blocks and lists nest deeper than MAX_NESTING."""


class Parser:
    """Recursive descent over `Tokens`: blocks on an explicit stack of frames (so that
    recovery can resume inside any block), values and lists by recursion.

    Raises `Stop` at the first token it cannot take. `misfit`, set by error recovery,
    says whether to skip a `}` (one that belongs to the broken part of a file).
    """

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.kinds = tokens.kinds
        self.values = tokens.values
        self.problems: list[Diagnostic] = []  # of literals: KVS015, KVS020
        self.misfit: Callable[[int, list[Frame]], bool] | None = None

    def items(self, i: int, frames: list[Frame]) -> tuple[Item, ...]:
        """Parse items from token `i` inside the open `frames` to the end of the file;
        returns the items of the bottom frame."""
        kinds, values, span = self.kinds, self.values, self.tokens.span
        after_word = False  # the last item was `key = word`: a `=` now means `key =`
        while True:
            kind = kinds[i]
            if kind == NAME:
                following = kinds[i + 1]
                if following == "=":
                    value, end = self.value(i + 2, len(frames) - 1, frames)
                    frames[-1][3].append(Assignment(values[i], span(i, i), value, span(i, end - 1)))
                    after_word = type(value) is Ident
                    i = end
                    continue
                header: String | ListValue | None = None
                brace = i + 1
                if following in (STRING, LONG_STRING):
                    header = self.string(i + 1)
                    brace = i + 2
                elif following == "[":
                    header, brace = self.list(i + 1, len(frames) - 1, frames)
                elif following != "{":
                    raise Stop(i + 1, AFTER_NAME, frames)
                if kinds[brace] != "{":
                    raise Stop(brace, AFTER_HEADER, frames)
                if len(frames) > MAX_NESTING:
                    raise TooDeep
                frames.append([i, header, brace, []])
                after_word = False
                i = brace + 1
            elif kind == "}" and len(frames) > 1:
                if self.misfit is not None and self.misfit(i, frames):
                    i += 1
                    continue
                name, header, brace, inner = frames.pop()
                if name is not None:  # not a block recovery opened
                    frames[-1][3].append(
                        Block(
                            kind=values[name],
                            kind_span=span(name, name),
                            header=header,
                            items=tuple(inner),
                            span=span(name, i),
                            open_span=span(brace, brace),
                            close_span=span(i, i),
                        )
                    )
                after_word = False
                i += 1
            elif kind == END and len(frames) == 1:
                return tuple(frames[0][3])
            else:
                if kind == "}" and self.misfit is not None and self.misfit(i, frames):
                    i += 1
                    continue
                raise Stop(i, AFTER_WORD if after_word else ITEM, frames)

    def value(self, i: int, depth: int, frames: list[Frame]) -> tuple[Value, int]:
        """The value at token `i` (after `=`) and the index after it; `depth`: the
        blocks and lists open around it."""
        kind = self.kinds[i]
        if kind == NUMBER:
            return self.number(i), i + 1
        if kind in (STRING, LONG_STRING):
            return self.string(i), i + 1
        if kind == NAME:
            return Ident(self.values[i], self.tokens.span(i, i)), i + 1
        if kind == "[":
            return self.list(i, depth, frames)
        raise Stop(i, AFTER_EQUAL, frames)

    def list(self, first: int, depth: int, frames: list[Frame]) -> tuple[ListValue, int]:
        """The list whose `[` is token `first`, and the index after its `]`."""
        depth += 1
        if depth > MAX_NESTING:
            raise TooDeep
        kinds, span = self.kinds, self.tokens.span
        items: list[String | Number | Ident | ListValue | Range] = []
        i = first + 1
        while kinds[i] != "]":
            kind = kinds[i]
            if kind == NUMBER:
                if kinds[i + 1] == "..":
                    start = self.number(i)
                    if kinds[i + 2] == NUMBER:
                        items.append(Range(start, self.number(i + 2), span(i, i + 2)))
                        i += 3
                    elif kinds[i + 2] == "," or kinds[i + 2] == "]":
                        items.append(Range(start, None, span(i, i + 1)))
                        i += 2
                    else:
                        raise Stop(i + 2, AFTER_DOTDOT, frames)
                else:
                    items.append(self.number(i))
                    i += 1
            elif kind in (STRING, LONG_STRING):
                items.append(self.string(i))
                i += 1
            elif kind == NAME:
                items.append(Ident(self.values[i], span(i, i)))
                i += 1
            elif kind == "[":
                inner, i = self.list(i, depth, frames)
                items.append(inner)
            else:
                raise Stop(i, ELEMENT, frames)
            if kinds[i] == ",":
                i += 1
            elif kinds[i] != "]":
                raise Stop(i, AFTER_ELEMENT, frames)
        return ListValue(tuple(items), span(first, i)), i + 1

    def string(self, i: int) -> String:
        raw = self.values[i]
        if self.kinds[i] == LONG_STRING:
            return String(raw[3:-3], True, self.tokens.span(i, i))
        if "\\" not in raw:
            return String(raw[1:-1], False, self.tokens.span(i, i))
        tokens = self.tokens
        return string_literal(
            STRING, raw, tokens.starts[i], tokens.ends[i], tokens.source, self.problems
        )

    def number(self, i: int) -> Number:
        return number_literal(self.values[i], self.tokens.span(i, i), self.problems)
