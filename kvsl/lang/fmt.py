"""The canonical printer behind `kvsl fmt`: one layout, comments kept, idempotent.

Layout: two-space indentation; `key = value`; one space inside `{ }` only for one-line
`at [...] { ... }` blocks; lists on one line when they fit in 100 columns, otherwise one
item per line with trailing commas; at most one blank line between items (blank lines
the author left are kept, none directly after `{`); a trailing comment sits two spaces
after its item; strings use canonical escapes; numbers keep their spelling; the file
ends with one newline. Comments are re-attached by position: a comment on an item's
last line stays trailing, any other comment becomes a line of its own before the next item.

>>> print(format_text('style "s"{steer{value=6   # c_v\\n}}')[0], end="")
style "s" {
  steer {
    value = 6  # c_v
  }
}
"""

from __future__ import annotations

import re

from kvsl.lang.diagnostics import Diagnostic
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
)

WIDTH = 100
INDENT = "  "
_BLANK_LINE = re.compile(r"\n[ \t\r\f]*\n")


def format_text(text: str, path: str = "<text>") -> tuple[str | None, list[Diagnostic]]:
    """Canonical text of a spec, or (None, syntax diagnostics) if it does not parse."""
    from kvsl.lang.parser import parse_text

    spec, diagnostics = parse_text(text, path)
    if spec is None or any(d.code.startswith("KVS0") for d in diagnostics):
        return None, diagnostics
    return format_spec(spec, text), diagnostics


def format_spec(spec: Spec, text: str) -> str:
    """Print a parsed spec (its source `text` is needed for blank lines and comments)."""
    printer = _Printer(spec, text)
    printer.items(spec.items, "")
    printer.flush_before(len(text) + 1, "")
    lines = printer.out
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def escape_string(value: str) -> str:
    """A `"..."` literal that the parser decodes back to `value`.

    >>> escape_string('a"b\\n')
    '"a\\\\"b\\\\n"'
    """
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable() or ch in "\u2028\u2029\x85":
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def value_text(node: object, indent: str = "") -> str:
    """One value in canonical form (lists break over lines past `WIDTH`)."""
    if isinstance(node, String):
        return f'"""{node.value}"""' if node.triple else escape_string(node.value)
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Range):
        stop = node.stop.text if node.stop is not None else ""
        return f"{node.start.text}..{stop}"
    if isinstance(node, ListValue):
        parts = [value_text(item, indent + INDENT) for item in node.items]
        one_line = "[" + ", ".join(parts) + "]"
        if len(indent) + len(one_line) <= WIDTH and "\n" not in one_line:
            return one_line
        inner = indent + INDENT
        return "[\n" + "".join(f"{inner}{part},\n" for part in parts) + indent + "]"
    raise TypeError(f"not a value: {node!r}")


class _Printer:
    def __init__(self, spec: Spec, text: str) -> None:
        self.text = text
        self.comments: list[Comment] = sorted(spec.comments, key=lambda c: c.span.start)
        self.next_comment = 0
        self.out: list[str] = []
        self.last_end = 0
        self.fresh = True  # at the start of the file or right after `{`: no blank line

    # comments and blank lines

    def _gap(self, start: int) -> None:
        if not self.fresh and _BLANK_LINE.search(
            self.text, self.last_end, max(start, self.last_end)
        ):
            self.out.append("")

    def flush_before(self, offset: int, indent: str) -> None:
        """Emit, as lines of their own, the comments that start before `offset`."""
        while self.next_comment < len(self.comments):
            comment = self.comments[self.next_comment]
            if comment.span.start >= offset:
                break
            self._gap(comment.span.start)
            self.out.append(indent + comment.text.rstrip())
            self.last_end = max(self.last_end, comment.span.end)
            self.fresh = False
            self.next_comment += 1

    def trailing(self, end: int) -> None:
        """Attach a comment on the same source line as offset `end` to the last line."""
        if self.next_comment >= len(self.comments):
            return
        comment = self.comments[self.next_comment]
        between = self.text[end : comment.span.start]
        if comment.span.start >= end and "\n" not in between and not between.strip():
            self.out[-1] = f"{self.out[-1]}  {comment.text.rstrip()}"
            self.last_end = comment.span.end
            self.next_comment += 1

    def _inner(self, start: int, end: int) -> list[Comment]:
        """Pop the comments inside [start, end) (within a value spanning lines)."""
        inner = []
        while self.next_comment < len(self.comments):
            comment = self.comments[self.next_comment]
            if not start <= comment.span.start < end:
                break
            inner.append(comment)
            self.next_comment += 1
        return inner

    # items

    def items(self, items: tuple[Item, ...], indent: str) -> None:
        for item in items:
            self.flush_before(item.span.start, indent)
            self._gap(item.span.start)
            if isinstance(item, Assignment):
                self.assignment(item, indent)
            else:
                self.block(item, indent)
            self.fresh = False

    def assignment(self, item: Assignment, indent: str) -> None:
        text = f"{indent}{item.key} = {value_text(item.value, indent)}"
        self.out.extend(text.split("\n"))
        self.last_end = item.span.end
        inner = self._inner(item.span.start, item.span.end)
        self.trailing(item.span.end)
        for comment in inner:
            self.out.append(indent + comment.text.rstrip())

    def block(self, block: Block, indent: str) -> None:
        head = block.kind
        if block.header is not None:
            head += " " + value_text(block.header, indent)
        has_inner_comment = (
            self.next_comment < len(self.comments)
            and self.comments[self.next_comment].span.start < block.close_span.start
        )
        if not block.items and not has_inner_comment:
            self.out.append(f"{indent}{head} {{}}")
            self.last_end = block.span.end
            self.trailing(block.span.end)
            return
        if (
            block.kind == "at"
            and not has_inner_comment
            and all(isinstance(item, Assignment) for item in block.items)
        ):
            body = "  ".join(
                f"{item.key} = {value_text(item.value)}"  # type: ignore[union-attr]
                for item in block.items
            )
            line = f"{indent}{head} {{ {body} }}"
            if len(line) <= WIDTH and "\n" not in line:
                self.out.append(line)
                self.last_end = block.span.end
                self.trailing(block.span.end)
                return
        self.out.append(f"{indent}{head} {{")
        self.last_end = block.open_span.end
        self.trailing(block.open_span.end)
        self.fresh = True
        self.items(block.items, indent + INDENT)
        self.flush_before(block.close_span.start, indent + INDENT)
        self.out.append(f"{indent}}}")
        self.last_end = block.span.end
        self.fresh = False
        self.trailing(block.span.end)
