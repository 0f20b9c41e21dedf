"""`kvsl eval`: cache steering against plain, CoT and CAA on a benchmark file.

    kvsl eval SPEC --benchmark arc --data ARC-Challenge-Test.jsonl --dev ARC-Challenge-Dev.jsonl
    kvsl eval SPEC --benchmark arc --dev ARC-Challenge-Dev.jsonl --sweep value=0,2,4,6,8

With `--sweep` the command evaluates settings on the dev split and plots them instead of
scoring the test file. The command fills a `kvsl.eval.request.EvalRequest` from its flags,
calls `kvsl.eval.request.run` and prints the outcome. Everything that needs torch is
imported inside the command body.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kvsl.base.interrupt import stop_on_interrupt
from kvsl.base.plurals import counted
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
from kvsl.eval.forced import FORCED_MODES
from kvsl.lang.diagnostics import KvslError
from kvsl.lang.overrides import parse_layers

if TYPE_CHECKING:
    from kvsl.eval.request import EvalOutcome, EvalRequest


def _bad_flag(message: str, help: str | None = None) -> KvslError:
    """A KVS612 usage error located on the command line (exit 2)."""
    return KvslError.usage("KVS612", message, help=help)


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise _bad_flag(f"unknown {what} `{value}`", help="use " + " or ".join(allowed))


def _numbers(text: str | None, name: str, cast: type = float) -> tuple[Any, ...] | None:
    if text is None:
        return None
    try:
        numbers = tuple(cast(v) for v in text.split(",") if v.strip())
    except ValueError:
        numbers = (math.nan,)
    if not all(math.isfinite(v) for v in numbers):
        raise _bad_flag(f"`{name}` takes comma-separated finite numbers, got `{text}`")
    return numbers


TargetArgument = Annotated[
    Path | None,
    typer.Argument(
        help="A `.kvs` spec (built first if needed), a built-in style name, or an "
        "artifact. Optional for plain,cot."
    ),
]
BenchmarkOption = Annotated[
    str | None,
    typer.Option("--benchmark", "-b", help="gsm8k, arc, csqa, piqa or plain (default: detected)."),
]
DataOption = Annotated[str | None, typer.Option("--data", help="The test file (native format).")]
LabelsOption = Annotated[str | None, typer.Option("--labels", help="PIQA labels for --data.")]
DevOption = Annotated[
    str | None, typer.Option("--dev", help="Dev/train file: CAA choice and sweeps.")
]
DevLabelsOption = Annotated[
    str | None, typer.Option("--dev-labels", help="PIQA labels for --dev.")
]
MethodsOption = Annotated[
    str, typer.Option("--methods", "-m", help="Comma-separated: plain,cot,cache,cache+cot,caa.")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model without a spec (plain,cot only).")
]
LimitOption = Annotated[int | None, typer.Option("--limit", help="First N test examples.")]
DevLimitOption = Annotated[int | None, typer.Option("--dev-limit", help="First N dev examples.")]
MaxNewTokensOption = Annotated[int, typer.Option("--max-new-tokens")]
RunsOption = Annotated[int, typer.Option("--runs", help="Sampled runs (seeds seed..seed+runs-1).")]
SampleOption = Annotated[
    bool | None,
    typer.Option("--sample/--greedy", help="Sampling (implied by --runs > 1). Default: greedy."),
]
TemperatureOption = Annotated[
    float | None, typer.Option("--temperature", help="Sampling only. Default: 0.7.")
]
TopPOption = Annotated[float | None, typer.Option("--top-p", help="Sampling only. Default: 0.9.")]
SeedOption = Annotated[int, typer.Option("--seed")]
LayersOption = Annotated[
    str | None, typer.Option("--layers", help='Cache steering layers, e.g. "1..".')
]
KeyOption = Annotated[float | None, typer.Option("--key", help="c_k for cache steering.")]
ValueOption = Annotated[float | None, typer.Option("--value", help="c_v for cache steering.")]
CaaLayerOption = Annotated[int | None, typer.Option("--caa-layer", help="Fix the CAA layer.")]
CaaMultiplierOption = Annotated[
    float | None, typer.Option("--caa-multiplier", help="Fix the CAA multiplier.")
]
CaaLayersOption = Annotated[
    str | None, typer.Option("--caa-layers", help="CAA layers to try on --dev.")
]
CaaMultipliersOption = Annotated[
    str, typer.Option("--caa-multipliers", help="CAA multipliers to try on --dev.")
]
ExportCaaOption = Annotated[
    str | None,
    typer.Option("--export-caa", help="Write the chosen CAA vector as a llama.cpp GGUF."),
]
SweepOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sweep",
        help="NAME=V1,V2,... on --dev (value, key, layers, shots, pairs, caa-layer, caa-multiplier); repeatable.",
    ),
]
ForcedChoiceOption = Annotated[
    str,
    typer.Option(
        "--forced-choice",
        help="model (logits), calibrated (logits less the letter prior) or overlap, for unreadable answers.",
    ),
]
OutOption = Annotated[str, typer.Option("--out", help="Results cache, reports and plots.")]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="text or json.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild the spec's vectors.")]


@app.command("eval")
def eval_command(
    target: TargetArgument = None,
    benchmark: BenchmarkOption = None,
    data: DataOption = None,
    labels: LabelsOption = None,
    dev: DevOption = None,
    dev_labels: DevLabelsOption = None,
    methods: MethodsOption = "plain,cot,cache,cache+cot,caa",
    model: ModelOption = None,
    limit: LimitOption = None,
    dev_limit: DevLimitOption = 50,
    batch_size: BatchSizeOption = 32,
    max_new_tokens: MaxNewTokensOption = 256,
    runs: RunsOption = 1,
    sample: SampleOption = None,
    temperature: TemperatureOption = None,
    top_p: TopPOption = None,
    seed: SeedOption = 0,
    repetition_penalty: RepetitionPenaltyOption = None,
    no_repeat_ngram_size: NoRepeatNgramOption = None,
    min_new_tokens: MinNewTokensOption = None,
    top_k: TopKOption = None,
    precision: PrecisionOption = "auto",
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    layers: LayersOption = None,
    key: KeyOption = None,
    value: ValueOption = None,
    caa_layer: CaaLayerOption = None,
    caa_multiplier: CaaMultiplierOption = None,
    caa_layers: CaaLayersOption = None,
    caa_multipliers: CaaMultipliersOption = "1,2,4",
    export_caa: ExportCaaOption = None,
    sweep: SweepOption = None,
    forced_choice: ForcedChoiceOption = "model",
    out: OutOption = ".kvsl/eval",
    format: FormatOption = "text",
    force: ForceOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Compare cache steering with plain, chain-of-thought and activation steering (CAA)."""
    with reported_errors(format="json" if format == "json" else "human"):
        from kvsl.builtin import resolve_target
        from kvsl.eval.methods import parse_methods
        from kvsl.eval.pipeline import parse_sweep
        from kvsl.eval.request import EvalRequest
        from kvsl.lang.plan import DECODING_CONTROLS, GenerationSettings

        _check_choice(format, ("text", "json"), "format")
        _check_choice(precision, ("auto", "fp32", "bf16"), "precision")
        _check_choice(forced_choice, FORCED_MODES, "forced choice")
        controls = decoding_controls(repetition_penalty, no_repeat_ngram_size, min_new_tokens, top_k)
        setup = _prepare(threads, device, precision, device_map)
        # Every method (plain included) decodes with these: a fair comparison.
        sampling = {"temperature": temperature, "top_p": top_p}
        flags = {**{k: v for k, v in sampling.items() if v is not None}, **controls}
        decode = GenerationSettings(
            max_new_tokens=max_new_tokens, sample=bool(sample), seed=seed, **flags
        )
        request = EvalRequest(
            # A built-in style name (`step-by-step`) stands for its spec file.
            target=str(resolve_target(target)) if target is not None else None,
            benchmark=benchmark, data=data, labels=labels, dev=dev, dev_labels=dev_labels,
            methods=parse_methods(methods), model=model, limit=limit, dev_limit=dev_limit,
            batch_size=batch_size, decode=decode, runs=runs,
            decode_flags=tuple(flags) + (("sample",) if sample is not None else ()),
            # Controls not given as flags come from the spec's `generate` block.
            spec_controls=tuple(name for name in DECODING_CONTROLS if name not in controls),
            precision=setup.precision.name, device=setup.device or "cpu", device_map=device_map,
            layers=parse_layers(layers) if layers else None, key=key, value=value,
            caa_layer=caa_layer, caa_multiplier=caa_multiplier,
            caa_layers=_numbers(caa_layers, "--caa-layers", int),
            caa_multipliers=_numbers(caa_multipliers, "--caa-multipliers") or (1.0,),
            export_caa=export_caa, sweeps=tuple(parse_sweep(s) for s in sweep or ()),
            forced_choice=forced_choice, out_dir=out, force=force, threads=setup.threads.count,
        )  # fmt: skip
        _run(request, format)


def _prepare(threads: int | None, device: str, precision: str, device_map: str | None) -> Any:
    """Threads (KVS313), the device (KVS309), the process group and the precision."""
    from kvsl.engine.placement import parse_device_map
    from kvsl.engine.setup import prepare

    if device_map:
        parse_device_map(device_map)  # KVS316 before anything is loaded
    setup = prepare(threads=threads, device=device, precision=precision, device_map=device_map)
    if setup.dist.is_main:
        print(f"kvsl eval: {setup.line()}", file=sys.stderr)
    return setup


def _run(request: EvalRequest, format: str) -> None:
    """Call `kvsl.eval.request.run`, then print its tables (or its JSON report)."""
    from rich.console import Console

    from kvsl.engine.distributed import is_main
    from kvsl.eval.request import run

    # soft_wrap: a status line stays one line in a log (rich wraps at 80 off a terminal)
    status = Console(
        stderr=True, highlight=False, markup=False, soft_wrap=True, quiet=not is_main()
    )
    quiet = format == "json" or not is_main()
    with stop_on_interrupt(f"{request.out_dir}/results.jsonl"):
        outcome = run(request, console=status, quiet=quiet)
    if not outcome.is_main:
        return  # under torchrun / accelerate: rank 0 prints and writes the report
    if quiet:
        typer.echo(json.dumps(outcome.report, indent=2, ensure_ascii=False, default=str))
    elif outcome.is_sweep:
        _print_sweeps(outcome, request)
    else:
        _print_eval(outcome)


def _print_sweeps(outcome: EvalOutcome, request: EvalRequest) -> None:
    from rich.console import Console

    from kvsl.eval.report import sweep_table

    out = Console(highlight=False, markup=False)
    for name, pts in (outcome.points or {}).items():
        out.print(sweep_table(pts, title=f"sweep `{name}` on {request.dev}"))
    out.print(f"best on dev: {outcome.report['best']}")
    # soft_wrap: paths stay whole, to be copied from a log (off a terminal rich wraps at 80)
    out.print(
        f"plot: {outcome.report['plot']}   report: {outcome.report['report_path']}", soft_wrap=True
    )


def _print_eval(outcome: EvalOutcome) -> None:
    from rich.console import Console

    from kvsl.eval.report import legend, rich_table

    report = outcome.report
    out = Console(highlight=False, markup=False)
    bench = report["benchmark"]
    title = f"{bench['format']}: {counted(bench['examples'], 'example')} from {bench['data']}" + (
        f" (first {bench['limit']})" if bench["limit"] is not None else ""
    )
    out.print(rich_table(outcome.summaries or [], title=title))
    out.print(legend(), style="dim")
    if report.get("caa"):
        caa = report["caa"]
        out.print(
            f"CAA: layer {caa['layer']}, multiplier {caa['multiplier']:g} "
            f"(chosen on {caa['chosen_on']})"
        )
    out.print(
        f"report: {report['report_path']}  "
        f"(generated {counted(report['generated_now'], 'response')} now)",
        soft_wrap=True,
    )
