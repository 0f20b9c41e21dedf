"""The teacher's diagnostic codes: registered, documented, and each exercised by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsl.lang.codes import CODES

TEACHER_RUN_CODES = [code for code in CODES if "KVS510" <= code <= "KVS518"]
# Trace files and `kvsl traces import` (KVS519-KVS524).
TRACE_FILE_CODES = [code for code in CODES if "KVS519" <= code <= "KVS524"]
# Hostile teacher servers (KVS534-KVS539) and the environment's proxy (KVS529).
HOSTILE_SERVER_CODES = [code for code in CODES if "KVS534" <= code <= "KVS539" or code == "KVS529"]
TESTS = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py")
                if p.name != Path(__file__).name)


def test_the_teacher_codes_are_registered() -> None:
    assert [f"KVS51{i}" for i in range(9)] == TEACHER_RUN_CODES


@pytest.mark.parametrize("code", TEACHER_RUN_CODES + TRACE_FILE_CODES + HOSTILE_SERVER_CODES)
def test_every_teacher_code_is_documented_and_produced_by_a_test(code: str) -> None:
    entry = CODES[code]
    assert entry.title[0].islower() and not entry.title.endswith(".")
    assert entry.explanation.strip() and entry.bad != entry.good
    assert f'"{code}"' in TESTS, f"no test asserts that {code} is reported"
