"""Medians with spread for interleaved benchmark repetitions (shared by the bench scripts).

The machine the benchmarks run on is usually shared, so one run's absolute time says
little. Each script interleaves its methods (the order rotates every repetition, so a
burst of load hits each method alike) and reports, per method and per ratio, the median
over repetitions with the spread (min–max and the interquartile range). Ratios are taken
within a repetition, where both sides ran seconds apart under the same load.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and range of a few repetitions.

    >>> str(Spread.of([1.0, 2.0, 3.0, 4.0, 10.0]))
    '3.00 [IQR 2.00–4.00, range 1.00–10.00, n=5]'
    """

    median: float
    q1: float
    q3: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        data = sorted(values)
        if len(data) >= 2:
            q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
        else:
            q1 = q3 = data[0]
        return cls(statistics.median(data), q1, q3, data[0], data[-1], len(data))

    def __str__(self) -> str:
        return self.format(".2f")

    def format(self, spec: str) -> str:
        f = lambda x: format(x, spec)  # noqa: E731
        return (
            f"{f(self.median)} [IQR {f(self.q1)}–{f(self.q3)}, "
            f"range {f(self.low)}–{f(self.high)}, n={self.n}]"
        )

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "q1": self.q1, "q3": self.q3, "min": self.low,
                "max": self.high, "n": self.n}


def rotated(items: Sequence[str], rep: int) -> list[str]:
    """The methods in the order of repetition `rep`: rotated by one each time.

    >>> rotated(["a", "b", "c"], 1)
    ['b', 'c', 'a']
    """
    k = rep % len(items)
    return [*items[k:], *items[:k]]


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-repetition ratios (both measured in the same repetition)."""
    return [n / d for n, d in zip(numerator, denominator, strict=True)]
