"""Fuzzing trace files: kvsl's own layout and the paper's `query/steps/solution` one.

Any bytes a user names as a trace file (`traces = "..."` in a spec, `kvsl traces import`)
give traces or coded diagnostics located at a line of the file, never another exception;
valid traces of either layout read back as written, and `import_traces` rewrites them so
that they read back the same. `KVSL_FUZZ_EXAMPLES=N` runs N examples per property.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fuzz_settings import fuzz
from hostile_data import assert_coded, json_values, lines_file, mutated, records, texts
from hypothesis import given
from hypothesis import strategies as st

from kvsl.formats.trace_import import import_traces
from kvsl.formats.traces import Trace, iter_trace_lines, load_traces
from kvsl.lang.diagnostics import Diagnostic, KvslError

FOLDER = Path(tempfile.mkdtemp(prefix="kvsl-trace-fuzz-"))
SHIPPED = sorted((Path(__file__).resolve().parents[2] / "specs" / "traces").glob("*.jsonl"))
PAPER = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "paper_format.jsonl"
SAMPLES = [p.read_bytes()[:4000] for p in [*SHIPPED, PAPER]]

words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
nonblank = words.filter(lambda s: s.strip() != "")

trace_fields: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(texts(10), st.integers()),
    "question": texts(),
    "query": texts(),
    "steps": st.one_of(st.lists(texts(), max_size=3), texts()),
    "answer": st.one_of(texts(8), st.integers(), st.floats()),
    "solution": st.one_of(texts(8), st.integers()),
    "domain": texts(8),
}
trace_files = st.one_of(
    lines_file(records(trace_fields)),
    st.sampled_from(SAMPLES).flatmap(mutated),
)


def _file(data: bytes, name: str = "t.jsonl") -> Path:
    path = FOLDER / name
    path.write_bytes(data)
    return path


@fuzz(100)
@given(trace_files)
def test_any_trace_file_gives_traces_or_located_codes(data: bytes) -> None:
    path = _file(data)
    try:
        items = [item for _, item in iter_trace_lines(path)]
    except KvslError as err:  # the whole file: not UTF-8
        assert_coded(err.diagnostics)
        return
    for item in items:
        if isinstance(item, Diagnostic):
            assert_coded([item], str(path), data)
        else:
            assert isinstance(item, Trace) and item.question.strip() and item.answer.strip()
            assert item.steps and all(isinstance(s, str) for s in item.steps)
            json.loads(item.to_json())  # what `kvsl traces import` and the teacher write
    try:
        result = import_traces([path], FOLDER / "out.jsonl", force=True, skip_bad=True)
    except KvslError as err:
        assert_coded(err.diagnostics, str(path), data)
    else:
        assert_coded(result.warnings or [], str(path), data) if result.warnings else None
        assert len(load_traces(result.out)) == result.written


def _kvsl_record(draw: st.DrawFn) -> tuple[dict[str, Any], Trace]:
    question, answer = draw(nonblank), draw(nonblank)
    steps = tuple(draw(st.lists(words, min_size=1, max_size=3)))
    record: dict[str, Any] = {"question": question, "steps": list(steps), "answer": answer}
    domain = draw(st.none() | words)
    if domain is not None:
        record["domain"] = domain
    return record, Trace(question, steps, answer.strip(), None, domain)


def _paper_record(draw: st.DrawFn, index: int) -> tuple[dict[str, Any], Trace]:
    question = draw(nonblank)
    steps = draw(st.lists(nonblank.filter(lambda s: "\n" not in s and s.strip() == s),
                          min_size=1, max_size=3))  # fmt: skip
    joined = draw(st.booleans())  # the paper's files sometimes hold the steps as one string
    solution = draw(st.one_of(nonblank, st.integers(-(10**6), 10**6)))
    record = {"id": index, "query": question, "steps": "\n".join(steps) if joined else steps,
              "solution": solution, "style_name": "form_1_stepwise"}  # fmt: skip
    return record, Trace(question, tuple(steps), str(solution).strip(), str(index), None)


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[bytes, list[Trace]]:
    count = draw(st.integers(1, 4))
    pairs = [
        _paper_record(draw, i) if draw(st.booleans()) else _kvsl_record(draw) for i in range(count)
    ]
    ascii_only = draw(st.booleans())
    text = "".join(json.dumps(record, ensure_ascii=ascii_only) + "\n" for record, _ in pairs)
    return text.encode("utf-8"), [trace for _, trace in pairs]


@fuzz(60)
@given(valid_files())
def test_valid_traces_of_either_layout_round_trip(case: tuple[bytes, list[Trace]]) -> None:
    data, expected = case
    path = _file(data)
    assert load_traces(path) == expected
    questions = list(dict.fromkeys(t.question for t in expected))  # an import keeps the first
    result = import_traces([path], FOLDER / "imported.jsonl", force=True)
    imported = load_traces(result.out)
    assert [t.question for t in imported] == questions
    first = {t.question: t for t in reversed(expected)}
    for trace in imported:
        own = first[trace.question]
        assert (trace.steps, trace.answer, trace.domain) == (own.steps, own.answer, own.domain)
        assert trace.id is not None and trace.id.startswith(f"{path.stem}-")
    assert load_traces(_file(result.out.read_bytes(), "again.jsonl")) == imported


@fuzz(40)
@given(st.lists(json_values(8), min_size=1, max_size=3))
def test_a_trace_line_of_any_json_never_raises(values: list[Any]) -> None:
    data = "".join(json.dumps(v) + "\n" for v in values).encode("utf-8", "surrogatepass")
    path = _file(data)
    for _, item in iter_trace_lines(path):
        if isinstance(item, Diagnostic):
            assert_coded([item], str(path), data)
