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


def demo_spec(
    folder: Path,
    base_url: str,
    *,
    questions: int = 3,
    template: str = "Question: {{ question }}\nCorrect answer: {{ answer }}\n",
) -> tuple[Path, Path]:
    """`folder/demo.kvs` asking the teacher at `base_url` about `questions` plain questions
    (`folder/q.jsonl`); returns the spec and the trace file it fills."""
    write_jsonl(folder / "q.jsonl", plain_questions(questions))
    spec = folder / "demo.kvs"
    spec.write_text(
        'style "demo" {\n  description = "Short steps."\n  teacher {\n    model = "m"\n'
        f'    template = """{template}"""\n'
        '    traces = "traces/demo.jsonl"\n    questions = "q.jsonl"\n'
        f'    base_url = "{base_url}"\n  }}\n  contrast {{ pairs = 2  shots = 1 }}\n}}\n',
        encoding="utf-8",
    )
    return spec, folder / "traces" / "demo.jsonl"


MakePlan = Callable[..., Plan]


