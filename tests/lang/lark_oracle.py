"""The Lark grammar as the parser's test oracle (a plain module: tests have no package).

`kvsl/lang/grammar.lark` is the language's definition. kvsl parses with a hand-written
parser (`kvsl.lang.parser`, see docs/language.md for why); these tests hold it to the
grammar: the same syntax tree, spans included, for every file the grammar accepts
(`parse_source_lark`: Lark's LALR parser and a Transformer with `v_args(meta=True)`),
and a first error at the same place for every file it rejects (`lark_first_error`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.literals import number_literal, string_literal
from kvsl.lang.source import SourceFile
from kvsl.lang.syntax import (
    Assignment,
    Block,
    Comment,
    Ident,
    ListValue,
    Range,
    Spec,
    String,
)

GRAMMAR = Path(__file__).resolve().parents[2] / "kvsl" / "lang" / "grammar.lark"


class _Comments:
    """The comments of the parse in progress (the tests parse one file at a time)."""

    found: ClassVar[list[Token]] = []

    @classmethod
    def collect(cls, token: Token) -> None:
        cls.found.append(token)


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
        lexer_callbacks={"COMMENT": _Comments.collect},
    )


@v_args(meta=True)
class _ToSyntax(Transformer[Token, Any]):
    """Lark tree → kvsl.lang.syntax, with the parser's own literal conversions."""

    def __init__(self, source: SourceFile) -> None:
        super().__init__()
        self.source = source
        self.problems: list[Diagnostic] = []

    def _span(self, node: Any) -> Any:
        if isinstance(node, Token):
            return self.source.span(node.start_pos or 0, node.end_pos or 0)
        if getattr(node, "empty", True):
            return self.source.span(0, 0)
        return self.source.span(node.start_pos, node.end_pos)

    def _number(self, token: Token) -> Any:
        return number_literal(str(token), self._span(token), self.problems)

    def start(self, meta: Any, children: list[Any]) -> tuple[Any, ...]:
        return tuple(children)

    def assignment(self, meta: Any, children: list[Any]) -> Assignment:
        name, value = children
        return Assignment(str(name), self._span(name), value, self._span(meta))

    def block(self, meta: Any, children: list[Any]) -> Block:
        name, *rest = [child for child in children if child is not None]
        header = rest.pop(0) if not isinstance(rest[0], Token) else None
        lbrace, rbrace = rest.pop(0), rest.pop()
        return Block(
            kind=str(name),
            kind_span=self._span(name),
            header=header,
            items=tuple(rest),
            span=self._span(meta),
            open_span=self._span(lbrace),
            close_span=self._span(rbrace),
        )

    def string(self, meta: Any, children: list[Any]) -> String:
        token = children[0]
        return string_literal(
            token.type, str(token), token.start_pos, token.end_pos, self.source, self.problems
        )

    def number(self, meta: Any, children: list[Any]) -> Any:
        return self._number(children[0])

    def ident(self, meta: Any, children: list[Any]) -> Ident:
        return Ident(str(children[0]), self._span(meta))

    def list(self, meta: Any, children: list[Any]) -> ListValue:
        return ListValue(tuple(children), self._span(meta))

    def range(self, meta: Any, children: list[Any]) -> Range:
        start, stop = [*children, None][:2]
        return Range(
            self._number(start), self._number(stop) if stop is not None else None, self._span(meta)
        )


def parse_source_lark(source: SourceFile) -> tuple[Spec | None, list[Diagnostic]]:
    """The grammar's syntax tree and literal diagnostics; (None, []) where it rejects."""
    _Comments.found = []
    try:
        tree = lark_parser().parse(source.text)
    except UnexpectedInput:
        return None, []
    comments = tuple(
        Comment(t.value, source.span(t.start_pos or 0, t.end_pos or 0)) for t in _Comments.found
    )
    builder = _ToSyntax(source)
    items = builder.transform(tree)
    return Spec(source.path, items, comments, source.span(0, len(source.text))), builder.problems


def lark_first_error(source: SourceFile) -> tuple[str, int] | None:
    """Where the grammar rejects the file: ("character", offset) for text that starts
    no token, ("end", offset) for an early end of file, ("token", offset) for a token
    that cannot come there; None where it accepts the file."""
    try:
        lark_parser().parse(source.text)
    except UnexpectedCharacters as err:
        return "character", err.pos_in_stream or 0
    except UnexpectedEOF:
        return "end", len(source.text)
    except UnexpectedInput as err:
        token = getattr(err, "token", None)
        if token is None or token.type == "$END":
            return "end", len(source.text)
        return "token", token.start_pos or 0
    return None


def first_error_kind(diagnostic: Diagnostic) -> tuple[str, int]:
    """The parser's first syntax error in the terms of `lark_first_error`."""
    if diagnostic.code in ("KVS011", "KVS012"):
        return "character", diagnostic.span.start
    if diagnostic.code == "KVS013":
        return "end", diagnostic.span.start
    return "token", diagnostic.span.start


def assert_parsers_agree(source: SourceFile) -> None:
    """kvsl's hand-written parser and this grammar's: the same tree (spans included) where
    the grammar accepts, the same first error where it rejects. Nesting past the depth
    limit is skipped: the parser refuses it before parsing, by design."""
    from kvsl.lang.parser import parse_source
    from kvsl.lang.syntax_errors import scan_brackets

    if scan_brackets(source.text)[0] is not None:
        return
    reference = parse_source_lark(source)
    spec, diagnostics = parse_source(source)
    if reference[0] is not None:
        assert (spec, diagnostics) == reference
    else:
        assert spec is None, "the parser accepted a file the grammar rejects"
        assert first_error_kind(diagnostics[0]) == lark_first_error(source)
