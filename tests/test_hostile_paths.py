"""Paths the operating system refuses, and file names it cannot print.

Classes (each was a traceback):
- a name longer than the file system allows (ENAMETOOLONG), given where any command takes
  a path: `pathlib.Path.exists()` raises it instead of answering False, so every command
  that first asked "does this exist?" (plan, build, inspect, run, teach, eval) and every
  `--out` folder crashed. Now KVS319 (exit 2) or the command's own `--out` code.
- a file name whose bytes are not UTF-8 (`bad\\xff.kvs`): Python holds it as a surrogate
  escape, and printing it to a strict UTF-8 stream raised UnicodeEncodeError after
  `kvsl fmt DIR` had rewritten the file. Now it prints backslash-escaped.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.cli.output import path_error
from kvsl.lang.diagnostics import ExitCode
from kvsl.lang.files import output_folder_problem

SPEC = """style "paths" {
  description = "a style whose model does not exist"
  model = "/nonexistent/model"
  contrast {
    traces = "traces.jsonl"
    pairs = 4
    shots = 1
  }
}
"""
LONG = "n" * 5000  # past NAME_MAX (255) on every common file system
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "s.kvs").write_text(SPEC)
    (tmp_path / "traces.jsonl").write_text('{"question": "q", "steps": ["s"], "answer": "a"}\n')
    (tmp_path / "g.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refused(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"{args[0]}: {result.exception!r}"
    )
    assert result.exit_code in (int(ExitCode.ERRORS), int(ExitCode.USAGE)), result.output
    assert "error[KVS" in result.output and "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize(
    "where",
    [LONG, f"{LONG}.kvs", f"sub/{LONG}/spec.kvs", f"{LONG}.safetensors"],
    ids=["bare", "spec", "folder", "artifact"],
)
@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["build"],
        ["inspect"],
        ["run", "--prompt", "hi"],
        ["teach", "--dry-run"],
        ["eval", "--data", "g.jsonl"],
        ["check"],
        ["fmt", "--check"],
    ],
    ids=lambda c: c[0],
)
def test_a_name_too_long_for_the_file_system_is_a_diagnostic(
    workspace: Path, command: list[str], where: str
) -> None:
    output = _refused([command[0], where, *command[1:]])
    assert "KVS319" in output or "no such file" in output.lower() or "not found" in output


@pytest.mark.parametrize(
    "args",
    [
        ["build", "s.kvs", "--out", LONG],
        ["eval", "s.kvs", "--data", "g.jsonl", "--out", LONG],
        ["tune", "s.kvs", "--dev", "g.jsonl", "--out", LONG],
        ["traces", "import", "traces.jsonl", "--out", f"{LONG}/t.jsonl"],
        ["run", "s.kvs", "--prompt-file", LONG],
        ["eval", "s.kvs", "--data", LONG],
    ],
    ids=["build-out", "eval-out", "tune-out", "traces-import-out", "prompt-file", "data"],
)
def test_a_name_too_long_in_an_option_is_a_diagnostic(workspace: Path, args: list[str]) -> None:
    _refused(args)
    written = {p.name for p in workspace.iterdir()} - {".kvsl"}  # eval's results-cache folder
    assert written == {"g.jsonl", "s.kvs", "traces.jsonl"}


def test_path_error_says_whose_fault_it_is() -> None:
    too_long = path_error(OSError(errno.ENAMETOOLONG, "File name too long", LONG))
    (diagnostic,) = too_long.diagnostics
    assert diagnostic.code == "KVS319" and too_long.exit_code == ExitCode.USAGE
    assert "5000 characters" in diagnostic.message and len(diagnostic.message) < 200
    denied = path_error(OSError(errno.EACCES, "Permission denied", "/root/x.kvs"))
    assert denied.exit_code == ExitCode.ENVIRONMENT and "`/root/x.kvs`" in denied.diagnostics[0].message


def test_output_folder_problem_reports_a_name_too_long(tmp_path: Path) -> None:
    assert output_folder_problem(tmp_path / LONG) == os.strerror(errno.ENAMETOOLONG)
    assert output_folder_problem(tmp_path / "ok" / "fine") is None


def test_file_names_that_are_not_utf8_print_escaped(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path / "d")
    os.makedirs(folder)
    unformatted = SPEC.replace('  description', '      description')
    with open(os.path.join(folder, b"bad\xff.kvs"), "w") as f:
        f.write(unformatted)
    with open(os.path.join(folder, b"err\xfe.kvs"), "w") as f:
        f.write('style "x" {\n  steer {\n    value = 1e999\n  }\n}\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict"}

    def kvsl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "kvsl", *args], capture_output=True, cwd=tmp_path, env=env, timeout=120
        )

    formatted = kvsl("fmt", "d")
    assert formatted.returncode == 0, formatted.stderr
    assert b"bad\\udcff.kvs" in formatted.stdout and b"Traceback" not in formatted.stderr
    assert kvsl("fmt", "--check", "d").returncode == 0  # the file was rewritten, and said so
    checked = kvsl("check", "d")
    assert checked.returncode == 1 and b"err\\udcfe.kvs:3:" in checked.stdout + checked.stderr
    assert b"Traceback" not in checked.stderr


@pytest.mark.parametrize("command", [["plan"], ["build"], ["teach"], ["run", "-p", "hi"]], ids=lambda c: c[0])
def test_a_link_that_loops_or_leads_nowhere_is_named_as_such(workspace: Path, command: list[str]) -> None:
    """Not "neither a file nor a built-in style" (KVS008): the name exists, as a link."""
    (workspace / "loop1.kvs").symlink_to("loop2.kvs")
    (workspace / "loop2.kvs").symlink_to("loop1.kvs")
    (workspace / "broken.kvs").symlink_to("nothing-here.kvs")
    for name, reason in (("loop1.kvs", "too many levels of symbolic links"), ("broken.kvs", "no such file")):
        output = _refused([command[0], name, *command[1:]])
        assert "neither a file nor a built-in style" not in output
        if command[0] == "run":
            assert "is a link to nothing (or to itself)" in output
        else:
            assert reason in output.lower(), output
