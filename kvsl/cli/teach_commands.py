"""`kvsl teach SPEC`: fill a spec's trace file from an OpenAI-compatible teacher.

The command only composes library functions (`kvsl.lang.load_plan`, `kvsl.teacher.teach`
or `dry_run`) and prints: prompts (dry run) or the summary on stdout, the progress bar and
diagnostics on stderr. The teacher (and with it `openai`) is imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kvsl.cli import app
from kvsl.cli.errors import reported_errors

if TYPE_CHECKING:
    from kvsl.teacher import TeachReport


@app.command("teach")
def teach_command(
    spec: Annotated[str, typer.Argument(help="The `.kvs` spec whose teacher block to run.")],
    questions: Annotated[
        str | None,
        typer.Option("--questions", help="Question file (JSONL); default: the spec's `questions`."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="gsm8k | arc | csqa | piqa | plain; default: detected (or the spec's "
            "`format` for the spec's own file).",
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="PIQA labels file (default X-labels.lst).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=0, help="Use only the first N questions of the file."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, help="Requests in flight at once (spec default 4)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the rendered prompts; send nothing.")
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible base URL (vLLM, ollama, llama.cpp); overrides the spec "
            "and OPENAI_BASE_URL.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Teacher model; overrides the spec's.")
    ] = None,
    retry_skipped: Annotated[
        bool,
        typer.Option(
            "--retry-skipped",
            help="Ask again questions an earlier run skipped (no tags, wrong answer).",
        ),
    ] = False,
    max_retries: Annotated[
        int, typer.Option("--max-retries", min=0, help="Client retries per request.")
    ] = 4,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per request attempt.")
    ] = 120.0,
    traces: Annotated[
        str | None,
        typer.Option(
            "--traces",
            help="Trace file to fill instead of the spec's `traces` (its skip log goes "
            "beside it); needed for a built-in style named by its name.",
        ),
    ] = None,
) -> None:
    """Ask a teacher model for reasoning traces and append them to the spec's trace file.

    A rerun resumes where the last one stopped. The key comes from OPENAI_API_KEY only.
    """
    from kvsl.lang import load_plan
    from kvsl.teacher import TeachAborted, TeachOptions, teach
    from kvsl.teacher import dry_run as render_only

    options = TeachOptions(
        questions=questions,
        question_format=format,
        labels=labels,
        limit=limit,
        concurrency=concurrency,
        base_url=base_url,
        model=model,
        retry_skipped=retry_skipped,
        max_retries=max_retries,
        timeout=timeout,
        traces=traces,
        progress=sys.stderr.isatty(),
    )
    with reported_errors():
        from kvsl.builtin import resolve_target
        from kvsl.engine.distributed import refuse_launcher

        # KVS317 under torchrun: every rank would ask the same questions and append the
        # same traces to one file. (No torch is imported for this.)
        refuse_launcher("teach")
        path = resolve_target(spec)  # a built-in style name stands for its spec file
        if not dry_run:
            _refuse_builtin_output(spec, path, traces)
        plan = load_plan(path)
        if dry_run:
            report = render_only(plan, options)
            for prompt in report.prompts:
                typer.echo(f"===== {prompt.id} =====")
                typer.echo(prompt.prompt.rstrip("\n"))
                typer.echo("")
            typer.echo(_summary(report, dry_run=True), err=True)
            return
        try:
            report = teach(plan, options)
        except TeachAborted as aborted:
            typer.echo(_summary(aborted.report, stopped=True), err=True)
            raise
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: every trace written so far is kept; rerun `kvsl teach` to resume",
                err=True,
            )
            raise typer.Exit(130) from None
    typer.echo(_summary(report))


def _refuse_builtin_output(spec: str, path: Path, traces: str | None) -> None:
    """KVS518 unless the run writes where the user asked.

    A built-in spec, whether named by its style name (which finds the kvsl checkout's own
    `specs/` under an editable install) or lying in the installed package, keeps its trace
    file: `--traces FILE` says where the traces go. A spec given by its path is the user's.
    """
    from kvsl.base.locations import is_packaged
    from kvsl.lang.diagnostics import ExitCode, KvslError
    from kvsl.lang.source import Span

    packaged = is_packaged(path)
    by_name = path != Path(spec)
    target = Path(traces) if traces is not None else None
    if target is not None and not is_packaged(target):
        return
    if not (packaged or by_name or target is not None):
        return
    where = (
        "inside the installed package"
        if packaged or target is not None
        else f"of the kvsl checkout (`{path}`)"
    )
    raise KvslError.one(
        "KVS518",
        f"`{spec}` is a built-in spec {where}: its trace file is not to be written",
        Span.whole_file(str(path)),
        help="name the file to fill with `--traces FILE` (outside the package), or copy "
        f"`{path.parent.parent}` somewhere of your own and teach the copy (`--dry-run` works "
        "here)",
        exit_code=ExitCode.USAGE,
    )


def _summary(report: TeachReport, *, dry_run: bool = False, stopped: bool = False) -> str:
    from kvsl.teacher import describe_cost

    lines = [
        f"teacher `{report.model}` at {report.base_url}: {report.total} questions, "
        f"{report.already_done} already in `{report.traces_path}`, "
        f"{report.previously_skipped} skipped by earlier runs"
    ]
    if report.duplicates:
        lines.append(
            f"{report.duplicates} duplicate question{'s' if report.duplicates != 1 else ''} "
            "in the source left out (each question is asked once)"
        )
    if dry_run:
        lines.append(f"dry run: {report.asked} prompts rendered, nothing sent")
        return "\n".join(lines)
    done = f"wrote {report.written} traces, skipped {len(report.skipped)}"
    if stopped:
        lines.append(
            f"stopped after {report.written + len(report.skipped)} of {report.asked}: {done}"
        )
    else:
        lines.append(f"asked {report.asked}: {done}")
    if report.skipped:
        reasons = ", ".join(f"{reason} {n}" for reason, n in report.skip_reasons.items())
        lines.append(f"skipped: {reasons} (details in `{report.skip_log_path}`)")
        transient = sum(1 for r in report.skipped if not r.permanent)
        if transient:
            lines.append(f"{transient} failed transiently and will be asked again by a rerun")
    lines.append(describe_cost(report.model, report.usage))
    return "\n".join(lines)
