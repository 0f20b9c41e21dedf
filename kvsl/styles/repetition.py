"""The repetition rule: what is repeated counts once, and a score is scaled by the new share.

See the `kvsl.styles` docstring for why; `Repetition` documents how segments are compared.
"""

from __future__ import annotations

import re
from collections import Counter
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
    spans = segment_spans(text)
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
