"""Fuzzing the other JSON-lines files kvsl reads: `kvsl run --file` prompt files and the
teacher's skip log (`x.skipped.jsonl`, read back on resume).

Any text gives prompts or a coded KVS454 located at its line, never another exception;
prompts and skip records written as kvsl (and `json.dumps(ensure_ascii=False)`) writes
them read back unchanged, U+2028 and the other characters `str.splitlines` splits at
included. `KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fuzz_settings import fuzz
from hostile_data import assert_coded, json_values, lines_file, texts
from hypothesis import example, given
from hypothesis import strategies as st

from kvsl.cli.run_commands import parse_prompt_lines
from kvsl.lang.diagnostics import KvslError
from kvsl.teacher.skiplog import SkipRecord, iter_skip_log

FOLDER = Path(tempfile.mkdtemp(prefix="kvsl-prompt-fuzz-"))
# Where `str.splitlines` splits and JSON lines do not.
SPLITTERS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"
prompt_text = st.text(st.one_of(st.characters(codec="utf-8", exclude_categories=["Cs"]),
                                st.sampled_from(SPLITTERS)), min_size=1, max_size=30)  # fmt: skip
# A prompt kvsl would write holds more than whitespace: a blank one is refused (KVS454,
# the first property and tests/engine/test_run_cli.py), not read back.
written_prompt = prompt_text.filter(str.strip)


@fuzz(60)
@given(lines_file(st.one_of(json_values(6), texts()), max_lines=5), st.booleans())
def test_any_prompt_file_gives_prompts_or_a_located_kvs454(data: bytes, jsonl: bool) -> None:
    text = data.decode("utf-8", "replace")
    try:
        prompts = parse_prompt_lines(text, "p.jsonl", jsonl=jsonl)
    except KvslError as err:
        assert_coded(err.diagnostics, "p.jsonl", text.encode("utf-8", "surrogatepass"))
        assert {d.code for d in err.diagnostics} <= {"KVS454"}
    else:
        assert all(isinstance(p, str) and isinstance(extra, dict) for p, extra in prompts)


@fuzz(40)
@given(st.lists(st.tuples(written_prompt, st.booleans()), min_size=1, max_size=4), st.booleans())
@example([("a\u2028b", False), ("c\x85d", True)], False)
def test_prompts_read_back_as_written(cases: list[tuple[str, bool]], crlf: bool) -> None:
    lines = [json.dumps({"prompt": p, "id": i} if as_object else p, ensure_ascii=False)
             for i, (p, as_object) in enumerate(cases)]  # fmt: skip
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    prompts = parse_prompt_lines(text, "p.jsonl", jsonl=True)
    assert [p for p, _ in prompts] == [p for p, _ in cases]


@fuzz(30)
@given(st.lists(st.tuples(prompt_text, prompt_text), min_size=1, max_size=4))
@example([("q1", "the reply\u2028went on")])
def test_skip_records_read_back_as_written(cases: list[tuple[str, str]]) -> None:
    path = FOLDER / "t.skipped.jsonl"
    records = [SkipRecord(id=i, reason="wrong_answer", permanent=True, detail=d, reply=d)
               for i, d in cases]  # fmt: skip
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    assert [(r["id"], r["detail"]) for r in iter_skip_log(path)] == cases
