"""`kvsl teach`: ask a teacher model for reasoning traces and append them as they arrive.

For each question of the source: render the spec's template, call chat completions, parse
the `<step>`/`<answer>` tags, check the answer against the known one, then either append a
trace to the spec's trace file (`kvsl.formats.traces.append_trace`: one full line, flushed and
fsynced, so a kill loses nothing) or append a skip record to the skip log next to it
(`traces/x.jsonl` → `traces/x.skipped.jsonl`).

A question that appears more than once in the source (after whitespace is normalised)
is asked once; the report counts the duplicates left out.

Every write goes to two files only: the trace file (the spec's `traces`, or `--traces`)
and its skip log. Both are checked before the first request (KVS525, KVS526: a folder in
the file's place, a parent that is a file, a folder that cannot be written), and a write
that still fails mid-run stops the run like a fatal server error: a diagnostic, exit 3,
every line written before it kept.

A server that answers HTTP 200 with something other than a chat completion (an HTML
page, another API's JSON, text that is not JSON) is a failed request (`bad_response`),
counted toward the consecutive-failure limit (KVS514) like a 500.

A rerun resumes: questions already in the trace file are never asked again, nor are
questions skipped for a permanent reason (no tags, wrong answer, truncated) unless
`retry_skipped` is set. Failures of the request itself (timeouts, rate limits, 5xx that
outlasted the client's retries, refusals) are logged and asked again next time.

A question is identified by its id *and* its text: ids made from line numbers
(`train-12`) repeat across benchmark files, so a GSM8K `train-12` is never taken for a
PIQA `train-12`. A trace whose id is already used by another question in the file gets
the source's name as a prefix (`piqa-train-12`), so trace ids stay unique.

The steps live in their own modules: `resume` (what is done, what to ask), `outputs`
(the two files, checked before any request), `replies` (is a response a completion, is
its text a trace), `skiplog` (the skip log's records); this one plans and runs.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kvsl.base.jsonl import append_jsonl
from kvsl.base.plurals import counted
from kvsl.formats.traces import Trace, append_trace
from kvsl.lang.diagnostics import Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.source import Span
from kvsl.teacher.client import (
    Endpoint,
    Fatal,
    Redactor,
    RequestFailed,
    choose_base_url,
    classify_error,
    display_url,
    make_client,
    resolve_endpoint,
)
from kvsl.teacher.outputs import check_outputs, one_writer, output_error
from kvsl.teacher.parsing import parse_reply
from kvsl.teacher.pricing import Usage
from kvsl.teacher.prompts import (
    RenderedPrompt,
    _teacher,
    compile_template,
    domain_of,
    load_questions,
    render_prompt,
)
from kvsl.teacher.replies import judge_reply, malformed_completion
from kvsl.teacher.resume import already_done, question_hash, questions_to_ask
from kvsl.teacher.skiplog import SkipRecord, iter_skip_log, skip_log_path

if TYPE_CHECKING:
    from kvsl.formats.questions import Example
    from kvsl.lang.plan import Plan, TeacherPlan


@dataclass(frozen=True)
class TeachOptions:
    """Command-line choices layered over the spec's `teacher` block (None: the spec's)."""

    questions: str | None = None
    question_format: str | None = None
    labels: str | None = None
    limit: int | None = None  # the first N questions of the source
    concurrency: int | None = None
    base_url: str | None = None
    model: str | None = None
    retry_skipped: bool = False  # ask again questions skipped for a permanent reason
    traces: str | None = None  # the trace file to fill instead of the spec's `traces`
    max_retries: int = 4  # the openai client's own retries per request
    timeout: float = 120.0  # seconds per request attempt
    # Stop (exit 3) after this many transient failures in a row with no success between:
    # the server is down in a way the per-request retries cannot fix.
    max_consecutive_failures: int = 8
    progress: bool = False  # a rich progress bar on stderr


@dataclass(frozen=True)
class TeachReport:
    """What a run did; `written + len(skipped) == asked` unless it was stopped."""

    model: str
    base_url: str  # display form, no credentials
    traces_path: str
    skip_log_path: str
    total: int  # questions in the source (after --limit)
    already_done: int  # already in the trace file
    previously_skipped: int  # skipped for a permanent reason by an earlier run
    asked: int  # questions this run sent (or would send, for a dry run)
    duplicates: int = 0  # questions that repeat an earlier one of the source: asked once
    written: int = 0
    skipped: tuple[SkipRecord, ...] = ()
    usage: Usage = field(default_factory=Usage)
    prompts: tuple[RenderedPrompt, ...] = ()  # dry run only
    warnings: tuple[Diagnostic, ...] = ()  # e.g. KVS527: a torn last trace line cut off

    @property
    def skip_reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.skipped:
            counts[record.reason] = counts.get(record.reason, 0) + 1
        return dict(sorted(counts.items()))


class TeachAborted(KvslError):
    """A fatal failure mid-run; `report` says what was written before it (all kept)."""

    def __init__(self, diagnostics: list[Diagnostic], report: TeachReport) -> None:
        super().__init__(diagnostics, ExitCode.ENVIRONMENT)
        self.report = report


# --- planning a run ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Work:
    teacher: TeacherPlan
    model: str
    traces_path: Path
    skip_path: Path
    examples: list[Example]
    todo: list[Example]
    already_done: int
    previously_skipped: int
    duplicates: int
    used_ids: frozenset[str]
    warnings: tuple[Diagnostic, ...] = ()


def _prepare(plan: Plan, options: TeachOptions, *, repair: bool = True) -> _Work:
    teacher = _teacher(plan)
    source = options.questions or teacher.questions
    if not source:
        raise KvslError.one(
            "KVS517",
            "no question source for the teacher",
            Span.whole_file(plan.spec_path),
            help='pass `--questions FILE.jsonl`, or set `questions = "..."` in the '
            "spec's teacher block",
            exit_code=ExitCode.USAGE,
        )
    # The spec's `format` describes the spec's own question file; a file given on the
    # command line is read with `--format`, or its format is detected from its first record.
    fmt = options.question_format or (None if options.questions else teacher.question_format)
    examples = load_questions(source, fmt, labels_path=options.labels, limit=options.limit)
    traces_path, skip_path = output_paths(plan, options)
    done = already_done(traces_path, skip_path, repair=repair)
    todo = questions_to_ask(examples, done, retry_skipped=options.retry_skipped)
    return _Work(
        teacher=teacher,
        model=options.model or teacher.model,
        traces_path=traces_path,
        skip_path=skip_path,
        examples=examples,
        todo=todo.ask,
        already_done=todo.already_done,
        previously_skipped=todo.previously_skipped,
        duplicates=todo.duplicates,
        used_ids=done.used_ids,
        warnings=done.warnings,
    )


def output_paths(plan: Plan, options: TeachOptions) -> tuple[Path, Path]:
    """(trace file, skip log) a run writes: `--traces` if given, else the spec's `traces`."""
    traces_path = Path(options.traces or _teacher(plan).traces)
    return traces_path, skip_log_path(traces_path)


def _report(
    work: _Work, base_url: str, *, asked: int, prompts: tuple[RenderedPrompt, ...] = ()
) -> TeachReport:
    """The report of a run (or dry run) before anything is asked."""
    return TeachReport(
        model=work.model,
        base_url=display_url(base_url),
        traces_path=str(work.traces_path),
        skip_log_path=str(work.skip_path),
        total=len(work.examples),
        already_done=work.already_done,
        previously_skipped=work.previously_skipped,
        duplicates=work.duplicates,
        asked=asked,
        prompts=prompts,
        warnings=work.warnings,
    )


def dry_run(plan: Plan, options: TeachOptions = TeachOptions()) -> TeachReport:
    """Render the prompts a run would send, without a key and without any request.

    >>> # report = dry_run(plan, TeachOptions(questions="q.jsonl", limit=2))
    >>> # print(report.prompts[0].prompt)
    """
    work = _prepare(plan, options, repair=False)  # a dry run writes nothing
    template = compile_template(plan)
    prompts = tuple(RenderedPrompt(e.id, render_prompt(plan, template, e)) for e in work.todo)
    base_url, _ = choose_base_url(options.base_url, work.teacher.base_url, os.environ)
    return _report(work, base_url, asked=len(prompts), prompts=prompts)


def teach(
    plan: Plan,
    options: TeachOptions = TeachOptions(),
    *,
    environ: Mapping[str, str] | None = None,
) -> TeachReport:
    """Fill the spec's trace file from its teacher; resumes where an earlier run stopped.

    Raises KvslError before asking anything (no key: KVS510, bad template: KVS515, bad
    question file: KVS6xx, bad trace file: KVS50x, trace file or skip log not writable:
    KVS525/KVS526) and `TeachAborted` (exit 3) when the server is unreachable (KVS511),
    rejects the key (KVS512), lacks the model (KVS513), keeps failing or answering with
    something other than a chat completion (KVS514), or a write fails mid-run
    (KVS525/KVS526); traces written before that stay.

    >>> # report = teach(load_plan("specs/step_by_step.kvs"), TeachOptions(limit=50))
    >>> # report.written, report.usage.total_tokens
    """
    traces_path, skip_path = output_paths(plan, options)
    check_outputs(traces_path, skip_path)  # before reading them, before any request
    with one_writer(traces_path):  # KVS528: a second run would ask (and pay) twice
        work = _prepare(plan, options)
        template = compile_template(plan)
        # Render everything first: a template error stops the run before the first request.
        prompts = [(e, render_prompt(plan, template, e)) for e in work.todo]
        env = os.environ if environ is None else environ
        base_url, _ = choose_base_url(options.base_url, work.teacher.base_url, env)
        report = _report(work, base_url, asked=len(prompts))
        if not prompts:
            return report  # nothing to ask: no key needed
        endpoint = resolve_endpoint(
            plan.spec_path,
            cli_base_url=options.base_url,
            spec_base_url=work.teacher.base_url,
            environ=env,
        )
        concurrency = max(1, options.concurrency or work.teacher.concurrency)
        run = _Run(plan, work, options, endpoint, concurrency, report)
        return asyncio.run(run.execute(prompts))


# --- the asynchronous run ----------------------------------------------------------------


class _Run:
    """State of one run: counters, the fatal failure if any, the progress bar."""

    def __init__(
        self,
        plan: Plan,
        work: _Work,
        options: TeachOptions,
        endpoint: Endpoint,
        concurrency: int,
        report: TeachReport,
    ) -> None:
        self.plan = plan
        self.work = work
        self.options = options
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.report = report
        self.redact = Redactor.for_endpoint(endpoint)
        self.written = 0
        self.skipped: list[SkipRecord] = []
        self.usage = Usage()
        self.consecutive_failures = 0
        self.fatal: Diagnostic | None = None
        self.used_ids = set(work.used_ids)
        self.advance: Callable[[], None] = lambda: None

    def _partial(self) -> TeachReport:
        return replace(
            self.report, written=self.written, skipped=tuple(self.skipped), usage=self.usage
        )

    async def execute(self, prompts: list[tuple[Example, str]]) -> TeachReport:
        client = make_client(
            self.endpoint, max_retries=self.options.max_retries, timeout=self.options.timeout
        )
        queue = deque(prompts)
        try:
            with _ProgressBar(self.options.progress, len(prompts), self) as advance:
                self.advance = advance
                workers = [
                    asyncio.create_task(self._worker(client, queue))
                    for _ in range(min(self.concurrency, len(prompts)))
                ]
                try:
                    await asyncio.gather(*workers)
                except _Stop:
                    for worker in workers:
                        worker.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
        finally:
            await client.close()
        if self.fatal is not None:
            partial = self._partial()
            kept = (
                f"; `{partial.traces_path}` keeps every trace written so far "
                f"({partial.written} by this run) and a rerun resumes after them"
            )
            fatal = replace(self.fatal, help=(self.fatal.help or "") + kept)
            raise TeachAborted([fatal], partial)
        return self._partial()

    async def _worker(self, client: Any, queue: deque[tuple[Example, str]]) -> None:
        while queue and self.fatal is None:
            example, prompt = queue.popleft()
            await self._ask(client, example, prompt)

    async def _ask(self, client: Any, example: Example, prompt: str) -> None:
        import openai

        try:
            response = await client.chat.completions.create(
                model=self.work.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=self.work.teacher.temperature,
                max_tokens=self.work.teacher.max_tokens,
            )
        except openai.APIError as err:
            outcome = classify_error(
                err, endpoint=self.endpoint, model=self.work.model, spec_path=self.plan.spec_path
            )
            if isinstance(outcome, Fatal):
                self._stop(outcome.diagnostic)
            self._failed(example, outcome)
            return
        except (ValueError, RecursionError) as err:
            # a 200 whose body claims JSON but is not (JSONDecodeError), or is nested past
            # the decoder's recursion limit (`[[[[...]]]]`: RecursionError inside openai)
            reason = err if isinstance(err, ValueError) else "nested too deeply"
            detail = f"the server answered with a body that is not valid JSON ({reason})"
            self._failed(example, RequestFailed("bad_response", self.redact.scrub(detail), False))
            return
        self._count_usage(response)
        problem = malformed_completion(response)
        if problem is not None:
            self._failed(example, RequestFailed("bad_response", self.redact.scrub(problem), False))
            return
        self.consecutive_failures = 0
        self._accept(example, response)

    def _stop(self, diagnostic: Diagnostic) -> NoReturn:
        if self.fatal is None:
            self.fatal = diagnostic
        raise _Stop

    def _failed(self, example: Example, outcome: RequestFailed) -> None:
        self._skip(
            example, SkipRecord(example.id, outcome.reason, outcome.permanent, outcome.detail)
        )
        if outcome.permanent:
            return
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.options.max_consecutive_failures:
            self._stop(
                Diagnostic(
                    "KVS514",
                    Severity.ERROR,
                    f"the teacher server at `{display_url(self.endpoint.base_url)}` failed "
                    f"{counted(self.consecutive_failures, 'request')} in a row "
                    f"(last: {outcome.reason}: {outcome.detail})",
                    Span.whole_file(self.plan.spec_path),
                    help="if the server is overloaded or down, wait and rerun (it resumes), "
                    "lower `--concurrency`, or raise `--timeout` for a slow local server; if "
                    "it refuses the request (HTTP 400), fix what its message names; if it "
                    "answers with something that is not a chat completion (bad_response: an "
                    "HTML page, another API's JSON), point the base URL at the server's "
                    "OpenAI-compatible `/v1` endpoint",
                )
            )

    def _count_usage(self, response: Any) -> None:
        self.usage += Usage.of_reply(getattr(response, "usage", None))

    def _accept(self, example: Example, response: Any) -> None:
        choice = response.choices[0] if getattr(response, "choices", None) else None
        content = self.redact.scrub((choice.message.content if choice else None) or "")
        parsed = parse_reply(content)
        reject = judge_reply(example, content, parsed, getattr(choice, "finish_reason", None))
        if reject is not None:
            self._skip(example, reject)
            return
        trace = Trace(
            question=example.question,
            steps=parsed.steps,
            answer=example.answer,
            id=self._fresh_id(example),
            domain=domain_of(example),
            extra={"teacher": self.work.model},
        )
        try:
            append_trace(self.work.traces_path, trace)
        except OSError as err:
            self._stop(self._write_failed("KVS525", "trace file", self.work.traces_path, err))
        self.written += 1
        self.advance()

    def _write_failed(self, code: str, what: str, path: Path, err: OSError) -> Diagnostic:
        reason = err.strerror or str(err)
        return output_error(code, what, path, reason, mid_run=True)

    def _fresh_id(self, example: Example) -> str:
        """The example's id, or a prefixed one if another question in the file has it."""
        candidate, n = example.id, 1
        while candidate in self.used_ids:
            n += 1
            candidate = f"{example.source}-{example.id}" + (f"-{n - 1}" if n > 2 else "")
        self.used_ids.add(candidate)
        return candidate

    def _skip(self, example: Example, record: SkipRecord) -> None:
        record = replace(
            record, model=self.work.model, question_hash=question_hash(example.question)
        )
        try:
            append_jsonl(self.work.skip_path, [self.redact.scrub(record.to_json())])
        except OSError as err:
            self._stop(self._write_failed("KVS526", "skip log", self.work.skip_path, err))
        self.skipped.append(record)
        self.advance()


class _Stop(Exception):
    """Raised inside a worker to end the run after a fatal failure."""


class _ProgressBar:
    """A rich progress bar on stderr (or nothing); yields a callable that advances it."""

    def __init__(self, enabled: bool, total: int, run: _Run) -> None:
        self.enabled = enabled
        self.total = total
        self.run = run
        self._progress: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from kvsl.base.progress import progress_display

        self._progress = progress_display(
            None,
            "[green]{task.fields[written]} written[/] [yellow]{task.fields[skipped]} skipped[/]",
        )
        self._progress.start()
        task = self._progress.add_task("teaching", total=self.total, written=0, skipped=0)
        run = self.run

        def advance() -> None:
            self._progress.update(task, advance=1, written=run.written, skipped=len(run.skipped))

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


__all__ = [
    "SkipRecord",
    "TeachAborted",
    "TeachOptions",
    "TeachReport",
    "check_outputs",
    "dry_run",
    "iter_skip_log",
    "malformed_completion",
    "output_paths",
    "skip_log_path",
    "teach",
]
