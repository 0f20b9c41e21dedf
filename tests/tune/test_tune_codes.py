"""The tune diagnostic codes: registered, documented, and each produced by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsl.lang.codes import CODES

TUNE_CODES = [code for code in CODES if code.startswith("KVS7")]
TESTS = "".join(
    p.read_text(encoding="utf-8")
    for p in Path(__file__).parent.glob("test_*.py")
    if p.name != Path(__file__).name
)


def test_tune_codes_are_registered() -> None:
    assert [f"KVS70{i}" for i in range(7)] == TUNE_CODES


@pytest.mark.parametrize("code", TUNE_CODES)
def test_every_tune_code_is_documented_and_produced_by_a_test(code: str) -> None:
    entry = CODES[code]
    assert entry.title[0].islower() and not entry.title.endswith(".")
    assert entry.explanation.strip() and entry.bad != entry.good
    assert f'"{code}"' in TESTS, f"no test asserts that {code} is reported"
    assert code in (Path(__file__).parents[2] / "docs" / "tune.md").read_text(encoding="utf-8")


def test_doctests() -> None:
    import doctest

    import kvsl.tune.grid
    import kvsl.tune.search

    for module in (kvsl.tune.grid, kvsl.tune.search):
        failures, tried = doctest.testmod(module)
        assert failures == 0 and tried > 0, module.__name__
