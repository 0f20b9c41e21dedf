"""Reading final answers: numbers, multiple-choice labels and short free text.

The one implementation of answer reading in kvsl. The eval scores model responses with it
(`kvsl.eval.answers` re-exports it with `Example`-based wrappers) and the teacher keeps a
trace only if its `<answer>` reads as the known answer here (`answers_agree`, re-exported
by `kvsl.teacher.parsing`), so a kept trace is one the eval would score as correct.
Pure Python: no torch, nothing else from kvsl.

Every extractor is a cascade from the most explicit statement of an answer to the least,
and reports *how* it decided (`Extracted.how`), so a report can say how many answers were
stated and how many were guessed.

The readers live one kind to a module, each with its rules in its docstring:

- numbers (`extract_number`): `kvsl.base.numbers`: `#### N`, `\\boxed{N}`, the last
  "answer is N", else the last number; exact values (`18.00` equals `18`);
- multiple choice (`extract_choice`): `kvsl.base.choices`: a stated label, the choice
  text, else a forced choice (the model's, word overlap, a hash), restricted to the
  example's labels;
- free text (`extract_text`), below, with the dispatch (`read_answer`) and grading
  (`matches_gold`, `answers_agree`) every caller uses; the shared vocabulary
  (`Extracted`, `plain_words`) is in `kvsl.base.extracted`.

Free text (`extract_text`): what follows the last "answer is", else the whole text;
correct when the gold answer occurs in it as whole words, ignoring case and punctuation
(`plain_words`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kvsl.base.choices import (
    ANSWER_LEAD,
    ForcedChoice,
    canonical_label,
    extract_choice,
    mentioned_labels,
    named_label,
    strip_echoed_choices,
)
from kvsl.base.extracted import EXPLICIT, Extracted, LabelledChoice, plain_words
from kvsl.base.numbers import (
    canonical_number,
    extract_number,
    is_number,
    number_value,
    numbers_equal,
)


def extract_text(text: str) -> Extracted:
    """A short free-text answer: what follows the last "answer is", else the whole text.

    >>> extract_text("Clouds scatter light. The answer is: blue.").answer
    'blue'
    """
    found = list(
        re.finditer(rf"(?:{ANSWER_LEAD})\s*(?:[:=\-]|\bis\b)?\s*([^\n]+)", text, re.IGNORECASE)
    )
    if found:
        return Extracted(found[-1].group(1).strip().strip("*.\"' "), "answer-is")
    stripped = text.strip()
    return Extracted(stripped or None, "text" if stripped else "none")


def read_answer(
    response: str,
    gold: str,
    choices: Sequence[LabelledChoice] = (),
    *,
    forced: ForcedChoice | None = None,
) -> Extracted:
    """The answer a response gives, read the way `gold` is written.

    A label with choices, a number when `gold` is one (`is_number`), else free text.

    >>> read_answer("It costs 3 x $400, so the total is $1,200.", "1200")
    Extracted(answer='1200', how='answer-is')
    """
    if choices:
        return extract_choice(response, choices, forced=forced)
    if is_number(gold):
        return extract_number(response)
    return extract_text(response)


def matches_gold(extracted: Extracted, gold: str, choices: Sequence[LabelledChoice] = ()) -> bool:
    """Whether an extracted answer is the gold answer.

    Labels compare case-insensitively, numbers exactly by value (`numbers_equal`), free
    text by whole words: the gold's plain words must occur in the answer's
    ("Yes, it is" matches "yes", "yesterday" does not).

    >>> matches_gold(Extracted("18.0", "answer-is"), "18")
    True
    """
    if extracted.answer is None:
        return False
    if choices:
        labels = [c.label for c in choices]
        expected = canonical_label(gold, labels)
        return expected is not None and canonical_label(extracted.answer, labels) == expected
    if is_number(gold):
        return numbers_equal(extracted.answer, gold)
    words = plain_words(gold)
    return bool(words) and f" {words} " in f" {plain_words(extracted.answer)} "


def answers_agree(got: str, expected: str, choices: Sequence[LabelledChoice] = ()) -> bool:
    """Whether a stated answer (a teacher's `<answer>`) is the known answer.

    The answer agrees when the eval, reading it with the same rules, would score it
    correct without guessing: a forced choice never agrees, and neither does a choice text
    when the answer mentions several choices ("dry palms, not wet palms").

    >>> from kvsl.formats.questions import Choice as C
    >>> answers_agree("(b)", "B", [C("A", "wet"), C("B", "dry")])
    True
    >>> answers_agree("dry", "B", [C("A", "wet"), C("B", "dry")])
    True
    >>> answers_agree("1,234", "1234"), answers_agree("17", "18")
    (True, False)
    """
    extracted = read_answer(got, expected, choices)
    if extracted.forced:
        return False
    if (
        choices
        and extracted.how == "text"
        and len(mentioned_labels(strip_echoed_choices(got, choices), choices)) > 1
    ):
        return False
    return matches_gold(extracted, expected, choices)


__all__ = [
    "EXPLICIT",
    "Extracted",
    "ForcedChoice",
    "LabelledChoice",
    "answers_agree",
    "canonical_label",
    "canonical_number",
    "extract_choice",
    "extract_number",
    "extract_text",
    "is_number",
    "matches_gold",
    "named_label",
    "number_value",
    "numbers_equal",
    "plain_words",
    "read_answer",
    "strip_echoed_choices",
]
