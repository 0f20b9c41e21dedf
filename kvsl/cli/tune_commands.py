"""`kvsl tune`: calibrate a spec on a dev set (a thin wrapper over `kvsl.tune.run_tune`).

    kvsl tune specs/step_by_step.kvs --dev ARC-Challenge-Dev.jsonl --format arc --write

Everything that needs torch is imported inside the command body.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kvsl.base.interrupt import stop_on_interrupt
from kvsl.base.plurals import counted
from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import BatchSizeOption, DeviceOption, PrecisionOption, ThreadsOption
from kvsl.lang.diagnostics import ExitCode


def _numbers(text: str | None, flag: str, cast: type = float) -> tuple[Any, ...]:
    from kvsl.tune.grid import bad_option

    if text is None:
        return ()
    try:
        values = tuple(cast(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise bad_option(
            f"`{flag}` takes comma-separated numbers, got `{text}`", help=f"e.g. `{flag} 2,4,6`"
        ) from None
    if not values:
        raise bad_option(f"`{flag}` is empty")
    if not all(math.isfinite(v) for v in values):  # `--values nan,inf`
        raise bad_option(f"`{flag}` takes finite numbers, got `{text}`")
    return values


def _layer_grid(text: str | None) -> tuple[Any, ...]:
    from kvsl.lang.overrides import parse_layers

    if text is None:
        return ()
    return tuple(parse_layers(part) for part in text.split(";") if part.strip())


SpecArgument = Annotated[Path, typer.Argument(help="A `.kvs` spec, or a built-in style name.")]
DevOption = Annotated[
    str, typer.Option("--dev", help="The dev (or train) file; a test split is refused.")
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help="gsm8k, arc, csqa, piqa or plain (default: detected)."),
]
LabelsOption = Annotated[str | None, typer.Option("--labels", help="PIQA labels for --dev.")]
ValuesOption = Annotated[
    str | None,
    typer.Option("--values", help="c_v grid, e.g. 2,4,6 (default: the spec's c_v and ±2)."),
]
KeysOption = Annotated[str | None, typer.Option("--keys", help="c_k grid (default: spec's).")]
LayersOption = Annotated[
    str | None,
    typer.Option("--layers", help='Layer lists separated by ";", e.g. "1..;4..;1..15".'),
]
ShotsOption = Annotated[
    str | None, typer.Option("--shots", help="k grid; each k builds vectors once.")
]
PenaltiesOption = Annotated[
    str | None,
    typer.Option("--repetition-penalties", help="Grid (default: 1 and the spec's, or 1.15)."),
]
NgramSizesOption = Annotated[
    str | None, typer.Option("--no-repeat-ngram-sizes", help="Grid (default: spec's).")
]
MaxNewTokensOption = Annotated[int, typer.Option("--max-new-tokens")]
LimitOption = Annotated[int, typer.Option("--limit", help="Dev questions used at most.")]
StartOption = Annotated[
    int,
    typer.Option(
        "--start",
        # torchrun's argument parser reads `--start` as an ambiguous prefix of its own
        # `--start-method` and stops; under torchrun, write `--start-questions`.
        "--start-questions",
        help="Questions of the first round (successive halving).",
    ),
]
EtaOption = Annotated[
    int, typer.Option("--eta", help="Keep the best 1/eta, grow the subset eta times.")
]
FallbacksOption = Annotated[
    int,
    typer.Option(
        "--fallbacks",
        help="Runners-up tried on every dev question when the winner costs accuracy.",
    ),
]
ForcedChoiceOption = Annotated[
    str,
    typer.Option(
        "--forced-choice",
        help="model, calibrated or overlap: how the accuracy test reads unreadable answers.",
    ),
]
AlphaOption = Annotated[
    float, typer.Option("--alpha", help="Level of the paired accuracy test vs plain.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Shuffle of the dev questions.")]
OutOption = Annotated[str, typer.Option("--out", help="Per-example cache, reports and plot.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild the spec's vectors.")]
WriteOption = Annotated[
    bool, typer.Option("--write", help="Put the chosen values into the spec (comments kept).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@app.command("tune")
def tune_command(
    spec: SpecArgument,
    dev: DevOption,
    format: FormatOption = None,
    labels: LabelsOption = None,
    values: ValuesOption = None,
    keys: KeysOption = None,
    layers: LayersOption = None,
    shots: ShotsOption = None,
    repetition_penalties: PenaltiesOption = None,
    no_repeat_ngram_sizes: NgramSizesOption = None,
    max_new_tokens: MaxNewTokensOption = 96,
    limit: LimitOption = 200,
    start: StartOption = 20,
    eta: EtaOption = 2,
    alpha: AlphaOption = 0.05,
    fallbacks: FallbacksOption = 2,
    forced_choice: ForcedChoiceOption = "model",
    seed: SeedOption = 0,
    batch_size: BatchSizeOption = 32,
    out: OutOption = ".kvsl/tune",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    threads: ThreadsOption = None,
    force: ForceOption = False,
    write: WriteOption = False,
    json_output: JsonOption = False,
) -> None:
    """Calibrate c_v, c_k, layers, shots and decoding penalties on a dev set."""
    with reported_errors(format="json" if json_output else "human"):
        from kvsl.builtin import resolve_target
        from kvsl.engine.setup import prepare
        from kvsl.tune.grid import TuneRequest

        # Threads (KVS313), the device (KVS309) and the precision, before anything loads.
        setup = prepare(threads=threads, device=device, precision=precision)
        if setup.dist.is_main:
            print(f"kvsl tune: {setup.line()}", file=sys.stderr)
        if format is not None:
            from kvsl.formats.questions import canonical_format

            format = canonical_format(format)
        request = TuneRequest(
            spec=str(resolve_target(spec)), dev=dev, format=format, labels=labels,
            values=_numbers(values, "--values"), keys=_numbers(keys, "--keys"),
            layers=_layer_grid(layers), shots=_numbers(shots, "--shots", int),
            repetition_penalties=_numbers(repetition_penalties, "--repetition-penalties"),
            no_repeat_ngram_sizes=_numbers(no_repeat_ngram_sizes, "--no-repeat-ngram-sizes", int),
            max_new_tokens=max_new_tokens, limit=limit, start=start, eta=eta, alpha=alpha,
            fallbacks=fallbacks, forced_choice=forced_choice,
            seed=seed, batch_size=batch_size, out_dir=out, device=setup.device or "cpu",
            precision=setup.precision.name, threads=setup.threads.count, force=force, write=write,
        )  # fmt: skip
        _run(request, json_output)


def _run(request: Any, json_output: bool) -> None:
    """Call `kvsl.tune.run_tune`, then print the chosen setting (or the JSON report)."""
    from rich.console import Console

    from kvsl.engine.distributed import is_main
    from kvsl.tune.run import run_tune

    # soft_wrap: a status line stays one line in a log (rich wraps at 80 off a terminal)
    status = Console(
        stderr=True, highlight=False, markup=False, soft_wrap=True, quiet=not is_main()
    )
    with stop_on_interrupt(f"{request.out_dir}/results.jsonl"):
        report = run_tune(request, console=status, quiet=json_output)
    if report.pop("rank", 0) != 0:
        return  # under torchrun / accelerate: rank 0 prints and writes the report
    failed = any(w["severity"] == "error" for w in report["warnings"])  # KVS706
    if json_output:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
        if failed:
            raise typer.Exit(int(ExitCode.ERRORS))
        return
    for warning in report["warnings"]:
        status.print(f"{warning['severity']}[{warning['code']}]: {warning['message']}")
    chosen = report["chosen"]
    if chosen is None:
        typer.echo("no setting kept dev accuracy: nothing chosen")
    else:
        typer.echo(
            f"chosen: {chosen['label']}\n"
            f"  adherence x novelty {chosen['adherence']:.2f} (plain {chosen['plain_adherence']:.2f}),"
            f" accuracy {100 * chosen['accuracy']:.1f}% (plain {100 * chosen['plain_accuracy']:.1f}%,"
            f" McNemar p {chosen['p_mcnemar']:.3f}) on {counted(chosen['n'], 'dev question')}"
        )
    if report.get("written"):
        typer.echo(f"wrote {', '.join(report['written'])} into {request.spec}")
    typer.echo(f"report: {report['markdown_path']}  plot: {report['plot']}")
    if failed:
        raise typer.Exit(int(ExitCode.ERRORS))
