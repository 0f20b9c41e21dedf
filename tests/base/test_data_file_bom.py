"""A UTF-8 byte-order mark before a JSON-lines data file (Windows editors write one).

JSON forbids a BOM, so every reader refused the file's first record (KVS501 "Unexpected
UTF-8 BOM" for a trace file, KVS602 for a question pool, KVS454 for a prompt file). The
class: every data-file reader decodes through `kvsl.lang.files.decode_data_text`, which
drops it; the records, and the columns of a later diagnostic on line 1, are as without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsl.lang.diagnostics import KvslError

BOM = "\ufeff"
TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}'


def _write(tmp_path: Path, text: str, bom: bool) -> Path:
    path = tmp_path / ("bom.jsonl" if bom else "plain.jsonl")
    path.write_text((BOM if bom else "") + text, encoding="utf-8")
    return path


def test_no_other_reader_decodes_data_files_itself() -> None:
    root = Path(__file__).resolve().parents[2] / "kvsl"
    for name in ("formats/traces.py", "formats/question_records.py", "cli/run_commands.py",
                 "lang/check.py"):  # fmt: skip
        assert '.decode("utf-8")' not in (root / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize("bom", [False, True])
def test_a_trace_file(tmp_path: Path, bom: bool) -> None:
    from kvsl.formats.traces import load_traces

    path = _write(tmp_path, TRACE + "\n" + TRACE.replace("1", "2") + "\n", bom)
    assert [t.answer for t in load_traces(path)] == ["2", "2"]
    broken = _write(tmp_path, '{"question": 5}\n', bom)
    with pytest.raises(KvslError) as raised:
        load_traces(broken)
    [found] = raised.value.diagnostics
    assert (found.code, found.span.line, found.span.column) == ("KVS502", 1, 1)


@pytest.mark.parametrize("bom", [False, True])
def test_a_question_pool(tmp_path: Path, bom: bool) -> None:
    from kvsl.formats.questions import load_benchmark

    path = _write(tmp_path, '{"question": "1+1?", "answer": "1+1=2\\n#### 2"}\n', bom)
    [example] = load_benchmark(path)  # the format is detected from the first record
    assert (example.source, example.answer) == ("gsm8k", "2")


@pytest.mark.parametrize("bom", [False, True])
def test_a_prompt_file(tmp_path: Path, bom: bool) -> None:
    from kvsl.cli.run_commands import _read_prompts

    path = _write(tmp_path, '{"prompt": "Why?"}\n', bom)
    assert _read_prompts([], path) == [("Why?", {})]


def test_a_template_file(tmp_path: Path) -> None:
    """A template saved with a BOM renders every teacher prompt without it; the plan (and
    so the vectors' hash) is the one of the same template without it."""
    from kvsl.lang import compile_spec

    plans = []
    for bom in (False, True):
        folder = tmp_path / ("bom" if bom else "plain")
        folder.mkdir()
        (folder / "t.j2").write_text((BOM if bom else "") + "Q: {{ question }}\n", encoding="utf-8")
        (folder / "traces.jsonl").write_text(TRACE + "\n", encoding="utf-8")
        spec = folder / "s.kvs"
        spec.write_text(
            'style "s" {\n  description = "d"\n'
            '  teacher {\n    model = "gpt-4o"\n    template = "t.j2"\n  }\n'
            '  contrast {\n    traces = "traces.jsonl"\n    pairs = 1\n    shots = 0\n  }\n}\n',
            encoding="utf-8",
        )
        plan, diagnostics = compile_spec(str(spec))
        assert plan is not None, diagnostics
        plans.append(plan)
    assert not plans[1].teacher.template_source.startswith(BOM)
    assert plans[1].teacher.template_source == plans[0].teacher.template_source
