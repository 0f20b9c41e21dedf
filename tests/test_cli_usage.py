"""What the command-line parser refuses is a coded diagnostic (KVS318, exit 2), for every
command: an unknown option, a value of the wrong type, a choice not offered, a missing
argument. Never Typer's own error box, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from kvsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _commands() -> list[list[str]]:
    """Every leaf command's words, e.g. ["check"], ["traces", "import"]."""
    found: list[list[str]] = []

    def walk(command, words: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*words, name])
        else:
            found.append(words)

    walk(typer.main.get_command(app), [])
    return found


def _refused(result, code: str = "KVS318") -> None:
    assert result.exit_code == 2, result.output
    assert f"error[{code}]" in result.output
    assert "Traceback" not in result.output and "╭" not in result.output


def test_every_command_answers_an_unknown_option_with_kvs318() -> None:
    commands = _commands()
    assert len(commands) >= 12 and ["check"] in commands and ["traces", "import"] in commands
    for words in commands:
        result = runner.invoke(app, [*words, "--no-such-option-here"])
        _refused(result)
        assert f"kvsl {' '.join(words)} --help" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--limit", "abc"],  # not an integer
        ["check", "--format", "xml", "specs"],  # a choice not offered
        ["run", "specs/step_by_step.kvs", "--max-new-tokens", "many", "-p", "Why?"],
        ["tune", "specs/step_by_step.kvs", "--dev"],  # an option without its value
        ["build"],  # a missing argument
        ["serve", "--port", "http"],
        ["--no-such-option"],
    ],
)
def test_parse_errors_are_kvs318(args: list[str]) -> None:
    _refused(runner.invoke(app, args))


def test_a_precision_not_offered_is_kvs314_as_the_registry_says() -> None:
    _refused(runner.invoke(app, ["build", "specs/step_by_step.kvs", "--precision", "fp16"]), "KVS314")


def test_exit_codes_and_help_are_unchanged(tmp_path: Path) -> None:
    assert runner.invoke(app, ["check", "--help"]).exit_code == 0
    assert runner.invoke(app, ["check", str(ROOT / "specs")]).exit_code == 0
    broken = tmp_path / "broken.kvs"
    broken.write_text('style "x" {\n', encoding="utf-8")
    assert runner.invoke(app, ["check", str(broken)]).exit_code == 1
    assert runner.invoke(app, ["explain", "KVS999"]).exit_code == 2  # a KvslError's own code
    bare = runner.invoke(app, [])
    assert "Usage" in bare.output and "KVS318" not in bare.output


def test_the_installed_entry_point_reports_kvs318() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kvsl", "eval", "--limit", "abc"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "error[KVS318]" in done.stderr and "Traceback" not in done.stderr
