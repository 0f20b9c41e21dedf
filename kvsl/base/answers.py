"""Reading final answers: numbers, multiple-choice labels and short free text.

The one implementation of answer reading in kvsl. The eval scores model responses with it
(`kvsl.eval.answers` re-exports it with `Example`-based wrappers) and the teacher keeps a
trace only if its `<answer>` reads as the known answer here (`answers_agree`, re-exported
by `kvsl.teacher.parsing`), so a kept trace is one the eval would score as correct.
Pure Python: no torch, nothing else from kvsl.

Every extractor is a cascade from the most explicit statement of an answer to the least,
and reports *how* it decided (`Extracted.how`), so a report can say how many answers were
stated and how many were guessed.

Numbers (`extract_number`)
    1. `#### N`                                  ("how": "hashes")
    2. `\\boxed{N}`                               ("boxed")
    3. the last "answer is N" / "Answer: N" / "total = N" that does not start a
       calculation ("the total is 5 + 3 = 8" is not 5)       ("answer-is")
    4. the last number anywhere                  ("last-number")

    What counts as a number (one rule for responses, gold answers and teacher answers):

    - thousands separators only in groups of three: `1,234,567`; `12,5` is two numbers
      (12 and 5), never 125 or 12.5;
    - decimals `1234.50`, `.5`; currency `$ € £` before the digits, units and `%` after
      them are ignored (`$1,234.50` → 1234.5, `18 dollars` → 18, `50%` → 50); a trailing
      period ends the sentence (`72.` → 72);
    - a sign `-`, `−` (U+2212) or `–` is a minus only when no operand comes right before it:
      `-3`, `− 3`, `-$5` are negative, `3-4` and `16 - 3` are subtractions (→ 4, 3);
    - a fraction `a/b` (plain decimals, no spaces) is its value: `3/4` → 0.75,
      `-3/4` → -0.75, `1.5/3` → 0.5; a mixed number `1 1/2` → 1.5; `3/4/2020` (a date)
      is not a fraction; a zero denominator reads as the numerator;
    - not numbers: words (`eighteen`), exponents (`1e6` reads as 1), version strings
      (`2.0.1` reads as 2: digits glued to a `.` or `/` after them are not a new number).

    Values are exact fractions, compared exactly (`18.00` equals `18`, `1000001` does not
    equal `1000000`), and written canonically (`canonical_number`): `"1234.5"`, `"-3"`,
    `"0.75"`, or `"1/3"` when the decimal does not terminate.

Multiple choice (`extract_choice`), restricted to the example's labels; labels match
case-insensitively and are returned as the example spells them
    1. "answer is B", "Answer: (B)", "correct option is B", "I choose B", ... (last one wins)
       — a lowercase bare letter counts only when punctuation or the end follows it:
       "the answer is b." is B, "the answer is a wet palms ..." is an article   ("answer-is")
    2. "the answer is <choice text>"             ("answer-is-text")
    3. a label stated alone: the response is "B", "b", "(B)", "[B]", "B.", "`B`", "**B**",
       or starts with "B:", "b)", "B.", "B -" (not "a - b": arithmetic); or exactly one
       distinct label in parentheses (an echoed `A: ... B: ...` block is not an answer)
                                                 ("label")
    4. choice text: the choices whose text occurs in the response; if several, the one
       mentioned last (texts contained in a longer matched text are dropped)  ("text")
    5. forced choice: a caller-supplied scorer (`forced`, e.g. the model's logits for
       each label after the response + "The answer is", see kvsl.eval.methods), else the
       choice whose words best overlap the response      ("forced-model" / "forced-overlap")
    6. nothing overlaps: a label picked by a hash of the response — uniform over labels,
       so unparseable responses score at chance instead of favouring "A"  ("forced-hash")

    Digits are labels only where the choices' labels are digits: with labels A–D, "2" is
    not choice B (ARC's numeric labels are relabelled to letters by the loader).

Free text (`extract_text`): what follows the last "answer is", else the whole text;
correct when the gold answer occurs in it as whole words, ignoring case and punctuation
(`plain_words`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
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


# --- numbers -----------------------------------------------------------------------------

_DECIMAL = r"\d+(?:\.\d+)?"
_NUMBER = (
    # Not the tail of a word, a decimal or a fraction: "2.0.1" is 2, "3/4/2020" is 3.
    r"(?<![\w./])"
    r"(?P<sign>[-−–]\s?)?"
    r"[$€£]?\s?"
    r"(?:"
    # A fraction, optionally after a whole number ("1 1/2"); not a date ("3/4/2020").
    rf"(?:(?P<whole>\d+) )?(?P<over>{_DECIMAL})/(?P<under>{_DECIMAL})(?![\d/]|[.,]\d)"
    # Thousands groups only in threes: "12,5" is two numbers, not 125.
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r")"
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


def _value_of(match: re.Match[str], text: str) -> Fraction:
    over = match.group("over")
    if over is not None:
        numerator, denominator = Fraction(over), Fraction(match.group("under"))
        value = numerator / denominator if denominator else numerator
        whole = match.group("whole")
        if whole is not None and 0 <= value < 1:
            value += int(whole)
        # "2 18/2" is two numbers, 2 and 18/2: the whole part only counts before a proper
        # fraction.
    else:
        value = Fraction(match.group("num").replace(",", ""))
    if match.group("sign"):
        # "3-4" or "3 - 4": the dash is a minus sign only when no operand precedes it.
        before = text[: match.start()].rstrip()
        if not (before and (before[-1].isdigit() or before[-1] in ")]")):
            value = -value
    return value


def canonical_number(value: Fraction) -> str:
    """A number as kvsl writes it: no sign for zero, no trailing zeros, `p/q` if it must.

    >>> canonical_number(Fraction("1234.50")), canonical_number(Fraction(-3, 4))
    ('1234.5', '-0.75')
    >>> canonical_number(Fraction(1, 3))
    '1/3'
    """
    numerator, denominator = value.numerator, value.denominator
    rest, twos, fives = denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{numerator}/{denominator}"
    places = max(twos, fives)
    # Exact: denominator divides 10**places, and the fraction is in lowest terms, so the
    # last decimal digit is never 0.
    digits = str(abs(numerator) * 10**places // denominator).rjust(places + 1, "0")
    sign = "-" if numerator < 0 else ""
    if not places:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def number_value(text: str) -> Fraction | None:
    """The value of `text` if the whole of it is one number, else None.

    >>> number_value("$1,234.50"), number_value("−3"), number_value("3/4")
    (Fraction(2469, 2), Fraction(-3, 1), Fraction(3, 4))
    >>> number_value("18 apples") is None, number_value("12,5") is None
    (True, True)
    """
    cleaned = text.strip().removeprefix("+").rstrip(".").removesuffix("%").strip()
    match = _NUMBER_RE.fullmatch(cleaned)
    return _value_of(match, cleaned) if match else None


def is_number(text: str) -> bool:
    """Whether a gold answer is a number, so responses are read and compared as numbers.

    >>> is_number("1,234"), is_number("-0.5"), is_number("yes"), is_number("1,8")
    (True, True, False, False)
    """
    return number_value(text) is not None


def _canonical_of(match: re.Match[str], text: str) -> str:
    return canonical_number(_value_of(match, text))


def extract_number(text: str) -> Extracted:
    """The final numeric answer of a GSM8K-style response, canonical (`"1234.5"`).

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
            return Extracted(_canonical_of(found[-1], text), how)
    found = list(_ANSWER_IS_RE.finditer(text))
    if found:
        return Extracted(_canonical_of(found[-1], text), "answer-is")
    numbers = list(_NUMBER_RE.finditer(text))
    if numbers:
        return Extracted(_canonical_of(numbers[-1], text), "last-number")
    return Extracted(None, "none")


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Exact numeric equality of two number strings (`"18.0"` equals `"$18"`).

    Exact, not within a tolerance: GSM8K answers are exact, and a relative tolerance
    would call `1000001` equal to `1000000`. Strings that are not numbers are equal only
    when their plain words are.

    >>> numbers_equal("18.00", "18"), numbers_equal("17", "18"), numbers_equal(None, "1")
    (True, False, False)
    >>> numbers_equal("0.75", "3/4")
    True
    """
    if predicted is None:
        return False
    a, b = number_value(predicted), number_value(gold)
    if a is not None and b is not None:
        return a == b
    # Not both numbers (a caller's own gold string): equal only as the same plain words.
    return a is None and b is None and plain_words(predicted) == plain_words(gold) != ""


# --- multiple choice ---------------------------------------------------------------------

_ANSWER_LEAD = (
    r"(?:(?:final|correct|best|right)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would be|will be|should be|must be))?"
    r"|\bI\s+(?:would\s+)?(?:choose|pick|select|go with)"
    r"|\b(?:is|it's)\s+option"
)
# What may follow a bare label after an answer lead: the label ends there.
_LABEL_END = r"(?=\s*(?:$|[).:,;!*\"'\]\n]|\s+(?:is\b|because\b|since\b|as\b|-|–|—)|\s*:))"
# ... and what may follow a lowercase one, which could otherwise be an article ("a wet").
_LOWERCASE_LABEL_END = re.compile(r"[ \t]*(?:$|\n|[).:,;!*\"'\]])")


def canonical_label(label: str, labels: Sequence[str]) -> str | None:
    """The label as the choices spell it, matched case-insensitively; None if none.

    >>> canonical_label(" b ", ["A", "B"]), canonical_label("2", ["A", "B"])
    ('B', None)
    """
    wanted = label.strip().casefold()
    for candidate in labels:
        if candidate.casefold() == wanted:
            return candidate
    return None


def _label_alternatives(labels: Sequence[str]) -> str:
    return "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))


def _answer_is_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    # The label must stand alone: "(B)", "B.", "B:", "**B**", "B)" — not the "A" of "A dog".
    pattern = re.compile(
        rf"(?:{_ANSWER_LEAD})(?:\*\*)?\s*(?:[:=\-]|\bis\b)?(?:\s|\*\*|\"|')*"
        rf"(?:\(\s*(?P<p>{alts})\s*\)|\[(?P<b>{alts})\]|(?P<l>{alts}){_LABEL_END})",
        re.IGNORECASE,
    )
    found = None
    for match in pattern.finditer(text):
        label = match.group("p") or match.group("b") or match.group("l")
        bare = match.group("l")
        # A lowercase bare letter followed by a word ("the answer is a wet ...") is an
        # article, not a label; followed by punctuation or the end it is a label.
        if bare and bare not in labels and not _LOWERCASE_LABEL_END.match(text, match.end("l")):
            continue
        found = canonical_label(label, labels)
    return found


def named_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a short answer names, by the label rules alone (1 and 3 above).

    >>> named_label("(b) dry palms", ["A", "B"]), named_label("I choose A.", ["A", "B"])
    ('B', 'A')
    >>> named_label("C", ["A", "B"]) is None
    True
    """
    return _answer_is_label(text, labels) or _stated_label(text, labels)


def _answer_is_text(text: str, choices: Sequence[LabelledChoice]) -> str | None:
    tails = [
        m.end()
        for m in re.finditer(rf"(?:{_ANSWER_LEAD})\s*(?:[:=\-]|\bis\b)?", text, re.IGNORECASE)
    ]
    if not tails:
        return None
    tail = plain_words(text[tails[-1] : tails[-1] + 200])
    best: tuple[int, str] | None = None
    for choice in choices:
        wanted = plain_words(choice.text)
        starts = any(f"{tail} ".startswith(f"{a}{wanted} ") for a in ("", "the ", "a ", "an "))
        if wanted and starts and (best is None or len(wanted) > best[0]):
            best = (len(wanted), choice.label)
    return best[1] if best else None


def _labels_in(pattern: str, text: str, labels: Sequence[str]) -> set[str]:
    found = (canonical_label(m.group(1), labels) for m in re.finditer(pattern, text, re.I))
    return {label for label in found if label is not None}


def _stated_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    # Markdown and quotes around a whole answer: "**B**", "`B`", "'B'", "_B_".
    stripped = text.strip().strip("*_`\"'").strip()
    alone = re.fullmatch(rf"[(\[]?\s*({alts})\s*[)\]]?\s*[.:)]?", stripped, re.IGNORECASE)
    if alone:
        return canonical_label(alone.group(1), labels)
    lead = re.match(
        rf"\**[(\[]?({alts})[)\]]?\**\s*(?:[:.)]|(?P<dash>\s[-–—]\s)|$|\n)",
        stripped,
        re.IGNORECASE,
    )
    # "a - b" is arithmetic: a dash after a label counts only when the case matches ("B - x").
    if lead and lead.group("dash") and lead.group(1) not in labels:
        lead = None
    # "A: x\nB: y\nC: z": an echoed choices block is not an answer.
    if lead and len(_labels_in(rf"(?m)^\s*\(?({alts})\s*[:.)]", text, labels)) <= 1:
        return canonical_label(lead.group(1), labels)
    in_parens = _labels_in(rf"\(({alts})\)", text, labels)
    if len(in_parens) == 1:
        return next(iter(in_parens))
    return None


def _mentioned_labels(text: str, choices: Sequence[LabelledChoice]) -> list[str]:
    """The labels whose choice text the response mentions, in order of last mention."""
    norm = f" {plain_words(text)} "
    positions: dict[str, tuple[int, str]] = {}
    for choice in choices:
        wanted = plain_words(choice.text)
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
    return [label for label, _ in sorted(kept.items(), key=lambda item: item[1][0])]


def _overlap_choice(text: str, choices: Sequence[LabelledChoice]) -> str | None:
    words = set(plain_words(text).split())
    best: tuple[float, str] | None = None
    tie = False
    for choice in choices:
        choice_words = set(plain_words(choice.text).split())
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


def strip_echoed_choices(text: str, choices: Sequence[LabelledChoice]) -> str:
    """The response without an echoed choices block (two or more `X: <choice text>` lines).

    Small models often repeat the whole `A: ... B: ...` list; those lines mention every
    choice and would make the last one look chosen. A single such line is an answer and
    is kept.

    >>> from kvsl.formats.questions import Choice
    >>> cs = [Choice("A", "fog"), Choice("B", "rain")]
    >>> strip_echoed_choices("A: fog\\nB: rain\\nFog forms at night.", cs)
    'Fog forms at night.'
    """
    by_label = {c.label: plain_words(c.text) for c in choices}
    lines = text.split("\n")
    echoed = []
    for i, line in enumerate(lines):
        match = re.match(r"\s*\(?([A-Za-z0-9]{1,3})\)?\s*[:.)]\s*(.*)$", line)
        if (
            match
            and match.group(1) in by_label
            and plain_words(match.group(2)) == by_label[match.group(1)]
        ):
            echoed.append(i)
    if len(echoed) < 2:
        return text
    drop = set(echoed)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()


ForcedChoice = Callable[[], str | None]


def extract_choice(
    text: str,
    choices: Sequence[LabelledChoice],
    *,
    forced: ForcedChoice | None = None,
) -> Extracted:
    """The chosen label of a multiple-choice response; always one of `choices`' labels.

    `forced` is called only when no rule finds a stated answer; it returns a label (or
    None to fall through to word overlap).

    >>> from kvsl.formats.questions import Choice
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

    def mentioned() -> str | None:
        found = _mentioned_labels(text, choices)
        return found[-1] if found else None

    steps: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("answer-is", lambda: _answer_is_label(text, labels)),
        ("answer-is-text", lambda: _answer_is_text(text, choices)),
        ("label", lambda: _stated_label(text, labels)),
        ("text", mentioned),
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


# --- free text and dispatch --------------------------------------------------------------


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
        and len(_mentioned_labels(strip_echoed_choices(got, choices), choices)) > 1
    ):
        return False
    return matches_gold(extracted, expected, choices)
