"""Plain helpers for the teacher's tests (importable by name: conftest modules are not)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kvsl.lang.plan import Plan

# A recognisable fake key: no test output or file may ever contain it.
FAKE_KEY = "sk-kvsl-FAKE-KEY-0123456789abcdef-LEAKCHECK"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def plain_questions(n: int) -> list[dict]:
    """`n` plain arithmetic questions with ids q1..qn; question k has answer 2k."""
    return [
        {"id": f"q{k}", "question": f"What is {k} + {k}? [q{k}]", "answer": str(2 * k)}
        for k in range(1, n + 1)
    ]


MakePlan = Callable[..., Plan]


