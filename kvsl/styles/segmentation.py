"""Segments: a text split into lines, then each line into sentences.

Every scorer and the repetition rule look at a text through these segments.
"""

from __future__ import annotations

import re

# A sentence ends at . ! or ? followed by whitespace; the split is undone below when the
# "sentence" is only an enumerator ("1." or "Step 2."), which belongs to the next one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BARE_ENUMERATOR = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|step\s*\d{1,2}[.:)]?)\s*$", re.IGNORECASE)


def segment_spans(text: str) -> list[tuple[int, int]]:
    """`(start, end)` offsets in `text` of each segment (see `segments`)."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for raw, line in zip(text.splitlines(keepends=True), text.splitlines(), strict=True):
        body = line.strip()
        base = offset + (len(line) - len(line.lstrip()))
        offset += len(raw)
        if not body:
            continue
        # The sentence pieces of the line, as offsets into `body`.
        pieces: list[tuple[int, int]] = []
        previous = 0
        for gap in _SENTENCE_END.finditer(body):
            pieces.append((previous, gap.start()))
            previous = gap.end()
        pieces.append((previous, len(body)))
        pending: tuple[int, int] | None = None  # bare enumerators waiting for their sentence
        for start, end in pieces:
            if start == end:
                continue
            if _BARE_ENUMERATOR.match(body[start:end]):
                pending = (pending[0] if pending else start, end)
                continue
            spans.append((base + (pending[0] if pending else start), base + end))
            pending = None
        if pending:
            spans.append((base + pending[0], base + pending[1]))
    return spans


def segments(text: str) -> list[str]:
    """Split a text into lines, then each line into sentences; empty pieces dropped.

    Steps may arrive one per line (a trace joined with newlines) or run together in one
    paragraph (a model's output), so the scorers look at both.

    >>> segments("1. Add 2 and 3. Then double it.\\n2. That is 10.")
    ['1. Add 2 and 3.', 'Then double it.', '2. That is 10.']
    >>> segments("It costs $3.50 now.")
    ['It costs $3.50 now.']
    """
    return [text[start:end] for start, end in segment_spans(text)]
