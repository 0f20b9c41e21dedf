"""Parsing `.kvs` files: text → syntax tree (`kvsl.lang.syntax`), or coded diagnostics.

One parser: a hand-written recursive-descent parser (`kvsl.lang.descent`) over the tokens
of `kvsl.lang.lexer`, with its own error recovery (`kvsl.lang.recovery`). The Lark grammar
`grammar.lark` stays the language's definition; the tests parse every spec, fixture and
thousands of mutants with it and require the same trees and the same first error
(tests/lang/lark_oracle.py). Why a hand parser and not Lark alone: docs/language.md,
"How kvsl parses". Nothing here keeps state between calls: parsing is re-entrant.

>>> spec, diagnostics = parse_text('style "s" { contrast { pairs = 4 } }', "s.kvs")
>>> diagnostics
[]
>>> spec.items[0].items[0].items[0].key
'pairs'
"""

from __future__ import annotations

import os

from kvsl.lang.descent import Parser, Stop, TooDeep
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.lexer import Tokens, tokenize
from kvsl.lang.literals import MAX_INTEGER
from kvsl.lang.reading import MAX_SPEC_BYTES, decode_source, load_source
from kvsl.lang.recovery import syntax_errors
from kvsl.lang.source import SourceFile
from kvsl.lang.syntax import Spec
from kvsl.lang.syntax_errors import MAX_NESTING, scan_brackets, too_deep

__all__ = [
    "MAX_INTEGER",
    "MAX_NESTING",
    "MAX_SPEC_BYTES",
    "decode_source",
    "load_source",
    "parse_file",
    "parse_source",
    "parse_text",
    "parse_tokens",
]


def parse_file(path: str | os.PathLike[str]) -> tuple[Spec | None, list[Diagnostic]]:
    """Read and parse one spec file.

    >>> parse_file("/nonexistent.kvs")[0] is None
    True
    """
    source, diagnostics = load_source(path)
    if source is None:
        return None, diagnostics
    return parse_source(source)


def parse_text(text: str, path: str = "<text>") -> tuple[Spec | None, list[Diagnostic]]:
    """Parse spec text (tests, the formatter)."""
    return parse_source(SourceFile(path, text))


def parse_source(source: SourceFile) -> tuple[Spec | None, list[Diagnostic]]:
    """SourceFile → syntax tree. Returns (None, diagnostics) on a syntax error.

    The diagnostics of a file that parses are those of its literals (KVS015, KVS020).
    """
    return parse_tokens(tokenize(source))


def parse_tokens(tokens: Tokens) -> tuple[Spec | None, list[Diagnostic]]:
    """The syntax tree of a tokenized file, or every syntax error it has."""
    parser = Parser(tokens)
    try:
        items = parser.items(0, [[None, None, None, []]])
        source = tokens.source
        return Spec(source.path, items, tuple(tokens.comments), tokens.whole), parser.problems
    except (Stop, TooDeep, RecursionError):
        pass
    deep, unclosed = scan_brackets(tokens.source.text)
    if deep is not None:
        return None, [too_deep(tokens.source, deep)]
    return None, syntax_errors(tokens, unclosed)
