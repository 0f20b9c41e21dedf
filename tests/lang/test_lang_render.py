"""The renderers: rustc-style human output, colour, GitHub escaping, unreadable sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.render import render_diagnostics, summary
from kvsl.lang.source import SourceFile, Span


def _diagnostic(path: str, text: str, start: int, end: int, **extra: object) -> Diagnostic:
    span = SourceFile(path, text).span(start, end)
    return Diagnostic("KVS104", Severity.ERROR, "unknown key `pairz`", span, **extra)  # type: ignore[arg-type]


def test_human_shows_line_carets_and_help(tmp_path: Path) -> None:
    text = "style \"s\" {\n\tpairz = 4\n}\n"
    path = tmp_path / "s.kvs"
    path.write_text(text, encoding="utf-8")
    d = _diagnostic(str(path), text, 13, 18, help="did you mean `pairs`?")
    assert render_diagnostics([d]) == (
        "error[KVS104]: unknown key `pairz`\n"
        f" --> {path}:2:2\n"
        "  |\n"
        "2 | \tpairz = 4\n"
        "  | \t^^^^^\n"  # the tab is copied so that the carets line up
        "  |\n"
        "  = help: did you mean `pairs`?"
    )


def test_span_in_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    for path in (tmp_path / "gone.kvs", tmp_path):
        d = _diagnostic(str(path), "x = 1\n", 0, 1)
        assert render_diagnostics([d]) == f"error[KVS104]: unknown key `pairz`\n --> {path}:1:1"


def test_label_in_another_file(tmp_path: Path) -> None:
    main, other = tmp_path / "a.kvs", tmp_path / "b.kvs"
    main.write_text("x = 1\n", encoding="utf-8")
    other.write_text("y = 2\n", encoding="utf-8")
    label = Label(SourceFile(str(other), "y = 2\n").span(0, 1), "defined here")
    out = render_diagnostics([_diagnostic(str(main), "x = 1\n", 0, 1, labels=(label,))])
    assert f" ::: {other}:1:1\n" in out and "1 | y = 2\n  | - defined here" in out


def test_colour_only_when_asked(tmp_path: Path) -> None:
    d = _diagnostic(str(tmp_path / "x.kvs"), "", 0, 0)
    assert "\033[" not in render_diagnostics([d])
    assert "\033[1;31merror[KVS104]" in render_diagnostics([d], color=True)


def test_github_escapes_properties_and_newlines() -> None:
    span = Span("dir,with:odd.kvs", 0, 1, 1, 1, 1, 2)
    d = Diagnostic("KVS201", Severity.WARNING, "bad\nthing 100%", span)
    assert render_diagnostics([d], format="github") == (
        "::warning file=dir%2Cwith%3Aodd.kvs,line=1,col=1,endLine=1,endColumn=2,"
        "title=KVS201::bad%0Athing 100%25"
    )


def test_sarif_related_locations() -> None:
    span = Span("a.kvs", 0, 1, 1, 1, 1, 2)
    label = Label(Span("b.kvs", 0, 1, 3, 4, 3, 5), "first declared here")
    d = Diagnostic("KVS119", Severity.ERROR, "duplicate style name `s`", span, labels=(label,))
    log = json.loads(render_diagnostics([d], format="sarif"))
    result = log["runs"][0]["results"][0]
    related = result["relatedLocations"][0]
    assert related["message"]["text"] == "first declared here"
    assert related["physicalLocation"]["region"]["startLine"] == 3
    assert log["runs"][0]["tool"]["driver"]["rules"][0]["name"] == "duplicate style name"


def test_summary() -> None:
    span = Span.whole_file("x")
    error = Diagnostic("KVS001", Severity.ERROR, "e", span)
    warning = Diagnostic("KVS116", Severity.WARNING, "w", span)
    assert summary([error, error, warning], 1) == "found 2 errors and 1 warning in 1 file"
    assert summary([warning], 3) == "found 1 warning in 3 files"


@pytest.mark.parametrize("format", ["human", "json", "github", "sarif"])
@pytest.mark.parametrize("exists", [True, False])
def test_a_file_name_that_is_not_utf8_in_every_format(tmp_path: Path, format: str, exists: bool) -> None:
    """`kvsl check $'sp\\xffec.kvs' --format sarif` ended in a UnicodeEncodeError traceback
    (the URI of a name Python holds with a surrogate); every format reports it."""
    from typer.testing import CliRunner

    from kvsl.cli import app

    name = os.fsdecode(b"sp\xffec.kvs")  # the name on disk is not UTF-8
    path = tmp_path / name
    if exists:
        path.write_text('style "x" {\n  nokey = 1\n}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(path), "--format", format])
    assert result.exit_code == (1 if exists else 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if format == "sarif":
        found = json.loads(result.stdout)["runs"][0]["results"]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in found}
        assert uris and all(uri.endswith("sp%FFec.kvs") for uri in uris), uris
