"""Final-answer extraction for the eval: `kvsl.base.answers` applied to an `Example`.

The rules (the number cascade, the multiple-choice cascade with its forced choice, free
text) live in `kvsl.base.answers`, which the teacher uses too; see its docstring. This module
re-exports them under their old names and adds the `Example`-based entry points the
runner calls.

Pure Python, no torch.
"""

from __future__ import annotations

from kvsl.base.answers import (
    EXPLICIT,
    Extracted,
    ForcedChoice,
    extract_choice,
    extract_number,
    extract_text,
    matches_gold,
    numbers_equal,
    read_answer,
    strip_echoed_choices,
)
from kvsl.formats.questions import Example

__all__ = [
    "EXPLICIT",
    "Extracted",
    "ForcedChoice",
    "extract_answer",
    "extract_choice",
    "extract_number",
    "extract_text",
    "is_correct",
    "numbers_equal",
    "strip_echoed_choices",
]


def extract_answer(
    example: Example, response: str, *, forced: ForcedChoice | None = None
) -> Extracted:
    """Dispatch on the example: a label for multiple choice, a number, else free text.

    >>> from kvsl.formats.questions import Example
    >>> extract_answer(Example("x", "q", "18", (), "q", "gsm8k"), "#### 18")
    Extracted(answer='18', how='hashes')
    """
    return read_answer(response, example.answer, example.choices, forced=forced)


def is_correct(example: Example, extracted: Extracted) -> bool:
    """Whether an extracted answer matches the example's gold answer.

    Labels compare case-insensitively; numbers compare exactly by value; other plain
    answers must contain the gold's words (`kvsl.base.answers.matches_gold`).
    """
    return matches_gold(extracted, example.answer, example.choices)
