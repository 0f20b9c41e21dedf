"""Options several commands share, declared once so their names and help stay the same."""

from __future__ import annotations

from typing import Annotated

import typer

# Where the model runs: checked by `kvsl.engine.models.resolve_device` (KVS309) before loading.
DeviceOption = Annotated[
    str,
    typer.Option("--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
]
# The model's weights while generating; vectors keep the spec's own extraction precision.
PrecisionOption = Annotated[
    str, typer.Option("--precision", help="fp32 or bf16 (model weights while generating).")
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Prompts per batch.")]
