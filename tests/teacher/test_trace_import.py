"""The paper's released trace format (`query`, `steps`, `solution`): read directly by
`load_traces` and contrast pairs, and imported by `kvsl traces import`.

The fixture tests/fixtures/traces/paper_format.jsonl is written for these tests in the
paper's layout (it copies no released trace).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsl.cli import app
from kvsl.formats.trace_import import import_traces
from kvsl.formats.traces import load_traces
from kvsl.lang.diagnostics import KvslError

PAPER = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "paper_format.jsonl"


def test_the_papers_format_reads_unchanged():
    traces = load_traces(PAPER)
    assert len(traces) == 4
    first = traces[0]
    assert first.question.startswith("Question: Which tool") and first.answer == "B"
    assert first.id == "0" and first.extra["style_name"] == "form_1_stepwise"
    assert "query" not in first.extra and "solution" not in first.extra
    assert traces[2].id is None and traces[2].answer == "12"
    assert traces[3].question.startswith("keep soup warm")  # `question` with `solution`


def test_contrast_pairs_use_the_papers_file_directly(tmp_path):
    from tiny_models import make_plan

    from kvsl.engine.contrast import build_contrast_pairs, positive_demo

    plan = make_plan(PAPER, pairs=4, shots=3)
    pairs = build_contrast_pairs(plan)
    assert len(pairs) == 4
    demo = pairs[0].demos[0]
    assert pairs[0].positive[1].content == positive_demo(demo)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_records_are_reported_with_their_line_numbers(tmp_path):
    good = json.dumps({"query": "q?", "steps": ["s."], "solution": "a"})
    path = _write(
        tmp_path,
        [
            good,
            '{"query": "cut short", "steps": [',
            json.dumps({"query": "q2?", "steps": [], "solution": "a"}),
            json.dumps({"question": "x?", "query": "y?", "steps": ["s."], "solution": "a"}),
            json.dumps({"query": "q3?", "steps": ["s."]}),
        ],
    )
    with pytest.raises(KvslError) as caught:
        load_traces(path)
    found = [(d.code, d.span.line) for d in caught.value.diagnostics]
    assert found == [("KVS501", 2), ("KVS502", 3), ("KVS519", 4), ("KVS502", 5)]
    assert "`solution`" in caught.value.diagnostics[-1].message


def test_import_writes_kvsl_traces_with_ids(tmp_path):
    out = tmp_path / "out" / "imported.jsonl"
    result = import_traces([PAPER], out)
    assert result.written == 4 and not result.warnings
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [
        "paper_format-0", "paper_format-1", "paper_format-line3", "paper_format-line4",
    ]  # fmt: skip
    assert set(records[0]) >= {"id", "question", "steps", "answer", "style_name"}
    assert "query" not in records[0] and "solution" not in records[0]
    assert load_traces(out)[1].steps == load_traces(PAPER)[1].steps


def test_import_drops_repeated_questions_and_limits(tmp_path):
    result = import_traces([PAPER, PAPER], tmp_path / "a.jsonl")
    assert result.written == 4 and result.skipped_duplicates == 4
    assert [d.code for d in result.warnings] == ["KVS522"]
    assert import_traces([PAPER], tmp_path / "b.jsonl", limit=2).written == 2


def test_import_refuses_bad_files_unless_told_to_skip(tmp_path):
    bad = _write(tmp_path, [json.dumps({"query": "q?", "steps": ["s."], "solution": "a"}), "{"])
    with pytest.raises(KvslError) as caught:
        import_traces([bad], tmp_path / "out.jsonl")
    assert [d.code for d in caught.value.diagnostics] == ["KVS501"]
    assert not (tmp_path / "out.jsonl").exists()
    result = import_traces([bad], tmp_path / "out.jsonl", skip_bad=True)
    assert result.written == 1 and [d.code for d in result.warnings] == ["KVS521"]
    assert "line 2" in result.warnings[0].message


def test_import_cli(tmp_path):
    out = tmp_path / "t.jsonl"
    runner = CliRunner()
    done = runner.invoke(app, ["traces", "import", str(PAPER), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "wrote 4 traces" in done.output and out.is_file()
    again = runner.invoke(app, ["traces", "import", str(PAPER), "--out", str(out)])
    assert again.exit_code == 2 and "KVS520" in again.output
    forced = runner.invoke(app, ["traces", "import", str(PAPER), "-o", str(out), "--force"])
    assert forced.exit_code == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    nothing = runner.invoke(app, ["traces", "import", str(empty), "-o", str(tmp_path / "n.jsonl")])
    assert nothing.exit_code == 1 and "KVS523" in nothing.output
    missing = runner.invoke(app, ["traces", "import", str(tmp_path / "no.jsonl"), "-o", str(tmp_path / "m.jsonl")])
    assert missing.exit_code == 1 and "KVS500" in missing.output


def test_import_never_replaces_what_is_not_a_regular_file(tmp_path):
    """`--force --out /dev/null` (as root) replaced the null device with a regular file; a
    FIFO stands for every special file (kvsl.base.atomic refuses them all)."""
    import os
    import stat

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    result = CliRunner().invoke(app, ["traces", "import", str(PAPER), "-o", str(fifo), "--force"])
    assert result.exit_code == 3 and "KVS520" in result.output and "not a regular file" in result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("how", ["same", "link", "dotdot"])
def test_force_never_writes_over_a_source(tmp_path, how):
    """`--force` replaces an earlier output; `--out` naming a file being imported (directly,
    through a link or a `..` path) would lose the source, so it is refused."""
    import os

    source = tmp_path / "paper.jsonl"
    source.write_bytes(PAPER.read_bytes())
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.jsonl"
    os.symlink(source, link)
    out = {"same": source, "link": link, "dotdot": tmp_path / "sub" / ".." / "paper.jsonl"}[how]
    result = CliRunner().invoke(app, ["traces", "import", str(source), "-o", str(out), "--force"])
    assert result.exit_code == 2 and "KVS520" in result.output
    assert "is one of the files being imported" in result.output
    assert source.read_bytes() == PAPER.read_bytes()


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_as_out_is_named_as_a_folder(tmp_path, force):
    """`--out DIR`: "already exists, pass --force" sent the user to a flag that cannot help."""
    args = ["traces", "import", str(PAPER), "-o", str(tmp_path)] + (["--force"] if force else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "KVS520" in result.output, result.output
    assert "is a folder, not a file" in result.output and "--force" not in result.output
    assert f"--out {tmp_path / 'traces.jsonl'}" in result.output


@pytest.mark.parametrize(
    ("name", "kind"),
    [("style.kvs", "a kvsl spec"), ("v.safetensors", "a steering-vector artifact"),
     ("t.j2", "a teacher template")],
)
def test_kvsls_other_files_are_named_not_read_line_by_line(tmp_path, name, kind):
    """A spec named as a source gave one KVS501 per line (38 for step_by_step.kvs)."""
    source = tmp_path / name
    source.write_text('style "x" {\n  description = "d"\n}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["traces", "import", str(source), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and result.output.count("error[") == 1, result.output
    assert "KVS500" in result.output and f"is {kind}, not a trace file" in result.output
    assert "help: name a JSON-lines trace file" in result.output


@pytest.mark.parametrize(
    ("below", "reason"),
    [("t.jsonl", "it is a file, not a folder"),
     ("sub/t.jsonl", "`paper.jsonl` on its path is a file, not a folder")],
)
def test_a_file_in_place_of_outs_folder_is_kvs520_not_a_traceback(tmp_path, below, reason):
    """`--out paper.jsonl/t.jsonl` raised FileExistsError/NotADirectoryError from mkdir; the
    reason is `output_folder_problem`'s, word for word as `kvsl build`, `eval`, `tune` say it."""
    from kvsl.lang.files import output_folder_problem

    blocker = tmp_path / "paper.jsonl"
    blocker.write_bytes(PAPER.read_bytes())
    out = blocker / below
    result = CliRunner().invoke(app, ["traces", "import", str(PAPER), "-o", str(out)])
    assert result.exit_code == 3 and "KVS520" in result.output, result.output
    assert output_folder_problem(out.parent) == reason
    assert f"cannot write traces into `{out.parent}`: {reason}" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert blocker.read_bytes() == PAPER.read_bytes()
