"""`kvsl traces import`: the paper's released trace files → one kvsl trace file.

The paper's files (`gsm8k_oai.jsonl`, `arc_stepwise.jsonl`, ...) are JSONL records with
`query` (or `question`), `steps` (a list of strings, or one string) and `solution`; kvsl
reads them directly (`kvsl.formats.traces`), so a spec may name one as its `traces`. Importing
rewrites them in kvsl's own layout, which is what `kvsl teach` appends to:

    {"id": "arc_stepwise-0", "question": "...", "steps": [...], "answer": "A",
     "style_name": "...", "source_file": "..."}

- every record is validated first; bad records are reported with file:line (KVS501,
  KVS502, KVS519) and nothing is written, unless `skip_bad` turns them into one KVS521
  warning and leaves them out;
- ids are the record's own `id` prefixed with the source file's stem (ids repeat across
  the paper's files), or `<stem>-line<N>` when a record has none;
- a question already imported (same text) is left out, with one KVS522 warning: two
  traces with one question would make a target its own demo;
- `limit` keeps the first N traces (file order); the output is written atomically and an
  existing file is replaced only with `force` (KVS520).

No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kvsl.base.plurals import counted
from kvsl.formats.traces import Trace, iter_trace_lines
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.source import Span


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote (or, for a dry run, would write)."""

    out: Path
    written: int
    skipped_bad: int
    skipped_duplicates: int
    warnings: list[Diagnostic] = field(default_factory=list)


def _with_id(trace: Trace, stem: str, line: int) -> Trace:
    own = trace.id if trace.id is not None else f"line{line}"
    return replace(trace, id=f"{stem}-{own}")


def _same_file(a: Path, b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (through links and `..`); False when one is gone."""
    try:
        return a.samefile(b)
    except OSError:
        return False


def _check_target(target: Path, sources: Sequence[str | os.PathLike[str]], *, force: bool) -> None:
    """KVS520 for an `--out` that exists (without `force`) or that is one of the sources."""
    if not target.exists():
        return
    if any(_same_file(target, s) for s in sources):
        # `--force` replaces an earlier output, never the traces being imported: written
        # over, the source (the paper's own format, say) would be gone.
        raise KvslError.one(
            "KVS520",
            f"`--out {target}` is one of the files being imported",
            Span.whole_file(str(target)),
            help="write to another `--out`; the sources are never replaced",
            exit_code=ExitCode.USAGE,
        )
    if target.is_dir():  # `--force` cannot help: say so, rather than "pass --force"
        raise KvslError.one(
            "KVS520",
            f"`--out {target}` is a folder, not a file",
            Span.whole_file(str(target)),
            help=f"name a file to write, e.g. `--out {target / 'traces.jsonl'}`",
            exit_code=ExitCode.USAGE,
        )
    if not force:
        raise KvslError.one(
            "KVS520",
            f"`{target}` already exists",
            Span.whole_file(str(target)),
            help="pass `--force` to replace it, or choose another `--out`",
            exit_code=ExitCode.USAGE,
        )


def import_traces(
    sources: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    limit: int | None = None,
    force: bool = False,
    skip_bad: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Validate the paper's (or kvsl's) trace files and write them as one kvsl trace file.

    Raises KvslError: KVS500 (a source cannot be read), KVS501/KVS502/KVS519 (bad records,
    all of them, unless `skip_bad`), KVS520 (`out` exists and not `force`), KVS523 (no
    trace left to write).

    >>> import_traces(["gsm8k_oai.jsonl"], "specs/traces/gsm8k.jsonl", limit=200)  # doctest: +SKIP
    ImportResult(out=PosixPath('specs/traces/gsm8k.jsonl'), written=200, ...)
    """
    target = Path(out)
    if not dry_run:
        _check_target(target, sources, force=force)
    traces: list[Trace] = []
    bad: list[Diagnostic] = []
    duplicates = 0
    seen: set[str] = set()
    for source in sources:
        stem = Path(source).stem
        for line, item in iter_trace_lines(source):
            if isinstance(item, Diagnostic):
                bad.append(item)
                continue
            if limit is not None and len(traces) >= limit:
                continue  # keep validating: bad lines are reported wherever they are
            if item.question in seen:
                duplicates += 1
                continue
            seen.add(item.question)
            traces.append(_with_id(item, stem, line))
    warnings: list[Diagnostic] = []
    if bad and not skip_bad:
        raise KvslError(bad, ExitCode.ERRORS)
    if bad:
        warnings.append(
            Diagnostic(
                "KVS521",
                Severity.WARNING,
                f"left out {counted(len(bad), 'bad record')}, the first at line "
                f"{bad[0].span.line} of `{bad[0].span.path}`: {bad[0].message}",
                bad[0].span,
                help="run without `--skip-bad` to list every one",
            )
        )
    if duplicates:
        warnings.append(
            Diagnostic(
                "KVS522",
                Severity.WARNING,
                f"left out {counted(duplicates, 'record')} whose question was already imported",
                Span.whole_file(str(sources[0])),
                help="a question may have one trace only: a target is never its own demo",
            )
        )
    if not traces:
        raise KvslError.one(
            "KVS523",
            "no trace to import"
            + (f" ({counted(len(bad), 'bad record')} left out)" if bad else ""),
            Span.whole_file(str(sources[0])),
            help="each record needs `query` (or `question`), `steps` and `solution` (or `answer`)",
        )
    if not dry_run:
        _write(target, traces)
    return ImportResult(target, len(traces), len(bad), duplicates, warnings)


def _write(target: Path, traces: list[Trace]) -> None:
    """Write the trace file whole (atomically), or KVS520 (exit 3).

    Its folder is made by `kvsl.lang.files.output_folder_problem`, the rule (and the
    wording) of every command's output folder (`kvsl build`, `eval`, `tune --out`): a
    file in the place of one of its folders is named, never a mkdir traceback.
    """
    from kvsl.base.atomic import atomic_path
    from kvsl.lang.files import output_folder_problem

    reason = output_folder_problem(target.parent)
    if reason is not None:
        raise _unwritable(target, f"cannot write traces into `{target.parent}`: {reason}")
    try:
        with atomic_path(target, fsync=True) as temporary:
            Path(temporary).write_text(
                "".join(trace.to_json() + "\n" for trace in traces), encoding="utf-8"
            )
    except OSError as err:
        raise _unwritable(target, f"cannot write `{target}`: {err.strerror or err}") from None


def _unwritable(target: Path, message: str) -> KvslError:
    return KvslError.one(
        "KVS520",
        message,
        Span.whole_file(str(target)),
        help="choose a writable `--out`",
        exit_code=ExitCode.ENVIRONMENT,
    )
