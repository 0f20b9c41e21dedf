"""`kvsl teach` on an installed built-in spec: dry runs work, writing is refused (KVS518)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kvsl.base import locations
from kvsl.cli import app
from kvsl.lang.diagnostics import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def _packaged_copy(tmp_path: Path, monkeypatch) -> Path:
    """The checkout's specs and templates laid out as an installed wheel's package data."""
    import shutil

    packaged = tmp_path / "site" / "kvsl" / "_builtin"
    shutil.copytree(ROOT / "specs", packaged / "specs", ignore=shutil.ignore_patterns(".kvsl"))
    shutil.copytree(ROOT / "templates", packaged / "templates")
    monkeypatch.setattr(locations, "PACKAGED_DIR", packaged)
    return packaged


def test_teach_refuses_to_write_into_an_installed_spec(tmp_path, monkeypatch) -> None:
    packaged = _packaged_copy(tmp_path, monkeypatch)
    traces = packaged / "specs" / "traces" / "step_by_step.jsonl"
    before = traces.read_bytes()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["teach", "step-by-step", "--questions", "q.jsonl"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "KVS518" in result.output and "Traceback" not in result.output
    assert traces.read_bytes() == before


def test_teach_dry_run_works_on_an_installed_spec(tmp_path, monkeypatch) -> None:
    _packaged_copy(tmp_path, monkeypatch)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "What is 2 + 2?", "answer": "4"}) + "\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["teach", "step-by-step", "--questions", str(questions), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "What is 2 + 2?" in result.output
