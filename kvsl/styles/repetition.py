"""The repetition rule: what is repeated counts once, and a score is scaled by the new share.

See the `kvsl.styles` docstring for why; `Repetition` documents how segments are compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kvsl.styles.segmentation import segment_spans

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
    spans = segment_spans(text)
    seen: set[str] = set()
    words: list[str] = []
    repeated: list[bool] = []
    cut: list[tuple[int, int]] = []
    for start, end in spans:
        segment_words = _segment_words(text[start:end])
        # A segment without words ("1.", "---") is its own text: "1." and "2." differ.
        key = " ".join(segment_words) or "\0" + " ".join(text[start:end].split())
        again = key in seen
        seen.add(key)
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
