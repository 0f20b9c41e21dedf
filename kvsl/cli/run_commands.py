"""`kvsl run`: steered generation from a spec (built first if needed) or an artifact.

Everything that needs torch or transformers is imported inside the command body, so
`kvsl --help` and the front-end commands stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import (
    BatchSizeOption,
    DeviceMapOption,
    DeviceOption,
    MinNewTokensOption,
    NoRepeatNgramOption,
    PrecisionOption,
    RepetitionPenaltyOption,
    ThreadsOption,
    TopKOption,
    decoding_controls,
)
from kvsl.lang.diagnostics import COMMAND_LINE, Diagnostic, ExitCode, KvslError, Severity
from kvsl.lang.overrides import parse_layers, with_overrides
from kvsl.lang.plan import LayerSpan
from kvsl.lang.source import Span

if TYPE_CHECKING:
    from kvsl.lang.plan import Plan

FORMATS = ("text", "json", "jsonl")


def _usage(code: str, message: str, help: str, span: Span = COMMAND_LINE) -> KvslError:
    return KvslError.one(code, message, span, help=help, exit_code=ExitCode.USAGE)


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
    controls: Mapping[str, Any] | None = None,
) -> None:
    from kvsl.lang.plan import GenerationSettings

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
    if precision not in ("auto", "fp32", "bf16"):
        problems.append(f"`--precision {precision}` is not one of auto, fp32, bf16")
    # Ranges only: whether `--min-new-tokens` fits `max_new_tokens` is known once the spec is.
    ranges = replace(GenerationSettings(max_new_tokens=1 << 30), **(controls or {}))
    problems += ranges.problems()
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
    repetition_penalty: RepetitionPenaltyOption = None,
    no_repeat_ngram_size: NoRepeatNgramOption = None,
    min_new_tokens: MinNewTokensOption = None,
    top_k: TopKOption = None,
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
    precision: PrecisionOption = "auto",
    threads: ThreadsOption = None,
    device_map: DeviceMapOption = None,
) -> None:
    """Generate with steering: `kvsl run specs/step_by_step.kvs --prompt "Why is the sky blue?"`."""
    with reported_errors("json" if format in ("json", "jsonl") else "human"):
        from kvsl.engine.distributed import refuse_launcher

        refuse_launcher("run")  # KVS317 under torchrun: every rank would print the same text
        controls = decoding_controls(repetition_penalty, no_repeat_ngram_size, min_new_tokens, top_k)
        _check_options(
            format, max_new_tokens, temperature, top_p, batch_size, precision, controls
        )
        from kvsl.engine.placement import parse_device_map
        from kvsl.engine.setup import prepare

        placement = parse_device_map(device_map) if device_map else None
        # Threads, the device (KVS309) and the precision, before anything is loaded.
        setup = prepare(threads=threads, device=device, precision=precision, device_map=device_map)
        if format == "text":
            print(f"kvsl run: {setup.line()}", file=sys.stderr)
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
                controls=controls,
                batch_size=batch_size,
                compare=compare,
                format=format,
                score=score,
                force=force,
                device=setup.device,
                precision=setup.precision.name,
                device_map=placement,
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
    controls: Mapping[str, Any] | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> None:
    import torch
    from rich.console import Console

    from kvsl.engine.artifact import check_compatible, load_artifact
    from kvsl.engine.generate import TokenStreamer, chat_prompt, generate_texts
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
    loaded = load_model(plan.model, dtype=dtype, device=device, device_map=device_map)
    if is_spec:
        from kvsl.engine.build import build

        # Reuse the fp32 model in memory only for an fp32 extraction: vectors are named by
        # the plan, so they must not depend on this run's `--precision`.
        reuse = loaded if precision == plan.extract.precision == "fp32" else None
        result = build(
            plan,
            force=force,
            loaded=reuse,
            console=status,
            device=device,
            device_map=device_map,
        )
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
        controls=controls,
    )
    settings = plan.generate  # plain (`--compare`) and steered rows share it: a fair comparison
    if settings.min_new_tokens > settings.max_new_tokens:
        raise _usage(
            "KVS457",
            f"`--min-new-tokens {settings.min_new_tokens}` exceeds "
            f"`max_new_tokens` ({settings.max_new_tokens})",
            "lower `--min-new-tokens` or raise `--max-new-tokens`",
        )
    coefficients = _coefficients(
        plan, loaded.geometry.num_layers, COMMAND_LINE if spans else Span.whole_file(plan.spec_path)
    )
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
                **settings.controls(),
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
