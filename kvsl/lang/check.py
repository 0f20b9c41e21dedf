"""Whole-spec checks: a merged declaration checked as a whole, ready for lowering.

The checker runs in three steps, none of which raises for bad input:

1. `kvsl.lang.analyze.analyze` reads one file's tree against the key schema
   (`kvsl.lang.schema`), converting each value (`kvsl.lang.values`) into a `Decl` of
   typed `Field`s (`kvsl.lang.checked`).
2. `kvsl.lang.extends.Session.resolve` follows `extends` and merges a base's fields
   under the spec's own.
3. `check_resolved` (here) checks the merged spec as a whole: required keys,
   `shots < pairs`, files that must exist, templates, the model (`kvsl.lang.models`)
   and its layers, settings that are legal one by one but suspicious together.

>>> from kvsl.lang.extends import Session
>>> from kvsl.lang.parser import parse_text
>>> from kvsl.lang.analyze import analyze
>>> spec, _ = parse_text('style "s" { contrast { pairs = 2  shots = 2 } }', "s.kvs")
>>> decl, _ = analyze(spec)
>>> _, diagnostics = check_resolved(decl, Session())
>>> sorted(d.code for d in diagnostics)
['KVS106', 'KVS106', 'KVS110']
"""

from __future__ import annotations

import os

from kvsl.base.plurals import counted
from kvsl.lang.checked import Decl, Field, Resolved
from kvsl.lang.diagnostics import Diagnostic, Label
from kvsl.lang.extends import Session
from kvsl.lang.models import EMBEDDED_MODEL_LAYERS, check_model
from kvsl.lang.phrasing import error, relative_help, shown, warning
from kvsl.lang.plan import DEFAULT_MODEL, SAMPLING_ONLY, GenerationSettings, LayerSpan
from kvsl.lang.schema import TOP
from kvsl.lang.source import SourceFile, Span
from kvsl.lang.urls import http_url_problem


def check_resolved(decl: Decl, session: Session) -> tuple[Resolved, list[Diagnostic]]:
    """Whole-spec checks on a merged declaration (see the module doc)."""
    diagnostics: list[Diagnostic] = []
    if decl.kind == "style" and not decl.incomplete:
        _require(decl, diagnostics)
    _check_contrast_counts(decl, diagnostics)
    _check_trace_file(decl, diagnostics)
    _check_question_file(decl, diagnostics)
    _check_base_url(decl, diagnostics)
    template_source, template_path = _check_template(decl, session, diagnostics)
    check_model(decl, diagnostics)
    _check_steer(decl, diagnostics)
    _check_generate(decl, diagnostics)
    return Resolved(decl, template_source, template_path), diagnostics


def _require(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """Keys and blocks a style must have (KVS106), also through `extends`."""

    def missing(key: str, block: str | None, help: str) -> None:
        if (block or TOP, key) in decl.misspelt:
            return  # KVS104 already says "did you mean `key`?" at the misspelt key
        where = decl.blocks.get(block, decl.name_span) if block else decl.name_span
        if block and decl.path != where.path:
            where = decl.name_span
        message = f"missing key `{key}` in `{block}`" if block else f"missing key `{key}`"
        diagnostics.append(error("KVS106", message, where, help=help))

    if decl.get(TOP, "description") is None:
        missing("description", None, 'add `description = "..."`: one sentence about the style')
    if "contrast" not in decl.blocks:
        diagnostics.append(
            error(
                "KVS106",
                "missing block `contrast`",
                decl.name_span,
                help="add `contrast { pairs = 40  shots = 2 }`",
            )
        )
    else:
        if decl.get("contrast", "pairs") is None:
            missing("pairs", "contrast", "add `pairs = 40` (N, the number of contrast pairs)")
        if decl.get("contrast", "shots") is None:
            missing("shots", "contrast", "add `shots = 2` (k demos per prompt, fewer than N)")
        if decl.get("contrast", "traces") is None and decl.get("teacher", "traces") is None:
            missing(
                "traces",
                "contrast",
                'add `traces = "traces/my_style.jsonl"` here or in `teacher`',
            )
    if "teacher" in decl.blocks:
        if decl.get("teacher", "model") is None:
            missing("model", "teacher", 'add `model = "gpt-4o"` (the teacher model)')
        if decl.get("teacher", "template") is None:
            missing("template", "teacher", 'add `template = "../templates/my_style.j2"`')


def _trace_field(decl: Decl) -> Field | None:
    """The trace file's key: `contrast`'s when written (even if invalid), else `teacher`'s."""
    return decl.get("contrast", "traces") or decl.get("teacher", "traces")


# --- shots and pairs -------------------------------------------------------------------


def _count_records(path: str) -> int | None:
    """Non-blank lines of a JSONL file (one record each), None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def _check_contrast_counts(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """`shots` and `pairs` against what the demos and the targets are drawn from.

    Without a query pool the N targets are traces and each one's k demos are other
    traces: k <= N - 1 (KVS110; the trace count itself is checked by `kvsl build`).
    With `questions` the N targets come from the pool (N <= its questions, KVS128) and
    the k demos from the traces (k <= the traces, KVS127).
    """
    pool = decl.get("contrast", "questions")
    if pool is None:
        _check_shots_without_pool(decl, diagnostics)
        return
    pool_name, path = pool.text(), pool.resolved_path()
    if pool_name is None or path is None:
        return
    pairs, available = decl.valid("contrast", "pairs"), None
    if not os.path.isfile(path):
        diagnostics.append(
            error(
                "KVS114",
                f"question file `{pool_name}` does not exist",
                pool.span,
                help=relative_help(pool.span.path, path),
            )
        )
    elif pairs is not None and (available := _count_records(path)) is not None:
        count = pairs.integer()
        if count is not None and count > available:
            diagnostics.append(
                error(
                    "KVS128",
                    f"`pairs` is {count} but the query pool `{pool_name}` holds "
                    f"{counted(available, 'question')}",
                    pairs.span,
                    labels=(Label(pool.span, f"{counted(available, 'question')} here"),),
                    help=f"use at most `pairs = {available}`, or a larger query pool",
                )
            )
    _check_shots_against_traces(decl, diagnostics)


def _check_shots_without_pool(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """Without `questions`: `format` means nothing (KVS129), and k <= N - 1 (KVS110)."""
    fmt = decl.valid("contrast", "format")
    if fmt is not None:
        diagnostics.append(
            warning(
                "KVS129",
                "`format` has no effect without `questions`",
                fmt.key_span,
                help='add `questions = "..."` (the query pool the format reads), or remove it',
            )
        )
    pairs, shots = decl.valid("contrast", "pairs"), decl.valid("contrast", "shots")
    n = pairs.integer() if pairs is not None else None
    k = shots.integer() if shots is not None else None
    if pairs is None or shots is None or n is None or k is None or k <= n - 1:
        return
    diagnostics.append(
        error(
            "KVS110",
            f"`shots` must be less than `pairs`: each prompt takes its "
            f"{counted(k, 'demo')} from the other pairs, so `shots = {k}` needs at least "
            f"{counted(k + 1, 'pair')}",
            shots.span,
            labels=(Label(pairs.span, f"`pairs` is {n} here"),),
            help=f"use at most {max(n - 1, 0)} (`shots = {max(n - 1, 0)}`), "
            "or more pairs, or draw the targets from a query pool (`questions = ...`)",
        )
    )


def _check_shots_against_traces(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """With `questions`: every demo is a trace, so k <= the traces (KVS127)."""
    shots, traces = decl.valid("contrast", "shots"), _trace_field(decl)
    k = shots.integer() if shots is not None else None
    name = traces.text() if traces is not None else None
    path = traces.resolved_path() if traces is not None else None
    if shots is None or traces is None or k is None or name is None or path is None:
        return
    count = _count_records(path) if os.path.isfile(path) else None
    if count is not None and k > count:
        diagnostics.append(
            error(
                "KVS127",
                f"`shots` is {k} but the trace file `{name}` holds "
                f"{counted(count, 'trace')}: every demo is a trace",
                shots.span,
                labels=(Label(traces.span, f"{counted(count, 'trace')} here"),),
                help=f"use at most `shots = {count}`, or add traces with `kvsl teach`",
            )
        )


# --- files and the endpoint ------------------------------------------------------------


def _check_trace_file(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """The trace file: not a regular file (KVS115), missing (KVS115, or KVS116 with a teacher)."""
    from kvsl.lang.files import regular_file_problem

    traces = _trace_field(decl)
    name = traces.text() if traces is not None else None
    path = traces.resolved_path() if traces is not None else None
    if traces is None or name is None or path is None:
        return
    problem = regular_file_problem(path)
    if problem is None:
        return
    if problem.kind != "missing":
        diagnostics.append(error("KVS115", f"trace file `{name}` {problem.reason}", traces.span))
    elif "teacher" in decl.blocks:
        diagnostics.append(
            warning(
                "KVS116",
                f"trace file `{name}` does not exist yet",
                traces.span,
                help="`kvsl teach SPEC` creates it",
            )
        )
    else:
        diagnostics.append(
            error(
                "KVS115",
                f"trace file `{name}` does not exist",
                traces.span,
                help=relative_help(traces.span.path, path) + "; add a `teacher` "
                "block to let `kvsl teach` create it",
            )
        )


def _check_question_file(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """The teacher's question file must be a readable regular file (KVS114)."""
    from kvsl.lang.files import regular_file_problem

    questions = decl.valid("teacher", "questions")
    path = questions.resolved_path() if questions is not None else None
    if questions is None or path is None:
        return
    problem = regular_file_problem(path)
    if problem is not None:
        diagnostics.append(
            error(
                "KVS114",
                f"question file `{questions.text()}` {problem.reason}",
                questions.span,
                help=relative_help(questions.span.path, path),
            )
        )


def _check_base_url(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    base_url = decl.valid("teacher", "base_url")
    url = base_url.text() if base_url is not None else None
    if base_url is None or url is None or (problem := http_url_problem(url)) is None:
        return
    diagnostics.append(
        error(
            "KVS108",
            f"`base_url` cannot be `{url}`: {problem}",
            base_url.span,
            help="write an http(s) URL such as `http://127.0.0.1:8000/v1`",
        )
    )


# --- the teacher's template ------------------------------------------------------------


def _check_template(
    decl: Decl, session: Session, diagnostics: list[Diagnostic]
) -> tuple[str | None, str | None]:
    """The template's text and file (None for an inline one) after its checks (KVS2xx).

    An inline `\"\"\"...\"\"\"` block is checked where it stands, so a template error
    points into the spec; a `"..."` string names a file relative to the spec.
    """
    from kvsl.lang.templates import TemplateOrigin, check_template

    found = decl.valid("teacher", "template")
    text = found.text() if found is not None else None
    if found is None or text is None:
        return None, None
    if found.triple:
        spec_source = session.source(found.span.path)
        if spec_source is None:  # a declaration not read through this session
            spec_source = SourceFile(found.span.path, " " * found.span.start + '"""' + text)
        origin = TemplateOrigin(spec_source, found.span.start + 3, found.span)
        diagnostics.extend(check_template(text, origin))
        return text, None
    if "\n" in text or "{{" in text or "{%" in text:
        diagnostics.append(
            error(
                "KVS200",
                "template file name looks like a template",
                found.span,
                help='write an inline template as a `"""..."""` block; a `"..."` string is a '
                "file path relative to the spec",
            )
        )
        return None, None
    return _template_file(found, text, diagnostics)


def _template_file(
    found: Field, name: str, diagnostics: list[Diagnostic]
) -> tuple[str | None, str | None]:
    from kvsl.lang.files import FileProblem, decode_data_text, read_regular_file
    from kvsl.lang.templates import MAX_TEMPLATE_BYTES, TemplateOrigin, check_template

    path = found.resolved_path()
    assert path is not None  # `found` holds a string
    try:
        # A BOM (Windows editors write one) would otherwise open every teacher prompt.
        text = decode_data_text(read_regular_file(path, MAX_TEMPLATE_BYTES))
    except (FileProblem, UnicodeDecodeError) as err:
        reason = "is not UTF-8" if isinstance(err, UnicodeDecodeError) else str(err)
        diagnostics.append(
            error(
                "KVS200",
                f"template file `{name}` {reason}",
                found.span,
                help=relative_help(found.span.path, path),
            )
        )
        return None, None
    origin = TemplateOrigin(SourceFile(shown(path), text), 0, found.span)
    diagnostics.extend(check_template(text, origin))
    return text, path


# --- layers and coefficients -----------------------------------------------------------


def _check_steer(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """Layers against the model (KVS112, KVS113), layer 0 (KVS124), the key (KVS123)."""
    model = decl.get(TOP, "model")
    model_name = DEFAULT_MODEL if model is None else model.text()
    num_layers = EMBEDDED_MODEL_LAYERS.get(model_name) if model_name else None
    layers = decl.valid("steer", "layers")
    spans = layers.layers() if layers is not None else None
    selections: list[tuple[tuple[LayerSpan, ...], Span]] = []
    if layers is not None and spans is not None:
        selections.append((spans, layers.span))
    for override in decl.overrides or ():
        selections.append((override.layers, override.layers_span))
    if model_name is not None and num_layers is not None:
        for chosen, where in selections:
            _check_layers_exist(chosen, where, model_name, num_layers, diagnostics)
    if layers is not None and spans is not None and _includes_zero(spans, num_layers):
        diagnostics.append(
            warning(
                "KVS124",
                "steering layer 0 has no effect on values",
                layers.span,
                help="at layer 0 both prompts' last token (the same offset token) has the "
                "same value vector, so the value difference is zero: start at `[1..]`",
            )
        )
    _check_key_coefficient(decl, diagnostics)


def _check_layers_exist(
    spans: tuple[LayerSpan, ...],
    where: Span,
    model_name: str,
    num_layers: int,
    diagnostics: list[Diagnostic],
) -> None:
    for layer_span in spans:
        # a range object, never materialised: `[1..100000000]` costs nothing here
        chosen = layer_span.resolve(num_layers)
        if chosen.start >= chosen.stop:
            diagnostics.append(
                error(
                    "KVS112",
                    f"layer range `{_span_text(layer_span)}` is empty on `{model_name}` "
                    f"({counted(num_layers, 'layer')})",
                    where,
                    help="ranges are inclusive and count up; -1 is the last layer",
                )
            )
        elif chosen.start < 0 or chosen.stop - 1 >= num_layers:
            diagnostics.append(
                error(
                    "KVS113",
                    f"layer `{_span_text(layer_span)}` is outside `{model_name}`, which has "
                    f"{counted(num_layers, 'layer')} (0..{num_layers - 1})",
                    where,
                    help=f"use layers 0..{num_layers - 1}, or -1 for the last one",
                )
            )


def _includes_zero(spans: tuple[LayerSpan, ...], num_layers: int | None) -> bool:
    if num_layers is None:
        return any(s.start == 0 for s in spans)
    # Out-of-range spans already have their error; only in-range ones count here.
    # (`0 in range(...)` is arithmetic: no set of layers is built.)
    return any(0 in s.resolve(num_layers) for s in spans if s.resolve(num_layers).start >= 0)


def _check_key_coefficient(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """The first non-zero key coefficient, global or in an `at` block (KVS123)."""
    written = [decl.valid("steer", "key")] + [o.key for o in decl.overrides or ()]
    for found in written:
        coefficient = found.number() if found is not None else None
        if found is None or coefficient is None or coefficient == 0:
            continue
        diagnostics.append(
            warning(
                "KVS123",
                f"non-zero key coefficient `{coefficient:g}`",
                found.span,
                help="keys are cached after RoPE, so a key vector mixes positions; the "
                "reference method keeps `key = 0`",
            )
        )
        return


def _span_text(layer_span: LayerSpan) -> str:
    if layer_span.stop is None:
        return f"{layer_span.start}.."
    if layer_span.start == layer_span.stop:
        return str(layer_span.start)
    return f"{layer_span.start}..{layer_span.stop}"


# --- generation settings ---------------------------------------------------------------


def _check_generate(decl: Decl, diagnostics: list[Diagnostic]) -> None:
    """Settings of `generate` that are legal one by one but mean little together."""
    if decl.text("generate", "mode") in (None, "greedy"):
        for key in SAMPLING_ONLY:  # the command-line flags' rule too (`problems`)
            found = decl.valid("generate", key)
            if found is not None:
                diagnostics.append(
                    warning(
                        "KVS125",
                        f"`{key}` has no effect with greedy decoding",
                        found.key_span,
                        help="add `mode = sample` to sample, or remove it",
                    )
                )
    low, high = decl.valid("generate", "min_new_tokens"), decl.integer("generate", "max_new_tokens")
    least = low.integer() if low is not None else None
    longest = high or GenerationSettings().max_new_tokens
    if low is not None and least is not None and least > longest:
        limit = f"the default {longest}" if high is None else f"`max_new_tokens = {longest}`"
        diagnostics.append(
            error(
                "KVS135",
                f"`min_new_tokens = {least}` exceeds {limit}",
                low.span,
                help="lower `min_new_tokens` or raise `max_new_tokens`",
            )
        )
    penalty = decl.valid("generate", "repetition_penalty")
    rate = penalty.number() if penalty is not None else None
    if penalty is not None and rate is not None and rate < 1:
        diagnostics.append(
            warning(
                "KVS136",
                f"`repetition_penalty = {rate:g}` rewards repetition",
                penalty.span,
                help="values above 1 discourage loops (1.1-1.3 is usual); 1 turns it off",
            )
        )
    ngram = decl.valid("generate", "no_repeat_ngram_size")
    size = ngram.integer() if ngram is not None else None
    if ngram is not None and size in (1, 2):
        unit = "word piece" if size == 1 else "pair of word pieces"
        diagnostics.append(
            warning(
                "KVS137",
                f"`no_repeat_ngram_size = {size}` forbids repeating any {unit}",
                ngram.span,
                help="ordinary text repeats short n-grams (`the`, `= 4`); 3 or more is usual, "
                "0 turns it off",
            )
        )
