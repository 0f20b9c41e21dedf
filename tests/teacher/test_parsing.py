"""Parsing teacher replies and comparing answers (no server)."""

from __future__ import annotations

import pytest

from kvsl.formats.questions import Choice
from kvsl.teacher.parsing import answers_agree, parse_number, parse_reply
from kvsl.teacher.pricing import Usage, describe_cost, estimate_cost, price_for

CHOICES = (Choice("A", "wet palms"), Choice("B", "dry palms"), Choice("C", "cold hands"))


def test_steps_and_answer_are_extracted_in_order() -> None:
    reply = (
        "Sure! Here is the solution.\n"
        "<step>  1. There are 3 rows.\n   Each has 8 books. </step>\n"
        '<STEP n="2">2. 3 × 8 = 24.</STEP>\n'
        "<step></step>\n"
        "<answer> 24 </answer>"
    )
    parsed = parse_reply(reply)
    assert parsed.steps == ("1. There are 3 rows.\nEach has 8 books.", "2. 3 × 8 = 24.")
    assert parsed.answer == "24"


def test_think_blocks_are_ignored() -> None:
    parsed = parse_reply("<think><step>draft</step><answer>9</answer></think><step>real</step><answer>7</answer>")
    assert parsed.steps == ("real",)
    assert parsed.answer == "7"


def test_no_tags_gives_no_steps() -> None:
    assert parse_reply("The answer is 4 because 2 + 2 = 4.").steps == ()


def test_missing_answer_tag_falls_back_to_closing_sentence_only_after_the_steps() -> None:
    assert parse_reply("<step>2 + 2 = 4.</step>\nThe answer is 4.").answer == "4"
    # A step that merely mentions "the answer is" is not taken for the final answer.
    assert parse_reply("<step>The answer is not 3, so keep going.</step>").answer is None


@pytest.mark.parametrize("got", ["B", "b", "(B)", "(b)", "B: dry palms", "B) dry palms", "B.",
                                 "**B**", "The answer is B", "Option B", "dry palms", "Dry Palms."])
def test_multiple_choice_answers_agree_whatever_the_decoration(got: str) -> None:
    assert answers_agree(got, "B", CHOICES)


@pytest.mark.parametrize("got", ["A", "(c)", "C: cold hands", "wet palms", "Both", "", "B or C"])
def test_multiple_choice_wrong_answers_disagree(got: str) -> None:
    assert not answers_agree(got, "B", CHOICES)


@pytest.mark.parametrize(("got", "expected"), [("1,234", "1234"), ("$18", "18"), ("18.0", "18"),
                                               ("18 dollars", "18"), ("-3", "-3"), ("0.5", ".5")])
def test_numbers_compare_numerically(got: str, expected: str) -> None:
    assert answers_agree(got, expected)


@pytest.mark.parametrize(("got", "expected"), [("17", "18"), ("eighteen", "18"), ("1.8", "18")])
def test_different_numbers_disagree(got: str, expected: str) -> None:
    assert not answers_agree(got, expected)


def test_free_text_answers_compare_without_case_or_punctuation() -> None:
    assert answers_agree("Paris.", "paris")
    assert not answers_agree("Lyon", "paris")


def test_parse_number_takes_the_last_number() -> None:
    assert str(parse_number("3 + 15 = 18")) == "18"


def test_prices_match_dated_snapshots_and_longest_names() -> None:
    assert price_for("gpt-4o-mini-2024-07-18")[0] == "gpt-4o-mini"  # type: ignore[index]
    assert price_for("gpt-4o-2024-08-06")[0] == "gpt-4o"  # type: ignore[index]
    assert price_for("qwen2.5:7b") is None
    usage = Usage(prompt_tokens=2_000_000, completion_tokens=1_000_000, requests=3)
    assert estimate_cost("gpt-4o-mini", usage) == pytest.approx(2 * 0.15 + 0.60)
    assert "unknown" in describe_cost("qwen2.5:7b", usage)
    assert "$0.9000" in describe_cost("gpt-4o-mini", usage)


def test_redactor_scrubs_keys_and_url_credentials_but_not_placeholders() -> None:
    from kvsl.teacher.client import Endpoint, Redactor, display_url

    endpoint = Endpoint("http://bob:pa55word-long@127.0.0.1:8000/v1", "sk-abcdefgh12345", "the spec")
    redact = Redactor.for_endpoint(endpoint)
    assert redact.scrub("key sk-abcdefgh12345 and pa55word-long") == "key [redacted] and [redacted]"
    assert "sk-abc" not in repr(endpoint) and "pa55" not in repr(endpoint)
    assert display_url(endpoint.base_url) == "http://[redacted]@127.0.0.1:8000/v1"
    placeholder = Redactor.for_endpoint(Endpoint("http://127.0.0.1:8000/v1", "unused", "the spec"))
    assert placeholder.scrub("the unused tiles") == "the unused tiles"
