"""docs/teacher.md's "From Python" block, run as written (only the server is a stub: the
base URL comes from `OPENAI_BASE_URL`, the third source the page names)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from teacher_stub import Reply, StubServer, trace_reply

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [("Tom has 3 apples and buys 4 more. How many apples does he have?", "7"),
             ("A box holds 6 eggs. How many eggs are in 2 boxes?", "12"),
             ("Ana had 10 coins and spent 4. How many coins are left?", "6")]  # fmt: skip


def answer_the_asked_question(prompt: str) -> Reply:
    # The built-in templates show a worked example first: the question asked is the last one.
    return trace_reply(re.findall(r"^Correct answer:\s*(.+?)\s*$", prompt, re.M)[-1])


def test_the_teacher_page_python_example_runs(
    stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    text = (ROOT / "docs" / "teacher.md").read_text(encoding="utf-8")
    block = re.search(r"^## From Python\n.*?^```python\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/teacher.md has no Python example"
    shutil.copytree(ROOT / "specs", tmp_path / "specs", ignore=shutil.ignore_patterns("vectors"))
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text(
        "".join(json.dumps({"question": q, "answer": f"So #### {a}"}) + "\n" for q, a in QUESTIONS)
    )
    stub.responder = answer_the_asked_question
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    monkeypatch.chdir(tmp_path)
    exec(block.group(1), {})
    # report.written, report.skip_reasons, report.usage.total_tokens (the stub: 120 a reply)
    assert capsys.readouterr().out == "3 {} 360\n"
    assert stub.count() == 3
    shipped = (ROOT / "specs" / "traces" / "step_by_step.jsonl").read_text(encoding="utf-8")
    grown = (tmp_path / "specs" / "traces" / "step_by_step.jsonl").read_text(encoding="utf-8")
    assert grown.startswith(shipped) and grown.count("\n") == shipped.count("\n") + 3
