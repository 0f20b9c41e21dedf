"""Reading a teacher's reply: tagged steps, the final answer, and whether it is right.

A teacher template asks the model to wrap each reasoning step in `<step>...</step>` and the
final answer in `<answer>...</answer>`. Tags are matched case-insensitively, may carry
attributes (`<step n="2">`), and may span lines. Anything outside the tags (preambles,
`<think>` blocks of reasoning models) is ignored.

Answers are compared the way a grader would: multiple-choice labels case-insensitively
whatever the decoration (`"B"`, `"(b)"`, `"B: dry palms"`, `"B) dry palms"`, or the choice
text alone), numbers numerically with thousands separators and currency stripped
(`"$1,234.0"` equals `"1234"`), anything else by case- and punctuation-insensitive text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_STEP = re.compile(r"<step\b[^>]*>(.*?)</step\s*>", re.IGNORECASE | re.DOTALL)
_ANSWER = re.compile(r"<answer\b[^>]*>(.*?)</answer\s*>", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think\b[^>]*>.*?</think\s*>", re.IGNORECASE | re.DOTALL)
# Fallback when the model forgot the <answer> tag but wrote the usual closing sentence.
_ANSWER_SENTENCE = re.compile(r"answer\s+is\s*:?\s*(.+?)\s*(?:\.\s*)?$", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_LABEL_PREFIX = re.compile(r"^\(?\s*([A-Za-z]|\d{1,2})\s*(?:[).:\]]|\s*-\s|\s*$)")


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


@dataclass(frozen=True)
class ChoiceLike:
    """A (label, text) pair; any object with `.label` and `.text` works the same."""

    label: str
    text: str


def normalize_label(text: str, labels: Sequence[str]) -> str | None:
    """The choice label an answer names, upper-cased, or None if it names none.

    >>> normalize_label("(b) dry palms", ["A", "B"])
    'B'
    >>> normalize_label("C", ["A", "B"]) is None
    True
    """
    wanted = {label.strip().upper() for label in labels}
    cleaned = _strip_decoration(text)
    if cleaned.upper() in wanted:
        return cleaned.upper()
    match = _LABEL_PREFIX.match(cleaned)
    if match and match.group(1).upper() in wanted:
        return match.group(1).upper()
    return None


def _strip_decoration(text: str) -> str:
    cleaned = text.strip().strip("*_`\"'").strip()
    cleaned = re.sub(
        r"^(?:the\s+)?(?:final\s+)?(?:answer|option|choice)\s*(?:is)?\s*:?\s*",
        "",
        cleaned,
        flags=re.IGNORECASE,
    )
    return cleaned.rstrip(".").strip()


def parse_number(text: str) -> Decimal | None:
    """The last number in `text`, commas and currency ignored; None if there is none.

    >>> parse_number("She makes $1,234.50 a day.")
    Decimal('1234.50')
    >>> parse_number("eighteen") is None
    True
    """
    matches = _NUMBER.findall(text.replace("$", "").replace("€", "").replace("£", ""))
    if not matches:
        return None
    try:
        return Decimal(matches[-1].replace(",", ""))
    except InvalidOperation:
        return None


def _plain_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def answers_agree(got: str, expected: str, choices: Sequence[object] = ()) -> bool:
    """Whether a teacher's final answer matches the known answer.

    `choices` are objects with `.label` and `.text` (kvsl.eval.datasets.Choice); with
    choices the answer must name the expected label, or be the expected choice's text.

    >>> from kvsl.teacher.parsing import ChoiceLike as C
    >>> answers_agree("(b)", "B", [C("A", "wet"), C("B", "dry")])
    True
    >>> answers_agree("dry", "B", [C("A", "wet"), C("B", "dry")])
    True
    >>> answers_agree("1,234", "1234")
    True
    >>> answers_agree("17", "18")
    False
    """
    if choices:
        labels = [str(getattr(c, "label", "")) for c in choices]
        label = normalize_label(got, labels)
        if label is not None:
            return label == expected.strip().upper()
        texts = {
            str(getattr(c, "label", "")).strip().upper(): str(getattr(c, "text", ""))
            for c in choices
        }
        gold_text = texts.get(expected.strip().upper())
        return gold_text is not None and _plain_text(_strip_decoration(got)) == _plain_text(
            gold_text
        )
    gold_number = parse_number(expected) if _looks_numeric(expected) else None
    if gold_number is not None:
        got_number = parse_number(got)
        return got_number is not None and got_number == gold_number
    return _plain_text(_strip_decoration(got)) == _plain_text(_strip_decoration(expected))


def _looks_numeric(text: str) -> bool:
    return re.fullmatch(r"\s*[-+]?[$€£]?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+)\s*", text) is not None
