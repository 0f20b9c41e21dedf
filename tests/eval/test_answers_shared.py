"""One answer reader for the teacher and the eval (`kvsl.base.answers`).

The tables pin what the two former implementations did on tricky inputs — the teacher's
`parse_number` / `answers_agree` (kvsl/teacher/parsing.py) and the eval's
`extract_number` / `extract_choice` / `is_correct` (kvsl/eval/answers.py), as of f376eda —
next to what the merged reader does now. Every row where the result differs from what
both old readers agreed on, or where they disagreed, says why (`why`), and a test checks
that no row changes silently.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvsl.base.answers as answers
from kvsl.base.answers import (
    answers_agree,
    canonical_number,
    extract_choice,
    extract_number,
    is_number,
    named_label,
    number_value,
    numbers_equal,
)
from kvsl.eval import answers as eval_answers
from kvsl.formats.questions import Choice, Example, normalize_number
from kvsl.teacher import parsing as teacher_parsing

# --- numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberRow:
    """`text` read by the old teacher (`parse_number`), the old eval (`extract_number`),
    and now (`extract_number`, which `parse_number` wraps)."""

    text: str
    teacher_was: str | None
    eval_was: str | None
    now: str | None
    why: str = ""


NUMBERS = [
    NumberRow("18", "18", "18", "18"),
    NumberRow("$1,234.50", "1234.50", "1234.5", "1234.5"),
    NumberRow("-3", "-3", "-3", "-3"),
    NumberRow("1,234", "1234", "1234", "1234"),
    NumberRow("1,000,000", "1000000", "1000000", "1000000"),
    NumberRow("18.", "18", "18", "18"),
    NumberRow("Answer: -7.", "-7", "-7", "-7"),
    NumberRow("50%", "50", "50", "50"),
    NumberRow("18 dollars", "18", "18", "18"),
    NumberRow(".5", "0.5", "0.5", "0.5"),
    NumberRow("+5", "5", "5", "5"),
    NumberRow("-$5", "-5", "-5", "-5"),
    NumberRow("$-5", "-5", "-5", "-5"),
    NumberRow("-0", "-0", "0", "0"),
    NumberRow("€5", "5", "5", "5"),
    NumberRow("£7.00", "7.00", "7", "7"),
    NumberRow("USD 5", "5", "5", "5"),
    NumberRow("0.50", "0.50", "0.5", "0.5"),
    NumberRow("007", "7", "7", "7"),
    NumberRow("x = 4.0", "4.0", "4", "4"),
    NumberRow("16-3-4=9", "9", "9", "9"),
    NumberRow("3 - 4", "4", "4", "4"),
    NumberRow("#### 18", "18", "18", "18"),
    NumberRow("eighteen", None, None, None),
    NumberRow("18 (9 × 2)", "2", "2", "2"),  # the last number, as before: no rule says 18
    NumberRow("3:30", "30", "30", "30"),
    NumberRow("10**9+100", "100", "100", "100"),
    # --- the old readers disagreed ---
    NumberRow("−12", "12", "-12", "-12", why="U+2212 is a minus sign (the eval's rule)"),
    NumberRow("–5", "5", "-5", "-5", why="an en dash with no operand before it is a minus"),
    NumberRow("- 5", "5", "-5", "-5", why="a minus may be followed by a space"),
    NumberRow("3-4", "-4", "4", "4", why="a dash after an operand is a subtraction or a range"),
    NumberRow("12,5", "125", "5", "5", why="commas group thousands only in threes"),
    NumberRow(
        "1,23,456", "123456", "23456", "23456",
        why="lakh grouping is not read (rare in English; a list like 10,20,300 would be misread)",
    ),
    NumberRow("1e6", "6", "1", "1", why="no exponents: the mantissa is the number"),
    NumberRow("Version 2.0.1", "0.1", "2", "2", why="digits glued after a `.` are not a new number"),
    NumberRow(r"\boxed{250} (9 x 2)", "2", "250", "250", why="the teacher uses the eval's cascade"),
    NumberRow("The answer is 18, not 20", "20", "18", "18", why="the teacher uses the cascade"),
    # --- both read it wrongly, now fixed ---
    NumberRow("3/4", "4", "4", "0.75", why="a fraction is its value"),
    NumberRow("The answer is 3/4", "4", "4", "0.75", why="a fraction is its value"),
    NumberRow("-3/4", "4", "4", "-0.75", why="a signed fraction is its value"),
    NumberRow("1.5/3", "3", "3", "0.5", why="a fraction of decimals is its value"),
    NumberRow("1 1/2", "2", "2", "1.5", why="a mixed number is its value"),
    NumberRow("1/3 of a pie", "3", "3", "1/3", why="a fraction without a finite decimal stays p/q"),
    NumberRow("18/2=9", "9", "9", "9"),
    NumberRow("3/0", "0", "0", "3", why="a zero denominator reads as the numerator"),
    NumberRow("3/4/2020", "2020", "2020", "3", why="a date is not a fraction; its tail is not a number"),
]


def _same_value(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return number_value(a) == number_value(b)


@pytest.mark.parametrize("row", NUMBERS, ids=lambda r: r.text)
def test_numbers_are_read_as_pinned(row: NumberRow) -> None:
    assert extract_number(row.text).answer == row.now
    got = teacher_parsing.parse_number(row.text)
    expected = number_value(row.now) if row.now is not None else None
    if expected is None:
        assert got is None
    else:
        assert got == Decimal(expected.numerator) / Decimal(expected.denominator)


@pytest.mark.parametrize("row", NUMBERS, ids=lambda r: r.text)
def test_every_number_change_is_explained(row: NumberRow) -> None:
    unchanged = _same_value(row.teacher_was, row.eval_was) and _same_value(row.eval_was, row.now)
    assert unchanged or row.why, "a row whose reading changed must say why"


@dataclass(frozen=True)
class AgreeRow:
    """Whether `got` is the gold answer `gold` (no choices): the old teacher's
    `answers_agree`, the old eval's `is_correct(extract_answer(...))`, and now."""

    got: str
    gold: str
    teacher_was: bool
    eval_was: bool
    now: bool
    why: str = ""


AGREEMENT = [
    AgreeRow("1,234", "1234", True, True, True),
    AgreeRow("$18", "18", True, True, True),
    AgreeRow("18.0", "18", True, True, True),
    AgreeRow("18 dollars", "18", True, True, True),
    AgreeRow("-3", "-3", True, True, True),
    AgreeRow("0.5", ".5", True, True, True),
    AgreeRow("50%", "50", True, True, True),
    AgreeRow("$1,234.50", "1234.5", True, True, True),
    AgreeRow("18", "$18", True, True, True),
    AgreeRow("1.8", "18", False, False, False),
    AgreeRow("eighteen", "18", False, False, False),
    AgreeRow("Paris.", "paris", True, True, True),
    AgreeRow("The answer is Paris", "paris", True, True, True),
    AgreeRow("café", "Café", True, True, True),
    AgreeRow("Lyon", "paris", False, False, False),
    AgreeRow("−3", "-3", False, True, True, why="U+2212 is a minus sign"),
    AgreeRow("3-4", "-4", True, False, False, why="3-4 is a subtraction or a range, read as 4"),
    AgreeRow("3-4", "4", False, True, True, why="3-4 is a subtraction or a range, read as 4"),
    AgreeRow("12,5", "125", True, False, False, why="commas group thousands only in threes"),
    AgreeRow("12,5", "5", False, True, True, why="the last number of `12,5` is 5"),
    AgreeRow("18", "1,8", True, False, False, why="`1,8` is no number, so it is compared as text"),
    AgreeRow("3/4", "0.75", False, False, True, why="a fraction is its value"),
    AgreeRow(
        "1000001", "1000000", False, True, False,
        why="exact comparison: the eval's 1e-6 relative tolerance allowed ±1 at a million",
    ),
    AgreeRow("1000000001", "1000000000", False, True, False, why="exact comparison"),
    AgreeRow("18.0000001", "18", False, True, False, why="exact comparison"),
    AgreeRow(
        "Yes, it is", "yes", False, True, True,
        why="free text: the gold's words occur in the answer (the eval's rule, so a kept "
        "trace is one the eval scores correct)",
    ),
    AgreeRow("not yes", "yes", False, True, True, why="free text by whole words (known lenient)"),
    AgreeRow("yesterday", "yes", False, False, False),
]


@pytest.mark.parametrize("row", AGREEMENT, ids=lambda r: f"{r.got}|{r.gold}")
def test_answers_agree_as_pinned(row: AgreeRow) -> None:
    assert answers_agree(row.got, row.gold) is row.now
    assert teacher_parsing.answers_agree(row.got, row.gold) is row.now
    example = Example("x", "q", row.gold, (), "q", "plain")
    assert eval_answers.is_correct(example, eval_answers.extract_answer(example, row.got)) is row.now


@pytest.mark.parametrize("row", AGREEMENT, ids=lambda r: f"{r.got}|{r.gold}")
def test_every_agreement_change_is_explained(row: AgreeRow) -> None:
    unchanged = row.teacher_was == row.eval_was == row.now
    assert unchanged or row.why, "a row whose result changed must say why"


# --- multiple choice ----------------------------------------------------------------------

CHOICES = (Choice("A", "wet palms"), Choice("B", "dry palms"), Choice("C", "cold hands"))
FORCED = "forced"  # some forced-* rule: the label is a guess


@dataclass(frozen=True)
class ChoiceRow:
    """`got` against gold `B` of CHOICES: the old teacher's `answers_agree`, the old eval's
    `extract_choice` (label, rule), and the same two now."""

    got: str
    teacher_was: bool
    eval_was: tuple[str | None, str]
    teacher_now: bool
    eval_now: tuple[str, str]
    why: str = ""


MULTIPLE_CHOICE = [
    ChoiceRow("B", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("(B)", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("B.", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("B:", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("B: dry palms", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("B) dry palms", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("B. dry palms", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("(B) dry palms", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("**B**", True, ("B", "label"), True, ("B", "label")),
    ChoiceRow("The answer is B", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("The final answer is B.", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("Answer: (b)", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("Option B", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("Option (B)", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("Choice: B", True, ("B", "answer-is"), True, ("B", "answer-is")),
    ChoiceRow("dry palms", True, ("B", "text"), True, ("B", "text")),
    ChoiceRow("Dry Palms.", True, ("B", "text"), True, ("B", "text")),
    ChoiceRow("C: cold hands", False, ("C", "label"), False, ("C", "label")),
    ChoiceRow("wet palms, not dry palms", False, ("B", "text"), False, ("B", "text"),
              why="teacher: several choices mentioned is not a stated answer (eval: last one)"),
    ChoiceRow("dry palms, not wet palms", False, ("A", "text"), False, ("A", "text")),
    ChoiceRow("Both", False, (None, FORCED), False, ("C", FORCED)),
    ChoiceRow("", False, (None, FORCED), False, ("B", FORCED)),
    ChoiceRow("B or C", False, (None, FORCED), False, ("A", FORCED)),
    ChoiceRow("B is correct", False, (None, FORCED), False, ("B", FORCED)),  # not read; hash
    ChoiceRow("A dog", False, (None, FORCED), False, ("B", FORCED)),  # an article
    ChoiceRow("2", False, (None, FORCED), False, ("B", FORCED),
              why="digits are not letter labels by position"),
    ChoiceRow("Answer: 2", False, (None, FORCED), False, ("A", FORCED),
              why="digits are not letter labels by position"),
    # --- the old readers disagreed; the decorated label is read ---
    ChoiceRow("b", True, (None, FORCED), True, ("B", "label"), why="a whole answer `b` is B"),
    ChoiceRow("b.", True, (None, FORCED), True, ("B", "label"), why="a whole answer `b.` is B"),
    ChoiceRow("(b)", True, (None, FORCED), True, ("B", "label"), why="labels in parentheses ignore case"),
    ChoiceRow("(c)", False, (None, FORCED), False, ("C", "label"), why="labels in parentheses ignore case"),
    ChoiceRow("a", False, (None, FORCED), False, ("A", "label"), why="a whole answer `a` is A"),
    ChoiceRow("[B]", False, (None, FORCED), True, ("B", "label"), why="brackets decorate like parentheses"),
    ChoiceRow("`B`", True, (None, FORCED), True, ("B", "label"), why="markdown code around a label"),
    ChoiceRow("'B'", True, (None, FORCED), True, ("B", "label"), why="quotes around a label"),
    ChoiceRow('"B"', True, (None, FORCED), True, ("B", "label"), why="quotes around a label"),
    ChoiceRow("_B_", True, (None, FORCED), True, ("B", "label"), why="markdown emphasis"),
    ChoiceRow("b: dry palms", True, ("B", "text"), True, ("B", "label"), why="`b:` leads like `B:`"),
    ChoiceRow("b) dry palms", True, ("B", "text"), True, ("B", "label"), why="`b)` leads like `B)`"),
    ChoiceRow("B - dry palms", True, ("B", "text"), True, ("B", "label"), why="`B - ` leads like `B:`"),
    ChoiceRow("the answer is b", True, (None, FORCED), True, ("B", "answer-is"),
              why="a lowercase label followed by the end or punctuation is no article"),
    ChoiceRow("the answer is b, because dry palms", False, ("B", "text"), True, ("B", "answer-is"),
              why="a lowercase label followed by punctuation is no article"),
    ChoiceRow("the answer is a good guess", False, (None, FORCED), False, ("B", FORCED)),  # article
    ChoiceRow("b - a", True, (None, FORCED), False, ("B", FORCED),
              why="a lowercase letter before a dash is arithmetic, not a label"),
    ChoiceRow("I choose B", False, ("B", "answer-is"), True, ("B", "answer-is"),
              why="the teacher reads with the eval's answer leads"),
    ChoiceRow("the dry palms", False, ("B", "text"), True, ("B", "text"),
              why="the teacher reads choice text the way the eval does"),
]


@pytest.mark.parametrize("row", MULTIPLE_CHOICE, ids=lambda r: repr(r.got))
def test_choices_are_read_as_pinned(row: ChoiceRow) -> None:
    got = extract_choice(row.got, CHOICES)
    label, how = row.eval_now
    assert got.how.startswith(how) if how == FORCED else got.how == how
    assert got.answer == label
    assert answers_agree(row.got, "B", CHOICES) is row.teacher_now
    assert teacher_parsing.answers_agree(row.got, "b", CHOICES) is row.teacher_now


@pytest.mark.parametrize("row", MULTIPLE_CHOICE, ids=lambda r: repr(r.got))
def test_every_choice_change_is_explained(row: ChoiceRow) -> None:
    old_eval_agrees = row.eval_was[0] == "B" and row.eval_was[1] != FORCED
    unchanged = (
        row.teacher_was == old_eval_agrees == row.teacher_now
        and row.eval_was[1] == row.eval_now[1]
        and (row.eval_was[1] == FORCED or row.eval_was[0] == row.eval_now[0])
    )
    assert unchanged or row.why, "a row whose result changed must say why"


NUMERIC_LABELS = (Choice("1", "wet palms"), Choice("2", "dry palms"), Choice("3", "cold hands"))


@pytest.mark.parametrize(
    ("got", "agrees"),
    [("2", True), ("(2)", True), ("Answer: 2", True), ("2: dry palms", True),
     ("The answer is 2.", True), ("Option 2", True), ("dry palms", True),
     ("B", False), ("12", False), ("1", False)],
)
def test_numeric_labels_are_labels_where_the_choices_use_them(got: str, agrees: bool) -> None:
    # Both old readers agreed on every row here.
    assert answers_agree(got, "2", NUMERIC_LABELS) is agrees


# --- the parts ----------------------------------------------------------------------------


def test_canonical_numbers() -> None:
    assert [canonical_number(Fraction(s)) for s in ("1234.50", "-0", "-0.05", "3/4", "2/3", "10")] == [
        "1234.5", "0", "-0.05", "0.75", "2/3", "10"
    ]


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**12, max_value=10**12))
def test_canonical_numbers_agree_with_the_loaders_gold_answers(value: Decimal) -> None:
    # The loaders write gold answers with `normalize_number`; extraction must write a
    # number the same way, or equal answers would print differently.
    text = f"{value:f}"
    assert canonical_number(Fraction(text)) == normalize_number(text)
    assert number_value(text) == Fraction(text)


@given(st.integers(min_value=-10**12, max_value=10**12), st.sampled_from(["", "$", "€"]))
def test_grouped_integers_with_currency_compare_equal(value: int, currency: str) -> None:
    sign = "-" if value < 0 else ""
    text = f"{sign}{currency}{abs(value):,}"
    assert number_value(text) == value
    assert numbers_equal(text, str(value)) and not numbers_equal(text, str(value + 1))


def test_is_number_decides_how_a_gold_answer_is_read() -> None:
    assert all(is_number(s) for s in ("18", "-3", "$1,234.50", "0.5", ".5", "3/4", "50%", "−2"))
    assert not any(is_number(s) for s in ("yes", "18 apples", "1,8", "3:30", "", "1e6"))


def test_numbers_equal_on_non_numbers_is_plain_word_equality() -> None:
    assert numbers_equal("N/A", "n/a") and not numbers_equal("N/A", "18")
    assert not numbers_equal("", "")


def test_named_label_and_the_teachers_wrapper() -> None:
    assert named_label("I would choose (c).", ["A", "B", "C"]) == "C"
    assert named_label("dry palms", ["A", "B"]) is None
    # The old public name keeps its upper-casing contract, whatever the labels' case.
    assert teacher_parsing.normalize_label("(b) dry", ["a", "b"]) == "B"
    assert teacher_parsing.normalize_label("C", ["A", "B"]) is None


def test_old_names_are_the_shared_implementation() -> None:
    assert eval_answers.extract_number is answers.extract_number
    assert eval_answers.extract_choice is answers.extract_choice
    assert eval_answers.numbers_equal is answers.numbers_equal
    assert teacher_parsing.answers_agree is answers.answers_agree
    assert teacher_parsing.ChoiceLike("A", "x") == Choice("A", "x")


def test_the_reader_imports_no_torch() -> None:
    code = (
        "import sys, kvsl.base.answers, kvsl.eval.answers, kvsl.teacher.parsing\n"
        "print(sorted(m for m in ('torch', 'transformers', 'openai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
