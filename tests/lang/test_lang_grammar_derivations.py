"""Fuzzing from the grammar itself: random derivations of `grammar.lark` and their mutants.

`grammar_derivations.py` walks the Lark rules (bounded depth), so every rule and terminal
the grammar has is exercised, and then breaks the token stream (dropped, duplicated and
swapped tokens, unicode, huge numbers, NaN, negative layers, deep nesting, long strings,
CRLF, BOM, NUL, lone surrogates). On every generated spec:

- `kvsl check` never raises, and exits 0 or 1 with registered codes whose line and column
  are the position of the span's offset in the file as read (inside the file);
- `kvsl fmt` is idempotent and keeps meaning and comments: the formatted spec has the
  same diagnostics (code, severity, message) and, when it lowers, the same `plan_hash`;
- a spec that checks clean lowers to a plan `kvsl plan` can print.

A few hundred cases run by default (a few seconds), from a fixed seed so that a run is
reproducible; `KVSL_FUZZ_EXAMPLES=N` runs N per property and `KVSL_FUZZ_SEED=S` draws
other cases (`KVSL_FUZZ_EXAMPLES=5000 KVSL_FUZZ_SEED=$RANDOM pytest
tests/lang/test_lang_grammar_derivations.py`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
from collections import Counter
from pathlib import Path

from fuzz_settings import fuzz
from grammar_derivations import derivations, mutants
from hypothesis import given, seed
from hypothesis import strategies as st
from lark_oracle import assert_parsers_agree, lark_parser
from spec_strategies import make_workspace

from kvsl.lang import check_paths, compile_spec, exit_code_for
from kvsl.lang.codes import CODES
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.fmt import format_text
from kvsl.lang.parser import load_source
from kvsl.lang.render import render_diagnostics
from kvsl.lang.source import SourceFile, Span

WORKSPACE = make_workspace()
SEED = seed(int(os.environ.get("KVSL_FUZZ_SEED", "20261201")))
atexit.register(shutil.rmtree, WORKSPACE.root, True)


def _write(text: str, name: str = "derived.kvs") -> Path:
    path = WORKSPACE.root / name
    # a lone surrogate cannot be UTF-8: written as its bytes, it is a file that is not
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def _assert_located(diagnostics: list[Diagnostic], path: Path) -> None:
    """Registered codes; spans in this file sit where their line:col says, inside it."""
    source, _ = load_source(path)
    # a file refused as binary or not UTF-8 is located in what precedes the bad byte
    text = source.text if source is not None else path.read_bytes().decode("utf-8", "replace")
    for d in diagnostics:
        assert d.code in CODES, f"{d.code} is not registered"
        assert d.message and "`None`" not in d.message, d
        if d.span.path != str(path) or d.span == Span.whole_file(str(path)):
            continue
        assert 0 <= d.span.start <= d.span.end <= len(text), d
        where = SourceFile(str(path), text)
        assert where.position(d.span.start) == (d.span.line, d.span.column), d
        assert where.position(d.span.end) == (d.span.end_line, d.span.end_column), d
    for format in ("human", "json", "github", "sarif"):
        render_diagnostics(diagnostics, format=format)


def _meaning(diagnostics: list[Diagnostic]) -> Counter[tuple[str, str, str]]:
    return Counter((d.code, d.severity.value, d.message) for d in diagnostics)


def _assert_front_end_holds(text: str) -> str | None:
    """The properties of the module docstring; the formatted text (None if refused)."""
    path = _write(text)
    plan, diagnostics = compile_spec(path)
    checked = check_paths([str(path)])
    assert int(exit_code_for(checked)) in (0, 1), [d.code for d in checked]
    _assert_located(diagnostics, path)
    _assert_located(checked, path)
    if plan is not None:  # what `kvsl plan` prints
        assert json.loads(json.dumps(plan.to_dict(), ensure_ascii=False))["plan_hash"]
    source, _ = load_source(path)
    once = format_text(source.text, str(path))[0] if source is not None else None
    if once is not None:
        assert format_text(once, str(path))[0] == once, "fmt is not idempotent"
        again, after = compile_spec(_write(once, "formatted.kvs"))
        assert _meaning(after) == _meaning(diagnostics)
        assert (again and again.plan_hash) == (plan and plan.plan_hash)
    return once


@fuzz(150)
@SEED
@given(derivations())
def test_derivations_of_the_grammar_hold(text: str) -> None:
    lark_parser().parse(text)  # the generator's own check: the grammar derives it
    once = _assert_front_end_holds(text)
    if once is not None:  # every comment kept (`# note` is only ever a comment here)
        assert once.count("# note") == text.count("# note")


@fuzz(150)
@SEED
@given(mutants())
def test_mutated_derivations_hold(text: str) -> None:
    _assert_front_end_holds(text)


@fuzz(150)
@SEED
@given(st.one_of(derivations(), mutants()))
def test_the_parser_agrees_with_the_grammar_on_derivations(text: str) -> None:
    """kvsl's hand-written parser and Lark's: the same tree (spans included) where the
    grammar accepts, and the same first error where it rejects (as test_lang_fuzz.py,
    here on every rule the grammar has rather than on edits of the bundled specs)."""
    assert_parsers_agree(SourceFile("derived.kvs", text))


def test_derivations_reach_plans_and_errors() -> None:
    """The generator is worth its time: some derivations lower, some are refused."""
    outcomes: Counter[bool] = Counter()

    @fuzz(40)
    @SEED
    @given(derivations())
    def count(text: str) -> None:
        outcomes[compile_spec(_write(text, "count.kvs"))[0] is not None] += 1

    count()
    assert outcomes[True] and outcomes[False], outcomes


@fuzz(12)
@SEED
@given(st.one_of(derivations(), mutants()), st.sampled_from(["check", "fmt", "plan"]))
def test_the_cli_answers_derivations_without_a_traceback(text: str, command: str) -> None:
    from typer.testing import CliRunner

    from kvsl.cli import app

    path = _write(text, "cli.kvs")
    before = path.read_bytes()
    args = {"check": ["check"], "fmt": ["fmt", "--check"], "plan": ["plan"]}[command]
    result = CliRunner().invoke(app, [*args, str(path)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert path.read_bytes() == before  # `fmt --check` changes nothing
