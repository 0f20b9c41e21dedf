"""Questions for the teacher, and the prompt each one becomes.

Questions come from `kvsl.formats.questions.load_benchmark` (GSM8K, ARC, CommonsenseQA, PIQA
native files, or plain `{question, answer}` JSONL), so the teacher and the evaluation read
benchmarks the same way and a trace's `question` is exactly the user turn a target model
sees (multiple choice with its `Choices:` block).

The spec's template renders in the front end's sandboxed Jinja2 environment with strict
undefined variables; its variables are `kvsl.lang.templates.TEMPLATE_VARIABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kvsl.lang.diagnostics import KvslError
from kvsl.lang.source import Span
from kvsl.lang.templates import make_environment

if TYPE_CHECKING:
    from jinja2 import Template

    from kvsl.formats.questions import Example
    from kvsl.lang.plan import Plan, TeacherPlan

# What each benchmark is about, offered to templates as `domain` and stored in each trace
# (the same words the bundled trace sets use).
DOMAINS: dict[str, str] = {
    "gsm8k": "arithmetic",
    "arc": "science",
    "csqa": "commonsense",
    "piqa": "physical",
}


@dataclass(frozen=True)
class RenderedPrompt:
    """One question and the exact text sent to the teacher as the user message."""

    id: str
    prompt: str


def load_questions(
    path: str,
    format: str | None = None,
    *,
    labels_path: str | None = None,
    limit: int | None = None,
) -> list[Example]:
    """The questions of a source file (first `limit` of them), in file order.

    Bad files and lines are KvslErrors with KVS6xx diagnostics at `file:line`.
    """
    from kvsl.formats.questions import load_benchmark

    return load_benchmark(path, format, labels_path=labels_path, limit=limit)


def domain_of(example: Example) -> str | None:
    """The `domain` template variable for a question (None for plain question files)."""
    return DOMAINS.get(example.source)


def compile_template(plan: Plan) -> Template:
    """The spec's teacher template, compiled in the sandbox (KVS515 if it does not compile)."""
    from jinja2 import TemplateError

    teacher = _teacher(plan)
    try:
        return make_environment().from_string(teacher.template_source)
    except TemplateError as err:
        raise _template_error(plan, err, None) from None


def render_prompt(plan: Plan, template: Template, example: Example) -> str:
    """Render the teacher template for one question (KVS515 if rendering fails).

    The variables are `question` (the full user turn), `answer` (the known answer: the
    teacher is asked to reason towards it, and its reply is checked against it),
    `choices` (objects with `.label` and `.text`, empty for open questions), `style`,
    `description` and `domain`.
    """
    from jinja2 import TemplateError

    try:
        return template.render(
            question=example.question,
            answer=example.answer,
            choices=list(example.choices),
            style=plan.style,
            description=plan.description,
            domain=domain_of(example),
        )
    except TemplateError as err:
        raise _template_error(plan, err, example.id) from None


def _teacher(plan: Plan) -> TeacherPlan:
    if plan.teacher is None:
        raise KvslError.one(
            "KVS516",
            f"spec `{plan.style}` has no `teacher` block",
            Span.whole_file(plan.spec_path),
            help='add `teacher { model = "gpt-4o"  template = "..."  traces = "..." }`',
        )
    return plan.teacher


def _template_error(plan: Plan, err: Exception, question_id: str | None) -> KvslError:
    teacher = _teacher(plan)
    line = getattr(err, "lineno", None) or _template_line(err) or 1
    path = teacher.template_path or plan.spec_path
    # An inline template's line numbers count from the start of the block, not the spec.
    span = Span(
        path, 0, 0, line if teacher.template_path else 1, 1, line if teacher.template_path else 1, 1
    )
    where = f" for question `{question_id}`" if question_id else ""
    inline = "" if teacher.template_path else f" (line {line} of the inline template)"
    return KvslError.one(
        "KVS515",
        f"the teacher template failed to render{where}{inline}: {err}",
        span,
        help="templates may use only question, answer, choices, style, description "
        "and domain; guard optional ones (`{% if choices %}`, `{% if domain %}`)",
    )


def _template_line(err: BaseException) -> int | None:
    """The template line a render-time error was raised at.

    Jinja2 rewrites tracebacks so that frames of compiled templates carry the template's
    own file name (`<template>` for `from_string`) and line numbers; the innermost wins.
    """
    line = None
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
