"""SIGTERM and SIGINT in the middle of `kvsl eval --sweep` and `kvsl build`, at chosen file
operations (tests/support/killing.py), so the same moment is hit on any machine.

A SIGTERM (a job scheduler's stop, `kill PID`) is handled as Ctrl-C is: exit 143 instead of
130, the line saying how to resume, no traceback, no temporary file left (left to its
default it ended the process with -15, silent, a temporary file beside the artifact). The
rerun generates only what is missing and ends with the uninterrupted run's answers,
report and vectors.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from killing import killed_before_operation
from tiny_models import TINY_TRACES
from typer.testing import CliRunner

from kvsl.cli import app

ARC = Path(__file__).parent / "fixtures" / "arc.jsonl"


def _spec(folder: Path, model_dir: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "traces.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in TINY_TRACES[:6]), encoding="utf-8"
    )
    spec = folder / "tiny.kvs"
    spec.write_text(
        f'style "tiny" {{\n  description = "tiny"\n  model = "{model_dir}"\n'
        '  contrast {\n    traces = "traces.jsonl"\n    pairs = 3\n    shots = 1\n  }\n'
        "  steer {\n    layers = [1..]\n    value = 4\n  }\n}\n",
        encoding="utf-8",
    )
    return spec


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _stopped(done: subprocess.CompletedProcess[bytes], code: int, says: str) -> None:
    err = done.stderr.decode(errors="replace")
    assert done.returncode == code, err
    assert "Traceback" not in err and says in err.splitlines()[-1], err


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


def test_sigterm_mid_sweep_then_the_rerun_answers_the_rest_once(
    model_dir: Path, tmp_path: Path
) -> None:
    def args(spec: Path) -> list[str]:
        return ["eval", str(spec), "--benchmark", "arc", "--dev", str(ARC), "--sweep", "value=0,4",
                "--max-new-tokens", "3", "--batch-size", "1", "--threads", "1", "--device", "cpu",
                "--out", str(spec.parent / "out")]  # fmt: skip

    whole = _spec(tmp_path / "whole", model_dir)
    _invoke(args(whole))
    spec = _spec(tmp_path / "stopped", model_dir)
    results = spec.parent / "out" / "results.jsonl"
    done = killed_before_operation(5, results, ["-m", "kvsl", *args(spec)], cwd=tmp_path,
                                   events=("open",), sig="SIGTERM")  # fmt: skip
    _stopped(done, 143, f"interrupted (SIGTERM): answers so far are saved in {results}")
    saved = results.read_text(encoding="utf-8").splitlines()
    answers = [json.loads(line) for line in saved]  # every line whole
    assert 1 <= len(answers) < 10
    assert not list((spec.parent / "out").glob("sweep-*"))
    _no_temporaries(spec.parent)

    _invoke(args(spec))
    lines = results.read_text(encoding="utf-8").splitlines()
    assert lines[: len(saved)] == saved and len(lines) == 10  # 5 questions × 2 values, once

    def answered(folder: Path) -> dict[str, str]:
        rows = [json.loads(x) for x in (folder / "out" / "results.jsonl").read_text().splitlines()]
        return {r["key"]: r["response"] for r in rows}

    def points(folder: Path) -> dict:
        (report,) = (folder / "out").glob("sweep-*.json")
        return json.loads(report.read_text(encoding="utf-8"))["sweeps"]

    assert answered(spec.parent) == answered(whole.parent)
    assert points(spec.parent) == points(whole.parent)
    _no_temporaries(spec.parent)


@pytest.mark.parametrize(
    ("sig", "code", "event"),
    [("SIGTERM", 143, "os.rename"), ("SIGINT", 130, "tempfile.mkstemp")],
)
def test_a_build_stopped_by_a_signal_leaves_no_artifact_and_rebuilds_the_same(
    model_dir: Path, tmp_path: Path, sig: str, code: int, event: str
) -> None:
    """Stopped as the extracted vectors are being written (before the temporary file is
    created, or before it is renamed to the artifact's name)."""
    from safetensors.torch import load_file

    whole = _spec(tmp_path / "whole", model_dir)
    (reference,) = _invoke(["build", str(whole), "--quiet", "--device", "cpu"]).split()
    spec = _spec(tmp_path / "stopped", model_dir)
    artifacts = spec.parent / ".kvsl" / "artifacts"
    done = killed_before_operation(
        1, artifacts, ["-m", "kvsl", "build", str(spec), "--quiet", "--device", "cpu"],
        cwd=tmp_path, events=(event,), sig=sig,
    )  # fmt: skip
    how = " (SIGTERM)" if sig == "SIGTERM" else ""
    _stopped(done, code, f"interrupted{how}: no artifact is half-written; run again to build")
    assert list(artifacts.iterdir()) == []

    (rebuilt,) = _invoke(["build", str(spec), "--quiet", "--device", "cpu"]).split()
    assert Path(rebuilt).name == Path(reference).name
    a, b = load_file(reference), load_file(rebuilt)
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
