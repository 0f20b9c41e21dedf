"""`kvsl teach SPEC`: fill a spec's trace file from an OpenAI-compatible teacher.

The command fills a `kvsl.teacher.request.TeachRequest` from its flags, calls
`teach_spec`, and prints: prompts (dry run) or the summary on stdout, the progress bar and
diagnostics on stderr. The teacher (and with it `openai`) is imported inside the command.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from kvsl.base.plurals import counted
from kvsl.cli import app
from kvsl.cli.errors import reported_errors

if TYPE_CHECKING:
    from kvsl.teacher import TeachReport


QuestionsOption = Annotated[
    str | None,
    typer.Option("--questions", help="Question file (JSONL); default: the spec's `questions`."),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="gsm8k | arc | csqa | piqa | plain; default: detected (or the spec's "
        "`format` for the spec's own file).",
    ),
]
LabelsOption = Annotated[
    str | None, typer.Option("--labels", help="PIQA labels file (default X-labels.lst).")
]
LimitOption = Annotated[
    int | None,
    typer.Option("--limit", min=0, help="Use only the first N questions of the file."),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, help="Requests in flight at once (spec default 4)."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the rendered prompts; send nothing.")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible base URL (vLLM, ollama, llama.cpp); overrides the spec "
        "and OPENAI_BASE_URL.",
    ),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Teacher model; overrides the spec's.")
]
RetrySkippedOption = Annotated[
    bool,
    typer.Option(
        "--retry-skipped",
        help="Ask again questions an earlier run skipped (no tags, wrong answer).",
    ),
]
MaxRetriesOption = Annotated[
    int, typer.Option("--max-retries", min=0, help="Client retries per request.")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds per request attempt.")
]
TracesOption = Annotated[
    str | None,
    typer.Option(
        "--traces",
        help="Trace file to fill instead of the spec's `traces` (its skip log goes "
        "beside it); needed for a built-in style named by its name.",
    ),
]


@app.command("teach")
def teach_command(
    spec: Annotated[str, typer.Argument(help="The `.kvs` spec whose teacher block to run.")],
    questions: QuestionsOption = None,
    format: FormatOption = None,
    labels: LabelsOption = None,
    limit: LimitOption = None,
    concurrency: ConcurrencyOption = None,
    dry_run: DryRunOption = False,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    retry_skipped: RetrySkippedOption = False,
    max_retries: MaxRetriesOption = 4,
    timeout: TimeoutOption = 120.0,
    traces: TracesOption = None,
) -> None:
    """Ask a teacher model for reasoning traces and append them to the spec's trace file.

    A rerun resumes where the last one stopped. The key comes from OPENAI_API_KEY only.
    """
    from kvsl.teacher import TeachAborted
    from kvsl.teacher.request import TeachOptions, TeachRequest, teach_spec

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
        # A built-in style name stands for its spec file.
        request = TeachRequest(resolve_target(spec), options, dry_run=dry_run, given=spec)
        try:
            report = teach_spec(request)
        except TeachAborted as aborted:
            typer.echo(_summary(aborted.report, stopped=True), err=True)
            raise
        except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM (kvsl.base.interrupt)
            from kvsl.base.interrupt import INTERRUPTED, exit_code

            code = exit_code(interrupt)
            how = " (SIGTERM)" if code != INTERRUPTED else ""
            typer.echo(
                f"interrupted{how}: every trace written so far is kept; rerun `kvsl teach` "
                "to resume",
                err=True,
            )
            raise typer.Exit(code) from None
    if report.warnings:
        from kvsl.lang.render import render_diagnostics

        typer.echo(render_diagnostics(list(report.warnings), format="human", color=False), err=True)
    if dry_run:
        for prompt in report.prompts:
            typer.echo(f"===== {prompt.id} =====")
            typer.echo(prompt.prompt.rstrip("\n"))
            typer.echo("")
    typer.echo(_summary(report, dry_run=dry_run), err=dry_run)


def _summary(report: TeachReport, *, dry_run: bool = False, stopped: bool = False) -> str:
    from kvsl.teacher import describe_cost

    lines = [
        f"teacher `{report.model}` at {report.base_url}: {counted(report.total, 'question')}, "
        f"{report.already_done} already in `{report.traces_path}`, "
        f"{report.previously_skipped} skipped by earlier runs"
    ]
    if report.duplicates:
        lines.append(
            f"{counted(report.duplicates, 'duplicate question')} "
            "in the source left out (each question is asked once)"
        )
    if dry_run:
        lines.append(f"dry run: {counted(report.asked, 'prompt')} rendered, nothing sent")
        return "\n".join(lines)
    done = f"wrote {counted(report.written, 'trace')}, skipped {len(report.skipped)}"
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
