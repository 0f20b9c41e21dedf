"""The parser: it agrees with the Lark grammar (the oracle); bad input is a coded diagnostic."""

from __future__ import annotations

import os
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
from lang_support import FIXTURE_SPECS, SPECS, VALID, write_spec
from lark_oracle import first_error_kind, lark_first_error, parse_source_lark

from kvsl.lang import compile_spec
from kvsl.lang.parser import (
    MAX_SPEC_BYTES,
    decode_source,
    load_source,
    parse_source,
    parse_text,
)
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.syntax import Assignment, Block, Ident, ListValue, Number, Range, String

ALL_FILES = SPECS + FIXTURE_SPECS


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_parser_equals_lark_grammar(path: Path) -> None:
    source, _problems = decode_source(str(path), path.read_bytes())
    if source is None:
        pytest.skip("not text")
    spec, diagnostics = parse_source(source)
    if [d.code for d in diagnostics] == ["KVS007"]:
        pytest.skip("too deep for either parser: the depth guard answers first")
    reference = parse_source_lark(source)
    if reference[0] is not None:  # the same tree, spans, comments and literal errors
        assert (spec, diagnostics) == reference
    else:  # both reject it, and the first error is at the same place
        assert spec is None
        assert first_error_kind(diagnostics[0]) == lark_first_error(source)


def test_values_and_spans() -> None:
    text = 'style "s" {\n  steer { layers = [1..4, 7, -4..-1, 2..] value = 4.5e0 }\n  x = """a\n"b"\n""" y = "q\\n\\u00e9" z = all\n}\n'
    spec, diagnostics = parse_text(text, "s.kvs")
    assert diagnostics == []
    assert spec is not None
    style = spec.items[0]
    assert isinstance(style, Block) and isinstance(style.header, String)
    steer = style.items[0]
    assert isinstance(steer, Block)
    layers = steer.items[0]
    assert isinstance(layers, Assignment) and isinstance(layers.value, ListValue)
    first, single, negative, open_range = layers.value.items
    assert isinstance(first, Range) and (first.start.value, first.stop.value) == (1, 4)  # type: ignore[union-attr]
    assert isinstance(single, Number) and single.value == 7
    assert isinstance(negative, Range) and negative.start.value == -4
    assert isinstance(open_range, Range) and open_range.stop is None
    assert (layers.span.line, layers.span.column) == (2, 11)
    value = steer.items[1]
    assert isinstance(value, Assignment) and value.value == Number(4.5, "4.5e0", value.value.span)
    x, y, z = style.items[1:]
    assert isinstance(x, Assignment) and x.value == String('a\n"b"\n', True, x.value.span)
    assert isinstance(y, Assignment) and isinstance(y.value, String) and y.value.value == "q\né"
    assert isinstance(z, Assignment) and isinstance(z.value, Ident) and z.value.name == "all"
    assert (z.span.line, z.span.column) == (5, 21)


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ('style "a" { pairs 40 }', "KVS014", 1, 19),
        ('style "a" {\n  description = "x"\n  c { k = 1 pairs 40 }\n}', "KVS014", 3, 19),
        ('style "a" { x = [1, 2 3] }', "KVS016", 1, 23),
        ('style "a" { x = }', "KVS017", 1, 17),
        ('style "a" {\n x = 1\n', "KVS013", 3, 1),
        ('style "a" { x = [1, 2 }', "KVS016", 1, 23),
        ('style "a" { x: 1 }', "KVS011", 1, 14),
        ('style "a" { x = "abc\n }', "KVS012", 1, 17),
        ('style "a" { x = "a\\qb" }', "KVS015", 1, 19),
        ('style "a" { x = 1 } }', "KVS010", 1, 21),
        ("{" * 10_000, "KVS007", 1, 33),
        ("[" * 10_000 + "]" * 10_000, "KVS007", 1, 33),
    ],
)
def test_syntax_errors(text: str, code: str, line: int, column: int) -> None:
    _spec, diagnostics = parse_text(text, "t.kvs")
    assert [d.code for d in diagnostics] == [code]
    assert (diagnostics[0].span.line, diagnostics[0].span.column) == (line, column)


def test_unexpected_token_lists_few_expected_tokens() -> None:
    _, diagnostics = parse_text('style "a" { x = 1 = 2 }')
    assert diagnostics[0].message == "unexpected `=`, expected `}` or a name"


def test_unclosed_brace_points_at_the_opener() -> None:
    _, diagnostics = parse_text('style "a" {\n  steer {\n    value = 6\n}\n')
    (label,) = diagnostics[0].labels
    assert (label.span.line, label.span.column) == (1, 11)


# --- bad input: never a traceback, always a code and a location -----------------------


def _only(path: Path | str) -> tuple[str, int, int]:
    plan, diagnostics = compile_spec(path)
    assert plan is None
    # KVS021 (a note) only says that meaning checks wait for the syntax to be fixed
    diagnostics = [d for d in diagnostics if d.code != "KVS021"]
    assert len(diagnostics) == 1, diagnostics
    d = diagnostics[0]
    return d.code, d.span.line, d.span.column


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.kvs"
    path.write_bytes(b"")
    assert _only(path) == ("KVS006", 1, 1)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "model.kvs"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(range(256)))
    assert _only(path) == ("KVS004", 1, 6)


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.kvs"
    path.write_bytes('style "s" {\n  description = "café"\n}\n'.encode("latin-1"))
    assert _only(path) == ("KVS003", 2, 21)


def test_truncated_file(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID[: VALID.index("pairs") + 3])
    code, line, _ = _only(path)
    assert (code, line) == ("KVS014", 6) or code in {"KVS013", "KVS010"}


@pytest.mark.parametrize("cut", range(0, len(VALID), 7))
def test_every_truncation_is_one_coded_diagnostic(tmp_path: Path, cut: int) -> None:
    path = write_spec(tmp_path, VALID[:cut])
    plan, diagnostics = compile_spec(path)
    assert plan is None and diagnostics
    for d in diagnostics:
        assert d.code.startswith("KVS") and d.span.path == str(path)


def test_ten_megabyte_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.kvs"
    path.write_bytes(b"# " + b"x" * (10 * 1024 * 1024) + b"\n")
    assert os.path.getsize(path) > MAX_SPEC_BYTES
    assert _only(path) == ("KVS005", 1, 1)


def test_ten_thousand_nested_braces(tmp_path: Path) -> None:
    path = tmp_path / "deep.kvs"
    path.write_text('style "s" ' + "{" * 10_000 + "}" * 10_000, encoding="utf-8")
    assert _only(path) == ("KVS007", 1, 43)


def test_directory_passed_as_file(tmp_path: Path) -> None:
    assert _only(tmp_path) == ("KVS002", 1, 1)


def test_missing_file(tmp_path: Path) -> None:
    assert _only(tmp_path / "nope.kvs") == ("KVS008", 1, 1)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_spec(tmp_path)
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make opening it fail
        real_open = os.open

        def denied(name: str, *args: object, **kwargs: object) -> int:
            if os.fspath(name) == str(path):
                raise PermissionError(13, "Permission denied", str(name))
            return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", denied)
    try:
        assert _only(path) == ("KVS001", 1, 1)
    finally:
        path.chmod(0o644)


def test_load_source_never_raises_on_odd_paths(tmp_path: Path) -> None:
    for odd in (str(tmp_path / "a\nb.kvs"), "", "\x00"):
        try:
            source, diagnostics = load_source(odd)
        except ValueError:  # pragma: no cover - os functions reject NUL in paths
            pytest.fail(f"load_source raised on {odd!r}")
        assert source is None and diagnostics


def test_source_helpers() -> None:
    src = SourceFile("a.kvs", "ab\ncd")
    assert src.line_text(2) == "cd"


def _spans(node: object) -> list[Span]:
    if isinstance(node, Span):
        return [node]
    if isinstance(node, tuple | list):
        return [s for item in node for s in _spans(item)]
    if is_dataclass(node) and not isinstance(node, type):
        return [s for f in fields(node) for s in _spans(getattr(node, f.name))]
    return []


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_span_is_the_span_of_its_offsets(path: Path) -> None:
    # the lexer fills spans without Span.__init__ (for speed): they must be the same
    # objects in every respect, lines and columns included
    source = SourceFile(str(path), path.read_text(encoding="utf-8") + "\n# é\r\n x = 1\n")
    spec, diagnostics = parse_source(source)
    assert spec is not None and diagnostics == []
    spans = _spans(spec)
    assert len(spans) > 50
    for span in spans:
        expected = source.span(span.start, span.end)
        assert span == expected and hash(span) == hash(expected) and repr(span) == repr(expected)
