"""`kvsl check`, `kvsl fmt`, `kvsl plan`, `kvsl explain`: the front-end commands.

These import only `kvsl.lang` (no torch, transformers or openai), so they start fast
enough to run on every commit in CI.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from kvsl.base.counts import decimal_count
from kvsl.base.plurals import counted
from kvsl.cli import app
from kvsl.lang.diagnostics import Diagnostic, ExitCode, Severity
from kvsl.lang.source import Span

if TYPE_CHECKING:
    from kvsl.lang.reading import SourceRead


class OutputFormat(StrEnum):
    human = "human"
    json = "json"
    github = "github"
    sarif = "sarif"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: human, json, github (Actions) or sarif."),
]
PathsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Spec files or directories (searched recursively for *.kvs).", show_default="."
    ),
]


def _color(stream: object) -> bool:
    from kvsl.cli.check_fast import use_color

    return use_color(stream)  # type: ignore[arg-type]


def _emit(
    diagnostics: list[Diagnostic],
    format: OutputFormat,
    stream: object = None,
    sources: dict[str, str] | None = None,
) -> None:
    from kvsl.lang.render import render_diagnostics

    stream = stream or sys.stdout
    if not diagnostics and format in (OutputFormat.human, OutputFormat.github):
        return
    from kvsl.cli.output import write

    color = _color(stream)
    text = render_diagnostics(diagnostics, format=format.value, color=color, sources=sources)
    write(text, stream)  # type: ignore[arg-type]


@app.command()
def check(
    paths: PathsArgument = None,
    format: FormatOption = OutputFormat.human,
    warnings_as_errors: Annotated[
        bool, typer.Option("--warnings-as-errors", help="Exit 1 on warnings too.")
    ] = False,
) -> None:
    """Check spec files: every error in one pass, with codes (see `kvsl explain CODE`).

    Exit status: 0 clean, 1 errors found, 2 usage error.
    """
    from kvsl.cli.check_fast import run_check

    raise typer.Exit(run_check(paths or [], format.value, warnings_as_errors))


@app.command("fmt")
def fmt_command(
    paths: PathsArgument = None,
    check_only: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; exit 1 and list files that would change."),
    ] = False,
) -> None:
    """Rewrite spec files in the canonical layout (comments kept; idempotent).

    `-` formats a spec read from standard input onto standard output (with `--check`:
    nothing is printed but the report, and the exit status is 1 when it would change).
    """
    from kvsl.cli.check_fast import stdin_spec
    from kvsl.cli.output import write
    from kvsl.lang import exit_code_for, sort_diagnostics, spec_files
    from kvsl.lang.reading import STDIN_NAME

    targets = paths or ["."]
    stdin, sources = stdin_spec(targets)
    files, diagnostics = spec_files(targets, writing=True)
    changed = _format_files(files, stdin, check_only, diagnostics)
    diagnostics = sort_diagnostics(diagnostics)
    _emit(diagnostics, OutputFormat.human, sys.stderr, sources)
    # `fmt -` prints the spec on stdout: the report goes to stderr, and only speaks of files
    piped = STDIN_NAME in files and not check_only
    report = sys.stderr if piped else sys.stdout
    verb = "would reformat" if check_only else "reformatted"
    for path in changed:
        write(f"{verb} {path}", report)
    named = [path for path in files if not (piped and path == STDIN_NAME)]
    if named or not piped:
        write(_fmt_summary(named, changed, diagnostics, check_only), report)
    code = exit_code_for(diagnostics)
    if code is ExitCode.CLEAN and check_only and changed:
        code = ExitCode.ERRORS
    raise typer.Exit(int(code))


def _format_files(
    files: list[str], stdin: SourceRead | None, check_only: bool, diagnostics: list[Diagnostic]
) -> list[str]:
    """Format each file (rewritten unless `check_only`); the files that change (or would).

    `<stdin>` is the spec `stdin`: printed formatted on stdout (changed or not), unless
    `check_only`. Every file's problems are added to `diagnostics`.
    """
    from kvsl.cli.output import write
    from kvsl.lang.fmt import format_text
    from kvsl.lang.parser import load_source
    from kvsl.lang.reading import STDIN_NAME

    changed: list[str] = []
    for path in files:
        read = stdin if path == STDIN_NAME and stdin is not None else load_source(path)
        source, problems = read
        if source is None:
            diagnostics.extend(problems)
            continue
        formatted, problems = format_text(source.text, path)
        if formatted is None:
            diagnostics.extend(problems)
            continue
        if path == STDIN_NAME and not check_only:
            write(formatted, end="")  # never into a file called `-`
        elif formatted != source.text:
            changed.append(path)
            if not check_only:
                _write_atomically(path, formatted)
    return changed


def _fmt_summary(
    files: list[str], changed: list[str], diagnostics: list[Diagnostic], check_only: bool
) -> str:
    """`1 file reformatted, 2 files already formatted`: the closing line of `kvsl fmt`."""
    verb = "would be reformatted" if check_only else "reformatted"
    refused = len({d.span.path for d in diagnostics if d.severity is Severity.ERROR} & set(files))
    unchanged = len(files) - len(changed) - refused
    parts = []
    if changed:
        parts.append(f"{counted(len(changed), 'file')} {verb}")
    if unchanged or not (changed or refused or diagnostics):
        parts.append(f"{counted(unchanged, 'file')} already formatted")
    if refused:  # not "0 files already formatted" under the errors that stopped them
        parts.append(f"{counted(refused, 'file')} left unchanged: errors above")
    return ", ".join(parts) or "nothing formatted"


def _write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text`; a full disk is KVS019 (exit 3) and leaves it as it was."""
    from kvsl.base.atomic import atomic_path
    from kvsl.cli.output import output_error

    try:
        with (
            atomic_path(path) as temporary,
            open(temporary, "w", encoding="utf-8", newline="") as handle,
        ):
            handle.write(text)
    except OSError as err:
        raise output_error(err, f"`{path}`") from None


@app.command()
def plan(
    spec: Annotated[
        str, typer.Argument(help="The spec file, a built-in style name, or `-` (standard input).")
    ],
    format: FormatOption = OutputFormat.human,
) -> None:
    """Print the fully resolved extraction plan as JSON, with its two content hashes.

    `vector_hash` covers what changes the vectors (model, traces, N, shots, selection,
    seed, position; not the teacher's template); `plan_hash` covers the whole plan.
    `-` reads the spec from standard input (its relative paths start in the current folder).
    """
    import json

    from kvsl.builtin import resolve_target
    from kvsl.cli.check_fast import stdin_spec
    from kvsl.lang import compile_spec, exit_code_for
    from kvsl.lang.diagnostics import KvslError
    from kvsl.lang.reading import STDIN_PATH

    stdin, sources = stdin_spec([spec])
    try:
        if spec != STDIN_PATH:
            spec = str(resolve_target(spec))  # a built-in style name → its spec file
    except KvslError as err:
        _emit(err.diagnostics, format, sys.stderr)
        raise typer.Exit(int(err.exit_code)) from None
    result, diagnostics = compile_spec(spec, stdin)
    _emit(diagnostics, format, sys.stderr, sources)
    if result is None:
        raise typer.Exit(int(exit_code_for(diagnostics)))
    from kvsl.cli.output import write

    write(json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))


def unknown_code_diagnostic(code: str) -> Diagnostic:
    """KVS018: `kvsl explain` was given a code that is not registered."""
    import re
    from difflib import get_close_matches

    from kvsl.lang.codes import CODES

    short = re.fullmatch(r"(?:KVS)?(\d{1,2})", code.strip().upper())
    if short:  # `KVS5`, `KVS52`: a phase or a family, not a near miss of one code
        family = f"KVS{short.group(1)}{'x' * (3 - len(short.group(1)))}"
        close = [family] if codes_matching(family) else []
    else:
        upper = code.strip().upper()
        digits = upper[3:].replace("O", "0") if upper.startswith("KVS") else ""
        # `KVS1O4` (a letter O) is KVS104, not whichever code difflib finds nearest.
        close = [f"KVS{digits}"] if f"KVS{digits}" in CODES else []
        close = close or get_close_matches(upper, list(CODES), n=1, cutoff=0.8)
    return Diagnostic(
        "KVS018",
        Severity.ERROR,
        f"unknown diagnostic code `{code}`",
        Span.whole_file("<command line>"),
        help=(f"did you mean `{close[0]}`? " if close else "")
        + "codes look like `KVS104`; `kvsl explain --list` lists them all",
    )


def codes_matching(code: str) -> list[str]:
    """The registered codes `kvsl explain CODE` prints, in registry order.

    `KVS104`, `kvs104` and `104` name one code; a family written with a trailing `x`
    for each open digit (`KVS8xx`, `KVS51x`, as the docs refer to groups of codes)
    names every registered code in it. Anything else matches nothing.
    """
    import re

    from kvsl.lang.codes import CODES

    key = code.strip().upper()
    number = decimal_count(key)
    if number is not None:
        key = f"KVS{number:03d}"
    family = re.fullmatch(r"KVS(\d{1,2})(X{1,2})", key)
    if family is None or len(family.group(1) + family.group(2)) != 3:
        return [key] if key in CODES else []
    return [name for name in CODES if name.startswith(f"KVS{family.group(1)}")]


@app.command()
def explain(
    code: Annotated[
        str | None,
        typer.Argument(help="A diagnostic code, e.g. KVS104, or a group of them, e.g. KVS51x."),
    ] = None,
    list_codes: Annotated[bool, typer.Option("--list", help="List every code.")] = False,
) -> None:
    """Explain a diagnostic code, with an example that triggers it and the fix."""
    from kvsl.lang.codes import CODES

    if list_codes or code is None:
        if code is None and not list_codes:
            print("usage: kvsl explain CODE   (or --list)", file=sys.stderr)
            raise typer.Exit(int(ExitCode.USAGE))
        from kvsl.cli.output import write

        # Through `write`, like every front-end report: `kvsl explain --list | head -1` and
        # `> /dev/full` end as a closed pipe or KVS019, not in a traceback.
        write("\n".join(f"{e.code}  {e.severity.value:<7}  {e.title}" for e in CODES.values()))
        return
    names = codes_matching(code)
    if not names:
        _emit([unknown_code_diagnostic(code)], OutputFormat.human, sys.stderr)
        raise typer.Exit(int(ExitCode.USAGE))
    from kvsl.cli.output import write

    write(("\n\n" + "-" * 72 + "\n\n").join(_explanation(name) for name in names))


def _explanation(name: str) -> str:
    from kvsl.lang.codes import CODES

    entry = CODES[name]
    return (
        f"{entry.code}: {entry.title} ({entry.severity.value})\n\n"
        f"{entry.explanation}\n\n"
        "Example that triggers it:\n\n"
        f"{_indent(entry.bad)}\n\n"
        "Fixed:\n\n"
        f"{_indent(entry.good)}"
    )


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.split("\n"))
