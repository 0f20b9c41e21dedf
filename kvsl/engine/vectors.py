"""Steering vectors in memory: what extraction produces and steering consumes.

`Extraction` is what extraction measures (`kvsl.engine.extract.extract_means`);
`SteeringVectors` are those vectors described by their manifest
(`kvsl.engine.artifact.describe`), ready to steer or to save. The on-disk form
(safetensors + manifest) lives in `kvsl.engine.artifact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Extraction:
    """The measured vectors of one extraction, before they are described as an artifact."""

    keys: dict[int, torch.Tensor]  # layer → (kv_heads, head_dim): mean over the pairs
    values: dict[int, torch.Tensor]  # layer → (kv_heads, head_dim)
    pairs: int  # pairs averaged, over all ranks
    offset_token_id: int
    compute_dtype: str  # "float32", "bfloat16 (autocast)", ...
    stats: dict[str, Any]  # seconds, batch size, prompt and computed tokens


@dataclass(frozen=True)
class SteeringVectors:
    """Per-layer mean (positive − negative) keys and values at the last prompt token.

    `keys[layer]` and `values[layer]` are `(kv_heads, head_dim)` float32 tensors, one per
    layer of the model (all layers are extracted; the plan chooses which are steered).
    `manifest` describes where they came from (see kvsl.engine.artifact).
    """

    keys: dict[int, torch.Tensor]  # layer → (kv_heads, head_dim)
    values: dict[int, torch.Tensor]  # layer → (kv_heads, head_dim)
    offset_token: str = "\n"
    manifest: dict[str, object] = field(default_factory=dict)
    # The paper's prefix variant: text that starts the assistant turn of every prompt
    # these vectors steer, as it did at extraction ("" for none; see kvsl.engine.prompting).
    prefix: str = ""

    @property
    def num_layers(self) -> int:
        return len(self.keys)

    @property
    def geometry(self) -> tuple[int, int]:
        """(kv_heads, head_dim)."""
        return tuple(next(iter(self.values.values())).shape)  # type: ignore[return-value]
