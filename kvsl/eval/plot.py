"""Sweep plots: dev accuracy (with Wilson 95% intervals) and response length per setting."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from kvsl.eval.sweep import SweepPoint


def plot_sweeps(
    sweeps: Mapping[str, Sequence[SweepPoint]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    chance: float | None = None,
) -> Path:
    """One panel per swept parameter: accuracy ± CI (left axis), mean chars (right axis).

    `chance` draws the chance level (1 / number of choices) as a dotted line.

    >>> # plot_sweeps({"value": points}, "out/sweep.png", title="ARC dev, 50 questions")
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    names = list(sweeps)
    fig, axes = plt.subplots(
        1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.4), squeeze=False
    )
    for ax, name in zip(axes[0], names, strict=False):
        points = sorted(sweeps[name], key=lambda p: p.value)
        xs = [p.value for p in points]
        ys = [100 * p.accuracy.rate for p in points]
        lows = [100 * (p.accuracy.rate - p.accuracy.low) for p in points]
        highs = [100 * (p.accuracy.high - p.accuracy.rate) for p in points]
        ax.errorbar(
            xs, ys, yerr=[lows, highs], marker="o", capsize=3, color="tab:blue", label="accuracy"
        )
        if chance is not None:
            ax.axhline(100 * chance, linestyle=":", color="grey", label="chance")
        ax.set_xlabel(name)
        ax.set_ylabel("dev accuracy (%)", color="tab:blue")
        chars = [p.mean_chars for p in points]
        if not all(math.isnan(c) for c in chars):
            twin = ax.twinx()
            twin.plot(xs, chars, marker="s", linestyle="--", color="tab:orange", label="chars")
            twin.set_ylabel("mean response (chars)", color="tab:orange")
        ax.grid(alpha=0.3)
    if title:
        # Wrapped to the figure's width: a long file name must not run off a one-panel plot.
        import textwrap

        width = max(30, int(48 * max(1, len(names))))
        fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize=10)
    fig.tight_layout()
    from kvsl.base.atomic import atomic_path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Atomic, as the reports beside it: a kill while saving left a truncated image that the
    # next eval (answering from its cache) would have replaced only if it got that far.
    # The temporary file's name ends in `.tmp`, so the format comes from the target's.
    with atomic_path(target) as temporary:
        fig.savefig(temporary, dpi=110, format=target.suffix.lstrip(".") or "png")
    plt.close(fig)
    return target
