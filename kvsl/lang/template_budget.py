"""The budget every teacher template is compiled and rendered within.

Jinja2's sandbox guards attribute access, not cost: its optimizer folds constant
expressions at compile time (`{{ 'a' * 10**10 }}` allocated 10 GB inside `kvsl check`),
its filters take any width (`'a'|center(10**10)`), and a render fails with whatever
Python raises (OverflowError, RecursionError, TypeError). Here:

- `template_shape` walks a parsed template (iteratively) before it is compiled: size,
  depth and loop nesting are bounded, and features that need a loader or can recurse
  (include, import, extends, macros) are refused;
- `BoundedEnvironment` compiles without the optimizer, checks the size of every
  `*`, `**`, `+`, padding width, `replace` and `join` before the operation allocates,
  caps `range` and the rendered output, and turns any failure inside a render into a
  `jinja2.TemplateError` (so `kvsl teach` reports it as a diagnostic).

>>> env = BoundedEnvironment()
>>> env.from_string("{{ 'ab' * 2 }}").render()
'abab'
>>> env.from_string("{{ 'a' * 10**10 }}").render()
Traceback (most recent call last):
...
jinja2.exceptions.SecurityError: `*` would make a value of 10,000,000,000 items (the limit is 100,000)
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateError, TemplateRuntimeError
from jinja2.meta import TrackingCodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

# A teacher prompt is a page of text with a few conditionals; these bounds are far
# beyond that and keep checking and rendering a hostile template cheap.
MAX_TEMPLATE_NODES = 5_000  # syntax nodes in one template
MAX_TEMPLATE_DEPTH = 40  # nesting of expressions and blocks (Jinja's compiler recurses)
MAX_LOOP_NESTING = 2  # `{% for %}` inside `{% for %}`: each loop is bounded, their product too
MAX_VALUE_SIZE = 100_000  # characters or items of any value a template computes
MAX_RANGE = 10_000  # items of one `range(...)`
MAX_LOOP_STEPS = 100_000  # `{% for %}` iterations in one render, all loops together
MAX_RENDER_WORK = 5_000_000  # characters and items made by calls and operators, one render
MAX_OUTPUT_CHARS = 200_000  # a rendered prompt (far beyond any teacher's context window)

# Features that need a template loader (there is none: a template is one text) or that
# can recurse without bound (macros calling themselves).
REFUSED_NODES: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
}


@dataclass(frozen=True)
class Shape:
    """What `template_shape` found: the first problem (None when within bounds)."""

    problem: str | None = None
    kind: str = ""  # "size" (KVS204) or "feature" (KVS206)
    line: int = 1


def template_shape(ast: nodes.Template) -> Shape:
    """Bounds on a parsed template, checked without recursion (the AST may be deep)."""
    count = 0
    stack: list[tuple[nodes.Node, int, int]] = [(ast, 0, 0)]
    while stack:
        node, depth, loops = stack.pop()
        count += 1
        line = getattr(node, "lineno", 1) or 1
        if count > MAX_TEMPLATE_NODES:
            return Shape(f"it has more than {MAX_TEMPLATE_NODES:,} syntax nodes", "size", line)
        if depth > MAX_TEMPLATE_DEPTH:
            return Shape(f"it nests more than {MAX_TEMPLATE_DEPTH} levels deep", "size", line)
        refused = REFUSED_NODES.get(type(node))
        if refused is not None:
            return Shape(f"`{refused}` is not available in kvsl templates", "feature", line)
        if isinstance(node, nodes.For):
            loops += 1
            if loops > MAX_LOOP_NESTING:
                return Shape(
                    f"it nests `{{% for %}}` loops more than {MAX_LOOP_NESTING} deep", "size", line
                )
        stack.extend((child, depth + 1, loops) for child in node.iter_child_nodes())
    return Shape()


class _Tracker(TrackingCodeGenerator):
    """`jinja2.meta`'s variable tracker without the optimizer (which folds constants)."""

    def __init__(self, environment: Any) -> None:
        CodeGenerator.__init__(
            self, environment, "<introspection>", "<introspection>", optimized=False
        )
        self.undeclared_identifiers: set[str] = set()


def undeclared_variables(ast: nodes.Template, environment: Any) -> set[str]:
    """Names a template reads but never sets (like `jinja2.meta.find_undeclared_variables`)."""
    tracker = _Tracker(environment)
    tracker.visit(ast)
    return tracker.undeclared_identifiers


# --- sizes, checked before an operation allocates ----------------------------------------


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _refuse(what: str, size: int) -> SecurityError:
    return SecurityError(
        f"{what} would make a value of {size:,} items (the limit is {MAX_VALUE_SIZE:,})"
    )


def _check_binop(op: str, left: object, right: object) -> None:
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and _size(seq) * max(times, 0) > MAX_VALUE_SIZE:
                raise _refuse("`*`", _size(seq) * times)
    elif op == "+" and _size(left) + _size(right) > MAX_VALUE_SIZE:
        raise _refuse("`+`", _size(left) + _size(right))
    elif op == "**" and isinstance(left, int | float) and isinstance(right, int | float):
        if abs(left) > 1 and right > 0:
            # digits of the result, without computing it
            digits = float(right) * math.log10(abs(left))
            if digits > 1_000:
                raise SecurityError(
                    f"`**` would make a number of about {digits:,.0f} digits (the limit is 1,000)"
                )
    elif op == "%" and isinstance(left, str):
        _check_format(left)


_WIDE = re.compile(r"%[-#0 +]*(?:\*|\d{6,})|\{[^{}]*:[^{}]*?\d{6,}[^{}]*\}")


def _check_format(text: object) -> None:
    if isinstance(text, str) and _WIDE.search(text):
        raise SecurityError(f"a format width over {MAX_VALUE_SIZE:,} is refused")


def _check_arguments(args: Iterable[object]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE_SIZE:
            raise SecurityError(f"argument {arg:,} is over the limit of {MAX_VALUE_SIZE:,}")


def _check_call(
    name: str, args: tuple[object, ...], kwargs: dict[str, object], data_first: bool = True
) -> None:
    """Size checks for calls whose result can be far larger than their arguments.

    With `data_first` (a filter, or a method with its object first) the first argument
    is the data; the numbers after it are sizes and widths (`center(10**10)`).
    """
    _check_arguments(args[1:] if data_first else args)
    _check_arguments(kwargs.values())
    if name in ("replace",) and len(args) >= 3:
        base, new = args[0], args[2]
        if _size(base) * max(_size(new), 1) > MAX_VALUE_SIZE:
            raise _refuse("`replace`", _size(base) * max(_size(new), 1))
    if name == "join" and args:
        items, separator = args[0], args[1] if len(args) > 1 else kwargs.get("d", "")
        if isinstance(items, list | tuple | str):
            total = len(items) * _size(separator) + sum(
                _size(item) if isinstance(item, str) else 1 for item in items
            )
            if total > MAX_VALUE_SIZE:
                raise _refuse("`join`", total)
    if name in ("format", "format_map") and args:  # the filter, and str.format's own text
        _check_format(args[0])


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps `jinja_pass_arg` (context/environment filters)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        values = tuple(a for a in args if not _is_jinja_state(a))
        _check_call(name, values, kwargs)
        return _spend(function(*args, **kwargs))

    return guarded


def _is_jinja_state(value: object) -> bool:
    from jinja2.environment import Environment
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    return isinstance(value, Environment | Context | EvalContext)


def _bounded_range(*args: int) -> range:
    try:
        result = range(*args)
        size = len(result)
    except (TypeError, ValueError, OverflowError) as err:
        raise SecurityError(f"range{args}: {err}") from None
    if size > MAX_RANGE:
        raise SecurityError(f"range of {size:,} items (the limit is {MAX_RANGE:,})")
    return result


def _bounded_concat(chunks: Iterable[str]) -> str:
    """`"".join` with the output cap: stops as soon as the output is too long."""
    parts: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_OUTPUT_CHARS:
            raise SecurityError(
                f"the rendered template is over the limit of {MAX_OUTPUT_CHARS:,} characters"
            )
        parts.append(chunk)
    return "".join(parts)


# What the render in progress may still spend: [loop iterations, characters and items
# made by filters, methods and operators]. None outside a render. Each value is bounded
# by MAX_VALUE_SIZE before it is made; this bounds how many are made (100 strings of
# 100,000 characters, not `range(10000)|map('center', 99999)|list`).
_STEPS: ContextVar[list[int] | None] = ContextVar("kvsl_template_steps", default=None)


def _spend(result: object) -> object:
    budget = _STEPS.get()
    if budget is not None:
        budget[1] -= _size(result)
        if budget[1] < 0:
            raise SecurityError(
                f"the template makes more than {MAX_RENDER_WORK:,} characters of values"
            )
    return result


_COUNTED = "_kvsl_counted_loop"  # the global every `{% for %}` iterates through


def _counted_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate `iterable`, spending one step of the render's loop budget per item."""
    steps = _STEPS.get()
    for item in iterable:
        if steps is not None:
            steps[0] -= 1
            if steps[0] < 0:
                raise SecurityError(
                    f"the template's loops run more than {MAX_LOOP_STEPS:,} times in all"
                )
        yield item


def _count_loops(ast: nodes.Template) -> nodes.Template:
    """A copy of `ast` whose every `{% for x in it %}` iterates `_kvsl_counted_loop(it)`.

    Jinja2 has no hook for loop iterations; rewriting the tree before code generation
    gives one, so that nested loops with no output (a CPU hang the output cap cannot
    see) stop after MAX_LOOP_STEPS iterations.
    """
    ast = copy.deepcopy(ast)
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.Name(_COUNTED, "load", lineno=loop.lineno),
            [loop.iter],
            [],
            None,
            None,
            lineno=loop.lineno,
        )
    return ast


class BoundedTemplate(Template):
    """A template whose render fails only with `jinja2.TemplateError`."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        reset = _STEPS.set([MAX_LOOP_STEPS, MAX_RENDER_WORK])
        try:
            return super().render(*args, **kwargs)
        except TemplateError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as err:
            raise TemplateRuntimeError(f"{type(err).__name__}: {err}") from None
        except RecursionError:
            raise TemplateRuntimeError("the template recurses too deeply") from None
        except NameError as err:
            # Jinja writes an infinite constant (`1e999`, or `1e308 * 10` folded) into the
            # code it generates as `inf`, which names nothing there
            raise TemplateRuntimeError(f"a number in the template is out of range ({err})") from None
        except MemoryError:
            raise TemplateRuntimeError("the template needs too much memory") from None
        finally:
            _STEPS.reset(reset)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with a cost budget (see the module's docstring)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    template_class = BoundedTemplate
    concat = staticmethod(_bounded_concat)  # type: ignore[assignment]

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, **options)
        self.filters = {
            name: _guarded_filter(name, function) for name, function in self.filters.items()
        }
        self.globals["range"] = _bounded_range
        self.globals[_COUNTED] = _counted_loop
        # `namespace()` is the one mutable object a template can create; without it a
        # loop cannot grow a value from one iteration to the next.
        self.globals.pop("namespace", None)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        """Code for a template whose loops count their iterations (`_count_loops`)."""
        return super()._generate(_count_loops(source), name, filename, defer_init)  # type: ignore[no-any-return]

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _check_binop(operator_, left, right)
        try:
            return _spend(super().call_binop(context, operator_, left, right))
        except (ArithmeticError, TypeError, ValueError) as err:
            raise TemplateRuntimeError(f"`{operator_}`: {err}") from None

    def wrap_str_format(self, value: Any) -> Any:
        """`"{:>9}".format` and `format_map`, as the sandbox wraps them on access."""
        _check_format(getattr(value, "__self__", None))
        return super().wrap_str_format(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A method or function call from a template: sizes checked before it runs."""
        name = getattr(__obj, "__name__", "")
        bound = getattr(__obj, "__self__", None)
        if isinstance(bound, str) and name == "join":  # ", ".join(items)
            _check_call("join", (args[0] if args else (), bound), {})
        elif isinstance(bound, str | list | tuple):  # "a".replace(...), "a".center(...)
            _check_call(name, (bound, *args), kwargs)
        else:  # a global function: range, lipsum, dict...
            _check_call(name, args, kwargs, data_first=False)
        return _spend(super().call(__context, __obj, *args, **kwargs))
