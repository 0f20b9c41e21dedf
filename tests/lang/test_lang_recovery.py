"""Syntax error recovery: every independent syntax error of a file, without cascades.

After a syntax error the parser resynchronises (kvsl.lang.recovery.syntax_errors) and
reports later errors too; one typo still gives exactly one diagnostic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lang_support import FIXTURES, SPECS, TRACE

from kvsl.lang import check_paths, compile_spec
from kvsl.lang.parser import parse_text
from kvsl.lang.recovery import MAX_SYNTAX_ERRORS
from kvsl.lang.render import render_diagnostics

SOURCES = [p.read_text(encoding="utf-8") for p in SPECS]
# Characters whose insertion or deletion breaks a spec in every way the grammar allows.
MUTATION_CHARS = '{}[]"=,:x1 \n#.-'


def located(text: str) -> list[tuple[str, int, int]]:
    _, diagnostics = parse_text(text, "t.kvs")
    return [(d.code, d.span.line, d.span.column) for d in diagnostics]


TWO_TYPOS = """style "two-typos" {
  description: "Two independent mistakes."
  model = "smollm2-135m"

  contrast {
    traces = "traces/ok.jsonl"
    pairs 40
    shots = 2
  }
}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TWO_TYPOS, [("KVS011", 2, 14), ("KVS014", 7, 11)]),
        # on adjacent lines
        (
            'style "s" {\n  contrast {\n    pairs 40\n    shots 1\n  }\n}\n',
            [("KVS014", 3, 11), ("KVS014", 4, 11)],
        ),
        # one in a nested block, one after it at the outer level
        (
            'style "s" {\n  steer { value = }\n  markers = ["a" "b"]\n}\n',
            [("KVS017", 2, 19), ("KVS016", 3, 18)],
        ),
        # an unterminated string, then a stray `;`
        (
            'style "s" {\n  description = "abc\n  contrast {\n    pairs = 4;\n  }\n}\n',
            [("KVS012", 2, 17), ("KVS011", 4, 14)],
        ),
        # three list mistakes and a missing value
        (
            'style "s" {\n  a = [1 2]\n  b = [3 4]\n  c = }\n',
            [("KVS016", 2, 10), ("KVS016", 3, 10), ("KVS017", 4, 7)],
        ),
        # a typo, then a file that ends inside a block: both are reported
        (
            'style "s" {\n  a 1\n  contrast {\n    pairs = 4\n',
            [("KVS014", 2, 5), ("KVS013", 5, 1)],
        ),
    ],
)
def test_independent_errors_are_all_reported(text: str, expected: list[tuple]) -> None:
    assert located(text) == expected


def test_two_typos_rendered(tmp_path: Path) -> None:
    path = tmp_path / "two_typos.kvs"
    path.write_text(TWO_TYPOS, encoding="utf-8")
    diagnostics = check_paths([str(path)])
    human = render_diagnostics(diagnostics, format="human", color=False)
    assert human.count("error[") == 2
    assert f"{path}:2:14" in human and f"{path}:7:11" in human
    assert "write `pairs = 40`" in human


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an unclosed brace at the end
        ('style "s" {\n  contrast {\n    pairs = 4\n  }\n', [("KVS013", 5, 1)]),
        # an unterminated string at the end, and in the middle of a file
        ('style "s" {\n  description = "abc\n}\n', [("KVS012", 2, 17)]),
        (
            'style "s" {\n  description = "abc\n  contrast {\n    pairs = 4\n  }\n}\n',
            [("KVS012", 2, 17)],
        ),
        # a doubled `{`, a stray `}`, a comment hiding a block's `{`, a broken line
        ('style "s" {\n  contrast {{ pairs = 4 }\n}\n', [("KVS010", 2, 13)]),
        ('style "s" {\n  a = 1\n}\n}\n', [("KVS010", 4, 1)]),
        (
            'style "s" {\n  c#ontrast {\n    pairs = 4\n  }\n  model = "m"\n}\n',
            [("KVS014", 3, 5)],
        ),
        (
            'style "s" {\n  generate {\n    temperatu\nre = 0.7\n    seed = 0\n  }\n}\n',
            [("KVS014", 4, 1)],
        ),
        # errors on one line are one mistake as far as the reader is concerned
        ('style "s" { a 1 b = 2 c 3 }\n', [("KVS014", 1, 15)]),
    ],
)
def test_one_mistake_one_diagnostic(text: str, expected: list[tuple]) -> None:
    assert located(text) == expected


# (KVS015, an invalid escape, is found after parsing: its fixture has two, both reported)
@pytest.mark.parametrize(
    "code", ["KVS010", "KVS011", "KVS012", "KVS013", "KVS014", "KVS016", "KVS017"]
)
def test_single_error_fixtures_report_one_diagnostic(code: str) -> None:
    _, diagnostics = compile_spec(str(FIXTURES / f"{code}.kvs"))
    # KVS021 is a note (meaning checks wait for a lost bracket), not a second error
    assert [d.code for d in diagnostics if d.code != "KVS021"] == [code]


def test_meaning_is_checked_on_the_lines_a_syntax_error_left_alone(tmp_path: Path) -> None:
    (tmp_path / "traces.jsonl").write_text(TRACE, encoding="utf-8")
    path = tmp_path / "s.kvs"
    path.write_text(
        'style "s" {\n  description = "d"\n  pairz = 4\n  contrast {\n    pairs 4\n  }\n'
        "  shots: 1\n  generate { mode = fast }\n}\n",
        encoding="utf-8",
    )
    found = [(d.code, d.span.line) for d in check_paths([str(path)])]
    # two syntax errors and the two meaning errors of the lines they did not touch;
    # no "missing key" (a key on a broken line is not missing)
    assert found == [("KVS104", 3), ("KVS014", 5), ("KVS011", 7), ("KVS108", 8)]


def test_meaning_checks_wait_for_a_lost_bracket(tmp_path: Path) -> None:
    path = tmp_path / "s.kvs"
    path.write_text('style "s" {\n  pairz = 4\n  contrast {\n', encoding="utf-8")
    found = [(d.code, d.severity.value) for d in check_paths([str(path)])]
    assert found == [("KVS013", "error"), ("KVS021", "note")]


def test_the_number_of_errors_is_bounded() -> None:
    text = 'style "s" {\n' + "  a 1\n" * 100 + "}\n"
    diagnostics = located(text)
    assert len(diagnostics) == MAX_SYNTAX_ERRORS
    assert [line for _, line, _ in diagnostics] == list(range(2, 2 + MAX_SYNTAX_ERRORS))


@st.composite
def single_mutation(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    at = draw(st.integers(0, len(text) - 1))
    if draw(st.booleans()):
        return text[:at] + text[at + 1 :]
    return text[:at] + draw(st.sampled_from(MUTATION_CHARS)) + text[at:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(single_mutation())
def test_one_mutation_never_cascades(text: str) -> None:
    spec, diagnostics = parse_text(text, "m.kvs")
    if spec is None:
        # exhaustively (every deletion, every third insertion point: 48,903 mutants) the
        # bundled specs give 1 diagnostic in 99% of cases and never more than 2
        assert 1 <= len(diagnostics) <= 2
        assert all(d.code.startswith("KVS0") for d in diagnostics)
        lines = [d.span.line for d in diagnostics]
        assert lines == sorted(set(lines))  # in order, at most one per line
    again = parse_text(text, "m.kvs")[1]
    assert render_diagnostics(again, format="json") == render_diagnostics(
        diagnostics, format="json"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.lists(st.tuples(st.integers(0), st.text(max_size=3))))
def test_many_mutations_never_crash(text: str, edits: list[tuple[int, str]]) -> None:
    for at, insert in edits[:8]:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + 1 :]
    spec, diagnostics = parse_text(text, "m.kvs")
    if spec is None:
        assert 1 <= len(diagnostics) <= MAX_SYNTAX_ERRORS
