"""User-declared styles: regex `markers` (checked by `validate_marker`) and their scorer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from kvsl.styles.repetition import novelty


def validate_marker(pattern: str) -> str | None:
    """Why `pattern` cannot serve as an adherence marker, or None if it can.

    Markers are Python regexes searched with `re.MULTILINE` (so `^` matches at every
    line start). A pattern is refused when it does not compile, or when it matches the
    empty text, since then every generation would match it and the score would mean nothing.

    >>> validate_marker(r"^\\s*\\d+\\.") is None
    True
    >>> validate_marker("(unclosed")
    'invalid regex: missing ), unterminated subpattern at position 0'
    >>> validate_marker("a*")
    'matches the empty text, so every generation would match it'
    """
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as err:
        return f"invalid regex: {err}"
    except (RecursionError, OverflowError, ValueError) as err:  # pathological patterns
        return f"invalid regex: {err}"
    if compiled.search("") is not None:
        return "matches the empty text, so every generation would match it"
    return None


@dataclass(frozen=True)
class MarkerScorer:
    """Score = the fraction of the declared markers that match the text at least once,
    times `novelty(text)` (a loop is no more adherent for a user style than a built-in one).

    Markers are searched with `re.MULTILINE`. A marker that `validate_marker` refuses
    (the checker reports it) never matches but still counts in the denominator, so a
    broken marker lowers the ceiling instead of crashing a run.

    >>> s = MarkerScorer((r"(?i)\\bfirst\\b", r"^\\s*\\d+\\.", "(broken"))
    >>> s("First, add.\\n1. 2 + 2 = 4")
    0.6667
    >>> s("The answer is B.")
    0.0
    >>> s.breakdown("First, add.")
    {'(?i)\\\\bfirst\\\\b': 1.0, '^\\\\s*\\\\d+\\\\.': 0.0, '(broken': 0.0}
    """

    patterns: tuple[str, ...]
    style: str = "custom"

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str] | None, ...]:
        return tuple(
            re.compile(p, re.MULTILINE) if validate_marker(p) is None else None
            for p in self.patterns
        )

    def breakdown(self, text: str) -> dict[str, float]:
        """1.0 or 0.0 per marker, keyed by its pattern."""
        return {
            p: (1.0 if c is not None and c.search(text) else 0.0)
            for p, c in zip(self.patterns, self._compiled, strict=True)
        }

    def __call__(self, text: str) -> float:
        if not self.patterns:
            return 0.0
        hits = sum(self.breakdown(text).values())
        return round(hits / len(self.patterns) * novelty(text), 4)
