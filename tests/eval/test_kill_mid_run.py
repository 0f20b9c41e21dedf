"""SIGKILL in the middle of `kvsl eval` and `kvsl build` (no handler runs, nothing is
flushed): nothing half-written is ever read as valid, and a rerun ends where an
uninterrupted run ends, with the same answers and the same vectors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny_models

ROOT = Path(__file__).resolve().parents[2]
N = 40  # questions: enough that a kill lands while answers are still being written



def _kvsl(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "kvsl", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode(errors="replace")


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _answers(out: Path) -> dict[str, str]:
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {r["key"]: r["response"] for r in records}


def test_sigkill_mid_eval_then_rerun_gives_the_uninterrupted_answers(
    model_dir: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question": f"What is {k} plus {k}?", "answer": f"#### {2 * k}"}) + "\n"
            for k in range(N)
        )
    )
    common = ["eval", "--model", str(model_dir), "--benchmark", "gsm8k", "--data", str(questions),
              "--methods", "plain,cot", "--max-new-tokens", "24", "--batch-size", "1",
              "--device", "cpu"]  # fmt: skip
    _finish(_kvsl(*common, "--out", str(tmp_path / "whole")))

    out = tmp_path / "killed"
    process = _kvsl(*common, "--out", str(out))
    try:
        deadline = time.monotonic() + 120
        while _lines(out / "results.jsonl") < 5:
            assert process.poll() is None, "the eval ended before it could be killed"
            assert time.monotonic() < deadline, "no answers within 120 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    kept = _lines(out / "results.jsonl")
    assert 5 <= kept < 2 * N  # killed mid-run, some answers on disk

    _finish(_kvsl(*common, "--out", str(out)))
    assert _answers(out) == _answers(tmp_path / "whole")


@pytest.mark.parametrize("after", [1.0, 3.5, 5.0])
def test_sigkill_during_build_never_leaves_a_bad_artifact(
    model_dir: Path, tmp_path: Path, after: float
) -> None:
    """Killed at some point of `kvsl build` (loading, extracting or writing): the folder
    holds the finished artifact or none, and the next build gives the same vectors as an
    uninterrupted one."""
    from safetensors.torch import load_file

    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in tiny_models.TINY_TRACES), encoding="utf-8"
    )
    spec = tmp_path / "tiny.kvs"
    spec.write_text(tiny_models.tiny_spec(model_dir, pairs=8), encoding="utf-8")
    whole, out = tmp_path / "whole", tmp_path / "killed"
    _finish(_kvsl("build", str(spec), "--out", str(whole), "--quiet", "--device", "cpu"))

    process = _kvsl("build", str(spec), "--out", str(out), "--quiet", "--device", "cpu")
    time.sleep(after)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    artifacts = sorted(out.glob("*.safetensors")) if out.exists() else []
    for artifact in artifacts:  # whatever is there under the artifact's name is whole
        load_file(str(artifact))

    _finish(_kvsl("build", str(spec), "--out", str(out), "--quiet", "--device", "cpu"))
    (reference,) = sorted(whole.glob("*.safetensors"))
    (rebuilt,) = sorted(out.glob("*.safetensors"))
    assert rebuilt.name == reference.name
    a, b = load_file(str(reference)), load_file(str(rebuilt))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
