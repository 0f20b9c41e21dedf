"""The eval diagnostic codes: registered, documented, and each produced by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsl.lang.codes import CODES

EVAL_CODES = [code for code in CODES if code.startswith("KVS6")]
TESTS = "".join(
    p.read_text(encoding="utf-8")
    for p in Path(__file__).parent.glob("test_*.py")
    if p.name != Path(__file__).name
)


def test_eval_codes_are_registered() -> None:
    assert [f"KVS60{i}" for i in range(9)] + [f"KVS61{i}" for i in range(8)] + ["KVS620", "KVS621"] == EVAL_CODES


@pytest.mark.parametrize("code", EVAL_CODES)
def test_every_eval_code_is_documented_and_produced_by_a_test(code: str) -> None:
    entry = CODES[code]
    assert entry.title[0].islower() and not entry.title.endswith(".")
    assert entry.explanation.strip() and entry.bad != entry.good
    assert f'"{code}"' in TESTS, f"no test asserts that {code} is reported"
