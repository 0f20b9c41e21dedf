"""The syntax tree of a `.kvs` spec: frozen dataclasses, each carrying its span.

The parser (`kvsl.lang.parser`) builds these; everything downstream (checker, formatter,
lowering, the editor server) reads them. The tree is generic on purpose: a spec is a list of items,
an item is `key = value` or `name [header] { items }`. Which keys exist is decided by the
checker (`kvsl.lang.analyze`), so a misspelt key is a KVS104, not a syntax error.

>>> from kvsl.lang.parser import parse_text
>>> spec, diagnostics = parse_text('style "s" { steer { layers = [1..] } }', "s.kvs")
>>> spec.items[0].kind, spec.items[0].header.value
('style', 's')
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

from kvsl.lang.source import Span


@dataclass(frozen=True)
class String:
    """A string literal; `triple` is True for a verbatim `\"\"\"...\"\"\"` block."""

    value: str
    triple: bool
    span: Span


@dataclass(frozen=True)
class Number:
    """A number as written (`text`) and its value (int unless it has a dot or exponent)."""

    value: int | float
    text: str
    span: Span


@dataclass(frozen=True)
class Ident:
    """A bare word: `random`, `last_token`, `all`, `greedy`."""

    name: str
    span: Span


@dataclass(frozen=True)
class Range:
    """An inclusive layer range inside a list: `1..8`, `-4..-1`, or open `1..`."""

    start: Number
    stop: Number | None
    span: Span


@dataclass(frozen=True)
class ListValue:
    """`[a, b, 1..3]`."""

    items: tuple[String | Number | Ident | ListValue | Range, ...]
    span: Span


Value = String | Number | Ident | ListValue


@dataclass(frozen=True)
class Assignment:
    """`key = value`."""

    key: str
    key_span: Span
    value: Value
    span: Span


@dataclass(frozen=True)
class Block:
    """`kind [header] { items }`: `style "name" {...}`, `steer {...}`, `at [1..4] {...}`."""

    kind: str
    kind_span: Span
    header: String | ListValue | None
    items: tuple[Item, ...]
    span: Span
    open_span: Span  # the `{`
    close_span: Span  # the `}`


Item = Assignment | Block


@dataclass(frozen=True)
class Comment:
    """A `# ...` comment (kept for the formatter; the checker ignores comments)."""

    text: str
    span: Span


@dataclass(frozen=True)
class Spec:
    """One parsed file."""

    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...]
    span: Span


def without_spans(node: object) -> object:
    """The tree as nested tuples with every span dropped, for comparing two parses.

    >>> from kvsl.lang.parser import parse_text
    >>> a, _ = parse_text('style "s" {}', "a.kvs")
    >>> b, _ = parse_text('style   "s"   {  }', "b.kvs")
    >>> without_spans(a) == without_spans(b)
    True
    """
    if isinstance(node, Spec):
        return ("Spec", without_spans(node.items))
    if is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            *tuple(
                without_spans(getattr(node, f.name))
                for f in fields(node)
                if (not f.name.endswith("span") and f.name not in ("text",))
                or (isinstance(node, Comment) and f.name == "text")
            ),
        )
    if isinstance(node, tuple | list):
        return tuple(without_spans(item) for item in node)
    return node


def value_kind(value: object) -> str:
    """A short human word for a value's type, used in "expected X, found Y" messages."""
    if isinstance(value, String):
        return "a string"
    if isinstance(value, Number):
        return "an integer" if isinstance(value.value, int) else "a number"
    if isinstance(value, Ident):
        return f"`{value.name}`"
    if isinstance(value, ListValue):
        return "a list"
    if isinstance(value, Range):
        return "a range"
    if isinstance(value, Block):
        return "a block"
    return "a value"
