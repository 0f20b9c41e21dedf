"""`kvsl run`: steered generation from a spec (built first if needed) or an artifact.

Everything that needs torch or transformers is imported inside the command body, so
`kvsl --help` and the front-end commands stay fast.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import BatchSizeOption, DeviceOption, PrecisionOption
from kvsl.lang.diagnostics import COMMAND_LINE, Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.plan import LayerSpan
from kvsl.lang.source import Span

if TYPE_CHECKING:
    from kvsl.lang.plan import Plan

FORMATS = ("text", "json", "jsonl")


def _usage(code: str, message: str, help: str, span: Span = COMMAND_LINE) -> KvslError:
    return KvslError.one(code, message, span, help=help, exit_code=ExitCode.USAGE)


_LAYER_ITEM = re.compile(r"^(?P<start>-?\d+)?(?P<range>\.\.)?(?P<stop>-?\d+)?$")


def parse_layers(text: str) -> tuple[LayerSpan, ...]:
    """Parse a `--layers` value: indices and inclusive ranges, as in a spec's `layers = [...]`.

    >>> parse_layers("1..,-3")
    (LayerSpan(start=1, stop=None), LayerSpan(start=-3, stop=-3))
    >>> parse_layers("[0, 2..4]")
    (LayerSpan(start=0, stop=0), LayerSpan(start=2, stop=4))
    >>> parse_layers("all")
    (LayerSpan(start=0, stop=None),)
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    if body.strip() == "all":
        return (LayerSpan(0, None),)
    spans: list[LayerSpan] = []
    for raw in body.split(","):
        item = raw.strip().replace(" ", "")
        match = _LAYER_ITEM.match(item)
        if (
            match is None
            or (match["start"] is None and match["stop"] is None)
            or (match["range"] is None and match["stop"] is not None)  # "1-3": two numbers
        ):
            raise _usage(
                "KVS450",
                f"invalid layer selection `{text}`: cannot read `{raw.strip()}`",
                "write indices and ranges separated by commas: `3`, `1..8`, `1..`, `..4`, "
                "`-4..-1`, or `all`",
            )
        start = int(match["start"]) if match["start"] is not None else 0
        if match["range"] is None:
            spans.append(LayerSpan(start, start))
        else:
            spans.append(
                LayerSpan(start, int(match["stop"]) if match["stop"] is not None else None)
            )
    return tuple(spans)


def _prompt_from_json(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("prompt"), str):
        return value["prompt"], {k: v for k, v in value.items() if k != "prompt"}
    raise _usage(
        "KVS454",
        'a prompt line must be a JSON string or an object with a string "prompt"',
        help='write `{"prompt": "Why is the sky blue?"}` or `"Why is the sky blue?"`',
        span=_line_span(where),
    )


def _line_span(where: str) -> Span:
    path, _, line = where.rpartition(":")
    number = int(line) if line.isdigit() else 1
    return Span(path or where, 0, 0, number, 1, number, 1)


def parse_prompt_lines(text: str, source: str, *, jsonl: bool) -> list[tuple[str, dict[str, Any]]]:
    """Prompts from a file's text: JSON lines (objects with "prompt", or strings), or, for
    standard input that is not JSON, one plain prompt per line.

    >>> parse_prompt_lines('{"prompt": "a", "id": 1}\\n"b"\\n', "p.jsonl", jsonl=True)
    [('a', {'id': 1}), ('b', {})]
    """
    prompts: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            if not jsonl:
                prompts.append((line, {}))
                continue
            raise _usage(
                "KVS454",
                "this line is not JSON",
                help='write one JSON value per line: `{"prompt": "Why is the sky blue?"}`',
                span=_line_span(f"{source}:{number}"),
            ) from None
        if not jsonl and not isinstance(value, dict | str):
            prompts.append((line, {}))  # "42" on stdin is a prompt, not a JSON number
            continue
        prompts.append(_prompt_from_json(value, f"{source}:{number}"))
    return prompts


def _read_prompts(prompts: list[str], file: Path | None) -> list[tuple[str, dict[str, Any]]]:
    if prompts:
        return [(p, {}) for p in prompts]
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = (
                "not UTF-8 text"
                if isinstance(err, UnicodeDecodeError)
                else (err.strerror or str(err))
            )
            raise _usage(
                "KVS453",
                f"cannot read prompt file `{file}`: {reason}",
                'pass a UTF-8 JSON-lines file: one `{"prompt": ...}` per line',
                Span.whole_file(str(file)),
            ) from None
        found = parse_prompt_lines(text, str(file), jsonl=True)
    elif not sys.stdin.isatty():
        found = parse_prompt_lines(sys.stdin.read(), "<stdin>", jsonl=False)
    else:
        found = []
    if not found:
        raise _usage(
            "KVS452",
            "no prompt given",
            "pass `--prompt TEXT`, `--file prompts.jsonl`, or pipe prompts on standard input",
        )
    return found


def _check_options(
    format: str,
    max_new_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    batch_size: int,
    precision: str = "fp32",
) -> None:
    problems = []
    if format not in FORMATS:
        problems.append(f"`--format {format}` is not one of text, json, jsonl")
    if max_new_tokens is not None and max_new_tokens < 1:
        problems.append(f"`--max-new-tokens {max_new_tokens}` must be at least 1")
    if batch_size < 1:
        problems.append(f"`--batch-size {batch_size}` must be at least 1")
    if temperature is not None and not temperature > 0:
        problems.append(f"`--temperature {temperature}` must be greater than 0")
    if top_p is not None and not 0 < top_p <= 1:
        problems.append(f"`--top-p {top_p}` must be in (0, 1]")
    if precision not in ("fp32", "bf16"):
        problems.append(f"`--precision {precision}` is not one of fp32, bf16")
    if problems:
        raise KvslError(
            [
                Diagnostic(
                    "KVS457",
                    Severity.ERROR,
                    problem,
                    COMMAND_LINE,
                    help="see `kvsl run --help` for each option's range",
                )
                for problem in problems
            ],
            ExitCode.USAGE,
        )


def with_overrides(
    plan: Plan,
    *,
    layers: tuple[LayerSpan, ...] | None = None,
    key: float | None = None,
    value: float | None = None,
    max_new_tokens: int | None = None,
    sample: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Plan:
    """The plan with command-line overrides applied (no hashes change: vectors are reused).

    `layers` replaces the steered layers (the spec's per-range `at` coefficients still apply
    inside them); `key` / `value` set c_k / c_v on every steered layer, replacing per-range ones.
    """
    steer = plan.steer
    if layers is not None:
        steer = replace(steer, layers=layers)
    if key is not None:
        steer = replace(
            steer, key=key, overrides=tuple(replace(o, key=None) for o in steer.overrides)
        )
    if value is not None:
        steer = replace(
            steer, value=value, overrides=tuple(replace(o, value=None) for o in steer.overrides)
        )
    generate = plan.generate
    changes: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "sample": sample,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
    }
    generate = replace(generate, **{k: v for k, v in changes.items() if v is not None})
    return replace(plan, steer=steer, generate=generate)


def _coefficients(plan: Plan, num_layers: int, span: Span) -> dict[int, tuple[float, float]]:
    try:
        return plan.steer.coefficients(num_layers)
    except ValueError as err:
        raise _usage(
            "KVS451",
            f"{err}",
            f"this model has layers 0..{num_layers - 1}; negative indices count from the end",
            span,
        ) from None


def _scores(plan: Plan, texts: list[str], console: Any) -> list[float] | None:
    try:
        from kvsl import styles
    except ImportError:
        console.print("note: scoring is unavailable (kvsl.styles is not installed)")
        return None
    score = getattr(styles, "score", None)
    can_score = getattr(styles, "can_score", None)
    if score is None or (can_score is not None and not can_score(plan)):
        console.print(
            f"note: scoring is unavailable for style `{plan.style}` "
            "(not a built-in style, and the spec declares no `markers`)"
        )
        return None
    return [float(score(text, plan)) for text in texts]


def _describe_steer(coefficients: dict[int, tuple[float, float]]) -> str:
    if not coefficients:
        return "no layers"
    layers = sorted(coefficients)
    values = set(coefficients.values())
    where = (
        f"layers {layers[0]}..{layers[-1]}"
        if layers == list(range(layers[0], layers[-1] + 1))
        else "layers " + ",".join(map(str, layers))
    )
    if len(values) == 1:
        ((c_k, c_v),) = values
        return f"{where}, c_k={c_k:g}, c_v={c_v:g}"
    return f"{where}, per-layer coefficients"


@app.command()
def run(
    target: Annotated[
        Path,
        typer.Argument(
            help="A `.kvs` spec (built first if needed), a built-in style name, or an artifact."
        ),
    ],
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", "-p", help="A prompt (repeatable).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help='JSON lines: {"prompt": ...} objects or strings. Default: stdin.'
        ),
    ] = None,
    value: Annotated[
        float | None, typer.Option("--value", help="c_v for every steered layer.")
    ] = None,
    key: Annotated[float | None, typer.Option("--key", help="c_k for every steered layer.")] = None,
    layers: Annotated[
        str | None, typer.Option("--layers", help='Steered layers, e.g. "1..", "1..8,-3", "all".')
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens")] = None,
    sample: Annotated[
        bool | None,
        typer.Option("--sample/--greedy", help="Sampling or greedy (the spec's by default)."),
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    batch_size: BatchSizeOption = 8,
    compare: Annotated[
        bool, typer.Option("--compare", help="Also generate without steering, side by side.")
    ] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="text, json or jsonl.")] = "text",
    score: Annotated[
        bool, typer.Option("--score", help="Score outputs for the style (kvsl.styles).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild the vectors of a spec.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Generate with steering: `kvsl run specs/step_by_step.kvs --prompt "Why is the sky blue?"`."""
    with reported_errors("json" if format in ("json", "jsonl") else "human"):
        _check_options(format, max_new_tokens, temperature, top_p, batch_size, precision)
        from kvsl.engine.models import resolve_device

        where = resolve_device(device)  # KVS309 before anything is loaded
        spans = parse_layers(layers) if layers is not None else None
        from kvsl.builtin import resolve_target

        target = resolve_target(target, code="KVS455")  # a built-in style name → its spec
        if not target.exists():
            raise _usage(
                "KVS455",
                f"`{target}` does not exist",
                "pass a `.kvs` spec or an artifact written by `kvsl build`",
                Span.whole_file(str(target)),
            )
        prompts = _read_prompts(list(prompt or []), file)
        try:
            _run(
                target,
                prompts,
                spans=spans,
                key=key,
                value=value,
                max_new_tokens=max_new_tokens,
                sample=sample,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
                batch_size=batch_size,
                compare=compare,
                format=format,
                score=score,
                force=force,
                device=where,
                precision=precision,
            )
        except KeyboardInterrupt:
            # Nothing half-written is left behind: artifacts are written atomically.
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None


def _run(
    target: Path,
    prompts: list[tuple[str, dict[str, Any]]],
    *,
    spans: tuple[LayerSpan, ...] | None,
    key: float | None,
    value: float | None,
    max_new_tokens: int | None,
    sample: bool | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    batch_size: int,
    compare: bool,
    format: str,
    score: bool,
    force: bool,
    device: str | None = None,
    precision: str = "fp32",
) -> None:
    import torch
    from rich.console import Console

    from kvsl.engine.artifact import check_compatible, load_artifact
    from kvsl.engine.generate import GenerationSettings, TokenStreamer, chat_prompt, generate_texts
    from kvsl.engine.models import load_model
    from kvsl.engine.prompting import offset_token_id
    from kvsl.engine.steer import resolve_edit

    status = Console(stderr=True, highlight=False, soft_wrap=True)
    quiet = format != "text"
    is_spec = target.suffix == ".kvs"
    if is_spec:
        from kvsl.lang import load_plan

        plan = load_plan(target)
    else:
        from kvsl.engine.artifact import plan_of_artifact

        plan = plan_of_artifact(target, instead="kvsl run SPEC.kvs")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    loaded = load_model(plan.model, dtype=dtype, device=device)
    if is_spec:
        from kvsl.engine.build import build

        # Reuse the fp32 model in memory only for an fp32 extraction: vectors are named by
        # the plan, so they must not depend on this run's `--precision`.
        reuse = loaded if precision == plan.extract.precision == "fp32" else None
        result = build(plan, force=force, loaded=reuse, console=status)
        artifact = Path(result.path)
    else:
        artifact = target
    vectors = load_artifact(artifact)
    check_compatible(vectors, loaded)

    plan = with_overrides(
        plan,
        layers=spans,
        key=key,
        value=value,
        max_new_tokens=max_new_tokens,
        sample=sample,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    coefficients = _coefficients(
        plan, loaded.geometry.num_layers, COMMAND_LINE if spans else Span.whole_file(plan.spec_path)
    )
    settings = GenerationSettings.from_plan(plan.generate)
    model, tokenizer = loaded.model, loaded.tokenizer
    offset = offset_token_id(tokenizer, vectors.offset_token)
    edit = resolve_edit(vectors, coefficients)
    # Plain and steered share the prompt, the vectors' prefix included (the paper's prefix
    # variant), so that --compare shows the effect of the cache edit alone.
    ids = [
        chat_prompt(tokenizer, text, plan.contrast.system_prompt, vectors.prefix)
        for text, _ in prompts
    ]
    if not quiet:
        mode = "sampling" if settings.sample else "greedy"
        status.print(
            f"steering `{plan.model.name}` with `{plan.style}`: {_describe_steer(coefficients)}, "
            f"{mode}, up to {settings.max_new_tokens} new tokens"
            + (f", answers start with {vectors.prefix!r}" if vectors.prefix else "")
        )

    stream = format == "text" and len(prompts) == 1 and not compare
    streamer = TokenStreamer(tokenizer, settings.stop) if stream else None

    def generate(steer: bool, on_batch: Callable[[int], object] | None) -> list[str]:
        return generate_texts(
            model,
            tokenizer,
            ids,
            settings=settings,
            offset_id=offset,
            edit=(edit if steer and not edit.is_empty else None),
            batch_size=batch_size,
            streamer=streamer if steer else None,
            on_batch=on_batch,
        )

    steered_texts = _with_progress(status, quiet or stream, len(prompts), "steered", generate, True)
    plain_texts = (
        _with_progress(status, quiet, len(prompts), "plain", generate, False) if compare else None
    )
    scores: dict[str, list[float] | None] = {}
    if score:
        scores["steered"] = _scores(plan, steered_texts, status)
        if plain_texts is not None and scores["steered"] is not None:
            scores["plain"] = _scores(plan, plain_texts, status)

    records = []
    for i, (text, extra) in enumerate(prompts):
        record: dict[str, Any] = {**extra, "prompt": text, "steered": steered_texts[i]}
        if plain_texts is not None:
            record["plain"] = plain_texts[i]
        if scores.get("steered") is not None:
            record["scores"] = {name: values[i] for name, values in scores.items() if values}
        records.append(record)

    if format == "jsonl":
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
    elif format == "json":
        header = {
            "style": plan.style,
            "model": plan.model.name,
            "artifact": str(artifact),
            "coefficients": {str(layer): list(c) for layer, c in coefficients.items()},
            "generation": {
                "max_new_tokens": settings.max_new_tokens,
                "sample": settings.sample,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "seed": settings.seed,
                "stop": list(settings.stop),
            },
            "results": records,
        }
        typer.echo(json.dumps(header, ensure_ascii=False, indent=2))
    elif not stream:
        _print_text(records, compare)


def _with_progress(
    status: Any, quiet: bool, total: int, label: str, work: Callable[..., list[str]], steer: bool
) -> list[str]:
    """Run `work(steer, on_batch)` under a progress bar on stderr (none when quiet or 1 prompt)."""
    if quiet or total == 1:
        return work(steer, None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=status,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        return work(steer, lambda done: progress.advance(task, done))


def _print_text(records: list[dict[str, Any]], compare: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console(highlight=False, soft_wrap=not compare)
    for i, record in enumerate(records, start=1):
        scores = record.get("scores", {})
        title = (
            Text(f"[{i}/{len(records)}] {record['prompt']}")
            if len(records) > 1
            else Text(record["prompt"])
        )
        if not compare:
            if len(records) > 1:
                out.rule(title, align="left")
            suffix = f"  (score {scores['steered']:.2f})" if "steered" in scores else ""
            out.print(Text(record["steered"] + suffix))
            continue
        table = Table(title=title, show_lines=True, expand=True, title_justify="left")
        for name in ("plain", "steered"):
            header = name if name not in scores else f"{name} (score {scores[name]:.2f})"
            table.add_column(header, ratio=1, overflow="fold")
        # Text(...) keeps model output literal: brackets in it are not rich markup.
        table.add_row(Text(record["plain"]), Text(record["steered"]))
        out.print(table)
