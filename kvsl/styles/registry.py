"""The built-in styles by name (aliases included), and the scorer for a style or a plan."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kvsl.styles.markers import MarkerScorer
from kvsl.styles.scorers import (
    ANALOGICAL,
    ANNOTATED_DEDUCTION,
    CAUSAL_CHAIN,
    STEP_BY_STEP,
    STRATEGY_EXECUTE,
    StyleScorer,
)


@dataclass(frozen=True)
class StyleInfo:
    """A built-in style: its canonical name, scorer and spec file.

    What the style is, in a sentence, is the `description` of its spec file, the one
    place it is written (`kvsl.builtin.builtin_styles` reads it from there).
    """

    name: str
    scorer: StyleScorer
    spec_file: str  # file name under specs/, e.g. "step_by_step.kvs"


BUILTIN_STYLES: dict[str, StyleInfo] = {
    info.name: info
    for info in (
        StyleInfo(
            "step-by-step",
            STEP_BY_STEP,
            "step_by_step.kvs",
        ),
        StyleInfo(
            "strategy-and-execute",
            STRATEGY_EXECUTE,
            "strategy_execute.kvs",
        ),
        StyleInfo(
            "causal-chain",
            CAUSAL_CHAIN,
            "causal_chain.kvs",
        ),
        StyleInfo(
            "annotated-deduction",
            ANNOTATED_DEDUCTION,
            "annotated_deduction.kvs",
        ),
        StyleInfo(
            "analogical",
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
