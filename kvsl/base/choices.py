"""Reading multiple-choice answers; see `kvsl.base.answers` for the whole picture.

Multiple choice (`extract_choice`), restricted to the example's labels; labels match
case-insensitively and are returned as the example spells them
    1. "answer is B", "Answer: (B)", "correct option is B", "I choose B", ... (last one wins)
       — a lowercase bare letter counts only when punctuation or the end follows it:
       "the answer is b." is B, "the answer is a wet palms ..." is an article   ("answer-is")
    2. "the answer is <choice text>"             ("answer-is-text")
    3. a label stated alone: the response is "B", "b", "(B)", "[B]", "B.", "`B`", "**B**",
       or starts with "B:", "b)", "B.", "B -" (not "a - b": arithmetic); or exactly one
       distinct label in parentheses (an echoed `A: ... B: ...` block is not an answer)
                                                 ("label")
    4. choice text: the choices whose text occurs in the response; if several, the one
       mentioned last (texts contained in a longer matched text are dropped)  ("text")
    5. forced choice: a caller-supplied scorer (`forced`, e.g. the model's logits for
       each label after the response + "The answer is", see kvsl.eval.methods), else the
       choice whose words best overlap the response      ("forced-model" / "forced-overlap")
    6. nothing overlaps: a label picked by a hash of the response — uniform over labels,
       so unparseable responses score at chance instead of favouring "A"  ("forced-hash")

    Digits are labels only where the choices' labels are digits: with labels A–D, "2" is
    not choice B (ARC's numeric labels are relabelled to letters by the loader).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from kvsl.base.extracted import Extracted, LabelledChoice, plain_words

ANSWER_LEAD = (
    r"(?:(?:final|correct|best|right)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would be|will be|should be|must be))?"
    r"|\bI\s+(?:would\s+)?(?:choose|pick|select|go with)"
    r"|\b(?:is|it's)\s+option"
)
# What may follow a bare label after an answer lead: the label ends there.
_LABEL_END = r"(?=\s*(?:$|[).:,;!*\"'\]\n]|\s+(?:is\b|because\b|since\b|as\b|-|–|—)|\s*:))"
# ... and what may follow a lowercase one, which could otherwise be an article ("a wet").
_LOWERCASE_LABEL_END = re.compile(r"[ \t]*(?:$|\n|[).:,;!*\"'\]])")


def canonical_label(label: str, labels: Sequence[str]) -> str | None:
    """The label as the choices spell it, matched case-insensitively; None if none.

    >>> canonical_label(" b ", ["A", "B"]), canonical_label("2", ["A", "B"])
    ('B', None)
    """
    wanted = label.strip().casefold()
    for candidate in labels:
        if candidate.casefold() == wanted:
            return candidate
    return None


def _label_alternatives(labels: Sequence[str]) -> str:
    return "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))


def _answer_is_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    # The label must stand alone: "(B)", "B.", "B:", "**B**", "B)" — not the "A" of "A dog".
    pattern = re.compile(
        rf"(?:{ANSWER_LEAD})(?:\*\*)?\s*(?:[:=\-]|\bis\b)?(?:\s|\*\*|\"|')*"
        rf"(?:\(\s*(?P<p>{alts})\s*\)|\[(?P<b>{alts})\]|(?P<l>{alts}){_LABEL_END})",
        re.IGNORECASE,
    )
    found = None
    for match in pattern.finditer(text):
        label = match.group("p") or match.group("b") or match.group("l")
        bare = match.group("l")
        # A lowercase bare letter followed by a word ("the answer is a wet ...") is an
        # article, not a label; followed by punctuation or the end it is a label.
        if bare and bare not in labels and not _LOWERCASE_LABEL_END.match(text, match.end("l")):
            continue
        found = canonical_label(label, labels)
    return found


def named_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a short answer names, by the label rules alone (1 and 3 above).

    >>> named_label("(b) dry palms", ["A", "B"]), named_label("I choose A.", ["A", "B"])
    ('B', 'A')
    >>> named_label("C", ["A", "B"]) is None
    True
    """
    return _answer_is_label(text, labels) or _stated_label(text, labels)


def _answer_is_text(text: str, choices: Sequence[LabelledChoice]) -> str | None:
    tails = [
        m.end()
        for m in re.finditer(rf"(?:{ANSWER_LEAD})\s*(?:[:=\-]|\bis\b)?", text, re.IGNORECASE)
    ]
    if not tails:
        return None
    tail = plain_words(text[tails[-1] : tails[-1] + 200])
    best: tuple[int, str] | None = None
    for choice in choices:
        wanted = plain_words(choice.text)
        starts = any(f"{tail} ".startswith(f"{a}{wanted} ") for a in ("", "the ", "a ", "an "))
        if wanted and starts and (best is None or len(wanted) > best[0]):
            best = (len(wanted), choice.label)
    return best[1] if best else None


def _labels_in(pattern: str, text: str, labels: Sequence[str]) -> set[str]:
    found = (canonical_label(m.group(1), labels) for m in re.finditer(pattern, text, re.I))
    return {label for label in found if label is not None}


def _stated_label(text: str, labels: Sequence[str]) -> str | None:
    alts = _label_alternatives(labels)
    # Markdown and quotes around a whole answer: "**B**", "`B`", "'B'", "_B_".
    stripped = text.strip().strip("*_`\"'").strip()
    alone = re.fullmatch(rf"[(\[]?\s*({alts})\s*[)\]]?\s*[.:)]?", stripped, re.IGNORECASE)
    if alone:
        return canonical_label(alone.group(1), labels)
    lead = re.match(
        rf"\**[(\[]?({alts})[)\]]?\**\s*(?:[:.)]|(?P<dash>\s[-–—]\s)|$|\n)",
        stripped,
        re.IGNORECASE,
    )
    # "a - b" is arithmetic: a dash after a label counts only when the case matches ("B - x").
    if lead and lead.group("dash") and lead.group(1) not in labels:
        lead = None
    # "A: x\nB: y\nC: z": an echoed choices block is not an answer.
    if lead and len(_labels_in(rf"(?m)^\s*\(?({alts})\s*[:.)]", text, labels)) <= 1:
        return canonical_label(lead.group(1), labels)
    in_parens = _labels_in(rf"\(({alts})\)", text, labels)
    if len(in_parens) == 1:
        return next(iter(in_parens))
    return None


def mentioned_labels(text: str, choices: Sequence[LabelledChoice]) -> list[str]:
    """The labels whose choice text the response mentions, in order of last mention."""
    norm = f" {plain_words(text)} "
    positions: dict[str, tuple[int, str]] = {}
    for choice in choices:
        wanted = plain_words(choice.text)
        if not wanted:
            continue
        at = norm.rfind(f" {wanted} ")
        if at >= 0:
            positions[choice.label] = (at, wanted)
    # Drop a match that is part of a longer matched choice ("oil" inside "palms with oil").
    kept = {
        label: (at, wanted)
        for label, (at, wanted) in positions.items()
        if not any(
            other != label and wanted != w2 and f" {wanted} " in f" {w2} "
            for other, (_, w2) in positions.items()
        )
    }
    return [label for label, _ in sorted(kept.items(), key=lambda item: item[1][0])]


def _overlap_choice(text: str, choices: Sequence[LabelledChoice]) -> str | None:
    words = set(plain_words(text).split())
    best: tuple[float, str] | None = None
    tie = False
    for choice in choices:
        choice_words = set(plain_words(choice.text).split())
        if not choice_words:
            continue
        score = len(words & choice_words) / len(choice_words)
        if best is None or score > best[0]:
            best, tie = (score, choice.label), False
        elif score == best[0]:
            tie = True
    if best is None or best[0] == 0 or tie:
        return None
    return best[1]


def _hash_choice(text: str, labels: Sequence[str]) -> str:
    digest = hashlib.sha256(("\x00".join([text, *labels])).encode("utf-8")).digest()
    return labels[int.from_bytes(digest[:8], "big") % len(labels)]


def strip_echoed_choices(text: str, choices: Sequence[LabelledChoice]) -> str:
    """The response without an echoed choices block (two or more `X: <choice text>` lines).

    Small models often repeat the whole `A: ... B: ...` list; those lines mention every
    choice and would make the last one look chosen. A single such line is an answer and
    is kept.

    >>> from kvsl.formats.questions import Choice
    >>> cs = [Choice("A", "fog"), Choice("B", "rain")]
    >>> strip_echoed_choices("A: fog\\nB: rain\\nFog forms at night.", cs)
    'Fog forms at night.'
    """
    by_label = {c.label: plain_words(c.text) for c in choices}
    lines = text.split("\n")
    echoed = []
    for i, line in enumerate(lines):
        match = re.match(r"\s*\(?([A-Za-z0-9]{1,3})\)?\s*[:.)]\s*(.*)$", line)
        if (
            match
            and match.group(1) in by_label
            and plain_words(match.group(2)) == by_label[match.group(1)]
        ):
            echoed.append(i)
    if len(echoed) < 2:
        return text
    drop = set(echoed)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()


ForcedChoice = Callable[[], str | None]


def extract_choice(
    text: str,
    choices: Sequence[LabelledChoice],
    *,
    forced: ForcedChoice | None = None,
) -> Extracted:
    """The chosen label of a multiple-choice response; always one of `choices`' labels.

    `forced` is called only when no rule finds a stated answer; it returns a label (or
    None to fall through to word overlap).

    >>> from kvsl.formats.questions import Choice
    >>> cs = [Choice("A", "dry palms"), Choice("B", "wet palms")]
    >>> extract_choice("Rubbing dry skin ... The answer is (A).", cs)
    Extracted(answer='A', how='answer-is')
    >>> extract_choice("I think wet palms get hotter.", cs)
    Extracted(answer='B', how='text')
    """
    labels = [c.label for c in choices]
    if not labels:
        raise ValueError("extract_choice needs at least one choice")
    text = strip_echoed_choices(text, choices)

    def mentioned() -> str | None:
        found = mentioned_labels(text, choices)
        return found[-1] if found else None

    steps: tuple[tuple[str, Callable[[], str | None]], ...] = (
        ("answer-is", lambda: _answer_is_label(text, labels)),
        ("answer-is-text", lambda: _answer_is_text(text, choices)),
        ("label", lambda: _stated_label(text, labels)),
        ("text", mentioned),
    )
    for how, rule in steps:
        label = rule()
        if label is not None:
            return Extracted(label, how)
    if forced is not None:
        label = forced()
        if label is not None and label in labels:
            return Extracted(label, "forced-model")
    label = _overlap_choice(text, choices)
    if label is not None:
        return Extracted(label, "forced-overlap")
    return Extracted(_hash_choice(text, labels), "forced-hash")
