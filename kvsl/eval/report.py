"""Eval reports: a rich table for the terminal, Markdown for docs, JSON for scripts.

All three read the same `MethodSummary` values (kvsl.eval.runner), so they never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kvsl.base.plurals import counted
from kvsl.eval.runner import MethodSummary
from kvsl.eval.sweep import SweepPoint

COLUMNS = (
    "method",
    "accuracy [95% CI]",
    "Δ",
    "p",
    "chars",
    "tokens",
    "style",
    "ms/tok",
    "forced",
)


def _num(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def summary_row(s: MethodSummary) -> list[str]:
    """One table row of strings (shared by the rich and Markdown tables)."""
    if len(s.run_accuracies) > 1:
        acc = f"{s.over_runs.format()} (n={s.n}, {counted(len(s.run_accuracies), 'run')})"
    else:
        acc = f"{s.accuracy.percent()} ({s.accuracy.correct}/{s.accuracy.n})"
    delta = p = "–"
    if s.versus_plain is not None:
        delta = f"{100 * s.versus_plain.difference:+.1f}"
        p = _p(s.versus_plain.p_mcnemar)
    return [
        s.method,
        acc,
        delta,
        p,
        _num(s.mean_chars, ".0f"),
        _num(s.mean_tokens, ".0f"),
        _num(s.style, ".2f"),
        _num(s.ms_per_token, ".1f"),
        f"{100 * s.forced_share:.0f}%",
    ]


def rich_table(summaries: Sequence[MethodSummary], title: str = "") -> Any:
    """A `rich.table.Table` of the summaries."""
    from rich.table import Table

    table = Table(title=title or None, title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="left" if name == "method" else "right")
    for s in summaries:
        table.add_row(*summary_row(s))
    return table


def markdown_table(summaries: Sequence[MethodSummary]) -> str:
    """A GitHub Markdown table of the summaries.

    >>> markdown_table([]).splitlines()[0].startswith("| method |")
    True
    """
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(summary_row(s)) + " |" for s in summaries]
    return "\n".join(lines)


def sweep_table(points: Sequence[SweepPoint], title: str = "") -> Any:
    from rich.table import Table

    table = Table(title=title or None, title_justify="left")
    for name in ("parameter", "value", "method", "dev accuracy [95% CI]", "chars", "style"):
        table.add_column(name, justify="left" if name in ("parameter", "method") else "right")
    for p in points:
        table.add_row(
            p.parameter,
            f"{p.value:g}",
            p.method,
            p.accuracy.percent(),
            _num(p.mean_chars, ".0f"),
            _num(p.style, ".2f"),
        )
    return table


def legend() -> str:
    """What the columns mean (printed under the table and in docs/eval.md)."""
    return (
        "accuracy: Wilson 95% interval; Δ: accuracy minus plain's, in points, on the same "
        "questions; p: exact McNemar test against plain; chars/tokens: mean response length; "
        "style: mean style-adherence score (0-1); ms/tok: wall time per generated token, "
        "prefill included; forced: answers no extraction rule could read (forced choice)"
    )
