"""The checked declaration: typed values, the invalid sentinel, triple-quoting carried
through from the parser, and the examples in the checker modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

from kvsl.lang.analyze import analyze
from kvsl.lang.check import check_resolved
from kvsl.lang.checked import INVALID, Decl
from kvsl.lang.extends import Session
from kvsl.lang.parser import parse_text
from kvsl.lang.plan import LayerSpan
from kvsl.lang.schema import PRECISIONS, SELECTIONS


def _decl(body: str) -> Decl:
    spec, syntax = parse_text(f'style "s" {{ {body} }}', "/specs/s.kvs")
    assert spec is not None and not syntax
    decl, _ = analyze(spec)
    assert decl is not None
    return decl


def test_accessors_give_each_kind_its_type() -> None:
    decl = _decl(
        'contrast { pairs = 4  select = nearest  traces = "t.jsonl" } '
        "steer { layers = [1.., -2]  value = 3 } "
        'generate { stop = ["Q:"] } extract { precision = bf16 }'
    )
    assert decl.integer("contrast", "pairs") == 4
    assert decl.number("steer", "value") == 3.0 and isinstance(decl.number("steer", "value"), float)
    assert decl.layers("steer", "layers") == (LayerSpan(1, None), LayerSpan(-2, -2))
    assert decl.strings("generate", "stop") == ("Q:",)
    assert decl.choice("contrast", "select", SELECTIONS) == "nearest"
    assert decl.choice("extract", "precision", PRECISIONS) == "bf16"
    assert decl.resolved_path("contrast", "traces") == "/specs/t.jsonl"
    # A key of another kind answers None rather than a value of the wrong type.
    assert decl.text("contrast", "pairs") is None
    assert decl.strings("steer", "layers") is None
    assert decl.layers("generate", "stop") is None


def test_an_invalid_value_is_present_but_answers_none() -> None:
    decl = _decl('contrast { pairs = "4"  shots = -1 }')
    pairs = decl.get("contrast", "pairs")
    assert pairs is not None and pairs.value is INVALID and not pairs.valid
    assert decl.valid("contrast", "pairs") is None
    assert decl.integer("contrast", "pairs") is None and decl.integer("contrast", "shots") is None
    assert decl.integer("contrast", "seed") is None  # not written at all


def test_a_field_knows_it_was_written_triple_quoted() -> None:
    decl = _decl('teacher { template = """Q: {{ question }}"""  traces = "t.jsonl" }')
    template, traces = decl.get("teacher", "template"), decl.get("teacher", "traces")
    assert template is not None and template.triple
    assert traces is not None and not traces.triple


def test_an_inline_template_is_inline_without_the_spec_text() -> None:
    # The checker once re-read the spec's text to tell `"""..."""` from `"..."`; a
    # declaration whose text the session never read was taken for a file name (KVS200).
    decl = _decl(
        'description = "d" teacher { model = "m"  template = """Q: {{ question }}""" } '
        'contrast { pairs = 2  shots = 1  traces = "/nonexistent/t.jsonl" }'
    )
    resolved, diagnostics = check_resolved(decl, Session())
    assert resolved.template_source == "Q: {{ question }}" and resolved.template_path is None
    assert not [d for d in diagnostics if d.code.startswith("KVS2")]


def test_a_template_error_in_an_inline_block_points_into_the_spec(tmp_path) -> None:
    spec = tmp_path / "s.kvs"
    spec.write_text(
        'style "s" {\n  description = "d"\n  teacher {\n    model = "m"\n'
        '    template = """\nQ: {{ question }\n"""\n  }\n'
        '  contrast { pairs = 2  shots = 1  traces = "t.jsonl" }\n}\n',
        encoding="utf-8",
    )
    session = Session()
    decl, _ = session.resolve(str(spec))
    assert decl is not None
    _, diagnostics = check_resolved(decl, session)
    syntax = [d for d in diagnostics if d.code == "KVS201"]
    assert syntax and syntax[0].span.path == str(spec) and syntax[0].span.line == 6


@pytest.mark.parametrize(
    "module",
    ["analyze", "check", "checked", "extends", "models", "partial", "phrasing", "schema", "values"],
)
def test_doctests(module: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(f"kvsl.lang.{module}"))
    assert tried >= 1 and failures == 0
