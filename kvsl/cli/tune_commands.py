"""`kvsl tune`: calibrate a spec on a dev set (a thin wrapper over `kvsl.tune.run_tune`).

    kvsl tune specs/step_by_step.kvs --dev ARC-Challenge-Dev.jsonl --format arc --write

Everything that needs torch is imported inside the command body.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kvsl.cli import app
from kvsl.cli.errors import reported_errors
from kvsl.cli.options import BatchSizeOption, DeviceOption, PrecisionOption, ThreadsOption


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
    return values


def _layer_grid(text: str | None) -> tuple[Any, ...]:
    from kvsl.cli.run_commands import parse_layers

    if text is None:
        return ()
    return tuple(parse_layers(part) for part in text.split(";") if part.strip())


@app.command("tune")
def tune_command(
    spec: Annotated[Path, typer.Argument(help="A `.kvs` spec, or a built-in style name.")],
    dev: Annotated[
        str, typer.Option("--dev", help="The dev (or train) file; a test split is refused.")
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="gsm8k, arc, csqa, piqa or plain (default: detected)."),
    ] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="PIQA labels for --dev.")] = None,
    values: Annotated[
        str | None,
        typer.Option("--values", help="c_v grid, e.g. 2,4,6 (default: the spec's c_v and ±2)."),
    ] = None,
    keys: Annotated[str | None, typer.Option("--keys", help="c_k grid (default: spec's).")] = None,
    layers: Annotated[
        str | None,
        typer.Option("--layers", help='Layer lists separated by ";", e.g. "1..;4..;1..15".'),
    ] = None,
    shots: Annotated[
        str | None, typer.Option("--shots", help="k grid; each k builds vectors once.")
    ] = None,
    repetition_penalties: Annotated[
        str | None,
        typer.Option("--repetition-penalties", help="Grid (default: 1 and the spec's, or 1.15)."),
    ] = None,
    no_repeat_ngram_sizes: Annotated[
        str | None, typer.Option("--no-repeat-ngram-sizes", help="Grid (default: spec's).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 96,
    limit: Annotated[int, typer.Option("--limit", help="Dev questions used at most.")] = 200,
    start: Annotated[
        int, typer.Option("--start", help="Questions of the first round (successive halving).")
    ] = 20,
    eta: Annotated[
        int, typer.Option("--eta", help="Keep the best 1/eta, grow the subset eta times.")
    ] = 2,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Level of the paired accuracy test vs plain.")
    ] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Shuffle of the dev questions.")] = 0,
    batch_size: BatchSizeOption = 8,
    out: Annotated[
        str, typer.Option("--out", help="Per-example cache, reports and plot.")
    ] = ".kvsl/tune",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    threads: ThreadsOption = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild the spec's vectors.")] = False,
    write: Annotated[
        bool, typer.Option("--write", help="Put the chosen values into the spec (comments kept).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Calibrate c_v, c_k, layers, shots and decoding penalties on a dev set."""
    with reported_errors(format="json" if json_output else "human"):
        from kvsl.builtin import resolve_target
        from kvsl.engine.setup import prepare
        from kvsl.tune.grid import TuneRequest

        # Threads (KVS313), the device (KVS309) and the precision, before anything loads.
        setup = prepare(threads=threads, device=device, precision=precision)
        print(f"kvsl tune: {setup.line()}", file=sys.stderr)
        if format is not None:
            from kvsl.formats.questions import canonical_format

            format = canonical_format(format)
        request = TuneRequest(
            spec=str(resolve_target(spec)),
            dev=dev,
            format=format,
            labels=labels,
            values=_numbers(values, "--values"),
            keys=_numbers(keys, "--keys"),
            layers=_layer_grid(layers),
            shots=_numbers(shots, "--shots", int),
            repetition_penalties=_numbers(repetition_penalties, "--repetition-penalties"),
            no_repeat_ngram_sizes=_numbers(no_repeat_ngram_sizes, "--no-repeat-ngram-sizes", int),
            max_new_tokens=max_new_tokens,
            limit=limit,
            start=start,
            eta=eta,
            alpha=alpha,
            seed=seed,
            batch_size=batch_size,
            out_dir=out,
            device=setup.device or "cpu",
            precision=setup.precision.name,
            threads=setup.threads.count,
            force=force,
            write=write,
        )
        _run(request, json_output)


def _run(request: Any, json_output: bool) -> None:
    from rich.console import Console

    from kvsl.tune.run import run_tune

    status = Console(stderr=True, highlight=False)
    report = run_tune(request, console=status, quiet=json_output)
    if json_output:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
        return
    for warning in report["warnings"]:
        status.print(f"warning[{warning['code']}]: {warning['message']}")
    chosen = report["chosen"]
    if chosen is None:
        typer.echo("no setting kept dev accuracy: nothing chosen")
    else:
        typer.echo(
            f"chosen: {chosen['label']}\n"
            f"  adherence x novelty {chosen['adherence']:.2f} (plain {chosen['plain_adherence']:.2f}),"
            f" accuracy {100 * chosen['accuracy']:.1f}% (plain {100 * chosen['plain_accuracy']:.1f}%,"
            f" McNemar p {chosen['p_mcnemar']:.3f}) on {chosen['n']} dev questions"
        )
    if report.get("written"):
        typer.echo(f"wrote {', '.join(report['written'])} into {request.spec}")
    typer.echo(f"report: {report['markdown_path']}  plot: {report['plot']}")
