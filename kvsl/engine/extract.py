"""Extraction: plan + model → steering vectors (per-layer mean of positive − negative KV).

For each contrast pair, both prompts run through the decoder *without its LM head* (the
cache is all extraction needs, logits are wasted work), and the keys and values of every
layer are read from the cache at the last prompt token (the paper's position convention,
see `kvsl.engine.prompting`). The vectors are the mean over the N pairs of positive minus
negative, in float32, shape (kv_heads, head_dim) per layer.

How it computes less than the paper's loop, on CPU in particular:
- no LM head (`model.model(...)` with `use_cache=True`, reading the DynamicCache);
- at batch size 1, the common prefix of a pair's two prompts (system prompt, first demo
  question, ...) is computed once (not for models with sliding-window layers, whose cache
  cannot be cropped back): the positive prompt runs whole, the cache is cropped
  back to the prefix, and the negative prompt continues from it. The result
  equals running both prompts in full (tested to 1e-5);
- batch size by device: 1 on CPU (batching padded prompts was slower on 2 cores), 8 on
  accelerators, where prompts are left-padded and each row is read at its last real token
  with position ids that skip the padding (tested equal to one-by-one);
- under `torchrun` / `accelerate launch` the pairs are split across ranks and the key and
  value sums and the pair count are all-reduced (`kvsl.engine.distributed`), so the mean
  is the one-process mean whatever the split;
- `precision = bf16` runs a bf16 model (or autocast when handed an fp32 model); the
  vectors are still averaged in float32.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from kvsl.engine.contrast import ContrastPair, TokenizedPair, build_contrast_pairs, tokenize_pairs
from kvsl.engine.distributed import all_reduce_sum, shard
from kvsl.engine.generate import pad_token_id
from kvsl.engine.geometry import base_model, cache_kwarg
from kvsl.engine.inputs import left_pad, new_cache, position_ids
from kvsl.engine.loading import quiet_transformers
from kvsl.engine.models import LoadedModel
from kvsl.engine.prompting import offset_token_id
from kvsl.engine.vectors import Extraction, SteeringVectors
from kvsl.formats.traces import Trace
from kvsl.lang.diagnostics import Diagnostic
from kvsl.lang.plan import Plan


def default_batch_size(device: torch.device) -> int:
    """1 on CPU (measured faster there), 8 on accelerators."""
    return 1 if device.type == "cpu" else 8


@contextlib.contextmanager
def _compute_precision(loaded: LoadedModel, precision: str) -> Iterator[str]:
    """Autocast an fp32 model to bf16 when the plan asks for bf16; yields the dtype used."""
    if precision == "bf16" and loaded.dtype == torch.float32:
        with torch.autocast(device_type=loaded.device.type, dtype=torch.bfloat16):
            yield "bfloat16 (autocast)"
    else:
        yield str(loaded.dtype).removeprefix("torch.")


class _KVReader:
    """Runs the base model and returns (layers, kv_heads, head_dim) keys/values at the last token."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.model = loaded.model
        self.base = base_model(loaded.model)
        self.kwarg = cache_kwarg(self.base)
        self.device = loaded.device
        # A sliding-window layer forgets tokens past its window, so a cache that has one
        # cannot be cropped back to a shared prefix: such models run each prompt whole.
        self.can_crop = not any(getattr(self.new_cache(), "is_sliding", None) or ())

    def new_cache(self) -> Any:
        return new_cache(self.model)

    def run(self, ids: Sequence[int], cache: Any) -> None:
        input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        self.base(input_ids=input_ids, use_cache=True, **{self.kwarg: cache})

    @staticmethod
    def last(cache: Any, row: int | slice = 0) -> tuple[torch.Tensor, torch.Tensor]:
        # cache.layers[i].keys: (batch, kv_heads, seq, head_dim)
        keys = torch.stack([layer.keys[row, :, -1, :] for layer in cache.layers]).float()
        values = torch.stack([layer.values[row, :, -1, :] for layer in cache.layers]).float()
        return keys, values  # (layers, kv_heads, head_dim) or (layers, batch, kv_heads, head_dim)

    def pair_difference(
        self, pair: TokenizedPair, share_prefix: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive − negative) keys and values of one pair, each (layers, kv_heads, head_dim)."""
        positive, negative = pair.positive, pair.negative
        # Each continuation needs at least its last token, which is read from the cache.
        shared = min(pair.shared, len(positive) - 1, len(negative) - 1) if share_prefix else 0
        # The positive prompt runs whole, in one call: a prefill into an empty cache takes
        # the causal fast path of attention, which matters for k = 10 prompts of ~1k
        # tokens. Only the negative continues from the (cropped) shared prefix.
        cache = self.new_cache()
        self.run(positive, cache)
        pos_k, pos_v = self.last(cache)
        if shared:
            cache.crop(-(len(positive) - shared))  # back to the shared prefix, in place
        else:
            cache = self.new_cache()
        self.run(negative[shared:], cache)
        neg_k, neg_v = self.last(cache)
        return pos_k - neg_k, pos_v - neg_v

    def batch_last(
        self, prompts: Sequence[Sequence[int]], pad_id: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded batch → (batch, layers, kv_heads, head_dim) keys/values at each last token."""
        ids, mask = left_pad(prompts, pad_id, self.device)  # (batch, seq)
        cache = self.new_cache()
        self.base(
            input_ids=ids,
            attention_mask=mask,
            # Positions count real tokens only, so RoPE sees what it sees one-by-one.
            position_ids=position_ids(mask),
            use_cache=True,
            **{self.kwarg: cache},
        )
        keys, values = self.last(cache, slice(None))  # (layers, batch, kv_heads, head_dim)
        return keys.transpose(0, 1), values.transpose(0, 1)


@contextlib.contextmanager
def _progress(
    enabled: bool, console: Any, total: int, description: str
) -> Iterator[Callable[[int], None]]:
    """Yields `done(count)`, which shows `count` of `total` pairs done under `description`.

    Disabled, it yields a no-op, so the extraction loop reads the same either way.
    """
    if not enabled:
        yield lambda _count: None
        return
    from kvsl.base.progress import progress_display

    with progress_display(console, "pairs") as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.update(task, completed=count)


def extract_vectors(
    loaded: LoadedModel,
    plan: Plan,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    share_prefix: bool = True,
    pairs: Sequence[ContrastPair] | None = None,
    traces: Sequence[Trace] | None = None,
    console: Any = None,
    on_warning: Callable[[Diagnostic], None] | None = None,
) -> SteeringVectors:
    """Steering vectors for `plan` on `loaded`: all layers, float32, (kv_heads, head_dim) each.

    `extract_means` described by their manifest (`kvsl.engine.artifact.describe`), ready
    for `save_artifact`; the options are `extract_means`'.

    >>> vectors = extract_vectors(load_model(plan.model), plan)   # doctest: +SKIP
    >>> vectors.keys[1].shape                                      # doctest: +SKIP
    torch.Size([3, 64])
    """
    from kvsl.engine.artifact import describe

    extraction = extract_means(
        loaded,
        plan,
        batch_size=batch_size,
        progress=progress,
        share_prefix=share_prefix,
        pairs=pairs,
        traces=traces,
        console=console,
        on_warning=on_warning,
    )
    return describe(extraction, plan, loaded)


def extract_means(
    loaded: LoadedModel,
    plan: Plan,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    share_prefix: bool = True,
    pairs: Sequence[ContrastPair] | None = None,
    traces: Sequence[Trace] | None = None,
    console: Any = None,
    on_warning: Callable[[Diagnostic], None] | None = None,
) -> Extraction:
    """The per-layer mean (positive − negative) keys and values of the plan's pairs.

    `batch_size` overrides the plan's (None: the plan's, else by device). `pairs` skips
    reading the trace file (tests and benchmarks); `traces` are the plan's traces already
    read (`kvsl.engine.contrast.plan_traces`, as `kvsl build` does), else they are read
    here. What describes the result as an artifact (its manifest) is the artifact's
    business: `kvsl.engine.artifact.describe`.
    """
    started = time.perf_counter()
    offset_id = offset_token_id(loaded.tokenizer, plan.extract.offset_token)
    if pairs is None:
        pairs = build_contrast_pairs(plan, traces, on_warning=on_warning)
    tokenized = tokenize_pairs(pairs, loaded.tokenizer, plan.extract.prefix)
    mine = shard(tokenized)  # this rank's pairs (all of them in one process)
    size = batch_size or plan.extract.batch_size or default_batch_size(loaded.device)
    reader = _KVReader(loaded)
    share_prefix = share_prefix and reader.can_crop
    with (
        torch.inference_mode(),
        quiet_transformers(),  # e.g. GPT-2's "pass an attention_mask" for unpadded prompts
        _compute_precision(loaded, plan.extract.precision) as compute_dtype,
        _progress(progress, console, len(mine), f"extracting {plan.style}") as done,
    ):
        if size <= 1:
            sums = _sum_one_by_one(reader, mine, share_prefix, loaded.geometry, done)
        else:
            pad_id = pad_token_id(loaded.tokenizer, loaded.model)
            sums = _sum_batched(reader, mine, size, pad_id, loaded.geometry, done)
    keys, values, count, computed = _mean_over_ranks(sums, len(mine), loaded.geometry.num_layers)
    stats = {
        "seconds": round(time.perf_counter() - started, 3),
        "batch_size": size,
        "prompt_tokens": sum(len(p.positive) + len(p.negative) for p in tokenized),
        "computed_tokens": computed,
    }
    return Extraction(keys, values, count, offset_id, compute_dtype, stats)


# (key sum, value sum) each (layers, kv_heads, head_dim) float32, and the tokens computed
_Sums = tuple[torch.Tensor, torch.Tensor, int]


def _zeros(geometry: Any) -> torch.Tensor:
    shape = (geometry.num_layers, geometry.kv_heads, geometry.head_dim)
    return torch.zeros(shape, dtype=torch.float32)


def _sum_one_by_one(
    reader: _KVReader,
    pairs: Sequence[TokenizedPair],
    share_prefix: bool,
    geometry: Any,
    done: Callable[[int], None],
) -> _Sums:
    """Sum of (positive − negative) over `pairs`, one pair at a time (the shared prefix once)."""
    key_sum, value_sum = _zeros(geometry), _zeros(geometry)
    computed = 0
    for count, pair in enumerate(pairs, start=1):
        dk, dv = reader.pair_difference(pair, share_prefix)
        key_sum += dk.cpu()
        value_sum += dv.cpu()
        computed += len(pair.positive) + len(pair.negative)
        if share_prefix:
            computed -= min(pair.shared, len(pair.positive) - 1, len(pair.negative) - 1)
        done(count)
    return key_sum, value_sum, computed


def _sum_batched(
    reader: _KVReader,
    pairs: Sequence[TokenizedPair],
    size: int,
    pad_id: int,
    geometry: Any,
    done: Callable[[int], None],
) -> _Sums:
    """Sum of (positive − negative) over `pairs`, prompts in left-padded batches of `size`."""
    prompts = [p for pair in pairs for p in (pair.positive, pair.negative)]
    # Similar lengths together waste less padding; results go back by index.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    keys_by_prompt: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    computed = 0
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        batch_keys, batch_values = reader.batch_last([prompts[i] for i in chunk], pad_id)
        for row, index in enumerate(chunk):
            keys_by_prompt[index] = (batch_keys[row].cpu(), batch_values[row].cpu())
        computed += len(chunk) * max(len(prompts[i]) for i in chunk)
        done(sum(1 for i in range(0, len(prompts), 2) if {i, i + 1} <= keys_by_prompt.keys()))
    key_sum, value_sum = _zeros(geometry), _zeros(geometry)
    for index in range(0, len(prompts), 2):
        key_sum += keys_by_prompt[index][0] - keys_by_prompt[index + 1][0]
        value_sum += keys_by_prompt[index][1] - keys_by_prompt[index + 1][1]
    return key_sum, value_sum, computed


def _mean_over_ranks(
    sums: _Sums, pairs: int, num_layers: int
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], int, int]:
    """Per-layer mean keys and values, the pair count and the tokens computed, all ranks.

    Sums and count are reduced over all ranks (one process: unchanged), so the mean is exact.
    """
    key_sum, value_sum, computed = sums
    key_sum = all_reduce_sum(key_sum)
    value_sum = all_reduce_sum(value_sum)
    totals = all_reduce_sum(torch.tensor([pairs, computed], dtype=torch.float64))
    count, computed = int(totals[0]), int(totals[1])
    keys = {layer: (key_sum[layer] / count).contiguous() for layer in range(num_layers)}
    values = {layer: (value_sum[layer] / count).contiguous() for layer in range(num_layers)}
    return keys, values, count, computed


def layer_cosines(a: SteeringVectors, b: SteeringVectors) -> dict[int, tuple[float, float]]:
    """Per layer (key cosine, value cosine) between two sets of vectors (e.g. bf16 vs fp32).

    A layer whose vectors are both zero (values at layer 0) counts as cosine 1.0.
    """

    def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
        x, y = x.flatten().double(), y.flatten().double()
        norm = x.norm() * y.norm()
        if norm == 0:
            return 1.0 if x.norm() == y.norm() else 0.0
        return float(x @ y / norm)

    return {
        layer: (cosine(a.keys[layer], b.keys[layer]), cosine(a.values[layer], b.values[layer]))
        for layer in sorted(a.keys)
    }
