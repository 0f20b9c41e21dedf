"""Reading numeric answers (the GSM8K kind); see `kvsl.base.answers` for the whole picture.

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
"""

from __future__ import annotations

import re
from fractions import Fraction

from kvsl.base.extracted import Extracted, plain_words

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
