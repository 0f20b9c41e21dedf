"""Steering vectors in memory: what extraction produces and steering consumes.

The on-disk form (safetensors + manifest) lives in `kvsl.engine.artifact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
