"""`kvsl.base.plurals`: a count and its noun, and the rule that every message uses it.

`kvsl teach` said "1 prompts rendered" and "wrote 1 traces", `kvsl build` "1 shots", a
tune report "1 answers generated now". Each message that puts a number before a noun now
says it through `counted`; the scan below keeps new ones from putting `{n} nouns` back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kvsl.base.plurals import counted, plural
from kvsl.base.threads import ThreadChoice, choose_threads
from kvsl.lang import compile_spec
from kvsl.lang.render import summary

PACKAGE = Path(__file__).resolve().parents[2] / "kvsl"
TRACE = '{"question": "1+1?", "steps": ["1 plus 1 is 2."], "answer": "2"}\n'
VALID = 'style "tiny" {\n  description = "d"\n  contrast {\n    traces = "traces.jsonl"\n    pairs = 4\n    shots = 1\n  }\n}\n'


def write_spec(folder: Path, text: str) -> Path:
    (folder / "traces.jsonl").write_text(TRACE * 5, encoding="utf-8")
    spec = folder / "tiny.kvs"
    spec.write_text(text, encoding="utf-8")
    return spec


@pytest.mark.parametrize(
    ("count", "noun", "irregular", "said"),
    [
        (1, "question", None, "1 question"),
        (0, "question", None, "0 questions"),
        (2, "question", None, "2 questions"),
        (-1, "layer", None, "-1 layers"),
        (1, "reply", "replies", "1 reply"),
        (3, "reply", "replies", "3 replies"),
        (1, "runner-up", "runners-up", "1 runner-up"),
        (2, "runner-up", "runners-up", "2 runners-up"),
        (1.0, "second", None, "1.0 second"),
        (1.5, "second", None, "1.5 seconds"),
        (None, "KV head", None, "None KV heads"),  # a manifest field that is missing
        (True, "file", None, "True files"),  # a bool is no count
    ],
)
def test_counted(count: object, noun: str, irregular: str | None, said: str) -> None:
    assert counted(count, noun, irregular) == said
    assert plural(count, noun, irregular) == said.split(" ", 1)[1]


def test_counted_with_separators() -> None:
    assert counted(256_000, "byte", sep=True) == "256,000 bytes"
    assert counted(1, "byte", sep=True) == "1 byte"


def test_summaries_say_one_in_the_singular() -> None:
    assert summary([], 1) == "all checks passed (1 file)"
    assert str(ThreadChoice(1, "--threads")) == "1 thread (--threads)"
    choice = choose_threads(None, cores=1, environ={})
    assert str(choice) == "1 thread (1 core available)"
    shared = choose_threads(None, cores=4, environ={"LOCAL_WORLD_SIZE": "2"})
    assert shared.reason == "4 cores available, shared by 2 processes on this node"


def test_one_shot_with_one_pair_is_worded_in_the_singular(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, VALID.replace("pairs = 4", "pairs = 1"))
    _, diagnostics = compile_spec(spec)
    [message] = [d.message for d in diagnostics if d.code == "KVS110"]
    assert message == (
        "`shots` must be less than `pairs`: each prompt takes its 1 demo from the other "
        "pairs, so `shots = 1` needs at least 2 pairs"
    )


def test_a_trace_file_of_one_trace_is_one_trace(tmp_path: Path) -> None:
    pool = VALID.replace("    pairs = 4", '    questions = "q.jsonl"\n    pairs = 1')
    spec = write_spec(tmp_path, pool.replace("shots = 1", "shots = 2"))
    (tmp_path / "traces.jsonl").write_text(TRACE, encoding="utf-8")  # one trace
    (tmp_path / "q.jsonl").write_text('{"question": "2+2?"}\n', encoding="utf-8")
    _, diagnostics = compile_spec(spec)
    [found] = [d for d in diagnostics if d.code == "KVS127"]
    assert found.message.endswith("holds 1 trace: every demo is a trace")
    assert found.labels[0].message == "1 trace here"


# --- the rule, read from the source ----------------------------------------------------

# Plural nouns that follow a count in a message; `{n} <noun>s` in an f-string is "1 <noun>s"
# when n is 1.
COUNTED_NOUNS = frozenset({
    "answers", "bytes", "characters", "cores", "demos", "digits", "errors", "examples",
    "files", "heads", "items", "labels", "layers", "lines", "pairs", "processes", "prompts",
    "questions", "records", "replies", "requests", "responses", "rows", "runs", "seconds",
    "shots", "specs", "threads", "tokens", "traces", "warnings",
})  # fmt: skip
# (file, expression) pairs whose count cannot be 1: a size over a limit of thousands, a
# token count that is not 1 by the test just before it, limits that are constants.
NEVER_ONE = {
    ("lang/files.py", "size"),
    ("lang/files.py", "limit"),
    ("lang/reading.py", "problem.size"),
    ("lsp/analysis.py", "len(data)"),
    ("lsp/framing.py", "self._max_body"),
    ("lang/literals.py", "len(digits)"),
    ("lang/markers.py", "len(pattern)"),
    ("lang/template_budget.py", "size"),
    ("lang/template_budget.py", "digits"),
    ("engine/prompting.py", "len(ids)"),  # `if len(ids) != 1`
    ("engine/geometry.py", "len(shapes)"),  # `if len(shapes) != 1`
    ("engine/continuous.py", "', '.join(sorted(odd))"),  # names of cache kinds, no count
}


def _bare_counts() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for value, after in zip(node.values, node.values[1:], strict=False):
                if not (isinstance(value, ast.FormattedValue) and isinstance(after, ast.Constant)):
                    continue
                words = str(after.value).split()
                expression = ast.unparse(value.value)
                if (
                    str(after.value).startswith(" ")
                    and any(w.rstrip(",.;:)") in COUNTED_NOUNS for w in words[:2])
                    and not expression.startswith(("counted(", "MAX_"))
                    and (where, expression) not in NEVER_ONE
                ):
                    found.append(f"{where}:{node.lineno}: {{{expression}}}{after.value[:30]!r}")
    return found


def test_every_count_before_a_noun_goes_through_counted() -> None:
    assert _bare_counts() == [], "say these counts with `kvsl.base.plurals.counted`"
