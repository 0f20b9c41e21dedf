"""Answer extraction on tricky model outputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvsl.eval.answers import (
    extract_answer,
    extract_choice,
    extract_number,
    extract_text,
    is_correct,
    numbers_equal,
)
from kvsl.formats.questions import Choice, Example

# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "how"),
    [
        ("#### 18", "18", "hashes"),
        ("Step 1: 16 - 3 - 4 = 9.\nStep 2: 9 * 2 = 18.\n#### 18", "18", "hashes"),
        ("The answer is 1,234.50", "1234.5", "answer-is"),
        ("The answer is $1,234.", "1234", "answer-is"),
        ("The answer is 72.", "72", "answer-is"),
        ("So the final answer is: **42**", "42", "answer-is"),
        ("Answer: -7", "-7", "answer-is"),
        ("The answer is −12 degrees.", "-12", "answer-is"),
        ("The answer is 0.5 liters.", "0.5", "answer-is"),
        ("The answer is 3.0", "3", "answer-is"),
        ("the answer is approximately 4.25 hours", "4.25", "answer-is"),
        ("The total is 1,000,000 dollars.", "1000000", "answer-is"),
        (r"Thus \boxed{250} apples.", "250", "boxed"),
        (r"$\boxed{\text{ 3,500 }}$", "3500", "boxed"),
        ("She makes 9 * 2 = $18 every day.", "18", "last-number"),
        ("16-3-4=9", "9", "last-number"),
        ("It costs $5 per hour, so 40 hours cost $200.", "200", "last-number"),
        ("He ends with 50%.", "50", "last-number"),
        ("The difference is 3-4 hours", "4", "last-number"),  # a range, not minus four
        ("The answer is 20 apples, not 15.", "20", "answer-is"),
        ("Result = 64", "64", "answer-is"),
        ("The total is 5 + 3 = 8 apples.", "8", "last-number"),
        ("The answer is 4 x 3 = 12. The answer is 12.", "12", "answer-is"),
        ("Option C is correct, so the answer is 7", "7", "answer-is"),
        ("Version 2.0.1 has 5 bugs", "5", "last-number"),
        ("Temperature fell to -4.", "-4", "last-number"),
        ("It is 12,5 maybe", "5", "last-number"),  # not a thousands group: "5" is the last number
    ],
)
def test_extract_number(text: str, expected: str, how: str) -> None:
    got = extract_number(text)
    assert (got.answer, got.how) == (expected, how)


def test_extract_number_none() -> None:
    got = extract_number("I don't know.")
    assert got.answer is None and got.how == "none" and got.forced


def test_numbers_equal() -> None:
    assert numbers_equal("18.0", "18")
    assert numbers_equal("1234.50", "1234.5")
    assert not numbers_equal("18.5", "18")
    assert not numbers_equal(None, "18")
    assert numbers_equal("-4", "-4") and not numbers_equal("4", "-4")


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_any_integer_round_trips(value: int) -> None:
    text = f"The answer is {value:,}."
    assert extract_number(text).answer == str(value)


@given(st.decimals(min_value=-10000, max_value=10000, places=2, allow_nan=False))
def test_any_decimal_is_found(value) -> None:
    got = extract_number(f"so it comes to ${value} in the end")
    assert numbers_equal(got.answer, str(value))


# --- multiple choice ----------------------------------------------------------------------

ARC = (
    Choice("A", "dry palms"),
    Choice("B", "wet palms"),
    Choice("C", "palms covered with oil"),
    Choice("D", "palms covered with lotion"),
)


@pytest.mark.parametrize(
    ("text", "expected", "how"),
    [
        ("The answer is B", "B", "answer-is"),
        ("The answer is B.", "B", "answer-is"),
        ("The answer is (C).", "C", "answer-is"),
        ("The correct answer is: D", "D", "answer-is"),
        ("Answer: A", "A", "answer-is"),
        ("answer: (b)", "B", "answer-is"),
        ("**Answer:** **C**", "C", "answer-is"),
        ("Final answer: [D]", "D", "answer-is"),
        ("The best option is C because oil is slippery.", "C", "answer-is"),
        ("I would choose B.", "B", "answer-is"),
        ("Option C is correct.", "C", "answer-is"),
        ("The correct answer is C: palms covered with oil.", "C", "answer-is"),
        ("The answer is 'D'", "D", "answer-is"),
        ("C. palms covered with oil", "C", "label"),
        ("A seems wrong. The answer is D: palms covered with lotion.", "D", "answer-is"),
        ("The answer is A, dry palms.", "A", "answer-is"),
        # Two statements: the last one is the final answer.
        ("At first the answer is A. Wait, re-checking, the answer is C.", "C", "answer-is"),
        # "a" is an article here, so the text rule decides.
        ("The answer is a wet palms situation", "B", "answer-is-text"),
        ("The answer is dry palms.", "A", "answer-is-text"),
        ("The answer is palms covered with oil", "C", "answer-is-text"),
        ("B", "B", "label"),
        ("(C)", "C", "label"),
        ("D.", "D", "label"),
        ("**A**", "A", "label"),
        ("B: wet palms", "B", "label"),
        ("C) because oil", "C", "label"),
        ("Rubbing with oil (C) would make them slippery", "C", "label"),
        ("Wet palms cool down as water evaporates.", "B", "text"),
        # "oil" would match inside "palms covered with oil", but only the longer text counts.
        ("palms covered with oil heat up", "C", "text"),
        ("Dry palms have more friction than wet palms.", "B", "text"),  # the last mentioned
    ],
)
def test_extract_choice(text: str, expected: str, how: str) -> None:
    got = extract_choice(text, ARC)
    assert (got.answer, got.how) == (expected, how)


def test_echoed_choice_block_is_not_a_stated_label() -> None:
    echoed = "A: dry palms\nB: wet palms\nC: palms covered with oil\nD: palms covered with lotion"
    got = extract_choice(echoed, ARC)
    assert got.how.startswith("forced")
    # The echo does not make the last choice look chosen; what follows it still counts.
    got = extract_choice("\n\n" + echoed + "\nWet palms feel cooler.", ARC)
    assert (got.answer, got.how) == ("B", "text")
    got = extract_choice(echoed + "\nThe answer is C.", ARC)
    assert (got.answer, got.how) == ("C", "answer-is")
    # One such line is an answer, not an echo.
    assert extract_choice("A: dry palms.", ARC).answer == "A"


def test_labels_outside_the_choices_are_ignored() -> None:
    three = ARC[:3]
    got = extract_choice("The answer is D.", three)
    assert got.answer in {"A", "B", "C"} and got.how != "answer-is"


def test_five_choices() -> None:
    choices = tuple(
        Choice(label, text)
        for label, text in zip("ABCDE", ["coal", "oil", "gas", "wind", "uranium"], strict=True)
    )
    assert extract_choice("The answer is E", choices).answer == "E"
    assert extract_choice("Wind is renewable.", choices).answer == "D"


def test_forced_model_choice_used_only_when_nothing_is_stated() -> None:
    calls: list[int] = []

    def forced() -> str:
        calls.append(1)
        return "D"

    assert extract_choice("The answer is B", ARC, forced=forced).answer == "B"
    assert calls == []
    got = extract_choice("I am not sure at all.", ARC, forced=forced)
    assert (got.answer, got.how) == ("D", "forced-model") and got.forced
    # A scorer that answers outside the labels falls through to overlap/hash.
    got = extract_choice("I am not sure at all.", ARC, forced=lambda: "Z")
    assert got.answer in {"A", "B", "C", "D"} and got.how.startswith("forced")


def test_forced_overlap_and_hash() -> None:
    got = extract_choice("Lotion is creamy.", ARC)
    assert (got.answer, got.how) == ("D", "forced-overlap")
    nothing = extract_choice("Hmm.", ARC)
    assert nothing.how == "forced-hash" and nothing.answer in {"A", "B", "C", "D"}
    # Deterministic, and spread over the labels rather than always "A".
    assert extract_choice("Hmm.", ARC) == nothing
    picks = {extract_choice(f"no idea {i}", ARC).answer for i in range(40)}
    assert picks == {"A", "B", "C", "D"}


def test_extract_choice_needs_choices() -> None:
    with pytest.raises(ValueError):
        extract_choice("A", [])


# --- dispatch and correctness -------------------------------------------------------------


def _example(answer: str, choices: tuple[Choice, ...] = ()) -> Example:
    return Example("x", "q", answer, choices, "q", "plain")


def test_dispatch_and_is_correct() -> None:
    mc = _example("B", ARC)
    assert is_correct(mc, extract_answer(mc, "The answer is B."))
    assert not is_correct(mc, extract_answer(mc, "The answer is A."))
    num = _example("1234")
    assert is_correct(num, extract_answer(num, "The answer is $1,234.00"))
    assert not is_correct(num, extract_answer(num, "I give up"))
    text = _example("yes")
    assert is_correct(text, extract_answer(text, "Ice is cold. The answer is: Yes."))
    assert not is_correct(text, extract_answer(text, "The answer is yesterday"))


def test_extract_text() -> None:
    assert extract_text("The answer is: blue.").answer == "blue"
    assert extract_text("blue").answer == "blue"
    assert extract_text("  ").answer is None
