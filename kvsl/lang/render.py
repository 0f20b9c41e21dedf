"""Rendering diagnostics: human (rustc/ruff style), JSON, GitHub Actions, SARIF 2.1.0.

Every renderer reads `Diagnostic.to_dict()`. The human renderer re-reads the source file
to show the line exactly as written with carets under the span (or takes its text from
`sources`, for a spec that is no file: `<stdin>`); a span in a file it cannot read
(deleted, binary, a directory) is shown without the snippet.

>>> from kvsl.lang.diagnostics import Diagnostic, Severity
>>> from kvsl.lang.source import Span
>>> d = Diagnostic("KVS104", Severity.ERROR, "unknown key `pairz`", Span("x.kvs", 0, 5, 3, 5, 3, 10))
>>> print(render_diagnostics([d], format="github"))
::error file=x.kvs,line=3,col=5,endLine=3,endColumn=10,title=KVS104::unknown key `pairz`
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from kvsl.base.plurals import counted
from kvsl.lang.diagnostics import Diagnostic, Severity

FORMATS = ("human", "json", "github", "sarif")

_RESET = "\033[0m"
_STYLES = {
    Severity.ERROR: "\033[1;31m",
    Severity.WARNING: "\033[1;33m",
    Severity.NOTE: "\033[1;36m",
    "bold": "\033[1m",
    "gutter": "\033[1;34m",
}
_MAX_LINE_READ = 1_000_000  # characters read to find a line; spec files are far smaller


def clean(text: str) -> str:
    """`text` safe for a terminal or a CI log: control characters (ESC, BEL, CR, ...)
    that a spec value can carry into a message are shown as escapes, never sent raw.

    >>> clean("a\\x1b[31mb\\tc")
    'a\\\\x1b[31mb\\tc'
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\t" else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def render_diagnostics(
    diagnostics: list[Diagnostic],
    *,
    format: str = "human",
    color: bool = False,
    sources: Mapping[str, str] | None = None,
) -> str:
    """Render diagnostics in one of `FORMATS` (the output has no trailing newline).

    `sources` holds the text of specs that are no file (`{"<stdin>": text}`), for the
    human renderer's snippets.
    """
    if format == "json":
        return render_json(diagnostics)
    if format == "github":
        return "\n".join(_github(d) for d in diagnostics)
    if format == "sarif":
        return render_sarif(diagnostics)
    if format != "human":
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return render_human(diagnostics, color=color, sources=sources)


# --- human -----------------------------------------------------------------------------


def render_human(
    diagnostics: list[Diagnostic], *, color: bool = False, sources: Mapping[str, str] | None = None
) -> str:
    """rustc-style blocks separated by blank lines."""
    lines_of = _LineCache(sources or {})
    paint = _painter(color)
    return "\n\n".join(_human(d, lines_of, paint) for d in diagnostics)


def _painter(color: bool) -> Callable[[str, object], str]:
    def paint(text: str, style: object) -> str:
        if not color:
            return text
        return f"{_STYLES.get(style, '')}{text}{_RESET}"  # type: ignore[call-overload]

    return paint


class _LineCache:
    """Source lines per file, read lazily; None for files that cannot be read as text."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._files: dict[str, list[str] | None] = {
            path: _split(text) for path, text in sources.items()
        }

    def line(self, path: str, number: int) -> str | None:
        if path not in self._files:
            self._files[path] = self._read(path)
        lines = self._files[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]

    @staticmethod
    def _read(path: str) -> list[str] | None:
        try:
            if not os.path.isfile(path):
                return None
            with open(path, encoding="utf-8", errors="replace", newline="") as handle:
                text = handle.read(_MAX_LINE_READ)
        except OSError:
            return None
        if "\0" in text:
            return None
        return _split(text)


def _split(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")]


def _snippet(
    path: str,
    line: int,
    column: int,
    end_line: int,
    end_column: int,
    lines_of: _LineCache,
    width: int,
    marker: str,
    message: str,
    paint: Callable[[str, object], str],
    style: object,
) -> list[str] | None:
    text = lines_of.line(path, line)
    if text is None:
        return None
    shown = "".join(ch if ch == "\t" or ch.isprintable() else "\ufffd" for ch in text)
    start = max(column - 1, 0)
    stop = end_column - 1 if end_line == line else len(shown)
    stop = max(min(stop, len(shown)), start + 1)
    # Carets line up under tabs too: copy the tabs of the line's prefix.
    pad = "".join("\t" if ch == "\t" else " " for ch in shown[:start])
    underline = marker * (stop - start)
    gutter = paint(f"{line:>{width}} |", "gutter")
    empty = paint(" " * width + " |", "gutter")
    tail = f" {message}" if message else ""
    return [f"{gutter} {shown}".rstrip(), f"{empty} {pad}{paint(underline + tail, style)}"]


def _human(d: Diagnostic, lines_of: _LineCache, paint: Callable[[str, object], str]) -> str:
    span = d.span
    numbers = [span.line] + [label.span.line for label in d.labels]
    width = len(str(max(numbers)))
    header = paint(f"{d.severity.value}[{d.code}]", d.severity) + paint(
        f": {clean(d.message)}", "bold"
    )
    where = f"{clean(span.path)}:{span.line}:{span.column}"
    out = [header, f"{' ' * width}{paint('-->', 'gutter')} {where}"]
    empty = paint(" " * width + " |", "gutter")
    snippet = _snippet(
        span.path,
        span.line,
        span.column,
        span.end_line,
        span.end_column,
        lines_of,
        width,
        "^",
        "",
        paint,
        d.severity,
    )
    same_file_labels = [label for label in d.labels if label.span.path == span.path]
    other_labels = [label for label in d.labels if label.span.path != span.path]
    if snippet is not None:
        out.append(empty)
        out.extend(snippet)
    for label in same_file_labels + other_labels:
        ls = label.span
        if ls.path != span.path or snippet is None:
            out.append(
                f"{' ' * width}{paint(':::', 'gutter')} {clean(ls.path)}:{ls.line}:{ls.column}"
            )
        labelled = _snippet(
            ls.path,
            ls.line,
            ls.column,
            ls.end_line,
            ls.end_column,
            lines_of,
            width,
            "-",
            clean(label.message),
            paint,
            "gutter",
        )
        if labelled is not None:
            out.append(empty)
            out.extend(labelled)
        else:
            out.append(f"{' ' * width} = note: {clean(label.message)}")
    if snippet is not None or d.labels:
        out.append(empty)
    if d.help:
        help = clean(d.help)
        out.append(f"{' ' * width} {paint('=', 'gutter')} {paint('help', 'bold')}: {help}")
    return "\n".join(out)


def summary(diagnostics: list[Diagnostic], files: int) -> str:
    """One closing line: `found 2 errors and 1 warning in 3 files`.

    >>> summary([], 2)
    'all checks passed (2 files)'
    """
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    if not errors and not warnings:
        return f"all checks passed ({counted(files, 'file')})"
    parts = []
    if errors:
        parts.append(counted(errors, "error"))
    if warnings:
        parts.append(counted(warnings, "warning"))
    return f"found {' and '.join(parts)} in {counted(files, 'file')}"


# --- machine formats -------------------------------------------------------------------


def render_json(diagnostics: list[Diagnostic]) -> str:
    """A JSON list of `to_dict()`s, keys sorted, in the order given (callers sort)."""
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, sort_keys=True)


def _escape_data(text: str) -> str:
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return clean(escaped)


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(d: Diagnostic) -> str:
    kind = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}[
        d.severity
    ]
    s = d.span
    props = (
        f"file={_escape_property(s.path)},line={s.line},col={s.column},"
        f"endLine={s.end_line},endColumn={s.end_column},title={_escape_property(d.code)}"
    )
    message = d.message + (f" (help: {d.help})" if d.help else "")
    return f"::{kind} {props}::{_escape_data(message)}"


def _uri(path: str) -> str:
    """The path as a relative URI, its bytes percent-encoded: a file name that is not
    UTF-8 (`b"sp\\xffec.kvs"`, held by Python as a surrogate) made `quote` raise."""
    from urllib.parse import quote

    return quote(os.fsencode(path.replace(os.sep, "/")))


def render_sarif(diagnostics: list[Diagnostic]) -> str:
    """SARIF 2.1.0, one run; rules are the codes used, from the registry."""
    from kvsl import __version__
    from kvsl.lang.codes import CODES

    used = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(used)}
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
    rules = []
    for code in used:
        entry = CODES.get(code)
        rule: dict[str, object] = {"id": code}
        if entry is not None:
            rule.update(
                {
                    "name": entry.title,
                    "shortDescription": {"text": entry.title},
                    "fullDescription": {"text": entry.explanation},
                    "help": {
                        "text": f"{entry.explanation}\n\nBad:\n{entry.bad}\n\nGood:\n{entry.good}"
                    },
                    "defaultConfiguration": {"level": level[entry.severity]},
                }
            )
        rules.append(rule)

    def location(path: str, line: int, column: int, end_line: int, end_column: int) -> dict:
        region = {"startLine": line, "startColumn": column}
        if (end_line, end_column) > (line, column):
            region |= {"endLine": end_line, "endColumn": end_column}
        return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": region}}

    results = []
    for d in diagnostics:
        s = d.span
        message = d.message + (f"\nhelp: {d.help}" if d.help else "")
        result: dict[str, object] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": level[d.severity],
            "message": {"text": message},
            "locations": [location(s.path, s.line, s.column, s.end_line, s.end_column)],
        }
        if d.labels:
            result["relatedLocations"] = [
                location(
                    label.span.path,
                    label.span.line,
                    label.span.column,
                    label.span.end_line,
                    label.span.end_column,
                )
                | {"id": i, "message": {"text": label.message}}
                for i, label in enumerate(d.labels)
            ]
        results.append(result)
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kvsl",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, sort_keys=True)
