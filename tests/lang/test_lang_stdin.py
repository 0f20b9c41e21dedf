"""`kvsl check -`, `kvsl fmt -` and `kvsl plan -`: a spec read from standard input, named `<stdin>`.

CI checks a staged spec without writing it out: `git show :specs/x.kvs | kvsl check -`.
Its diagnostics name `<stdin>` with line:col, its relative paths start in the current
folder, and every bad input (empty, not UTF-8, binary, too large, unreadable) is a coded
diagnostic, never a traceback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lang_support import ROOT, TRACE, VALID, check_in_a_fresh_process, write_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.cli.check_fast import fast_check
from kvsl.lang import check_paths
from kvsl.lang.reading import MAX_SPEC_BYTES, read_stdin

runner = CliRunner()
BROKEN = VALID.replace("pairs = 4", "pairz = 4")
MESSY = 'style "x" {description="d"}\n'
TIDY = 'style "x" {\n  description = "d"\n}\n'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in an empty folder with `traces.jsonl`: a relative path in a stdin
    spec starts here, and a file called `-` would show up here."""
    (tmp_path / "traces.jsonl").write_text(TRACE * 5, encoding="utf-8")
    monkeypatch.chdir(tmp_path)


def invoke(args: list[str], stdin: bytes | str):
    return runner.invoke(app, args, input=stdin)


def _no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


# --- check -------------------------------------------------------------------------------


def test_check_names_stdin_with_line_and_column_and_shows_the_line() -> None:
    result = invoke(["check", "-"], BROKEN)
    assert result.exit_code == 1, result.output
    assert "error[KVS104]: unknown key `pairz` in `contrast`\n --> <stdin>:5:5\n" in result.output
    assert "5 |     pairz = 4\n  |     ^^^^^\n" in result.output  # the snippet, from memory
    assert result.output.rstrip().endswith("in 1 file")


def test_a_clean_spec_on_stdin_passes() -> None:
    result = invoke(["check", "-"], VALID)
    assert (result.exit_code, result.output) == (0, "all checks passed (1 file)\n")


def test_stdin_checks_beside_files_and_counts_once(tmp_path: Path) -> None:
    other = write_spec(tmp_path / "sub", VALID.replace('"tiny"', '"other"'))
    result = invoke(["check", "-", str(other), "-"], VALID)
    assert (result.exit_code, result.output) == (0, "all checks passed (2 files)\n")
    clash = invoke(["check", "-", str(other)], VALID.replace('"tiny"', '"other"'))
    assert clash.exit_code == 1 and "error[KVS119]: duplicate style name `other`" in clash.output


def test_relative_paths_start_in_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = VALID.replace("  contrast {", '  teacher {\n    model = "m"\n    template = "t.j2"\n  }\n  contrast {')
    (tmp_path / "t.j2").write_text("{{ question }}", encoding="utf-8")
    assert invoke(["check", "-"], spec).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke(["check", "-"], spec)
    assert result.exit_code == 1 and "error[KVS200]: template file `t.j2` does not exist" in result.output
    assert "relative to the current folder (the spec is on standard input): t.j2" in result.output


def test_extends_from_stdin_starts_in_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "base.kvs").write_text(VALID.replace('style "tiny"', 'base "b"'), encoding="utf-8")
    child = 'style "child" {\n  extends = "base.kvs"\n  description = "c"\n}\n'
    result = invoke(["check", "-"], child)
    assert result.exit_code == 0, result.output
    missing = invoke(["check", "-"], child.replace("base.kvs", "gone.kvs"))
    assert missing.exit_code == 1 and "error[KVS117]" in missing.output
    assert "relative to the current folder (the spec is on standard input): gone.kvs" in missing.output


@pytest.mark.parametrize("format", ["json", "github", "sarif"])
def test_machine_formats_name_stdin(format: str) -> None:
    result = invoke(["check", "--format", format, "-"], BROKEN)
    assert result.exit_code == 1
    if format == "json":
        found = next(d for d in json.loads(result.output) if d["code"] == "KVS104")
        assert (found["path"], found["line"], found["column"]) == ("<stdin>", 5, 5)
    elif format == "github":
        assert "::error file=<stdin>,line=5,col=5,endLine=5,endColumn=10,title=KVS104::" in result.output
    else:  # a SARIF uri is a URI reference: `<` and `>` percent-encoded
        results = json.loads(result.output)["runs"][0]["results"]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
        assert uris == {"%3Cstdin%3E"}


def test_fast_path_reads_stdin_like_typer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Stdin:
        buffer = io.BytesIO(BROKEN.encode())

    monkeypatch.setattr(sys, "stdin", Stdin())
    code = fast_check(["-"])
    fast = capsys.readouterr().out
    typer = invoke(["check", "-"], BROKEN)
    assert (code, fast) == (typer.exit_code, typer.output)


def test_a_real_pipe_through_main_imports_nothing_heavy() -> None:
    """`git show :x.kvs | kvsl check -`: the fast path of `main()`, with a real pipe."""
    done = check_in_a_fresh_process("-", stdin=BROKEN)
    assert "HEAVY [] 1" in done.stdout, done.stdout + done.stderr
    assert " --> <stdin>:5:5" in done.stdout and "Traceback" not in done.stderr


# --- what cannot be a spec ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "status", "where"),
    [
        (b"", "KVS022", 2, "<stdin>:1:1"),
        (b'style "x" {\n  description = "caf\xe9"\n}\n', "KVS003", 1, "<stdin>:2:21"),
        (b'style "x" {\x00}', "KVS004", 1, "<stdin>:1:12"),
        (b" " * (MAX_SPEC_BYTES + 1), "KVS005", 1, "<stdin>:1:1"),
    ],
    ids=["empty", "latin-1", "binary", "too-large"],
)
@pytest.mark.parametrize(
    "command", [["check", "-"], ["fmt", "-"], ["fmt", "--check", "-"], ["plan", "-"]]
)
def test_bad_stdin_is_a_coded_diagnostic(command: list[str], data: bytes, code: str, status: int, where: str) -> None:
    result = invoke(command, data)
    _no_traceback(result)
    assert result.exit_code == status, result.output
    assert f"error[{code}]" in result.output and f" --> {where}\n" in result.output
    assert not Path("-").exists()


def test_too_large_stops_reading_at_the_limit() -> None:
    stream = io.BytesIO(b"#" * (10 * MAX_SPEC_BYTES))
    source, diagnostics = read_stdin(stream)
    assert source is None and [d.code for d in diagnostics] == ["KVS005"]
    assert stream.tell() == MAX_SPEC_BYTES + 1


class _Broken(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        raise OSError(5, "Input/output error")


@pytest.mark.parametrize(("stream", "says"), [(None, "there is none to read"),
                                              (_Broken(), "input/output error")])
def test_unreadable_stdin_is_kvs001(stream, says: str) -> None:
    diagnostics = check_paths(["-"], read_stdin(stream))
    assert [(d.code, d.span.path) for d in diagnostics] == [("KVS001", "<stdin>")]
    assert diagnostics[0].message == f"cannot read standard input: {says}"


# --- plan --------------------------------------------------------------------------------


def test_plan_of_stdin_is_the_plan_of_the_same_file(tmp_path: Path) -> None:
    """`kvsl plan -` lowers the spec on stdin as `kvsl plan FILE` does, relative paths
    from the current folder, and prints nothing on stdout for a broken one."""
    spec = tmp_path / "same.kvs"
    spec.write_text(VALID, encoding="utf-8")
    piped = invoke(["plan", "-"], VALID.encode())
    named = runner.invoke(app, ["plan", str(spec)])
    assert piped.exit_code == named.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["plan_hash"] == json.loads(named.stdout)["plan_hash"]
    broken = invoke(["plan", "-"], BROKEN.encode())
    _no_traceback(broken)
    assert broken.exit_code == 1 and broken.stdout == ""
    assert "error[KVS104]" in broken.stderr and " --> <stdin>:" in broken.stderr
    assert not Path("-").exists()


def test_an_empty_spec_path_is_not_the_current_folder() -> None:
    result = invoke(["plan", ""], b"")
    _no_traceback(result)
    assert result.exit_code == 2 and "the spec's path is empty" in result.output, result.output


@pytest.mark.parametrize("command", [["build", "-"], ["teach", "-"], ["run", "-", "--prompt", "hi"]])
def test_commands_that_do_not_read_stdin_say_which_do(command: list[str]) -> None:
    result = invoke(command, VALID.encode())
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    assert "does not read a spec from standard input" in result.output
    assert "`kvsl plan -`" in result.output and not Path("-").exists()


# --- fmt ---------------------------------------------------------------------------------


def test_fmt_prints_the_formatted_spec_and_nothing_else() -> None:
    result = invoke(["fmt", "-"], MESSY)
    assert (result.exit_code, result.stdout, result.stderr) == (0, TIDY, "")
    assert not Path("-").exists()
    unchanged = invoke(["fmt", "-"], TIDY)
    assert (unchanged.exit_code, unchanged.stdout) == (0, TIDY)


def test_fmt_check_exits_1_when_stdin_would_change() -> None:
    result = invoke(["fmt", "--check", "-"], MESSY)
    assert result.exit_code == 1
    assert result.stdout == "would reformat <stdin>\n1 file would be reformatted\n"
    tidy = invoke(["fmt", "--check", "-"], TIDY)
    assert (tidy.exit_code, tidy.stdout) == (0, "1 file already formatted\n")


def test_fmt_of_a_broken_spec_prints_no_spec() -> None:
    result = invoke(["fmt", "-"], 'style "x" {description=}\n')
    assert result.exit_code == 1 and result.stdout == ""
    assert "error[KVS017]" in result.stderr and " --> <stdin>:1:24" in result.stderr
    assert "1 | style \"x\" {description=}" in result.stderr


def test_fmt_stdin_beside_files_reports_on_stderr(tmp_path: Path) -> None:
    messy = write_spec(tmp_path / "sub", MESSY, "messy.kvs")
    result = invoke(["fmt", "-", str(messy)], MESSY)
    assert result.exit_code == 0 and result.stdout == TIDY
    assert result.stderr == f"reformatted {messy}\n1 file reformatted\n"
    assert messy.read_text(encoding="utf-8") == TIDY


def _waiting_on_stdin(pid: int) -> bool:
    """Whether process `pid` is blocked in read(0, ...) (Linux: /proc/PID/syscall)."""
    read = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return read is not None and fields[:2] == [read, "0x0"]


@pytest.mark.skipif(
    not Path("/proc/self/syscall").exists() or os.uname().machine not in ("x86_64", "aarch64"),
    reason="needs Linux's /proc/PID/syscall",
)
@pytest.mark.parametrize("command", ["check", "fmt"])
def test_ctrl_c_while_waiting_for_stdin_exits_130_without_a_traceback(command: str) -> None:
    """`kvsl check -` typed at a terminal waits for the spec; Ctrl-C ended it in a traceback."""
    import signal
    import time

    child = subprocess.Popen(
        [sys.executable, "-m", "kvsl", command, "-"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while not _waiting_on_stdin(child.pid):
            assert child.poll() is None and time.monotonic() < deadline, "never read stdin"
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130 and err == "interrupted\n", err
