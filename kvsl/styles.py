"""Built-in reasoning styles and style-adherence scorers.

A scorer reads a generation and says, in [0, 1], how much it follows a reasoning style.
Each built-in scorer is a weighted sum of a few named *features*, each itself in [0, 1]
and saturating; the weights of one style sum to 1. The features are surface markers on
purpose: they are cheap, deterministic and explainable (`StyleScorer.breakdown` shows each
one), which is what an adherence check needs; they say nothing about whether the reasoning
is *correct*.

    >>> score("1. 12 apples minus 5 eaten leaves 7.\\n2. 7 times 3 is 21.", "step-by-step") > 0.7
    True
    >>> score("The answer is B.", "analogical")
    0.0

Repetition. A small steered model often loops: "Strategy:" forty times, or "1. 1 clip =
100 clips", "2. 1 clip = 100 clips", ... Surface markers alone would call that adherent
(each line carries a marker), so every scorer, the five built-in ones and `MarkerScorer`
alike, applies one rule (see `repetition`): *what is repeated counts once, and the score
is scaled by the share of the text that is new*.

1. Markers count once. A segment (a line, or a sentence within one) that repeats an
   earlier segment is cut before the features are measured, so repeating a step cannot
   fill a feature's count. Two segments are the same when their words are, ignoring
   case, spacing, punctuation around words, a leading step number ("1.", "Step 12:") and
   the number in a bracket label ("[Premise 2]"): those are what a loop increments while
   its body stays the same ("Step 1: add" / "Step 2: add").
2. The score is multiplied by `novelty`: the share of the text's words that repeat
   nothing (not in a repeated segment, and not a later copy of a run of words that comes
   three or more times in a row, which is how a loop inside one line looks:
   "[S] [L] [T] [S] [L] [T] [S] [L] [T]").

Why this rule: repeated text carries no new reasoning, so it should add no markers, and a
text that is mostly repetition is mostly not reasoning in any style. Scaling by the new
share makes the score read as adherence per word of output, with no threshold to tune
and no cliff: a pure loop scores near 0, a text that is half loop keeps at most half its
score, and a text that repeats nothing (every bundled trace) is scored exactly as
without the rule. A run inside a line must come three times
because a chain that restates its last step ("A leads to B. B leads to C.") repeats a
phrase once, legitimately; a whole sentence said twice is already a loop.

    >>> score("Strategy:\\n" * 40, "strategy-and-execute")
    0.0113
    >>> score("\\n".join(f"{i}. Add 2 apples." for i in range(1, 21)), "step-by-step")
    0.02

A user-declared style has no built-in scorer: it is scored by the regex `markers` of its
spec (see `MarkerScorer`). Nothing here imports torch: the front end may import
`validate_marker` to check those regexes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Protocol

__all__ = [
    "BUILTIN_STYLES",
    "Feature",
    "MarkerScorer",
    "NoScorerError",
    "Repetition",
    "StyleInfo",
    "StyleScorer",
    "builtin_style",
    "can_score",
    "canonical_style_name",
    "novelty",
    "repetition",
    "score",
    "scorer_for",
    "segments",
    "validate_marker",
]


# --------------------------------------------------------------------------- segmentation

# A sentence ends at . ! or ? followed by whitespace; the split is undone below when the
# "sentence" is only an enumerator ("1." or "Step 2."), which belongs to the next one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BARE_ENUMERATOR = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|step\s*\d{1,2}[.:)]?)\s*$", re.IGNORECASE)


def _segment_spans(text: str) -> list[tuple[int, int]]:
    """`(start, end)` offsets in `text` of each segment (see `segments`)."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for raw, line in zip(text.splitlines(keepends=True), text.splitlines(), strict=True):
        body = line.strip()
        base = offset + (len(line) - len(line.lstrip()))
        offset += len(raw)
        if not body:
            continue
        # The sentence pieces of the line, as offsets into `body`.
        pieces: list[tuple[int, int]] = []
        previous = 0
        for gap in _SENTENCE_END.finditer(body):
            pieces.append((previous, gap.start()))
            previous = gap.end()
        pieces.append((previous, len(body)))
        pending: tuple[int, int] | None = None  # bare enumerators waiting for their sentence
        for start, end in pieces:
            if start == end:
                continue
            if _BARE_ENUMERATOR.match(body[start:end]):
                pending = (pending[0] if pending else start, end)
                continue
            spans.append((base + (pending[0] if pending else start), base + end))
            pending = None
        if pending:
            spans.append((base + pending[0], base + pending[1]))
    return spans


def segments(text: str) -> list[str]:
    """Split a text into lines, then each line into sentences; empty pieces dropped.

    Steps may arrive one per line (a trace joined with newlines) or run together in one
    paragraph (a model's output), so the scorers look at both.

    >>> segments("1. Add 2 and 3. Then double it.\\n2. That is 10.")
    ['1. Add 2 and 3.', 'Then double it.', '2. That is 10.']
    >>> segments("It costs $3.50 now.")
    ['It costs $3.50 now.']
    """
    return [text[start:end] for start, end in _segment_spans(text)]


# --------------------------------------------------------------------------- repetition

# What makes two segments "the same" once the looping is seen through: the enumerator that
# opens a step ("1.", "Step 12:", "(3)") and the number inside a bracket label ("[Premise 2]")
# are what a loop increments while the body stays identical, so they are dropped; case,
# spacing and the punctuation around words are not content either.
_LEADING_ENUMERATOR = re.compile(
    r"^[\s*#>-]*(?:\(?\d{1,3}[.):](?!\d)|step\s*\d{1,3}\b\s*[:.)\-–]?)", re.IGNORECASE
)
_LABEL_NUMBER = re.compile(r"\[([^\[\]\n]*?)\s*\d+\s*\]")
_WORD_EDGES = "\"'`.,;:!?()[]{}*_"
# A run of up to this many words that comes three times in a row is a loop (a fragment
# or marker repeated inside one line, which no sentence split separates).
_LOOP_MAX_PERIOD = 40


def _segment_words(segment: str) -> list[str]:
    """The words of a segment as they count for repetition (see `_LEADING_ENUMERATOR`)."""
    text = _LABEL_NUMBER.sub(r"[\1 #]", _LEADING_ENUMERATOR.sub("", segment.lower(), count=1))
    return [w for w in (raw.strip(_WORD_EDGES) for raw in text.split()) if w]


_NUMBER = re.compile(r"[$€£]?\d+(?:[.,:/]\d+)*%?")  # a whole word that is a number
# A segment whose words come back with only new numbers is a loop from this many copies on
# (counting up "1 page * 2 = 2 pages", "2 pages * 2 = 4 pages", ...); twice is a pattern
# that legitimate steps share ("weekdays: 5 × 15 = 75 pages", "weekend: 2 × 25 = 50 pages").
_NUMBER_LOOP_COPIES = 3


def _numbers_blind(segment_words: Sequence[str]) -> str | None:
    """The segment's words with every number as `#`, or None for (nearly) bare arithmetic.

    A segment of bare arithmetic ("12 + 5 = 17") keeps its numbers, which are all it says;
    two or more words with letters make a body that a loop can repeat.

    >>> _numbers_blind(["17", "sheep", "=", "17", "sheep"]), _numbers_blind(["12", "+", "5"])
    ('# sheep = # sheep', None)
    """
    if sum(1 for w in segment_words if any(c.isalpha() for c in w)) < 2:
        return None
    return " ".join("#" if _NUMBER.fullmatch(w) else w for w in segment_words)


def _mark_loops(words: Sequence[str], repeated: list[bool]) -> None:
    """Mark, in `repeated`, every copy after the first of a run that occurs 3+ times in a row."""
    n = len(words)
    where: dict[str, list[int]] = {}  # each word's positions so far, in order
    for i, word in enumerate(words):
        seen = where.setdefault(word, [])
        # A loop of period p needs the same word p and 2p places back: only the recent
        # positions of this very word are candidates, which keeps this near linear.
        for earlier in reversed(seen):
            period = i - earlier
            if period > _LOOP_MAX_PERIOD or i - 2 * period < 0:
                break
            if i + period > n or words[i - 2 * period] != word:
                continue
            if words[i : i + period] == words[i - period : i] == words[i - 2 * period : i - period]:
                for j in range(i - period, i + period):
                    repeated[j] = True
                break
        seen.append(i)


@dataclass(frozen=True)
class Repetition:
    """What a text says once, and how much of it is new.

    `distinct` is the text with every segment cut out that repeats an earlier one (same
    words once step numbers, case and spacing are set aside); `novelty` is the share of
    the text's words that repeat nothing: not in a repeated segment, and not a later copy
    of a run that occurs three or more times in a row (a loop inside one line). A text
    with no words at all ("", "1.\\n2.\\n3.") has novelty 0: it says nothing new.

    >>> r = repetition("Step 1: add two.\\nStep 2: add two.\\nStep 3: add two.\\nStep 4: stop here.")
    >>> r.distinct.split("\\n")[0], r.novelty
    ('Step 1: add two.', 0.5)
    >>> repetition("[M] " + "[S] [L] [T] " * 10).novelty
    0.129
    >>> repetition("1. 7 × 24 = 168 pencils.\\n2. 168 − 150 = 18 are left.").novelty
    1.0
    """

    distinct: str
    novelty: float
    words: int
    repeated_words: int


def repetition(text: str) -> Repetition:
    """The `Repetition` of `text`: its distinct segments, and the share of it that is new."""
    spans = _segment_spans(text)
    seen: set[str] = set()
    words: list[str] = []
    repeated: list[bool] = []
    cut: list[tuple[int, int]] = []
    bodies = [_segment_words(text[start:end]) for start, end in spans]
    blind = [_numbers_blind(words_of) for words_of in bodies]
    blind_copies = Counter(b for b in blind if b is not None)
    seen_blind: set[str] = set()
    for (start, end), segment_words, body in zip(spans, bodies, blind, strict=True):
        # A segment without words ("1.", "---") is its own text: "1." and "2." differ.
        key = " ".join(segment_words) or "\0" + " ".join(text[start:end].split())
        # Repeated: the same words again, or the same words with only new numbers when that
        # body comes _NUMBER_LOOP_COPIES times or more (a loop that counts up).
        again = key in seen or (
            body is not None and body in seen_blind and blind_copies[body] >= _NUMBER_LOOP_COPIES
        )
        seen.add(key)
        if body is not None:
            seen_blind.add(body)
        if again:
            cut.append((start, end))
        words.extend(segment_words)
        repeated.extend([again] * len(segment_words))
    _mark_loops(words, repeated)
    if cut:
        kept: list[str] = []
        previous = 0
        for start, end in cut:
            kept.append(text[previous:start])
            previous = end
        kept.append(text[previous:])
        distinct = "".join(kept)
    else:
        distinct = text  # nothing repeated: the features see exactly the text given
    n_repeated = sum(repeated)
    # A text without words ("", "1.\\n2.\\n3.") says nothing, so nothing in it is new.
    novelty = 1.0 - n_repeated / len(words) if words else 0.0
    return Repetition(distinct, round(novelty, 4), len(words), n_repeated)


def novelty(text: str) -> float:
    """The share of `text` that repeats nothing, in [0, 1] (see `Repetition`).

    >>> novelty("Strategy:\\n" * 40)
    0.025
    """
    return repetition(text).novelty


def _saturate(count: float, at: float) -> float:
    """`count / at`, capped at 1: the feature is full once `at` occurrences are seen."""
    return min(count / at, 1.0) if at > 0 else 1.0


# --------------------------------------------------------------------------- scorers


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


# --------------------------------------------------------------------------- user markers


def validate_marker(pattern: str) -> str | None:
    """Why `pattern` cannot serve as an adherence marker, or None if it can.

    Markers are Python regexes searched with `re.MULTILINE` (so `^` matches at every
    line start). A pattern is refused when it does not compile, or when it matches the
    empty text, since then every generation would match it and the score would mean nothing.

    >>> validate_marker(r"^\\s*\\d+\\.") is None
    True
    >>> validate_marker("(unclosed")
    'invalid regex: missing ), unterminated subpattern at position 0'
    >>> validate_marker("a*")
    'matches the empty text, so every generation would match it'
    """
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as err:
        return f"invalid regex: {err}"
    except (RecursionError, OverflowError, ValueError) as err:  # pathological patterns
        return f"invalid regex: {err}"
    if compiled.search("") is not None:
        return "matches the empty text, so every generation would match it"
    return None


@dataclass(frozen=True)
class MarkerScorer:
    """Score = the fraction of the declared markers that match the text at least once,
    times `novelty(text)` (a loop is no more adherent for a user style than a built-in one).

    Markers are searched with `re.MULTILINE`. A marker that `validate_marker` refuses
    (the checker reports it) never matches but still counts in the denominator, so a
    broken marker lowers the ceiling instead of crashing a run.

    >>> s = MarkerScorer((r"(?i)\\bfirst\\b", r"^\\s*\\d+\\.", "(broken"))
    >>> s("First, add.\\n1. 2 + 2 = 4")
    0.6667
    >>> s("The answer is B.")
    0.0
    >>> s.breakdown("First, add.")
    {'(?i)\\\\bfirst\\\\b': 1.0, '^\\\\s*\\\\d+\\\\.': 0.0, '(broken': 0.0}
    """

    patterns: tuple[str, ...]
    style: str = "custom"

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str] | None, ...]:
        return tuple(
            re.compile(p, re.MULTILINE) if validate_marker(p) is None else None
            for p in self.patterns
        )

    def breakdown(self, text: str) -> dict[str, float]:
        """1.0 or 0.0 per marker, keyed by its pattern."""
        return {
            p: (1.0 if c is not None and c.search(text) else 0.0)
            for p, c in zip(self.patterns, self._compiled, strict=True)
        }

    def __call__(self, text: str) -> float:
        if not self.patterns:
            return 0.0
        hits = sum(self.breakdown(text).values())
        return round(hits / len(self.patterns) * novelty(text), 4)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class StyleInfo:
    """A built-in style: its canonical name, a one-line description, scorer and spec file."""

    name: str
    description: str
    scorer: StyleScorer
    spec_file: str  # file name under specs/, e.g. "step_by_step.kvs"


BUILTIN_STYLES: dict[str, StyleInfo] = {
    info.name: info
    for info in (
        StyleInfo(
            "step-by-step",
            "Numbered steps, one idea each, then the answer.",
            STEP_BY_STEP,
            "step_by_step.kvs",
        ),
        StyleInfo(
            "strategy-and-execute",
            "State a strategy for the problem first, then carry it out step by step.",
            STRATEGY_EXECUTE,
            "strategy_execute.kvs",
        ),
        StyleInfo(
            "causal-chain",
            "A chain of cause and effect (because, so, therefore) leading to the answer.",
            CAUSAL_CHAIN,
            "causal_chain.kvs",
        ),
        StyleInfo(
            "annotated-deduction",
            "Labelled premises and conclusions joined by arrows: [Premise] ... → [Conclusion] ...",
            ANNOTATED_DEDUCTION,
            "annotated_deduction.kvs",
        ),
        StyleInfo(
            "analogical",
            "Reason by analogy to a familiar situation, then map it back to the question.",
            ANALOGICAL,
            "analogical.kvs",
        ),
    )
}

# Other spellings users (and the paper) use for the built-in names.
_ALIASES: dict[str, str] = {
    "stepwise": "step-by-step",
    "sbs": "step-by-step",
    "strategy-execute": "strategy-and-execute",
    "strategy-and-execution": "strategy-and-execute",
    "strategy-execution": "strategy-and-execute",
    "strategy": "strategy-and-execute",
    "causal": "causal-chain",
    "annotated": "annotated-deduction",
    "deduction": "annotated-deduction",
    "analogy": "analogical",
    "analogical-reasoning": "analogical",
}


def canonical_style_name(name: str) -> str:
    """Lower-case, `_`/spaces → `-`, aliases resolved; unknown names come back normalised.

    >>> canonical_style_name("Strategy_Execute")
    'strategy-and-execute'
    >>> canonical_style_name("my style")
    'my-style'
    """
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return _ALIASES.get(key, key)


def builtin_style(name: str) -> StyleInfo | None:
    """The built-in style called `name` (any accepted spelling), or None.

    >>> builtin_style("annotated_deduction").spec_file
    'annotated_deduction.kvs'
    """
    return BUILTIN_STYLES.get(canonical_style_name(name))


# --------------------------------------------------------------------------- public API


class _PlanLike(Protocol):
    """What the scorer needs of a `kvsl.lang.plan.Plan` (duck-typed: no import cycle)."""

    @property
    def style(self) -> str: ...

    @property
    def markers(self) -> object: ...


Scorer = Callable[[str], float]


class NoScorerError(ValueError):
    """A style that is neither built in nor declares markers cannot be scored."""


def _marker_patterns(plan: _PlanLike) -> tuple[str, ...]:
    markers = plan.markers
    patterns = getattr(markers, "patterns", markers)
    if isinstance(patterns, str):
        return (patterns,)
    if isinstance(patterns, Sequence):
        return tuple(str(p) for p in patterns)
    return ()


def scorer_for(plan_or_style: _PlanLike | str) -> StyleScorer | MarkerScorer:
    """The scorer for a built-in style name, or for a Plan.

    A Plan whose `style` is a built-in name gets the built-in scorer; any other Plan is
    scored by its `markers`. Raises NoScorerError for an unknown style name, or a Plan
    that is neither built in nor declares markers (check first with `can_score`).

    >>> scorer_for("analogical").style
    'analogical'
    >>> from types import SimpleNamespace as NS
    >>> scorer_for(NS(style="terse", markers=NS(patterns=("^Answer:",))))("Answer: 4")
    1.0
    """
    if isinstance(plan_or_style, str):
        info = builtin_style(plan_or_style)
        if info is None:
            known = ", ".join(f"`{n}`" for n in BUILTIN_STYLES)
            raise NoScorerError(
                f"no built-in style `{plan_or_style}` (built-in styles: {known}); "
                "a user-declared style is scored by the markers of its spec"
            )
        return info.scorer
    info = builtin_style(plan_or_style.style)
    if info is not None:
        return info.scorer
    patterns = _marker_patterns(plan_or_style)
    if not patterns:
        raise NoScorerError(
            f"style `{plan_or_style.style}` is not built in and declares no `markers`, "
            "so its adherence cannot be scored"
        )
    return MarkerScorer(patterns, style=plan_or_style.style)


def can_score(plan_or_style: _PlanLike | str) -> bool:
    """Whether `scorer_for` would find a scorer (a built-in name, or declared markers).

    >>> can_score("step-by-step"), can_score("haiku")
    (True, False)
    """
    try:
        scorer_for(plan_or_style)
    except NoScorerError:
        return False
    return True


def score(text: str, plan_or_style: _PlanLike | str) -> float:
    """How much `text` follows the style, in [0, 1] (see `scorer_for`).

    >>> score("[Fact] Ice is frozen water → [Inference] heat melts it.", "annotated-deduction")
    0.5
    """
    return scorer_for(plan_or_style)(text)


# doctest collects these as if they were docstrings: the examples of every style.
__test__ = dict(_EXAMPLES)
