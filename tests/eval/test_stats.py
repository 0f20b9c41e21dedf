"""Statistics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from kvsl.eval.stats import accuracy, compare_paired, mcnemar_exact, mean_sd, paired_bootstrap


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(15, 60), (0, 20), (20, 20), (1, 3), (120, 200)])
def test_wilson_matches_the_formula(k: int, n: int) -> None:
    got = accuracy(k, n)
    low, high = _wilson(k, n)
    assert got.rate == k / n
    assert got.low == pytest.approx(low, abs=1e-9)
    assert got.high == pytest.approx(high, abs=1e-9)
    assert 0.0 <= got.low <= got.rate <= got.high <= 1.0


def test_wilson_known_value_and_format() -> None:
    got = accuracy(15, 60)  # the prototype's plain ARC result: 25.0%, about ±11 points
    assert (round(got.low, 4), round(got.high, 4)) == (0.1578, 0.3723)
    assert got.percent() == "25.0% [15.8, 37.2]"


def test_accuracy_edge_cases() -> None:
    assert math.isnan(accuracy(0, 0).rate)
    with pytest.raises(ValueError):
        accuracy(3, 2)


def test_mcnemar_exact_known_values() -> None:
    a = [True] * 10 + [False] * 2 + [True] * 5
    b = [False] * 10 + [True] * 2 + [True] * 5
    # 10 vs 2 discordant: 2 * P(X <= 2 | Bin(12, .5)) = 2 * 79 / 4096
    assert mcnemar_exact(a, b) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact(b, a) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_exact([True, False], [True, False]) == 1.0
    # 1 vs 0 discordant: p = 1.0
    assert mcnemar_exact([True], [False]) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_paired_bootstrap() -> None:
    a = [False] * 50 + [True] * 50
    b = [True] * 40 + [False] * 10 + [True] * 50  # B fixes 40 of A's 50 misses
    diff, low, high, p = paired_bootstrap(a, b, resamples=2000, seed=1)
    assert diff == pytest.approx(0.4)
    assert 0.25 < low < 0.4 < high < 0.55
    assert p < 0.01
    same = paired_bootstrap(a, a)
    assert same == (0.0, 0.0, 0.0, 1.0)
    # Deterministic for a seed.
    assert paired_bootstrap(a, b, resamples=500, seed=3) == paired_bootstrap(
        a, b, resamples=500, seed=3
    )


def test_compare_paired() -> None:
    a = [True, True, False, False, True]
    b = [True, False, True, True, True]
    cmp = compare_paired(a, b, resamples=500)
    assert (cmp.n, cmp.a_only, cmp.b_only) == (5, 1, 2)
    assert cmp.difference == pytest.approx(0.2)
    assert cmp.p_mcnemar == pytest.approx(1.0)


def test_mean_sd() -> None:
    m = mean_sd([0.2, 0.3, 0.25])
    assert m.mean == pytest.approx(0.25) and m.sd == pytest.approx(0.05)
    assert m.format() == "25.00 ± 5.00"
    assert mean_sd([0.4]).sd == 0.0
    assert math.isnan(mean_sd([]).mean)
