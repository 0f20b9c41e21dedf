"""A trace file whose last line an interrupted append cut short: `kvsl teach` resumes.

`append_trace` writes a line and its newline in one fsynced write, but a SIGKILL, a full
disk or a power cut can still leave part of a line (a kill during a 200 MB append left
4 MB). That line used to stop every later run with KVS501 until the user edited the file.
Now a torn *last* line is cut off with a KVS527 warning and its question is asked again;
a dry run only says so; any other bad line still stops the run at its line.
"""

from __future__ import annotations

import json
from pathlib import Path

from teacher_support import FAKE_KEY, demo_spec
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.traces import load_traces

runner = CliRunner()


def _teach(spec: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["teach", str(spec), "--max-retries", "1", "--timeout", "5", *extra],
                         env={"OPENAI_API_KEY": FAKE_KEY})


def _tear(traces: Path) -> bytes:
    """Cut the last trace in the middle (no newline), as a killed append leaves it."""
    data = traces.read_bytes()
    lines = data.splitlines(keepends=True)
    torn = b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]
    traces.write_bytes(torn)
    return torn


def test_a_torn_last_line_is_cut_and_its_question_asked_again(tmp_path, stub) -> None:
    spec, traces = demo_spec(tmp_path, stub.url)
    first = _teach(spec)
    assert first.exit_code == 0, first.output
    assert len(load_traces(traces)) == 3
    torn = _tear(traces)

    dry = _teach(spec, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "warning[KVS527]" in dry.stderr and "a run will remove it" in dry.stderr
    assert f"{traces}:3:1" in dry.stderr  # at the torn line, not at 1:1
    assert "1 prompt rendered" in dry.stderr
    assert traces.read_bytes() == torn  # a dry run writes nothing

    again = _teach(spec)
    assert again.exit_code == 0, again.output
    assert "warning[KVS527]" in again.stderr and "line 3" in again.stderr
    assert "asked 1: wrote 1 trace," in again.stdout
    assert sorted(t.id for t in load_traces(traces)) == ["q1", "q2", "q3"]
    assert traces.read_bytes().endswith(b"\n")

    quiet = _teach(spec)
    assert quiet.exit_code == 0 and "KVS527" not in quiet.output + quiet.stderr
    assert "asked 0" in quiet.stdout


def test_a_complete_last_line_without_newline_is_kept(tmp_path, stub) -> None:
    """An editor may drop the final newline: that line is whole, not torn."""
    spec, traces = demo_spec(tmp_path, stub.url)
    assert _teach(spec).exit_code == 0
    traces.write_bytes(traces.read_bytes().rstrip(b"\n"))
    result = _teach(spec)
    assert result.exit_code == 0 and "KVS527" not in result.stderr
    assert "asked 0" in result.stdout and len(load_traces(traces)) == 3


def test_a_bad_line_that_is_not_the_last_still_stops_the_run(tmp_path, stub) -> None:
    spec, traces = demo_spec(tmp_path, stub.url)
    assert _teach(spec).exit_code == 0
    lines = traces.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0][:20]
    traces.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = traces.read_bytes()
    result = _teach(spec)
    assert result.exit_code == 1 and "KVS501" in result.stderr and "KVS527" not in result.stderr
    assert traces.read_bytes() == before  # nothing cut, nothing appended


def test_a_last_line_torn_inside_a_utf8_character_is_cut(tmp_path, stub) -> None:
    spec, traces = demo_spec(tmp_path, stub.url)
    assert _teach(spec).exit_code == 0
    record = json.dumps({"id": "x", "question": "é" * 10, "steps": ["s"], "answer": "1"},
                        ensure_ascii=False).encode("utf-8")
    cut = record[: record.index("é".encode()) + 1]  # half of a two-byte character
    traces.write_bytes(traces.read_bytes() + cut)
    result = _teach(spec)
    assert result.exit_code == 0, result.output
    assert "warning[KVS527]" in result.stderr and len(load_traces(traces)) == 3
