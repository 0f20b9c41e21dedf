"""Counting things in messages: `1 question`, `2 questions`, never `1 questions`.

Every summary and message that puts a number before a noun (`kvsl teach`'s "wrote 1
traces", a tune report's "1 answers generated now") says it through `counted`, so the
rule is written once. English only, as every message of kvsl is: a noun whose plural is
not its singular plus "s" gives its plural (`counted(n, "reply", "replies")`).
"""

from __future__ import annotations


def plural(count: object, singular: str, plural_form: str | None = None) -> str:
    """`singular` for a count of exactly one, else its plural (`singular + "s"` by default).

    A count that is not a number (a manifest field that is missing, None) reads as many.

    >>> plural(1, "layer"), plural(0, "layer"), plural(2.5, "second"), plural(None, "head")
    ('layer', 'layers', 'seconds', 'heads')
    >>> plural(3, "reply", "replies"), plural(1.0, "second")
    ('replies', 'second')
    """
    one = isinstance(count, int | float) and not isinstance(count, bool) and count == 1
    if one:
        return singular
    return plural_form if plural_form is not None else singular + "s"


def counted(count: object, singular: str, plural_form: str | None = None, *, sep: bool = False) -> str:
    """`count` and its noun: `1 question`, `2 questions` (`sep`: `1,024 bytes`).

    >>> counted(1, "question"), counted(0, "question"), counted(2, "duplicate question")
    ('1 question', '0 questions', '2 duplicate questions')
    >>> counted(1, "reply", "replies"), counted(1024, "byte", sep=True)
    ('1 reply', '1,024 bytes')
    """
    shown = f"{count:,}" if sep and isinstance(count, int | float) else f"{count}"
    return f"{shown} {plural(count, singular, plural_form)}"
