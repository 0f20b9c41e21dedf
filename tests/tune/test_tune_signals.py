"""SIGINT and SIGTERM in the middle of `kvsl tune --write`, at chosen file operations
(tests/support/killing.py), so the same moment is hit on any machine.

A SIGTERM (a job scheduler's stop, `kill PID`) is handled as Ctrl-C is: exit 143 instead of
130, the line saying how to resume, no traceback, no temporary file left. Ctrl-C while
answering, then SIGTERM in the rerun right before the tuned spec replaces the old one:
the spec keeps its old text, the cache has every answer once, and a third run writes
nothing new and ends with the uninterrupted run's spec and report.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from killing import killed_before_operation
from tune_support import DEV, save_tune_model, write_spec
from typer.testing import CliRunner

from kvsl.cli import app

FLAGS = ["--values", "0,4", "--repetition-penalties", "1", "--shots", "1",
         "--max-new-tokens", "4", "--start", "2", "--batch-size", "4", "--device", "cpu",
         "--threads", "1", "--json", "--write"]  # fmt: skip
SAME = ("chosen", "settings", "trials", "rungs", "fallbacks", "dev", "style", "written")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tune_model(tmp_path_factory.mktemp("tune-signal-model"))


def _args(spec: Path) -> list[str]:
    return ["tune", str(spec), "--dev", str(DEV), "--out", str(spec.parent / "out"), *FLAGS]


def _tune(spec: Path) -> dict:
    """`kvsl tune` run to its end, in this process."""
    result = CliRunner().invoke(app, _args(spec), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _stopped(done: subprocess.CompletedProcess[bytes], code: int, says: str) -> None:
    err = done.stderr.decode(errors="replace")
    assert done.returncode == code, err
    assert "Traceback" not in err and says in err.splitlines()[-1], err


def _keys(results: Path) -> list[str]:
    """The answers' keys; every line of the cache whole."""
    return [json.loads(line)["key"] for line in results.read_text(encoding="utf-8").splitlines()]


def _whole_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], "the stop left temporary files"
    for path in folder.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for path in folder.rglob("*.png"):
        assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{path} is cut short"


def test_sigint_while_answering_then_sigterm_before_the_spec_is_written(
    model_dir: Path, tmp_path: Path
) -> None:
    whole_spec = write_spec(tmp_path / "whole", model_dir)
    whole = _tune(whole_spec)
    total = whole["generated_now"]
    assert whole["written"] and total >= 8
    spec = write_spec(tmp_path / "stopped", model_dir)
    old = spec.read_text(encoding="utf-8")
    results = spec.parent / "out" / "results.jsonl"

    # 1. Ctrl-C while answering: before the 7th opening of the results cache.
    done = killed_before_operation(7, results, ["-m", "kvsl", *_args(spec)], cwd=spec.parent,
                                   events=("open",), sig="SIGINT")  # fmt: skip
    _stopped(done, 130, f"interrupted: answers so far are saved in {results}")
    saved = _keys(results)
    assert 1 <= len(saved) < total
    _whole_files(spec.parent)

    # 2. SIGTERM in the rerun, right before the tuned spec replaces the old text (the
    # reports are written by then).
    done = killed_before_operation(1, spec, ["-m", "kvsl", *_args(spec)], cwd=spec.parent,
                                   events=("os.rename",), sig="SIGTERM")  # fmt: skip
    _stopped(done, 143, "interrupted (SIGTERM): answers so far are saved in")
    assert spec.read_text(encoding="utf-8") == old
    keys = _keys(results)
    assert len(keys) == len(set(keys)) == total  # the rest answered, nothing twice
    assert keys[: len(saved)] == saved
    _whole_files(spec.parent)

    # 3. The last run generates nothing and ends as the uninterrupted one did.
    again = _tune(spec)
    assert again["generated_now"] == 0
    assert {k: again[k] for k in SAME} == {k: whole[k] for k in SAME}
    assert spec.read_text(encoding="utf-8") == whole_spec.read_text(encoding="utf-8") != old
    _whole_files(spec.parent)
