"""Final-answer extraction from free-form model responses.

Two extractors, each a cascade from the most explicit statement of an answer to the
least, and each reporting *how* it decided (`Extracted.how`), so a report can say how
many answers were stated and how many were guessed:

GSM8K (`extract_number`)
    1. `#### N`                                  ("how": "hashes")
    2. `\\boxed{N}`                               ("boxed")
    3. the last "answer is N" / "Answer: N" / "= N" at the end ("answer-is")
    4. the last number anywhere                  ("last-number")
    Numbers may carry currency (`$1,234.50`), thousands separators, decimals, a sign
    (`-4`, `−4`), a trailing period or units (`18 dollars`, `50%`); `3-4` is a subtraction,
    not minus four. Results are canonical (`normalize_number`): `"1234.5"`.

Multiple choice (`extract_choice`), restricted to the example's labels
    1. "answer is B", "Answer: (B)", "correct option is B", "I choose B", ... (last one wins)
                                                 ("answer-is")
    2. "the answer is <choice text>"             ("answer-is-text")
    3. one label stated alone: the response is "B", "(B)", "B." or starts with "B:",
       "B)", "**B**"; or exactly one distinct label in parentheses   ("label")
    4. choice text: the choices whose text occurs in the response; if several, the one
       mentioned last (texts contained in a longer matched text are dropped)  ("text")
    5. forced choice: a caller-supplied scorer (`forced`, e.g. the model's logits for
       each label after the response + "The answer is", see kvsl.eval.methods), else the
       choice whose words best overlap the response      ("forced-model" / "forced-overlap")
    6. nothing overlaps: a label picked by a hash of the response — uniform over labels,
       so unparseable responses score at chance instead of favouring "A"  ("forced-hash")

Pure Python, no torch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvsl.eval.datasets import Choice, Example, normalize_number

EXPLICIT = frozenset({"hashes", "boxed", "answer-is", "answer-is-text", "label", "text"})


@dataclass(frozen=True)
class Extracted:
    """An extracted answer (None: no number found) and the rule that produced it."""

    answer: str | None
    how: str

    @property
    def forced(self) -> bool:
        return self.how.startswith("forced") or self.how == "none"


# --- numbers -----------------------------------------------------------------------------

# A number with optional sign and currency; thousands groups only in groups of three.
_NUMBER = (
    r"(?<![\w.])"  # not the tail of a word or a decimal ("3-4": see `_number_of`)
    r"(?P<sign>[-−–]\s?)?"
    r"[$€£]?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?![\d])"
)
_NUMBER_RE = re.compile(_NUMBER)
_HASHES_RE = re.compile(r"####\s*" + _NUMBER)
_BOXED_RE = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*" + _NUMBER)
_ANSWER_IS_RE = re.compile(
    r"(?:answer|result|total)\s*(?:is|=|:|would be|will be|should be)?\s*[:=]?\s*"
    r"(?:\*\*|approximately |about |\$\s?)*"
    + _NUMBER
    # "the total is 5 + 3 = 8": a number that starts a calculation is not the answer
    + r"(?!\s*[-+*/×x÷]\s*\d)",
    re.IGNORECASE,
)


def _number_of(match: re.Match[str], text: str) -> str:
    sign = match.group("sign")
    negative = bool(sign)
    if negative:
        # "3-4" or "3 - 4": the dash is a minus sign only when no operand precedes it.
        before = text[: match.start()].rstrip()
        if before and (before[-1].isdigit() or before[-1] in ")]"):
            negative = False
    value = normalize_number(match.group("num"))
    return "-" + value if negative and value != "0" else value


def extract_number(text: str) -> Extracted:
    """The final numeric answer of a GSM8K-style response.

    >>> extract_number("So she makes 9 * 2 = $18 every day. The answer is $1,234.50.")
    Extracted(answer='1234.5', how='answer-is')
    >>> extract_number("16 - 3 - 4 = 9 eggs").answer
    '9'
    >>> extract_number("no digits here")
    Extracted(answer=None, how='none')
    """
    for how, pattern in (("hashes", _HASHES_RE), ("boxed", _BOXED_RE)):
        found = list(pattern.finditer(text))
        if found:
            return Extracted(_number_of(found[-1], text), how)
    found = list(_ANSWER_IS_RE.finditer(text))
    if found:
        return Extracted(_number_of(found[-1], text), "answer-is")
    numbers = list(_NUMBER_RE.finditer(text))
    if numbers:
        return Extracted(_number_of(numbers[-1], text), "last-number")
    return Extracted(None, "none")


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Numeric equality with a small tolerance (`"18.0"` equals `"18"`).

    >>> numbers_equal("18.00", "18"), numbers_equal("17", "18"), numbers_equal(None, "1")
    (True, False, False)
    """
    if predicted is None:
        return False
    try:
        a, b = float(normalize_number(predicted)), float(normalize_number(gold))
    except ValueError:
        return normalize_number(predicted) == normalize_number(gold)
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


# --- multiple choice ---------------------------------------------------------------------

_ANSWER_LEAD = (
    r"(?:(?:final|correct|best|right)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would be|will be|should be|must be))?"
    r"|\bI\s+(?:would\s+)?(?:choose|pick|select|go with)"
    r"|\b(?:is|it's)\s+option"
)


def _label_alternatives(labels: Sequence[str]) -> str:
    return "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))


def _answer_is_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    # The label must stand alone: "(B)", "B.", "B:", "**B**", "B)" — not the "A" of "A dog".
    pattern = re.compile(
        rf"(?:{_ANSWER_LEAD})(?:\*\*)?\s*(?:[:=\-]|\bis\b)?(?:\s|\*\*|\"|')*"
        rf"(?:\(\s*(?P<p>{alts})\s*\)|\[(?P<b>{alts})\]|(?P<l>{alts})(?=\s*(?:$|[).:,;!*\"'\]\n]|\s+(?:is\b|because\b|since\b|as\b|-|–|—)|\s*:)))",
        re.IGNORECASE,
    )
    found = None
    for match in pattern.finditer(text):
        label = match.group("p") or match.group("b") or match.group("l")
        # A lowercase bare letter ("the answer is a ...") is an article, not a label.
        if match.group("l") and match.group("l") not in labels:
            continue
        found = _canonical_label(label, labels)
    return found


def _canonical_label(label: str, labels: Sequence[str]) -> str | None:
    for candidate in labels:
        if candidate.lower() == label.lower():
            return candidate
    return None


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _answer_is_text(text: str, choices: Sequence[Choice]) -> str | None:
    tails = [
        m.end()
        for m in re.finditer(rf"(?:{_ANSWER_LEAD})\s*(?:[:=\-]|\bis\b)?", text, re.IGNORECASE)
    ]
    if not tails:
        return None
    tail = _normalise(text[tails[-1] : tails[-1] + 200])
    best: tuple[int, str] | None = None
    for choice in choices:
        wanted = _normalise(choice.text)
        starts = any(f"{tail} ".startswith(f"{a}{wanted} ") for a in ("", "the ", "a ", "an "))
        if wanted and starts and (best is None or len(wanted) > best[0]):
            best = (len(wanted), choice.label)
    return best[1] if best else None


def _stated_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    stripped = text.strip().strip("*").strip()
    alone = re.fullmatch(rf"\(?\s*({alts})\s*\)?\s*[.:)]?", stripped)
    if alone and alone.group(1) in labels:
        return alone.group(1)
    lead = re.match(rf"\**\(?({alts})\)?\**\s*(?:[:.)]|$|\n)", stripped)
    if lead and lead.group(1) in labels:
        # "A: x\nB: y\nC: z": an echoed choices block is not an answer.
        starts = {m.group(1) for m in re.finditer(rf"(?m)^\s*\(?({alts})\s*[:.)]", text)} & set(
            labels
        )
        if len(starts) <= 1:
            return lead.group(1)
    in_parens = {m.group(1) for m in re.finditer(rf"\(({alts})\)", text)} & set(labels)
    if len(in_parens) == 1:
        return next(iter(in_parens))
    return None


def _mentioned_text(text: str, choices: Sequence[Choice]) -> str | None:
    norm = f" {_normalise(text)} "
    positions: dict[str, tuple[int, str]] = {}
    for choice in choices:
        wanted = _normalise(choice.text)
        if not wanted:
            continue
        at = norm.rfind(f" {wanted} ")
        if at >= 0:
            positions[choice.label] = (at, wanted)
    # Drop a match that is part of a longer matched choice ("oil" inside "palms with oil").
    kept = {
        label: (at, wanted)
        for label, (at, wanted) in positions.items()
        if not any(
            other != label and wanted != w2 and f" {wanted} " in f" {w2} "
            for other, (_, w2) in positions.items()
        )
    }
    if not kept:
        return None
    return max(kept.items(), key=lambda item: item[1][0])[0]


def _overlap_choice(text: str, choices: Sequence[Choice]) -> str | None:
    words = set(_normalise(text).split())
    best: tuple[float, str] | None = None
    tie = False
    for choice in choices:
        choice_words = set(_normalise(choice.text).split())
        if not choice_words:
            continue
        score = len(words & choice_words) / len(choice_words)
        if best is None or score > best[0]:
            best, tie = (score, choice.label), False
        elif score == best[0]:
            tie = True
    if best is None or best[0] == 0 or tie:
        return None
    return best[1]


def _hash_choice(text: str, labels: Sequence[str]) -> str:
    digest = hashlib.sha256(("\x00".join([text, *labels])).encode("utf-8")).digest()
    return labels[int.from_bytes(digest[:8], "big") % len(labels)]


def strip_echoed_choices(text: str, choices: Sequence[Choice]) -> str:
    """The response without an echoed choices block (two or more `X: <choice text>` lines).

    Small models often repeat the whole `A: ... B: ...` list; those lines mention every
    choice and would make the last one look chosen. A single such line is an answer and
    is kept.

    >>> cs = [Choice("A", "fog"), Choice("B", "rain")]
    >>> strip_echoed_choices("A: fog\\nB: rain\\nFog forms at night.", cs)
    'Fog forms at night.'
    """
    by_label = {c.label: _normalise(c.text) for c in choices}
    lines = text.split("\n")
    echoed = []
    for i, line in enumerate(lines):
        match = re.match(r"\s*\(?([A-Za-z0-9]{1,3})\)?\s*[:.)]\s*(.*)$", line)
        if (
            match
            and match.group(1) in by_label
            and _normalise(match.group(2)) == by_label[match.group(1)]
        ):
            echoed.append(i)
    if len(echoed) < 2:
        return text
    drop = set(echoed)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()


ForcedChoice = Callable[[], str | None]


def extract_choice(
    text: str,
    choices: Sequence[Choice],
    *,
    forced: ForcedChoice | None = None,
) -> Extracted:
    """The chosen label of a multiple-choice response; always one of `choices`' labels.

    `forced` is called only when no rule finds a stated answer; it returns a label (or
    None to fall through to word overlap).

    >>> cs = [Choice("A", "dry palms"), Choice("B", "wet palms")]
    >>> extract_choice("Rubbing dry skin ... The answer is (A).", cs)
    Extracted(answer='A', how='answer-is')
    >>> extract_choice("I think wet palms get hotter.", cs)
    Extracted(answer='B', how='text')
    """
    labels = [c.label for c in choices]
    if not labels:
        raise ValueError("extract_choice needs at least one choice")
    text = strip_echoed_choices(text, choices)
    steps: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("answer-is", lambda: _answer_is_label(text, labels)),
        ("answer-is-text", lambda: _answer_is_text(text, choices)),
        ("label", lambda: _stated_label(text, labels)),
        ("text", lambda: _mentioned_text(text, choices)),
    )
    for how, rule in steps:
        label = rule()
        if label is not None:
            return Extracted(label, how)
    if forced is not None:
        label = forced()
        if label is not None and label in labels:
            return Extracted(label, "forced-model")
    label = _overlap_choice(text, choices)
    if label is not None:
        return Extracted(label, "forced-overlap")
    return Extracted(_hash_choice(text, labels), "forced-hash")


def extract_answer(
    example: Example, response: str, *, forced: ForcedChoice | None = None
) -> Extracted:
    """Dispatch on the example: a label for multiple choice, a number otherwise."""
    if example.is_multiple_choice:
        return extract_choice(response, example.choices, forced=forced)
    if _is_number(example.answer):
        return extract_number(response)
    return extract_text(response)


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", text) is not None


def extract_text(text: str) -> Extracted:
    """A short free-text answer: what follows the last "answer is", else the whole text.

    >>> extract_text("Clouds scatter light. The answer is: blue.").answer
    'blue'
    """
    found = list(
        re.finditer(rf"(?:{_ANSWER_LEAD})\s*(?:[:=\-]|\bis\b)?\s*([^\n]+)", text, re.IGNORECASE)
    )
    if found:
        return Extracted(found[-1].group(1).strip().strip("*.\"' "), "answer-is")
    stripped = text.strip()
    return Extracted(stripped or None, "text" if stripped else "none")


def is_correct(example: Example, extracted: Extracted) -> bool:
    """Whether an extracted answer matches the example's gold answer.

    Multiple-choice labels compare exactly; numbers compare numerically; other plain
    answers compare case- and space-insensitively.
    """
    if extracted.answer is None:
        return False
    if example.is_multiple_choice:
        return extracted.answer == example.answer
    if _is_number(example.answer):
        return numbers_equal(extracted.answer, example.answer)
    # Free text: the gold answer must appear as whole words ("Yes, it is" matches "yes").
    gold = _normalise(example.answer)
    return bool(gold) and f" {gold} " in f" {_normalise(extracted.answer)} "
