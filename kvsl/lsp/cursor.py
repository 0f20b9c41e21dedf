"""What is under the cursor: from the syntax tree when the file parses, else from the text.

Hover and go-to-definition read the tree (`target_at`): they only make sense on a file
that parses. Completion runs while the user types, on text that usually does not parse,
so `completion_context` reads the text itself: the blocks still open before the cursor
(strings and comments skipped) and the shape of the current statement.

>>> text = 'style "s" {\\n  contrast {\\n    select = ra'
>>> context = completion_context(text, len(text))
>>> context.blocks, context.what, context.key, context.partial
(['style', 'contrast'], 'value', 'select', 'ra')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kvsl.lang.syntax import Assignment, Item, ListValue, Number, Range, Spec, String

# --- the tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The node under the cursor.

    `what`: "key" (the name of `key = ...`), "value" (anywhere in its value), "block"
    (the name of a block), "header" (a block's header: a style's name, an `at` list).
    `blocks` are the enclosing block kinds, outermost first (`["style", "steer"]`).
    """

    what: str
    blocks: tuple[str, ...]
    name: str  # the key or the block kind
    node: object  # the Assignment, or the Block
    inner: object | None = None  # the innermost value node under the cursor


def _contains(span: object, offset: int) -> bool:
    return span.start <= offset <= span.end  # type: ignore[attr-defined]


def target_at(spec: Spec, offset: int) -> Target | None:
    """The node of `spec` at a code-point offset, or None (whitespace, comments)."""
    items: tuple[Item, ...] = spec.items
    blocks: tuple[str, ...] = ()
    while True:
        for item in items:
            if not _contains(item.span, offset):
                continue
            if isinstance(item, Assignment):
                if _contains(item.key_span, offset):
                    return Target("key", blocks, item.key, item)
                if _contains(item.value.span, offset):
                    inner = _innermost(item.value, offset)
                    return Target("value", blocks, item.key, item, inner)
                return None
            if _contains(item.kind_span, offset):
                return Target("block", blocks, item.kind, item)
            if item.header is not None and _contains(item.header.span, offset):
                inner = _innermost(item.header, offset)
                return Target("header", blocks, item.kind, item, inner)
            items, blocks = item.items, (*blocks, item.kind)
            break
        else:
            return None


def _innermost(node: object, offset: int) -> object:
    if isinstance(node, ListValue):
        for item in node.items:
            if _contains(item.span, offset):
                return _innermost(item, offset)
    return node


def layer_nodes(node: object) -> list[Number | Range]:
    """The layer items of a `layers` value or an `at` header."""
    if isinstance(node, ListValue):
        return [item for item in node.items if isinstance(item, Number | Range)]
    return [node] if isinstance(node, Number | Range) else []


def string_at(target: Target) -> String | None:
    node = target.inner
    return node if isinstance(node, String) else None


# --- the text --------------------------------------------------------------------------

_TOKENS = re.compile(
    r'(?P<LONG>"""(?:[^"]|"(?!""))*(?:"""|\Z))'
    r'|(?P<STRING>"(?:[^"\\\n]|\\[^\n])*(?:"|$))'
    r"|(?P<COMMENT>#[^\n]*)"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<PUNCT>[{}\[\]])",
    re.MULTILINE,
)
_VALUE_STRING = re.compile(r'\s*([A-Za-z_]\w*)\s*=\s*"([^"\\]*)\Z')
_VALUE_WORD = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)?\Z")
_VALUE_LIST = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*\[[^\]]*?([A-Za-z_]\w*)?\Z")
_KEY = re.compile(r"\s*([A-Za-z_]\w*)?\Z")
_HEADER = re.compile(r'\s*(style|base)\s+"([^"\\]*)\Z')


@dataclass
class CompletionContext:
    """`what`: "key" (a key or block name is being typed), "value", "string" (inside
    the quotes of a value), "style_name" (inside `style "..."`) or "none"."""

    what: str
    blocks: list[str] = field(default_factory=list)
    key: str | None = None
    partial: str = ""  # the word or string typed so far


def open_blocks(text: str, end: int) -> list[str]:
    """Kinds of the blocks still open at `end` (a stray `}` closes nothing)."""
    stack: list[str] = []
    previous: list[tuple[str, str]] = []  # significant tokens of the current statement
    for match in _TOKENS.finditer(text, 0, end):
        kind, value = match.lastgroup or "", match.group()
        if kind == "COMMENT":
            continue
        if value == "{":
            stack.append(_block_kind(previous))
            previous = []
        elif value == "}":
            if stack:
                stack.pop()
            previous = []
        else:
            previous.append((kind, value))
            del previous[:-64]
    return stack


def _block_kind(tokens: list[tuple[str, str]]) -> str:
    """The kind of the block opened after `tokens`: `NAME [header] {`."""
    index = len(tokens) - 1
    if index >= 0 and tokens[index][1] == "]":
        depth = 0
        while index >= 0:
            depth += {"]": 1, "[": -1}.get(tokens[index][1], 0)
            index -= 1
            if depth == 0:
                break
    elif index >= 0 and tokens[index][0] in ("STRING", "LONG"):
        index -= 1
    return tokens[index][1] if index >= 0 and tokens[index][0] == "NAME" else "?"


def completion_context(text: str, offset: int) -> CompletionContext:
    """What is being typed at `offset` (code points), on text that need not parse."""
    line_start = text.rfind("\n", 0, offset) + 1
    # The statement starts after the last brace on this line (outside strings).
    start = line_start
    for match in _TOKENS.finditer(text, line_start, offset):
        if match.group() in ("{", "}"):
            start = match.end()
    blocks = open_blocks(text, start)
    prefix = text[start:offset]
    in_comment = "#" in re.sub(r'"(?:[^"\\]|\\.)*"', "", prefix)
    if in_comment and not _VALUE_STRING.match(prefix):
        return CompletionContext("none", blocks)
    if match_ := _HEADER.match(prefix):
        return CompletionContext("style_name", blocks, match_.group(1), match_.group(2))
    if match_ := _VALUE_STRING.match(prefix):
        return CompletionContext("string", blocks, match_.group(1), match_.group(2))
    if match_ := _VALUE_WORD.match(prefix):
        return CompletionContext("value", blocks, match_.group(1), match_.group(2) or "")
    if match_ := _VALUE_LIST.match(prefix):
        return CompletionContext("value", blocks, match_.group(1), match_.group(2) or "")
    if match_ := _KEY.match(prefix):
        return CompletionContext("key", blocks, None, match_.group(1) or "")
    return CompletionContext("none", blocks)
