"""Reading and parsing `.kvs` files: bytes → text → syntax tree, or coded diagnostics.

This is the only module that imports lark. Every failure a user can cause (unreadable,
binary, not UTF-8, too large, too deeply nested, syntax errors) comes back as a
KVS0xx diagnostic with a location; nothing here raises for bad input.

>>> spec, diagnostics = parse_text('style "s" { contrast { pairs = 4 } }', "s.kvs")
>>> diagnostics
[]
>>> spec.items[0].items[0].items[0].key
'pairs'
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from functools import lru_cache
from itertools import pairwise, product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import (
    Assignment,
    Block,
    Comment,
    Ident,
    Item,
    ListValue,
    Number,
    Range,
    Spec,
    String,
    Value,
)

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

# A spec is a page of settings (the largest bundled one, with an inline template, is
# under 5 KB); anything bigger is a mistake (a trace file or a model passed by accident).
# The cap also bounds the parser: a file at the cap of the densest kind (a list of
# 128,000 numbers) parses in about a second and 100 MB.
MAX_SPEC_BYTES = 256_000
# Specs nest three levels (style > steer > at) plus lists; the limit keeps the recursive
# tree conversion far from Python's recursion limit whatever the input.
MAX_NESTING = 32

_GRAMMAR = Path(__file__).with_name("grammar.lark")
# The comments of the parse in progress: lark's lexer callback is fixed when the (cached)
# parser is built, so it appends to the list of the current context. A context variable
# rather than a module-level list keeps parsing re-entrant (threads, an editor server).
_COMMENTS: ContextVar[list[Token] | None] = ContextVar("kvsl_parse_comments", default=None)


def _collect_comment(token: Token) -> None:
    comments = _COMMENTS.get()
    if comments is not None:
        comments.append(token)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    from lark import Lark

    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        # The LALR tables are cached in the temp dir (keyed by the grammar's hash):
        # building them costs ~50 ms per process, loading them ~5 ms.
        cache=True,
        lexer_callbacks={"COMMENT": _collect_comment},
    )


def _error(
    code: str,
    message: str,
    span: Span,
    help: str | None = None,
    labels: tuple[Label, ...] = (),
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, labels=labels, help=help)


def load_source(path: str | os.PathLike[str]) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Read a spec file as text, or explain why it cannot be a spec.

    >>> load_source("/nonexistent.kvs")[1][0].code
    'KVS008'
    """
    from kvsl.lang.files import FileProblem, read_regular_file

    name = os.fspath(path)
    whole = Span.whole_file(name)
    try:
        data = read_regular_file(name, MAX_SPEC_BYTES)
    except FileProblem as problem:
        if problem.kind == "missing":
            return None, [_error("KVS008", f"no such file: `{name}`", whole)]
        if problem.kind == "directory":
            return None, [
                _error(
                    "KVS002",
                    f"`{name}` is a directory, not a spec file",
                    whole,
                    help="pass a `.kvs` file (`kvsl check` also accepts directories)",
                )
            ]
        if problem.kind == "too-large":
            return None, [
                _error(
                    "KVS005",
                    f"file is too large for a spec ({problem.size:,} bytes, the limit is "
                    f"{MAX_SPEC_BYTES:,})",
                    whole,
                    help="a spec is a page of settings: is this the right file?",
                )
            ]
        if problem.kind == "unreadable":
            return None, [_error("KVS001", f"cannot read `{name}`: {problem.detail}", whole)]
        return None, [_error("KVS001", f"cannot read `{name}`: it {problem.reason}", whole)]
    return decode_source(name, data)


def decode_source(path: str, data: bytes) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Bytes → SourceFile, rejecting binary data and invalid UTF-8 at their position."""
    nul = data.find(b"\0")
    if nul >= 0:
        prefix = SourceFile(path, data[:nul].decode("utf-8", errors="replace"))
        offset = len(prefix.text)
        return None, [
            _error(
                "KVS004",
                "binary file: found a NUL byte",
                prefix.span(offset, offset),
                help="a spec is UTF-8 text; is this the right file?",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        prefix = SourceFile(path, data[: err.start].decode("utf-8", errors="replace"))
        offset = len(prefix.text)
        return None, [
            _error(
                "KVS003",
                f"file is not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}",
                prefix.span(offset, offset + 1),
                help="save the file as UTF-8",
            )
        ]
    return SourceFile(path, text), []


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

    Two parsers, one language: a hand-written recursive-descent parser over one `re`
    scanner handles well-formed files (lark's LALR in pure Python is several times
    slower, and `kvsl check` must stay fast in CI); on anything it does not accept, the
    file is parsed again by the lark grammar (`grammar.lark`, the language's
    definition), whose error becomes the diagnostic. tests/lang/test_parser.py checks
    that both build identical trees, spans included.
    """
    try:
        return _FastParser(source).parse()
    except _NotAccepted:
        pass
    except RecursionError:  # not expected (nesting is bounded); the scan below explains it
        pass
    deep, unclosed = _scan_brackets(source.text)
    if deep is not None:
        return None, [_too_deep(source, deep)]
    try:
        return parse_source_lark(source, unclosed)
    except RecursionError:  # a last guard: no input may turn into a traceback
        return None, [_too_deep(source, 0)]


def _too_deep(source: SourceFile, offset: int) -> Diagnostic:
    return _error(
        "KVS007",
        f"nesting is too deep (more than {MAX_NESTING} levels of `{{` and `[`)",
        source.span(offset, offset + 1),
        help="a spec nests blocks three levels deep: style > steer > at",
    )


def parse_source_lark(
    source: SourceFile, unclosed: list[int] | None = None
) -> tuple[Spec | None, list[Diagnostic]]:
    """Parse with the lark grammar (the reference parser, and the source of syntax errors)."""
    from lark.exceptions import UnexpectedInput

    if unclosed is None:
        unclosed = _scan_brackets(source.text)[1]
    found: list[Token] = []
    reset = _COMMENTS.set(found)
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as err:
        first = _syntax_diagnostic(source, err, unclosed)
        return None, _syntax_errors(source, first, unclosed)
    finally:
        _COMMENTS.reset(reset)
    comments = tuple(
        Comment(tok.value, source.span(tok.start_pos or 0, tok.end_pos or 0)) for tok in found
    )
    builder = _Builder(source)
    items = tuple(builder.item(child) for child in tree.children)  # type: ignore[arg-type]
    spec = Spec(source.path, items, comments, source.span(0, len(source.text)))
    return spec, builder.diagnostics


# --- the fast path ---------------------------------------------------------------------

# The terminals of grammar.lark as one scanner (the same regular expressions, in the same
# order of preference: a long string before a string, a number before a name).
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


class _NotAccepted(Exception):
    """The fast parser gives up; the lark parser will explain why."""


class _FastParser:
    """Recursive descent over the scanner's tokens; raises _NotAccepted on any error."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.builder = _Builder(source)
        kinds: list[str] = []
        values: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        # 1-based (line, column) of each token's start and end, tracked while scanning
        # (tokens come in order, so no search per span).
        begin_at: list[tuple[int, int]] = []
        end_at: list[tuple[int, int]] = []
        comments: list[Comment] = []
        text = source.text
        path = source.path
        position = 0
        line, line_start = 1, 0
        for match in _SCANNER.finditer(text):
            if match.start() != position:
                raise _NotAccepted
            space = match.group(1)
            if "\n" in space:
                line += space.count("\n")
                line_start = match.start() + space.rindex("\n") + 1
            start = match.end(1)
            position = match.end()
            kind = match.lastgroup
            if kind == "WS":  # only whitespace left: the end of the file
                break
            value = text[start:position]
            begin = (line, start - line_start + 1)
            if kind == "LONG_STRING" and "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            finish = (line, position - line_start + 1)
            if kind == "COMMENT":
                comments.append(Comment(value, Span(path, start, position, *begin, *finish)))
                continue
            kinds.append(value if kind == "PUNCT" else str(kind))
            values.append(value)
            starts.append(start)
            ends.append(position)
            begin_at.append(begin)
            end_at.append(finish)
        if position != len(text):
            raise _NotAccepted
        kinds.append("$END")
        self.kinds, self.values, self.starts, self.ends = kinds, values, starts, ends
        self.begin_at, self.end_at = begin_at, end_at
        self.comments = tuple(comments)
        self.whole = Span(path, 0, len(text), 1, 1, line, len(text) - line_start + 1)
        self.i = 0
        self.depth = 0

    def parse(self) -> tuple[Spec | None, list[Diagnostic]]:
        items = []
        while self.kinds[self.i] != "$END":
            items.append(self.item())
        spec = Spec(self.source.path, tuple(items), self.comments, self.whole)
        return spec, self.builder.diagnostics

    def expect(self, kind: str) -> int:
        if self.kinds[self.i] != kind:
            raise _NotAccepted
        self.i += 1
        return self.i - 1

    def span(self, first: int, last: int) -> Span:
        return Span(
            self.source.path,
            self.starts[first],
            self.ends[last],
            *self.begin_at[first],
            *self.end_at[last],
        )

    def nest(self, step: int) -> None:
        self.depth += step
        if self.depth > MAX_NESTING:
            raise _NotAccepted  # the fallback reports KVS007

    def item(self) -> Item:
        name = self.expect("NAME")
        kind = self.kinds[self.i]
        if kind == "=":
            self.i += 1
            value = self.value()
            return Assignment(
                self.values[name], self.span(name, name), value, self.span(name, self.i - 1)
            )
        header: String | ListValue | None = None
        if kind in ("STRING", "LONG_STRING"):
            header = self.string()
        elif kind == "[":
            header = self.list()
        elif kind != "{":
            raise _NotAccepted
        lbrace = self.expect("{")
        self.nest(1)
        items = []
        while self.kinds[self.i] != "}":
            items.append(self.item())
        rbrace = self.expect("}")
        self.nest(-1)
        return Block(
            kind=self.values[name],
            kind_span=self.span(name, name),
            header=header,
            items=tuple(items),
            span=self.span(name, rbrace),
            open_span=self.span(lbrace, lbrace),
            close_span=self.span(rbrace, rbrace),
        )

    def value(self) -> Value:
        kind = self.kinds[self.i]
        if kind in ("STRING", "LONG_STRING"):
            return self.string()
        if kind == "NUMBER":
            return self.number()
        if kind == "NAME":
            self.i += 1
            return Ident(self.values[self.i - 1], self.span(self.i - 1, self.i - 1))
        if kind == "[":
            return self.list()
        raise _NotAccepted

    def string(self) -> String:
        i = self.i
        self.i += 1
        raw = self.values[i]
        if self.kinds[i] == "LONG_STRING":
            return String(raw[3:-3], True, self.span(i, i))
        if "\\" not in raw:
            return String(raw[1:-1], False, self.span(i, i))
        return self.builder.string_at(self.kinds[i], raw, self.starts[i], self.ends[i])

    def number(self) -> Number:
        i = self.i
        self.i += 1
        return self.builder.number_at(self.values[i], self.span(i, i))

    def list(self) -> ListValue:
        first = self.expect("[")
        self.nest(1)
        items: list[String | Number | Ident | ListValue | Range] = []
        while self.kinds[self.i] != "]":
            if self.kinds[self.i] == "NUMBER" and self.kinds[self.i + 1] == "DOTDOT":
                start_index = self.i
                start = self.number()
                self.i += 1
                stop = self.number() if self.kinds[self.i] == "NUMBER" else None
                items.append(Range(start, stop, self.span(start_index, self.i - 1)))
            else:
                items.append(self.value())
            if self.kinds[self.i] == ",":
                self.i += 1
            elif self.kinds[self.i] != "]":
                raise _NotAccepted
        last = self.expect("]")
        self.nest(-1)
        return ListValue(tuple(items), self.span(first, last))


# --- syntax errors ---------------------------------------------------------------------

_TOKEN_NAMES = {
    "NAME": "a name",
    "EQUAL": "`=`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "NUMBER": "a number",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "__ANON_0": "`..`",
    "$END": "end of file",
}


# Lark's match_examples labels the parser state of an error by the example that fails in
# the same state; each label is the code reported for mistakes of that shape.
def _contexts(mistake: str) -> list[str]:
    """`mistake` in every context whose LALR stack differs (lark compares stack depth):
    at the top level or 1-3 blocks deep, with or without an item before it at each level.
    """
    examples = []
    for depth in range(4):
        for before in product(("", "k = 1 "), repeat=depth + 1):
            text = before[-1] + mistake
            for level in range(depth - 1, -1, -1):
                text = f"{before[level]}b {{ {text} }}"
            examples.append(text)
    return examples


_LIST_MISTAKES = ("1 2", '"a" "b"', "a b", "1..2 3", "1.. 3", "[1] 2")

_EXAMPLES: dict[str, list[str]] = {
    "KVS014": [  # missing `=`
        *_contexts("pairs 40"),
        *_contexts("select random"),
    ],
    "KVS016": [  # missing `,` between list items
        *(example for items in _LIST_MISTAKES for example in _contexts(f"x = [{items}]")),
    ],
    "KVS017": [  # missing value after `=`
        *_contexts("x = }"),
        *_contexts("x = y = 1"),
    ],
}


@lru_cache(maxsize=1)
def _example_index() -> tuple[dict[tuple[object, ...], str], dict[tuple[object, ...], str]]:
    """Lark's `UnexpectedInput.match_examples`, indexed once.

    match_examples re-parses every example on every error (~0.3 s for these); the index
    keys each example's error by what match_examples compares (parser state: stack depth
    and position; the acceptable tokens) with and without the offending token's type.
    """
    from lark.exceptions import UnexpectedToken

    exact: dict[tuple[object, ...], str] = {}
    loose: dict[tuple[object, ...], str] = {}
    for label, examples in _EXAMPLES.items():
        for example in examples:
            try:
                _parser().parse(example)
            except UnexpectedToken as err:
                key = _state_key(err)
                exact.setdefault((*key, err.token.type), label)
                loose.setdefault(key, label)
    return exact, loose


def _state_key(err: Any) -> tuple[object, ...]:
    state = err.state
    return (len(state.state_stack), state.position, frozenset(err.accepts or ()))


def _label(err: Any) -> str | None:
    from lark.exceptions import UnexpectedToken

    if not isinstance(err, UnexpectedToken) or err.state is None:
        return None
    exact, loose = _example_index()
    key = _state_key(err)
    return exact.get((*key, err.token.type)) or loose.get(key)


def _describe(tokens: set[str] | frozenset[str]) -> list[str]:
    names = {_TOKEN_NAMES.get(t, f"`{t}`") for t in tokens if not t.startswith("__IGNORE")}
    return sorted(names)


def _syntax_diagnostic(source: SourceFile, err: Any, unclosed: list[int]) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    text = source.text
    if isinstance(err, UnexpectedCharacters):
        return _character_diagnostic(source, err.pos_in_stream or 0)

    token = getattr(err, "token", None)
    at_end = isinstance(err, UnexpectedEOF) or (token is not None and token.type == "$END")
    if at_end:
        end = len(text)
        labels: tuple[Label, ...] = ()
        what = "`}`"
        if unclosed:
            opener = unclosed[-1]
            what = "`}`" if text[opener] == "{" else "`]`"
            labels = (
                Label(source.span(opener, opener + 1), f"this `{text[opener]}` is never closed"),
            )
        return _error(
            "KVS013",
            f"unexpected end of file: expected {what}",
            source.span(end, end),
            labels=labels,
            help=f"add the missing {what}",
        )

    assert isinstance(err, UnexpectedToken)
    start = token.start_pos if token is not None and token.start_pos is not None else 0
    end = token.end_pos if token is not None and token.end_pos is not None else start
    span = source.span(start, end)
    found = _found(token)
    code = _label(err) or "KVS010"
    before = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[:start])
    key = before.group(1) if before else "the key"
    if code == "KVS014":
        return _error(
            "KVS014",
            f"expected `=` after `{key}`, found {found}",
            span,
            help=f"write `{key} = {token}`" if token is not None and token.type != "$END" else None,
        )
    if code == "KVS016":
        return _error(
            "KVS016",
            f"expected `,` or `]` in list, found {found}",
            span,
            help="separate list items with commas: `[1, 2]`",
        )
    if code == "KVS017":
        return _error(
            "KVS017",
            f"expected a value after `=`, found {found}",
            span,
            help="every key needs a value: a string, a number, a name or a list",
        )
    expected = _describe(err.expected)
    message = f"unexpected {found}"
    if 0 < len(expected) <= 5:
        message += ", expected " + (
            expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
        )
    help = None
    if token is not None and token.type == "RBRACE" and not unclosed:
        help = "this `}` has no matching `{`"
    return _error("KVS010", message, span, help)


def _character_diagnostic(source: SourceFile, offset: int) -> Diagnostic:
    """KVS011/KVS012 for text at `offset` that starts no token."""
    text = source.text
    char = text[offset] if offset < len(text) else ""
    if char == '"':
        end = text.find("\n", offset)
        end = len(text) if end < 0 else end
        return _error(
            "KVS012",
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
    return _error(
        "KVS011", f"unexpected character `{shown}`", source.span(offset, offset + 1), help
    )


def _found(token: Any) -> str:
    if token is None or token.type == "$END":
        return "end of file"
    value = str(token)
    if len(value) > 30:
        value = value[:27] + "..."
    value = value.replace("\n", "\\n")
    return f"`{value}`"


def _scan_brackets(text: str) -> tuple[int | None, list[int]]:
    """(offset of the first bracket nested too deep or None, offsets of unclosed openers).

    Skips strings and comments. Linear, and runs before lark so that 10,000 nested
    braces are one diagnostic rather than a RecursionError in the tree conversion.
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


# --- error recovery --------------------------------------------------------------------

# After a syntax error the parser resynchronises and carries on, so that one run reports
# every independent mistake in a file (runs only for files that already failed to parse).
# The bounds keep a garbage file cheap and its report short.
MAX_SYNTAX_ERRORS = 10
# Tokens a resynchronised parser must accept before its guess is trusted: fewer, and a
# bad guess shows up as a cascade of errors; more, and errors close together are missed.
_RESYNC_WINDOW = 3
_RESYNC_BUDGET = 20_000  # trial token feeds per file, whatever its size
_LEADING_SPACE = re.compile(r"[ \t\r\n\f\ufeff]*")


def _syntax_errors(source: SourceFile, first: Diagnostic, unclosed: list[int]) -> list[Diagnostic]:
    """`first` (the error of the plain parse) and every independent syntax error after it.

    Panic-mode recovery over the LALR parser: after an error, skip to the next token that
    can begin again (a name first on its line, a `}`, the end of the file), and pop parser
    states (fewest first: the innermost block) until the parser accepts that token and the
    next few (`_resync`); an error on the same line as the one before it is a cascade,
    not reported. Bounded: at most MAX_SYNTAX_ERRORS, and `_RESYNC_BUDGET` trial feeds.

    >>> _, diagnostics = parse_text('style "s" {\\n  a 1\\n  b = 2\\n  c 3\\n}\\n')
    >>> [(d.code, d.span.line, d.span.column) for d in diagnostics]
    [('KVS014', 2, 5), ('KVS014', 4, 5)]
    """
    from copy import copy  # here, not at the top: nothing new on the fast path

    from lark.exceptions import UnexpectedToken
    from lark.parsers.lalr_interactive_parser import InteractiveParser
    from lark.parsers.lalr_parser_state import ParserState

    tokens, line_starts, lexical = _recovery_tokens(source)
    layout = _laid_out(source.text, tokens, line_starts)
    interactive = _parser().parse_interactive()
    conf = copy(interactive.parser_state.parse_conf)
    conf.callbacks = {}  # the tree is never built: no callbacks, no tree nodes
    state: ParserState[Any] = ParserState(conf, interactive.lexer_thread)
    found: list[Diagnostic] = []
    budget = [_RESYNC_BUDGET]
    i = 0
    while i < len(tokens) and len(found) < MAX_SYNTAX_ERRORS:
        token = tokens[i]
        if token.type == "$ERROR":  # text that starts no token (KVS011, KVS012)
            found.append(lexical[i])
            resume = i + 1
        else:
            if (
                found
                and layout
                and token.type == "RBRACE"
                and line_starts[i]
                and not _fits(source.text, state, token, True)
            ):
                # after an error, a `}` that starts a line indented unlike its `{` line
                # belongs to the broken part (its `{` was lost in the error): taking it
                # would close the wrong block, and every later `}` would be an error
                i += 1
                continue
            try:
                state.feed_token(token, token.type == "$END")
                i += 1
                continue
            except UnexpectedToken as err:
                # as lark's own parse does, so that `err.accepts` (read by _label) works
                err.interactive_parser = InteractiveParser(
                    interactive.parser, state.copy(deepcopy_values=False), interactive.lexer_thread
                )
                found.append(_syntax_diagnostic(source, err, unclosed))
                resume = i
        resynced = _resync(source, state, tokens, line_starts, layout, resume, i, budget)
        if resynced is None:
            break
        state, i = resynced

    # The recovery pass sees the same tokens as the plain parse, so its first error is the
    # plain one; if they ever disagree, trust only the plain parse.
    if not found or (found[0].code, found[0].span.start) != (first.code, first.span.start):
        return [first]
    diagnostics = [first]
    for previous, diagnostic in pairwise(found):
        if diagnostic.span.line > previous.span.end_line:
            diagnostics.append(diagnostic)
    return diagnostics


def _recovery_tokens(source: SourceFile) -> tuple[list[Token], list[bool], dict[int, Diagnostic]]:
    """All tokens of a file for the recovery pass, never failing.

    Returns the tokens (ending with `$END`), whether each is the first on its line, and
    a diagnostic for each `$ERROR` token: text that starts no token (an unterminated
    string, skipped to the end of its line, or one stray character).
    """
    from lark import Token

    literal = {t.pattern.value: t.name for t in _parser().terminals if t.pattern.type == "str"}
    text = source.text
    tokens: list[Token] = []
    line_starts: list[bool] = []
    lexical: dict[int, Diagnostic] = {}
    line, last_line, position = 1, 0, 0
    while True:
        match = _SCANNER.match(text, position)
        if match is None:
            start = _LEADING_SPACE.match(text, position).end()  # type: ignore[union-attr]
            line += text.count("\n", position, start)
            diagnostic = _character_diagnostic(source, start)
            position = diagnostic.span.end if text[start] == '"' else start + 1
            lexical[len(tokens)] = diagnostic
            tokens.append(Token("$ERROR", text[start:position], start, line, end_pos=position))
            line_starts.append(line > last_line)
            last_line = line
            continue
        start = match.end(1)
        line += text.count("\n", position, start)
        position = match.end()
        kind = match.lastgroup
        if kind == "WS":  # only whitespace left
            break
        value = text[start:position]
        if kind != "COMMENT":
            kind = literal[value] if kind in ("PUNCT", "DOTDOT") else str(kind)
            tokens.append(Token(kind, value, start, line, end_pos=position))
            line_starts.append(line > last_line)
        line += value.count("\n")  # a long string spans lines
        if kind != "COMMENT":
            last_line = line
    tokens.append(Token("$END", "", len(text), line, end_pos=len(text)))
    line_starts.append(True)
    return tokens, line_starts, lexical


def _laid_out(text: str, tokens: list[Token], line_starts: list[bool]) -> bool:
    """Whether the file is indented by blocks, as `kvsl fmt` writes it.

    Every `{` that ends a line is followed by a line indented deeper. Only then does
    recovery trust indentation to tell which block a line belongs to.
    """
    nested = False
    for j, token in enumerate(tokens[:-1]):
        if token.type == "LBRACE" and line_starts[j + 1] and tokens[j + 1].type != "$ERROR":
            inner = _indent(text, tokens[j + 1].start_pos or 0)
            if inner <= _indent(text, token.start_pos or 0):
                return False
            nested = True
    return nested


def _resync(
    source: SourceFile,
    state: Any,
    tokens: list[Token],
    line_starts: list[bool],
    layout: bool,
    resume: int,
    failed: int,
    budget: list[int],
) -> tuple[Any, int] | None:
    """(parser state, token index) to continue from after an error, or None to stop.

    Sync tokens are a name first on its line, a `}` and the end of the file. The first
    one from `resume` that some popped state accepts wins; among the states, the one that
    accepts most of the next `_RESYNC_WINDOW` tokens, then the one with fewest pops (the
    innermost block). A partial fit is kept: the token where it fails is the next error,
    on a later line (two adjacent lines with a typo each). In an indented file
    (`layout`), a skipped `{` that ends its line still opens a block (its `}` comes
    later), and a state must fit the sync token's indentation (a name indented deeper
    than its block's `{` line, a `}` as deep): otherwise one typo costs an error at every
    later `}`.
    """
    from lark import Token
    from lark.parsers.lalr_parser_state import ParserState

    depth = len(state.state_stack)
    # A name resumes in the block the error is in: the parser leaves a block at its `}`
    # only, so a lost `}` cannot shift every later line one block out.
    braces = [k for k, value in enumerate(state.value_stack) if isinstance(value, Token)]
    braces = [k for k in braces if state.value_stack[k].type == "LBRACE"]
    name_pops = depth - 2 - braces[-1] if braces else depth
    opened: list[Token] = []  # `{` skipped since the error and not closed since
    for j in range(resume, len(tokens)):
        kind = tokens[j].type
        if kind in ("RBRACE", "$END") or (kind == "NAME" and line_starts[j]):
            # positionless, so that _fits takes any `}` for theirs
            prefix = [t for _ in opened for t in (Token("NAME", "_"), Token("LBRACE", "{"))]
            best: tuple[int, Any] = (0, None)
            for pops in range(depth if kind != "NAME" else min(depth, name_pops + 1)):
                if j == failed and pops == 0:
                    continue  # the very state that just rejected this token
                # state_stack holds the start state and one state per value on value_stack
                candidate: ParserState[Any] = ParserState(
                    state.parse_conf,
                    state.lexer,
                    state.state_stack[: depth - pops],
                    state.value_stack[: depth - 1 - pops],
                )
                if prefix:
                    candidate = _fed(candidate, prefix)
                    if candidate is None:
                        continue
                if layout and not _fits(source.text, candidate, tokens[j], line_starts[j]):
                    continue
                accepted = _trial(candidate, tokens, j, budget)
                if accepted < 0:
                    return None
                if accepted == _RESYNC_WINDOW:
                    return candidate, j
                if accepted > best[0]:
                    best = (accepted, candidate)
            if best[1] is not None:
                return best[1], j
        if kind == "LBRACE" and layout and line_starts[j + 1]:
            opened.append(tokens[j])
        elif kind == "RBRACE" and opened:
            opened.pop()
    return None


def _fed(state: Any, tokens: list[Token]) -> Any:
    """A copy of `state` after `tokens`, or None where it rejects one."""
    from lark.exceptions import UnexpectedToken

    fed = state.copy(deepcopy_values=False)
    try:
        for token in tokens:
            fed.feed_token(token)
    except UnexpectedToken:
        return None
    return fed


def _indent(text: str, offset: int) -> int:
    start = text.rfind("\n", 0, offset) + 1
    return _LEADING_SPACE.match(text, start).end() - start  # type: ignore[union-attr]


def _open_brace(state: Any) -> Token | None:
    """The innermost `{` still open in a parser state (None at the top level)."""
    from lark import Token

    closed = 0
    for value in reversed(state.value_stack):  # reduced values are lists, not tokens
        if isinstance(value, Token) and value.type == "RBRACE":
            closed += 1
        elif isinstance(value, Token) and value.type == "LBRACE":
            if closed == 0:
                return value
            closed -= 1
    return None


def _fits(text: str, state: Any, token: Token, first_on_line: bool) -> bool:
    """Whether `token` (a sync token) is laid out as it would be at this parser state.

    A name starts a line indented deeper than the line of its block's `{` (not at all
    at the top level). A `}` first on its line is indented as the line of its `{`; any
    other `}` is on the line of its `{` (`at [1..4] { value = 4 }`).
    """
    if token.type == "$END":
        return True
    opener = _open_brace(state)
    at = token.start_pos or 0
    if opener is None:
        return token.type == "NAME" and _indent(text, at) == 0
    if opener.start_pos is None:  # a block opened in a broken line: no layout to match
        return True
    brace = opener.start_pos
    if token.type == "NAME":
        return _indent(text, at) > _indent(text, brace)
    if "\n" not in text[brace:at]:
        return True
    column = at - (text.rfind("\n", 0, at) + 1)
    if first_on_line:
        return column == _indent(text, brace)
    # a `}` after a typo on its line (`  =}`, `=  }`): the typo pushed it right
    return 0 <= column - _indent(text, brace) <= 4


def _trial(candidate: Any, tokens: list[Token], start: int, budget: list[int]) -> int:
    """How many of the `_RESYNC_WINDOW` tokens from `start` `candidate` accepts.

    All of them when it reaches the end of the file or a lexical error (a separate
    error) first; -1 when the budget is spent.
    """
    from lark.exceptions import UnexpectedToken

    trial = candidate.copy(deepcopy_values=False)
    for count, token in enumerate(tokens[start : start + _RESYNC_WINDOW]):
        if token.type == "$ERROR":
            return _RESYNC_WINDOW
        if budget[0] <= 0:
            return -1
        budget[0] -= 1
        try:
            trial.feed_token(token, token.type == "$END")
        except UnexpectedToken:
            return count
        if token.type == "$END":
            return _RESYNC_WINDOW
    return _RESYNC_WINDOW


# --- lark tree → syntax dataclasses ----------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "0": "\0", "/": "/"}
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Integers are 64-bit signed, like the tensors' and the seeds' integers downstream;
# checking the digit count first means no huge literal is ever converted.
MAX_INTEGER = 2**63 - 1
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


class _Builder:
    """Converts the lark tree; collects escape errors (the only post-parse syntax errors)."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []

    def span(self, node: Tree | Token) -> Span:
        from lark import Token

        if isinstance(node, Token):
            return self.source.span(node.start_pos or 0, node.end_pos or 0)
        meta = node.meta
        if getattr(meta, "empty", True):
            return self.source.span(0, 0)
        return self.source.span(meta.start_pos, meta.end_pos)

    def item(self, node: Tree) -> Item:
        from lark import Token

        if node.data == "assignment":
            name, value = node.children
            return Assignment(str(name), self.span(name), self.value(value), self.span(node))
        # block: NAME [header] LBRACE item* RBRACE
        name, *rest = node.children
        header = rest.pop(0) if not isinstance(rest[0], Token) else None
        lbrace = rest.pop(0)
        rbrace = rest.pop()
        return Block(
            kind=str(name),
            kind_span=self.span(name),
            header=self.value(header) if header is not None else None,  # type: ignore[arg-type]
            items=tuple(self.item(child) for child in rest),
            span=self.span(node),
            open_span=self.span(lbrace),
            close_span=self.span(rbrace),
        )

    def value(self, node: Any) -> Value:
        kind = node.data
        if kind == "string":
            return self.string(node.children[0])
        if kind == "number":
            return self.number(node.children[0])
        if kind == "ident":
            return Ident(str(node.children[0]), self.span(node))
        if kind == "list":
            return ListValue(
                tuple(
                    self.range(child) if child.data == "range" else self.value(child)
                    for child in node.children
                ),
                self.span(node),
            )
        raise AssertionError(f"unexpected tree node {kind}")  # grammar and builder disagree

    def range(self, node: Any) -> Range:
        start, *more = node.children
        stop = more[0] if more else None
        return Range(
            self.number(start), self.number(stop) if stop is not None else None, self.span(node)
        )

    def number(self, token: Token) -> Number:
        start, end = token.start_pos or 0, token.end_pos or 0
        return self.number_at(str(token), self.source.span(start, end))

    def number_at(self, text: str, span: Span) -> Number:
        """The one conversion of a number literal; never raises, whatever its size.

        An integer beyond 64 bits is a KVS020 error (its value is clamped, so that no
        other error follows from it); a decimal too large for a float becomes inf,
        which the checker reports as not finite (KVS111).
        """
        if not _INTEGER.fullmatch(text):
            return Number(float(text), text, span)  # float() of any digit string is safe
        digits = text.lstrip("+-").lstrip("0")
        value = int(text) if len(digits) <= 19 else MAX_INTEGER + 1
        if abs(value) > MAX_INTEGER:
            shown = text if len(text) <= 24 else text[:20] + "..."
            self.diagnostics.append(
                _error(
                    "KVS020",
                    f"integer `{shown}` is out of range"
                    + (f" ({len(digits):,} digits)" if shown != text else ""),
                    span,
                    help=f"integers are 64-bit: at most {MAX_INTEGER:,} in size; "
                    "write a large decimal as a float such as `1e30`",
                )
            )
            value = -MAX_INTEGER if text.startswith("-") else MAX_INTEGER
        return Number(value, text, span)

    def string(self, token: Token) -> String:
        return self.string_at(token.type, str(token), token.start_pos or 0, token.end_pos or 0)

    def string_at(self, kind: str, raw: str, start: int, end: int) -> String:
        if kind == "LONG_STRING":
            return String(raw[3:-3], True, self.source.span(start, end))
        body = raw[1:-1]
        if "\\" not in body:
            return String(body, False, self.source.span(start, end))
        base = start + 1

        def decode(match: re.Match[str]) -> str:
            esc = match.group(1)
            if len(esc) > 1:  # \uXXXX or \UXXXXXXXX (a bare `\u` falls through to the error)
                code = int(esc[1:], 16)
                if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                    return chr(code)
            elif esc in _ESCAPES:
                return _ESCAPES[esc]
            self.diagnostics.append(
                _error(
                    "KVS015",
                    f"invalid escape `\\{esc}` in string",
                    self.source.span(base + match.start(), base + match.end()),
                    help=f"write `\\\\{esc[0]}` for a literal backslash; valid escapes are "
                    '\\n \\t \\r \\0 \\\\ \\" \\/ \\uXXXX \\UXXXXXXXX',
                )
            )
            return match.group(0)

        return String(_ESCAPE.sub(decode, body), False, self.source.span(start, end))
