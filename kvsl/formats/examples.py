"""What a benchmark file holds, in kvsl's terms: `Example`s with their `Choice`s.

The readers of each format (`kvsl.formats.question_records`) build these; the eval
grades them and the teacher asks them (`kvsl.formats.questions.load_benchmark`).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

FORMATS = ("gsm8k", "arc", "csqa", "piqa", "plain")
MULTIPLE_CHOICE_FORMATS = frozenset({"arc", "csqa", "piqa"})
LETTERS = string.ascii_uppercase

# Names users may type for a format (`--benchmark arc-challenge`, `commonsenseqa`, ...).
FORMAT_ALIASES: dict[str, str] = {
    "gsm8k": "gsm8k",
    "gsm": "gsm8k",
    "arc": "arc",
    "arc-challenge": "arc",
    "arc_challenge": "arc",
    "arc-c": "arc",
    "csqa": "csqa",
    "commonsenseqa": "csqa",
    "commonsense_qa": "csqa",
    "piqa": "piqa",
    "plain": "plain",
    "jsonl": "plain",
}

_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Choice:
    """One answer option: `Choice("A", "dry palms")`."""

    label: str
    text: str


@dataclass(frozen=True)
class Example:
    """One benchmark item, ready to be shown to a model.

    `question` is the full user turn (for multiple choice it includes the `Choices:`
    block); `stem` is the bare question; `answer` is a choice label (`"C"`) or a number
    string (`"18"`); `choices` is empty for open-answer items; `source` is the format name
    (`"arc"`, `"gsm8k"`, ...).
    """

    id: str
    question: str
    answer: str
    choices: tuple[Choice, ...]
    stem: str
    source: str

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.choices)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.choices)


def multiple_choice_prompt(stem: str, choices: tuple[Choice, ...] | list[Choice]) -> str:
    """The paper's multiple-choice prompt.

    >>> multiple_choice_prompt("Which?", [Choice("A", "x"), Choice("B", "y")])
    'Which?\\n\\nChoices:\\nA: x\\nB: y'
    """
    lines = "\n".join(f"{c.label}: {c.text}" for c in choices)
    return f"{stem.strip()}\n\nChoices:\n{lines}"


def normalize_number(text: str) -> str:
    """A GSM8K-style final answer as a canonical number string.

    Removes thousands separators, currency and surrounding spaces, drops trailing zeros of
    decimals (`"12.50"` → `"12.5"`, `"3.0"` → `"3"`).

    >>> normalize_number("$1,234.50")
    '1234.5'
    >>> normalize_number("-7")
    '-7'
    """
    cleaned = text.strip().replace(",", "").replace("$", "").replace("€", "").replace("£", "")
    cleaned = cleaned.rstrip(".").strip()
    if re.fullmatch(r"[-+]?(\d+(\.\d+)?|\.\d+)", cleaned):
        sign = "-" if cleaned.startswith("-") else ""
        body = cleaned.lstrip("+-")
        if "." in body:
            body = body.rstrip("0").rstrip(".")
        body = body.lstrip("0") or "0"
        if body.startswith("."):
            body = "0" + body
        return "0" if body == "0" else sign + body
    return cleaned
