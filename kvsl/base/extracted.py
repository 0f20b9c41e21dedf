"""What every answer reader returns: the answer it read, and how (`Extracted.how`).

The vocabulary shared by the number, choice and free-text readers (`kvsl.base.numbers`,
`kvsl.base.choices`, `kvsl.base.answers`): the `how` values that count as a stated
answer, the shape of a labelled choice, and the plain-words form texts are compared in.
Pure Python: no torch, nothing else from kvsl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

EXPLICIT = frozenset({"hashes", "boxed", "answer-is", "answer-is-text", "label", "text"})


class LabelledChoice(Protocol):
    """Anything with a `label` and a `text` (`kvsl.formats.questions.Choice`)."""

    @property
    def label(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Extracted:
    """An extracted answer (None: nothing found) and the rule that produced it."""

    answer: str | None
    how: str

    @property
    def forced(self) -> bool:
        """Whether no rule read a stated answer (the answer, if any, is a guess)."""
        return self.how.startswith("forced") or self.how == "none"


def plain_words(text: str) -> str:
    """`text` case-folded, as its runs of letters and digits joined by single spaces.

    >>> plain_words("  Café au lait, s'il vous plaît!")
    'café au lait s il vous plaît'
    """
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))
