"""The inputs of a batched forward pass: left-padded token rows, their positions, a cache.

Every batched pass in kvsl (extraction, steered generation, CAA, the eval's scoring) pads
on the left, so that each row's last prompt token sits at the same index, and counts
positions over real tokens only, so that RoPE sees what it sees one row at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows into `(input_ids, attention_mask)`, both (batch, seq).

    >>> ids, mask = left_pad([[5, 6], [7]], pad_id=0)
    >>> ids.tolist(), mask.tolist()
    ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions under left padding, exactly as `generate` derives them (pads get 0).

    >>> position_ids(torch.tensor([[0, 1, 1], [1, 1, 1]])).tolist()
    [[0, 0, 1], [0, 1, 2]]
    """
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def new_cache(model: Any) -> Any:
    """An empty `DynamicCache` laid out for `model` (sliding-window layers included)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)
