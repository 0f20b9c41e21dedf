"""`kvsl run`: steered generation from a spec (built first if needed) or an artifact.

The command reads its flags and prompts into a `kvsl.engine.run.RunRequest`, calls
`kvsl.engine.run.run`, and prints the result as text, JSON or JSON lines. Everything that
needs torch or transformers is imported inside the command body, so `kvsl --help` and the
front-end commands stay fast.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvsl.base.jsonl import loads, text_lines
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
from kvsl.lang.overrides import parse_layers
from kvsl.lang.source import Span

if TYPE_CHECKING:
    from kvsl.engine.run import RunResult

__all__ = ["parse_layers", "parse_prompt_lines", "run"]  # parse_layers: kvsl.lang.overrides

FORMATS = ("text", "json", "jsonl")


def _usage(code: str, message: str, help: str, span: Span = COMMAND_LINE) -> KvslError:
    return KvslError.one(code, message, span, help=help, exit_code=ExitCode.USAGE)


def _prompt_from_json(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    found: tuple[str, dict[str, Any]] | None = None
    if isinstance(value, str):
        found = value, {}
    elif isinstance(value, dict) and isinstance(value.get("prompt"), str):
        found = value["prompt"], {k: v for k, v in value.items() if k != "prompt"}
    if found is not None and not found[0].strip():
        raise _usage(
            "KVS454",
            "the prompt on this line is empty",
            help="give each line the text to generate from, or leave the line out",
            span=_line_span(where),
        )
    if found is not None:
        return found
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
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        try:
            value = loads(line)
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


def _not_utf8(where: str) -> KvslError:
    return _usage(
        "KVS464",
        f"{where} is not UTF-8 text",
        "convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8`",
    )


def _read_stdin() -> str:
    """Standard input as UTF-8 text (a BOM dropped); KVS464 for other bytes.

    Python decodes stdin strictly (UnicodeDecodeError) or, in the C locale, into lone
    surrogates that reached the tokenizer as a TypeError: either way a traceback.
    """
    from kvsl.lang.files import decode_data_text

    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is not None:
            return decode_data_text(stream.read())
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise _not_utf8("standard input") from None


def _read_prompts(prompts: list[str], file: Path | None) -> list[tuple[str, dict[str, Any]]]:
    if prompts:
        for given in prompts:
            try:
                given.encode("utf-8")
            except UnicodeEncodeError:  # argv bytes that are not UTF-8, held as surrogates
                raise _not_utf8("a `--prompt` argument") from None
            if not given.strip():  # `--prompt "$UNSET"` generated from nothing
                raise _usage(
                    "KVS452",
                    "`--prompt` is empty",
                    "pass the text to generate from (an unset shell variable gives an empty one)",
                )
        return [(p, {}) for p in prompts]
    if file is not None:
        from kvsl.lang.files import (
            MAX_DATA_BYTES,
            FileProblem,
            decode_data_text,
            read_regular_file,
        )

        try:
            # Regular files only, capped: `--file /dev/zero` or a FIFO must not hang.
            text = decode_data_text(read_regular_file(str(file), MAX_DATA_BYTES))
        except (FileProblem, UnicodeDecodeError) as err:
            reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else str(err)
            raise _usage(
                "KVS453",
                f"cannot read prompt file `{file}`: {reason}",
                'pass a UTF-8 JSON-lines file: one `{"prompt": ...}` per line',
                Span.whole_file(str(file)),
            ) from None
        found = parse_prompt_lines(text, str(file), jsonl=True)
    elif not sys.stdin.isatty():
        found = parse_prompt_lines(_read_stdin(), "<stdin>", jsonl=False)
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
    *,
    seed: int | None = None,
    value: float | None = None,
    key: float | None = None,
    sample: bool | None = None,
) -> None:
    from kvsl.lang.plan import GenerationSettings

    problems = []
    if format not in FORMATS:
        problems.append(f"`--format {format}` is not one of text, json, jsonl")
    if batch_size < 1:
        problems.append(f"`--batch-size {batch_size}` must be at least 1")
    if precision not in ("auto", "fp32", "bf16"):
        problems.append(f"`--precision {precision}` is not one of auto, fp32, bf16")
    for name, coefficient in (("--value", value), ("--key", key)):
        if coefficient is not None and not math.isfinite(coefficient):
            problems.append(f"`{name} {coefficient}` must be a finite number")
    # The given generation flags on the spec-free defaults: ranges, and sampling flags
    # with `--greedy` (whether `--min-new-tokens` fits `max_new_tokens`, or a sampling
    # flag the spec's mode, is known once the spec is: `kvsl.engine.run` checks again).
    given = {
        "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
        "seed": seed, **(controls or {}),
    }  # fmt: skip
    flags = {k: v for k, v in given.items() if v is not None}
    ranges = GenerationSettings(max_new_tokens=1 << 30, sample=sample is not False)
    problems += replace(ranges, **flags).problems(given=flags)
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


TargetArgument = Annotated[
    Path,
    typer.Argument(
        help="A `.kvs` spec (built first if needed), a built-in style name, or an artifact."
    ),
]
PromptOption = Annotated[
    list[str] | None, typer.Option("--prompt", "-p", help="A prompt (repeatable).")
]
FileOption = Annotated[
    Path | None,
    typer.Option("--file", help='JSON lines: {"prompt": ...} objects or strings. Default: stdin.'),
]
ValueOption = Annotated[float | None, typer.Option("--value", help="c_v for every steered layer.")]
KeyOption = Annotated[float | None, typer.Option("--key", help="c_k for every steered layer.")]
LayersOption = Annotated[
    str | None, typer.Option("--layers", help='Steered layers, e.g. "1..", "1..8,-3", "all".')
]
MaxNewTokensOption = Annotated[int | None, typer.Option("--max-new-tokens")]
SampleOption = Annotated[
    bool | None,
    typer.Option("--sample/--greedy", help="Sampling or greedy (the spec's by default)."),
]
TemperatureOption = Annotated[float | None, typer.Option("--temperature")]
TopPOption = Annotated[float | None, typer.Option("--top-p")]
SeedOption = Annotated[int | None, typer.Option("--seed")]
CompareOption = Annotated[
    bool, typer.Option("--compare", help="Also generate without steering, side by side.")
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="text, json or jsonl.")]
ScoreOption = Annotated[
    bool, typer.Option("--score", help="Score outputs for the style (kvsl.styles).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild the vectors of a spec.")]


@app.command()
def run(
    target: TargetArgument,
    prompt: PromptOption = None,
    file: FileOption = None,
    value: ValueOption = None,
    key: KeyOption = None,
    layers: LayersOption = None,
    max_new_tokens: MaxNewTokensOption = None,
    sample: SampleOption = None,
    temperature: TemperatureOption = None,
    top_p: TopPOption = None,
    seed: SeedOption = None,
    repetition_penalty: RepetitionPenaltyOption = None,
    no_repeat_ngram_size: NoRepeatNgramOption = None,
    min_new_tokens: MinNewTokensOption = None,
    top_k: TopKOption = None,
    batch_size: BatchSizeOption = 8,
    compare: CompareOption = False,
    format: FormatOption = "text",
    score: ScoreOption = False,
    force: ForceOption = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    threads: ThreadsOption = None,
    device_map: DeviceMapOption = None,
) -> None:
    """Generate with steering: `kvsl run specs/step_by_step.kvs --prompt "Why is the sky blue?"`."""
    with reported_errors("json" if format in ("json", "jsonl") else "human"):
        from kvsl.engine.distributed import refuse_launcher

        refuse_launcher("run")  # KVS317 under torchrun: every rank would print the same text
        controls = decoding_controls(
            repetition_penalty, no_repeat_ngram_size, min_new_tokens, top_k
        )
        _check_options(
            format, max_new_tokens, temperature, top_p, batch_size, precision, controls,
            seed=seed, value=value, key=key, sample=sample,
        )  # fmt: skip
        from rich.console import Console

        from kvsl.builtin import evidence_note
        from kvsl.engine.placement import parse_device_map
        from kvsl.engine.run import RunRequest
        from kvsl.engine.run import run as run_request
        from kvsl.engine.setup import prepare

        placement = parse_device_map(device_map) if device_map else None
        # Threads, the device (KVS309) and the precision, before anything is loaded.
        setup = prepare(threads=threads, device=device, precision=precision, device_map=device_map)
        if format == "text":
            print(f"kvsl run: {setup.line()}", file=sys.stderr)
        spans = parse_layers(layers) if layers is not None else None
        target = _existing_target(target)
        if format == "text" and (note := evidence_note(target)) is not None:
            print(note, file=sys.stderr)
        request = RunRequest(
            target, tuple(_read_prompts(list(prompt or []), file)), layers=spans, key=key,
            value=value, max_new_tokens=max_new_tokens, sample=sample, temperature=temperature,
            top_p=top_p, seed=seed, controls=controls, batch_size=batch_size, compare=compare,
            score=score, force=force, device=setup.device, precision=setup.precision.name,
            device_map=placement,
        )  # fmt: skip
        status = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
        try:
            stream = _write_stdout if format == "text" else None
            result = run_request(request, console=status, quiet=format != "text", stream=stream)
        except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM (kvsl.base.interrupt)
            # Nothing half-written is left behind: artifacts are written atomically.
            from kvsl.base.interrupt import INTERRUPTED, exit_code

            code = exit_code(interrupt)
            print("interrupted" + (" (SIGTERM)" if code != INTERRUPTED else ""), file=sys.stderr)
            raise typer.Exit(code) from None
        _render(result, format, compare)


def _existing_target(target: Path) -> Path:
    """The spec or artifact to run: a built-in style name stands for its spec (KVS455)."""
    from kvsl.builtin import resolve_target
    from kvsl.lang.reading import close_file_hint

    target = resolve_target(target, code="KVS455")
    if not target.exists():
        gone = "is a link to nothing (or to itself)" if target.is_symlink() else "does not exist"
        raise _usage(
            "KVS455",
            f"`{target}` {gone}",
            close_file_hint(str(target), (".kvs", ".safetensors"))
            + "pass a `.kvs` spec, a built-in style's name (`kvsl styles`) or an artifact "
            "written by `kvsl build`",
            Span.whole_file(str(target)),
        )
    return target


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _render(result: RunResult, format: str, compare: bool) -> None:
    """The records on stdout: JSON lines, one JSON report, or text (unless streamed)."""
    if format == "jsonl":
        for record in result.records:
            typer.echo(json.dumps(record, ensure_ascii=False))
    elif format == "json":
        typer.echo(json.dumps(result.report(), ensure_ascii=False, indent=2))
    elif not result.streamed:
        _print_text(list(result.records), compare)


def _print_text(records: list[dict[str, Any]], compare: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console(highlight=False, markup=False, soft_wrap=not compare)
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
