"""Trace files: the JSONL demonstrations contrast pairs are built from.

One JSON object per line:

    {"id": "sbs-001", "question": "...", "steps": ["...", "..."], "answer": "B",
     "domain": "science"}

- `question`: the full user turn, exactly as a target question is shown to the model
  (multiple choice carries its `Choices:` block, see `kvsl.formats.questions`).
- `steps`: the reasoning, one string per step, in the style's own voice (no numbering
  is added by kvsl: a style that numbers its steps writes the numbers).
- `answer`: the short final answer ("B", "42"): the positive demo ends with
  "The answer is {answer}." and the negative demo is that sentence alone.
- `id` (unique in the file) and `domain` are optional; other keys are kept and ignored.

The paper's released trace format (Belitsky et al.'s `*_oai.jsonl` and style files) is
read unchanged: `query` stands for `question` and `solution` for `answer`, e.g.

    {"id": 0, "query": "Question: ...", "steps": ["...", "..."], "solution": "A",
     "style_name": "form_1_stepwise", "source_file": "0__arc_stepwise.json"}

A record that gives both names with different values is an error (KVS519).
`kvsl traces import` rewrites such a file in kvsl's own layout.

No torch here: the front end hashes trace files, the teacher appends to them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from kvsl.base.jsonl import append_jsonl, dumps, loads
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.files import MAX_DATA_BYTES, FileProblem, decode_data_text, read_regular_file
from kvsl.lang.source import SourceFile, Span


@dataclass(frozen=True)
class Trace:
    question: str
    steps: tuple[str, ...]
    answer: str
    id: str | None = None
    domain: str | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> str:
        record: dict[str, object] = {}
        if self.id is not None:
            record["id"] = self.id
        record["question"] = self.question
        record["steps"] = list(self.steps)
        record["answer"] = self.answer
        if self.domain is not None:
            record["domain"] = self.domain
        record.update({k: v for k, v in self.extra.items() if k not in record})
        return dumps(record)


# kvsl's field name → the paper's name for the same field (its released trace files).
PAPER_ALIASES = {"question": "query", "answer": "solution"}


def _error(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, help=help)


def parse_trace_line(line: str, span: Span) -> Trace | Diagnostic:
    """One JSONL line → a Trace, or a KVS5xx diagnostic located at that line."""
    try:
        record = loads(line)
    except json.JSONDecodeError as err:
        return _error("KVS501", f"invalid JSON in trace file: {err.msg}", span)
    if not isinstance(record, dict):
        return _error("KVS502", "a trace must be a JSON object", span)
    for ours, theirs in PAPER_ALIASES.items():
        if ours in record and theirs in record and record[ours] != record[theirs]:
            return _error(
                "KVS519",
                f"trace gives both `{ours}` and `{theirs}` (the paper's name for it), "
                "with different values",
                span,
                help=f"keep one of them: `{theirs}` is read as `{ours}`",
            )
    question = record.get("question", record.get("query"))
    answer = record.get("answer", record.get("solution"))
    steps = record.get("steps")
    if not isinstance(question, str) or not question.strip():
        return _error("KVS502", "trace has no `question` (or `query`) string", span)
    if isinstance(steps, str):  # the paper's traces sometimes store steps as one string
        steps = [s for s in steps.split("\n") if s.strip()]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        return _error(
            "KVS502",
            "trace has no `steps` (a non-empty list of strings)",
            span,
            help='write the reasoning as `"steps": ["first step", "second step"]`',
        )
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        return _error("KVS502", "trace has no `answer` (or `solution`) string", span)
    known = {"id", "question", "steps", "answer", "domain", *PAPER_ALIASES.values()}
    return Trace(
        question=question,
        steps=tuple(steps),
        answer=answer.strip(),
        id=str(record["id"]) if record.get("id") is not None else None,
        domain=record.get("domain") if isinstance(record.get("domain"), str) else None,
        extra={k: v for k, v in record.items() if k not in known},
    )


def iter_trace_file(path: str | os.PathLike[str]) -> Iterator[Trace | Diagnostic]:
    """Every line of a trace file, parsed; blank lines skipped. Never raises for content."""
    for _line_no, item in iter_trace_lines(path):
        yield item


def iter_trace_lines(
    path: str | os.PathLike[str], data: bytes | None = None
) -> Iterator[tuple[int, Trace | Diagnostic]]:
    """(1-based line number, parsed line) for every non-blank line of a trace file.

    `data` is the file's bytes when the caller has read them already (a build hashes the
    bytes it parses, see `kvsl.engine.contrast.plan_traces`); None reads the file.
    """
    text = read_trace_text(path) if data is None else decode_trace_bytes(path, data)
    source = SourceFile(str(path), text)
    offset = 0
    seen_ids: dict[str, int] = {}
    for line_no, line in enumerate(text.split("\n"), start=1):
        span = source.span(offset, offset + len(line))
        offset += len(line) + 1
        if not line.strip():
            continue
        item = parse_trace_line(line, span)
        trace_id = item.id if isinstance(item, Trace) else None
        if trace_id is not None:
            if trace_id in seen_ids:
                item = _error(
                    "KVS503",
                    f"duplicate trace id `{trace_id}` (first on line {seen_ids[trace_id]})",
                    span,
                )
            else:
                seen_ids[trace_id] = line_no
        yield line_no, item


# Files of kvsl's own other kinds, named where a trace file goes.
_NOT_TRACES = {
    ".kvs": "a kvsl spec",
    ".safetensors": "a steering-vector artifact",
    ".j2": "a teacher template",
}


def read_trace_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, or a KvslError (KVS500) if it does not exist or cannot be read.

    Regular files only, capped (`kvsl.lang.files`): a FIFO or a device named as a trace
    file (`--traces /dev/zero`) is refused instead of hanging or filling memory.
    """
    kind = _NOT_TRACES.get(os.path.splitext(os.fspath(path))[1].lower())
    if kind is not None:  # else a spec named as traces reads as one KVS501 per line
        raise KvslError.one(
            "KVS500",
            f"trace file `{path}` is {kind}, not a trace file",
            Span.whole_file(str(path)),
            help="name a JSON-lines trace file (a spec's teacher `traces`, such as "
            "`specs/traces/step_by_step.jsonl`)",
        )
    try:
        return read_regular_file(os.fspath(path), MAX_DATA_BYTES)
    except FileProblem as problem:
        missing = problem.kind == "missing"
        raise KvslError.one(
            "KVS500",
            f"trace file `{path}` {problem}",
            Span.whole_file(str(path)),
            help="write traces with `kvsl teach SPEC`, or fix the path in the spec"
            if missing
            else "a trace file is a regular JSON-lines text file",
        ) from None


def decode_trace_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """The text of a trace file's bytes, or a KvslError (KVS500) if they are not UTF-8."""
    try:
        return decode_data_text(data)
    except UnicodeDecodeError:
        raise KvslError.one(
            "KVS500",
            f"trace file `{path}` is not UTF-8 text",
            Span.whole_file(str(path)),
            help="a trace file is JSON lines in UTF-8, one trace per line",
        ) from None


def read_trace_text(path: str | os.PathLike[str]) -> str:
    """The file's text, or a KvslError (KVS500) if it cannot be read as UTF-8."""
    return decode_trace_bytes(path, read_trace_bytes(path))


def load_traces(path: str | os.PathLike[str], data: bytes | None = None) -> list[Trace]:
    """All traces of a file; raises KvslError listing every bad line if any is bad.

    `data`: the file's bytes, already read (None: read the file).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> _ = open(p, "w").write('{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\\n')
    >>> load_traces(p)[0].answer
    '2'
    """
    traces: list[Trace] = []
    errors: list[Diagnostic] = []
    for _line_no, item in iter_trace_lines(path, data):
        (traces if isinstance(item, Trace) else errors).append(item)  # type: ignore[arg-type]
    if errors:
        raise KvslError(errors, ExitCode.ERRORS)
    return traces


def append_trace(path: str | os.PathLike[str], trace: Trace) -> None:
    """Append one trace as a full line, flushed and fsynced, so a kill loses nothing.

    A file whose last line was cut short (a kill mid-write by another tool) is repaired
    by starting on a fresh line, so the partial line stays one bad line, not two
    (`kvsl.base.jsonl.append_jsonl`).
    """
    append_jsonl(path, [trace.to_json()])
