"""Statistics for eval reports: accuracy intervals, paired tests, mean ± sd over runs.

- Accuracy carries a 95% Wilson score interval (scipy's `binomtest(...).proportion_ci`):
  unlike the normal approximation it stays inside [0, 1] and behaves at small n.
- Two methods scored on the *same* examples are compared pairwise: the exact McNemar test
  (a two-sided binomial test on the discordant pairs) and a paired bootstrap of the
  accuracy difference. Paired tests are far more sensitive than comparing two intervals.
- Sampling mode reports mean ± sample standard deviation (ddof = 1) over runs.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Accuracy:
    """`correct` out of `n`, as a rate with a confidence interval (all in [0, 1])."""

    correct: int
    n: int
    rate: float
    low: float
    high: float
    confidence: float = 0.95

    def percent(self, digits: int = 1) -> str:
        """`"25.0% [15.8, 37.2]"`"""
        return (
            f"{100 * self.rate:.{digits}f}% "
            f"[{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"
        )


def accuracy(correct: int, n: int, confidence: float = 0.95) -> Accuracy:
    """Accuracy with a Wilson score interval.

    >>> a = accuracy(15, 60)
    >>> round(a.rate, 3), round(a.low, 3), round(a.high, 3)
    (0.25, 0.158, 0.372)
    """
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise ValueError(f"need 0 <= correct <= n, got {correct}/{n}")
    if n == 0:
        return Accuracy(0, 0, math.nan, math.nan, math.nan, confidence)
    ci = scipy_stats.binomtest(correct, n).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return Accuracy(correct, n, correct / n, float(ci.low), float(ci.high), confidence)


@dataclass(frozen=True)
class PairedComparison:
    """Method B against method A on the same examples.

    `a_only`: A right and B wrong; `b_only`: B right and A wrong. `difference` is
    acc(B) − acc(A) with a bootstrap interval; `p_mcnemar` is the exact two-sided McNemar
    p-value; `p_bootstrap` the two-sided bootstrap p-value of the difference.
    """

    n: int
    a_only: int
    b_only: int
    difference: float
    low: float
    high: float
    p_mcnemar: float
    p_bootstrap: float


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Exact McNemar p-value (two-sided binomial test on the discordant pairs).

    >>> round(mcnemar_exact([True] * 10 + [False] * 2, [False] * 10 + [True] * 2), 4)
    0.0386
    >>> mcnemar_exact([True, False], [True, False])
    1.0
    """
    _check_paired(a, b)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    if a_only + b_only == 0:
        return 1.0
    return float(scipy_stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def paired_bootstrap(
    a: Sequence[bool],
    b: Sequence[bool],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """(difference, low, high, p): acc(b) − acc(a) resampled over examples.

    The p-value is two-sided: twice the smaller share of resampled differences on either
    side of zero (capped at 1), the usual percentile-bootstrap test.
    """
    _check_paired(a, b)
    n = len(a)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    deltas = [int(y) - int(x) for x, y in zip(a, b, strict=True)]
    observed = sum(deltas) / n
    if all(d == 0 for d in deltas):
        return 0.0, 0.0, 0.0, 1.0
    rng = random.Random(seed)
    samples = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = samples[math.floor(tail * (resamples - 1))]
    high = samples[math.ceil((1 - tail) * (resamples - 1))]
    at_or_below = sum(1 for s in samples if s <= 0) / resamples
    at_or_above = sum(1 for s in samples if s >= 0) / resamples
    p = min(1.0, 2 * min(at_or_below, at_or_above))
    return observed, low, high, p


def compare_paired(
    a: Sequence[bool], b: Sequence[bool], *, resamples: int = 10_000, seed: int = 0
) -> PairedComparison:
    """McNemar and a paired bootstrap of B against A (same examples, same order)."""
    diff, low, high, p_boot = paired_bootstrap(a, b, resamples=resamples, seed=seed)
    return PairedComparison(
        n=len(a),
        a_only=sum(1 for x, y in zip(a, b, strict=True) if x and not y),
        b_only=sum(1 for x, y in zip(a, b, strict=True) if y and not x),
        difference=diff,
        low=low,
        high=high,
        p_mcnemar=mcnemar_exact(a, b),
        p_bootstrap=p_boot,
    )


@dataclass(frozen=True)
class MeanSd:
    """Mean and sample standard deviation over runs (sd is 0.0 for a single run)."""

    mean: float
    sd: float
    n: int

    def format(self, scale: float = 100.0, digits: int = 2) -> str:
        """`"26.40 ± 1.12"` (scaled to percent by default)."""
        return f"{self.mean * scale:.{digits}f} ± {self.sd * scale:.{digits}f}"


def mean_sd(values: Sequence[float]) -> MeanSd:
    """Mean ± sample sd.

    >>> m = mean_sd([0.2, 0.3, 0.25])
    >>> round(m.mean, 3), round(m.sd, 3), m.n
    (0.25, 0.05, 3)
    """
    if not values:
        return MeanSd(math.nan, math.nan, 0)
    if len(values) == 1:
        return MeanSd(float(values[0]), 0.0, 1)
    return MeanSd(statistics.fmean(values), statistics.stdev(values), len(values))


def _check_paired(a: Sequence[bool], b: Sequence[bool]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
