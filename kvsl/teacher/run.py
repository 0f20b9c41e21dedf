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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kvsl.base.jsonl import append_jsonl
from kvsl.formats.traces import Trace, append_trace, load_traces
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
from kvsl.teacher.parsing import answers_agree, parse_reply
from kvsl.teacher.pricing import Usage
from kvsl.teacher.prompts import (
    RenderedPrompt,
    _teacher,
    compile_template,
    domain_of,
    load_questions,
    render_prompt,
)

if TYPE_CHECKING:
    from kvsl.formats.questions import Example
    from kvsl.lang.plan import Plan, TeacherPlan

REPLY_EXCERPT_CHARS = 2000  # how much of a rejected reply the skip log keeps


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
class SkipRecord:
    """One question the teacher did not produce a usable trace for."""

    id: str
    reason: str  # no_steps, no_answer, wrong_answer, truncated, empty_reply, bad_request, ...
    permanent: bool  # False: asked again by the next run
    detail: str = ""
    expected: str | None = None
    got: str | None = None
    reply: str | None = None  # the start of the teacher's reply, for debugging templates
    model: str | None = None
    question_hash: str | None = None  # `question_hash(question)`: ids alone can repeat

    def to_json(self) -> str:
        record: dict[str, object] = {
            "id": self.id,
            "reason": self.reason,
            "permanent": self.permanent,
            "detail": self.detail,
        }
        for key in ("expected", "got", "reply", "model", "question_hash"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        record["time"] = datetime.now(UTC).isoformat(timespec="seconds")
        return json.dumps(record, ensure_ascii=False)


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


def question_hash(question: str) -> str:
    """A short, stable fingerprint of a question's text (16 hex digits).

    >>> question_hash("What is 2 + 2?") == question_hash("  What is 2 + 2?\\n")
    True
    """
    return hashlib.sha256(question.strip().encode("utf-8")).hexdigest()[:16]


def normalized_question(question: str) -> str:
    """A question's text as duplicates are found: Unicode NFC, runs of whitespace as one space.

    >>> normalized_question("What is\\n 2 + 2? ") == normalized_question("What is 2 + 2?")
    True
    """
    return " ".join(unicodedata.normalize("NFC", question).split())


def skip_log_path(traces_path: str | os.PathLike[str]) -> Path:
    """The skip log that sits next to a trace file.

    >>> skip_log_path("traces/step_by_step.jsonl").name
    'step_by_step.skipped.jsonl'
    """
    path = Path(traces_path)
    return path.with_name(f"{path.stem}.skipped{path.suffix or '.jsonl'}")


# --- what is already done ----------------------------------------------------------------


@dataclass(frozen=True)
class _Progress:
    done: frozenset[str]  # question hashes of the traces in the file
    used_ids: frozenset[str]  # trace ids in the file
    skipped: frozenset[tuple[str, str]]  # (id, question hash) skipped for good


def _already_done(traces_path: Path, skip_path: Path) -> _Progress:
    done: set[str] = set()
    used_ids: set[str] = set()
    if traces_path.exists():
        # A trace file with bad lines is reported (KVS50x at file:line) before anything is
        # asked: appending to it would only hide the damage from `kvsl build`.
        for trace in load_traces(traces_path):
            done.add(question_hash(trace.question))
            if trace.id is not None:
                used_ids.add(trace.id)
    latest: dict[tuple[str, str], bool] = {}
    for record in iter_skip_log(skip_path):
        if isinstance(record.get("id"), str) and isinstance(record.get("question_hash"), str):
            key = (str(record["id"]), str(record["question_hash"]))
            latest[key] = bool(record.get("permanent"))  # the latest record wins
    return _Progress(
        frozenset(done),
        frozenset(used_ids),
        frozenset(key for key, permanent in latest.items() if permanent),
    )


# --- where the run writes ----------------------------------------------------------------


def _output_error(code: str, what: str, path: Path, reason: str, *, mid_run: bool) -> Diagnostic:
    when = "stopped: " if mid_run else ""
    return Diagnostic(
        code,
        Severity.ERROR,
        f"{when}cannot write the {what} `{path}`: {reason}",
        Span.whole_file(str(path)),
        help="fix the path (the spec's teacher `traces`, or `--traces FILE`) or the folder's "
        "permissions, then rerun"
        + ("" if mid_run else "; nothing was sent")
        + (" (the skip log sits beside the trace file)" if code == "KVS526" else ""),
    )


def _unwritable_reason(path: Path) -> str | None:
    """Why `path` cannot be appended to (created, with its folders), or None if it can.

    Checked without writing anything: no empty file, no folder is left behind.
    """
    if path.exists() or path.is_symlink():
        if path.is_dir():
            return "a folder is in its place"
        if not path.is_file():
            return "it is not a regular file"
        if not os.access(path, os.W_OK):
            return "the file is read-only"
        return None
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"`{ancestor}` is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the folder `{ancestor}` is not writable"
    return None


def check_outputs(traces_path: Path, skip_path: Path) -> None:
    """KVS525 / KVS526 (exit 3) when the trace file or its skip log cannot be written."""
    problems = []
    for code, what, path in (
        ("KVS525", "trace file", traces_path),
        ("KVS526", "skip log", skip_path),
    ):
        reason = _unwritable_reason(path)
        if reason is not None:
            problems.append(_output_error(code, what, path, reason, mid_run=False))
    if problems:
        raise KvslError(problems, ExitCode.ENVIRONMENT)


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


def _prepare(plan: Plan, options: TeachOptions) -> _Work:
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
    done = _already_done(traces_path, skip_path)
    todo: list[Example] = []
    already = previously_skipped = duplicates = 0
    seen: set[str] = set()
    for example in examples:
        text = normalized_question(example.question)
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        fingerprint = question_hash(example.question)
        if fingerprint in done.done:
            already += 1
        elif (example.id, fingerprint) in done.skipped and not options.retry_skipped:
            previously_skipped += 1
        else:
            todo.append(example)
    return _Work(
        teacher=teacher,
        model=options.model or teacher.model,
        traces_path=traces_path,
        skip_path=skip_path,
        examples=examples,
        todo=todo,
        already_done=already,
        previously_skipped=previously_skipped,
        duplicates=duplicates,
        used_ids=done.used_ids,
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
    )


def dry_run(plan: Plan, options: TeachOptions = TeachOptions()) -> TeachReport:
    """Render the prompts a run would send, without a key and without any request.

    >>> # report = dry_run(plan, TeachOptions(questions="q.jsonl", limit=2))
    >>> # print(report.prompts[0].prompt)
    """
    work = _prepare(plan, options)
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
    check_outputs(*output_paths(plan, options))  # before reading them, before any request
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
        except ValueError as err:  # a 200 whose body claims JSON but is not (JSONDecodeError)
            detail = f"the server answered with a body that is not valid JSON ({err})"
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
                    f"{self.consecutive_failures} requests in a row "
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
        usage = getattr(response, "usage", None)
        if usage is None:
            self.usage += Usage(requests=1, unreported=1)
        else:
            self.usage += Usage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                requests=1,
            )

    def _accept(self, example: Example, response: Any) -> None:
        choice = response.choices[0] if getattr(response, "choices", None) else None
        content = self.redact.scrub((choice.message.content if choice else None) or "")
        finish = getattr(choice, "finish_reason", None)
        parsed = parse_reply(content)
        excerpt = content[:REPLY_EXCERPT_CHARS]
        reject: SkipRecord | None = None
        if not content.strip():
            permanent = finish == "content_filter"
            reject = SkipRecord(
                example.id,
                "empty_reply",
                permanent,
                f"the reply was empty (finish_reason={finish})",
            )
        elif not parsed.steps:
            reject = SkipRecord(
                example.id,
                "no_steps",
                True,
                "the reply has no <step>...</step> tags",
                reply=excerpt,
            )
        elif parsed.answer is None:
            reject = SkipRecord(
                example.id,
                "no_answer",
                True,
                "the reply has no <answer>...</answer> tag",
                reply=excerpt,
            )
        elif not answers_agree(parsed.answer, example.answer, example.choices):
            reject = SkipRecord(
                example.id,
                "wrong_answer",
                True,
                "the teacher's answer differs from the known answer",
                expected=example.answer,
                got=parsed.answer,
                reply=excerpt,
            )
        if reject is not None:
            if finish == "length" and reject.reason != "wrong_answer":
                reject = replace(
                    reject, reason="truncated", detail=reject.detail + "; the reply hit max_tokens"
                )
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
        return _output_error(code, what, path, reason, mid_run=True)

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


def malformed_completion(response: Any) -> str | None:
    """Why a 200 response is not a chat completion, or None when it is one.

    The openai client returns what it could make of the body: the text of a non-JSON page,
    a list, or a ChatCompletion built without validation from JSON of another shape.

    >>> malformed_completion("<html>sign in</html>")
    "the server answered HTTP 200 with a body that is not JSON: '<html>sign in</html>'"
    """
    if isinstance(response, str | bytes):
        text = response.decode("utf-8", "replace") if isinstance(response, bytes) else response
        start = " ".join(text.split())[:120]
        return f"the server answered HTTP 200 with a body that is not JSON: {start!r}"
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        found = (
            f"JSON {type(response).__name__}"
            if not hasattr(response, "model_extra")
            else "JSON with keys " + ", ".join(f"`{k}`" for k in sorted(response.model_extra or {}))
        )
        return f"the server answered HTTP 200 with {found} and no `choices`: not a chat completion"
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if message is None or not (content is None or isinstance(content, str)):
        return "the server answered HTTP 200 with a `choices` entry that has no message text"
    return None


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


def iter_skip_log(path: str | os.PathLike[str]) -> Iterable[dict[str, object]]:
    """The records of a skip log; lines that are not JSON objects (a line cut short by a
    kill) are ignored: it is a log, not data."""
    target = Path(path)
    if not target.exists():
        return
    try:
        text = target.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise KvslError.one(
            "KVS526",
            f"cannot read the skip log `{target}`: {err.strerror or err}",
            Span.whole_file(str(target)),
            help="remove or rename what is in its place (it sits beside the trace file)",
            exit_code=ExitCode.ENVIRONMENT,
        ) from None
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record


__all__ = [
    "SkipRecord",
    "TeachAborted",
    "TeachOptions",
    "TeachReport",
    "check_outputs",
    "dry_run",
    "iter_skip_log",
    "malformed_completion",
    "normalized_question",
    "output_paths",
    "skip_log_path",
    "teach",
]
