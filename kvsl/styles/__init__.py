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
spec (see `MarkerScorer`). Those regexes have one validator, `validate_marker` from
`kvsl.lang.markers` (re-exported here): the checker reports what it refuses, and the
scorer skips it. Nothing here imports torch.

Modules: `segmentation` (lines, then sentences), `repetition` (the rule above), `scorers`
(the five built-in scorers), `markers` (user styles), `registry` (names, aliases, and
`scorer_for`). Everything public is re-exported here: `from kvsl.styles import score`.
"""

from __future__ import annotations

from kvsl.styles.markers import MarkerScorer, validate_marker
from kvsl.styles.registry import (
    BUILTIN_STYLES,
    NoScorerError,
    StyleInfo,
    builtin_style,
    can_score,
    canonical_style_name,
    score,
    scorer_for,
)
from kvsl.styles.repetition import Repetition, novelty, repetition
from kvsl.styles.scorers import Feature, StyleScorer
from kvsl.styles.segmentation import segments

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
