"""Diagnostic codes KVS5xx: teacher and trace files (plain data; see kvsl.lang.codes)."""

from __future__ import annotations

from kvsl.lang.codes import Code
from kvsl.lang.diagnostics import Severity

TEACHER_CODES: tuple[Code, ...] = (
    Code(
        "KVS500",
        "trace file unreadable",
        Severity.ERROR,
        "The trace file a spec names does not exist, cannot be read, or is not UTF-8 text. "
        "Contrast pairs are built from it, so nothing can be extracted without it.",
        'contrast { traces = "traces/missing.jsonl" }',
        'contrast { traces = "traces/step_by_step.jsonl" }',
    ),
    Code(
        "KVS501",
        "invalid JSON in trace file",
        Severity.ERROR,
        "Each line of a trace file must be one JSON object. A line cut short by a killed "
        "writer, or hand edits, leave lines that are not JSON.",
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"',
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}',
    ),
    Code(
        "KVS502",
        "trace record is missing a field",
        Severity.ERROR,
        "A trace needs a non-empty `question` string, a non-empty `steps` list of strings "
        "and an `answer` string: the positive demo is the steps then \"The answer is X.\", "
        "the negative demo is the answer alone.",
        '{"question": "1+1?", "answer": "2"}',
        '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}',
    ),
    Code(
        "KVS503",
        "duplicate trace id",
        Severity.ERROR,
        "Trace ids identify questions so that the teacher never asks twice and demos are "
        "never the question they precede; two lines with one id make that ambiguous.",
        '{"id": "q1", ...}\n{"id": "q1", ...}',
        '{"id": "q1", ...}\n{"id": "q2", ...}',
    ),
)
