"""Looping output is not adherent; bracket labels with a colon are labels (kvsl.styles).

A small steered model often loops ("Strategy:" forty times; "1. 1 clip = 100 clips",
"2. 1 clip = 100 clips", ...). Before the repetition rule each line of such a loop carried
a marker, so `"Strategy:\\n" * 40` scored 0.86 on strategy-and-execute and a numbered loop
1.0 on step-by-step. The rule (module docstring of kvsl.styles): repeated segments are cut
before the features are measured, and the score is multiplied by the share of words that
repeat nothing. Texts that repeat nothing, every bundled trace among them, score as before.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsl.styles import (
    BUILTIN_STYLES,
    MarkerScorer,
    novelty,
    repetition,
    score,
    scorer_for,
)

REPO = Path(__file__).resolve().parents[2]
TRACE_FILES = {
    "step-by-step": "step_by_step.jsonl",
    "strategy-and-execute": "strategy_execute.jsonl",
    "causal-chain": "causal_chain.jsonl",
    "annotated-deduction": "annotated_deduction.jsonl",
    "analogical": "analogical.jsonl",
}

# A score below this is "not adherent": the bar plain answers are held to in test_scorers.
LOW = 0.2


def _traces(style: str) -> list[list[str]]:
    path = REPO / "specs" / "traces" / TRACE_FILES[style]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["steps"] for line in lines if line.strip()]


def _first_trace(style: str) -> list[str]:
    return _traces(style)[0]


# --- looping output scores low, for every style ------------------------------------------

# Loops seen in (or shaped like) the embedded model's steered output, one list per style.
# Each would have scored high before the rule: the old scores are in the comments.
HAND_LOOPS: dict[str, list[str]] = {
    "step-by-step": [
        "\n".join(f"{i}. 1 clip = 100 clips" for i in range(1, 12)),  # was 1.0
        "\n".join(f"Step {i}: add the apples." for i in range(1, 15)),  # was 1.0
        "First, add. Then, add. Then, add. Then, add. Then, add. Then, add. Then, add.",  # was 1.0
    ],
    "strategy-and-execute": [
        "Strategy:\n" * 40,  # was 0.86
        "Strategy:\n\n" * 40,  # was 0.86
        "Strategy:\n" + "\n".join(f"{i}. Ask them to record the sun." for i in range(1, 10)),  # 1.0
    ],
    "causal-chain": [
        "Because it is cold, the water freezes, so the road is icy. " * 12,  # was 1.0
        "If it rains, then the ground is wet.\n" * 15,  # was 0.75
        "so " * 60,  # was 0.5
    ],
    "annotated-deduction": [
        "[M] [B] " + "[S] [L] [T] " * 30,  # was 0.3 (seen verbatim, one line)
        "[D: tornado] → [Conclusion] D\n" * 20,  # was 0.5 (the label was not seen)
        "\n".join(f"[Premise {i}] metals conduct → [Inference] copper conducts" for i in range(9)),
    ],
    "analogical": [
        "This is just like a jar of marbles. " * 20,  # was 1.0
        "Just like a seesaw, here the heavier side goes down.\n" * 10,  # was 1.0
        "just like a jar " * 30,  # was 1.0 (a loop inside one sentence)
    ],
}


def _hand_loop_cases() -> list[tuple[str, str]]:
    return [(style, text) for style, texts in HAND_LOOPS.items() for text in texts]


def test_every_style_has_loops() -> None:
    assert set(HAND_LOOPS) == set(BUILTIN_STYLES)


@pytest.mark.parametrize(("style", "text"), _hand_loop_cases())
def test_hand_written_loops_score_low(style: str, text: str) -> None:
    assert score(text, style) < LOW, (scorer_for(style).breakdown(text), novelty(text))


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
@pytest.mark.parametrize("times", [10, 40])
def test_one_well_formed_line_repeated_scores_low(style: str, times: int) -> None:
    """Each step of the first bundled trace, on its own line, repeated `times` times."""
    for step in _first_trace(style):
        assert score("\n".join([step] * times), style) < LOW, step
        assert score(" ".join([step] * times), style) < LOW, step


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_a_body_repeated_under_counting_step_numbers_scores_low(style: str) -> None:
    """A body under counting numbers ("Step 1: x", "Step 2: x"): the number makes it look new."""
    body = _first_trace(style)[-1]
    for number in ("{}.", "{})", "Step {}:", "({})"):
        text = "\n".join(f"{number.format(i)} {body}" for i in range(1, 13))
        assert score(text, style) < LOW, text[:80]


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_a_whole_trace_repeated_keeps_only_its_share(style: str) -> None:
    """A good trace said six times is one sixth new: it keeps at most a sixth of its score."""
    for steps in _traces(style)[:10]:
        once = "\n".join(steps)
        looped = "\n".join([once] * 6)
        assert score(looped, style) <= score(once, style) / 6 + 1e-3
        assert score(looped, style) < LOW


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_case_and_spacing_do_not_make_a_loop_look_new(style: str) -> None:
    step = _first_trace(style)[0]
    variants = [step, step.upper(), step.lower(), "  " + step.replace(" ", "   ") + "  "]
    text = "\n".join(variants * 5)
    assert score(text, style) < LOW


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_more_repeats_never_raise_the_score(style: str) -> None:
    steps = _first_trace(style)
    values = [score("\n".join(steps + [steps[-1]] * k), style) for k in range(0, 12)]
    assert values == sorted(values, reverse=True), values
    assert values[-1] < values[0]


def test_a_good_start_then_a_loop_keeps_part_of_its_score() -> None:
    """No cliff: the new part still counts, in proportion to its share of the text."""
    steps = _first_trace("step-by-step")
    good = "\n".join(steps)
    looped = good + "\n" + "\n".join([steps[-1]] * len(steps))
    assert 0.3 < score(looped, "step-by-step") < score(good, "step-by-step")


def test_user_marker_styles_follow_the_same_rule() -> None:
    scorer = MarkerScorer((r"(?i)^answer:", "="), style="terse-math")
    assert scorer("Answer: 3 + 4 = 7") == 1.0
    assert scorer("Answer: 3 + 4 = 7\n" * 30) < LOW


# --- genuine output is untouched ----------------------------------------------------------


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
@pytest.mark.parametrize("joiner", ["\n", " "])
def test_bundled_traces_repeat_nothing_and_still_score_high(style: str, joiner: str) -> None:
    texts = [joiner.join(steps) for steps in _traces(style)]
    assert [novelty(t) for t in texts] == [1.0] * len(texts)
    assert all(repetition(t).distinct == t for t in texts)
    values = [score(t, style) for t in texts]
    # The bundled sets score 1.0, 1.0, 0.87, 1.0 and 0.99 on their own scorers.
    assert statistics.mean(values) > 0.85, style
    assert min(values) > 0.7, min(zip(values, texts, strict=True))


def test_hand_written_examples_repeat_nothing() -> None:
    from test_scorers import EXAMPLES

    for texts in EXAMPLES.values():
        for text in texts:
            assert novelty(text) == 1.0, text


@pytest.mark.parametrize(
    "text",
    [
        # A chain restates its last conclusion once: a phrase repeated once is not a loop.
        "Heat melts the ice. The ice melts, so the water rises. The water rises, so it spills.",
        "[Inference] 30 − 13 = 17 rolls are not sold\n"
        "[Inference] 17 rolls are not sold → [Conclusion] 17 rolls are left",
        "2 × 2 × 2 = 8, and 8 × 8 = 64.",
        # Same body, different numbers, twice: a calculation, not a loop (three times is).
        "1. Add 2 and 3.\n2. Add 3 and 4.\n3. Then double it.",
    ],
)
def test_a_phrase_said_twice_is_not_a_loop(text: str) -> None:
    assert novelty(text) == 1.0


def test_a_text_without_repetition_scores_its_weighted_features() -> None:
    text = "Strategy: find the total.\nExecution: 7 × 24 = 168. Then 168 − 150 = 18."
    scorer = BUILTIN_STYLES["strategy-and-execute"].scorer
    parts = scorer.breakdown(text)
    weighted = sum(f.weight * parts[f.name] for f in scorer.features)
    assert score(text, "strategy-and-execute") == pytest.approx(weighted, abs=1e-4)


# --- repetition() itself ------------------------------------------------------------------


def test_repeated_segments_are_cut_and_counted() -> None:
    r = repetition("Step 1: add two.\nStep 2: add two.\nStep 3: stop here.")
    assert r.distinct.split("\n") == ["Step 1: add two.", "", "Step 3: stop here."]
    assert (r.words, r.repeated_words, r.novelty) == (6, 2, pytest.approx(2 / 3, abs=1e-4))


def test_sentences_repeated_inside_a_paragraph_are_cut() -> None:
    r = repetition("Ice is cold. So it melts. Ice is cold. Done.")
    assert "Ice is cold" not in r.distinct.split("So it melts.")[1]
    assert r.distinct.count("Ice is cold.") == 1


def test_label_numbers_are_set_aside_but_body_numbers_are_not() -> None:
    assert novelty("[Premise 1] a holds\n[Premise 2] a holds") == 0.5
    assert novelty("[Premise] 1 apple\n[Premise] 2 apples") == 1.0


def test_a_loop_that_only_changes_its_numbers_is_a_loop() -> None:
    # The README's steered loop, counting up: same words, new numbers on every line.
    sheep = "\n".join(f"{i}. {i + 16} sheep = {i + 16} sheep * 1 sheep per sheep" for i in range(1, 13))
    pages = " ".join(f"Step {i}: {2 ** i} pages times 2 makes {2 ** (i + 1)} pages." for i in range(1, 9))
    for loop in (sheep, pages):
        assert novelty(loop) < 0.15
        assert score(loop, "step-by-step") < 0.1
    # Arithmetic whose words differ, or bare arithmetic, is content, not a loop.
    steps = "1. 4 × 18 = 72 muffins.\n2. 3 × 12 = 36 muffins.\n3. 72 + 36 = 108 muffins in all."
    assert novelty(steps) == 1.0 and score(steps, "step-by-step") == 1.0
    assert novelty("12 + 5 = 17\n17 + 5 = 22\n22 + 5 = 27") == 1.0
    assert novelty("1. Add 2 and 3.\n2. Add 3 and 4.\n3. Add 4 and 5.") == pytest.approx(1 / 3, abs=1e-3)


def test_a_run_inside_one_line_counts_from_its_third_copy() -> None:
    assert novelty("a b c a b c") == 1.0
    assert novelty("a b c a b c a b c") == pytest.approx(3 / 9, abs=1e-4)
    assert novelty("go " * 100) == pytest.approx(0.01, abs=1e-4)


def test_empty_and_marker_only_texts() -> None:
    assert novelty("") == 0.0
    assert novelty("1.\n2.\n3.") == 0.0  # enumerators alone say nothing
    assert repetition(".\n.\n.").distinct.strip() == "."
    for style in BUILTIN_STYLES:
        assert score("", style) == 0.0
        assert score("1.\n2.\n3.\n4.", style) == 0.0
        assert score(".\n" * 6, style) == 0.0


TEXT = st.lists(
    st.sampled_from([*"ab1 .:[]→\n", "Step ", "so ", "just like ", "[D: x]", "If "]),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.integers(min_value=2, max_value=6))
def test_a_text_said_k_times_is_at_most_one_kth_new(text: str, k: int) -> None:
    looped = "\n".join([text] * k)
    assert 0.0 <= novelty(looped) <= 1 / k + 1e-4
    for style in BUILTIN_STYLES:
        assert 0.0 <= score(looped, style) <= 1 / k + 1e-4


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_novelty_is_a_share(text: str) -> None:
    r = repetition(text)
    assert 0.0 <= r.novelty <= 1.0
    assert 0 <= r.repeated_words <= r.words


# --- annotated deduction: bracket labels in the forms models write ------------------------


@pytest.mark.parametrize(
    "label",
    [
        "[D: tornado]",
        "[D:1]",
        "[A: revolving door]",
        "[Fact: metals conduct heat]",
        "[Premise 2]",
        "[Given]",
        "[Dry surface]",
        "[Step 3: multiply]",
        "[Fact (general)]",
    ],
)
def test_bracket_labels_are_recognised(label: str) -> None:
    features = scorer_for("annotated-deduction").breakdown
    assert features(label)["bracket_labels"] == 0.25
    assert features(f"{label} x → {label} y\n{label} y → {label} z")["annotated_steps"] == 1.0


@pytest.mark.parametrize("text", ["[1]", "[0, 1]", "[see here](https://example.org)", "[]"])
def test_brackets_that_are_not_labels(text: str) -> None:
    assert scorer_for("annotated-deduction").breakdown(text)["bracket_labels"] == 0.0


def test_colon_labels_make_a_full_deduction() -> None:
    text = (
        "[Fact: tornadoes form in thunderstorms] a supercell is a thunderstorm "
        "→ [Inference: supercells spawn tornadoes] it can make one\n"
        "[Premise 2] high pressure brings clear skies → [D: tornado] choice D"
    )
    assert score(text, "annotated-deduction") == 1.0
