"""`kvsl eval`: cache steering against plain, CoT and CAA on a benchmark file.

    kvsl eval SPEC --benchmark arc --data ARC-Challenge-Test.jsonl --dev ARC-Challenge-Dev.jsonl
    kvsl eval SPEC --benchmark arc --dev ARC-Challenge-Dev.jsonl --sweep value=0,2,4,6,8

With `--sweep` the command evaluates settings on the dev split and plots them instead of
scoring the test file. Everything that needs torch is imported inside the command body.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
from kvsl.lang.diagnostics import KvslError


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
        return tuple(cast(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _bad_flag(f"`{name}` takes comma-separated numbers, got `{text}`") from None


@app.command("eval")
def eval_command(
    target: Annotated[
        Path | None,
        typer.Argument(
            help="A `.kvs` spec (built first if needed), a built-in style name, or an "
            "artifact. Optional for plain,cot."
        ),
    ] = None,
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark", "-b", help="gsm8k, arc, csqa, piqa or plain (default: detected)."
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="The test file (native format).")
    ] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="PIQA labels for --data.")] = None,
    dev: Annotated[
        str | None, typer.Option("--dev", help="Dev/train file: CAA choice and sweeps.")
    ] = None,
    dev_labels: Annotated[
        str | None, typer.Option("--dev-labels", help="PIQA labels for --dev.")
    ] = None,
    methods: Annotated[
        str, typer.Option("--methods", "-m", help="Comma-separated: plain,cot,cache,cache+cot,caa.")
    ] = "plain,cot,cache,cache+cot,caa",
    model: Annotated[
        str | None, typer.Option("--model", help="Model without a spec (plain,cot only).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="First N test examples.")] = None,
    dev_limit: Annotated[
        int | None, typer.Option("--dev-limit", help="First N dev examples.")
    ] = 50,
    batch_size: BatchSizeOption = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 256,
    runs: Annotated[
        int, typer.Option("--runs", help="Sampled runs (seeds seed..seed+runs-1).")
    ] = 1,
    sample: Annotated[
        bool, typer.Option("--sample/--greedy", help="Sampling (implied by --runs > 1).")
    ] = False,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.9,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    repetition_penalty: RepetitionPenaltyOption = None,
    no_repeat_ngram_size: NoRepeatNgramOption = None,
    min_new_tokens: MinNewTokensOption = None,
    top_k: TopKOption = None,
    precision: PrecisionOption = "auto",
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    layers: Annotated[
        str | None, typer.Option("--layers", help='Cache steering layers, e.g. "1..".')
    ] = None,
    key: Annotated[float | None, typer.Option("--key", help="c_k for cache steering.")] = None,
    value: Annotated[float | None, typer.Option("--value", help="c_v for cache steering.")] = None,
    caa_layer: Annotated[int | None, typer.Option("--caa-layer", help="Fix the CAA layer.")] = None,
    caa_multiplier: Annotated[
        float | None, typer.Option("--caa-multiplier", help="Fix the CAA multiplier.")
    ] = None,
    caa_layers: Annotated[
        str | None, typer.Option("--caa-layers", help="CAA layers to try on --dev.")
    ] = None,
    caa_multipliers: Annotated[
        str, typer.Option("--caa-multipliers", help="CAA multipliers to try on --dev.")
    ] = "1,2,4",
    export_caa: Annotated[
        str | None,
        typer.Option("--export-caa", help="Write the chosen CAA vector as a llama.cpp GGUF."),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="NAME=V1,V2,... on --dev (value, key, layers, shots, pairs, caa-layer, caa-multiplier); repeatable.",
        ),
    ] = None,
    forced_choice: Annotated[
        str,
        typer.Option("--forced-choice", help="model (logits) or overlap, for unreadable answers."),
    ] = "model",
    out: Annotated[
        str, typer.Option("--out", help="Results cache, reports and plots.")
    ] = ".kvsl/eval",
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    force: Annotated[bool, typer.Option("--force", help="Rebuild the spec's vectors.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Compare cache steering with plain, chain-of-thought and activation steering (CAA)."""
    with reported_errors(format="json" if format == "json" else "human"):
        from kvsl.builtin import resolve_target
        from kvsl.cli.run_commands import parse_layers
        from kvsl.eval.methods import parse_methods
        from kvsl.eval.pipeline import EvalRequest, parse_sweep
        from kvsl.lang.plan import DECODING_CONTROLS, GenerationSettings

        _check_choice(format, ("text", "json"), "format")
        _check_choice(precision, ("auto", "fp32", "bf16"), "precision")
        _check_choice(forced_choice, ("model", "overlap"), "forced choice")
        controls = decoding_controls(repetition_penalty, no_repeat_ngram_size, min_new_tokens, top_k)
        from kvsl.engine.placement import parse_device_map
        from kvsl.engine.setup import prepare

        if device_map:
            parse_device_map(device_map)  # KVS316 before anything is loaded
        # Threads (KVS313), the device (KVS309), the process group and the precision.
        setup = prepare(threads=threads, device=device, precision=precision, device_map=device_map)
        if setup.dist.is_main:
            print(f"kvsl eval: {setup.line()}", file=sys.stderr)
        request = EvalRequest(
            # A built-in style name (`step-by-step`) stands for its spec file.
            target=str(resolve_target(target)) if target is not None else None,
            benchmark=benchmark,
            data=data,
            labels=labels,
            dev=dev,
            dev_labels=dev_labels,
            methods=parse_methods(methods),
            model=model,
            limit=limit,
            dev_limit=dev_limit,
            batch_size=batch_size,
            # Every method (plain included) decodes with these: a fair comparison.
            decode=GenerationSettings(
                max_new_tokens=max_new_tokens,
                sample=sample,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
                **controls,
            ),
            runs=runs,
            # Controls not given as flags come from the spec's `generate` block.
            spec_controls=tuple(name for name in DECODING_CONTROLS if name not in controls),
            precision=setup.precision.name,
            device=setup.device or "cpu",
            device_map=device_map,
            layers=parse_layers(layers) if layers else None,
            key=key,
            value=value,
            caa_layer=caa_layer,
            caa_multiplier=caa_multiplier,
            caa_layers=_numbers(caa_layers, "--caa-layers", int),
            caa_multipliers=_numbers(caa_multipliers, "--caa-multipliers") or (1.0,),
            export_caa=export_caa,
            sweeps=tuple(parse_sweep(s) for s in sweep or ()),
            forced_choice=forced_choice,
            out_dir=out,
            force=force,
            threads=setup.threads.count,
        )
        _run(request, format)


def _run(request: Any, format: str) -> None:
    from rich.console import Console

    from kvsl.engine.distributed import is_main
    from kvsl.eval.pipeline import run_eval, run_sweep
    from kvsl.eval.report import legend, rich_table, sweep_table

    status = Console(stderr=True, highlight=False, quiet=not is_main())
    quiet = format == "json" or not is_main()
    if request.sweeps:
        report = run_sweep(request, console=status, quiet=quiet)
        points = report.pop("_points")
        if report.pop("rank", 0) != 0:
            return  # under torchrun / accelerate: rank 0 prints and writes the report
        if quiet:
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
            return
        out = Console(highlight=False)
        for name, pts in points.items():
            out.print(sweep_table(pts, title=f"sweep `{name}` on {request.dev}"))
        out.print(f"best on dev: {report['best']}")
        out.print(f"plot: {report['plot']}   report: {report['report_path']}")
        return
    report = run_eval(request, console=status, quiet=quiet)
    summaries = report.pop("_summaries")
    if report.pop("rank", 0) != 0:
        return  # under torchrun / accelerate: rank 0 prints and writes the report
    if quiet:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
        return
    out = Console(highlight=False)
    bench = report["benchmark"]
    title = f"{bench['format']}: {bench['examples']} examples from {bench['data']}" + (
        f" (first {bench['limit']})" if bench["limit"] is not None else ""
    )
    out.print(rich_table(summaries, title=title))
    out.print(legend(), style="dim")
    if report.get("caa"):
        caa = report["caa"]
        out.print(
            f"CAA: layer {caa['layer']}, multiplier {caa['multiplier']:g} "
            f"(chosen on {caa['chosen_on']})"
        )
    out.print(
        f"report: {report['report_path']}  (generated {report['generated_now']} responses now)"
    )
