"""Options several commands share, declared once so their names and help stay the same."""

from __future__ import annotations

from typing import Annotated, Any

import typer

# Where the model runs: checked by `kvsl.engine.models.resolve_device` (KVS309) before loading.
DeviceOption = Annotated[
    str,
    typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
]
# The model's weights while generating; vectors keep the spec's own extraction precision.
# `auto`: `kvsl.engine.precision.choose_precision` (bf16 on CUDA with bf16 and AMX CPUs).
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 where the device runs it fast, else fp32), fp32 or bf16 "
        "(model weights while generating).",
    ),
]
# torch's CPU threads: `kvsl.base.threads.choose_threads` (KVSL_THREADS, then the cores
# this process may use, shared among a launcher's processes on the node).
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for torch (default: $KVSL_THREADS, else the cores this process "
        "may use, divided among the processes on this node).",
    ),
]
# transformers' device_map: spread a model over GPUs, CPU and disk (docs/scale.md).
DeviceMapOption = Annotated[
    str | None,
    typer.Option(
        "--device-map",
        help="auto, balanced, sequential or a JSON {module: device} map: load the model "
        "across devices with CPU/disk offload (replaces --device).",
    ),
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Prompts per batch.")]

# Decoding controls (transformers' own logits processors); None: the spec's `generate` value.
RepetitionPenaltyOption = Annotated[
    float | None,
    typer.Option(
        "--repetition-penalty", help="> 1 discourages repeated tokens, 1 = off (spec's default)."
    ),
]
NoRepeatNgramOption = Annotated[
    int | None,
    typer.Option("--no-repeat-ngram-size", help="Forbid repeating any n-gram, 0 = off."),
]
MinNewTokensOption = Annotated[
    int | None,
    typer.Option("--min-new-tokens", help="No end of text before this many tokens, 0 = off."),
]
TopKOption = Annotated[
    int | None, typer.Option("--top-k", help="Sample from the k likeliest tokens, 0 = off.")
]


def decoding_controls(
    repetition_penalty: float | None,
    no_repeat_ngram_size: int | None,
    min_new_tokens: int | None,
    top_k: int | None,
) -> dict[str, Any]:
    """The decoding controls given on the command line, by `GenerationSettings` field name.

    >>> decoding_controls(1.15, None, None, 0)
    {'repetition_penalty': 1.15, 'top_k': 0}
    """
    given = {
        "repetition_penalty": repetition_penalty,
        "no_repeat_ngram_size": no_repeat_ngram_size,
        "min_new_tokens": min_new_tokens,
        "top_k": top_k,
    }
    return {name: value for name, value in given.items() if value is not None}
