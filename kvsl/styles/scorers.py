"""The five built-in styles' adherence scorers: weighted sums of named surface features.

Each feature is in [0, 1] and saturating; the weights of one style sum to 1. The
features are measured on the distinct part of a text and the sum is scaled by its
novelty (`kvsl.styles.repetition`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from kvsl.styles.repetition import repetition
from kvsl.styles.segmentation import segments


def _saturate(count: float, at: float) -> float:
    """`count / at`, capped at 1: the feature is full once `at` occurrences are seen."""
    return min(count / at, 1.0) if at > 0 else 1.0


@dataclass(frozen=True)
class Feature:
    """One named, weighted measurement of a text, in [0, 1]."""

    name: str
    weight: float
    measure: Callable[[str], float]
    description: str


@dataclass(frozen=True)
class StyleScorer:
    """A weighted sum of features; calling it returns the score in [0, 1].

    >>> s = StyleScorer("demo", (Feature("has_x", 1.0, lambda t: float("x" in t), "an x"),))
    >>> s("an x"), s("a y")
    (1.0, 0.0)
    >>> s.breakdown("an x")
    {'has_x': 1.0}
    """

    style: str
    features: tuple[Feature, ...]

    def breakdown(self, text: str) -> dict[str, float]:
        """Each feature's value (before weighting) on the text's distinct part, by name.

        The score is their weighted sum times `novelty(text)` (see the module docstring).
        """
        distinct = repetition(text).distinct
        return {f.name: round(_clamp(f.measure(distinct)), 4) for f in self.features}

    def __call__(self, text: str) -> float:
        seen = repetition(text)
        total = sum(f.weight for f in self.features) or 1.0
        value = sum(f.weight * _clamp(f.measure(seen.distinct)) for f in self.features) / total
        return round(_clamp(value * seen.novelty), 4)


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, float(x)))


# Each style's documented examples; doctest runs them (see `__test__` at the end).
_EXAMPLES: dict[str, str] = {}


# ---- step-by-step ----------------------------------------------------------------------

_ENUMERATOR = re.compile(
    r"^[\s*#>-]*(?:\(?(?P<num>\d{1,2})[.):](?!\d)|step\s*(?P<step>\d{1,2})\b\s*[:.)\-–]?)",
    re.IGNORECASE,
)
_SEQUENCE_WORD = re.compile(
    r"^[\s*#>-]*(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|fourth|next|then|after that|"
    r"afterwards|finally|lastly|to (?:start|begin))\b",
    re.IGNORECASE,
)


def _marked_steps(text: str) -> float:
    """Segments that open with a step marker ("1.", "Step 2:", "First", "Then", "Finally")."""
    marked = sum(1 for s in segments(text) if _ENUMERATOR.match(s) or _SEQUENCE_WORD.match(s))
    # Concave: the first two markers say the most about the style.
    return (0.0, 0.5, 0.8, 1.0)[min(marked, 3)]


def _ordered_numbering(text: str) -> float:
    """1 when explicit step numbers count up (1, 2, ...); 0.5 for a lone number."""
    numbers: list[int] = []
    for s in segments(text):
        m = _ENUMERATOR.match(s)
        if m:
            numbers.append(int(m.group("num") or m.group("step")))
    if not numbers:
        return 0.0
    if len(numbers) == 1:
        return 0.5
    ascending = sum(1 for a, b in pairwise(numbers) if b == a + 1)
    return 1.0 if ascending >= (len(numbers) - 1) / 2 else 0.5


def _several_steps(text: str) -> float:
    """The reasoning is spread over several lines or sentences (3 is full)."""
    return _saturate(len(segments(text)) - 1, 2)


STEP_BY_STEP = StyleScorer(
    "step-by-step",
    (
        Feature(
            "marked_steps",
            0.6,
            _marked_steps,
            "segments opening with 1. / Step 2: / First / Then / Finally (1: 0.5, 2: 0.8, 3: 1)",
        ),
        Feature(
            "ordered_numbering", 0.2, _ordered_numbering, "explicit step numbers that count up"
        ),
        Feature(
            "several_steps",
            0.2,
            _several_steps,
            "the text is spread over several lines or sentences (3 is full)",
        ),
    ),
)
_EXAMPLES["STEP_BY_STEP"] = """Numbered or ordered steps.

    >>> STEP_BY_STEP("Step 1: 4 boxes of 6 is 24.\\nStep 2: 24 minus 5 is 19.\\nStep 3: So 19 are left.")
    1.0
    >>> STEP_BY_STEP("First, find the total. Then subtract the eaten ones. Finally, share them.")
    0.8
    >>> STEP_BY_STEP("1. 12 apples minus 5 eaten leaves 7.\\n2. 7 times 3 is 21.")
    0.78
    >>> STEP_BY_STEP("The answer is B.")
    0.0
"""


# ---- strategy and execute --------------------------------------------------------------

_STRATEGY_LABEL = re.compile(
    r"^[\s*#>-]*(?:my |the |our )?(?:strategy|plan|approach|game plan)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_STRATEGY_PHRASE = re.compile(
    r"\b(?:(?:my|the|our|a good) (?:strategy|plan|approach) (?:is|will be|here is)|"
    r"(?:let'?s|let me|I will|I'll|we will|we'll) (?:plan|make a plan|first plan)|"
    r"to solve this,? (?:I|we)(?:'ll| will| can)|the plan:)",
    re.IGNORECASE,
)
_STRATEGY_WORD = re.compile(r"\b(?:strategy|plan)\b", re.IGNORECASE)
_EXECUTION_LABEL = re.compile(
    r"^[\s*#>-]*(?:execution|execute|executing|carrying out|carry out|"
    r"applying|apply|working|solution)(?: (?:the|this|my) (?:plan|strategy))?\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_EXECUTION_PHRASE = re.compile(
    r"\b(?:executing|carrying out|following|applying|putting) (?:the|this|my|that) "
    r"(?:plan|strategy|approach)|\b(?:now|next),? (?:I|we) (?:execute|carry out|apply)",
    re.IGNORECASE,
)


def _strategy_position(text: str) -> tuple[float, int] | None:
    """(strength, character offset) of the first strategy statement, if any."""
    for pattern, strength in (
        (_STRATEGY_LABEL, 1.0),
        (_STRATEGY_PHRASE, 0.75),
        (_STRATEGY_WORD, 0.35),
    ):
        m = pattern.search(text)
        if m:
            return strength, m.start()
    return None


def _strategy_statement(text: str) -> float:
    """A strategy announced: "Strategy:" / "Plan:" (1), "my plan is" (0.75), the word (0.35)."""
    found = _strategy_position(text)
    return found[0] if found else 0.0


def _trust(strength: float) -> float:
    # A bare mention of "plan" is weak evidence of a strategy, so what follows it counts
    # only as much as that evidence; a label or an announcing phrase counts in full.
    return 1.0 if strength >= 0.75 else strength


def _execution(text: str) -> float:
    """After the strategy: an execution label or 2+ marked steps (1), a phrase (0.8), or more text."""
    found = _strategy_position(text)
    if found is None:
        return 0.0
    strength, start = found
    rest = text[start:]
    marked = sum(1 for s in segments(rest) if _ENUMERATOR.match(s) or _SEQUENCE_WORD.match(s))
    if _EXECUTION_LABEL.search(rest) or marked >= 2:
        value = 1.0
    elif _EXECUTION_PHRASE.search(rest):
        value = 0.8
    else:
        value = 0.6 * _saturate(len(segments(rest)) - 1, 3)
    return value * _trust(strength)


def _plan_first(text: str) -> float:
    """The strategy comes first (in the first half) and at least two segments follow it."""
    found = _strategy_position(text)
    if found is None or found[1] > len(text) / 2:
        return 0.0
    strength, start = found
    return _saturate(len(segments(text[start:])) - 1, 2) * _trust(strength)


STRATEGY_EXECUTE = StyleScorer(
    "strategy-and-execute",
    (
        Feature(
            "strategy_statement",
            0.45,
            _strategy_statement,
            '"Strategy:" or "Plan:" label (1), "my plan is ..." (0.75), the bare word (0.35)',
        ),
        Feature(
            "execution",
            0.35,
            _execution,
            'after the strategy, an "Execution:" label or 2+ marked steps like "Step 1:" (1), '
            '"carrying out the plan" (0.8), or further sentences (up to 0.6)',
        ),
        Feature(
            "plan_first",
            0.2,
            _plan_first,
            "the strategy opens the text and at least two segments carry it out",
        ),
    ),
)
_EXAMPLES["STRATEGY_EXECUTE"] = """A strategy first, then its execution.

    >>> STRATEGY_EXECUTE("Strategy: find the cost of one, then scale up.\\n"
    ...                  "Execution: one pen costs 2 dollars. Five pens cost 10 dollars.")
    1.0
    >>> STRATEGY_EXECUTE("Copper is a metal, so B.")
    0.0
"""


# ---- causal chain ----------------------------------------------------------------------

_CAUSAL = re.compile(
    r"\b(?:because|since|so|therefore|thus|hence|as a result|consequently|"
    r"which means|this means|that means|means that|leads? to|led to|causes?|caused|"
    r"results? in|due to|in turn|which makes|this makes)\b",
    re.IGNORECASE,
)
_IF_THEN = re.compile(r"\bif\b[^.?!\n]{1,160}?\bthen\b", re.IGNORECASE)
_IF_OR_WHEN = re.compile(r"\b(?:if|when|whenever|once)\b", re.IGNORECASE)


def _causal_links(text: str) -> float:
    """Causal connectives: because, since, so, therefore, leads to, as a result (3 is full)."""
    return _saturate(len(_CAUSAL.findall(text)), 3)


def _conditionals(text: str) -> float:
    """Conditional links: each "if ... then" counts 1, a bare "if"/"when" 0.5 (1 is full)."""
    strong = len(_IF_THEN.findall(text))
    weak = max(len(_IF_OR_WHEN.findall(text)) - strong, 0)
    return _saturate(strong + 0.5 * weak, 1)


def _linked_segments(text: str) -> float:
    """Share of segments after the first that carry a causal or conditional link."""
    parts = segments(text)
    if len(parts) < 2:
        return 0.0
    later = parts[1:]
    linked = sum(1 for s in later if _CAUSAL.search(s) or _IF_OR_WHEN.search(s))
    return linked / len(later)


CAUSAL_CHAIN = StyleScorer(
    "causal-chain",
    (
        Feature(
            "causal_links",
            0.5,
            _causal_links,
            "because / since / so / therefore / leads to / as a result (3 is full)",
        ),
        Feature(
            "conditionals",
            0.25,
            _conditionals,
            'an "if ... then" link (1) or two bare if/when (0.5 each)',
        ),
        Feature(
            "linked_segments",
            0.25,
            _linked_segments,
            "share of sentences after the first that carry a link, so the links chain",
        ),
    ),
)
_EXAMPLES["CAUSAL_CHAIN"] = """Cause-and-effect links chained to the answer.

    >>> CAUSAL_CHAIN("If the pan is metal, then heat flows through it quickly. "
    ...              "Because heat flows quickly, the handle gets hot. "
    ...              "Therefore a wooden handle is safer, since wood conducts heat poorly.")
    1.0
    >>> CAUSAL_CHAIN("The answer is B.")
    0.0
"""


# ---- annotated deduction ---------------------------------------------------------------

_ARROW = r"(?:→|->|=>|⇒|⟹|⟶)"
# A label is a bracket that opens with a letter: "[Fact]", "[Premise 2]", "[D: tornado]",
# "[Fact: ice floats]", "[Dry surface]". Not "[1]" or "[0, 1]" (a citation, an interval), and
# not "[text](url)" (a Markdown link).
_LABEL = r"\[[A-Za-z][^\[\]\n]{0,59}\](?!\()"
_BRACKET_LABEL = re.compile(_LABEL)
_ANNOTATED_STEP = re.compile(rf"{_LABEL}[^\n]*?{_ARROW}\s*{_LABEL}")


def _arrow_inferences(text: str) -> float:
    """Inference arrows (→, ->, =>, ⇒) with text on both sides (2 is full)."""
    arrows = 0
    for line in text.splitlines():
        arrows += len(re.findall(rf"\S\s*{_ARROW}\s*\S", line))
    return _saturate(arrows, 2)


def _bracket_labels(text: str) -> float:
    """Bracketed annotations such as [Premise], [Fact: ...], [D: tornado] (4 is full)."""
    return _saturate(len(_BRACKET_LABEL.findall(text)), 4)


def _annotated_steps(text: str) -> float:
    """Full "[X] ... → [Y] ..." inferences (2 is full)."""
    return _saturate(len(_ANNOTATED_STEP.findall(text)), 2)


ANNOTATED_DEDUCTION = StyleScorer(
    "annotated-deduction",
    (
        Feature(
            "arrow_inferences",
            0.5,
            _arrow_inferences,
            "inference arrows → -> => with text on both sides (2 is full)",
        ),
        Feature(
            "bracket_labels",
            0.3,
            _bracket_labels,
            "bracketed annotations like [Premise] [Fact: ...] [D: tornado] (4 is full)",
        ),
        Feature(
            "annotated_steps",
            0.2,
            _annotated_steps,
            'complete "[X] ... → [Y] ..." inferences (2 is full)',
        ),
    ),
)
_EXAMPLES["ANNOTATED_DEDUCTION"] = """Labelled premises and conclusions joined by arrows.

    >>> ANNOTATED_DEDUCTION("[Premise] Copper is a metal → [Conclusion] copper conducts.\\n"
    ...                     "[Fact] Wood, glass and rubber are insulators → [Inference] only B conducts.\\n"
    ...                     "[Inference] only B conducts → [Conclusion] choose B.")
    1.0
    >>> ANNOTATED_DEDUCTION("[Fact: metals conduct] copper is a metal → [D: copper] choice D.\\n"
    ...                     "[Premise 2] wood is not a metal → [Conclusion] not A.")
    1.0
    >>> ANNOTATED_DEDUCTION("The answer is B.")
    0.0
"""


# ---- analogical ------------------------------------------------------------------------

_ANALOGY = re.compile(
    r"\b(?:just like|just as|much like|similar to|similarly|is like|are like|it'?s like|"
    r"works like|acts like|analogous|analogy|in the same way|the same way (?:that|as)|"
    r"akin to|think of (?:it|this|them) as|resembles?)\b",
    re.IGNORECASE,
)
_MAPPING = re.compile(
    r"\b(?:here|in this case|in this (?:problem|question|situation)|likewise|so too|"
    r"the same (?:applies|is true|goes|happens|logic)|applying (?:this|that|the same)|"
    r"in the same way|by the same (?:logic|reasoning|token)|correspond(?:s|ing)? to|"
    r"plays? the role of|maps? (?:to|onto)|in our (?:case|problem)|just as)\b",
    re.IGNORECASE,
)


def _analogy_phrases(text: str) -> float:
    """Analogy phrases: just like, similar to, is like, analogous, in the same way (2 is full)."""
    return _saturate(len(_ANALOGY.findall(text)), 2)


def _maps_back(text: str) -> float:
    """The analogy is carried back to the question.

    Either a mapping phrase ("here", "in this case", "likewise") follows an analogy, or
    the analogy is invoked again in a later sentence ("Similar to the cart, the toy car
    ..."), which is how the familiar case is applied to the question.
    """
    parts = segments(text)
    with_analogy = [i for i, s in enumerate(parts) if _ANALOGY.search(s)]
    if not with_analogy:
        return 0.0
    if len(with_analogy) >= 2:
        return 1.0
    return _saturate(len(_MAPPING.findall(text)), 1)


def _opens_with_analogy(text: str) -> float:
    """The analogy comes early: in the first two segments (1) or later (0.5)."""
    parts = segments(text)
    if any(_ANALOGY.search(s) for s in parts[:2]):
        return 1.0
    return 0.5 if _ANALOGY.search(text) else 0.0


ANALOGICAL = StyleScorer(
    "analogical",
    (
        Feature(
            "analogy_phrases",
            0.5,
            _analogy_phrases,
            "just like / similar to / is like / analogous / in the same way (2 is full)",
        ),
        Feature(
            "maps_back",
            0.3,
            _maps_back,
            'the analogy is mapped back: "here", "in this case", "likewise", or invoked again later',
        ),
        Feature(
            "opens_with_analogy",
            0.2,
            _opens_with_analogy,
            "the familiar situation comes first, in the first two sentences",
        ),
    ),
)
_EXAMPLES["ANALOGICAL"] = """Reasoning by analogy to a familiar situation.

    >>> ANALOGICAL("This is just like sharing a pizza: cutting it into more slices makes "
    ...            "each slice smaller. Similar to the pizza, here 12 cookies split among "
    ...            "4 friends gives each friend 3.")
    1.0
    >>> ANALOGICAL("The answer is B.")
    0.0
"""


# doctest collects these as if they were docstrings: the examples of every style.
__test__ = dict(_EXAMPLES)
