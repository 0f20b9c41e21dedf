"""Meaning checks despite syntax errors: every error in one pass, as far as it is safe.

A file with a syntax error has no syntax tree. Its syntax errors are all reported (the
parser recovers); its meaning errors come from a second parse of the file with each
line that holds a syntax error blanked out (offsets kept, so every position stays
true). When that text parses, the per-key checks (`analyze`: unknown keys, types,
ranges, duplicates) run on it and their diagnostics are reported too. The whole-spec
checks (missing keys, `extends`, files, templates) are not: a key on a blanked line
would be reported missing. When the blanked text does not parse either (a lost `}`
changes which block every later line is in), a note says that meaning checks wait for
the syntax to be fixed.

>>> from kvsl.lang.parser import parse_text
>>> text = 'style "s" {\\n  contrast { pairz = 4 }\\n  a 1\\n  generate { mode = fast }\\n}\\n'
>>> _, syntax = parse_text(text, "s.kvs")
>>> from kvsl.lang.source import SourceFile
>>> [d.code for d in syntax + meaning_despite_syntax(SourceFile("s.kvs", text), syntax)]
['KVS014', 'KVS104', 'KVS108']
"""

from __future__ import annotations

from kvsl.lang.analyze import analyze
from kvsl.lang.diagnostics import Diagnostic, Severity
from kvsl.lang.source import SourceFile
from kvsl.lang.syntax import Spec

# Whole-file findings of `analyze` that a blanked line can cause rather than reveal:
# they are dropped from the meaning diagnostics of a salvaged spec.
UNSAFE_AFTER_BLANKING = frozenset({"KVS006", "KVS100", "KVS101", "KVS102"})


def without_broken_lines(source: SourceFile, syntax: list[Diagnostic]) -> Spec | Diagnostic | None:
    """The spec parsed with every line a syntax error touched blanked out (positions stay
    true), or the KVS021 note when even that does not parse; None when no error is in
    `source` itself. `meaning_despite_syntax` analyses the salvaged spec."""
    from kvsl.lang.parser import parse_source

    broken: set[int] = set()
    for diagnostic in syntax:
        if diagnostic.span.path == source.path:
            broken.update(range(diagnostic.span.line, diagnostic.span.end_line + 1))
    if not broken:
        return None
    lines = source.text.split("\n")
    blanked = "\n".join(
        " " * len(line) if number in broken else line for number, line in enumerate(lines, 1)
    )
    spec, problems = parse_source(SourceFile(source.path, blanked))
    if spec is None or any(d.severity is Severity.ERROR for d in problems):
        return Diagnostic(
            "KVS021",
            Severity.NOTE,
            "meaning checks skipped until the syntax errors are fixed",
            syntax[0].span,
            help="without the broken lines the file still does not parse (a bracket is "
            "lost), so which block a key is in is not known",
        )
    return spec


def meaning_despite_syntax(source: SourceFile, syntax: list[Diagnostic]) -> list[Diagnostic]:
    """Meaning diagnostics of the lines no syntax error touched (see the module doc)."""
    salvaged = without_broken_lines(source, syntax)
    if salvaged is None:
        return []
    if isinstance(salvaged, Diagnostic):
        return [salvaged]
    _, meaning = analyze(salvaged)
    return [d for d in meaning if d.code not in UNSAFE_AFTER_BLANKING]
