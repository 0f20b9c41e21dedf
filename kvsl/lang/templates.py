"""Teacher prompt templates: the sandboxed Jinja2 environment and the static checks.

A spec's teacher template is rendered by `kvsl teach` once per question with exactly the
variables in `TEMPLATE_VARIABLES`. The checker parses it without rendering: Jinja2 syntax
errors (KVS201) and variables the plan does not provide (KVS202) are reported at the
template's own line, with a label at the spec's `template =`.

>>> env = make_environment()
>>> env.from_string("Q: {{ question }}").render(question="1+1?")
'Q: 1+1?'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from kvsl.lang.diagnostics import Diagnostic, Label, Severity
from kvsl.lang.source import SourceFile, Span

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

# The variables a teacher template may use, and what the teacher passes for each:
#   question     str   the question exactly as the target model sees it
#   answer       str   the reference answer ("B", "42"), "" when the source has none
#   choices      list  [{"label": "A", "text": "..."}, ...]; empty for open questions
#   style        str   the style's name from `style "..."`
#   description  str   the style's description
#   domain       str | None   the question's domain ("math", "science"), when known
TEMPLATE_VARIABLES: Mapping[str, str] = {
    "question": "the question exactly as the target model sees it (str)",
    "answer": 'the reference answer, e.g. "B" or "42"; "" when unknown (str)',
    "choices": 'answer options as [{"label": "A", "text": "..."}]; empty for open questions',
    "style": "the style's name (str)",
    "description": "the style's description (str)",
    "domain": 'the question\'s domain, e.g. "math"; None when unknown',
}


def make_environment() -> SandboxedEnvironment:
    """The one Jinja2 environment kvsl renders and checks templates with.

    Sandboxed and immutable (templates come from spec files that may come from
    anywhere), undefined variables are errors rather than empty strings, and a trailing
    newline is kept so that a template file renders exactly as written. Every render is
    bounded (`kvsl.lang.template_budget`): no constant folding at compile time, size
    checks before `*`, `**`, padding, `replace` and `join` allocate, a capped output, and
    any failure inside a render raised as a `jinja2.TemplateError`.

    >>> make_environment().from_string("{{ style }}\\n").render(style="s")
    's\\n'
    """
    from kvsl.lang.template_budget import BoundedEnvironment

    return BoundedEnvironment(
        undefined=_strict_undefined(), keep_trailing_newline=True, autoescape=False
    )


def _strict_undefined() -> type:
    from jinja2 import StrictUndefined

    return StrictUndefined


@dataclass(frozen=True)
class TemplateOrigin:
    """Where a template's text lives, to map a template line to a span.

    For a file template `source` is the template file and `line_offset` 0. For an inline
    `\"\"\"...\"\"\"` block, `source` is the spec and `first_offset` the character offset
    of the block's first character, so template line 1 maps into the spec.
    """

    source: SourceFile
    first_offset: int  # offset in `source.text` of the template's first character
    spec_span: Span  # the spec's `template = ...` value, for a secondary label


@dataclass(frozen=True)
class TemplateFacts:
    """What the static check learns from a template's text (cached per text)."""

    error: str | None  # why the template cannot be used, None when it compiles
    error_line: int
    undeclared: tuple[tuple[str, int], ...]  # (variable, first line) it reads but never sets
    error_code: str = "KVS201"  # KVS201 syntax, KVS204 over a limit, KVS206 refused feature
    render_error: str | None = None  # why a trial render with sample values fails (KVS205)


# A template file is a prompt of a page or two; this cap is far beyond any real one
# (an inline template is bounded by the spec's own cap).
MAX_TEMPLATE_BYTES = 256_000

# Values like those `kvsl teach` passes, for the trial render that finds the templates
# that compile but fail once rendered (a filter on the wrong type, a budget exceeded).
SAMPLE_VARIABLES: Mapping[str, object] = {
    "question": "Tom has 3 apples and buys 2 more. How many apples does he have?",
    "answer": "B",
    "choices": [{"label": "A", "text": "4"}, {"label": "B", "text": "5"}],
    "style": "sample-style",
    "description": "A sample description.",
    "domain": "math",
}


@lru_cache(maxsize=256)
def template_facts(text: str) -> TemplateFacts:
    """Parse, bound, compile and trial-render a template once (specs share templates)."""
    from jinja2 import TemplateError, TemplateSyntaxError, nodes

    from kvsl.lang.template_budget import template_shape, undeclared_variables

    env = make_environment()
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as err:
        return TemplateFacts(err.message or "invalid template", err.lineno or 1, ())
    except RecursionError:  # Jinja's parser recurses once per nesting level
        return TemplateFacts("it nests too deeply", 1, (), "KVS204")
    except ValueError:  # Jinja's lexer calls int() on a literal past Python's 4,300 digits
        long = re.search(r"\d{4000,}", text)
        line = text.count("\n", 0, long.start()) + 1 if long else 1
        return TemplateFacts("a number literal has more than 4,300 digits", line, ())
    shape = template_shape(ast)
    if shape.problem is not None:
        code = "KVS206" if shape.kind == "feature" else "KVS204"
        return TemplateFacts(shape.problem, shape.line, (), code)
    try:
        undeclared = undeclared_variables(ast, env)
        template = env.from_string(text)  # compiles: unknown filters and tests fail here
    except TemplateSyntaxError as err:
        return TemplateFacts(err.message or "invalid template", err.lineno or 1, ())
    first_line: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            first_line.setdefault(node.name, node.lineno)
    found = tuple(sorted((name, first_line.get(name, 1)) for name in undeclared))
    render_error = None
    if all(name in TEMPLATE_VARIABLES for name in undeclared):
        try:
            template.render(**SAMPLE_VARIABLES)
        except TemplateError as err:
            render_error = (
                str(err.message if hasattr(err, "message") else err) or type(err).__name__
            )
    return TemplateFacts(None, 0, found, render_error=render_error)


def check_template(text: str, origin: TemplateOrigin) -> list[Diagnostic]:
    """Jinja2 syntax errors (KVS201), unprovided variables (KVS202), no `question` (KVS203).

    >>> from kvsl.lang.source import SourceFile
    >>> src = SourceFile("t.j2", "{{ questoin }}")
    >>> o = TemplateOrigin(src, 0, src.span(0, 0))
    >>> [d.code for d in check_template(src.text, o)]
    ['KVS202', 'KVS203']
    """
    inline = origin.source.path == origin.spec_span.path
    label = () if inline else (Label(origin.spec_span, "template used here"),)
    facts = template_facts(text)
    if facts.error is not None:
        return [_refusal(text, origin, facts, label)]
    diagnostics = _unprovided(text, origin, facts, label)
    if facts.render_error is not None:
        diagnostics.append(
            Diagnostic(
                "KVS205",
                Severity.ERROR,
                f"template fails when rendered: {_lower_first(facts.render_error)}",
                origin.spec_span,
                help="rendered with sample values (a question with choices A and B); "
                "`kvsl teach` would fail the same way",
            )
        )
    if "question" not in {name for name, _ in facts.undeclared}:
        diagnostics.append(
            Diagnostic(
                "KVS203",
                Severity.WARNING,
                "template never uses `{{ question }}`",
                origin.spec_span,
                help="the teacher sends this prompt once per question: include "
                "`{{ question }}` so that each trace answers its own question",
            )
        )
    return diagnostics


def _refusal(
    text: str, origin: TemplateOrigin, facts: TemplateFacts, label: tuple[Label, ...]
) -> Diagnostic:
    """The one diagnostic of a template that does not parse or is refused (KVS201/204/206)."""
    line, error = facts.error_line, facts.error or ""
    message, help = {
        "KVS201": (
            f"template syntax error: {_lower_first(error)}",
            f"template line {line}; see https://jinja.palletsprojects.com/templates/",
        ),
        "KVS204": (
            f"template is too complex: {error}",
            "a teacher template is a page of text with a few conditionals; "
            "see the limits in docs/language.md",
        ),
        "KVS206": (
            f"template feature refused: {error}",
            "a kvsl template is one self-contained text: write the text inline",
        ),
    }[facts.error_code]
    return Diagnostic(
        facts.error_code,
        Severity.ERROR,
        message,
        _line_span(text, origin, line, None),
        labels=label,
        help=help,
    )


def _unprovided(
    text: str, origin: TemplateOrigin, facts: TemplateFacts, label: tuple[Label, ...]
) -> list[Diagnostic]:
    """KVS202 for each variable the template uses that kvsl does not provide."""
    from difflib import get_close_matches

    diagnostics: list[Diagnostic] = []
    provided = ", ".join(f"`{v}`" for v in TEMPLATE_VARIABLES)
    for name, line in facts.undeclared:
        if name in TEMPLATE_VARIABLES:
            continue
        close = get_close_matches(name, list(TEMPLATE_VARIABLES), n=1)
        diagnostics.append(
            Diagnostic(
                "KVS202",
                Severity.ERROR,
                f"template variable `{name}` is not provided",
                _line_span(text, origin, line, name),
                labels=label,
                help=(f"did you mean `{close[0]}`? " if close else "")
                + f"templates receive {provided}",
            )
        )
    return diagnostics


def _lower_first(message: str) -> str:
    return message[:1].lower() + message[1:] if message else message


def _line_span(text: str, origin: TemplateOrigin, line: int, name: str | None) -> Span:
    """Span of template line `line` (1-based), narrowed to `name` when it appears there."""
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    start = sum(len(entry) + 1 for entry in lines[: line - 1])
    content = lines[line - 1]
    begin, end = 0, len(content.rstrip("\r"))
    stripped = len(content) - len(content.lstrip())
    begin = min(stripped, end)
    if name is not None:
        match = re.search(rf"\b{re.escape(name)}\b", content)
        if match:
            begin, end = match.start(), match.end()
    base = origin.first_offset + start
    return origin.source.span(base + begin, base + max(end, begin))
