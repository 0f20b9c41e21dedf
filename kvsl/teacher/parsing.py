"""Reading a teacher's reply: tagged steps, the final answer, and whether it is right.

A teacher template asks the model to wrap each reasoning step in `<step>...</step>` and the
final answer in `<answer>...</answer>`. Tags are matched case-insensitively, may carry
attributes (`<step n="2">`), and may span lines. Anything outside the tags (preambles,
`<think>` blocks of reasoning models) is ignored.

Whether the answer is right is decided by `answers_agree` from `kvsl.base.answers`, the rules
the eval scores with (re-exported here): multiple-choice labels case-insensitively
whatever the decoration (`"B"`, `"(b)"`, `"B: dry palms"`, `"I choose B"`, or the choice
text alone), numbers exactly by value (`"$1,234.0"` equals `"1234"`), other answers by
whole words ignoring case and punctuation. A forced (guessed) reading never agrees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kvsl.base.answers import answers_agree, extract_number, named_label, number_value
from kvsl.formats.questions import Choice as ChoiceLike

__all__ = [
    "ChoiceLike",
    "ParsedReply",
    "answers_agree",
    "normalize_label",
    "parse_number",
    "parse_reply",
]

_STEP = re.compile(r"<step\b[^>]*>(.*?)</step\s*>", re.IGNORECASE | re.DOTALL)
_ANSWER = re.compile(r"<answer\b[^>]*>(.*?)</answer\s*>", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think\b[^>]*>.*?</think\s*>", re.IGNORECASE | re.DOTALL)
# Fallback when the model forgot the <answer> tag but wrote the usual closing sentence.
_ANSWER_SENTENCE = re.compile(r"answer\s+is\s*:?\s*(.+?)\s*(?:\.\s*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedReply:
    """What a reply contains: its steps (stripped, non-empty) and its final answer.

    `answer` is None when the reply has no `<answer>` tag and no "the answer is X" line.
    """

    steps: tuple[str, ...]
    answer: str | None


def parse_reply(text: str) -> ParsedReply:
    """Extract `<step>` and `<answer>` contents from a teacher's reply.

    >>> parse_reply("<step>2 + 2 is 4.</step>\\n<step>So 4.</step><answer>4</answer>")
    ParsedReply(steps=('2 + 2 is 4.', 'So 4.'), answer='4')
    >>> parse_reply("no tags here").steps
    ()
    """
    body = _THINK.sub("", text)
    steps = tuple(s for s in (_clean(m) for m in _STEP.findall(body)) if s)
    answers = [a for a in (_clean(m) for m in _ANSWER.findall(body)) if a]
    answer: str | None = answers[-1] if answers else None
    if answer is None:
        # Only the text after the last step can hold the closing sentence, so that a step
        # saying "the answer is not 3" is never taken for the answer.
        tail = _STEP.split(body)[-1] if steps else body
        for line in reversed([ln.strip() for ln in tail.splitlines() if ln.strip()]):
            match = _ANSWER_SENTENCE.search(line)
            if match:
                answer = match.group(1).strip()
                break
    return ParsedReply(steps=steps, answer=answer)


def _clean(fragment: str) -> str:
    # Collapse the indentation models like to put inside tags, keep line breaks meaningful.
    lines = [line.strip() for line in fragment.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def normalize_label(text: str, labels: Sequence[str]) -> str | None:
    """The choice label an answer names, upper-cased, or None if it names none.

    A thin wrapper over `kvsl.base.answers.named_label`, kept for old callers.

    >>> normalize_label("(b) dry palms", ["A", "B"])
    'B'
    >>> normalize_label("C", ["A", "B"]) is None
    True
    """
    label = named_label(text, [label.strip() for label in labels])
    return None if label is None else label.upper()


def parse_number(text: str) -> Decimal | None:
    """The final number in `text` (`kvsl.base.answers.extract_number`); None if there is none.

    A thin wrapper kept for old callers; a fraction that has no finite decimal is rounded
    to the context precision.

    >>> parse_number("She makes $1,234.50 a day.")
    Decimal('1234.5')
    >>> parse_number("eighteen") is None
    True
    """
    answer = extract_number(text).answer
    value = None if answer is None else number_value(answer)
    if value is None:
        return None
    return Decimal(value.numerator) / Decimal(value.denominator)
