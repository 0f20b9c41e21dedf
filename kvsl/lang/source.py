"""Source files and spans: byte-free, character-offset positions with 1-based line:col."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) in one file, with 1-based line:col."""

    path: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def whole_file(cls, path: str) -> Span:
        """A span for diagnostics about a file as a whole (unreadable, binary, ...)."""
        return cls(path, 0, 0, 1, 1, 1, 1)


@dataclass(frozen=True)
class SourceFile:
    """The text of one spec or template, with offset → line:col mapping.

    >>> src = SourceFile("a.kvs", "ab\\ncd")
    >>> src.span(3, 5).line, src.span(3, 5).column
    (2, 1)
    """

    path: str
    text: str

    @cached_property
    def _line_starts(self) -> list[int]:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(self.text) if ch == "\n")
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(self.path, start, end, line, column, end_line, end_column)

    def line_text(self, line: int) -> str:
        """The source line exactly as written (without its newline)."""
        starts = self._line_starts
        if not 1 <= line <= len(starts):
            return ""
        begin = starts[line - 1]
        finish = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:finish]
