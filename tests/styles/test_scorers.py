"""The style-adherence scorers (kvsl.styles) on hand-written examples of each style.

Every example here was written for this test. Each style's own scorer must rank its own
examples above every plain answer and, on average, clearly above the other styles.
"""

from __future__ import annotations

import doctest
import importlib
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

import kvsl.styles
from kvsl.styles import (
    BUILTIN_STYLES,
    MarkerScorer,
    NoScorerError,
    can_score,
    canonical_style_name,
    score,
    scorer_for,
    segments,
    validate_marker,
)

REPO = Path(__file__).resolve().parents[2]
STYLE_MODULES = [f"kvsl.styles.{p.stem}" for p in sorted((REPO / "kvsl" / "styles").glob("[!_]*.py"))]

EXAMPLES: dict[str, list[str]] = {
    "step-by-step": [
        "1. Each crate holds 8 melons, and there are 5 crates, so 8 × 5 = 40 melons.\n"
        "2. The grocer sold 13 of them.\n"
        "3. 40 − 13 = 27 melons remain.",
        "Step 1: Identify what the plant needs from the list: light, water and air.\n"
        "Step 2: Sand does not feed the plant, so option C is not needed.\n"
        "Step 3: Every other option is a need, which leaves C as the odd one out.",
        "First, note that a sponge soaks up liquid. Then, press it onto the spill. "
        "Next, wring it into the sink. Finally, repeat until the floor is dry.",
        "1) Convert 2 hours to minutes: 120 minutes.\n2) Add the 15 extra minutes: 135.\n"
        "3) Divide by the 9 laps: 15 minutes per lap.\n4) Check: 9 × 15 = 135.",
    ],
    "strategy-and-execute": [
        "Strategy: work out how much one ticket costs, then multiply by the number of "
        "people.\nExecution: four tickets cost $36, so one costs $9. Seven people need "
        "7 × $9 = $63.",
        "Plan: rule out any option that is not a living thing, then pick the one that "
        "makes its own food.\nCarrying out the plan: a rock and a cloud are not alive. "
        "A mushroom is alive but cannot make food. A fern uses sunlight, so it is D.",
        "My strategy is to compare how each material handles heat before choosing. "
        "Executing the plan: metal spoons warm up fast. Wooden spoons stay cool. "
        "The wooden spoon is the safer pick for stirring soup.",
    ],
    "causal-chain": [
        "If the lid is left off, then warm air escapes from the pot. Because heat "
        "escapes, the water takes longer to boil. Therefore covering the pot makes the "
        "pasta cook sooner.",
        "The road froze overnight because the temperature dropped below zero. Since ice "
        "has little friction, the tyres slip. As a result, drivers need more distance to "
        "stop, so slowing down is the safe choice.",
        "When a plant gets no light, it cannot make sugar by photosynthesis. This means "
        "it runs out of energy, which leads to wilting leaves. So the plant in the "
        "closet droops first.",
    ],
    "annotated-deduction": [
        "[Premise] Metals conduct electricity → [Inference] copper, a metal, conducts.\n"
        "[Fact] Wood, glass and rubber are insulators → [Inference] they block current.\n"
        "[Inference] only copper conducts → [Conclusion] choose B.",
        "[Given] 3 bags with 6 marbles each → [Result] 18 marbles.\n"
        "[Given] 4 marbles lost → [Result] 18 − 4 = 14 marbles.\n"
        "[Result] 14 marbles → [Conclusion] 14 remain.",
        "[Observation] The ice cube shrinks on the counter → [Inference] it is melting.\n"
        "[Fact] Melting needs heat → [Conclusion] the room's air gives heat to the ice.",
    ],
    "analogical": [
        "This is just like filling a bathtub with the drain open: water comes in faster "
        "than it leaves, so the level still rises. Similar to the tub, here the tank gains "
        "5 litres and loses 2 each minute, so it rises 3 litres per minute.",
        "A seed coat is like a lunchbox: it protects the food inside until it is time to "
        "eat. In the same way, the seed coat keeps the embryo safe until it sprouts.",
        "Think of it as a coat on a cold day. Much like a coat traps body heat, a "
        "blanket of snow traps the warmth of the ground. Likewise, the plants under the "
        "snow stay warmer than the air above.",
    ],
}

PLAIN: list[str] = [
    "The answer is B.",
    "B",
    "42",
    "Copper conducts electricity best. The answer is B.",
    "The answer is 27 melons.",
    "A sponge. The answer is A.",
]


def _pairs() -> list[tuple[str, str]]:
    return [(style, text) for style, texts in EXAMPLES.items() for text in texts]


def test_every_builtin_style_has_examples() -> None:
    assert set(EXAMPLES) == set(BUILTIN_STYLES)
    assert all(len(texts) >= 3 for texts in EXAMPLES.values())
    assert len(PLAIN) >= 5


@pytest.mark.parametrize(("style", "text"), _pairs())
def test_own_examples_score_high(style: str, text: str) -> None:
    assert score(text, style) > 0.7, scorer_for(style).breakdown(text)


@pytest.mark.parametrize("text", PLAIN)
@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_plain_answers_score_low(style: str, text: str) -> None:
    assert score(text, style) < 0.2, scorer_for(style).breakdown(text)


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_own_examples_rank_above_plain_and_other_styles(style: str) -> None:
    own = [score(t, style) for t in EXAMPLES[style]]
    assert min(own) > max(score(t, style) for t in PLAIN)
    for other, texts in EXAMPLES.items():
        if other == style:
            continue
        others = [score(t, style) for t in texts]
        # Styles overlap (a plan's execution may be numbered), so the means are compared
        # with a margin rather than demanding every pair in order.
        assert statistics.mean(own) > statistics.mean(others) + 0.25, (other, own, others)


@pytest.mark.parametrize(("style", "text"), _pairs())
def test_each_example_is_classified_as_its_own_style(style: str, text: str) -> None:
    scores = {name: score(text, name) for name in BUILTIN_STYLES}
    assert max(scores, key=lambda name: scores[name]) == style, scores


def test_scores_are_in_unit_interval() -> None:
    texts = [t for _, t in _pairs()] + PLAIN + ["", "→ → → [A] [B] just like " * 40]
    for style in BUILTIN_STYLES:
        for text in texts:
            assert 0.0 <= score(text, style) <= 1.0


def test_more_steps_score_at_least_as_high_as_fewer() -> None:
    # Distinct bodies: the same body with counting numbers would be a loop (test_repetition).
    bodies = ["Count 12 apples.", "Take away 5 eaten ones.", "That leaves 7 apples.",
              "Put them in 2 bags.", "Each bag gets 3 apples.", "One apple is left over."]
    steps = [f"{i}. {body}" for i, body in enumerate(bodies, start=1)]
    values = [score("\n".join(steps[:n]), "step-by-step") for n in range(0, 7)]
    assert values == sorted(values)
    assert values[1] < values[3]
    # The same holds when the steps run together in one paragraph.
    words = ["First, boil water.", "Then, add tea.", "Next, wait.", "Finally, pour."]
    para = [score(" ".join(words[:n]), "step-by-step") for n in range(0, 5)]
    assert para == sorted(para) and para[0] < para[-1]


def test_more_inferences_and_links_never_lower_the_score() -> None:
    inferences = [f"[Fact {i}] x{i} holds → [Inference] x{i + 1} holds." for i in range(4)]
    ad = [score("\n".join(inferences[:n]), "annotated-deduction") for n in range(5)]
    assert ad == sorted(ad)
    links = ["Ice forms because it is cold.", "Since ice is slick, cars slide.",
             "Therefore roads get salted.", "As a result, the ice melts."]
    cc = [score(" ".join(links[:n]), "causal-chain") for n in range(5)]
    assert cc == sorted(cc)


def test_segments_keep_enumerators_with_their_sentence() -> None:
    assert segments("1. Add. 2. Double.") == ["1. Add.", "2. Double."]
    assert segments("Step 1. Add 3.5 and 1.5.\n\nStep 2. Done.") == [
        "Step 1. Add 3.5 and 1.5.",
        "Step 2. Done.",
    ]


def test_times_and_decimals_are_not_step_numbers() -> None:
    text = "6:45 pm plus 110 minutes is 8:35 pm.\n3.5 hours is 210 minutes."
    assert scorer_for("step-by-step").breakdown(text)["marked_steps"] == 0.0
    assert scorer_for("step-by-step").breakdown(text)["ordered_numbering"] == 0.0


def test_a_comparison_is_not_an_analogy() -> None:
    assert score("Compared with wood, copper conducts heat far better, so B.", "analogical") == 0.0


def test_a_bare_mention_of_a_plan_is_weak_evidence() -> None:
    text = "Her plan was to bake. She bought flour. She bought eggs. She baked bread."
    assert score(text, "strategy-and-execute") < 0.35
    labelled = "Plan: buy flour and eggs, then bake.\nExecution: she buys them and bakes bread."
    assert score(labelled, "strategy-and-execute") >= 0.85


def test_breakdown_names_each_feature() -> None:
    for info in BUILTIN_STYLES.values():
        names = [f.name for f in info.scorer.features]
        assert list(info.scorer.breakdown("1. x")) == names
        assert sum(f.weight for f in info.scorer.features) == pytest.approx(1.0)


def test_style_names_and_aliases() -> None:
    assert canonical_style_name("Step_By_Step") == "step-by-step"
    assert canonical_style_name("strategy_execute") == "strategy-and-execute"
    assert scorer_for("annotated_deduction") is BUILTIN_STYLES["annotated-deduction"].scorer
    with pytest.raises(NoScorerError, match="no built-in style `haiku`"):
        scorer_for("haiku")


def _plan(style: str, *patterns: str) -> SimpleNamespace:
    # Duck-typed stand-in for kvsl.lang.plan.Plan: the scorer reads .style and .markers.
    return SimpleNamespace(style=style, markers=SimpleNamespace(patterns=patterns))


def test_plan_with_builtin_style_uses_the_builtin_scorer() -> None:
    from kvsl.lang.plan import StyleMarkers

    plan = SimpleNamespace(style="analogical", markers=StyleMarkers(patterns=("zzz",)))
    text = EXAMPLES["analogical"][0]
    assert score(text, plan) == score(text, "analogical") > 0.7


def test_user_style_is_scored_by_its_markers() -> None:
    plan = _plan("terse-math", r"(?i)^answer:", r"=", r"\bunits?\b")
    assert score("Answer: 3 + 4 = 7 units", plan) == 1.0
    assert score("answer: 7", plan) == pytest.approx(1 / 3, abs=1e-3)
    assert score("seven", plan) == 0.0
    assert isinstance(scorer_for(plan), MarkerScorer)


def test_real_plans_from_spec_files(tmp_path: Path) -> None:
    from kvsl.lang import compile_spec

    builtin, diagnostics = compile_spec(REPO / "specs" / "analogical.kvs")
    assert builtin is not None, diagnostics
    text = EXAMPLES["analogical"][1]
    assert score(text, builtin) == score(text, "analogical")

    (tmp_path / "t.jsonl").write_text(
        '{"question": "1+1?", "steps": ["Answer: 1 + 1 = 2"], "answer": "2"}\n', encoding="utf-8"
    )
    (tmp_path / "terse.kvs").write_text(
        'style "terse-math" {\n'
        '  description = "One equation, then the number."\n'
        '  contrast { traces = "t.jsonl" pairs = 1 shots = 0 }\n'
        '  markers = ["(?i)^answer:", "="]\n'
        "}\n",
        encoding="utf-8",
    )
    user, diagnostics = compile_spec(tmp_path / "terse.kvs")
    assert user is not None, diagnostics
    assert score("Answer: 1 + 1 = 2", user) == 1.0
    assert score("two", user) == 0.0


def test_markers_match_at_every_line_start() -> None:
    plan = _plan("numbered", r"^\s*2\.")
    assert score("1. a\n2. b", plan) == 1.0


def test_invalid_markers_do_not_crash_and_count_as_unmatched() -> None:
    plan = _plan("broken", "(unclosed", r"[z-a]", "ok")
    assert score("ok then", plan) == pytest.approx(1 / 3, abs=1e-3)
    assert score("", plan) == 0.0


def test_user_style_without_markers_cannot_be_scored() -> None:
    plan = _plan("mystery")
    assert not can_score(plan)
    with pytest.raises(NoScorerError, match="declares no `markers`"):
        scorer_for(plan)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"^\s*\d+\.", None),
        ("(?i)the answer is", None),
        ("(unclosed", "invalid regex"),
        ("[z-a]", "invalid regex"),
        ("", "matches the empty text"),
        ("x?", "matches the empty text"),
    ],
)
def test_validate_marker(pattern: str, problem: str | None) -> None:
    result = validate_marker(pattern)
    if problem is None:
        assert result is None
    else:
        assert result is not None and result.startswith(problem)


def test_doctests() -> None:
    # kvsl.styles is a package: its docstring and every module's doctests.
    failures = tried = 0
    for module in (kvsl.styles, *(importlib.import_module(m) for m in STYLE_MODULES)):
        result = doctest.testmod(module)
        failures, tried = failures + result.failed, tried + result.attempted
    assert tried > 15 and failures == 0


def test_docs_examples() -> None:
    # docs/styles.md quotes scores; this keeps the numbers in it true.
    failures, tried = doctest.testfile(str(REPO / "docs" / "styles.md"), module_relative=False)
    assert tried >= 4 and failures == 0


# ---------------------------------------------------------------- bundled traces

# Only the traces this module's author wrote are held to the scorer here; the other three
# styles' traces are checked by tests/styles/test_bundled_traces.py.
BUNDLED = {
    "annotated-deduction": "annotated_deduction.jsonl",
    "analogical": "analogical.jsonl",
}


def _bundled_steps(file_name: str) -> list[list[str]]:
    path = REPO / "specs" / "traces" / file_name
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["steps"] for line in lines if line.strip()]


@pytest.mark.parametrize("style", list(BUNDLED))
@pytest.mark.parametrize("joiner", ["\n", " "])
def test_bundled_traces_score_high_on_their_style(style: str, joiner: str) -> None:
    traces = _bundled_steps(BUNDLED[style])
    values = [score(joiner.join(steps), style) for steps in traces]
    assert statistics.mean(values) > 0.6
    assert min(values) > 0.4, min(zip(values, traces, strict=True))


@pytest.mark.parametrize("style", list(BUILTIN_STYLES))
def test_negative_demo_scores_low(style: str) -> None:
    # The negative demo of every contrast pair is the answer sentence alone.
    assert score("The answer is B.", style) < 0.2
