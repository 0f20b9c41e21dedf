"""Ctrl-C in the middle of `kvsl eval`: a real subprocess, a real SIGINT. It stops at once
(exit 130), the answers finished before it are in the per-example cache, and a rerun
generates only the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from interrupting import interrupt_when_ready

QUESTIONS = 8
TOKENS = 200  # every answer this long (`--min-new-tokens`): the run lasts seconds



def _arc(path: Path) -> Path:
    rows = [
        {"id": f"q{i}", "question": {"stem": f"Which colour is item {i}?", "choices": [
            {"text": "red", "label": "A"}, {"text": "blue", "label": "B"}]}, "answerKey": "A"}
        for i in range(QUESTIONS)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_sigint_mid_eval_stops_promptly_keeps_the_answers_and_the_rerun_resumes(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [sys.executable, "-m", "kvsl", "eval", "--model", str(model_dir), "--benchmark", "arc",
            "--data", str(_arc(tmp_path / "arc.jsonl")), "--methods", "plain", "--batch-size", "2",
            "--max-new-tokens", str(TOKENS), "--min-new-tokens", str(TOKENS), "--threads", "1",
            "--forced-choice", "overlap", "--out", str(out)]  # fmt: skip
    results = out / "results.jsonl"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[int] = []  # answers saved at each look; the last one is before the signal

    def ready() -> bool:
        seen.append(len(_lines(results)))
        return seen[-1] >= 2

    _, err, stopped_in = interrupt_when_ready(process, ready, wait=120)
    saved_before = seen[-1]
    assert process.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    assert stopped_in < 5.0  # a step of the tiny model is milliseconds: "at once"
    kept = [json.loads(line) for line in _lines(results)]  # every line whole
    assert saved_before <= len(kept) < QUESTIONS
    assert all(r["tokens"] == TOKENS for r in kept)

    rerun = subprocess.run([*args, "--format", "json"], capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert json.loads(rerun.stdout)["generated_now"] == QUESTIONS - len(kept)
    assert len(_lines(results)) == QUESTIONS
