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

    Sandboxed (templates come from spec files that may come from anywhere), undefined
    variables are errors rather than empty strings, and a trailing newline is kept so
    that a template file renders exactly as written.

    >>> make_environment().from_string("{{ style }}\\n").render(style="s")
    's\\n'
    """
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


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

    error: str | None  # Jinja2's syntax error message, None when it parses
    error_line: int
    undeclared: tuple[tuple[str, int], ...]  # (variable, first line) it reads but never sets


@lru_cache(maxsize=256)
def template_facts(text: str) -> TemplateFacts:
    """Parse a template once (specs often share a template file)."""
    from jinja2 import TemplateSyntaxError, meta, nodes

    try:
        ast = make_environment().parse(text)
    except TemplateSyntaxError as err:
        return TemplateFacts(err.message or "invalid template", err.lineno or 1, ())
    undeclared = meta.find_undeclared_variables(ast)
    first_line: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            first_line.setdefault(node.name, node.lineno)
    return TemplateFacts(
        None, 0, tuple(sorted((name, first_line.get(name, 1)) for name in undeclared))
    )


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
        line = facts.error_line
        return [
            Diagnostic(
                "KVS201",
                Severity.ERROR,
                f"template syntax error: {_lower_first(facts.error)}",
                _line_span(text, origin, line, None),
                labels=label,
                help=f"template line {line}; see https://jinja.palletsprojects.com/templates/",
            )
        ]
    diagnostics: list[Diagnostic] = []
    names = {name for name, _ in facts.undeclared}
    for name, line in facts.undeclared:
        if name in TEMPLATE_VARIABLES:
            continue
        from difflib import get_close_matches

        close = get_close_matches(name, list(TEMPLATE_VARIABLES), n=1)
        provided = ", ".join(f"`{v}`" for v in TEMPLATE_VARIABLES)
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
    if "question" not in names:
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
