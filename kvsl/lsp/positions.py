"""kvsl spans ↔ LSP positions.

kvsl counts 1-based lines and 1-based columns in code points (Python string indices);
LSP counts 0-based lines and 0-based characters in the negotiated encoding's code units,
UTF-16 unless the client asked for another. An emoji is one column for kvsl and two
UTF-16 units for an editor, so every conversion goes through the line's text.

>>> index = LineIndex("x = \\"😀\\" y")
>>> index.position(6)   # the `"` after the emoji: code point 6, UTF-16 unit 7
(0, 7)
>>> index.offset(0, 7)
6
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from kvsl.lang.source import Span

_NEWLINE = re.compile("\n")
Units = Callable[[str], int]  # how many code units a piece of text takes in the encoding


def utf16_units(text: str) -> int:
    """UTF-16 code units of `text` (LSP's default position encoding).

    >>> utf16_units("a😀")
    3
    """
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class LineIndex:
    """Line starts of one text, for offset ↔ (line, character) in any encoding."""

    def __init__(self, text: str, units: Units = utf16_units) -> None:
        self.text = text
        self.units = units
        self.starts = [0]
        self.starts.extend(match.end() for match in _NEWLINE.finditer(text))

    def line_text(self, line: int) -> str:
        """0-based line `line` without its newline ("" past the end)."""
        if not 0 <= line < len(self.starts):
            return ""
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[line] : end]

    def position(self, offset: int) -> tuple[int, int]:
        """0-based (line, character) of a code-point offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return line, self.units(self.text[self.starts[line] : offset])

    def offset(self, line: int, character: int) -> int:
        """The code-point offset of an LSP position (clamped to the line and the text)."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        text = self.line_text(line)
        count = 0
        for index, ch in enumerate(text):
            if count >= character:
                return self.starts[line] + index
            count += self.units(ch)
        return self.starts[line] + len(text)


def span_range(
    span: Span, line_text: Callable[[int], str] | None, units: Units = utf16_units
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((line, char), (line, char)) of a span, 0-based, from its 1-based line:col.

    `line_text(n)` gives 0-based line n of the span's file; without it (a file that
    cannot be read) columns are taken as code units, which is exact for ASCII lines.

    >>> from kvsl.lang.source import SourceFile
    >>> src = SourceFile("a.kvs", 'é = "x"\\n😀 = 1')
    >>> index = LineIndex(src.text)
    >>> span_range(src.span(10, 11), index.line_text)  # the `=` after the emoji
    ((1, 3), (1, 4))
    """

    def convert(line: int, column: int) -> tuple[int, int]:
        row = max(line - 1, 0)
        if line_text is None:
            return row, max(column - 1, 0)
        return row, units(line_text(row)[: max(column - 1, 0)])

    return convert(span.line, span.column), convert(span.end_line, span.end_column)
