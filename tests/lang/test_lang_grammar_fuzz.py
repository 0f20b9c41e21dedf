"""Grammar-aware fuzzing of check, fmt and plan (strategies in spec_strategies.py).

Valid specs (drawn from the grammar and the key schema) must check without errors,
format idempotently, and check the same after formatting. Broken ones (huge numbers,
deep nesting, special files, control characters, unbalanced brackets, non-ASCII digits,
truncation, hostile templates and markers) must never raise: every diagnostic has a
registered code and a location, and every renderer accepts them.

A few thousand cases run in the default suite; `KVSL_FUZZ_EXAMPLES=N` sets the number
per property for a longer run (e.g. `KVSL_FUZZ_EXAMPLES=20000 pytest
tests/lang/test_lang_grammar_fuzz.py`).
"""

from __future__ import annotations

import atexit
import shutil
from collections import Counter
from pathlib import Path

from fuzz_settings import fuzz
from hypothesis import given
from hypothesis import strategies as st
from spec_strategies import broken_specs, make_workspace, valid_specs

from kvsl.lang import check_paths, compile_spec
from kvsl.lang.codes import CODES
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.fmt import format_text
from kvsl.lang.parser import load_source
from kvsl.lang.render import render_diagnostics

WORKSPACE = make_workspace()
atexit.register(shutil.rmtree, WORKSPACE.root, True)


def _write(text: str, name: str = "fuzz.kvs") -> Path:
    path = WORKSPACE.root / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def _assert_well_formed(diagnostics: list[Diagnostic], path: Path, text: str) -> None:
    lines = text.count("\n") + 1
    for d in diagnostics:
        assert d.code in CODES, f"{d.code} is not registered"
        assert d.message and d.span.line >= 1 and d.span.column >= 1, d
        if d.span.path == str(path):
            assert d.span.line <= lines, d
    for format in ("human", "json", "github", "sarif"):
        shown = render_diagnostics(diagnostics, format=format)
        if format in ("human", "github"):
            assert "\x1b" not in shown and "\x07" not in shown


def _meaning(diagnostics: list[Diagnostic]) -> Counter[tuple[str, str, str]]:
    return Counter((d.code, d.severity.value, d.message) for d in diagnostics)


@fuzz(500)
@given(valid_specs())
def test_valid_specs_check_clean_and_format_idempotently(text: str) -> None:
    path = _write(text)
    plan, diagnostics = compile_spec(path)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    assert not errors, (text, render_diagnostics(errors))
    assert plan is not None and len(plan.plan_hash) == 64
    once, problems = format_text(text, str(path))
    assert once is not None, problems
    twice, _ = format_text(once, str(path))
    assert twice == once
    formatted = _write(once, "formatted.kvs")
    assert _meaning(compile_spec(formatted)[1]) == _meaning(diagnostics)


@fuzz(1000)
@given(broken_specs(WORKSPACE))
def test_broken_specs_give_located_codes(text: str) -> None:
    path = _write(text)
    plan, diagnostics = compile_spec(path)
    assert (plan is None) == any(d.severity is Severity.ERROR for d in diagnostics)
    _assert_well_formed(diagnostics, path, text)
    _assert_well_formed(check_paths([str(path)]), path, text)
    source, _ = load_source(path)  # as `kvsl fmt` does: a file it cannot read, it leaves
    once = format_text(source.text, str(path))[0] if source is not None else None
    if once is not None:
        assert format_text(once, str(path))[0] == once
        formatted = _write(once, "formatted.kvs")
        assert _meaning(compile_spec(formatted)[1]) == _meaning(diagnostics)


@fuzz(30)
@given(st.one_of(valid_specs(), broken_specs(WORKSPACE)), st.sampled_from(["check", "fmt", "plan"]))
def test_the_cli_never_raises(text: str, command: str) -> None:
    from typer.testing import CliRunner

    from kvsl.cli import app

    path = _write(text)
    args = {"check": ["check", "--format", "json"], "fmt": ["fmt", "--check"], "plan": ["plan"]}
    result = CliRunner().invoke(app, [*args[command], str(path)])
    assert result.exit_code in (0, 1, 2, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
