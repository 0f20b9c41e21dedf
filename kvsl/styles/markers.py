"""User-declared styles: regex `markers` and their scorer.

The regexes have one validator, `validate_marker` from `kvsl.lang.markers` (re-exported
here): the checker reports what it refuses, and the scorer skips it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from kvsl.lang.markers import validate_marker
from kvsl.styles.repetition import novelty

__all__ = ["MarkerScorer", "validate_marker"]


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
