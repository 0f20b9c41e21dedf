"""The front end: source → syntax tree → diagnostics / plan.

Nothing in this package imports torch, transformers or openai, so that
`kvsl check` starts instantly and can guard spec files in CI.

Public API:

- `compile_spec(path)` → `(Plan | None, diagnostics)`: parse, resolve `extends`, check,
  lower. The plan is None when there are errors (warnings do not count).
- `load_plan(path)` → `Plan`, raising `KvslError(diagnostics, ExitCode.ERRORS)` on errors.
- `check_paths(paths)` → diagnostics for files and directories (recursive `*.kvs`),
  including cross-file checks (duplicate style names); `-` is a spec on standard input.

>>> plan, diagnostics = compile_spec("/nonexistent.kvs")
>>> plan is None, diagnostics[0].code
(True, 'KVS008')
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Label, Severity
from kvsl.lang.plan import Plan
from kvsl.lang.reading import STDIN_NAME, STDIN_PATH, SourceRead
from kvsl.lang.source import Span

__all__ = [
    "USAGE_CODES",
    "check_paths",
    "compile_spec",
    "exit_code_for",
    "load_plan",
    "sort_diagnostics",
    "spec_files",
]

# Codes that mean the command line itself is wrong (exit 2 rather than 1): a directory
# where one spec file is expected, a missing file, an unknown code for `kvsl explain`,
# `-` with nothing on standard input, a folder too large to walk.
USAGE_CODES = frozenset({"KVS002", "KVS008", "KVS018", "KVS022", "KVS023"})


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deduplicate and order by file, position and code (stable output for CI)."""
    unique = dict.fromkeys(diagnostics)
    return sorted(
        unique,
        key=lambda d: (d.span.path, d.span.line, d.span.column, d.code, d.message),
    )


def exit_code_for(diagnostics: list[Diagnostic], warnings_as_errors: bool = False) -> ExitCode:
    """0 clean, 1 errors (or warnings with `warnings_as_errors`), 2 usage errors."""
    if any(d.code in USAGE_CODES for d in diagnostics):
        return ExitCode.USAGE
    failing = {Severity.ERROR, Severity.WARNING} if warnings_as_errors else {Severity.ERROR}
    return ExitCode.ERRORS if any(d.severity in failing for d in diagnostics) else ExitCode.CLEAN


def compile_spec(
    path: str | os.PathLike[str], stdin: SourceRead | None = None
) -> tuple[Plan | None, list[Diagnostic]]:
    """Parse, resolve `extends`, check and lower one spec.

    Returns the plan (None when any diagnostic is an error) and every diagnostic,
    sorted. Never raises for anything in the file. A path `-` is the spec `stdin` (what
    `read_stdin` gave), read from this process's standard input when not given, as in
    `check_paths`.
    """
    from kvsl.lang.check import check_resolved
    from kvsl.lang.extends import Session
    from kvsl.lang.lower import lower

    name = os.fspath(path)
    session = Session()
    if name == STDIN_PATH:
        from kvsl.lang.reading import read_stdin, standard_input

        name = STDIN_NAME
        session.given[name] = stdin if stdin is not None else read_stdin(standard_input())
    decl, diagnostics = session.resolve(name)
    if decl is None:
        return None, sort_diagnostics(diagnostics)
    resolved, more = check_resolved(decl, session)
    diagnostics.extend(more)
    if decl.kind == "base":
        diagnostics.append(
            Diagnostic(
                "KVS122",
                Severity.ERROR,
                f"`{decl.name}` is a base spec: it has no plan of its own"
                if decl.name
                else "a base spec has no plan of its own",
                decl.name_span,
                help="build a spec that extends it, or write `style` instead of `base`",
            )
        )
    diagnostics = sort_diagnostics(diagnostics)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        return None, diagnostics
    return lower(resolved), diagnostics


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """The plan of a spec, or `KvslError(diagnostics, ExitCode.ERRORS)` if it has errors.

    Warnings are not errors: a spec with warnings loads.
    """
    plan, diagnostics = compile_spec(path)
    if plan is None:
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        raise KvslError(errors, exit_code_for(errors))
    return plan


def spec_files(paths: list[str], *, writing: bool = False) -> tuple[list[str], list[Diagnostic]]:
    """Expand directories into their `*.kvs` files (recursive, sorted; hidden folders,
    virtual environments and, when `writing`, links out of the folder skipped: see
    `kvsl.lang.walk`).

    `-` (standard input) is listed as `<stdin>`, which `check_paths` reads from there.
    """
    files: list[str] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        if path == STDIN_PATH:
            files.append(STDIN_NAME)
        elif os.path.isdir(path):
            from kvsl.lang.walk import walk_specs

            found, cut_short = walk_specs(path, writing=writing)
            diagnostics.extend(cut_short)
            if not found and not cut_short:
                diagnostics.append(
                    Diagnostic(
                        "KVS009",
                        Severity.WARNING,
                        f"no `.kvs` files in `{path}`",
                        Span.whole_file(path),
                    )
                )
            files.extend(found)
        elif os.path.exists(path) or _link_loop(path):
            files.append(path)  # a link loop is read, and refused with the system's reason
        else:
            from kvsl.lang.reading import missing_file

            diagnostics.append(missing_file(path))
    return list(dict.fromkeys(files)), diagnostics


def _link_loop(path: str) -> bool:
    """Whether `path` is a symbolic link that leads back to itself (not a missing file)."""
    try:
        os.stat(path)
    except OSError as err:
        return err.errno == errno.ELOOP
    return False


def check_paths(paths: list[str], stdin: SourceRead | None = None) -> list[Diagnostic]:
    """Check files and directories (recursive `*.kvs`), sorted and deduplicated.

    Besides each spec's own diagnostics, style names must be unique across the files
    checked together (KVS119). A path `-` is the spec `stdin` (what `read_stdin` gave),
    read from this process's standard input when not given; its diagnostics name it
    `<stdin>` and its relative paths start in the current directory.
    """
    from kvsl.lang.check import check_resolved
    from kvsl.lang.extends import Session
    from kvsl.lang.reading import read_stdin, standard_input

    files, diagnostics = spec_files(paths)
    session = Session()
    if STDIN_NAME in files:
        session.given[STDIN_NAME] = stdin if stdin is not None else read_stdin(standard_input())
    names: dict[str, Span] = {}
    for path in files:
        decl, found = session.resolve(path)
        diagnostics.extend(found)
        if decl is None:
            continue
        _, more = check_resolved(decl, session)
        diagnostics.extend(more)
        if decl.kind != "style" or decl.name is None:
            continue
        first = names.setdefault(decl.name, decl.name_span)
        if first is not decl.name_span:
            diagnostics.append(
                Diagnostic(
                    "KVS119",
                    Severity.ERROR,
                    f"duplicate style name `{decl.name}`",
                    decl.name_span,
                    labels=(Label(first, "first declared here"),),
                    help="style names pick vector artifacts and eval rows: rename one",
                )
            )
    return sort_diagnostics(diagnostics)
